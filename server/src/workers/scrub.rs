//! Scrub: verifies every shard of every referenced segment, so that bit
//! rot, lost files and wiped disks are found before a read needs the
//! shard. Findings go to the repair queue.
//!
//! Shards on the gateway's own disks are read back and every block's xxh3
//! verified. A storage node verifies its own shards where they are (its
//! scrub walks its disks: see `node_scrub`), so for a store on a node the
//! gateway reads no shard bytes: it collects the node's findings (every
//! job interval, see [`ScrubJob::collect`]), queues repair for those the
//! metadata still places there and only then acknowledges them, so a crash
//! in between loses none; and its own pass checks only that each shard is
//! there with the length the metadata implies (a stat), which finds the
//! files a node lost entirely and could not know it should have.
//!
//! A pass walks the segment index in key order, a batch per step, reading
//! at most the configured bytes per second. Its position is saved after
//! every batch (`<data-dir>/scrub.state`), so a restart resumes where it
//! stopped; a finished pass records when it finished, and the next starts
//! once that is a scrub interval ago, or when an operator asks
//! (`tessera admin scrub start`, which starts a pass on every node too).
//! Shards on stores that are down are left to the health probe and repair.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use metrics::counter;
use tessera_raft::model::Segment;
use tessera_storage::{ScrubFinding, ShardId, scrub_shard};

use super::job::{Job, JobError, Jobs, Pass, Progress, RateLimit};
use super::pass_state::PassState;
use crate::data::{DataPlane, location};

/// Segments verified per step.
const BATCH: usize = 32;
/// How often the nodes' findings are collected while a pass is under way
/// (between passes: at every turn of the job).
const COLLECT_EVERY: Duration = Duration::from_secs(5);

/// What checking one shard found.
enum Check {
    /// Intact: the bytes read to verify it.
    Sound(u64),
    /// Missing or corrupt: its position in the placement.
    Bad(u16),
    /// Its store is down or did not answer (left to the health probe and repair).
    Skipped,
}

/// The scrub job.
pub struct ScrubJob {
    data: DataPlane,
    /// To wake repair as soon as a finding is queued.
    jobs: Jobs,
    rate: RateLimit,
    interval: Duration,
    /// Where the pass stands: the last segment key verified, in hex.
    state: PassState,
    /// Whether a pass is under way.
    running: bool,
    /// Segments verified in the pass under way (since this server started).
    scanned: u64,
    /// When the nodes' findings were last collected.
    collected: Option<Instant>,
}

impl ScrubJob {
    /// Scrub over the data plane's stores, a full pass every `interval`, reading at
    /// most `bytes_per_sec` (0: no limit), its state kept in `state_file`;
    /// findings wake the `repair` job of `jobs`.
    pub fn new(
        data: DataPlane,
        jobs: Jobs,
        interval: Duration,
        bytes_per_sec: u64,
        state_file: PathBuf,
    ) -> Self {
        let state = PassState::load(state_file);
        counter!("tessera_scrub_bad_shards_total").increment(0);
        ScrubJob {
            data,
            jobs,
            rate: RateLimit::new(bytes_per_sec),
            interval,
            running: state.cursor().is_some(),
            state,
            scanned: 0,
            collected: None,
        }
    }

    /// Checks the shard at `position` of a segment's placement: reads it
    /// back, or, on a store that scrubs itself, only looks that it is there
    /// and whole.
    async fn check(&self, segment: &Segment, position: u16, id: ShardId, store_id: &str) -> Check {
        let Some(store) = self.data.stores().get(store_id) else {
            return Check::Bad(position);
        };
        if self.data.stores().is_down(store_id) {
            return Check::Skipped;
        }
        let len = location::geometry(segment).shard_file_len(segment.size, usize::from(id.index));
        let found = if store.self_scrubbing().is_some() {
            match store.stat(id).await {
                Ok(Some(stat)) if stat.size == len => Ok(0),
                Ok(Some(stat)) => Err(format!("{} bytes where {len} belong", stat.size)),
                Ok(None) => Err("missing".to_owned()),
                Err(e) => {
                    tracing::warn!(shard = %id, store = store_id, error = %e, "scrub: cannot stat a shard on its node");
                    return Check::Skipped;
                }
            }
        } else {
            scrub_shard(store.as_ref(), id)
                .await
                .map(|_| len)
                .map_err(|e| e.to_string())
        };
        match found {
            Ok(read) => Check::Sound(read),
            Err(reason) => {
                tracing::warn!(shard = %id, store = store_id, %reason, "scrub: bad shard");
                counter!("tessera_scrub_bad_shards_total").increment(1);
                Check::Bad(position)
            }
        }
    }

    /// Collects the findings of every store that scrubs itself and is up,
    /// queues repair for them, and acknowledges them once queued.
    async fn collect(&mut self) -> Result<(), JobError> {
        self.collected = Some(Instant::now());
        for store in self.data.stores().all() {
            let Some(scrubbing) = store.self_scrubbing() else {
                continue;
            };
            if self.data.stores().is_down(store.id()) {
                continue;
            }
            let findings = match scrubbing.scrub_findings().await {
                Ok(findings) => findings,
                Err(e) => {
                    tracing::warn!(store = store.id(), error = %e, "scrub: collecting a node's findings failed");
                    continue;
                }
            };
            let Some(through) = findings.iter().map(|f| f.seq).max() else {
                continue;
            };
            if self.queue_findings(store.id(), &findings).await? > 0 {
                self.jobs.wake("repair");
            }
            // Not acknowledged: they come again, and repair checks a shard
            // queued twice only once.
            if let Err(e) = scrubbing.acknowledge_findings(through).await {
                tracing::warn!(store = store.id(), error = %e, "scrub: acknowledging a node's findings failed");
            }
        }
        Ok(())
    }

    /// Queues repair (through raft) for the `findings` of store `store_id`
    /// whose shards the metadata still places there; returns how many.
    async fn queue_findings(
        &self,
        store_id: &str,
        findings: &[ScrubFinding],
    ) -> Result<usize, JobError> {
        let mut by_segment: BTreeMap<([u8; 16], u32), Vec<u16>> = BTreeMap::new();
        for f in findings {
            by_segment
                .entry((f.shard.object.0, f.shard.part))
                .or_default()
                .push(f.shard.index);
        }
        let keys: Vec<([u8; 16], u32)> = by_segment.keys().copied().collect();
        let records = self
            .data
            .meta()
            .read_local(move |view| {
                keys.iter()
                    .map(|(object, part)| view.segment(object, *part))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let mut queued = 0;
        for (record, (_, mut shards)) in records.into_iter().zip(by_segment) {
            // Unreferenced by now (deleted, or rebuilt elsewhere): nothing to repair.
            let Some(record) = record else { continue };
            let segment = &record.segment;
            // Stripe shards found bad on this store: the positions the
            // placement still keeps them at here.
            let mut shards: Vec<u16> = shards
                .drain(..)
                .filter_map(|i| location::position_on(segment, i, store_id))
                .collect();
            shards.sort_unstable();
            shards.dedup();
            if shards.is_empty() {
                continue;
            }
            tracing::warn!(
                object = %hex::encode(segment.object_id),
                part = segment.part,
                ?shards,
                store = store_id,
                "scrub: the node found bad shards; queued for repair"
            );
            counter!("tessera_scrub_bad_shards_total").increment(shards.len() as u64);
            queued += shards.len();
            self.data.queue_repair(segment, shards).await?;
        }
        Ok(queued)
    }

    /// Starts a pass on every node (an operator asked for one).
    async fn start_node_passes(&self) {
        for store in self.data.stores().all() {
            if let Some(scrubbing) = store.self_scrubbing()
                && !self.data.stores().is_down(store.id())
                && let Err(e) = scrubbing.start_scrub().await
            {
                tracing::warn!(store = store.id(), error = %e, "scrub: starting a node's pass failed");
            }
        }
    }
}

#[async_trait::async_trait]
impl Job for ScrubJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let status = self.data.meta().status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        if !self.running
            || self
                .collected
                .is_none_or(|at| at.elapsed() >= COLLECT_EVERY)
        {
            self.collect().await?;
        }
        if !self.running {
            let requested = progress.take_request();
            if !requested && !self.state.due(self.interval) {
                return Ok(Pass::Idle);
            }
            if requested {
                self.start_node_passes().await;
            }
            self.running = true;
            self.scanned = 0;
            tracing::info!("scrub: pass started");
        }
        let after = self.state.cursor().and_then(|c| {
            let mut key = [0u8; 20];
            hex::decode_to_slice(c, &mut key).ok().map(|()| key)
        });
        let (batch, total) = self
            .data
            .meta()
            .read_local(move |view| Ok((view.segments_after(after, BATCH)?, view.segment_count()?)))
            .await?;
        progress.set_queued(total.saturating_sub(self.scanned));
        for (key, record) in &batch {
            let segment = &record.segment;
            let shards = match location::shards(segment) {
                Ok(shards) => shards,
                Err(e) => {
                    tracing::error!(error = %e, "scrub: unusable segment record skipped");
                    continue;
                }
            };
            // Every shard of the segment at once: each read waits on its disk.
            let checks = shards
                .filter(|(position, _, _)| !segment.missing.contains(position))
                .map(|(position, id, store_id)| self.check(segment, position, id, store_id));
            let mut bad = Vec::new();
            let mut bytes = 0;
            for check in futures::future::join_all(checks).await {
                match check {
                    Check::Sound(len) => bytes += len,
                    Check::Bad(index) => bad.push(index),
                    Check::Skipped => {}
                }
            }
            if !bad.is_empty() {
                self.data.queue_repair(segment, bad).await?;
                self.jobs.wake("repair");
            }
            self.rate.take(bytes).await;
            progress.done(1, bytes);
            self.scanned += 1;
            progress.set_queued(total.saturating_sub(self.scanned));
            self.state.set_cursor(hex::encode(key));
        }
        if batch.len() < BATCH {
            self.running = false;
            self.state.finish();
            progress.set_queued(0);
            tracing::info!(segments = self.scanned, "scrub: pass finished");
            return Ok(Pass::Idle);
        }
        self.state.save();
        Ok(Pass::More)
    }
}
