//! Small objects sealed into a blob the caller keeps in metadata.

use crate::crypto::{DataKey, open_random, seal_random};
use crate::error::StorageError;
use crate::store::ObjectId;

/// Objects up to this size are stored inline by default.
pub const DEFAULT_INLINE_THRESHOLD: usize = 4096;

const INLINE_LABEL: &[u8] = b"tessera/inline/v1";

/// Seals `plain` under the object's key, bound to `object`:
/// `version | random nonce | ciphertext | tag` (29 bytes of overhead).
pub fn seal_inline(key: &DataKey, object: ObjectId, plain: &[u8]) -> Vec<u8> {
    seal_random(key.bytes(), &[INLINE_LABEL, &object.0], plain)
}

/// Opens a blob from [`seal_inline`] for the same object.
pub fn open_inline(
    key: &DataKey,
    object: ObjectId,
    sealed: &[u8],
) -> Result<Vec<u8>, StorageError> {
    open_random(key.bytes(), &[INLINE_LABEL, &object.0], sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_round_trip_and_binding() {
        let key = DataKey::generate();
        let object = ObjectId::random();
        let sealed = seal_inline(&key, object, b"tiny");
        assert_eq!(open_inline(&key, object, &sealed).unwrap(), b"tiny");
        assert!(open_inline(&key, ObjectId::random(), &sealed).is_err());
        assert!(open_inline(&DataKey::generate(), object, &sealed).is_err());
        assert!(open_inline(&key, object, &sealed[..10]).is_err());
        assert_eq!(
            open_inline(&key, object, &seal_inline(&key, object, b"")).unwrap(),
            b""
        );
    }
}
