//! Garbage collection: drains `WorkItem::DeleteSegments` from the raft work
//! queue, deletes those segments' shards from their stores, then removes the
//! finished items with `Command::CompleteWork`.
//!
//! Deleting is idempotent (an absent shard counts as deleted), so an item is
//! simply retried on the next pass when a store fails; items naming a store
//! this server does not know are logged and dropped, since no retry could
//! ever reach it. Only the raft leader collects, so members do not race.

use std::time::Duration;

use futures::future::join_all;
use tessera_raft::command::Command;
use tessera_raft::model::{Segment, WorkItem};
use tessera_raft::node::MetaNode;
use tessera_storage::{ObjectId, ShardId};
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::placement::StoreSet;

/// Work items read per pass.
const BATCH: usize = 64;

/// The GC worker.
#[derive(Clone)]
pub struct GcWorker {
    meta: MetaNode,
    stores: StoreSet,
    interval: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Work items seen.
    pub seen: usize,
    /// Work items completed and removed from the queue.
    pub completed: usize,
}

impl GcWorker {
    /// A worker over these stores, polling every `interval` when idle.
    pub fn new(meta: MetaNode, stores: StoreSet, interval: Duration) -> Self {
        GcWorker {
            meta,
            stores,
            interval,
        }
    }

    /// Runs passes until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            let pause = match self.pass().await {
                Ok(report) if report.seen == BATCH && report.completed > 0 => Duration::ZERO,
                Ok(_) => self.interval,
                Err(e) => {
                    tracing::warn!(error = %e, "gc pass failed");
                    metrics::gc_error();
                    self.interval
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over the head of the queue (a no-op unless this member leads).
    pub async fn pass(&self) -> Result<PassReport, tessera_raft::MetaError> {
        let status = self.meta.status();
        if status.leader != Some(status.id) {
            return Ok(PassReport::default());
        }
        let items = self.meta.read_local(|view| view.work(BATCH)).await?;
        metrics::gc_queue_length(items.len());
        let mut done = Vec::new();
        for (id, item) in &items {
            let WorkItem::DeleteSegments { segments } = item else {
                continue;
            };
            let results = join_all(segments.iter().map(|s| self.delete_segment(s))).await;
            if results.iter().all(|ok| *ok) {
                done.push(*id);
            }
        }
        let completed = done.len();
        if !done.is_empty() {
            self.meta.write(Command::CompleteWork { ids: done }).await?;
            tracing::debug!(completed, "gc removed segments");
        }
        Ok(PassReport {
            seen: items.len(),
            completed,
        })
    }

    /// Deletes every shard of `segment`; false when a store failed (retry later).
    async fn delete_segment(&self, segment: &Segment) -> bool {
        let object = ObjectId(segment.object_id);
        let deletes = segment.placement.iter().enumerate().map(|(index, store_id)| async move {
            let Some(store) = self.stores.get(store_id) else {
                tracing::warn!(store = %store_id, %object, "gc: unknown store; shard left behind");
                return Ok(false);
            };
            let shard = ShardId {
                object,
                part: segment.part,
                index: u16::try_from(index).unwrap_or(u16::MAX),
            };
            store.delete(shard).await.map_err(|e| {
                tracing::warn!(store = %store_id, %shard, error = %e, "gc: delete failed; will retry");
                metrics::backend_error(store_id);
            })
        });
        let results = join_all(deletes).await;
        if results.iter().any(Result::is_err) {
            metrics::gc_error();
            return false;
        }
        let removed = results.iter().filter(|r| matches!(r, Ok(true))).count();
        metrics::gc_segment_deleted(removed as u64);
        true
    }
}
