//! Per-object data-encryption keys and the envelope they are stored in.
//!
//! Every object version (and every multipart upload) gets a fresh
//! [`ObjectDataKey`]: a storage [`DataKey`] that seals the object's shard
//! blocks or inline bytes. It is wrapped by the cluster [`MasterKey`] with a
//! random 16-byte *key id* as context; the envelope kept in metadata
//! (`wrapped_key` of a version) is `key id ‖ wrapped key`. The key id also
//! names inline data when it is sealed, so one envelope is all a reader needs.

use tessera_storage::{DataKey, MasterKey, ObjectId, StorageError};

/// An object's unwrapped data-encryption key, with the key id it is wrapped
/// under.
pub(crate) struct ObjectDataKey {
    /// Context id of the wrap (and of inline sealing).
    pub(crate) id: ObjectId,
    /// The key that seals the object's bytes.
    pub(crate) key: DataKey,
}

impl ObjectDataKey {
    /// A fresh key with a fresh id.
    pub(crate) fn generate() -> Self {
        Self {
            id: ObjectId::random(),
            key: DataKey::generate(),
        }
    }

    /// The envelope to store in metadata.
    pub(crate) fn wrap(&self, master: &MasterKey) -> Vec<u8> {
        let mut out = self.id.0.to_vec();
        out.extend_from_slice(&master.wrap(&self.key, self.id));
        out
    }

    /// Opens an envelope written by [`ObjectDataKey::wrap`].
    pub(crate) fn open(master: &MasterKey, envelope: &[u8]) -> Result<Self, StorageError> {
        let (id, wrapped) = envelope
            .split_first_chunk::<16>()
            .ok_or_else(|| StorageError::Format("stored data key envelope is too short".into()))?;
        let id = ObjectId(*id);
        let key = master.unwrap(wrapped, id)?;
        Ok(Self { id, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_opens_under_its_master_key_only() {
        let master = MasterKey::generate();
        let key = ObjectDataKey::generate();
        let envelope = key.wrap(&master);
        let opened = ObjectDataKey::open(&master, &envelope).unwrap();
        assert_eq!(opened.id, key.id);
        let sealed = tessera_storage::seal_inline(&key.key, key.id, b"hello");
        let plain = tessera_storage::open_inline(&opened.key, opened.id, &sealed).unwrap();
        assert_eq!(plain, b"hello");
        assert!(ObjectDataKey::open(&MasterKey::generate(), &envelope).is_err());
        assert!(ObjectDataKey::open(&master, &envelope[..10]).is_err());
    }
}
