//! Peak memory of writing a 1 GiB object: prints VmHWM before and after.
//! The stores discard what they receive, so only the writer's own buffers count.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tessera_storage::{
    ByteStream, DataKey, Geometry, ObjectId, ShardId, ShardStat, ShardStore, StorageError,
    StoreHealth, WriteOptions, write_object,
};

/// Consumes a shard and keeps nothing.
#[derive(Debug)]
struct Discard(String);

#[async_trait::async_trait]
impl ShardStore for Discard {
    fn id(&self) -> &str {
        &self.0
    }
    async fn put(&self, _: ShardId, mut data: ByteStream) -> Result<u64, StorageError> {
        let mut n = 0;
        while let Some(chunk) = data.next().await {
            n += chunk?.len() as u64;
        }
        Ok(n)
    }
    async fn get(&self, id: ShardId, _: Range<u64>) -> Result<ByteStream, StorageError> {
        Err(StorageError::NotFound(id))
    }
    async fn stat(&self, _: ShardId) -> Result<Option<ShardStat>, StorageError> {
        Ok(None)
    }
    async fn delete(&self, _: ShardId) -> Result<bool, StorageError> {
        Ok(false)
    }
    async fn list(&self, _: Option<ShardId>, _: usize) -> Result<Vec<ShardId>, StorageError> {
        Ok(Vec::new())
    }
    async fn health(&self) -> Result<StoreHealth, StorageError> {
        Ok(StoreHealth {
            capacity: 0,
            free: 0,
            ok: true,
        })
    }
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn main() {
    // `cargo bench` passes filter flags; this binary takes none.
    const SIZE: usize = 1 << 30;
    const CHUNK: usize = 64 * 1024;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let chunk = Bytes::from(vec![0x5au8; CHUNK]);
    let before = vm_hwm_kib();
    for stripes_in_flight in [1usize, 2, 4] {
        let g = Geometry::default();
        let stores: Vec<Arc<dyn ShardStore>> = (0..g.total_shards())
            .map(|i| Arc::new(Discard(format!("d{i}"))) as _)
            .collect();
        let opts = WriteOptions {
            geometry: g,
            stripes_in_flight,
            ..WriteOptions::default()
        };
        let chunk = chunk.clone();
        let body = futures::stream::iter(
            (0..SIZE / CHUNK).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
        );
        let started = std::time::Instant::now();
        let out = rt
            .block_on(write_object(
                &stores,
                ObjectId::random(),
                1,
                &DataKey::generate(),
                &opts,
                body,
            ))
            .unwrap();
        assert_eq!(out.size, SIZE as u64);
        let after = vm_hwm_kib();
        println!(
            "peak_memory: 1 GiB object, 4+2, 1 MiB blocks (4 MiB stripes), stripes_in_flight={stripes_in_flight}: \
             VmHWM {} MiB (process baseline {} MiB, so the writer added <= {} MiB), {:.0} MB/s",
            after / 1024,
            before / 1024,
            (after - before) / 1024,
            SIZE as f64 / started.elapsed().as_secs_f64() / 1e6
        );
    }
}
