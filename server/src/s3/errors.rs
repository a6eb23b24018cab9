//! Mapping of metadata and storage failures to the S3 errors clients expect.

use s3s::{S3Error, S3ErrorCode, s3_error};
use tessera_raft::MetaError;
use tessera_raft::command::ApplyError;
use tessera_storage::StorageError;

/// A metadata failure as an S3 error.
pub(crate) fn meta(err: MetaError) -> S3Error {
    match err {
        MetaError::Apply(e) => apply(e),
        MetaError::NoQuorum | MetaError::NotLeader { .. } | MetaError::Shutdown => {
            tracing::warn!(error = %err, "metadata unavailable");
            s3_error!(ServiceUnavailable, "metadata is unavailable: {err}")
        }
        other => {
            tracing::error!(error = %other, "metadata failure");
            S3Error::with_source(S3ErrorCode::InternalError, Box::new(other))
        }
    }
}

/// A deterministic refusal of the state machine as an S3 error.
pub(crate) fn apply(err: ApplyError) -> S3Error {
    match err {
        ApplyError::NoSuchBucket => s3_error!(NoSuchBucket),
        ApplyError::BucketExists { .. } => s3_error!(BucketAlreadyExists),
        ApplyError::BucketNotEmpty => s3_error!(BucketNotEmpty),
        ApplyError::NoSuchKey => s3_error!(NoSuchKey),
        ApplyError::NoSuchVersion => s3_error!(NoSuchVersion),
        ApplyError::NoSuchUpload => s3_error!(NoSuchUpload),
        ApplyError::PreconditionFailed => s3_error!(PreconditionFailed),
        ApplyError::InvalidPart(n) => s3_error!(
            InvalidPart,
            "part {n} was not uploaded or its ETag does not match"
        ),
        ApplyError::InvalidPartOrder => s3_error!(InvalidPartOrder),
        ApplyError::EntityTooSmall(n) => s3_error!(
            EntityTooSmall,
            "part {n} is smaller than the minimum allowed size"
        ),
        ApplyError::InvalidRequest(msg) => s3_error!(InvalidRequest, "{msg}"),
        other @ (ApplyError::NoSuchAccessKey | ApplyError::NoSuchNode) => {
            S3Error::with_source(S3ErrorCode::InternalError, Box::new(other))
        }
    }
}

/// A storage failure (while writing or reading shards) as an S3 error.
pub(crate) fn storage(err: StorageError, context: &str) -> S3Error {
    tracing::error!(error = %err, context, "storage failure");
    let mut e = S3Error::with_source(S3ErrorCode::InternalError, Box::new(err));
    e.set_message(format!("storage failure while {context}"));
    e
}

/// An error whose cause is a bug or an impossible state, kept with context.
pub(crate) fn internal(context: impl std::fmt::Display) -> S3Error {
    tracing::error!(%context, "internal error");
    S3Error::with_message(S3ErrorCode::InternalError, context.to_string())
}
