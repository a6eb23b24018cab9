//! Per-object data keys and the envelope they are stored in.
//!
//! Every object version (and every multipart upload) gets a fresh
//! [`DataKey`]. It is wrapped by the cluster [`MasterKey`] with a random
//! 16-byte *key id* as context; the stored envelope is `key id ‖ wrapped key`.
//! The key id also names inline data when it is sealed, so one envelope is
//! all a reader needs.

use s3s::S3Error;
use tessera_storage::{DataKey, MasterKey, ObjectId, StorageError};

use super::errors;

/// An unwrapped data key together with the key id it was wrapped under.
pub(crate) struct ObjectKey {
    /// Context id of the wrap (and of inline sealing).
    pub(crate) id: ObjectId,
    /// The data key.
    pub(crate) key: DataKey,
}

impl ObjectKey {
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

    /// Opens an envelope written by [`ObjectKey::wrap`].
    pub(crate) fn unwrap(master: &MasterKey, envelope: &[u8]) -> Result<Self, S3Error> {
        Self::open(master, envelope)
            .map_err(|e| errors::storage(e, "unwrapping an object's data key"))
    }

    /// Opens an envelope written by [`ObjectKey::wrap`], outside a request.
    pub(crate) fn open(master: &MasterKey, envelope: &[u8]) -> Result<Self, StorageError> {
        let (id, wrapped) = envelope
            .split_first_chunk::<16>()
            .ok_or_else(|| StorageError::Format("stored data key envelope is too short".into()))?;
        let id = ObjectId(*id);
        let key = master.unwrap(wrapped, id)?;
        Ok(Self { id, key })
    }
}
