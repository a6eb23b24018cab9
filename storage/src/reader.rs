//! The object reader: any byte range, verified, decrypted, degraded-tolerant.
//!
//! For each stripe covering the range the reader fetches only the data blocks
//! it needs, through one [`ShardStore::open_reader`] per shard over the whole
//! range, each block into a buffer of its own. A shard that
//! is missing, errors, times out or fails its xxh3 check is reported, dropped,
//! and replaced by other shards (parity first-come) from that stripe on; the
//! missing data blocks are rebuilt with the codec. Each data block's AEAD tag
//! is checked before a byte of it is returned, so corruption ends the stream
//! with an error, never with wrong bytes.
//!
//! Reads may be hedged ([`ReadOptions::hedge_after`]): when blocks are
//! still missing after that long, as many spare shards as blocks are late
//! are read beside them, the stripe completes from whichever k arrive
//! first, and the shards that were outrun are reported slow and not read
//! again by this read. A slow store thus costs a read the hedge delay, not
//! the shard timeout.
//!
//! A producer task fetches stripe s + 1 while a blocking job verifies,
//! rebuilds and decrypts stripe s. Blocks are decrypted in place and yielded
//! one by one without a copy. With a [`MemoryBudget`] the producer reserves
//! each stripe before fetching it and takes the buffers from the budget's
//! pool; when the budget is spent it first yields the stripe it decoded, then
//! waits (see [`ReadOptions::budget`]).

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::budget::{MemoryBudget, Reservation, buffer_for, recycle, reserved_bytes};
use crate::codec::{Codec, DEFAULT_CODEC};
use crate::crypto::{BlockCipher, BlockPosition, DataKey, TAG_LEN};
use crate::error::StorageError;
use crate::format::{Geometry, HASH_LEN, block_hash, check_block, parity_len};
use crate::store::{ByteStream, ObjectId, ShardId, ShardReader, ShardStore};

/// Where an object's shards are.
#[derive(Clone, Debug)]
pub struct ObjectLocation {
    /// The object (version or segment) id.
    pub object: ObjectId,
    /// Part number.
    pub part: u32,
    /// Plain-text size in bytes.
    pub size: u64,
    /// Its geometry.
    pub geometry: Geometry,
    /// `stores[i]` holds shard i; `None` when unknown or down.
    pub stores: Vec<Option<Arc<dyn ShardStore>>>,
}

impl ObjectLocation {
    /// Length of framed block `stripe` of shard `index` (sealed bytes + xxh3).
    fn framed_len(&self, stripe: u64, index: usize) -> usize {
        self.geometry.sealed_len(self.size, stripe, index) + HASH_LEN
    }

    /// Shard id of shard `index`.
    pub fn shard(&self, index: usize) -> ShardId {
        ShardId {
            object: self.object,
            part: self.part,
            index: index as u16,
        }
    }
}

/// Called with each shard found missing, failing, slow or corrupt.
pub type BadShardCallback = Arc<dyn Fn(ShardId, &StorageError) + Send + Sync>;

/// Called with each shard a hedged read outran, and the id of its store.
pub type SlowShardCallback = Arc<dyn Fn(ShardId, &str) + Send + Sync>;

/// How to read.
#[derive(Clone)]
pub struct ReadOptions {
    /// Longest wait for a store to open a shard or deliver the next block.
    pub shard_timeout: Duration,
    /// Told about every bad shard (to queue a repair). Shards whose store is
    /// `None` in the location are not reported: the caller already knows.
    pub on_bad_shard: Option<BadShardCallback>,
    /// How long to wait for a block before reading spare shards beside it
    /// (see the module docs); `None`: wait for every shard up to
    /// `shard_timeout`.
    pub hedge_after: Option<Duration>,
    /// Told about every shard a hedged read outran (its store is slow).
    pub on_slow_shard: Option<SlowShardCallback>,
    /// Memory shared with other reads: each stripe reserves the bytes it
    /// will hold (the framed blocks it fetches, which are decrypted in place)
    /// before it is fetched, reads them into the budget's pooled buffers and
    /// keeps the reservation until the consumer drops the last bytes the
    /// stripe yielded. `None`: fresh buffers, and only the reader's pipeline
    /// (about three stripes) bounds its memory.
    pub budget: Option<MemoryBudget>,
}

impl Default for ReadOptions {
    /// 10 s timeout, no hedging, no callbacks, no budget.
    fn default() -> Self {
        ReadOptions {
            shard_timeout: Duration::from_secs(10),
            on_bad_shard: None,
            hedge_after: None,
            on_slow_shard: None,
            budget: None,
        }
    }
}

impl std::fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOptions")
            .field("shard_timeout", &self.shard_timeout)
            .field("on_bad_shard", &self.on_bad_shard.is_some())
            .field("hedge_after", &self.hedge_after)
            .field("on_slow_shard", &self.on_slow_shard.is_some())
            .field("budget", &self.budget)
            .finish()
    }
}

/// Streams bytes `range` of the object. The stream yields exactly
/// `range.end - range.start` bytes or ends with an `Err`; never wrong bytes.
pub fn read_object(
    loc: ObjectLocation,
    key: DataKey,
    range: Range<u64>,
    opts: ReadOptions,
) -> ByteStream {
    if range.start > range.end || range.end > loc.size {
        let err = StorageError::InvalidRange {
            start: range.start,
            end: range.end,
            size: loc.size,
        };
        return futures::stream::once(async move { Err(err) }).boxed();
    }
    if let Err(e) = check_location(&loc) {
        return futures::stream::once(async move { Err(e) }).boxed();
    }
    if range.is_empty() {
        return futures::stream::empty().boxed();
    }
    let expected = range.end - range.start;
    let (tx, rx) = mpsc::channel(1);
    let producer = Producer {
        // In the caller's span, so the shard reads are part of its trace.
        task: Some(tokio::spawn(
            produce(loc, key, range, opts, tx).in_current_span(),
        )),
    };
    futures::stream::unfold(
        (rx, producer, 0u64),
        move |(mut rx, producer, delivered)| async move {
            if delivered >= expected {
                return None;
            }
            match rx.recv().await {
                Some(Ok(bytes)) => {
                    let delivered = delivered + bytes.len() as u64;
                    Some((Ok(bytes), (rx, producer, delivered)))
                }
                Some(Err(e)) => Some((Err(e), (rx, producer, u64::MAX))),
                None => Some((
                    Err(StorageError::Codec("object reader stopped early".into())),
                    (rx, producer, u64::MAX),
                )),
            }
        },
    )
    .boxed()
}

/// Stops the producer when the stream is dropped.
struct Producer {
    task: Option<JoinHandle<()>>,
}

impl Drop for Producer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub(crate) fn check_location(loc: &ObjectLocation) -> Result<(), StorageError> {
    loc.geometry.validate()?;
    if loc.stores.len() != loc.geometry.total_shards() {
        return Err(StorageError::InvalidGeometry(format!(
            "{} stores given for {} shards",
            loc.stores.len(),
            loc.geometry.total_shards()
        )));
    }
    Ok(())
}

async fn produce(
    loc: ObjectLocation,
    key: DataKey,
    range: Range<u64>,
    opts: ReadOptions,
    tx: mpsc::Sender<Result<Bytes, StorageError>>,
) {
    let g = loc.geometry;
    let stripe_size = g.stripe_size();
    let first = range.start / stripe_size;
    let last = (range.end - 1) / stripe_size;
    let cipher = Arc::new(key.block_cipher());
    let loc = Arc::new(loc);
    let budget = opts.budget.clone();
    let mut source = StripeSource::new(loc.clone(), opts, last);
    let mut decoding: Option<Decoding> = None;
    for stripe in first..=last {
        let base = stripe * stripe_size;
        let lo = range.start.max(base) - base;
        let hi = range.end.min(base + stripe_size) - base;
        let block = u64::from(g.block_size);
        let wanted: Vec<usize> = ((lo / block) as usize..=((hi - 1) / block) as usize).collect();
        let reservation = match &budget {
            None => None,
            Some(budget) => {
                let cost = source.stripe_cost(stripe, &wanted);
                let reserved = match budget.try_reserve(cost) {
                    Some(r) => r,
                    None => {
                        // Yield the decoded stripe before waiting: readers
                        // waiting while they hold stripes only they can hand
                        // on would deadlock each other.
                        if let Some(job) = decoding.take()
                            && !forward(&tx, job).await
                        {
                            return;
                        }
                        budget.reserve(cost).await
                    }
                };
                Some(Arc::new(reserved))
            }
        };
        let fetched = source
            .fetch_stripe(stripe, &wanted, reservation.as_ref())
            .await;
        if let Some(job) = decoding.take()
            && !forward(&tx, job).await
        {
            return;
        }
        let records = match fetched {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let job = StripeJob {
            loc: loc.clone(),
            cipher: cipher.clone(),
            stripe,
            records,
            reservation,
        };
        decoding = Some(tokio::task::spawn_blocking(move || {
            job.decrypt_range(lo..hi)
        }));
    }
    if let Some(job) = decoding {
        forward(&tx, job).await;
    }
}

/// A stripe being verified, rebuilt and decrypted: its plain blocks.
type Decoding = JoinHandle<Result<Vec<Bytes>, StorageError>>;

/// Sends a finished stripe's blocks to the consumer; false when the read is over.
async fn forward(tx: &mpsc::Sender<Result<Bytes, StorageError>>, job: Decoding) -> bool {
    let out = job
        .await
        .unwrap_or_else(|e| Err(StorageError::Codec(format!("decode task failed: {e}"))));
    match out {
        Ok(blocks) => {
            for block in blocks {
                if tx.send(Ok(block)).await.is_err() {
                    return false;
                }
            }
            true
        }
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            false
        }
    }
}

/// An open read of consecutive blocks of one shard.
pub(crate) struct Cursor {
    reader: Box<dyn ShardReader>,
    next_block: u64,
}

impl Cursor {
    /// A cursor over `reader`, whose first bytes are block `first_block`.
    pub(crate) fn new(reader: Box<dyn ShardReader>, first_block: u64) -> Self {
        Cursor {
            reader,
            next_block: first_block,
        }
    }

    /// Appends exactly `len` bytes (one framed block) to `buf`.
    pub(crate) async fn take(
        &mut self,
        buf: Vec<u8>,
        len: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, StorageError> {
        tokio::time::timeout(timeout, self.reader.read(buf, len))
            .await
            .map_err(|_| StorageError::Timeout)?
    }
}

/// Fetches verified (xxh3) sealed blocks stripe by stripe, replacing bad shards.
pub(crate) struct StripeSource {
    loc: Arc<ObjectLocation>,
    opts: ReadOptions,
    /// Cursors opened as replacements run to this stripe.
    last_stripe: u64,
    cursors: Vec<Option<Cursor>>,
    bad: Vec<bool>,
}

impl StripeSource {
    pub(crate) fn new(loc: Arc<ObjectLocation>, opts: ReadOptions, last_stripe: u64) -> Self {
        let n = loc.geometry.total_shards();
        let bad = loc.stores.iter().map(Option::is_none).collect();
        let mut cursors = Vec::with_capacity(n);
        cursors.resize_with(n, || None);
        StripeSource {
            loc,
            opts,
            last_stripe,
            cursors,
            bad,
        }
    }

    /// Never reads shard `index` (e.g. the one being repaired), without reporting it.
    pub(crate) fn exclude(&mut self, index: usize) {
        self.bad[index] = true;
        self.cursors[index] = None;
    }

    fn mark_bad(&mut self, index: usize, error: &StorageError) {
        self.bad[index] = true;
        self.cursors[index] = None;
        let shard = self.loc.shard(index);
        tracing::warn!(%shard, %error, "bad shard, reading around it");
        metrics::counter!("tessera_storage_bad_shards_total").increment(1);
        if let Some(report) = &self.opts.on_bad_shard {
            report(shard, error);
        }
    }

    /// Drops shard `index` from this read because a hedged read outran it.
    fn mark_slow(&mut self, index: usize) {
        self.bad[index] = true;
        self.cursors[index] = None;
        let shard = self.loc.shard(index);
        tracing::info!(%shard, "slow shard outrun by a hedged read");
        metrics::counter!("tessera_storage_slow_shards_total").increment(1);
        if let (Some(report), Some(store)) = (&self.opts.on_slow_shard, &self.loc.stores[index]) {
            report(shard, store.id());
        }
    }

    /// The shards a read of `stripe` for `wanted` starts with: open cursors
    /// (they must advance every stripe) and the wanted shards not known bad.
    fn first_batch(&self, wanted: &[usize]) -> Vec<usize> {
        (0..self.cursors.len())
            .filter(|&i| self.cursors[i].is_some() || (wanted.contains(&i) && !self.bad[i]))
            .collect()
    }

    /// Bytes a read of `stripe` for `wanted` will hold, as far as the shards
    /// found bad so far tell: the framed block of every shard it reads, and
    /// for each wanted shard known bad one more read and the rebuilt block.
    pub(crate) fn stripe_cost(&self, stripe: u64, wanted: &[usize]) -> usize {
        let reads: usize = self
            .first_batch(wanted)
            .into_iter()
            .map(|i| self.loc.framed_len(stripe, i))
            .sum();
        let rebuilt: usize = wanted
            .iter()
            .filter(|&&j| self.bad[j])
            .map(|&j| 2 * self.loc.framed_len(stripe, j))
            .sum();
        reads + rebuilt
    }

    /// Sealed blocks of `stripe`: every block in `wanted`, or failing that at
    /// least k blocks from any shards. Index = shard index. Their buffers come
    /// from `reservation`'s pool.
    pub(crate) async fn fetch_stripe(
        &mut self,
        stripe: u64,
        wanted: &[usize],
        reservation: Option<&Arc<Reservation>>,
    ) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let n = self.cursors.len();
        let k = self.loc.geometry.k();
        let mut records: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut batch = self.first_batch(wanted);
        let mut replacing = false;
        loop {
            self.read_batch(stripe, &batch, wanted, &mut records, reservation)
                .await;
            let have = records.iter().flatten().count();
            let complete = wanted.iter().all(|&j| records[j].is_some());
            if complete || have >= k {
                if !complete && !replacing {
                    metrics::counter!("tessera_storage_degraded_stripes_total").increment(1);
                }
                return Ok(records);
            }
            replacing = true;
            // Data shards first (no decode needed if they are the wanted ones), then parity.
            batch = (0..n)
                .filter(|&i| !self.bad[i] && records[i].is_none() && self.cursors[i].is_none())
                .take(k - have)
                .collect();
            if batch.is_empty() {
                return Err(StorageError::Quorum {
                    needed: k,
                    available: have,
                });
            }
        }
    }

    /// Reads block `stripe` from each shard in `batch` in parallel; when
    /// hedging, reads spares beside the late ones and stops once `wanted`
    /// is complete or k blocks are in.
    async fn read_batch(
        &mut self,
        stripe: u64,
        batch: &[usize],
        wanted: &[usize],
        records: &mut [Option<Vec<u8>>],
        reservation: Option<&Arc<Reservation>>,
    ) {
        let loc = Arc::clone(&self.loc);
        let timeout = self.opts.shard_timeout;
        let last = self.last_stripe;
        let read = |i: usize, cursor: Option<Cursor>| {
            let loc = &loc;
            async move {
                let mut cursor = match cursor {
                    Some(c) => c,
                    None => open_cursor(loc, i, stripe, last, timeout)
                        .await
                        .map_err(|e| (i, e))?,
                };
                debug_assert_eq!(cursor.next_block, stripe);
                let len = loc.framed_len(stripe, i);
                let buf = buffer_for(reservation, len);
                let mut framed = cursor.take(buf, len, timeout).await.map_err(|e| (i, e))?;
                check_block(loc.shard(i), stripe, &framed).map_err(|e| (i, e))?;
                cursor.next_block += 1;
                framed.truncate(len - HASH_LEN);
                Ok::<_, (usize, StorageError)>((i, cursor, framed))
            }
        };
        let mut in_flight: std::collections::BTreeSet<usize> = batch.iter().copied().collect();
        let mut reads: FuturesUnordered<_> = batch
            .iter()
            .map(|&i| read(i, self.cursors[i].take()))
            .collect();
        let hedge_after = self.opts.hedge_after;
        let hedge = async move {
            match hedge_after {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(hedge);
        // The shards late at the hedge: outrun if the stripe completes without them.
        let mut late: Option<Vec<usize>> = None;
        let k = self.loc.geometry.k();
        loop {
            tokio::select! {
                next = reads.next() => match next {
                    None => break,
                    Some(Ok((i, cursor, sealed))) => {
                        in_flight.remove(&i);
                        if cursor.next_block <= self.last_stripe {
                            self.cursors[i] = Some(cursor);
                        }
                        records[i] = Some(sealed);
                    }
                    Some(Err((i, e))) => {
                        in_flight.remove(&i);
                        self.mark_bad(i, &e);
                    }
                },
                () = &mut hedge, if late.is_none() => {
                    late = Some(in_flight.iter().copied().collect());
                    let spares: Vec<usize> = (0..records.len())
                        .filter(|&i| {
                            !self.bad[i]
                                && records[i].is_none()
                                && !in_flight.contains(&i)
                                && self.cursors[i].is_none()
                        })
                        .take(in_flight.len())
                        .collect();
                    for i in spares {
                        in_flight.insert(i);
                        reads.push(read(i, None));
                    }
                }
            }
            let enough = wanted.iter().all(|&j| records[j].is_some())
                || records.iter().flatten().count() >= k;
            if late.is_some() && enough {
                break;
            }
        }
        drop(reads);
        let late = late.unwrap_or_default();
        for i in in_flight {
            if late.contains(&i) {
                self.mark_slow(i);
            } else {
                // A spare outrun by the shards it stood in for: not slow,
                // just not needed; its cursor is gone with its read.
                self.bad[i] = true;
                self.cursors[i] = None;
            }
        }
    }
}

async fn open_cursor(
    loc: &ObjectLocation,
    index: usize,
    from: u64,
    to: u64,
    timeout: Duration,
) -> Result<Cursor, StorageError> {
    let Some(store) = &loc.stores[index] else {
        return Err(StorageError::Unavailable {
            store: String::new(),
            reason: "no store for this shard".into(),
        });
    };
    let g = loc.geometry;
    let start = g.block_offset(from);
    let end = g.block_offset(to) + loc.framed_len(to, index) as u64;
    let reader = tokio::time::timeout(timeout, store.open_reader(loc.shard(index), start..end))
        .await
        .map_err(|_| StorageError::Timeout)??;
    Ok(Cursor::new(reader, from))
}

/// The CPU side of one stripe: rebuild, authenticate and decrypt.
pub(crate) struct StripeJob {
    pub loc: Arc<ObjectLocation>,
    pub cipher: Arc<BlockCipher>,
    pub stripe: u64,
    /// Sealed blocks by shard index (from [`StripeSource::fetch_stripe`]).
    pub records: Vec<Option<Vec<u8>>>,
    /// What the records are held under; their buffers go back to its pool.
    pub reservation: Option<Arc<Reservation>>,
}

impl Drop for StripeJob {
    fn drop(&mut self) {
        for buf in self.records.drain(..).flatten() {
            recycle(self.reservation.as_ref(), buf);
        }
    }
}

impl StripeJob {
    fn position(&self, index: usize) -> BlockPosition {
        BlockPosition {
            object: self.loc.object,
            part: self.loc.part,
            index: index as u16,
            block: self.stripe,
            geometry: self.loc.geometry,
        }
    }

    /// The first k records, each padded with zeros to the stripe's coded
    /// length `plen` (a shorter one is copied).
    fn padded(&self, plen: usize) -> Vec<(usize, Cow<'_, [u8]>)> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i, r)))
            .take(self.loc.geometry.k())
            .map(|(i, r)| {
                if r.len() == plen {
                    (i, Cow::Borrowed(&r[..]))
                } else {
                    let mut v = vec![0; plen];
                    v[..r.len()].copy_from_slice(r);
                    (i, Cow::Owned(v))
                }
            })
            .collect()
    }

    /// The length every record of this stripe is coded at.
    fn coded_len(&self) -> usize {
        parity_len(self.loc.geometry.sealed_len(self.loc.size, self.stripe, 0))
    }

    /// Fills in the sealed data blocks listed in `want` that were not fetched.
    pub(crate) fn rebuild(&mut self, want: &[usize]) -> Result<(), StorageError> {
        let missing: Vec<usize> = want
            .iter()
            .copied()
            .filter(|&j| self.records[j].is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let g = self.loc.geometry;
        let (k, m) = (g.k(), usize::from(g.parity_shards));
        let plen = self.coded_len();
        let padded = self.padded(plen);
        let present: Vec<(usize, &[u8])> = padded.iter().map(|(i, r)| (*i, &r[..])).collect();
        let mut outputs: Vec<Vec<u8>> = missing
            .iter()
            .map(|_| {
                let mut out = buffer_for(self.reservation.as_ref(), plen);
                out.resize(plen, 0);
                out
            })
            .collect();
        let mut targets: Vec<(usize, &mut [u8])> = missing
            .iter()
            .copied()
            .zip(outputs.iter_mut().map(Vec::as_mut_slice))
            .collect();
        DEFAULT_CODEC.reconstruct(k, m, &present, &mut targets)?;
        drop(padded);
        for (j, mut out) in missing.into_iter().zip(outputs) {
            out.truncate(g.sealed_len(self.loc.size, self.stripe, j));
            self.records[j] = Some(out);
        }
        Ok(())
    }

    /// The sealed parity block `index` (≥ k), coded from the data blocks
    /// (rebuilt first where they were not fetched).
    fn code_parity(&mut self, index: usize) -> Result<Vec<u8>, StorageError> {
        let g = self.loc.geometry;
        let k = g.k();
        let data: Vec<usize> = (0..k).collect();
        self.rebuild(&data)?;
        let plen = self.coded_len();
        let mut parity: Vec<Vec<u8>> = (0..usize::from(g.parity_shards))
            .map(|_| {
                let mut out = buffer_for(self.reservation.as_ref(), plen + HASH_LEN);
                out.resize(plen, 0);
                out
            })
            .collect();
        let padded = self.padded(plen);
        let inputs: Vec<&[u8]> = padded.iter().map(|(_, r)| &r[..]).collect();
        let mut outputs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        DEFAULT_CODEC.encode(&inputs, &mut outputs)?;
        drop(padded);
        let block = parity.swap_remove(index - k);
        for other in parity {
            recycle(self.reservation.as_ref(), other);
        }
        Ok(block)
    }

    /// Authenticates sealed data block `j` and decrypts it in place, leaving
    /// its plain text.
    fn open_block(&mut self, j: usize) -> Result<Vec<u8>, StorageError> {
        let corrupt = |why: String| StorageError::corrupt(self.loc.shard(j), why);
        let Some(mut sealed) = self.records[j].take() else {
            return Err(StorageError::Codec(format!("block {j} not available")));
        };
        let Some(len) = sealed.len().checked_sub(TAG_LEN) else {
            return Err(corrupt(format!(
                "block {} shorter than its tag",
                self.stripe
            )));
        };
        let (ciphertext, tag) = sealed.split_at_mut(len);
        self.cipher
            .open(&self.position(j), ciphertext, tag)
            .map_err(|_| corrupt(format!("block {} failed authentication", self.stripe)))?;
        sealed.truncate(len);
        Ok(sealed)
    }

    /// Re-creates the framed block of shard `index` (`sealed | xxh3`), the
    /// original bytes, and authenticates what they stand on before they
    /// are trusted: a data block itself (a sealed block that opens is the
    /// original one), a parity block every data block of the stripe (the
    /// parity is their code). Nothing else is decrypted or sealed again.
    pub(crate) fn rebuild_framed(mut self, index: usize) -> Result<Bytes, StorageError> {
        let k = self.loc.geometry.k();
        let (mut block, checked) = if index < k {
            self.rebuild(&[index])?;
            let Some(sealed) = self.records[index].as_ref() else {
                return Err(StorageError::Codec(format!("block {index} not rebuilt")));
            };
            let mut block = buffer_for(self.reservation.as_ref(), sealed.len() + HASH_LEN);
            block.extend_from_slice(sealed);
            (block, index..index + 1)
        } else {
            (self.code_parity(index)?, 0..k)
        };
        for j in checked {
            let plain = self.open_block(j)?;
            recycle(self.reservation.as_ref(), plain);
        }
        let hash = block_hash(self.loc.shard(index), self.stripe, &block);
        block.extend_from_slice(&hash);
        Ok(reserved_bytes(block, self.reservation.clone()))
    }

    /// Plain text of stripe-relative bytes `range`, one piece per data block;
    /// each keeps the stripe's reservation until it is dropped.
    fn decrypt_range(mut self, range: Range<u64>) -> Result<Vec<Bytes>, StorageError> {
        let block = u64::from(self.loc.geometry.block_size);
        let first = (range.start / block) as usize;
        let wanted: Vec<usize> = (first..=((range.end - 1) / block) as usize).collect();
        self.rebuild(&wanted)?;
        let mut out = Vec::with_capacity(wanted.len());
        for &j in &wanted {
            let plain = self.open_block(j)?;
            let base = j as u64 * block;
            let hi = ((range.end.min(base + block) - base) as usize).min(plain.len());
            let lo = ((range.start.max(base) - base) as usize).min(hi);
            out.push(reserved_bytes(plain, self.reservation.clone()).slice(lo..hi));
        }
        Ok(out)
    }
}
