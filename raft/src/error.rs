//! The error type of the metadata plane.

use crate::command::ApplyError;

/// Why a metadata operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetaError {
    /// The state machine refused the command (deterministically, on every member).
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// No quorum of voters answers: nothing can be committed or read linearizably now.
    #[error("metadata has no quorum")]
    NoQuorum,
    /// This member is not the leader and could not forward the request.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this member knows of, if any.
        leader: Option<u64>,
    },
    /// The local redb store failed.
    #[error("metadata storage: {0}")]
    Storage(String),
    /// A stored record could not be decoded (or encoded).
    #[error("metadata encoding: {0}")]
    Encoding(String),
    /// Talking to another member failed.
    #[error("raft network: {0}")]
    Network(String),
    /// TLS material is missing or invalid.
    #[error("cluster {0}")]
    Tls(#[from] tessera_net::NetError),
    /// Bad membership or configuration request.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The member is shutting down.
    #[error("metadata member is shutting down")]
    Shutdown,
}

macro_rules! storage_error_from {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for MetaError {
            fn from(e: $t) -> Self {
                MetaError::Storage(e.to_string())
            }
        })*
    };
}

storage_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    std::io::Error,
);

impl From<postcard::Error> for MetaError {
    fn from(e: postcard::Error) -> Self {
        MetaError::Encoding(e.to_string())
    }
}
