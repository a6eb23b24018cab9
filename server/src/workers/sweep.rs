//! The orphan sweep: removes shard files that nothing references.
//!
//! Writes that never committed leave shards behind: a process killed
//! between the shard writes and the commit, a client gone after its body,
//! a repair interrupted before it moved the placement, a store that was down
//! while GC deleted. The sweep lists every store page by page and removes a
//! shard file when all of these hold:
//!
//! - no committed version or upload in progress references its segment, or
//!   the placement that does keeps that shard index on other stores;
//! - it is older than the orphan grace period (a write in progress commits
//!   within moments of its shards becoming durable; the grace is an hour by
//!   default);
//! - no read in flight holds a lease on its segment.
//!
//! Shard files appear only when complete (they are renamed into place), and
//! a segment is referenced from its commit on, so a shard older than the
//! grace that is unreferenced can only be garbage: nothing can come to
//! reference it later, as no gateway commits a segment it wrote that long ago
//! (the writer commits right after its last shard is durable).

use std::time::{Duration, SystemTime};

use metrics::counter;
use tessera_storage::ShardId;

use super::job::{Job, JobError, Pass, Progress};
use crate::data::{DataPlane, location};

/// Shard ids listed per step.
const PAGE: usize = 1000;

/// The orphan sweep job.
pub struct SweepJob {
    data: DataPlane,
    grace: Duration,
    interval: Duration,
    /// When the last full sweep finished (`None`: never, since start).
    finished: Option<std::time::Instant>,
    /// The store being swept (index into [`StoreSet::all`](crate::placement::StoreSet::all)) and the last
    /// shard listed there, while a sweep is under way.
    position: Option<(usize, Option<ShardId>)>,
}

impl SweepJob {
    /// A sweep over the data plane's stores every `interval`, removing
    /// unreferenced shards older than `grace` that no read leases.
    pub fn new(data: DataPlane, grace: Duration, interval: Duration) -> Self {
        counter!("tessera_sweep_orphans_removed_total").increment(0);
        SweepJob {
            data,
            grace,
            interval,
            finished: None,
            position: None,
        }
    }

    /// Which of `page` (all on `store_id`) nothing references, as of the
    /// latest committed change (a linearizable read: a member just
    /// restarted may not have replayed its log yet, and what it has not
    /// applied must not look unreferenced).
    async fn unreferenced(
        &self,
        store_id: &str,
        page: &[ShardId],
    ) -> Result<Vec<ShardId>, JobError> {
        let store_id = store_id.to_owned();
        let page = page.to_vec();
        Ok(self
            .data
            .meta()
            .read(move |view| {
                let mut out = Vec::new();
                for id in page {
                    let referenced = view.segment(&id.object.0, id.part)?.is_some_and(|r| {
                        location::position_on(&r.segment, id.index, &store_id).is_some()
                    });
                    if !referenced {
                        out.push(id);
                    }
                }
                Ok(out)
            })
            .await?)
    }
}

#[async_trait::async_trait]
impl Job for SweepJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let status = self.data.meta().status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        let requested = progress.take_request();
        if self.position.is_none() {
            let due = self.finished.is_none_or(|at| at.elapsed() >= self.interval);
            if !requested && !due {
                return Ok(Pass::Idle);
            }
            self.position = Some((0, None));
        }
        let stores = self.data.stores().all();
        let Some((index, after)) = self.position else {
            return Ok(Pass::Idle);
        };
        let Some(store) = stores.get(index) else {
            self.position = None;
            self.finished = Some(std::time::Instant::now());
            progress.set_queued(0);
            return Ok(Pass::Idle);
        };
        if self.data.stores().is_down(store.id()) {
            // Its orphans wait for the next sweep.
            self.position = Some((index + 1, None));
            return Ok(Pass::More);
        }
        let page = store.list(after, PAGE).await?;
        self.position = Some(match page.last() {
            Some(last) if page.len() == PAGE => (index, Some(*last)),
            _ => (index + 1, None),
        });
        let candidates = self.unreferenced(store.id(), &page).await?;
        let now = SystemTime::now();
        let (mut removed, mut bytes) = (0u64, 0u64);
        for id in candidates {
            if self.data.leases().is_held(&id.object.0) {
                continue;
            }
            let Some(stat) = store.stat(id).await? else {
                continue;
            };
            let age = now.duration_since(stat.modified).unwrap_or_default();
            if age < self.grace {
                continue;
            }
            // Checked again right before deleting: a commit in between
            // would have made it referenced.
            if self.unreferenced(store.id(), &[id]).await?.is_empty() {
                continue;
            }
            if store.delete(id).await? {
                tracing::info!(shard = %id, store = store.id(), age = ?age, "sweep: removed an orphan shard");
                removed += 1;
                bytes += stat.size;
            }
        }
        counter!("tessera_sweep_orphans_removed_total").increment(removed);
        progress.done(removed, bytes);
        // Stores left to sweep, this one included.
        progress.set_queued((stores.len() - index) as u64);
        Ok(Pass::More)
    }
}
