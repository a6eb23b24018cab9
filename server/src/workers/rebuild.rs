//! Putting back the shards of one segment where they belong: what repair
//! and the site replicator share.
//!
//! For every shard asked for: a shard not known missing that is found
//! intact where it is stays as it is (a report from a read that only timed
//! out, a disk that came back). Otherwise it is written onto its own store
//! when that is up; when it is down, it waits for it until the repair
//! grace declares it lost (see `evacuate`), then goes onto a healthy store
//! holding no other shard of the segment (on the copy's own site, for a
//! segment kept as a copy per site). The same sealed shard kept by another
//! copy is copied as it is; without one it is rebuilt from k others. Either
//! way it is verified where it landed before it counts (by the storage
//! node itself, so its bytes do not cross the network a second time; a
//! local store is read back).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera_raft::command::Command;
use tessera_raft::model::Segment;
use tessera_raft::{MetaError, SegmentRecord};
use tessera_storage::{Pace, ShardStore, StorageError, copy_shard, repair_shard, verify_shard};

use super::job::{Progress, RateLimit};
use crate::data::{DataPlane, location};
use crate::placement::StoreSet;

/// First wait after a failed segment; doubled per failure up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(2);
/// Longest wait between attempts at one segment.
const MAX_RETRY: Duration = Duration::from_secs(120);

/// A segment: its storage object id and part.
pub(crate) type SegmentKey = ([u8; 16], u32);

/// Puts shards back, at most at its rate.
pub(crate) struct Rebuilder {
    data: DataPlane,
    rate: Arc<RateLimit>,
}

/// What putting back one segment's shards achieved.
#[derive(Default)]
pub(crate) struct Outcome {
    /// Positions written, verified, and the stores they are on now.
    pub(crate) rebuilt: Vec<(u16, String)>,
    /// Positions found intact where they are.
    pub(crate) sound: Vec<u16>,
    /// Positions that could not be put back this time.
    pub(crate) failed: usize,
    /// Bytes written.
    pub(crate) bytes: u64,
}

impl Rebuilder {
    /// Puts shards back over the data plane's stores, writing at most
    /// `bytes_per_sec` (0: no limit).
    pub(crate) fn new(data: DataPlane, bytes_per_sec: u64) -> Self {
        Rebuilder {
            data,
            rate: Arc::new(RateLimit::new(bytes_per_sec)),
        }
    }

    /// The data plane it works over.
    pub(crate) fn data(&self) -> &DataPlane {
        &self.data
    }

    /// Checks or puts back the shards at `positions` of one segment.
    pub(crate) async fn rebuild(&self, positions: &[u16], record: &SegmentRecord) -> Outcome {
        let mut out = Outcome::default();
        let segment = &record.segment;
        let key = match self.data.open_key(&record.wrapped_key) {
            Ok(key) => key.key,
            Err(e) => {
                tracing::error!(error = %e, "rebuild: cannot open the segment's data key");
                out.failed = positions.len();
                return out;
            }
        };
        let stores = self.data.stores();
        // Where the shards are as this pass moves them: a second shard
        // rebuilt elsewhere must not land beside the first.
        let mut placement = segment.placement.clone();
        for &index in positions {
            let id = location::shard_id(segment, index);
            let Some(home) = segment.placement.get(usize::from(index)) else {
                // Out of range: nothing to rebuild; CompleteRepair drops it.
                out.sound.push(index);
                continue;
            };
            // A shard that is not known missing and is found intact stays.
            if !segment.missing.contains(&index)
                && let Some(store) = stores
                    .get(home)
                    .filter(|s| !stores.is_down(s.id()) && !stores.is_draining(s.id()))
                && self.verified(store.as_ref(), segment, index).await.is_ok()
            {
                out.sound.push(index);
                continue;
            }
            let site = location::copy_site(segment, index, stores);
            let Some(target) =
                stores.repair_target(&placement, usize::from(index), site.as_deref())
            else {
                tracing::warn!(shard = %id, "rebuild: no healthy store can take the shard");
                out.failed += 1;
                continue;
            };
            match self
                .put_back(segment, &key, index, positions, &target)
                .await
            {
                Ok(bytes) => {
                    tracing::info!(shard = %id, store = target.id(), "rebuild: shard written and verified");
                    out.rebuilt.push((index, target.id().to_owned()));
                    if let Some(slot) = placement.get_mut(usize::from(index)) {
                        target.id().clone_into(slot);
                    }
                    out.bytes += bytes;
                }
                Err(e) => {
                    tracing::warn!(shard = %id, store = target.id(), error = %e, "rebuild: writing the shard failed");
                    if !matches!(e, StorageError::NotFound(_)) {
                        crate::metrics::backend_error(target.id());
                    }
                    out.failed += 1;
                }
            }
        }
        out
    }

    /// Writes the shard at `index` onto `target` and verifies it there:
    /// copied from another copy's intact twin when there is one, else
    /// rebuilt from the other shards (leaving out `lacking`, the positions
    /// being put back). Returns the bytes written.
    async fn put_back(
        &self,
        segment: &Segment,
        key: &tessera_storage::DataKey,
        index: u16,
        lacking: &[u16],
        target: &Arc<dyn ShardStore>,
    ) -> Result<u64, StorageError> {
        let id = location::shard_id(segment, index);
        let pace = self.pace();
        for twin in self.twins(segment, index, lacking, target.id()) {
            let copied = async {
                copy_shard(twin.as_ref(), id, target.as_ref(), Some(pace.clone())).await?;
                self.verified(target.as_ref(), segment, index).await
            }
            .await;
            match copied {
                Ok(len) => return Ok(len),
                Err(e) => {
                    tracing::warn!(shard = %id, from = twin.id(), error = %e, "rebuild: copying from another site's copy failed");
                }
            }
        }
        let loc = self
            .data
            .locate(segment, &[index])
            .map_err(|e| StorageError::InvalidGeometry(e.to_string()))?;
        let stripe_index = location::stripe_index(segment, index);
        repair_shard(&loc, key, stripe_index, Arc::clone(target), Some(pace)).await?;
        self.verified(target.as_ref(), segment, index).await
    }

    /// Checks the shard at position `index` of `segment` on `store` (on the
    /// node where it is, when it is a node's) and that it is that shard of
    /// this segment: same geometry and size, not merely a well-formed file
    /// (a node's summary is only as good as the node). Returns its length.
    async fn verified(
        &self,
        store: &dyn ShardStore,
        segment: &Segment,
        index: u16,
    ) -> Result<u64, StorageError> {
        let id = location::shard_id(segment, index);
        let summary = verify_shard(store, id).await?;
        // verify_shard has checked that the file names shard `id`.
        if summary.header.geometry != location::geometry(segment)
            || summary.trailer.size != segment.size
        {
            return Err(StorageError::corrupt(
                id,
                "the shard's header or trailer does not match its segment",
            ));
        }
        Ok(self.shard_len(segment, index, segment.size))
    }

    /// The stores that keep the same stripe shard as position `index` in
    /// another copy, intact as far as known: not lacking, not down, not
    /// `target`.
    fn twins(
        &self,
        segment: &Segment,
        index: u16,
        lacking: &[u16],
        target: &str,
    ) -> Vec<Arc<dyn ShardStore>> {
        let stores = self.data.stores();
        location::positions(segment, location::stripe_index(segment, index))
            .into_iter()
            .filter(|p| *p != index && !lacking.contains(p) && !segment.missing.contains(p))
            .filter_map(|p| segment.placement.get(usize::from(p)))
            .filter(|id| id.as_str() != target && !stores.is_down(id))
            .filter_map(|id| stores.get(id))
            .collect()
    }

    /// Bytes of the shard file at `index` of a segment of `size` bytes.
    fn shard_len(&self, segment: &Segment, index: u16, size: u64) -> u64 {
        location::geometry(segment)
            .shard_file_len(size, usize::from(location::stripe_index(segment, index)))
    }

    /// Records what putting back a segment's shards achieved: in the
    /// metadata (one `CompleteRepair`) when any shard was finished or
    /// nobody references the segment any more, in `progress`, and in
    /// `retries`. Returns how many shards were finished.
    pub(crate) async fn settle(
        &self,
        segment: SegmentKey,
        referenced: bool,
        outcome: Outcome,
        progress: &Progress,
        retries: &mut Retries,
    ) -> Result<u64, MetaError> {
        if outcome.failed > 0 {
            progress.failed(outcome.failed as u64);
        }
        retries.record(segment, outcome.failed > 0);
        let finished = (outcome.rebuilt.len() + outcome.sound.len()) as u64;
        if finished > 0 || !referenced {
            self.data
                .meta()
                .write(Command::CompleteRepair {
                    object_id: segment.0,
                    part: segment.1,
                    rebuilt: outcome.rebuilt,
                    sound: outcome.sound,
                })
                .await?;
            progress.done(finished, outcome.bytes);
        }
        Ok(finished)
    }

    /// The rate limit as the storage layer paces with it.
    fn pace(&self) -> Pace {
        let rate = Arc::clone(&self.rate);
        Arc::new(move |bytes| {
            let rate = Arc::clone(&rate);
            Box::pin(async move { rate.take(bytes).await })
        })
    }
}

/// Segments that failed: when each may be tried again, waiting twice as
/// long after each failure; all may go again once the stores change (one
/// came back, or went).
#[derive(Default)]
pub(crate) struct Retries {
    at: HashMap<SegmentKey, (Instant, u32)>,
    /// [`StoreSet::changes`] when the waits were last cleared.
    store_changes: usize,
}

impl Retries {
    /// Forgets every wait when the stores changed, and the waits of
    /// segments no longer `queued`.
    pub(crate) fn refresh(&mut self, stores: &StoreSet, queued: impl Fn(&SegmentKey) -> bool) {
        if stores.changes() != self.store_changes {
            self.store_changes = stores.changes();
            self.at.clear();
        }
        self.at.retain(|segment, _| queued(segment));
    }

    /// Whether `segment` may be tried at `now`.
    pub(crate) fn ready(&self, segment: &SegmentKey, now: Instant) -> bool {
        self.at.get(segment).is_none_or(|(at, _)| *at <= now)
    }

    /// Records an attempt at `segment`.
    fn record(&mut self, segment: SegmentKey, failed: bool) {
        if !failed {
            self.at.remove(&segment);
            return;
        }
        let failures = self.at.get(&segment).map_or(0, |(_, n)| *n) + 1;
        let wait = FIRST_RETRY
            .saturating_mul(1 << failures.min(16))
            .min(MAX_RETRY);
        self.at.insert(segment, (Instant::now() + wait, failures));
    }
}
