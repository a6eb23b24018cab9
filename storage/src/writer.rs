//! The object writer: body stream in, k + m durable shard files out.
//!
//! Pipeline (memory bounded by `stripes_in_flight` stripes, whatever the size):
//!
//! ```text
//! body ──► plain blocks ──► hash thread (MD5 + requested checksums), each as it fills
//!               └─► sealed and xxh3'd, each as it fills
//!                     └─► k at a time ──► encode job (Reed-Solomon m parity, xxh3)
//!                                           └─► k + m bounded channels ──► store.put() tasks
//! ```
//!
//! Every buffer a stripe holds is one block's (a plain block or a framed
//! record), all of one size, so the memory budget's pool hands a finished
//! stripe's buffers to the next stripe of any write or read.
//!
//! Hashing runs on its own blocking thread, each block as soon as it is
//! filled (so a stripe's hashing is all but done when its last byte
//! arrives). Each block is also sealed and checksummed the moment it fills,
//! while the bytes just copied into it are still in the core's cache (about
//! 0.1 ms a MiB on the reading task); encode jobs for the next stripes run
//! on blocking threads and the stores write the previous ones.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::budget::{MemoryBudget, Reservation, buffer_for, reserved_bytes};
use crate::checksum::{ChecksumAlgorithm, Checksums, Hasher};
use crate::codec::{Codec, DEFAULT_CODEC};
use crate::crypto::{BlockCipher, BlockPosition, DataKey, TAG_LEN};
use crate::error::StorageError;
use crate::format::{
    BlockHasher, Geometry, HASH_LEN, IO_ALIGN, ShardHeader, ShardTrailer, block_hash, parity_len,
};
use crate::store::{ByteStream, ObjectId, ShardId, ShardStore};

/// Told about a store that failed or stalled on its shard of a write (the
/// write went on without it): the store's id and what went wrong.
pub type FailedStoreCallback = Arc<dyn Fn(&str, &StorageError) + Send + Sync>;

/// How to write an object.
#[derive(Clone)]
pub struct WriteOptions {
    /// k + m and block size.
    pub geometry: Geometry,
    /// Checksums to compute besides MD5.
    pub checksums: Vec<ChecksumAlgorithm>,
    /// Stripes being encoded or queued per shard at once (memory bound), at least 1.
    pub stripes_in_flight: usize,
    /// Shards that must be durable for success: `None` = all k + m; at least k.
    pub write_quorum: Option<usize>,
    /// Shards whose stores are known to be down: not attempted, reported
    /// missing (they count against the quorum).
    pub unavailable: Vec<u16>,
    /// Memory shared with other writes: each stripe in flight reserves its
    /// plain and framed bytes here first. `None`: only `stripes_in_flight` bounds it.
    pub budget: Option<MemoryBudget>,
    /// The body's length when known (e.g. Content-Length), so a short body
    /// reserves what it needs rather than a whole stripe.
    pub size_hint: Option<u64>,
    /// Longest one shard's store may hold the write back (taking no more
    /// of its stream, or not answering once its shard is sent) before that
    /// shard is given up and reported missing, to be repaired later: a
    /// stalled store does not stall the write. `None`: wait as long as it
    /// takes.
    pub stall_timeout: Option<Duration>,
    /// Told about every store that failed or stalled on its shard, so the
    /// caller can steer the next writes elsewhere.
    pub on_failed_store: Option<FailedStoreCallback>,
}

impl std::fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("geometry", &self.geometry)
            .field("checksums", &self.checksums)
            .field("stripes_in_flight", &self.stripes_in_flight)
            .field("write_quorum", &self.write_quorum)
            .field("unavailable", &self.unavailable)
            .field("budget", &self.budget.is_some())
            .field("size_hint", &self.size_hint)
            .field("stall_timeout", &self.stall_timeout)
            .field("on_failed_store", &self.on_failed_store.is_some())
            .finish()
    }
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            geometry: Geometry::default(),
            checksums: Vec::new(),
            stripes_in_flight: 2,
            write_quorum: None,
            unavailable: Vec::new(),
            budget: None,
            size_hint: None,
            stall_timeout: None,
            on_failed_store: None,
        }
    }
}

/// What a successful write produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Plain-text bytes written.
    pub size: u64,
    /// MD5 and the requested checksums of the body.
    pub checksums: Checksums,
    /// Shard indexes that could not be written (to repair later).
    pub missing_shards: Vec<u16>,
}

/// One message to a shard's put stream. A stream that closes without `End`
/// fails, so an abandoned write never commits a partial shard.
pub(crate) enum Frame {
    Data(Bytes),
    End,
}

pub(crate) fn frame_stream(rx: mpsc::Receiver<Frame>) -> ByteStream {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Frame::Data(b)) => Some((Ok(b), Some(rx))),
            Some(Frame::End) => None,
            None => Some((
                Err(StorageError::Unavailable {
                    store: "writer".into(),
                    reason: "object write abandoned".into(),
                }),
                None,
            )),
        }
    })
    .boxed()
}

/// Aborts the store put tasks if the write is dropped or fails.
struct PutTasks(Vec<Option<JoinHandle<Result<u64, StorageError>>>>);

impl Drop for PutTasks {
    fn drop(&mut self) {
        for handle in self.0.iter().flatten() {
            handle.abort();
        }
    }
}

/// Seals and encodes stripes of one object outside the streaming writer
/// (benchmarks, tools): the exact bytes [`write_object`] sends to the stores.
pub struct StripeEncoder {
    cipher: BlockCipher,
    geometry: Geometry,
    object: ObjectId,
    part: u32,
}

impl StripeEncoder {
    /// An encoder for `part` of `object`.
    pub fn new(
        key: &DataKey,
        geometry: Geometry,
        object: ObjectId,
        part: u32,
    ) -> Result<Self, StorageError> {
        geometry.validate()?;
        Ok(StripeEncoder {
            cipher: key.block_cipher(),
            geometry,
            object,
            part,
        })
    }

    /// The k + m framed blocks (`sealed | xxh3`) of stripe number `stripe`,
    /// whose plain text is `plain` (at most one stripe; shorter only at the end).
    pub fn encode(&self, stripe: u64, plain: &[u8]) -> Result<Vec<Bytes>, StorageError> {
        if plain.len() as u64 > self.geometry.stripe_size() {
            return Err(StorageError::InvalidGeometry(
                "more than one stripe of data".into(),
            ));
        }
        let blocks: Vec<&[u8]> = plain.chunks(self.geometry.block_size as usize).collect();
        encode_stripe(
            &self.cipher,
            self.geometry,
            self.object,
            self.part,
            stripe,
            &blocks,
            None,
        )
    }
}

/// Bytes of parity coded and then checksummed at a time: small enough that
/// the window is still in cache when it is hashed, and a multiple of the
/// codec's 64-byte chunks so windows code the same bytes as a whole record.
const CODE_WINDOW: usize = 64 * 1024;

/// Capacity of the buffer of one framed record whose sealed block the codec
/// sees as `plen` bytes: the padded block and its checksum, with room to
/// start it at any address modulo [`IO_ALIGN`]. A full stripe's plain
/// blocks take buffers of the same size as its records, so the memory
/// budget's pool hands finished stripes' buffers to the next ones rather
/// than allocating (and faulting in) new ones.
fn record_capacity(plen: usize) -> usize {
    plen + HASH_LEN + IO_ALIGN
}

/// A buffer for one framed record of block number `stripe`, filled with
/// zeros up to the offset at which the record starts: that offset's address
/// is congruent (modulo [`IO_ALIGN`]) to the block's offset in its shard
/// file, so the store can write it from where it is.
fn record_buffer(
    geometry: Geometry,
    stripe: u64,
    plen: usize,
    reservation: Option<&Arc<Reservation>>,
) -> (Vec<u8>, usize) {
    let mut buf = buffer_for(reservation, record_capacity(plen));
    let residue = (geometry.block_offset(stripe) % IO_ALIGN as u64) as usize;
    let start = (residue + IO_ALIGN - buf.as_ptr() as usize % IO_ALIGN) % IO_ALIGN;
    buf.resize(start, 0);
    (buf, start)
}

/// Where one stripe's blocks go: the object part, the stripe number and the
/// length every record of the stripe is padded to for the codec.
#[derive(Clone, Copy)]
struct StripeAt {
    geometry: Geometry,
    object: ObjectId,
    part: u32,
    stripe: u64,
    /// The codec's length: the stripe's first sealed block, made even.
    plen: usize,
}

impl StripeAt {
    /// The stripe `stripe` of `part`, whose first data block holds
    /// `first_len` plain bytes.
    fn new(geometry: Geometry, object: ObjectId, part: u32, stripe: u64, first_len: usize) -> Self {
        StripeAt {
            geometry,
            object,
            part,
            stripe,
            plen: parity_len(first_len + TAG_LEN),
        }
    }

    /// Shard `index` of the stripe's part.
    fn shard(&self, index: usize) -> ShardId {
        ShardId {
            object: self.object,
            part: self.part,
            index: index as u16,
        }
    }
}

/// One data block of a stripe sealed into its record buffer, zero-padded to
/// the codec's length, with its checksum.
struct SealedBlock {
    buf: Vec<u8>,
    /// Where the record starts in `buf`.
    start: usize,
    /// Length of the sealed bytes (ciphertext and tag).
    sealed: usize,
    hash: [u8; HASH_LEN],
}

/// Seals `plain` as data block `index` of the stripe `at` and checksums it
/// at once, while it is still in cache.
fn seal_block(
    cipher: &BlockCipher,
    at: &StripeAt,
    index: usize,
    plain: &[u8],
    reservation: Option<&Arc<Reservation>>,
) -> SealedBlock {
    let (mut buf, start) = record_buffer(at.geometry, at.stripe, at.plen, reservation);
    let pos = BlockPosition {
        object: at.object,
        part: at.part,
        index: index as u16,
        block: at.stripe,
        geometry: at.geometry,
    };
    cipher.seal_append(&pos, plain, &mut buf);
    let hash = block_hash(at.shard(index), at.stripe, &buf[start..]);
    let sealed = buf.len() - start;
    buf.resize(start + at.plen, 0);
    SealedBlock {
        buf,
        start,
        sealed,
        hash,
    }
}

/// Seals, encodes and frames one stripe whose plain text is `blocks` (its
/// data blocks in order, each a whole block but the last; fewer than k at
/// the end of an object): returns the k + m framed blocks (`sealed |
/// xxh3`) for block number `stripe` of each shard. Each has a buffer of its
/// own, which keeps `reservation` until it is dropped.
pub(crate) fn encode_stripe(
    cipher: &BlockCipher,
    geometry: Geometry,
    object: ObjectId,
    part: u32,
    stripe: u64,
    blocks: &[&[u8]],
    reservation: Option<Arc<Reservation>>,
) -> Result<Vec<Bytes>, StorageError> {
    let first_len = blocks.first().map_or(0, |b| b.len());
    let at = StripeAt::new(geometry, object, part, stripe, first_len);
    let data = blocks
        .iter()
        .enumerate()
        .map(|(j, plain)| seal_block(cipher, &at, j, plain, reservation.as_ref()))
        .collect();
    finish_stripe(cipher, &at, data, reservation)
}

/// Completes a stripe from its sealed data blocks (fewer than k at the end
/// of an object: the rest are sealed empty here): codes the parity, a
/// window at a time, each window checksummed as soon as it is coded, and
/// frames all k + m records (`sealed | xxh3`). Each has a buffer of its
/// own, which keeps `reservation` until it is dropped.
fn finish_stripe(
    cipher: &BlockCipher,
    at: &StripeAt,
    mut data: Vec<SealedBlock>,
    reservation: Option<Arc<Reservation>>,
) -> Result<Vec<Bytes>, StorageError> {
    let k = at.geometry.k();
    let m = usize::from(at.geometry.parity_shards);
    while data.len() < k {
        let j = data.len();
        data.push(seal_block(cipher, at, j, &[], reservation.as_ref()));
    }
    let mut parity: Vec<(Vec<u8>, usize)> = (0..m)
        .map(|_| record_buffer(at.geometry, at.stripe, at.plen, reservation.as_ref()))
        .collect();
    let mut hashers: Vec<BlockHasher> = (k..k + m)
        .map(|i| BlockHasher::new(at.shard(i), at.stripe))
        .collect();
    for start in (0..at.plen).step_by(CODE_WINDOW) {
        let end = (start + CODE_WINDOW).min(at.plen);
        let inputs: Vec<&[u8]> = data
            .iter()
            .map(|d| &d.buf[d.start + start..d.start + end])
            .collect();
        // Zeroed a window at a time too, just before the codec writes it.
        let mut outputs: Vec<&mut [u8]> = parity
            .iter_mut()
            .map(|(buf, first)| {
                buf.resize(*first + end, 0);
                &mut buf[*first + start..]
            })
            .collect();
        DEFAULT_CODEC.encode(&inputs, &mut outputs)?;
        for (hasher, window) in hashers.iter_mut().zip(&outputs) {
            hasher.update(window);
        }
    }

    let records = data
        .into_iter()
        .map(|d| (d.buf, d.start, d.sealed, d.hash))
        .chain(
            parity
                .into_iter()
                .zip(&hashers)
                .map(|((buf, start), hasher)| (buf, start, at.plen, hasher.finish())),
        );
    let framed = records
        .map(|(mut buf, start, sealed, hash)| {
            buf.truncate(start + sealed);
            buf.extend_from_slice(&hash);
            reserved_bytes(buf, reservation.clone()).slice(start..)
        })
        .collect();
    Ok(framed)
}

/// Streams `body` into shard `i` of `stores[i]` for every i, returning once the
/// write quorum of shards is durable.
///
/// `stores.len()` must be k + m times a number of copies, the stores
/// distinct: store `p` takes shard `p mod (k + m)`, so each copy of the
/// stripe is the same sealed bytes on other stores, and every copy with a
/// store to write to must reach the quorum. `opts.unavailable` and the
/// outcome's missing shards count positions in `stores`. On a body error
/// or a lost quorum it returns `Err` and deletes every shard it wrote
/// (best effort).
pub async fn write_object<S, E>(
    stores: &[Arc<dyn ShardStore>],
    object: ObjectId,
    part: u32,
    key: &DataKey,
    opts: &WriteOptions,
    body: S,
) -> Result<WriteOutcome, StorageError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let geometry = opts.geometry;
    geometry.validate()?;
    let n = geometry.total_shards();
    if stores.is_empty()
        || !stores.len().is_multiple_of(n)
        || stores.len() > usize::from(u16::MAX) + 1
    {
        return Err(StorageError::InvalidGeometry(format!(
            "{} stores given for copies of {n} shards",
            stores.len()
        )));
    }
    if stores.iter().map(|s| s.id()).collect::<HashSet<_>>().len() != stores.len() {
        return Err(StorageError::InvalidGeometry(
            "shard stores must be distinct".into(),
        ));
    }
    let quorum = opts.write_quorum.unwrap_or(n);
    if quorum < geometry.k() || quorum > n {
        return Err(StorageError::InvalidGeometry(format!(
            "write quorum {quorum} must be in {}..={n}",
            geometry.k()
        )));
    }
    let copies = Copies::new(n, stores.len(), &opts.unavailable);
    copies.check(quorum, &opts.unavailable)?;
    let shard_ids: Vec<ShardId> = (0..stores.len())
        .map(|p| ShardId {
            object,
            part,
            index: (p % n) as u16,
        })
        .collect();

    let mut writer = ShardWriters::start(stores, shard_ids.clone(), geometry, opts, copies, quorum);
    match writer.run(key, &opts.checksums, body).await {
        Ok((size, checksums)) => {
            let missing = writer.finish(size).await;
            if let Err(e) = writer.copies.check(quorum, &missing) {
                delete_all(stores, &shard_ids).await;
                return Err(e);
            }
            metrics::counter!("tessera_storage_objects_written_total").increment(1);
            metrics::counter!("tessera_storage_bytes_written_total").increment(size);
            if !missing.is_empty() {
                tracing::warn!(%object, part, ?missing, "object written without some shards");
            }
            Ok(WriteOutcome {
                size,
                checksums,
                missing_shards: missing,
            })
        }
        Err(e) => {
            writer.abort().await;
            delete_all(stores, &shard_ids).await;
            Err(e)
        }
    }
}

/// Best-effort removal of every shard of a failed write.
pub(crate) async fn delete_all(stores: &[Arc<dyn ShardStore>], ids: &[ShardId]) {
    let deletes = stores.iter().zip(ids).map(|(store, &id)| async move {
        if let Err(e) = store.delete(id).await {
            tracing::warn!(store = store.id(), shard = %id, error = %e, "could not delete shard of a failed write");
        }
    });
    futures::future::join_all(deletes).await;
}

/// The copies of the stripe one write keeps: `width` positions each, and
/// which of them are written at all (a copy whose every store is down at
/// the start is left for repair).
#[derive(Debug, Clone)]
struct Copies {
    width: usize,
    attempted: Vec<bool>,
}

impl Copies {
    fn new(width: usize, positions: usize, unavailable: &[u16]) -> Self {
        let attempted = (0..positions / width)
            .map(|c| (c * width..(c + 1) * width).any(|p| !unavailable.contains(&(p as u16))))
            .collect();
        Copies { width, attempted }
    }

    /// Every copy written reaches `quorum` shards with those at positions
    /// `lost` counted out.
    fn check(&self, quorum: usize, lost: &[u16]) -> Result<(), StorageError> {
        if !self.attempted.contains(&true) {
            return Err(StorageError::Quorum {
                needed: quorum,
                available: 0,
            });
        }
        for (c, _) in self.attempted.iter().enumerate().filter(|(_, a)| **a) {
            let range = c * self.width..(c + 1) * self.width;
            let gone = lost
                .iter()
                .filter(|&&p| range.contains(&usize::from(p)))
                .count();
            if self.width - gone < quorum {
                return Err(StorageError::Quorum {
                    needed: quorum,
                    available: self.width - gone,
                });
            }
        }
        Ok(())
    }

    /// The positions whose sender has dropped out.
    fn lost(senders: &[Option<mpsc::Sender<Frame>>]) -> Vec<u16> {
        senders
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .map(|(p, _)| p as u16)
            .collect()
    }
}

/// What every stripe of one write is encoded with.
struct Encoding {
    /// Plain text to the checksum thread, a block at a time as each fills.
    hash_tx: mpsc::Sender<Bytes>,
    cipher: Arc<BlockCipher>,
    geometry: Geometry,
    object: ObjectId,
    part: u32,
    next_stripe: u64,
}

impl Encoding {
    /// Hands a filled plain block to the checksum thread, which hashes it
    /// while the rest of its stripe is still being read, and seals it as
    /// the next data block of the stripe being filled.
    async fn add_block(
        &self,
        filling: &mut Filling,
        block: &Bytes,
        held: Option<&Arc<Reservation>>,
    ) -> Result<(), StorageError> {
        self.hash_tx
            .send(block.clone())
            .await
            .map_err(|_| StorageError::Codec("checksum thread stopped".into()))?;
        let at = *filling.at.get_or_insert_with(|| {
            StripeAt::new(
                self.geometry,
                self.object,
                self.part,
                self.next_stripe,
                block.len(),
            )
        });
        let index = filling.sealed.len();
        filling
            .sealed
            .push(seal_block(&self.cipher, &at, index, block, held));
        Ok(())
    }
}

/// The stripe being filled: its place, once its first block is known, and
/// its data blocks sealed so far (each as soon as it fills, while it is in
/// cache).
#[derive(Default)]
struct Filling {
    at: Option<StripeAt>,
    sealed: Vec<SealedBlock>,
}

impl Filling {
    /// Plain bytes of the blocks sealed so far.
    fn plain_bytes(&self) -> u64 {
        self.sealed
            .iter()
            .map(|d| (d.sealed - TAG_LEN) as u64)
            .sum()
    }
}

/// Encode jobs in stripe order, each yielding the stripe's k + m framed blocks.
type PendingStripes = FuturesOrdered<JoinHandle<Result<Vec<Bytes>, StorageError>>>;

/// The shard streams of one write: k + m per copy.
struct ShardWriters {
    ids: Vec<ShardId>,
    /// The store of each position.
    store_ids: Vec<String>,
    senders: Vec<Option<mpsc::Sender<Frame>>>,
    copies: Copies,
    tasks: PutTasks,
    geometry: Geometry,
    depth: usize,
    quorum: usize,
    budget: Option<MemoryBudget>,
    size_hint: Option<u64>,
    stall: Option<Duration>,
    on_failed: Option<FailedStoreCallback>,
}

impl ShardWriters {
    fn start(
        stores: &[Arc<dyn ShardStore>],
        ids: Vec<ShardId>,
        geometry: Geometry,
        opts: &WriteOptions,
        copies: Copies,
        quorum: usize,
    ) -> Self {
        let depth = opts.stripes_in_flight.max(1);
        let mut senders = Vec::with_capacity(ids.len());
        let mut tasks = Vec::with_capacity(ids.len());
        for (index, (store, &id)) in stores.iter().zip(&ids).enumerate() {
            if opts.unavailable.contains(&(index as u16)) {
                senders.push(None);
                tasks.push(None);
                continue;
            }
            let (tx, rx) = mpsc::channel(depth + 1);
            let store = store.clone();
            // In the caller's span, so the shard write is part of its trace.
            tasks.push(Some(tokio::spawn(
                async move { store.put(id, frame_stream(rx)).await }.in_current_span(),
            )));
            senders.push(Some(tx));
        }
        ShardWriters {
            ids,
            store_ids: stores.iter().map(|s| s.id().to_owned()).collect(),
            senders,
            copies,
            tasks: PutTasks(tasks),
            geometry,
            depth,
            quorum,
            budget: opts.budget.clone(),
            size_hint: opts.size_hint,
            stall: opts.stall_timeout,
            on_failed: opts.on_failed_store.clone(),
        }
    }

    /// Tells the caller's hook that position `p`'s store failed with `error`.
    fn report_failed(&self, p: usize, error: &StorageError) {
        if let Some(hook) = &self.on_failed {
            hook(&self.store_ids[p], error);
        }
    }

    /// Reserves memory for the next stripe, whose first byte is body byte
    /// `offset`: the buffers of its plain blocks and framed records, for a
    /// whole stripe or what the size hint says is left. `None` without a
    /// budget. When the budget is spent it first sends every stripe still
    /// `pending` to the stores, since only their writes can give this
    /// writer's reservations back.
    async fn reserve(
        &mut self,
        offset: u64,
        pending: &mut PendingStripes,
    ) -> Result<Option<Arc<Reservation>>, StorageError> {
        let Some(budget) = self.budget.clone() else {
            return Ok(None);
        };
        let plain = self.stripe_len_at(offset);
        let block = self.geometry.block_size as usize;
        let cost = (plain.div_ceil(block) + self.geometry.total_shards())
            * self.buffer_capacity_at(offset);
        if let Some(r) = budget.try_reserve(cost) {
            return Ok(Some(Arc::new(r)));
        }
        self.flush(pending).await?;
        Ok(Some(Arc::new(budget.reserve(cost).await)))
    }

    /// Hands one stripe's sealed data blocks to an encode job (nothing if
    /// it has none); once `depth` jobs are in flight, sends the oldest
    /// one's blocks.
    async fn submit(
        &mut self,
        enc: &mut Encoding,
        stripe: Filling,
        reservation: Option<Arc<Reservation>>,
        pending: &mut PendingStripes,
    ) -> Result<(), StorageError> {
        let Some(at) = stripe.at else {
            return Ok(());
        };
        let data = stripe.sealed;
        let cipher = Arc::clone(&enc.cipher);
        enc.next_stripe += 1;
        pending.push_back(tokio::task::spawn_blocking(move || {
            finish_stripe(&cipher, &at, data, reservation)
        }));
        if pending.len() >= self.depth {
            self.send_oldest(pending).await?;
        }
        Ok(())
    }

    /// The expected plain length of the stripe starting at body byte
    /// `offset`: a whole stripe, or what the size hint says is left.
    fn stripe_len_at(&self, offset: u64) -> usize {
        let stripe = self.geometry.stripe_size();
        let len = match self.size_hint {
            Some(total) => total.saturating_sub(offset).clamp(1, stripe),
            None => stripe,
        };
        len as usize
    }

    /// Capacity of every buffer of the stripe starting at body byte
    /// `offset`: its plain blocks' and its framed records'.
    fn buffer_capacity_at(&self, offset: u64) -> usize {
        let first_block = self
            .stripe_len_at(offset)
            .min(self.geometry.block_size as usize);
        record_capacity(parity_len(first_block + TAG_LEN))
    }

    /// Waits for the oldest pending encode job and sends its blocks; false
    /// when none was pending.
    async fn send_oldest(&mut self, pending: &mut PendingStripes) -> Result<bool, StorageError> {
        let Some(done) = pending.next().await else {
            return Ok(false);
        };
        let framed = joined(done)?;
        self.send_all(&framed).await?;
        Ok(true)
    }

    /// Waits for every pending encode job and sends its blocks.
    async fn flush(&mut self, pending: &mut PendingStripes) -> Result<(), StorageError> {
        while self.send_oldest(pending).await? {}
        Ok(())
    }

    /// Sends one stripe's frames (one per shard of the code) to every live
    /// position, each copy the same frames; positions whose store failed
    /// drop out.
    async fn send_all(&mut self, frames: &[Bytes]) -> Result<(), StorageError> {
        let width = frames.len().max(1);
        for (p, slot) in self.senders.iter_mut().enumerate() {
            if let Some(tx) = slot
                && !send_within(self.stall, tx, Frame::Data(frames[p % width].clone())).await
            {
                tracing::warn!(shard = %self.ids[p], position = p, "shard store stalled or failed; writing on without it");
                *slot = None;
            }
        }
        self.copies.check(self.quorum, &Copies::lost(&self.senders))
    }

    /// Streams the body through hashing and encoding into the shard channels.
    /// Returns the size and checksums.
    async fn run<S, E>(
        &mut self,
        key: &DataKey,
        algorithms: &[ChecksumAlgorithm],
        mut body: S,
    ) -> Result<(u64, Checksums), StorageError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        let geometry = self.geometry;
        let headers: Vec<Bytes> = self
            .ids
            .iter()
            .take(geometry.total_shards())
            .map(|&shard| Bytes::copy_from_slice(&ShardHeader { shard, geometry }.encode()))
            .collect();
        self.send_all(&headers).await?;

        let (k, block_size) = (geometry.k(), geometry.block_size as usize);
        let (hash_tx, mut hash_rx) = mpsc::channel::<Bytes>(self.depth * k);
        let algorithms = algorithms.to_vec();
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = Hasher::new(&algorithms);
            while let Some(block) = hash_rx.blocking_recv() {
                hasher.update_shared(&block);
            }
            hasher.finish()
        });

        let mut enc = Encoding {
            hash_tx,
            cipher: Arc::new(key.block_cipher()),
            geometry,
            object: self.ids[0].object,
            part: self.ids[0].part,
            next_stripe: 0,
        };
        let mut pending = PendingStripes::new();
        // The stripe being filled, and the block being filled.
        let mut filling = Filling::default();
        let mut buf = Vec::new();
        // The reservation for the stripe being filled, taken before reading
        // its bytes so a spent budget holds the body back.
        let mut held: Option<Arc<Reservation>> = None;
        // Body bytes in the stripes submitted so far.
        let mut size = 0u64;
        loop {
            if held.is_none() {
                held = self.reserve(size, &mut pending).await?;
            }
            match body.next().await {
                Some(Ok(mut chunk)) => {
                    while !chunk.is_empty() {
                        if held.is_none() {
                            held = self.reserve(size, &mut pending).await?;
                        }
                        let filled = if buf.is_empty() && chunk.len() >= block_size {
                            Some(chunk.split_to(block_size))
                        } else {
                            if buf.capacity() == 0 {
                                buf = buffer_for(held.as_ref(), self.buffer_capacity_at(size));
                            }
                            let take = (block_size - buf.len()).min(chunk.len());
                            buf.extend_from_slice(&chunk.split_to(take));
                            (buf.len() == block_size)
                                .then(|| reserved_bytes(std::mem::take(&mut buf), held.clone()))
                        };
                        if let Some(block) = filled {
                            enc.add_block(&mut filling, &block, held.as_ref()).await?;
                        }
                        if filling.sealed.len() == k {
                            size += filling.plain_bytes();
                            let stripe = std::mem::take(&mut filling);
                            self.submit(&mut enc, stripe, held.take(), &mut pending)
                                .await?;
                        }
                    }
                }
                Some(Err(e)) => return Err(StorageError::Body(Box::new(e))),
                None => break,
            }
        }
        if !buf.is_empty() {
            let block = reserved_bytes(std::mem::take(&mut buf), held.clone());
            enc.add_block(&mut filling, &block, held.as_ref()).await?;
        }
        size += filling.plain_bytes();
        self.submit(&mut enc, filling, held.take(), &mut pending)
            .await?;
        self.flush(&mut pending).await?;
        drop(enc);
        let checksums = hasher
            .await
            .map_err(|e| StorageError::Codec(format!("checksum thread failed: {e}")))?;
        Ok((size, checksums))
    }

    /// Sends trailers, closes the streams and waits for the stores.
    /// Returns the indexes of the shards that are not durable.
    async fn finish(&mut self, size: u64) -> Vec<u16> {
        let blocks = self.geometry.stripe_count(size);
        let trailers: Vec<Bytes> = self
            .ids
            .iter()
            .take(self.geometry.total_shards())
            .map(|&id| Bytes::copy_from_slice(&ShardTrailer { blocks, size }.encode(id)))
            .collect();
        // Quorum is checked by the caller from the final result.
        let _ = self.send_all(&trailers).await;
        let mut complete = Vec::with_capacity(self.senders.len());
        for slot in self.senders.drain(..) {
            complete.push(match slot {
                Some(tx) => send_within(self.stall, &tx, Frame::End).await,
                None => false,
            });
        }
        // Every store was sent its whole shard at once: one deadline for all
        // their answers.
        let deadline = self.stall.map(|limit| tokio::time::Instant::now() + limit);
        let mut missing = Vec::new();
        let mut failed = Vec::new();
        for (i, handle) in self.tasks.0.iter_mut().enumerate() {
            let Some(h) = handle.take() else {
                // Known down before the write: not attempted.
                missing.push(i as u16);
                continue;
            };
            match put_answer(h, deadline).await {
                Ok(_) if complete[i] => {}
                Ok(_) => {
                    tracing::warn!(shard = %self.ids[i], position = i, "store returned before the shard was complete");
                    missing.push(i as u16);
                }
                Err(e) => {
                    tracing::warn!(shard = %self.ids[i], position = i, error = %e, "shard write failed");
                    missing.push(i as u16);
                    failed.push((i, e));
                }
            }
        }
        for (i, e) in &failed {
            self.report_failed(*i, e);
        }
        missing
    }

    /// Fails every shard stream and waits for the puts to give up; the
    /// stores that had already failed or stalled (dropped out, or whose put
    /// ended on its own) are reported.
    async fn abort(&mut self) {
        let ended: Vec<bool> = self
            .tasks
            .0
            .iter()
            .zip(&self.senders)
            .map(|(t, tx)| tx.is_none() || t.as_ref().is_some_and(JoinHandle::is_finished))
            .collect();
        self.senders.clear();
        let mut failed = Vec::new();
        for (p, handle) in self.tasks.0.iter_mut().enumerate() {
            let Some(h) = handle.take() else { continue };
            if let Ok(Err(e)) = h.await
                && ended.get(p).copied().unwrap_or(false)
            {
                failed.push((p, e));
            }
        }
        for (p, e) in &failed {
            self.report_failed(*p, e);
        }
    }
}

/// What a shard's put task answered, by `deadline` when there is one (a
/// task still busy then is aborted and its shard counts as not written).
async fn put_answer(
    mut task: JoinHandle<Result<u64, StorageError>>,
    deadline: Option<tokio::time::Instant>,
) -> Result<u64, StorageError> {
    let answered = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, &mut task).await.ok(),
        None => Some((&mut task).await),
    };
    let Some(done) = answered else {
        task.abort();
        return Err(StorageError::Unavailable {
            store: String::new(),
            reason: "store did not answer in time".into(),
        });
    };
    done.unwrap_or_else(|e| {
        Err(StorageError::Unavailable {
            store: String::new(),
            reason: format!("put task failed: {e}"),
        })
    })
}

/// Sends `frame` on a shard's stream, waiting at most `limit` for room;
/// false when the stream is gone or stayed full.
async fn send_within(limit: Option<Duration>, tx: &mpsc::Sender<Frame>, frame: Frame) -> bool {
    match limit {
        Some(limit) => matches!(
            tokio::time::timeout(limit, tx.send(frame)).await,
            Ok(Ok(()))
        ),
        None => tx.send(frame).await.is_ok(),
    }
}

fn joined(
    done: Result<Result<Vec<Bytes>, StorageError>, tokio::task::JoinError>,
) -> Result<Vec<Bytes>, StorageError> {
    done.unwrap_or_else(|e| Err(StorageError::Codec(format!("encode task failed: {e}"))))
}
