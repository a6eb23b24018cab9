//! Turning a request body into stored data.
//!
//! Small bodies (up to the inline threshold) are sealed under the object's
//! data key and kept in metadata; larger ones stream through
//! [`tessera_storage::write_object`] into `k + m` shards on distinct stores.
//! Either way the MD5 (ETag) and every requested `x-amz-checksum-*` are
//! computed on the way, then compared with what the client declared in
//! `Content-MD5`, in checksum headers or in aws-chunked trailers. A mismatch
//! answers `BadDigest` and leaves nothing behind.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use http::HeaderMap;
use s3s::{S3Error, TrailingHeaders, s3_error};
use tessera_raft::model::{Checksum, Segment};
use tessera_storage::checksum::Hasher;
use tessera_storage::{ChecksumAlgorithm, ObjectId, WriteOptions};

use super::Gateway;
use super::errors;
use super::keys::ObjectKey;
use crate::location;

/// The integrity claims a client made about a body.
#[derive(Default)]
pub(crate) struct Integrity {
    /// Decoded `Content-MD5`.
    md5: Option<[u8; 16]>,
    /// `x-amz-checksum-*` header values (base64), by algorithm.
    declared: Vec<(ChecksumAlgorithm, String)>,
    /// Algorithm whose value arrives as an aws-chunked trailer.
    trailer: Option<ChecksumAlgorithm>,
    /// Further algorithms the client asked to have computed and stored.
    requested: Vec<ChecksumAlgorithm>,
    /// Handle on the trailers, readable once the body is consumed.
    trailers: Option<TrailingHeaders>,
}

fn header_name(alg: ChecksumAlgorithm) -> String {
    format!("x-amz-checksum-{}", alg.name().to_ascii_lowercase())
}

fn algorithm(name: &str) -> Result<ChecksumAlgorithm, S3Error> {
    ChecksumAlgorithm::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| s3_error!(InvalidRequest, "unsupported checksum algorithm {name}"))
}

impl Integrity {
    /// The claims of a request: its headers, `Content-MD5`, the requested
    /// algorithm (`x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm`)
    /// and its trailers.
    pub(crate) fn from_request(
        headers: &HeaderMap,
        content_md5: Option<&str>,
        requested: Option<&str>,
        trailers: Option<TrailingHeaders>,
    ) -> Result<Self, S3Error> {
        let md5 = content_md5
            .map(|v| {
                BASE64
                    .decode(v.trim())
                    .ok()
                    .and_then(|d| <[u8; 16]>::try_from(d).ok())
                    .ok_or_else(|| s3_error!(InvalidDigest))
            })
            .transpose()?;
        let mut declared = Vec::new();
        for alg in ChecksumAlgorithm::ALL {
            if let Some(v) = headers.get(header_name(alg)) {
                let v = v.to_str().map_err(|_| {
                    s3_error!(InvalidRequest, "invalid {} header", header_name(alg))
                })?;
                declared.push((alg, v.trim().to_owned()));
            }
        }
        let trailer = headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.trim()
                    .to_ascii_lowercase()
                    .strip_prefix("x-amz-checksum-")
                    .map(str::to_owned)
            })
            .map(|n| algorithm(&n))
            .transpose()?;
        let requested = requested.map(algorithm).transpose()?.into_iter().collect();
        Ok(Self {
            md5,
            declared,
            trailer,
            requested,
            trailers,
        })
    }

    /// Every algorithm to compute, without duplicates.
    fn algorithms(&self) -> Vec<ChecksumAlgorithm> {
        let mut out: Vec<ChecksumAlgorithm> = Vec::new();
        let all = self
            .declared
            .iter()
            .map(|(a, _)| *a)
            .chain(self.trailer)
            .chain(self.requested.iter().copied());
        for a in all {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Compares the computed digests with every claim.
    fn verify(
        &self,
        md5: &[u8; 16],
        computed: &[(ChecksumAlgorithm, Vec<u8>)],
    ) -> Result<(), S3Error> {
        if self.md5.is_some_and(|m| &m != md5) {
            return Err(s3_error!(
                BadDigest,
                "The Content-MD5 you specified did not match what we received."
            ));
        }
        let mut claims = self.declared.clone();
        if let (Some(alg), Some(handle)) = (self.trailer, &self.trailers) {
            let value = handle
                .read(|h| {
                    h.get(header_name(alg))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                })
                .flatten()
                .ok_or_else(|| s3_error!(InvalidRequest, "missing trailer {}", header_name(alg)))?;
            claims.push((alg, value));
        }
        for (alg, claimed) in claims {
            let got = computed
                .iter()
                .find(|(a, _)| *a == alg)
                .map(|(_, d)| BASE64.encode(d))
                .unwrap_or_default();
            if got != claimed {
                return Err(s3_error!(
                    BadDigest,
                    "The {} you specified did not match the calculated checksum.",
                    alg.name()
                ));
            }
        }
        Ok(())
    }
}

/// Where an ingested body went.
pub(crate) enum Stored {
    /// Sealed bytes to keep in metadata.
    Inline(Vec<u8>),
    /// Shards on stores.
    Segment(Segment),
}

/// A body that was stored and verified.
pub(crate) struct Ingested {
    /// Plain-text size.
    pub(crate) size: u64,
    /// Hex MD5 (the ETag of a single-part object).
    pub(crate) etag: String,
    /// The computed checksums, as stored.
    pub(crate) checksums: Vec<Checksum>,
    /// Where the bytes are.
    pub(crate) stored: Stored,
}

type BodyStream = futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

/// The largest body one `PutObject` or `UploadPart` may declare (S3: 5 GiB).
const MAX_UPLOAD_SIZE: u64 = 5 << 30;

/// Any byte stream as the stream shape the storage writer accepts.
pub(crate) fn body_stream<S, E>(s: S) -> BodyStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    s.map_err(std::io::Error::other).boxed()
}

/// A request's `Content-Length` as a size hint for the writer.
pub(crate) fn length_hint(content_length: Option<i64>) -> Option<u64> {
    content_length.and_then(|l| u64::try_from(l).ok())
}

/// A request's body (none: empty) as a body stream.
pub(crate) fn request_body(body: Option<s3s::dto::StreamingBlob>) -> BodyStream {
    match body {
        Some(b) => body_stream(b),
        None => futures::stream::empty().boxed(),
    }
}

impl Gateway {
    /// Stores a body (`size_hint` bytes, when known) under `key` as segment
    /// `part` of a fresh storage object (or inline when `inline_ok` and it is
    /// small), verifying `integrity`. A declared size above
    /// [`MAX_UPLOAD_SIZE`] is refused with `EntityTooLarge`, and so is a
    /// body without a declared size once it grows past it.
    pub(crate) async fn ingest(
        &self,
        key: &ObjectKey,
        (body, size_hint): (BodyStream, Option<u64>),
        part: u32,
        inline_ok: bool,
        integrity: &Integrity,
    ) -> Result<Ingested, S3Error> {
        // Refused before a byte of the body is read, as S3 does.
        if size_hint.is_some_and(|n| n > MAX_UPLOAD_SIZE) {
            return Err(s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size."
            ));
        }
        let mut body = capped(
            with_idle_timeout(body, self.settings.body_idle_timeout),
            MAX_UPLOAD_SIZE,
        );
        let algorithms = integrity.algorithms();
        let threshold = if inline_ok {
            self.settings.inline_threshold
        } else {
            0
        };
        // Read ahead up to the inline threshold to learn whether the body is small.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0usize;
        let mut ended = false;
        while head_len <= threshold {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| body_failure(&e))?;
                    head_len += chunk.len();
                    head.push(chunk);
                }
                None => {
                    ended = true;
                    break;
                }
            }
        }
        if ended && inline_ok {
            let plain: Vec<u8> = head.concat();
            let mut hasher = Hasher::new(&algorithms);
            hasher.update(&plain);
            let sums = hasher.finish();
            integrity.verify(&sums.md5, &sums.others)?;
            return Ok(Ingested {
                size: plain.len() as u64,
                etag: hex::encode(sums.md5),
                checksums: to_model(&sums.others),
                stored: Stored::Inline(tessera_storage::seal_inline(&key.key, key.id, &plain)),
            });
        }
        let body = futures::stream::iter(head.into_iter().map(Ok)).chain(body);
        let segment_id = ObjectId::random();
        let geometry = self.settings.geometry;
        let width = geometry.total_shards();
        let quorum = self
            .settings
            .write_quorum
            .unwrap_or(width.min(geometry.k() + 1));
        let placement = self
            .stores
            .choose_for_write(width, quorum)
            .map_err(|e| errors::unavailable(e.to_string()))?;
        let stores = placement.stores;
        let opts = WriteOptions {
            geometry,
            checksums: algorithms,
            stripes_in_flight: self.settings.stripes_in_flight,
            write_quorum: Some(quorum),
            unavailable: placement.skipped,
            budget: Some(self.settings.write_budget.clone()),
            size_hint,
        };
        let outcome =
            tessera_storage::write_object(&stores, segment_id, part, &key.key, &opts, body)
                .await
                .map_err(|e| match e {
                    tessera_storage::StorageError::Body(cause) => body_failure(&*cause),
                    other => errors::storage(other, "writing shards"),
                })?;
        let segment = Segment {
            object_id: segment_id.0,
            part,
            size: outcome.size,
            data_shards: geometry.data_shards,
            parity_shards: geometry.parity_shards,
            block_size: geometry.block_size,
            placement: stores.iter().map(|s| s.id().to_owned()).collect(),
            missing: outcome.missing_shards.clone(),
        };
        if let Err(e) = integrity.verify(&outcome.checksums.md5, &outcome.checksums.others) {
            self.discard(vec![segment]);
            return Err(e);
        }
        Ok(Ingested {
            size: outcome.size,
            etag: hex::encode(outcome.checksums.md5),
            checksums: to_model(&outcome.checksums.others),
            stored: Stored::Segment(segment),
        })
    }

    /// Deletes the shards of segments that will never be committed (best
    /// effort, in the background; the orphan sweep removes what this misses).
    pub(crate) fn discard(&self, segments: Vec<Segment>) {
        let stores = self.stores.clone();
        tokio::spawn(async move {
            for seg in segments {
                let Ok(shards) = location::shards(&seg) else {
                    continue; // cannot happen: this gateway built the segment itself
                };
                for (id, store_id) in shards {
                    let Some(store) = stores.get(store_id) else {
                        continue;
                    };
                    if let Err(e) = store.delete(id).await {
                        tracing::warn!(error = %e, store = store.id(), "discarding shard failed");
                    }
                }
            }
        });
    }
}

/// A body that went on past the largest upload, having declared no size.
#[derive(Debug, thiserror::Error)]
#[error("the request body exceeds {0} bytes")]
struct BodyTooLarge(u64);

/// `body`, failing with [`BodyTooLarge`] once more than `limit` bytes came.
fn capped(body: BodyStream, limit: u64) -> BodyStream {
    let mut seen = 0u64;
    body.map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > limit {
            return Err(std::io::Error::other(BodyTooLarge(limit)));
        }
        Ok(chunk)
    })
    .boxed()
}

/// The S3 error for a body that could not be read: `RequestTimeout` when the
/// client stopped sending, `EntityTooLarge` past the largest upload,
/// `IncompleteBody` otherwise.
fn body_failure(e: &(dyn std::error::Error + 'static)) -> S3Error {
    match e.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::TimedOut => s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period."
        ),
        Some(io) if io.get_ref().is_some_and(|inner| inner.is::<BodyTooLarge>()) => {
            s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size."
            )
        }
        _ => s3_error!(IncompleteBody, "reading the request body failed: {e}"),
    }
}

/// Fails `body` with a `TimedOut` error when no bytes arrive for `idle`: a
/// stalled upload must not hold its share of the write budget forever.
fn with_idle_timeout(body: BodyStream, idle: std::time::Duration) -> BodyStream {
    futures::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(item)) => Some((item, Some(body))),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no request body bytes within the idle timeout",
                )),
                None,
            )),
        }
    })
    .boxed()
}

fn to_model(computed: &[(ChecksumAlgorithm, Vec<u8>)]) -> Vec<Checksum> {
    computed
        .iter()
        .map(|(a, d)| Checksum {
            algorithm: a.name().to_owned(),
            value: BASE64.encode(d),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_past_the_cap_fails_as_entity_too_large() {
        let body = || {
            let chunks = ["abcd", "efgh", "ij"].map(|c| Ok(Bytes::from_static(c.as_bytes())));
            futures::stream::iter(chunks).boxed()
        };
        let exact: Vec<_> = capped(body(), 10).collect().await;
        assert!(exact.iter().all(Result::is_ok), "{exact:?}");
        let mut over = capped(body(), 9);
        assert!(over.next().await.is_some_and(|c| c.is_ok()));
        assert!(over.next().await.is_some_and(|c| c.is_ok()));
        let Some(Err(e)) = over.next().await else {
            panic!("the third chunk passes the cap");
        };
        assert_eq!(*body_failure(&e).code(), s3s::S3ErrorCode::EntityTooLarge);
        let cut = std::io::Error::other("connection reset");
        assert_eq!(*body_failure(&cut).code(), s3s::S3ErrorCode::IncompleteBody);
    }
}
