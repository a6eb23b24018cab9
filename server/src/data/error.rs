//! Why a data-layer operation failed.
//!
//! The variants say what went wrong in the data layer's own terms; the S3
//! surface turns each into the error code a client expects in one place
//! (`From<DataError> for S3Error` in `s3::errors`).

use tessera_raft::MetaError;
use tessera_storage::{ChecksumAlgorithm, StorageError};

use super::location::LocationError;
use crate::placement::PlacementError;

/// A failure of the data layer.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The body declared, or grew to, more bytes than the limit allows.
    #[error("the body exceeds {limit} bytes")]
    TooLarge {
        /// The largest body accepted.
        limit: u64,
    },
    /// No body bytes arrived within the idle timeout.
    #[error("no body bytes arrived within the idle timeout")]
    BodyTimedOut,
    /// The body could not be read to its end.
    #[error("reading the body failed: {0}")]
    IncompleteBody(String),
    /// The MD5 of the body is not the one the client declared.
    #[error("the body's MD5 does not match the declared one")]
    Md5Mismatch,
    /// A checksum of the body is not the one the client declared.
    #[error("the body's {} checksum does not match the declared one", .0.name())]
    ChecksumMismatch(ChecksumAlgorithm),
    /// The client announced a checksum trailer and did not send it.
    #[error("the announced {} checksum trailer is missing", .0.name())]
    MissingTrailer(ChecksumAlgorithm),
    /// Too few healthy stores to place a new segment.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// Writing or reading shards, or opening sealed bytes, failed.
    #[error("storage failure while {context}: {source}")]
    Storage {
        /// What was being done.
        context: &'static str,
        /// The storage layer's error.
        source: StorageError,
    },
    /// The metadata refused or could not take a read or a command.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// The key has no version (and no version id was asked for).
    #[error("no such key")]
    NoSuchKey,
    /// The version asked for does not exist.
    #[error("no such version")]
    NoSuchVersion,
    /// The version found is a delete marker, which has no data.
    #[error("version {version_id} is a delete marker")]
    DeleteMarker {
        /// The marker's version id.
        version_id: String,
        /// Whether the request named the marker by its version id (rather
        /// than finding it as the latest version).
        addressed: MarkerAddressed,
    },
    /// A stored segment record cannot be turned into shard locations.
    #[error("stored segment record: {0}")]
    SegmentRecord(#[from] LocationError),
    /// A state that cannot happen unless there is a bug.
    #[error("{0}")]
    Internal(String),
}

/// How a request reached a delete marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerAddressed {
    /// It is the latest version of the key.
    AsLatest,
    /// The request named its version id.
    ByVersionId,
}

impl DataError {
    /// A storage failure while doing `context`.
    pub(crate) fn storage(context: &'static str) -> impl FnOnce(StorageError) -> Self {
        move |source| Self::Storage { context, source }
    }
}
