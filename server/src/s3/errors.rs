//! Mapping of metadata and storage failures to the S3 errors clients expect.
//!
//! Failures that may pass (too few shard stores reachable, a store timing
//! out, no metadata quorum) are `503 ServiceUnavailable` with a
//! `Retry-After` header, which SDKs retry with back-off; the rest are 500.

use std::borrow::Cow;

use http::{HeaderMap, HeaderValue, header};
use s3s::{S3Error, S3ErrorCode, s3_error};
use tessera_raft::MetaError;
use tessera_raft::command::ApplyError;
use tessera_storage::StorageError;

/// A metadata failure as an S3 error.
pub(crate) fn meta(err: MetaError) -> S3Error {
    match err {
        MetaError::Apply(e) => apply(e),
        MetaError::NoQuorum
        | MetaError::NotLeader { .. }
        | MetaError::Shutdown
        | MetaError::Network(_) => {
            tracing::warn!(error = %err, "metadata unavailable");
            unavailable(format!("metadata is unavailable: {err}"))
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
    match err {
        StorageError::Quorum { .. } | StorageError::Timeout | StorageError::Unavailable { .. } => {
            tracing::warn!(error = %err, context, "storage unavailable");
            unavailable(format!("storage is unavailable while {context}: {err}"))
        }
        err => {
            tracing::error!(error = %err, context, "storage failure");
            let mut e = S3Error::with_source(S3ErrorCode::InternalError, Box::new(err));
            e.set_message(format!("storage failure while {context}"));
            e
        }
    }
}

/// Seconds a client refused with [`unavailable`] is asked to wait: about
/// how long the health worker takes to notice a store is back.
const RETRY_AFTER_SECS: &str = "5";

/// `503 ServiceUnavailable` with a `Retry-After` header, for a request that
/// may succeed when retried.
pub(crate) fn unavailable(message: impl Into<Cow<'static, str>>) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::ServiceUnavailable, message);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    // s3s sends these headers in place of its own: keep the XML body's type.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    e.set_headers(headers);
    e
}

/// An error whose cause is a bug or an impossible state, kept with context.
pub(crate) fn internal(context: impl std::fmt::Display) -> S3Error {
    tracing::error!(%context, "internal error");
    S3Error::with_message(S3ErrorCode::InternalError, context.to_string())
}
