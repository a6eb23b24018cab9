//! Opened access-key secrets, kept so that a request does not decrypt its
//! key's sealed secret again (see [`KeyStore::open`](crate::auth::KeyStore::open)).
//!
//! An entry is the sealed secret it was opened from: it answers only for a
//! key record carrying exactly those sealed bytes. A changed secret is
//! sealed afresh (new random nonce), so it never matches the old entry and
//! is opened again; a deleted key is looked up before its secret is wanted
//! and is dropped from the cache then ([`SecretCache::forget`]). The cache
//! holds at most [`CAPACITY`] keys and starts over when full.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tessera_raft::model::AccessKey;

/// Most keys cached at once.
const CAPACITY: usize = 4096;

/// One opened secret and the sealed bytes it came from.
struct Opened {
    sealed: Vec<u8>,
    secret: String,
}

/// Secrets opened before, per access key id.
#[derive(Default)]
pub(crate) struct SecretCache {
    entries: Mutex<HashMap<String, Opened>>,
}

impl SecretCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Opened>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The plain secret of `key`: the cached one when `key` still carries
    /// the sealed secret it was opened from, else `open(key)`, cached when
    /// it succeeds.
    pub(crate) fn open(
        &self,
        key: &AccessKey,
        open: impl FnOnce(&AccessKey) -> Option<String>,
    ) -> Option<String> {
        if let Some(hit) = self.entries().get(&key.id)
            && hit.sealed == key.sealed_secret
        {
            return Some(hit.secret.clone());
        }
        let secret = open(key)?;
        let mut entries = self.entries();
        if entries.len() >= CAPACITY && !entries.contains_key(&key.id) {
            entries.clear();
        }
        entries.insert(
            key.id.clone(),
            Opened {
                sealed: key.sealed_secret.clone(),
                secret: secret.clone(),
            },
        );
        Some(secret)
    }

    /// Drops what is cached for key `id` (the key is gone).
    pub(crate) fn forget(&self, id: &str) {
        self.entries().remove(id);
    }

    /// Number of keys cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn key(id: &str, sealed: &[u8]) -> AccessKey {
        AccessKey {
            id: id.to_owned(),
            sealed_secret: sealed.to_vec(),
            name: String::new(),
            created: 0,
            allow_create_bucket: false,
            admin: false,
        }
    }

    #[test]
    fn a_secret_is_opened_once_while_its_record_is_unchanged() {
        let cache = SecretCache::default();
        let opened = Cell::new(0);
        let open = |k: &AccessKey| {
            opened.set(opened.get() + 1);
            Some(format!("secret of {}", k.id))
        };
        let k = key("AK1", b"sealed-1");
        assert_eq!(cache.open(&k, open).as_deref(), Some("secret of AK1"));
        assert_eq!(cache.open(&k, open).as_deref(), Some("secret of AK1"));
        assert_eq!(opened.get(), 1);
        // Another key is its own entry.
        assert_eq!(
            cache.open(&key("AK2", b"sealed-1"), open).as_deref(),
            Some("secret of AK2")
        );
        assert_eq!(opened.get(), 2);
    }

    #[test]
    fn a_changed_secret_is_opened_again() {
        let cache = SecretCache::default();
        assert_eq!(
            cache
                .open(&key("AK1", b"old"), |_| Some("old secret".into()))
                .as_deref(),
            Some("old secret")
        );
        assert_eq!(
            cache
                .open(&key("AK1", b"new"), |_| Some("new secret".into()))
                .as_deref(),
            Some("new secret")
        );
        // The old record no longer matches either.
        assert_eq!(
            cache
                .open(&key("AK1", b"old"), |_| Some("reopened".into()))
                .as_deref(),
            Some("reopened")
        );
    }

    #[test]
    fn failures_are_not_cached_and_forgotten_keys_are_opened_again() {
        let cache = SecretCache::default();
        let k = key("AK1", b"sealed");
        assert_eq!(cache.open(&k, |_| None), None);
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.open(&k, |_| Some("s".into())).as_deref(), Some("s"));
        cache.forget("AK1");
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.open(&k, |_| Some("t".into())).as_deref(), Some("t"));
    }

    /// Through the key store, on a real metadata member: a rotated secret
    /// is the one answered, a deleted key leaves nothing behind.
    #[tokio::test]
    async fn the_key_store_answers_the_current_secret() {
        use std::sync::Arc;

        use tessera_raft::command::Command;
        use tessera_raft::node::{MetaConfig, MetaNode};
        use tessera_storage::MasterKey;

        use crate::auth::KeyStore;
        use crate::datadir::Credentials;

        let dir = tempfile::tempdir().unwrap();
        let meta = MetaNode::start(MetaConfig::new(1, dir.path()))
            .await
            .unwrap();
        meta.bootstrap_single().await.unwrap();
        let keys = KeyStore::new(meta.clone(), Arc::new(MasterKey::generate()));
        let creds = |secret: &str| Credentials {
            access_key: "AKCACHE".into(),
            secret_key: secret.into(),
        };
        let current = || async {
            let key = keys.get("AKCACHE").await.unwrap()?;
            keys.open(&key)
        };

        keys.ensure_root(&creds("first-secret")).await.unwrap();
        assert_eq!(current().await.as_deref(), Some("first-secret"));
        assert_eq!(current().await.as_deref(), Some("first-secret"));
        assert_eq!(keys.secrets.len(), 1);

        keys.ensure_root(&creds("second-secret")).await.unwrap();
        assert_eq!(current().await.as_deref(), Some("second-secret"));

        meta.write(Command::DeleteAccessKey {
            id: "AKCACHE".into(),
        })
        .await
        .unwrap();
        assert_eq!(current().await, None);
        assert_eq!(keys.secrets.len(), 0);
        meta.shutdown().await.unwrap();
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = SecretCache::default();
        for n in 0..=CAPACITY {
            let id = format!("AK{n}");
            cache.open(&key(&id, b"s"), |_| Some("x".into()));
        }
        assert!(cache.len() <= CAPACITY);
    }
}
