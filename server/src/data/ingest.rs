//! Turning a body into stored, verified data.
//!
//! A single-part object's small body (up to the inline threshold) is sealed
//! under the object's data key and kept in metadata; anything else streams
//! through [`tessera_storage::write_object`] into `k + m` shards on distinct
//! stores, or a copy of them on each site the settings name (the write
//! waits for every site up, or with asynchronous site replication for one
//! copy, its own site's, the site replicator writing the others). Either way the MD5 (ETag) and every checksum the [`Integrity`]
//! names are computed on the way, then checked against its claims: a
//! mismatch fails and leaves nothing behind. A body is cut off when it
//! passes its size limit or sends nothing for the body idle timeout.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tessera_raft::model::{Checksum, ObjectVersion, Segment};
use tessera_storage::checksum::Hasher;
use tessera_storage::{Geometry, ObjectId, StorageError, WriteOptions};

use super::data_key::ObjectDataKey;
use super::integrity::{self, Integrity};
use super::policy::{self, SiteReplication, StoragePolicy};
use super::{DataError, DataPlane};

/// The bytes of a body, as the storage writer takes them.
pub(crate) type BodyStream = futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A body to store: its bytes and, when it was declared, its length.
pub(crate) struct Body {
    /// The bytes.
    pub(crate) stream: BodyStream,
    /// The declared length, if any (checked against the size limit before a
    /// byte is read, and a hint for the writer).
    pub(crate) size_hint: Option<u64>,
}

/// Any byte stream as a [`BodyStream`].
pub(crate) fn body_stream<S, E>(s: S) -> BodyStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    s.map_err(std::io::Error::other).boxed()
}

/// What a stored body becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    /// The data of a single-part object: segment part 1, sealed inline in
    /// the metadata when it is small.
    Object,
    /// Part `n` of a multipart upload: always shards.
    Part(u32),
}

impl Destination {
    /// The part number of the segment written.
    fn part(self) -> u32 {
        match self {
            Destination::Object => 1,
            Destination::Part(n) => n,
        }
    }

    /// Whether a small body may be kept inline.
    fn may_inline(self) -> bool {
        self == Destination::Object
    }
}

/// How to store one body.
pub(crate) struct IngestOptions<'a> {
    /// The bucket it goes to (whose storage policy applies).
    pub(crate) bucket: &'a str,
    /// What the body becomes.
    pub(crate) destination: Destination,
    /// The largest body accepted, in bytes ([`DataError::TooLarge`] past it).
    pub(crate) max_size: u64,
    /// The claims to check and the checksums to compute.
    pub(crate) integrity: &'a Integrity,
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

impl DataPlane {
    /// Stores `body` under `key` as `opts` say, as a fresh storage object,
    /// verifying `opts.integrity`. A body that declares more than
    /// `opts.max_size` bytes is refused before a byte of it is read; one
    /// that declared no size fails once it grows past it.
    pub(crate) async fn ingest(
        &self,
        key: &ObjectDataKey,
        body: Body,
        opts: IngestOptions<'_>,
    ) -> Result<Ingested, DataError> {
        let IngestOptions {
            bucket,
            destination,
            max_size,
            integrity,
        } = opts;
        if body.size_hint.is_some_and(|n| n > max_size) {
            return Err(DataError::TooLarge { limit: max_size });
        }
        let mut stream = capped(
            with_idle_timeout(body.stream, self.settings.body_idle_timeout),
            max_size,
        );
        let algorithms = integrity.algorithms();
        let threshold = if destination.may_inline() {
            self.settings.inline_threshold
        } else {
            0
        };
        // Read ahead up to the inline threshold to learn whether the body is small.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0usize;
        let mut ended = false;
        while head_len <= threshold {
            match stream.next().await {
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
        if ended && destination.may_inline() {
            let plain: Vec<u8> = head.concat();
            let mut hasher = Hasher::new(&algorithms);
            hasher.update(&plain);
            let sums = hasher.finish();
            integrity.verify(&sums.md5, &sums.others)?;
            return Ok(Ingested {
                size: plain.len() as u64,
                etag: hex::encode(sums.md5),
                checksums: integrity::to_model(&sums.others),
                stored: Stored::Inline(tessera_storage::seal_inline(&key.key, key.id, &plain)),
            });
        }
        let stream = futures::stream::iter(head.into_iter().map(Ok)).chain(stream);
        let segment_id = ObjectId::random();
        let part = destination.part();
        let Layout {
            geometry,
            site_copies,
            replication,
        } = self.write_layout(bucket).await;
        let width = geometry.total_shards();
        let quorum = self.settings.write_quorum_for(geometry);
        let seed = &segment_id.0;
        let placement = match (site_copies.is_empty(), replication) {
            (true, _) => self.stores.choose_for_write(width, quorum, seed)?,
            (false, SiteReplication::Sync) => {
                self.stores
                    .choose_copies(&site_copies, width, quorum, seed)?
            }
            (false, SiteReplication::Async) => {
                let home = self.stores.home_site();
                self.stores
                    .choose_one_copy(&site_copies, home.as_deref(), width, quorum, seed)?
            }
        };
        let stores = placement.stores;
        let write = WriteOptions {
            geometry,
            checksums: algorithms,
            stripes_in_flight: self.settings.stripes_in_flight,
            write_quorum: Some(quorum),
            unavailable: placement.skipped,
            budget: Some(self.settings.write_budget.clone()),
            size_hint: body.size_hint,
            stall_timeout: Some(self.settings.shard_timeout),
            on_failed_store: Some(self.steer_writes_away()),
        };
        let outcome =
            tessera_storage::write_object(&stores, segment_id, part, &key.key, &write, stream)
                .await
                .map_err(|e| match e {
                    StorageError::Body(cause) => body_failure(&*cause),
                    other => DataError::Storage {
                        context: "writing shards",
                        source: other,
                    },
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
            checksums: integrity::to_model(&outcome.checksums.others),
            stored: Stored::Segment(segment),
        })
    }

    /// The code, the site copies and their replication of `bucket`'s new
    /// segments: its storage policy, else the gateway's defaults.
    async fn write_layout(&self, bucket: &str) -> Layout {
        let defaults = Layout {
            geometry: self.settings.geometry,
            site_copies: self.settings.site_copies.clone(),
            replication: self.settings.site_replication,
        };
        let name = bucket.to_owned();
        let setting = self
            .meta
            .read_local(move |v| {
                Ok(v.bucket(&name)?
                    .and_then(|b| b.settings.get(policy::SETTING).cloned()))
            })
            .await;
        match setting.map(|s| s.map(|bytes| StoragePolicy::decode(&bytes))) {
            Ok(Some(Ok(p))) => Layout {
                geometry: p.geometry(self.settings.geometry),
                replication: p.replication.unwrap_or(self.settings.site_replication),
                site_copies: p.site_copies,
            },
            Ok(None) => defaults,
            Ok(Some(Err(e))) => {
                tracing::warn!(bucket, error = %e, "ignoring the bucket's storage policy");
                defaults
            }
            Err(e) => {
                tracing::warn!(bucket, error = %e, "reading the bucket's storage policy failed");
                defaults
            }
        }
    }

    /// The write hook that takes a storage node's store that failed a
    /// shard as down until its next probe: the writes after this one go to
    /// stores that answer (and the client's retry of this one does).
    fn steer_writes_away(&self) -> tessera_storage::FailedStoreCallback {
        let stores = self.stores.clone();
        Arc::new(move |store: &str, error: &StorageError| {
            if stores.suspect(store) {
                tracing::warn!(store, %error, "storage node store failed a write: taking it as down until its next probe");
            }
        })
    }

    /// Copies `range` of a stored version into fresh data under `key`, as
    /// `opts` say (streaming: read → re-encrypt → write, never whole in
    /// memory).
    pub(crate) async fn copy(
        &self,
        source: &ObjectVersion,
        range: Range<u64>,
        key: &ObjectDataKey,
        opts: IngestOptions<'_>,
    ) -> Result<Ingested, DataError> {
        let size_hint = Some(range.end - range.start);
        let stream = self.read(source, range).await?;
        let body = Body {
            stream: body_stream(stream),
            size_hint,
        };
        self.ingest(key, body, opts).await
    }
}

/// How a bucket's new segments are laid out.
struct Layout {
    /// Their code.
    geometry: Geometry,
    /// The sites keeping a copy each (empty: one copy spread over them).
    site_copies: Vec<String>,
    /// How the copies are written.
    replication: SiteReplication,
}

/// A body that went on past its size limit, having declared no size.
#[derive(Debug, thiserror::Error)]
#[error("the body exceeds {0} bytes")]
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

/// Why a body could not be read: it stalled, it passed its size limit, or
/// it broke off.
fn body_failure(e: &(dyn std::error::Error + 'static)) -> DataError {
    match e.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::TimedOut => DataError::BodyTimedOut,
        Some(io) => match io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<BodyTooLarge>())
        {
            Some(BodyTooLarge(limit)) => DataError::TooLarge { limit: *limit },
            None => DataError::IncompleteBody(e.to_string()),
        },
        None => DataError::IncompleteBody(e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_past_the_cap_fails_as_too_large() {
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
        assert!(matches!(body_failure(&e), DataError::TooLarge { limit: 9 }));
        let cut = std::io::Error::other("connection reset");
        assert!(matches!(
            body_failure(&cut),
            DataError::IncompleteBody(m) if m == "connection reset"
        ));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let stalled = futures::stream::pending::<Result<Bytes, std::io::Error>>().boxed();
        let mut body = with_idle_timeout(stalled, std::time::Duration::from_millis(10));
        let Some(Err(e)) = body.next().await else {
            panic!("a stalled body fails");
        };
        assert!(matches!(body_failure(&e), DataError::BodyTimedOut));
        assert!(body.next().await.is_none());
    }
}
