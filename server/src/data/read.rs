//! Streaming stored data back out: inline data is opened in memory (it is at
//! most the inline threshold), erasure-coded parts are read lazily one after
//! the other, each only over the byte range asked for. A read holds a lease
//! on its segments until its stream is dropped, and queues a repair for
//! every bad shard it meets.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tessera_raft::command::Command;
use tessera_raft::model::{ObjectData, ObjectVersion, PartData, Segment, WorkItem};
use tessera_storage::{ObjectLocation, ReadOptions, ShardId, StorageError};

use super::{DataError, DataPlane, location};

/// The plain bytes of a version over a range, as a stream.
pub(crate) type DataStream = futures::stream::BoxStream<'static, Result<Bytes, StorageError>>;

impl DataPlane {
    /// Streams `range` of a version's bytes (the range must lie within its
    /// size), once its first bytes are there: a read that cannot start (too
    /// few shards reachable) fails here, with its own error, rather than as
    /// a stream cut short.
    pub(crate) async fn read(
        &self,
        v: &ObjectVersion,
        range: Range<u64>,
    ) -> Result<DataStream, DataError> {
        let mut stream = self.stream_range(v, range)?;
        match stream.next().await {
            None => Ok(futures::stream::empty().boxed()),
            Some(Err(e)) => Err(DataError::Storage {
                context: "reading shards",
                source: e,
            }),
            Some(Ok(first)) => Ok(futures::stream::once(async move { Ok(first) })
                .chain(stream)
                .boxed()),
        }
    }

    /// [`read`](Self::read), before any shard has been asked for a byte.
    fn stream_range(&self, v: &ObjectVersion, range: Range<u64>) -> Result<DataStream, DataError> {
        let key = self.open_key(&v.wrapped_key)?;
        match &v.data {
            ObjectData::DeleteMarker => Err(DataError::Internal(
                "reading the data of a delete marker".to_owned(),
            )),
            ObjectData::Inline(sealed) => {
                let plain = tessera_storage::open_inline(&key.key, key.id, sealed)
                    .map_err(DataError::storage("opening inline data"))?;
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

    /// The part segments a range touches, each with the sub-range to read.
    fn locate_pieces(
        &self,
        parts: &[PartData],
        range: Range<u64>,
    ) -> Result<Vec<(ObjectLocation, Range<u64>)>, DataError> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for p in parts {
            let (start, end) = (offset, offset + p.size);
            offset = end;
            if end <= range.start || start >= range.end {
                continue;
            }
            let sub = range.start.max(start) - start..range.end.min(end) - start;
            out.push((self.locate(&p.segment, &[])?, sub));
        }
        Ok(out)
    }

    /// Read options whose bad-shard hook queues a repair of the version:
    /// of every copy of the shard (repair keeps those it finds intact).
    fn read_options(&self, v: &ObjectVersion) -> ReadOptions {
        let meta = self.meta.clone();
        let (bucket, key, version_id) = (v.bucket.clone(), v.key.clone(), v.version_id.clone());
        // Only segments kept as several copies need their placement here:
        // a single copy's shard sits at its own index (and a read must not
        // clone every part's placement for a hook that rarely runs).
        let segments: HashMap<([u8; 16], u32), Segment> = match &v.data {
            ObjectData::Parts(parts) => parts
                .iter()
                .filter(|p| p.segment.placement.len() > location::width(&p.segment))
                .map(|p| ((p.segment.object_id, p.segment.part), p.segment.clone()))
                .collect(),
            ObjectData::Inline(_) | ObjectData::DeleteMarker => HashMap::new(),
        };
        let hook = move |shard: ShardId, err: &StorageError| {
            tracing::warn!(error = %err, object = %shard.object, part = shard.part, index = shard.index, "bad shard; queueing repair");
            let positions = segments.get(&(shard.object.0, shard.part)).map_or_else(
                || vec![shard.index],
                |s| location::positions(s, shard.index),
            );
            let item = WorkItem::Repair {
                bucket: bucket.clone(),
                key: key.clone(),
                version_id: version_id.clone(),
                object_id: shard.object.0,
                part: shard.part,
                shards: positions,
            };
            let meta = meta.clone();
            tokio::spawn(async move {
                if let Err(e) = meta.write(Command::EnqueueWork { item }).await {
                    tracing::warn!(error = %e, "queueing repair failed");
                }
            });
        };
        let stores = self.stores.clone();
        let slow = move |shard: ShardId, store: &str| {
            if stores.suspect(store) {
                tracing::warn!(store, %shard, "storage node store outrun by a hedged read: taking it as down until its next probe");
            }
        };
        ReadOptions {
            shard_timeout: self.settings.shard_timeout,
            on_bad_shard: Some(Arc::new(hook)),
            hedge_after: Some(self.settings.hedge_after),
            on_slow_shard: Some(Arc::new(slow)),
            budget: Some(self.settings.read_budget.clone()),
        }
    }
}
