//! Scrub: reads every shard of every referenced segment back from its store
//! and verifies each block's xxh3, so that bit rot, lost files and wiped
//! disks are found before a read needs the shard. Findings go to the
//! repair queue.
//!
//! A pass walks the segment index in key order, a batch per step, reading
//! at most the configured bytes per second. Its position is saved after
//! every batch (`<data-dir>/scrub.state`), so a restart resumes where it
//! stopped; a finished pass records when it finished, and the next starts
//! once that is a scrub interval ago, or when an operator asks
//! (`tessera admin scrub start`). Shards on stores that are down are left
//! to the health probe and repair.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::counter;
use tessera_raft::model::Segment;
use tessera_storage::{ShardId, scrub_shard};

use super::job::{Job, JobError, Jobs, Pass, Progress, RateLimit};
use crate::data::{DataPlane, location};
use crate::datadir::write_private_file;

/// Segments verified per step.
const BATCH: usize = 32;

/// Where a scrub stands, as saved between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ScrubState {
    /// Unix seconds when the last full pass finished (0: never).
    finished: u64,
    /// The last segment key verified in the pass under way, if one is.
    cursor: Option<[u8; 20]>,
}

impl ScrubState {
    fn encode(&self) -> String {
        let cursor = self.cursor.map_or_else(|| "-".to_owned(), hex::encode);
        format!("{} {cursor}", self.finished)
    }

    /// Reads a saved state; anything unreadable starts afresh.
    fn decode(text: &str) -> Self {
        let mut words = text.split_whitespace();
        let finished = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let cursor = words.next().and_then(|w| {
            let mut key = [0u8; 20];
            hex::decode_to_slice(w, &mut key).ok().map(|()| key)
        });
        ScrubState { finished, cursor }
    }
}

/// What checking one shard found.
enum Check {
    /// Intact: its file's length in bytes.
    Sound(u64),
    /// Missing or corrupt: its index.
    Bad(u16),
    /// Its store is down (left to the health probe and repair).
    Skipped,
}

/// The scrub job.
pub struct ScrubJob {
    data: DataPlane,
    /// To wake repair as soon as a finding is queued.
    jobs: Jobs,
    rate: RateLimit,
    interval: Duration,
    state_file: PathBuf,
    state: ScrubState,
    /// Whether a pass is under way.
    running: bool,
    /// Segments verified in the pass under way (since this server started).
    scanned: u64,
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
        let state = std::fs::read_to_string(&state_file)
            .map(|t| ScrubState::decode(&t))
            .unwrap_or_default();
        ScrubJob {
            data,
            jobs,
            rate: RateLimit::new(bytes_per_sec),
            interval,
            state_file,
            running: state.cursor.is_some(),
            state,
            scanned: 0,
        }
    }

    fn save(&self) {
        if let Err(e) = write_private_file(&self.state_file, &self.state.encode()) {
            tracing::warn!(error = %e, file = %self.state_file.display(), "scrub: saving its position failed");
        }
    }

    /// Verifies one shard where its segment's placement puts it.
    async fn check(&self, segment: &Segment, id: ShardId, store_id: &str) -> Check {
        let Some(store) = self.data.stores().get(store_id) else {
            return Check::Bad(id.index);
        };
        if self.data.stores().is_down(store_id) {
            return Check::Skipped;
        }
        match scrub_shard(store.as_ref(), id).await {
            Ok(summary) => Check::Sound(
                location::geometry(segment)
                    .shard_file_len(summary.trailer.size, usize::from(id.index)),
            ),
            Err(e) => {
                tracing::warn!(shard = %id, store = store_id, error = %e, "scrub: bad shard");
                counter!("tessera_scrub_bad_shards_total").increment(1);
                Check::Bad(id.index)
            }
        }
    }

    fn due(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now.saturating_sub(self.state.finished) >= self.interval.as_secs()
    }
}

#[async_trait::async_trait]
impl Job for ScrubJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let status = self.data.meta().status();
        if status.leader != Some(status.id) {
            return Ok(Pass::Idle);
        }
        if !self.running {
            if !progress.take_request() && !self.due() {
                return Ok(Pass::Idle);
            }
            self.running = true;
            self.state.cursor = None;
            self.scanned = 0;
            tracing::info!("scrub: pass started");
        }
        let after = self.state.cursor;
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
                .filter(|(id, _)| !segment.missing.contains(&id.index))
                .map(|(id, store_id)| self.check(segment, id, store_id));
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
            self.state.cursor = Some(*key);
        }
        if batch.len() < BATCH {
            self.running = false;
            self.state.cursor = None;
            self.state.finished = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            progress.set_queued(0);
            tracing::info!("scrub: pass finished");
            self.save();
            return Ok(Pass::Idle);
        }
        self.save();
        Ok(Pass::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_garbage_starts_afresh() {
        let state = ScrubState {
            finished: 1_700_000_000,
            cursor: Some([7; 20]),
        };
        assert_eq!(ScrubState::decode(&state.encode()), state);
        let idle = ScrubState {
            finished: 5,
            cursor: None,
        };
        assert_eq!(ScrubState::decode(&idle.encode()), idle);
        assert_eq!(ScrubState::decode("nonsense"), ScrubState::default());
    }
}
