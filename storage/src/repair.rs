//! Repair and scrub primitives: rebuild one shard from the others; check a
//! stored shard file without the key.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::background;
use crate::crypto::DataKey;
use crate::error::StorageError;
use crate::format::{
    HASH_LEN, HEADER_LEN, ShardHeader, ShardSummary, ShardTrailer, TRAILER_LEN, check_block,
};
use crate::reader::{Cursor, ObjectLocation, ReadOptions, StripeJob, StripeSource, check_location};
use crate::store::{ShardId, ShardStore};
use crate::writer::{Frame, frame_stream};

/// Paces a background job: called with the bytes it is about to move,
/// returns when it may (a rate limit).
pub type Pace = Arc<dyn Fn(u64) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Rebuilds shard `index` of the object from any k other shards and stores it
/// on `target` (durable on `Ok`). What each rebuilt block stands on is
/// authenticated first (the block itself when it holds data, every data
/// block of its stripe when it is parity), so a repair never spreads
/// corrupt bytes; a failed repair leaves no shard.
/// With `pace`, each block is paced before it is read (its rebuilt bytes),
/// so a rate limit spreads the repair's reads evenly instead of in bursts
/// of whole shards.
pub async fn repair_shard(
    loc: &ObjectLocation,
    key: &DataKey,
    index: u16,
    target: Arc<dyn ShardStore>,
    pace: Option<Pace>,
) -> Result<(), StorageError> {
    check_location(loc)?;
    let g = loc.geometry;
    let i = usize::from(index);
    if i >= g.total_shards() {
        return Err(StorageError::InvalidGeometry(format!(
            "shard {index} outside {}+{}",
            g.data_shards, g.parity_shards
        )));
    }
    let loc = Arc::new(loc.clone());
    let stripes = g.stripe_count(loc.size);
    let mut source = StripeSource::new(
        loc.clone(),
        ReadOptions::default(),
        stripes.saturating_sub(1),
    );
    source.exclude(i);
    let cipher = Arc::new(key.block_cipher());
    let shard = loc.shard(i);
    let data: Vec<usize> = (0..g.k()).collect();
    let (tx, rx) = mpsc::channel(2);
    let produce = async move {
        let closed = || StorageError::Unavailable {
            store: String::new(),
            reason: "repair target stopped reading".into(),
        };
        let header = ShardHeader { shard, geometry: g }.encode();
        tx.send(Frame::Data(Bytes::copy_from_slice(&header)))
            .await
            .map_err(|_| closed())?;
        // Each stripe is rebuilt while the next one is fetched.
        let mut rebuilding = None;
        for stripe in 0..stripes {
            if let Some(pace) = &pace {
                pace(g.sealed_len(loc.size, stripe, i) as u64).await;
            }
            let fetched = source.fetch_stripe(stripe, &data, None).await;
            if let Some(job) = rebuilding.take() {
                tx.send(Frame::Data(job.await?))
                    .await
                    .map_err(|_| closed())?;
            }
            let job = StripeJob {
                loc: loc.clone(),
                cipher: cipher.clone(),
                stripe,
                records: fetched?,
                reservation: None,
            };
            rebuilding = Some(background::run(move || job.rebuild_framed(i)));
        }
        if let Some(job) = rebuilding {
            tx.send(Frame::Data(job.await?))
                .await
                .map_err(|_| closed())?;
        }
        let trailer = ShardTrailer {
            blocks: stripes,
            size: loc.size,
        }
        .encode(shard);
        tx.send(Frame::Data(Bytes::copy_from_slice(&trailer)))
            .await
            .map_err(|_| closed())?;
        tx.send(Frame::End).await.map_err(|_| closed())?;
        Ok::<_, StorageError>(())
    };
    let (put, produced) = tokio::join!(target.put(shard, frame_stream(rx)), produce);
    produced?;
    put?;
    metrics::counter!("tessera_storage_shards_repaired_total").increment(1);
    Ok(())
}

/// Copies shard `id` as it is from `source` onto `target` (durable on
/// `Ok`), streaming, and returns its length: the copies of a segment kept
/// as a copy per site are the same sealed bytes, so one site's shard is
/// copied, not rebuilt, for another. Nothing is checked on the way: check
/// the copy with [`verify_shard`] before trusting it. With `pace`, each
/// chunk is paced before it is sent on.
pub async fn copy_shard(
    source: &dyn ShardStore,
    id: ShardId,
    target: &dyn ShardStore,
    pace: Option<Pace>,
) -> Result<u64, StorageError> {
    use futures::StreamExt;
    let Some(stat) = source.stat(id).await? else {
        return Err(StorageError::NotFound(id));
    };
    let bytes = source.get(id, 0..stat.size).await?;
    let bytes = match pace {
        Some(pace) => bytes
            .then(move |chunk| {
                let pace = Arc::clone(&pace);
                async move {
                    if let Ok(chunk) = &chunk {
                        pace(chunk.len() as u64).await;
                    }
                    chunk
                }
            })
            .boxed(),
        None => bytes,
    };
    target.put(id, bytes).await
}

/// Checks a stored shard where it is: a storage node checks its own file
/// (see [`crate::store::SelfScrubbing::verify_shard`]) so its bytes do not
/// cross the network again; any other store is read, as [`scrub_shard`]
/// does.
pub async fn verify_shard(
    store: &dyn ShardStore,
    id: ShardId,
) -> Result<ShardSummary, StorageError> {
    match store.self_scrubbing() {
        Some(node) => node.verify_shard(id).await,
        None => scrub_shard(store, id).await,
    }
}

/// Checks a stored shard file without the key (a node's scrub): header,
/// trailer, file length and every block's xxh3, streaming.
pub async fn scrub_shard(
    store: &dyn ShardStore,
    id: ShardId,
) -> Result<ShardSummary, StorageError> {
    let timeout = Duration::from_secs(60);
    let Some(stat) = store.stat(id).await? else {
        return Err(StorageError::NotFound(id));
    };
    if stat.size < (HEADER_LEN + TRAILER_LEN) as u64 {
        return Err(StorageError::corrupt(id, "shorter than header and trailer"));
    }
    let mut cursor = Cursor::new(store.open_reader(id, 0..stat.size).await?, 0);
    let header = ShardHeader::decode_of(id, &cursor.take(Vec::new(), HEADER_LEN, timeout).await?)?;
    let tail = store
        .open_reader(id, stat.size - TRAILER_LEN as u64..stat.size)
        .await?;
    let trailer = ShardTrailer::decode(
        id,
        &Cursor::new(tail, 0)
            .take(Vec::new(), TRAILER_LEN, timeout)
            .await?,
    )?;
    let g = header.geometry;
    let index = usize::from(id.index);
    if trailer.blocks > stat.size
        || g.stripe_count(trailer.size) != trailer.blocks
        || g.shard_file_len(trailer.size, index) != stat.size
    {
        return Err(StorageError::corrupt(
            id,
            "file length does not match its trailer",
        ));
    }
    // One buffer for every block in turn.
    let mut buf = Vec::new();
    for block in 0..trailer.blocks {
        let len = g.sealed_len(trailer.size, block, index) + HASH_LEN;
        buf.clear();
        buf = cursor.take(buf, len, timeout).await?;
        check_block(id, block, &buf)?;
    }
    Ok(ShardSummary { header, trailer })
}
