//! [`StoreIdentity`]: the id a store is known by, kept in its root.
//!
//! Placement records in the cluster's metadata name the store of every
//! shard by id, so an id must be unique across the cluster and must stay
//! with the store's data wherever its directory goes. It is minted once,
//! when a store opens for the first time, as `st-` and 16 lowercase hex
//! digits (64 random bits: short, as every segment keeps one id per shard),
//! and saved in `<root>/store.id`:
//!
//! ```text
//! # Identity of this Tessera shard store: the id the metadata knows it by.
//! id = "st-3f9c0a1b2c3d4e5f"
//! legacy = "disk-3"
//! renamed = true
//! ```
//!
//! `legacy` and `renamed` appear only in stores written before store ids
//! existed (a release that named local stores `disk-N` by position): the
//! metadata still names such a store by its legacy id until the server
//! renames it there (one raft command), after which `renamed` turns true.
//!
//! The file is written once (temp file, fsync, rename, fsync of the root),
//! owner-only. A file that does not parse or holds a malformed id makes the
//! store refuse to open ([`StorageError::Identity`]): minting a new id then
//! would orphan every shard the metadata places on the store.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, sync_dir};
use crate::error::StorageError;

/// File name of the identity file inside a store's root.
pub const ID_FILE: &str = "store.id";

/// What every minted id starts with.
const ID_PREFIX: &str = "st-";

/// Hex digits after [`ID_PREFIX`].
const ID_HEX_DIGITS: usize = 16;

/// First line of the file, for whoever opens it.
const HEADER: &str = "# Identity of this Tessera shard store: the id the metadata knows it by.\n\
     # Minted once; never edit or copy it to another store.\n";

/// A store's id and, for a store written before ids existed, its legacy id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdentity {
    /// The store's id: `st-` and 16 lowercase hex digits.
    pub id: String,
    /// The id a release before store ids used for this store, if it had one.
    pub legacy: Option<LegacyId>,
}

/// The id a store had before store ids were minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyId {
    /// The old id (`disk-N`).
    pub id: String,
    /// Whether the metadata names the store by its new id everywhere.
    pub renamed: bool,
}

/// The file's fields, as TOML.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdFile {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    legacy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    renamed: Option<bool>,
}

impl StoreIdentity {
    /// A fresh identity with a random id, recording `legacy` (not renamed yet).
    pub fn mint(legacy: Option<&str>) -> StoreIdentity {
        StoreIdentity {
            id: format!(
                "{ID_PREFIX}{:0width$x}",
                rand::random::<u64>(),
                width = ID_HEX_DIGITS
            ),
            legacy: legacy.map(|id| LegacyId {
                id: id.to_owned(),
                renamed: false,
            }),
        }
    }

    /// Whether `id` has the form of a minted id.
    pub fn is_minted_id(id: &str) -> bool {
        id.strip_prefix(ID_PREFIX).is_some_and(|hex| {
            hex.len() == ID_HEX_DIGITS
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    }

    /// The legacy id while the metadata may still name the store by it.
    pub fn unrenamed_legacy_id(&self) -> Option<&str> {
        self.legacy
            .as_ref()
            .filter(|l| !l.renamed)
            .map(|l| l.id.as_str())
    }

    /// Path of the identity file of the store at `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join(ID_FILE)
    }

    /// Reads the identity of the store at `root`; `None` when it has none yet.
    pub fn read(root: &Path) -> Result<Option<StoreIdentity>, StorageError> {
        let path = Self::path(root);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                return Err(bad(&path, "it is not UTF-8 text"));
            }
            Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e)),
        };
        Self::parse(&text, &path).map(Some)
    }

    /// Parses the text of an identity file; `origin` (the file, or the
    /// object holding it) names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<StoreIdentity, StorageError> {
        let file: IdFile = toml::from_str(text).map_err(|e| bad(origin, e.message()))?;
        if !Self::is_minted_id(&file.id) {
            return Err(bad(origin, &format!("{:?} is not a store id", file.id)));
        }
        let legacy = match (file.legacy, file.renamed) {
            (None, None) => None,
            (Some(id), Some(renamed)) if is_legacy_id(&id) => Some(LegacyId { id, renamed }),
            (Some(id), Some(_)) => {
                return Err(bad(origin, &format!("{id:?} is not a legacy store id")));
            }
            _ => return Err(bad(origin, "`legacy` and `renamed` go together")),
        };
        Ok(StoreIdentity {
            id: file.id,
            legacy,
        })
    }

    /// The text of the identity file: a comment, then the fields as TOML.
    pub fn to_text(&self) -> Result<String, StorageError> {
        let file = IdFile {
            id: self.id.clone(),
            legacy: self.legacy.as_ref().map(|l| l.id.clone()),
            renamed: self.legacy.as_ref().map(|l| l.renamed),
        };
        let body = toml::to_string(&file)
            .map_err(|e| StorageError::Format(format!("encoding a store identity: {e}")))?;
        Ok(format!("{HEADER}{body}"))
    }

    /// Saves this identity as the store's at `root` (which must exist),
    /// atomically and durably, owner-only.
    pub fn write(&self, root: &Path) -> Result<(), StorageError> {
        let text = self.to_text()?;
        let path = Self::path(root);
        let tmp = root.join(format!("{ID_FILE}.tmp"));
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("creating", &tmp))?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(io_err("writing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("renaming into", &path))?;
        sync_dir(root)
    }

    /// The identity of the store at `root` (which must exist); minted and
    /// saved when it has none. A store that has none but holds a `shards`
    /// directory was written by a release before store ids: `legacy` is
    /// recorded as its former id then.
    pub(crate) fn load_or_mint(
        root: &Path,
        legacy: Option<&str>,
    ) -> Result<StoreIdentity, StorageError> {
        if let Some(identity) = Self::read(root)? {
            return Ok(identity);
        }
        let predates_ids = root.join("shards").is_dir();
        let identity = Self::mint(legacy.filter(|_| predates_ids));
        identity.write(root)?;
        match identity.unrenamed_legacy_id() {
            Some(old) => tracing::info!(
                root = %root.display(), id = identity.id, legacy = old,
                "gave a store written before store ids its id"
            ),
            None => tracing::info!(root = %root.display(), id = identity.id, "minted a store id"),
        }
        Ok(identity)
    }
}

/// Whether `id` may be a legacy id: short, printable, no quotes or spaces.
fn is_legacy_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn bad(path: &Path, reason: &str) -> StorageError {
    StorageError::Identity {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn minted_ids_are_short_random_and_recognizable() {
        let a = StoreIdentity::mint(None);
        let b = StoreIdentity::mint(None);
        assert_ne!(a.id, b.id);
        for id in [&a.id, &b.id] {
            assert_eq!(id.len(), 19, "{id}");
            assert!(StoreIdentity::is_minted_id(id), "{id}");
        }
        for not in [
            "disk-1",
            "st-",
            "st-0123456789ABCDEF",
            "st-0123456789abcdef0",
            "xx-0123456789abcdef",
        ] {
            assert!(!StoreIdentity::is_minted_id(not), "{not}");
        }
    }

    #[test]
    fn minted_once_then_read_back_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(StoreIdentity::read(tmp.path()).unwrap(), None);
        let first = StoreIdentity::load_or_mint(tmp.path(), Some("disk-2")).unwrap();
        assert_eq!(first.legacy, None, "a new store has no legacy id");
        let again = StoreIdentity::load_or_mint(tmp.path(), Some("disk-2")).unwrap();
        assert_eq!(again, first);
        assert_eq!(StoreIdentity::read(tmp.path()).unwrap(), Some(first));
        let path = StoreIdentity::path(tmp.path());
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!tmp.path().join("store.id.tmp").exists());
    }

    #[test]
    fn a_store_written_before_ids_keeps_its_legacy_id_until_renamed() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("shards")).unwrap();
        let mut identity = StoreIdentity::load_or_mint(tmp.path(), Some("disk-3")).unwrap();
        assert_eq!(identity.unrenamed_legacy_id(), Some("disk-3"));
        assert_eq!(
            StoreIdentity::read(tmp.path()).unwrap().as_ref(),
            Some(&identity)
        );
        let text = fs::read_to_string(StoreIdentity::path(tmp.path())).unwrap();
        assert!(
            text.contains("legacy = \"disk-3\"\nrenamed = false"),
            "{text}"
        );

        if let Some(legacy) = &mut identity.legacy {
            legacy.renamed = true;
        }
        identity.write(tmp.path()).unwrap();
        let read = StoreIdentity::read(tmp.path()).unwrap().unwrap();
        assert_eq!(read, identity);
        assert_eq!(read.unrenamed_legacy_id(), None);
        assert_eq!(read.legacy.unwrap().id, "disk-3");
    }

    #[test]
    fn a_corrupt_identity_is_refused_and_left_alone() {
        let cases = [
            "",
            "garbage",
            "id = \"disk-1\"\n",
            "id = \"st-0123456789abcdeg\"\n",
            "id = \"st-0123456789abcdef\"\nlegacy = \"disk-1\"\n",
            "id = \"st-0123456789abcdef\"\nrenamed = true\n",
            "id = \"st-0123456789abcdef\"\nlegacy = \"a b\"\nrenamed = false\n",
            "id = \"st-0123456789abcdef\"\nextra = 1\n",
        ];
        for text in cases {
            let tmp = tempfile::tempdir().unwrap();
            let path = StoreIdentity::path(tmp.path());
            fs::write(&path, text).unwrap();
            let err = StoreIdentity::load_or_mint(tmp.path(), None).unwrap_err();
            assert!(
                matches!(err, StorageError::Identity { .. }),
                "{text:?}: {err}"
            );
            assert_eq!(fs::read_to_string(&path).unwrap(), text, "never re-minted");
        }
        let tmp = tempfile::tempdir().unwrap();
        fs::write(StoreIdentity::path(tmp.path()), [0xff, 0xfe, 0]).unwrap();
        let err = StoreIdentity::read(tmp.path()).unwrap_err();
        assert!(matches!(err, StorageError::Identity { .. }), "{err}");
    }
}
