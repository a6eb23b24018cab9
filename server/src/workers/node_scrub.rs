//! A storage node's scrub: walks every shard file on the node's own
//! stores and verifies each block's xxh3 where it is (no key needed, see
//! [`scrub_shard`]), reading at most `scrub_rate_mib` per second; a full
//! pass every `scrub_interval_days`, or at once when a gateway asks
//! (`tessera admin scrub start`). A bad or unreadable shard is recorded in
//! the node's findings ([`NodeScrub`]), which gateways collect, queue for
//! repair, and then acknowledge.
//!
//! The position (a store, and the last shard verified on it) is saved
//! after every batch in `<data-dir>/scrub.state`, so a restarted node
//! resumes its pass. Progress: `tessera_job_done_total{worker="node-scrub"}`
//! (shards verified) and `tessera_job_bytes_total{worker="node-scrub"}`,
//! `tessera_node_scrub_bad_shards_total`, `tessera_node_scrub_passes_total`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use metrics::counter;
use tessera_storage::{NodeScrub, ShardId, ShardStore, StorageError, scrub_shard};

use super::job::{Job, JobError, Pass, Progress, RateLimit};
use super::pass_state::PassState;

/// Shards verified per step.
const BATCH: usize = 64;

/// The node's scrub job.
pub struct NodeScrubJob {
    stores: Vec<Arc<dyn ShardStore>>,
    scrub: Arc<NodeScrub>,
    rate: RateLimit,
    interval: Duration,
    /// Where the pass stands: `store` or `store/shard`.
    state: PassState,
    /// Whether a pass is under way.
    running: bool,
    /// Shards verified and found bad in the pass under way (since start).
    verified: u64,
    bad: u64,
}

impl NodeScrubJob {
    /// Scrubs `stores`, a full pass every `interval`, reading at most
    /// `bytes_per_sec` (0: no limit), its position kept in `state_file`
    /// and its findings in `scrub`.
    pub fn new(
        stores: Vec<Arc<dyn ShardStore>>,
        scrub: Arc<NodeScrub>,
        interval: Duration,
        bytes_per_sec: u64,
        state_file: PathBuf,
    ) -> Self {
        let state = PassState::load(state_file);
        counter!("tessera_node_scrub_bad_shards_total").increment(0);
        counter!("tessera_node_scrub_passes_total").increment(0);
        NodeScrubJob {
            stores,
            scrub,
            rate: RateLimit::new(bytes_per_sec),
            interval,
            running: state.cursor().is_some(),
            state,
            verified: 0,
            bad: 0,
        }
    }

    /// The store the pass is on and the last shard verified there (the
    /// first store when the saved one is gone).
    fn position(&self) -> (usize, Option<ShardId>) {
        let cursor = self.state.cursor().unwrap_or("");
        let (store, shard) = cursor
            .split_once('/')
            .map_or((cursor, None), |(store, shard)| (store, shard.parse().ok()));
        match self.stores.iter().position(|s| s.id() == store) {
            Some(index) => (index, shard),
            None => (0, None),
        }
    }

    /// Verifies one shard, recording it when bad; returns the bytes read.
    async fn verify(&mut self, store: &dyn ShardStore, id: ShardId) -> Result<u64, JobError> {
        match scrub_shard(store, id).await {
            Ok(summary) => Ok(summary
                .header
                .geometry
                .shard_file_len(summary.trailer.size, usize::from(id.index))),
            // Removed since it was listed (the gateways' GC).
            Err(StorageError::NotFound(_)) => Ok(0),
            Err(e) => {
                tracing::warn!(shard = %id, store = store.id(), error = %e, "node scrub: bad shard");
                counter!("tessera_node_scrub_bad_shards_total").increment(1);
                self.bad += 1;
                self.scrub.record(store.id(), id, &e.to_string())?;
                Ok(0)
            }
        }
    }
}

#[async_trait::async_trait]
impl Job for NodeScrubJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        if !self.running {
            let requested = self.scrub.take_request() | progress.take_request();
            if !requested && !self.state.due(self.interval) {
                return Ok(Pass::Idle);
            }
            let Some(first) = self.stores.first() else {
                return Ok(Pass::Idle);
            };
            self.state.set_cursor(first.id().to_owned());
            self.running = true;
            (self.verified, self.bad) = (0, 0);
            tracing::info!(stores = self.stores.len(), "node scrub: pass started");
        }
        let (index, after) = self.position();
        let store = Arc::clone(&self.stores[index]);
        let page = store.list(after, BATCH).await?;
        for &id in &page {
            let bytes = self.verify(store.as_ref(), id).await?;
            self.rate.take(bytes).await;
            progress.done(1, bytes);
            self.verified += 1;
            self.state.set_cursor(format!("{}/{id}", store.id()));
        }
        if page.len() < BATCH {
            match self.stores.get(index + 1) {
                Some(next) => self.state.set_cursor(next.id().to_owned()),
                None => {
                    self.running = false;
                    self.state.finish();
                    counter!("tessera_node_scrub_passes_total").increment(1);
                    tracing::info!(
                        shards = self.verified,
                        bad = self.bad,
                        "node scrub: pass finished"
                    );
                    return Ok(Pass::Idle);
                }
            }
        }
        self.state.save();
        Ok(Pass::More)
    }
}
