//! Mapping of metadata, storage and data-layer failures to the S3 errors
//! clients expect.
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

use super::integrity::header_name;
use crate::data::{DataError, MarkerAddressed};

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
        ApplyError::AccessDenied(msg) => s3_error!(AccessDenied, "{msg}"),
        ApplyError::InvalidBucketState(msg) => s3_error!(InvalidBucketState, "{msg}"),
        ApplyError::AclWithObjectOwnership => s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ),
        ApplyError::AclNotSupported => s3_error!(
            AccessControlListNotSupported,
            "{}",
            tessera_raft::access::ACLS_DISABLED
        ),
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
    // Refused before its body was read, a request leaves the connection
    // unusable: say so, or the client's next request on it meets a closed
    // connection instead of an answer.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    e.set_headers(headers);
    e
}

/// An error whose cause is a bug or an impossible state, kept with context.
pub(crate) fn internal(context: impl std::fmt::Display) -> S3Error {
    tracing::error!(%context, "internal error");
    S3Error::with_message(S3ErrorCode::InternalError, context.to_string())
}

/// A data-layer failure as the S3 error a client expects.
impl From<DataError> for S3Error {
    fn from(err: DataError) -> Self {
        match err {
            DataError::TooLarge { .. } => s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size."
            ),
            DataError::BodyTimedOut => s3_error!(
                RequestTimeout,
                "Your socket connection to the server was not read from or written to within the timeout period."
            ),
            DataError::IncompleteBody(cause) => {
                s3_error!(IncompleteBody, "reading the request body failed: {cause}")
            }
            DataError::Md5Mismatch => s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ),
            DataError::ChecksumMismatch(alg) => s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                alg.name()
            ),
            DataError::MissingTrailer(alg) => {
                s3_error!(InvalidRequest, "missing trailer {}", header_name(alg))
            }
            DataError::Placement(e) => unavailable(e.to_string()),
            DataError::Storage { context, source } => storage(source, context),
            DataError::Meta(e) => meta(e),
            DataError::NoSuchBucket => s3_error!(NoSuchBucket),
            DataError::NoSuchKey => s3_error!(NoSuchKey),
            DataError::NoSuchVersion => s3_error!(NoSuchVersion),
            DataError::DeleteMarker {
                version_id,
                addressed,
            } => {
                let mut e = match addressed {
                    MarkerAddressed::AsLatest => s3_error!(NoSuchKey),
                    MarkerAddressed::ByVersionId => s3_error!(
                        MethodNotAllowed,
                        "The specified method is not allowed against this resource."
                    ),
                };
                let mut headers = HeaderMap::new();
                headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
                if let Ok(v) = HeaderValue::from_str(&version_id) {
                    headers.insert("x-amz-version-id", v);
                }
                e.set_headers(headers);
                e
            }
            e @ (DataError::SegmentRecord(_) | DataError::Internal(_)) => internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_storage::ChecksumAlgorithm;

    use super::*;
    use crate::placement::PlacementError;

    fn code(err: DataError) -> S3ErrorCode {
        S3Error::from(err).code().clone()
    }

    #[test]
    fn data_errors_keep_their_s3_codes() {
        assert_eq!(
            code(DataError::TooLarge { limit: 1 }),
            S3ErrorCode::EntityTooLarge
        );
        assert_eq!(code(DataError::BodyTimedOut), S3ErrorCode::RequestTimeout);
        assert_eq!(
            code(DataError::IncompleteBody("reset".into())),
            S3ErrorCode::IncompleteBody
        );
        assert_eq!(code(DataError::Md5Mismatch), S3ErrorCode::BadDigest);
        assert_eq!(
            code(DataError::ChecksumMismatch(ChecksumAlgorithm::Crc32)),
            S3ErrorCode::BadDigest
        );
        assert_eq!(
            code(DataError::MissingTrailer(ChecksumAlgorithm::Crc32)),
            S3ErrorCode::InvalidRequest
        );
        let placement = DataError::Placement(PlacementError::NotEnoughStores {
            needed: 6,
            available: 2,
        });
        let unavailable = S3Error::from(placement);
        assert_eq!(*unavailable.code(), S3ErrorCode::ServiceUnavailable);
        assert!(
            unavailable
                .headers()
                .is_some_and(|h| h.contains_key(header::RETRY_AFTER))
        );
        let storage = DataError::Storage {
            context: "reading shards",
            source: StorageError::Timeout,
        };
        assert_eq!(code(storage), S3ErrorCode::ServiceUnavailable);
        assert_eq!(
            code(DataError::Meta(MetaError::NoQuorum)),
            S3ErrorCode::ServiceUnavailable
        );
        assert_eq!(code(DataError::NoSuchVersion), S3ErrorCode::NoSuchVersion);
        assert_eq!(
            code(DataError::Internal("bug".into())),
            S3ErrorCode::InternalError
        );
    }

    #[test]
    fn delete_markers_answer_with_their_headers() {
        let marker = |addressed| DataError::DeleteMarker {
            version_id: "v1".into(),
            addressed,
        };
        let latest = S3Error::from(marker(MarkerAddressed::AsLatest));
        assert_eq!(*latest.code(), S3ErrorCode::NoSuchKey);
        let headers = latest.headers().cloned().unwrap_or_default();
        assert_eq!(headers.get("x-amz-delete-marker").unwrap(), "true");
        assert_eq!(headers.get("x-amz-version-id").unwrap(), "v1");
        let named = S3Error::from(marker(MarkerAddressed::ByVersionId));
        assert_eq!(*named.code(), S3ErrorCode::MethodNotAllowed);
    }
}
