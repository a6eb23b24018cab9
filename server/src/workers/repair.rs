//! Repair: rebuilds the shards in the repair queue from the surviving ones.
//!
//! Each pass reads the queue, orders it by how much redundancy each segment
//! has left (least first) and works through a batch. For every queued shard
//! it first checks the shard where it is: a shard that reads back intact
//! (a report from a read that only timed out, a disk that came back) is
//! kept as it is. Otherwise the shard is rebuilt from k others onto its own
//! store when that is up; when it is down, repair waits for it until the
//! repair grace declares it lost (see `evacuate`), then rebuilds onto a
//! healthy store that holds no other shard of the segment, and reads it
//! back and verifies it there. Only then does one
//! `CompleteRepair` move the placement and take the shards off the queue;
//! a crash before that leaves them queued and the rebuilt file an orphan
//! for the sweep. A segment that failed waits, doubling each time, before
//! it is tried again; the others go on.
//!
//! Repair is done ([`RepairStatus::done`], `tessera admin repair status`)
//! when its queue is empty and no lost or draining store holds shards
//! evacuation has not queued yet: every shard it rebuilt was verified
//! where it landed before it left the queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics::gauge;
use tessera_raft::command::Command;
use tessera_raft::model::RepairItem;
use tessera_raft::node::MetaNode;
use tessera_raft::{MetaError, SegmentRecord};
use tessera_storage::{Pace, StorageError, repair_shard, scrub_shard};

use super::evacuate::Evacuated;
use super::job::{Job, JobError, JobReport, Pass, Progress, RateLimit};
use crate::admin::{AtRisk, RepairStatus};
use crate::data::{DataPlane, location};
use crate::placement::StoreSet;

/// Repair items read (and ordered) per pass.
const SCAN: usize = 10_000;
/// Segments repaired per pass.
const BATCH: usize = 16;
/// Segments repaired at once.
const PARALLEL: usize = 2;
/// First wait after a failed segment; doubled per failure up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// Longest wait between attempts at one segment.
const MAX_RETRY: Duration = Duration::from_secs(120);

/// The repair job.
pub struct RepairJob {
    data: DataPlane,
    /// Which lost and draining stores have every shard queued.
    evacuated: Evacuated,
    rate: Arc<RateLimit>,
    /// Segments that failed: when to try again, and how often they failed.
    retry: HashMap<([u8; 16], u32), (Instant, u32)>,
    /// [`StoreSet::changes`](crate::placement::StoreSet::changes) when `retry` was last cleared.
    store_changes: usize,
    /// Labels of `tessera_segments_degraded` published so far.
    degraded_labels: BTreeSet<usize>,
    /// Labels of `tessera_segments_at_risk` published so far.
    at_risk_labels: BTreeSet<i64>,
}

/// What one segment's repair achieved.
#[derive(Default)]
struct Outcome {
    rebuilt: Vec<(u16, String)>,
    sound: Vec<u16>,
    failed: usize,
    bytes: u64,
}

impl RepairJob {
    /// Repair over the data plane's stores, rebuilding at most
    /// `bytes_per_sec` (0: no limit); `evacuated` tells whether lost and
    /// draining stores still hold shards to queue (repair is not done then).
    pub fn new(data: DataPlane, evacuated: Evacuated, bytes_per_sec: u64) -> Self {
        let geometry = data.geometry();
        crate::metrics::set_geometry(geometry.data_shards, geometry.parity_shards);
        RepairJob {
            data,
            evacuated,
            rate: Arc::new(RateLimit::new(bytes_per_sec)),
            retry: HashMap::new(),
            store_changes: 0,
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
            Some(record) => self.repair_segment(item, record).await,
            None => Outcome::default(),
        };
        (item, record.is_some(), outcome)
    }

    /// Checks or rebuilds every queued shard of one segment.
    async fn repair_segment(&self, item: &RepairItem, record: &SegmentRecord) -> Outcome {
        let mut out = Outcome::default();
        let segment = &record.segment;
        let key = match self.data.open_key(&record.wrapped_key) {
            Ok(key) => key.key,
            Err(e) => {
                tracing::error!(error = %e, "repair: cannot open the segment's data key");
                out.failed = item.shards.len();
                return out;
            }
        };
        // Where the shards are as this repair moves them: a second shard
        // rebuilt elsewhere must not land beside the first.
        let mut placement = segment.placement.clone();
        for &index in &item.shards {
            let id = location::shard_id(segment, index);
            let Some(home) = segment.placement.get(usize::from(index)) else {
                // Out of range: nothing to rebuild; CompleteRepair drops it.
                out.sound.push(index);
                continue;
            };
            // A shard that is not known missing and reads back intact stays.
            if !segment.missing.contains(&index)
                && let Some(store) = self.data.stores().get(home).filter(|s| {
                    !self.data.stores().is_down(s.id()) && !self.data.stores().is_draining(s.id())
                })
                && scrub_shard(store.as_ref(), id).await.is_ok()
            {
                out.sound.push(index);
                continue;
            }
            // A copy kept per site is rebuilt on its own site.
            let site = location::copy_site(segment, index, self.data.stores());
            let Some(target) =
                self.data
                    .stores()
                    .repair_target(&placement, usize::from(index), site.as_deref())
            else {
                tracing::warn!(shard = %id, "repair: no healthy store can take the shard");
                out.failed += 1;
                continue;
            };
            // Read from every other shard the reader may use; it verifies
            // each block and reads around the bad ones itself.
            let loc = match self.data.locate(segment, &[index]) {
                Ok(loc) => loc,
                Err(e) => {
                    tracing::error!(shard = %id, error = %e, "repair: unusable segment record");
                    out.failed += 1;
                    continue;
                }
            };
            let rate = Arc::clone(&self.rate);
            let pace: Pace = Arc::new(move |bytes| {
                let rate = Arc::clone(&rate);
                Box::pin(async move { rate.take(bytes).await })
            });
            let stripe_index = location::stripe_index(segment, index);
            let rebuilt = async {
                repair_shard(&loc, &key, stripe_index, target.clone(), Some(pace)).await?;
                scrub_shard(target.as_ref(), id).await
            }
            .await;
            match rebuilt {
                Ok(summary) => {
                    let bytes = location::geometry(segment)
                        .shard_file_len(summary.trailer.size, usize::from(stripe_index));
                    tracing::info!(shard = %id, store = target.id(), "repair: shard rebuilt and verified");
                    out.rebuilt.push((index, target.id().to_owned()));
                    if let Some(slot) = placement.get_mut(usize::from(index)) {
                        target.id().clone_into(slot);
                    }
                    out.bytes += bytes;
                }
                Err(e) => {
                    tracing::warn!(shard = %id, store = target.id(), error = %e, "repair: rebuilding failed");
                    if !matches!(e, StorageError::NotFound(_)) {
                        crate::metrics::backend_error(target.id());
                    }
                    out.failed += 1;
                }
            }
        }
        out
    }
}

#[async_trait::async_trait]
impl Job for RepairJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let status = self.data.meta().status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        let queue = read_queue(self.data.meta()).await?;
        let pending = self.publish(&queue, progress);
        // A store came back (or went): what waited for one may go now.
        if self.data.stores().changes() != self.store_changes {
            self.store_changes = self.data.stores().changes();
            self.retry.clear();
        }
        let now = Instant::now();
        self.retry
            .retain(|seg, _| queue.iter().any(|(i, _)| (i.object_id, i.part) == *seg));
        let mut ready: Vec<(i64, &RepairItem, Option<&SegmentRecord>)> = queue
            .iter()
            .filter(|(item, _)| {
                self.retry
                    .get(&(item.object_id, item.part))
                    .is_none_or(|(at, _)| *at <= now)
            })
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
            let seg = (item.object_id, item.part);
            if outcome.failed > 0 {
                progress.failed(outcome.failed as u64);
                let failures = self.retry.get(&seg).map_or(0, |(_, n)| *n) + 1;
                let wait = FIRST_RETRY
                    .saturating_mul(1 << failures.min(16))
                    .min(MAX_RETRY);
                self.retry.insert(seg, (Instant::now() + wait, failures));
            } else {
                self.retry.remove(&seg);
            }
            let finished = (outcome.rebuilt.len() + outcome.sound.len()) as u64;
            if finished > 0 || !referenced {
                self.data
                    .meta()
                    .write(Command::CompleteRepair {
                        object_id: item.object_id,
                        part: item.part,
                        rebuilt: outcome.rebuilt,
                        sound: outcome.sound,
                    })
                    .await?;
                progress.done(finished, outcome.bytes);
                finished_total += finished;
            }
        }
        let left = pending.saturating_sub(finished_total);
        progress.set_queued(left);
        gauge!("tessera_repair_pending_shards").set(left as f64);
        let outstanding = self.evacuated.outstanding(self.data.stores());
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
