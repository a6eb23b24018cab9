//! Streaming stored data back out: inline data is opened in memory (it is at
//! most the inline threshold), erasure-coded parts are read lazily one after
//! the other, each only over the byte range the request needs.

use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::S3Error;
use s3s::dto::StreamingBlob;
use tessera_raft::command::Command;
use tessera_raft::model::{ObjectData, ObjectVersion, PartData, WorkItem};
use tessera_storage::{ObjectLocation, ReadOptions, ShardId, StorageError};

use super::Gateway;
use super::errors;
use super::keys::ObjectKey;
use crate::location;

/// The plain bytes of a version over a range, as a stream.
pub(crate) type DataStream = futures::stream::BoxStream<'static, Result<Bytes, StorageError>>;

impl Gateway {
    /// Streams `range` of a version's bytes (the range must lie within its size).
    pub(crate) fn read_range(
        &self,
        v: &ObjectVersion,
        range: Range<u64>,
    ) -> Result<DataStream, S3Error> {
        let key = ObjectKey::unwrap(&self.master_key, &v.wrapped_key)?;
        match &v.data {
            ObjectData::DeleteMarker => {
                Err(errors::internal("reading the data of a delete marker"))
            }
            ObjectData::Inline(sealed) => {
                let plain = tessera_storage::open_inline(&key.key, key.id, sealed)
                    .map_err(|e| errors::storage(e, "opening inline data"))?;
                let start = usize::try_from(range.start)
                    .unwrap_or(usize::MAX)
                    .min(plain.len());
                let end = usize::try_from(range.end)
                    .unwrap_or(usize::MAX)
                    .min(plain.len());
                let bytes = Bytes::from(plain).slice(start..end);
                Ok(futures::stream::once(async move { Ok(bytes) }).boxed())
            }
            ObjectData::Parts(parts) => {
                let pieces = self.locate_pieces(parts, range)?;
                let opts = self.read_options(v);
                let key = key.key;
                // Held by the stream: GC spares these segments until the
                // read is over, however slowly the client takes it.
                let lease = self.leases.take(parts.iter().map(|p| p.segment.object_id));
                Ok(futures::stream::iter(pieces)
                    .map(move |(loc, r)| {
                        let _held = &lease;
                        tessera_storage::read_object(loc, key.clone(), r, opts.clone())
                    })
                    .flatten()
                    .boxed())
            }
        }
    }

    /// [`read_range`](Self::read_range), once its first bytes are there: a
    /// read that cannot start (too few shards reachable) fails the request
    /// with its own status rather than cutting a `200` response short.
    pub(crate) async fn read_started(
        &self,
        v: &ObjectVersion,
        range: Range<u64>,
    ) -> Result<DataStream, S3Error> {
        let mut stream = self.read_range(v, range)?;
        match stream.next().await {
            None => Ok(futures::stream::empty().boxed()),
            Some(Err(e)) => Err(errors::storage(e, "reading shards")),
            Some(Ok(first)) => Ok(futures::stream::once(async move { Ok(first) })
                .chain(stream)
                .boxed()),
        }
    }

    /// The part segments a range touches, each with the sub-range to read.
    fn locate_pieces(
        &self,
        parts: &[PartData],
        range: Range<u64>,
    ) -> Result<Vec<(ObjectLocation, Range<u64>)>, S3Error> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for p in parts {
            let (start, end) = (offset, offset + p.size);
            offset = end;
            if end <= range.start || start >= range.end {
                continue;
            }
            let sub = range.start.max(start) - start..range.end.min(end) - start;
            let loc = location::location(&p.segment, &self.stores, &[])
                .map_err(|e| errors::internal(format!("stored segment record: {e}")))?;
            out.push((loc, sub));
        }
        Ok(out)
    }

    /// Read options whose bad-shard hook queues a repair of the version.
    fn read_options(&self, v: &ObjectVersion) -> ReadOptions {
        let meta = self.meta.clone();
        let (bucket, key, version_id) = (v.bucket.clone(), v.key.clone(), v.version_id.clone());
        let hook = move |shard: ShardId, err: &StorageError| {
            tracing::warn!(error = %err, object = %shard.object, part = shard.part, index = shard.index, "bad shard; queueing repair");
            let item = WorkItem::Repair {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: version_id.clone(),
                object_id: shard.object.0,
                part: shard.part,
                shards: vec![shard.index],
            };
            let meta = meta.clone();
            tokio::spawn(async move {
                if let Err(e) = meta.write(Command::EnqueueWork { item }).await {
                    tracing::warn!(error = %e, "queueing repair failed");
                }
            });
        };
        ReadOptions {
            shard_timeout: self.settings.shard_timeout,
            on_bad_shard: Some(Arc::new(hook)),
            budget: Some(self.settings.read_budget.clone()),
        }
    }
}

/// A stream made `Sync` for s3s's response body (it is only ever polled
/// through `&mut`, so the lock is never contended).
pub(crate) struct SyncStream<S>(Mutex<S>);

impl<S> Stream for SyncStream<S>
where
    S: Stream + Unpin,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        Pin::new(inner).poll_next(cx)
    }
}

/// A data stream as a response body.
pub(crate) fn blob(stream: DataStream) -> StreamingBlob {
    StreamingBlob::wrap(SyncStream(Mutex::new(stream)))
}
