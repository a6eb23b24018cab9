//! Repair: rebuilds the shards in the repair queue from the surviving ones.
//!
//! Each pass reads the queue, orders it by how much redundancy each segment
//! has left (least first) and works through a batch, putting every queued
//! shard back as `rebuild` does: kept when it is found intact, else
//! copied from another site's copy or rebuilt from k others, onto its own
//! store or (once that is lost) another, and verified there. Only then
//! does one `CompleteRepair` move the placement and take the shards off the
//! queue; a crash before that leaves them queued and the rebuilt file an
//! orphan for the sweep. A segment that failed waits, doubling each time,
//! before it is tried again; the others go on.
//!
//! Repair is done ([`RepairStatus::done`], `tessera admin repair status`)
//! when its queue is empty and no lost or draining store holds shards
//! evacuation has not queued yet: every shard it rebuilt was verified
//! where it landed before it left the queue.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use metrics::gauge;
use tessera_raft::model::RepairItem;
use tessera_raft::node::MetaNode;
use tessera_raft::{MetaError, SegmentRecord};

use super::evacuate::Evacuated;
use super::job::{Job, JobError, JobReport, Pass, Progress};
use super::rebuild::{Outcome, Rebuilder, Retries};
use crate::admin::{AtRisk, RepairStatus};
use crate::data::{DataPlane, location};
use crate::placement::StoreSet;

/// Repair items read (and ordered) per pass.
const SCAN: usize = 10_000;
/// Segments repaired per pass.
const BATCH: usize = 16;
/// Segments repaired at once.
const PARALLEL: usize = 2;

/// The repair job.
pub struct RepairJob {
    rebuilder: Rebuilder,
    /// Which lost and draining stores have every shard queued.
    evacuated: Evacuated,
    /// Segments that failed, and when to try them again.
    retries: Retries,
    /// Labels of `tessera_segments_degraded` published so far.
    degraded_labels: BTreeSet<usize>,
    /// Labels of `tessera_segments_at_risk` published so far.
    at_risk_labels: BTreeSet<i64>,
}

impl RepairJob {
    /// Repair over the data plane's stores, rebuilding at most
    /// `bytes_per_sec` (0: no limit); `evacuated` tells whether lost and
    /// draining stores still hold shards to queue (repair is not done then).
    pub fn new(data: DataPlane, evacuated: Evacuated, bytes_per_sec: u64) -> Self {
        let geometry = data.geometry();
        crate::metrics::set_geometry(geometry.data_shards, geometry.parity_shards);
        RepairJob {
            rebuilder: Rebuilder::new(data, bytes_per_sec),
            evacuated,
            retries: Retries::default(),
            degraded_labels: (1..=2).collect(),
            at_risk_labels: (0..i64::from(geometry.parity_shards.max(1))).collect(),
        }
    }

    /// Repairs one queued segment; an item whose segment nobody references
    /// any more has nothing to repair (and is dropped by its completion).
    async fn repair_item<'a>(
        &self,
        item: &'a RepairItem,
        record: Option<&SegmentRecord>,
    ) -> (&'a RepairItem, bool, Outcome) {
        let outcome = match record {
            Some(record) => self.rebuilder.rebuild(&item.shards, record).await,
            None => Outcome::default(),
        };
        (item, record.is_some(), outcome)
    }
}

#[async_trait::async_trait]
impl Job for RepairJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let status = self.rebuilder.data().meta().status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        let queue = read_queue(self.rebuilder.data().meta()).await?;
        let pending = self.publish(&queue, progress);
        self.retries.refresh(self.rebuilder.data().stores(), |seg| {
            queue.iter().any(|(i, _)| (i.object_id, i.part) == *seg)
        });
        let now = Instant::now();
        let mut ready: Vec<(i64, &RepairItem, Option<&SegmentRecord>)> = queue
            .iter()
            .filter(|(item, _)| self.retries.ready(&(item.object_id, item.part), now))
            .map(|(item, record)| (spare(item, record.as_ref()), item, record.as_ref()))
            .collect();
        ready.sort_by_key(|(spare, _, _)| *spare);
        // A few segments at once: rebuilding is CPU work (decode, verify,
        // seal) and each segment waits on its stores in between.
        let chosen: Vec<_> = ready.into_iter().take(BATCH).collect();
        let mut outcomes = Vec::with_capacity(chosen.len());
        for group in chosen.chunks(PARALLEL) {
            let group = group
                .iter()
                .map(|&(_, item, record)| self.repair_item(item, record));
            outcomes.extend(futures::future::join_all(group).await);
        }
        let worked = outcomes.len();
        let mut finished_total = 0;
        for (item, referenced, outcome) in outcomes {
            finished_total += self
                .rebuilder
                .settle(
                    (item.object_id, item.part),
                    referenced,
                    outcome,
                    progress,
                    &mut self.retries,
                )
                .await?;
        }
        let left = pending.saturating_sub(finished_total);
        progress.set_queued(left);
        gauge!("tessera_repair_pending_shards").set(left as f64);
        let outstanding = self.evacuated.outstanding(self.rebuilder.data().stores());
        let status = RepairStatus::new(
            left,
            BTreeMap::new(),
            &progress.report(),
            outstanding.into_iter().collect(),
            Vec::new(),
        );
        gauge!("tessera_repair_done").set(if status.done { 1.0 } else { 0.0 });
        gauge!("tessera_repair_bytes_per_second").set(status.bytes_per_sec);
        gauge!("tessera_repair_eta_seconds").set(status.eta_secs.unwrap_or(0.0));
        Ok(if worked == BATCH {
            Pass::More
        } else {
            Pass::Idle
        })
    }
}

/// Shards a segment lacks or has queued as bad.
fn lost(item: &RepairItem, record: Option<&SegmentRecord>) -> Vec<u16> {
    let missing = record.map_or(&[][..], |r| r.segment.missing.as_slice());
    let mut lacking: Vec<u16> = item.shards.iter().chain(missing).copied().collect();
    lacking.sort_unstable();
    lacking.dedup();
    lacking
}

/// How many more shards a queued segment can lose before it cannot be
/// read (below 0: unreadable until a store returns); an item nothing
/// references counts as safe.
fn spare(item: &RepairItem, record: Option<&SegmentRecord>) -> i64 {
    record.map_or(i64::MAX, |r| {
        location::redundancy_left(&r.segment, &lost(item, Some(r)))
    })
}

/// The repair queue (its first [`SCAN`] items), each item with its
/// segment (`None` when nothing references the segment any more).
pub(crate) type Queue = Vec<(RepairItem, Option<SegmentRecord>)>;

/// Reads the repair queue from the metadata.
pub(crate) async fn read_queue(meta: &MetaNode) -> Result<Queue, MetaError> {
    meta.read_local(|view| {
        view.repairs(SCAN)?
            .into_iter()
            .map(|item| {
                let record = view.segment(&item.object_id, item.part)?;
                Ok((item, record))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
}

/// The `degraded` segments (as [`summarize`] counts them) by how many more
/// shards each can lose: below 0 when they are unreadable.
fn redundancy_left(degraded: &BTreeMap<(usize, i64), u64>) -> BTreeMap<i64, u64> {
    let mut at_risk: BTreeMap<i64, u64> = BTreeMap::new();
    for (&(_, left), &segments) in degraded {
        *at_risk.entry(left).or_insert(0) += segments;
    }
    at_risk
}

/// Shards queued, and the referenced segments by how many shards each
/// lacks (missing or queued as bad) and how many more it can lose.
pub(crate) fn summarize(queue: &Queue) -> (u64, BTreeMap<(usize, i64), u64>) {
    let pending: usize = queue.iter().map(|(item, _)| item.shards.len()).sum();
    let mut degraded: BTreeMap<(usize, i64), u64> = BTreeMap::new();
    for (item, record) in queue {
        if let Some(record) = record {
            let lacking = lost(item, Some(record));
            let left = location::redundancy_left(&record.segment, &lacking);
            *degraded.entry((lacking.len(), left)).or_insert(0) += 1;
        }
    }
    (pending as u64, degraded)
}

impl RepairStatus {
    /// The status of repair: `pending` shards queued, the `degraded`
    /// segments (by shards lacking and shards they can still lose, as
    /// [`summarize`] counts them), repair's progress `report`, the lost or draining stores whose
    /// shards are not all queued yet (`outstanding`), and the stores down
    /// within the repair grace (`waiting`).
    pub(crate) fn new(
        pending: u64,
        degraded: BTreeMap<(usize, i64), u64>,
        report: &JobReport,
        outstanding: Vec<String>,
        waiting: Vec<String>,
    ) -> Self {
        let at_risk = redundancy_left(&degraded);
        RepairStatus {
            done: pending == 0 && outstanding.is_empty(),
            pending_shards: pending,
            done_shards: report.done,
            failed_attempts: report.failed,
            bytes_rebuilt: report.bytes,
            bytes_per_sec: report.bytes_per_sec,
            shards_per_sec: report.items_per_sec,
            eta_secs: (pending > 0 && report.items_per_sec > 0.0)
                .then(|| pending as f64 / report.items_per_sec),
            at_risk: at_risk
                .into_iter()
                .map(|(redundancy_left, segments)| AtRisk {
                    redundancy_left,
                    segments,
                })
                .collect(),
            outstanding_stores: outstanding,
            waiting_stores: waiting,
        }
    }

    /// The status as the admin API reports it now: the queue read afresh
    /// from `meta`, progress from `report`, store states from `stores`.
    pub(crate) async fn read(
        meta: &MetaNode,
        stores: &StoreSet,
        evacuated: &Evacuated,
        report: &JobReport,
    ) -> Result<Self, MetaError> {
        let (pending, degraded) = summarize(&read_queue(meta).await?);
        let waiting = stores
            .all()
            .iter()
            .map(|s| s.id().to_owned())
            .filter(|id| stores.is_down(id) && !stores.is_lost(id))
            .collect();
        let outstanding = evacuated.outstanding(stores).into_iter().collect();
        Ok(Self::new(pending, degraded, report, outstanding, waiting))
    }
}

impl RepairJob {
    /// Publishes the queue: shards pending (returned), and degraded
    /// segments by how many shards each lacks and how many more it can lose.
    fn publish(&mut self, queue: &Queue, progress: &Progress) -> u64 {
        let (pending, degraded) = summarize(queue);
        progress.set_queued(pending);
        gauge!("tessera_repair_pending_shards").set(pending as f64);
        let at_risk = redundancy_left(&degraded);
        self.at_risk_labels.extend(at_risk.keys().copied());
        for left in &self.at_risk_labels {
            let count = at_risk.get(left).copied().unwrap_or(0);
            gauge!("tessera_segments_at_risk", "redundancy_left" => left.to_string())
                .set(count as f64);
        }
        let mut by_missing: BTreeMap<usize, u64> = BTreeMap::new();
        for ((lacking, _), segments) in degraded {
            *by_missing.entry(lacking).or_insert(0) += segments;
        }
        self.degraded_labels.extend(by_missing.keys().copied());
        for missing in &self.degraded_labels {
            let count = by_missing.get(missing).copied().unwrap_or(0);
            gauge!("tessera_segments_degraded", "missing" => missing.to_string()).set(count as f64);
        }
        pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_segments_count_by_the_shards_they_can_still_lose() {
        // (shards lacking, shards it can still lose) → segments.
        let degraded = BTreeMap::from([((1, 1), 3), ((2, 0), 1), ((3, -1), 2), ((1, 0), 4)]);
        assert_eq!(
            redundancy_left(&degraded),
            BTreeMap::from([(1, 3), (0, 5), (-1, 2)])
        );
    }
}
