//! The object writer: body stream in, k + m durable shard files out.
//!
//! Pipeline (memory bounded by `stripes_in_flight` stripes, whatever the size):
//!
//! ```text
//! body ──► stripe buffer ──► hash thread (MD5 + requested checksums)
//!                        └─► encode job (seal k blocks, Reed-Solomon m parity, xxh3)
//!                               └─► k + m bounded channels ──► store.put() tasks
//! ```
//!
//! Hashing runs on its own blocking thread while encode jobs for the next
//! stripes run on others and the stores write the previous ones.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::budget::{MemoryBudget, Reservation, buffer_for, reserved_bytes};
use crate::checksum::{ChecksumAlgorithm, Checksums, Hasher};
use crate::codec::{Codec, DEFAULT_CODEC};
use crate::crypto::{BlockCipher, BlockPosition, DataKey, TAG_LEN};
use crate::error::StorageError;
use crate::format::{
    Geometry, HASH_LEN, IO_ALIGN, ShardHeader, ShardTrailer, block_hash, parity_len,
};
use crate::store::{ByteStream, ObjectId, ShardId, ShardStore};

/// How to write an object.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// k + m and block size.
    pub geometry: Geometry,
    /// Checksums to compute besides MD5.
    pub checksums: Vec<ChecksumAlgorithm>,
    /// Stripes being encoded or queued per shard at once (memory bound), at least 1.
    pub stripes_in_flight: usize,
    /// Shards that must be durable for success: `None` = all k + m; at least k + 1.
    pub write_quorum: Option<usize>,
    /// Memory shared with other writes: each stripe in flight reserves its
    /// plain and framed bytes here first. `None`: only `stripes_in_flight` bounds it.
    pub budget: Option<MemoryBudget>,
    /// The body's length when known (e.g. Content-Length), so a short body
    /// reserves what it needs rather than a whole stripe.
    pub size_hint: Option<u64>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            geometry: Geometry::default(),
            checksums: Vec::new(),
            stripes_in_flight: 2,
            write_quorum: None,
            budget: None,
            size_hint: None,
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
        encode_stripe(
            &self.cipher,
            self.geometry,
            self.object,
            self.part,
            stripe,
            plain,
            None,
        )
    }
}

/// Seals, encodes and frames one stripe: returns the k + m framed blocks
/// (`sealed | xxh3`) for block number `stripe` of each shard. They share one
/// buffer, which keeps `reservation` until the last of them is dropped.
pub(crate) fn encode_stripe(
    cipher: &BlockCipher,
    geometry: Geometry,
    object: ObjectId,
    part: u32,
    stripe: u64,
    plain: &[u8],
    reservation: Option<Arc<Reservation>>,
) -> Result<Vec<Bytes>, StorageError> {
    let k = geometry.k();
    let m = usize::from(geometry.parity_shards);
    let block = geometry.block_size as usize;
    let plain_lens: Vec<usize> = (0..k)
        .map(|j| plain.len().saturating_sub(j * block).min(block))
        .collect();
    let plen = parity_len(plain_lens[0] + TAG_LEN);
    let records: Vec<usize> = plain_lens
        .iter()
        .map(|l| l + TAG_LEN + HASH_LEN)
        .chain(std::iter::repeat_n(plen + HASH_LEN, m))
        .collect();
    let total: usize = records.iter().sum();
    let mut out = buffer_for(reservation.as_ref(), total + records.len() * IO_ALIGN);
    // Every block of the stripe starts at the same offset in its shard
    // file; each record starts at an address congruent to it (modulo
    // IO_ALIGN), at most IO_ALIGN - 1 zeros after the one before.
    let residue = (geometry.block_offset(stripe) % IO_ALIGN as u64) as usize;
    let first = (residue + IO_ALIGN - out.as_ptr() as usize % IO_ALIGN) % IO_ALIGN;
    let starts: Vec<usize> = records
        .iter()
        .scan(first, |at, len| {
            let start = *at;
            *at += len.next_multiple_of(IO_ALIGN);
            Some(start)
        })
        .collect();
    let shard = |index: usize| ShardId {
        object,
        part,
        index: index as u16,
    };
    let mut sealed_ranges = Vec::with_capacity(k);
    for (j, &len) in plain_lens.iter().enumerate() {
        let at = starts[j];
        out.resize(at, 0);
        let start = (j * block).min(plain.len());
        let pos = BlockPosition {
            object,
            part,
            index: j as u16,
            block: stripe,
            geometry,
        };
        cipher.seal_append(&pos, &plain[start..start + len], &mut out);
        let hash = block_hash(shard(j), stripe, &out[at..]);
        out.extend_from_slice(&hash);
        sealed_ranges.push(at..at + len + TAG_LEN);
    }
    // Only the parity region needs initialising before the codec fills it.
    out.resize(starts[k + m - 1] + records[k + m - 1], 0);
    let (data_out, parity_out) = out.split_at_mut(starts[k]);
    let stride = (plen + HASH_LEN).next_multiple_of(IO_ALIGN);

    let mut parity: Vec<&mut [u8]> = parity_out
        .chunks_mut(stride)
        .map(|c| &mut c[..plen])
        .collect();
    if sealed_ranges.iter().all(|r| r.len() == plen) {
        let data: Vec<&[u8]> = sealed_ranges.iter().map(|r| &data_out[r.clone()]).collect();
        DEFAULT_CODEC.encode(&data, &mut parity)?;
    } else {
        // Short last stripe: the codec sees every sealed block zero-padded to `plen`.
        let padded: Vec<Vec<u8>> = sealed_ranges
            .iter()
            .map(|r| {
                let mut v = data_out[r.clone()].to_vec();
                v.resize(plen, 0);
                v
            })
            .collect();
        let data: Vec<&[u8]> = padded.iter().map(Vec::as_slice).collect();
        DEFAULT_CODEC.encode(&data, &mut parity)?;
    }
    drop(parity);
    for (p, rec) in parity_out.chunks_mut(stride).enumerate() {
        let hash = block_hash(shard(k + p), stripe, &rec[..plen]);
        rec[plen..plen + HASH_LEN].copy_from_slice(&hash);
    }

    let out = reserved_bytes(out, reservation);
    Ok(starts
        .iter()
        .zip(&records)
        .map(|(&at, &len)| out.slice(at..at + len))
        .collect())
}

/// Streams `body` into shard `i` of `stores[i]` for every i, returning once the
/// write quorum of shards is durable.
///
/// `stores.len()` must be k + m and the stores distinct. On a body error or a
/// lost quorum it returns `Err` and deletes every shard it wrote (best effort).
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
    if stores.len() != n {
        return Err(StorageError::InvalidGeometry(format!(
            "{} stores given for {n} shards",
            stores.len()
        )));
    }
    if stores.iter().map(|s| s.id()).collect::<HashSet<_>>().len() != n {
        return Err(StorageError::InvalidGeometry(
            "shard stores must be distinct".into(),
        ));
    }
    let quorum = opts.write_quorum.unwrap_or(n);
    if quorum <= geometry.k() || quorum > n {
        return Err(StorageError::InvalidGeometry(format!(
            "write quorum {quorum} must be in {}..={n}",
            geometry.k() + 1
        )));
    }
    let shard_ids: Vec<ShardId> = (0..n)
        .map(|i| ShardId {
            object,
            part,
            index: i as u16,
        })
        .collect();

    let mut writer = ShardWriters::start(stores, shard_ids.clone(), geometry, opts, quorum);
    match writer.run(key, &opts.checksums, body).await {
        Ok((size, checksums)) => {
            let missing = writer.finish(size).await;
            if n - missing.len() < quorum {
                delete_all(stores, &shard_ids).await;
                return Err(StorageError::Quorum {
                    needed: quorum,
                    available: n - missing.len(),
                });
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

/// What every stripe of one write is encoded with.
struct Encoding {
    /// Plain text to the checksum thread.
    hash_tx: mpsc::Sender<Bytes>,
    cipher: Arc<BlockCipher>,
    object: ObjectId,
    part: u32,
    next_stripe: u64,
}

/// Encode jobs in stripe order, each yielding the stripe's k + m framed blocks.
type PendingStripes = FuturesOrdered<JoinHandle<Result<Vec<Bytes>, StorageError>>>;

/// The k + m shard streams of one write.
struct ShardWriters {
    ids: Vec<ShardId>,
    senders: Vec<Option<mpsc::Sender<Frame>>>,
    tasks: PutTasks,
    geometry: Geometry,
    depth: usize,
    quorum: usize,
    budget: Option<MemoryBudget>,
    size_hint: Option<u64>,
}

impl ShardWriters {
    fn start(
        stores: &[Arc<dyn ShardStore>],
        ids: Vec<ShardId>,
        geometry: Geometry,
        opts: &WriteOptions,
        quorum: usize,
    ) -> Self {
        let depth = opts.stripes_in_flight.max(1);
        let mut senders = Vec::with_capacity(ids.len());
        let mut tasks = Vec::with_capacity(ids.len());
        for (store, &id) in stores.iter().zip(&ids) {
            let (tx, rx) = mpsc::channel(depth + 1);
            let store = store.clone();
            tasks.push(Some(tokio::spawn(async move {
                store.put(id, frame_stream(rx)).await
            })));
            senders.push(Some(tx));
        }
        ShardWriters {
            ids,
            senders,
            tasks: PutTasks(tasks),
            geometry,
            depth,
            quorum,
            budget: opts.budget.clone(),
            size_hint: opts.size_hint,
        }
    }

    /// Reserves memory for the next stripe, whose first byte is body byte
    /// `offset`: plain text plus framed blocks, for a whole stripe or what
    /// the size hint says is left. `None` without a budget. When the budget
    /// is spent it first sends every stripe still `pending` to the stores,
    /// since only their writes can give this writer's reservations back.
    async fn reserve(
        &mut self,
        offset: u64,
        pending: &mut PendingStripes,
    ) -> Result<Option<Arc<Reservation>>, StorageError> {
        let Some(budget) = self.budget.clone() else {
            return Ok(None);
        };
        let g = self.geometry;
        let plain = self.stripe_len_at(offset);
        let cost = plain + (plain.div_ceil(g.k()) + IO_ALIGN) * g.total_shards();
        if let Some(r) = budget.try_reserve(cost) {
            return Ok(Some(Arc::new(r)));
        }
        self.flush(pending).await?;
        Ok(Some(Arc::new(budget.reserve(cost).await)))
    }

    /// Hands one stripe's plain text to the checksum thread and to an encode
    /// job; once `depth` jobs are in flight, sends the oldest one's blocks.
    async fn submit(
        &mut self,
        enc: &mut Encoding,
        plain: Bytes,
        reservation: Option<Arc<Reservation>>,
        pending: &mut PendingStripes,
    ) -> Result<(), StorageError> {
        enc.hash_tx
            .send(plain.clone())
            .await
            .map_err(|_| StorageError::Codec("checksum thread stopped".into()))?;
        let (cipher, geometry) = (Arc::clone(&enc.cipher), self.geometry);
        let (object, part, index) = (enc.object, enc.part, enc.next_stripe);
        enc.next_stripe += 1;
        pending.push_back(tokio::task::spawn_blocking(move || {
            encode_stripe(&cipher, geometry, object, part, index, &plain, reservation)
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

    /// Sends one frame to every live shard; shards whose store failed drop out.
    async fn send_all(&mut self, frames: &[Bytes]) -> Result<(), StorageError> {
        for (slot, frame) in self.senders.iter_mut().zip(frames) {
            if let Some(tx) = slot
                && tx.send(Frame::Data(frame.clone())).await.is_err()
            {
                *slot = None;
            }
        }
        let live = self.senders.iter().flatten().count();
        if live < self.quorum {
            return Err(StorageError::Quorum {
                needed: self.quorum,
                available: live,
            });
        }
        Ok(())
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
            .map(|&shard| Bytes::copy_from_slice(&ShardHeader { shard, geometry }.encode()))
            .collect();
        self.send_all(&headers).await?;

        let (hash_tx, mut hash_rx) = mpsc::channel::<Bytes>(self.depth);
        let algorithms = algorithms.to_vec();
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = Hasher::new(&algorithms);
            while let Some(chunk) = hash_rx.blocking_recv() {
                hasher.update_shared(&chunk);
            }
            hasher.finish()
        });

        let mut enc = Encoding {
            hash_tx,
            cipher: Arc::new(key.block_cipher()),
            object: self.ids[0].object,
            part: self.ids[0].part,
            next_stripe: 0,
        };
        let stripe_size = geometry.stripe_size() as usize;
        let mut pending = PendingStripes::new();
        let mut buf = Vec::new();
        // The reservation for the stripe being filled, taken before reading
        // its bytes so a spent budget holds the body back.
        let mut held: Option<Arc<Reservation>> = None;
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
                        let full = if buf.is_empty() && chunk.len() >= stripe_size {
                            Some(chunk.split_to(stripe_size))
                        } else {
                            if buf.capacity() == 0 {
                                // One (reused) buffer per stripe, not a doubling series.
                                buf = buffer_for(held.as_ref(), self.stripe_len_at(size));
                            }
                            let take = (stripe_size - buf.len()).min(chunk.len());
                            buf.extend_from_slice(&chunk.split_to(take));
                            (buf.len() == stripe_size)
                                .then(|| reserved_bytes(std::mem::take(&mut buf), held.clone()))
                        };
                        if let Some(plain) = full {
                            size += plain.len() as u64;
                            self.submit(&mut enc, plain, held.take(), &mut pending)
                                .await?;
                        }
                    }
                }
                Some(Err(e)) => return Err(StorageError::Body(Box::new(e))),
                None => break,
            }
        }
        if !buf.is_empty() {
            size += buf.len() as u64;
            let plain = reserved_bytes(std::mem::take(&mut buf), held.clone());
            self.submit(&mut enc, plain, held.take(), &mut pending)
                .await?;
        }
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
            .map(|&id| Bytes::copy_from_slice(&ShardTrailer { blocks, size }.encode(id)))
            .collect();
        // Quorum is checked by the caller from the final result.
        let _ = self.send_all(&trailers).await;
        let mut complete = Vec::with_capacity(self.senders.len());
        for slot in self.senders.drain(..) {
            complete.push(match slot {
                Some(tx) => tx.send(Frame::End).await.is_ok(),
                None => false,
            });
        }
        let mut missing = Vec::new();
        for (i, handle) in self.tasks.0.iter_mut().enumerate() {
            let result = match handle.take() {
                Some(h) => h.await.unwrap_or_else(|e| {
                    Err(StorageError::Unavailable {
                        store: String::new(),
                        reason: format!("put task failed: {e}"),
                    })
                }),
                None => Err(StorageError::Codec("put task missing".into())),
            };
            match result {
                Ok(_) if complete[i] => {}
                Ok(_) => {
                    tracing::warn!(shard = %self.ids[i], "store returned before the shard was complete");
                    missing.push(i as u16);
                }
                Err(e) => {
                    tracing::warn!(shard = %self.ids[i], error = %e, "shard write failed");
                    missing.push(i as u16);
                }
            }
        }
        missing
    }

    /// Fails every shard stream and waits for the puts to give up.
    async fn abort(&mut self) {
        self.senders.clear();
        for handle in self.tasks.0.iter_mut() {
            if let Some(h) = handle.take() {
                let _ = h.await;
            }
        }
    }
}

fn joined(
    done: Result<Result<Vec<Bytes>, StorageError>, tokio::task::JoinError>,
) -> Result<Vec<Bytes>, StorageError> {
    done.unwrap_or_else(|e| Err(StorageError::Codec(format!("encode task failed: {e}"))))
}
