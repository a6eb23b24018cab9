//! The body encoding of every RPC: postcard, compact and schema-less, so
//! both sides must agree on the types (they are built from one release).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes an RPC request or answer.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

/// Decodes an RPC request or answer written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}
