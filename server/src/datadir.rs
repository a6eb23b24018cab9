//! The data directory's own files: the master key, the root credentials and
//! the admin token, each created once and saved owner-only (0600). The
//! directory itself and everything the server creates under it (metadata,
//! disks, shard files) is owner-only too: directories 0700, files 0600.
//!
//! ```text
//! <data-dir>/master.key     hex of the 32-byte cluster master key
//! <data-dir>/credentials    the root access key (TOML: access_key, secret_key)
//! <data-dir>/admin.token    bearer token of the admin API
//! <data-dir>/meta/          raft log and state machine
//! <data-dir>/disks/disk-N/  local shard stores (each knows its id: `store.id`)
//! ```

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use tessera_storage::MasterKey;

/// File name of the master key inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// File name of the root credentials inside the data directory.
pub const CREDENTIALS_FILE: &str = "credentials";
/// File name of the admin token inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// An S3 access key id and its secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// A fresh random key: id `TK` + 18 upper-case alphanumerics, 40-character secret.
    pub fn generate() -> Self {
        let id: String = random_string(18).to_ascii_uppercase();
        Credentials {
            access_key: format!("TK{id}"),
            secret_key: random_string(40),
        }
    }
}

/// A random alphanumeric string of `len` characters.
pub fn random_string(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Paths of everything inside one data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Creates the directory (and parents) if needed, owner-only.
    pub fn open(root: &Path) -> Result<Self> {
        tessera_storage::store::create_private_dir(root)
            .with_context(|| format!("creating data directory {}", root.display()))?;
        Ok(DataDir {
            root: root.to_path_buf(),
        })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the raft member keeps its state.
    pub fn meta_dir(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// Where the scrub keeps its position and when it last finished.
    pub fn scrub_state_path(&self) -> PathBuf {
        self.root.join("scrub.state")
    }

    /// Where the lifecycle worker keeps when its last run finished.
    pub fn lifecycle_state_path(&self) -> PathBuf {
        self.root.join("lifecycle.state")
    }

    /// Where a storage node keeps the bad shards its scrub found until a
    /// gateway acknowledges them.
    pub fn scrub_findings_path(&self) -> PathBuf {
        self.root.join("scrub.findings")
    }

    /// Root directory of local disk `n` (1-based): `disks/disk-N`.
    pub fn disk_dir(&self, n: usize) -> PathBuf {
        self.root.join("disks").join(Self::legacy_disk_id(n))
    }

    /// `disk-N`: the directory name of local disk `n`, which releases
    /// before store ids also used as its store id.
    pub fn legacy_disk_id(n: usize) -> String {
        format!("disk-{n}")
    }

    /// The master key, generated and saved at first use.
    pub fn master_key(&self) -> Result<MasterKey> {
        if let Some(key) = self.saved_master_key()? {
            return Ok(key);
        }
        let path = self.root.join(MASTER_KEY_FILE);
        let key = MasterKey::generate();
        self.save_master_key(&key)?;
        tracing::info!(path = %path.display(), "generated a new master key");
        Ok(key)
    }

    /// The master key saved here, which must exist (a gateway of a
    /// cluster shares the cluster's key, from `tessera init` or another
    /// gateway, and never makes one up).
    pub fn existing_master_key(&self) -> Result<MasterKey> {
        self.saved_master_key()?.with_context(|| {
            format!(
                "{} is missing: every gateway of a cluster needs the cluster's master key \
                 (tessera init writes it; copy it from another gateway, mode 0600)",
                self.root.join(MASTER_KEY_FILE).display()
            )
        })
    }

    fn saved_master_key(&self) -> Result<Option<MasterKey>> {
        let path = self.root.join(MASTER_KEY_FILE);
        let Some(text) = read_secret_file(&path)? else {
            return Ok(None);
        };
        let bytes =
            hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
        MasterKey::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: invalid master key: {e}", path.display()))
    }

    /// Saves `key` as this directory's master key (`tessera init` gives
    /// every gateway the same one). Refuses to replace one.
    pub fn save_master_key(&self, key: &MasterKey) -> Result<()> {
        let path = self.root.join(MASTER_KEY_FILE);
        refuse_existing(&path)?;
        write_private_file(&path, &hex::encode(key.to_bytes()))
    }

    /// The root credentials: `given` (from the environment or config) when
    /// set, else the saved ones, else freshly generated and saved. The bool is
    /// true when they were generated now (first start).
    pub fn root_credentials(&self, given: Option<Credentials>) -> Result<(Credentials, bool)> {
        if let Some(creds) = given {
            return Ok((creds, false));
        }
        let path = self.root.join(CREDENTIALS_FILE);
        if let Some(text) = read_secret_file(&path)? {
            let creds: Credentials =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            return Ok((creds, false));
        }
        let creds = Credentials::generate();
        self.save_root_credentials(&creds)?;
        Ok((creds, true))
    }

    /// Saves `creds` as the root credentials (`tessera init` gives every
    /// gateway the same ones). Refuses to replace them.
    pub fn save_root_credentials(&self, creds: &Credentials) -> Result<()> {
        let path = self.root.join(CREDENTIALS_FILE);
        refuse_existing(&path)?;
        write_private_file(&path, &toml::to_string(creds)?)
    }

    /// The admin API token, generated and saved at first use.
    pub fn admin_token(&self) -> Result<String> {
        let path = self.admin_token_path();
        if let Some(text) = read_secret_file(&path)? {
            let token = text.trim().to_owned();
            if token.is_empty() {
                bail!("{} is empty", path.display());
            }
            return Ok(token);
        }
        let token = random_string(48);
        write_private_file(&path, &token)?;
        Ok(token)
    }

    /// Path of the admin token file (the CLI reads it).
    pub fn admin_token_path(&self) -> PathBuf {
        self.root.join(ADMIN_TOKEN_FILE)
    }
}

/// Reads a secret file, or `None` if it does not exist. Refuses files that
/// others can read.
fn read_secret_file(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn refuse_existing(path: &Path) -> Result<()> {
    if path.exists() {
        bail!("{} exists already; not replacing it", path.display());
    }
    Ok(())
}

/// Creates `path` with `contents` and permission bits `mode` (0o600 for
/// secrets), its contents synced; fails if it exists.
pub(crate) fn write_new_file(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes a file only its owner may read (mode 0600) through a temp file,
/// durably (file and directory fsync'd), with a line break after `contents`.
pub(crate) fn write_private_file(path: &Path, contents: &str) -> Result<()> {
    tessera_storage::store::write_private_file(path, contents)
        .with_context(|| format!("saving {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_created_once_with_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let (first, generated) = dir.root_credentials(None).unwrap();
        assert!(generated);
        let (again, generated) = dir.root_credentials(None).unwrap();
        assert!(!generated);
        assert_eq!(first, again);
        let token = dir.admin_token().unwrap();
        assert_eq!(token, dir.admin_token().unwrap());
        let key = dir.master_key().unwrap();
        assert_eq!(key.to_bytes(), dir.master_key().unwrap().to_bytes());
        for name in [MASTER_KEY_FILE, CREDENTIALS_FILE, ADMIN_TOKEN_FILE] {
            let mode = fs::metadata(tmp.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn refuses_world_readable_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        dir.admin_token().unwrap();
        let path = dir.admin_token_path();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(dir.admin_token().is_err());
    }
}
