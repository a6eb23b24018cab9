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

use super::job::{Job, JobError, Pass, Progress};
use crate::data::DataPlane;
use crate::metrics;

/// Deletions read per pass.
const BATCH: usize = 64;
/// Segments of one deletion (a multipart object has up to 10,000) deleted
/// at once.
const SEGMENTS_AT_ONCE: usize = 16;

/// The GC job.
pub struct GcJob {
    data: DataPlane,
    grace: Duration,
    /// When this member first saw each queued deletion.
    first_seen: HashMap<u64, Instant>,
}

impl GcJob {
    /// GC over the data plane's stores, sparing leased segments and every
    /// deletion younger than `grace`.
    pub fn new(data: DataPlane, grace: Duration) -> Self {
        metrics::gc_started();
        GcJob {
            data,
            grace,
            first_seen: HashMap::new(),
        }
    }

    /// Deletes every shard of `segment`; false when a store failed (retry
    /// later). A record no shard can be located from is dropped (no retry
    /// could ever use it; the sweep removes what it names).
    async fn delete_segment(&self, segment: &Segment) -> bool {
        match self.data.delete_segment(segment).await {
            Err(e) => {
                tracing::error!(error = %e, "gc: unusable segment record dropped");
                true
            }
            Ok(deletion) if deletion.failed > 0 => {
                tracing::warn!(
                    failed = deletion.failed,
                    "gc: deleting shards failed; will retry"
                );
                metrics::gc_error();
                false
            }
            Ok(deletion) => {
                metrics::gc_segment_deleted(deletion.removed as u64);
                true
            }
        }
    }
}

#[async_trait::async_trait]
impl Job for GcJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let status = self.data.meta().status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        let (items, lengths) = self
            .data
            .meta()
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
                || segments
                    .iter()
                    .any(|s| self.data.leases().is_held(&s.object_id))
            {
                continue;
            }
            let mut deleted = true;
            for group in segments.chunks(SEGMENTS_AT_ONCE) {
                let results = join_all(group.iter().map(|s| self.delete_segment(s))).await;
                deleted &= results.iter().all(|ok| *ok);
            }
            if deleted {
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
        self.data
            .meta()
            .write(Command::CompleteWork { ids: done })
            .await?;
        progress.done(completed as u64, 0);
        tracing::debug!(completed, "gc removed segments");
        Ok(if items.len() == BATCH {
            Pass::More
        } else {
            Pass::Idle
        })
    }
}
