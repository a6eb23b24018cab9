//! Garbage collection: drains the deletion queue, deletes those segments'
//! shards from their stores, then removes the finished items with
//! `Command::CompleteWork`.
//!
//! A deletion is carried out only once it has waited [`GcJob`]'s grace
//! period (counted from when this member first saw it queued) and no read
//! holds a lease on its segments (see [`crate::leases`]): a GET or copy that
//! found the old version before it was replaced reads to its end.
//!
//! Deleting is idempotent (an absent shard counts as deleted), so an item is
//! simply retried on a later pass when a store fails; items naming a store
//! this server does not know are logged and dropped, since no retry could
//! ever reach it (the orphan sweep removes what such items leave). Only the
//! raft leader collects, so members do not race.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tessera_raft::command::Command;
use tessera_raft::model::Segment;
use tessera_raft::node::MetaNode;

use super::job::{Job, JobError, Pass, Progress};
use crate::data::location;
use crate::leases::ReadLeases;
use crate::metrics;
use crate::placement::StoreSet;

/// Deletions read per pass.
const BATCH: usize = 64;

/// The GC job.
pub struct GcJob {
    meta: MetaNode,
    stores: StoreSet,
    leases: ReadLeases,
    grace: Duration,
    /// When this member first saw each queued deletion.
    first_seen: HashMap<u64, Instant>,
}

impl GcJob {
    /// GC over these stores, sparing leased segments and every deletion
    /// younger than `grace`.
    pub fn new(meta: MetaNode, stores: StoreSet, leases: ReadLeases, grace: Duration) -> Self {
        GcJob {
            meta,
            stores,
            leases,
            grace,
            first_seen: HashMap::new(),
        }
    }

    /// Deletes every shard of `segment`; false when a store failed (retry
    /// later). A record no shard can be located from is dropped (no retry
    /// could ever use it; the sweep removes what it names).
    async fn delete_segment(&self, segment: &Segment) -> bool {
        let shards = match location::shards(segment) {
            Ok(shards) => shards,
            Err(e) => {
                tracing::error!(error = %e, "gc: unusable segment record dropped");
                return true;
            }
        };
        let deletes = shards.map(|(shard, store_id)| async move {
            let Some(store) = self.stores.get(store_id) else {
                tracing::warn!(store = %store_id, %shard, "gc: unknown store; shard left behind");
                return Ok(false);
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

#[async_trait::async_trait]
impl Job for GcJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let status = self.meta.status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        let (items, lengths) = self
            .meta
            .read_local(|view| Ok((view.deletions(BATCH)?, view.queue_lengths()?)))
            .await?;
        progress.set_queued(lengths.deletions);
        metrics::gc_queue_length(lengths.deletions);
        let now = Instant::now();
        self.first_seen
            .retain(|id, _| items.iter().any(|(queued, _)| queued == id));
        let mut done = Vec::new();
        let mut failed = 0;
        for (id, segments) in &items {
            let first = *self.first_seen.entry(*id).or_insert(now);
            if now.duration_since(first) < self.grace
                || segments.iter().any(|s| self.leases.is_held(&s.object_id))
            {
                continue;
            }
            let results = join_all(segments.iter().map(|s| self.delete_segment(s))).await;
            if results.iter().all(|ok| *ok) {
                done.push(*id);
            } else {
                failed += 1;
            }
        }
        progress.failed(failed);
        if done.is_empty() {
            return Ok(Pass::Idle);
        }
        let completed = done.len();
        self.meta.write(Command::CompleteWork { ids: done }).await?;
        progress.done(completed as u64, 0);
        tracing::debug!(completed, "gc removed segments");
        Ok(if items.len() == BATCH {
            Pass::More
        } else {
            Pass::Idle
        })
    }
}
