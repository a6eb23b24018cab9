//! Evacuation: once a store has been down for longer than the repair grace
//! it is declared lost, and every shard it held is queued for repair, so
//! repair rebuilds them on other stores even where nothing reads them. A
//! store the operator drains is evacuated the same way, while it still
//! serves reads.
//!
//! The walk reads only metadata: the segment index, a page per step. A
//! store lost while a walk is under way restarts the walk for all of them;
//! a store that comes back is forgotten (its shards are where they were,
//! and what was already rebuilt elsewhere stays there).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::job::{Job, JobError, Jobs, Pass, Progress};
use crate::data::DataPlane;
use crate::placement::StoreSet;

/// The lost and draining stores whose every shard evacuation has queued
/// for repair. Evacuate fills it; repair and the admin API read it to tell
/// whether any such store still holds shards nobody has queued yet (repair
/// is not done before). Cheap to clone: clones share the set.
#[derive(Debug, Clone, Default)]
pub struct Evacuated(Arc<Mutex<BTreeSet<String>>>);

impl Evacuated {
    /// None evacuated yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lost or draining stores of `stores` whose shards are not all
    /// queued yet. Stores neither lost nor draining any more are forgotten
    /// (one lost again is walked again).
    pub fn outstanding(&self, stores: &StoreSet) -> BTreeSet<String> {
        let mut lost = stores.lost();
        lost.extend(stores.draining());
        let mut evacuated = self.lock();
        evacuated.retain(|id| lost.contains(id));
        lost.retain(|id| !evacuated.contains(id));
        lost
    }
}

/// Segments read per step.
const PAGE: usize = 256;

/// A walk of the segment index under way.
struct Walk {
    /// The lost stores whose shards it queues.
    stores: BTreeSet<String>,
    /// The last segment key it looked at.
    cursor: Option<[u8; 20]>,
}

/// The evacuation job.
pub struct EvacuateJob {
    data: DataPlane,
    jobs: Jobs,
    grace: Duration,
    /// Lost stores whose every shard has been queued.
    evacuated: Evacuated,
    walk: Option<Walk>,
}

impl EvacuateJob {
    /// Evacuates the data plane's stores down for longer than `grace`,
    /// waking repair (in `jobs`) as it queues their shards, and recording
    /// the stores done in `evacuated`.
    pub fn new(data: DataPlane, jobs: Jobs, grace: Duration, evacuated: Evacuated) -> Self {
        EvacuateJob {
            data,
            jobs,
            grace,
            evacuated,
            walk: None,
        }
    }
}

#[async_trait::async_trait]
impl Job for EvacuateJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let stores = self.data.stores();
        for id in stores.declare_lost(self.grace) {
            tracing::warn!(store = %id, grace = ?self.grace, "store down past the repair grace: rebuilding its shards elsewhere");
        }
        let status = self.data.meta().status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        let pending = self.evacuated.outstanding(stores);
        match &mut self.walk {
            None if pending.is_empty() => return Ok(Pass::Idle),
            Some(walk) if pending.is_subset(&walk.stores) => {}
            _ => {
                self.walk = Some(Walk {
                    stores: pending,
                    cursor: None,
                })
            }
        }
        let Some(walk) = self.walk.as_mut() else {
            return Ok(Pass::Idle);
        };
        let cursor = walk.cursor;
        let page = self
            .data
            .meta()
            .read_local(move |view| view.segments_after(cursor, PAGE))
            .await?;
        let mut queued = 0u64;
        for (key, record) in &page {
            let segment = &record.segment;
            let shards: Vec<u16> = segment
                .placement
                .iter()
                .enumerate()
                .filter(|(_, store)| walk.stores.contains(*store))
                .filter_map(|(i, _)| u16::try_from(i).ok())
                .collect();
            walk.cursor = Some(*key);
            if shards.is_empty() {
                continue;
            }
            self.data.queue_repair(segment, shards).await?;
            queued += 1;
        }
        progress.done(queued, 0);
        if queued > 0 {
            self.jobs.wake("repair");
        }
        if page.len() < PAGE {
            tracing::info!(stores = ?walk.stores, "evacuation: every shard of the lost stores is queued for repair");
            self.evacuated
                .lock()
                .extend(std::mem::take(&mut walk.stores));
            self.walk = None;
            progress.set_queued(0);
            return Ok(Pass::Idle);
        }
        progress.set_queued(walk.stores.len() as u64);
        Ok(Pass::More)
    }
}
