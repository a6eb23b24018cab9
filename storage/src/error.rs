//! The crate's error type.

use crate::store::ShardId;

/// Everything that can go wrong in the data plane.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The shard (or object data) does not exist on that store.
    #[error("shard {0} not found")]
    NotFound(ShardId),
    /// Stored bytes failed a checksum, tag or structure check.
    #[error("corrupt data in {shard}: {reason}")]
    Corrupt {
        /// The shard holding the bad bytes.
        shard: ShardId,
        /// What check failed.
        reason: String,
    },
    /// A malformed shard file header or trailer (no shard id known yet).
    #[error("malformed shard file: {0}")]
    Format(String),
    /// An I/O error from a store, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// The operation and path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The caller's body stream failed.
    #[error("body stream failed: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Too few shards could be written or read.
    #[error("quorum not reached: {needed} shards needed, {available} available")]
    Quorum {
        /// Shards required.
        needed: usize,
        /// Shards that succeeded.
        available: usize,
    },
    /// A shard store did not answer in time.
    #[error("shard store timed out")]
    Timeout,
    /// The geometry (k, m, block size) or the store set is unusable.
    #[error("invalid geometry: {0}")]
    InvalidGeometry(String),
    /// A byte range outside the object.
    #[error("invalid range {start}..{end} for an object of {size} bytes")]
    InvalidRange {
        /// Requested start.
        start: u64,
        /// Requested end (exclusive).
        end: u64,
        /// Object size.
        size: u64,
    },
    /// The erasure codec refused its input (a bug or a corrupt length).
    #[error("erasure codec: {0}")]
    Codec(String),
    /// A key, wrapped key or sealed blob failed to open.
    #[error("cryptographic check failed: {0}")]
    Crypto(&'static str),
    /// A store's identity file is unreadable or malformed: the store refuses
    /// to open rather than take a new id (which would orphan its shards).
    #[error("store identity {path} is unusable: {reason}")]
    Identity {
        /// The identity file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A store is unavailable for another reason (e.g. a remote node refused).
    #[error("store {store} unavailable: {reason}")]
    Unavailable {
        /// Store id.
        store: String,
        /// Why.
        reason: String,
    },
}

impl StorageError {
    /// An [`StorageError::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }

    /// A [`StorageError::Corrupt`] for `shard`.
    pub fn corrupt(shard: ShardId, reason: impl Into<String>) -> Self {
        StorageError::Corrupt {
            shard,
            reason: reason.into(),
        }
    }
}
