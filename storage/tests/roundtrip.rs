//! Writer → reader round trips over random geometries, sizes and ranges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{data, write_memory};
use md5::Digest;
use proptest::prelude::*;
use tessera_storage::{ChecksumAlgorithm, Geometry, WriteOptions, write_object};

fn geometry() -> impl Strategy<Value = Geometry> {
    (2u16..=12, 1u16..=4, 1u32..=48).prop_map(|(k, m, half)| Geometry::new(k, m, half * 2).unwrap())
}

proptest! {
    #![proptest_config(common::proptest_config(96))]

    /// Any size from 0 to 3.5 stripes, any chunking, any range: exact bytes back.
    #[test]
    fn round_trip_any_size_and_range(
        g in geometry(),
        stripes in 0.0f64..3.5,
        chunk in 1usize..700,
        seed in any::<u64>(),
        a in 0.0f64..=1.0,
        b in 0.0f64..=1.0,
    ) {
        let size = (stripes * g.stripe_size() as f64) as usize;
        let bytes = data(size, seed);
        common::rt().block_on(async {
            let w = write_memory(&bytes, g, chunk).await;
            prop_assert_eq!(w.outcome.size, size as u64);
            prop_assert!(w.outcome.missing_shards.is_empty());
            prop_assert_eq!(w.outcome.checksums.md5, <[u8; 16]>::from(md5::Md5::digest(&bytes)));
            let (full, bad) = w.read(0..size as u64).await;
            prop_assert_eq!(full.unwrap(), bytes.clone());
            prop_assert!(bad.is_empty());
            let (lo, hi) = ((a.min(b) * size as f64) as u64, (a.max(b) * size as f64) as u64);
            let (part, _) = w.read(lo..hi).await;
            prop_assert_eq!(part.unwrap(), bytes[lo as usize..hi as usize].to_vec());
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_checksum_matches_a_one_shot_digest() {
    let bytes = data(100_003, 5);
    let (_, stores) = common::memory_stores(6);
    let opts = WriteOptions {
        geometry: Geometry::new(4, 2, 4096).unwrap(),
        checksums: ChecksumAlgorithm::ALL.to_vec(),
        ..WriteOptions::default()
    };
    let key = tessera_storage::DataKey::generate();
    let out = write_object(
        &stores,
        tessera_storage::ObjectId::random(),
        1,
        &key,
        &opts,
        common::body(&bytes, 777),
    )
    .await
    .unwrap();
    for alg in ChecksumAlgorithm::ALL {
        assert_eq!(
            out.checksums.get(alg).unwrap(),
            alg.digest(&bytes).as_slice(),
            "{}",
            alg.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_geometry_multi_stripe_object() {
    // 1 MiB blocks, 4+2: 5.5 MiB spans two stripes, the second one short.
    let bytes = data(5 * (1 << 20) + (1 << 19), 11);
    let w = write_memory(&bytes, Geometry::default(), 64 * 1024).await;
    let (out, bad) = w.read(0..bytes.len() as u64).await;
    assert_eq!(out.unwrap(), bytes);
    assert!(bad.is_empty());
    let (mid, _) = w.read(4_000_000..4_200_000).await;
    assert_eq!(mid.unwrap(), &bytes[4_000_000..4_200_000]);
}

#[tokio::test]
async fn invalid_range_is_an_error() {
    let w = write_memory(b"hello", Geometry::new(2, 1, 64).unwrap(), 5).await;
    let (out, _) = w.read(2..9).await;
    assert!(matches!(
        out,
        Err(tessera_storage::StorageError::InvalidRange { size: 5, .. })
    ));
    let (empty, _) = w.read(3..3).await;
    assert_eq!(empty.unwrap(), b"");
}

/// A store that accepts a put but never reads it (a stuck disk).
#[derive(Debug)]
struct Stuck(String);

#[async_trait::async_trait]
impl tessera_storage::ShardStore for Stuck {
    fn id(&self) -> &str {
        &self.0
    }
    async fn put(
        &self,
        _: tessera_storage::ShardId,
        _: tessera_storage::ByteStream,
    ) -> Result<u64, tessera_storage::StorageError> {
        futures::future::pending().await
    }
    async fn get(
        &self,
        id: tessera_storage::ShardId,
        _: std::ops::Range<u64>,
    ) -> Result<tessera_storage::ByteStream, tessera_storage::StorageError> {
        Err(tessera_storage::StorageError::NotFound(id))
    }
    async fn stat(
        &self,
        _: tessera_storage::ShardId,
    ) -> Result<Option<tessera_storage::ShardStat>, tessera_storage::StorageError> {
        Ok(None)
    }
    async fn delete(
        &self,
        _: tessera_storage::ShardId,
    ) -> Result<bool, tessera_storage::StorageError> {
        Ok(false)
    }
    async fn list(
        &self,
        _: Option<tessera_storage::ShardId>,
        _: usize,
    ) -> Result<Vec<tessera_storage::ShardId>, tessera_storage::StorageError> {
        Ok(Vec::new())
    }
    async fn health(&self) -> Result<tessera_storage::StoreHealth, tessera_storage::StorageError> {
        Ok(tessera_storage::StoreHealth {
            capacity: 0,
            free: 0,
            ok: false,
        })
    }
}

/// With a stuck store, the writer stops pulling the body after a few stripes:
/// memory is bounded by stripes in flight, not by the object size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_memory_is_bounded_by_stripes_in_flight() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let g = Geometry::new(4, 2, 64 * 1024).unwrap();
    for in_flight in [1usize, 3] {
        let pulled = std::sync::Arc::new(AtomicU64::new(0));
        let counter = pulled.clone();
        // An endless body (think: a 1 TiB upload).
        let body = futures::stream::repeat_with(move || {
            counter.fetch_add(8192, Ordering::SeqCst);
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![3u8; 8192]))
        });
        let (mems, mut stores) = common::memory_stores(6);
        stores[5] = std::sync::Arc::new(Stuck("stuck".into()));
        let opts = WriteOptions {
            geometry: g,
            stripes_in_flight: in_flight,
            ..WriteOptions::default()
        };
        let key = tessera_storage::DataKey::generate();
        let write = write_object(
            &stores,
            tessera_storage::ObjectId::random(),
            1,
            &key,
            &opts,
            body,
        );
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(500), write)
                .await
                .is_err()
        );
        let pulled = pulled.load(Ordering::SeqCst);
        // Buffer + encode queue + shard channel + hash queue, a few stripes each.
        let bound = (3 * in_flight as u64 + 3) * g.stripe_size();
        assert!(pulled <= bound, "pulled {pulled} bytes, bound {bound}");
        // The abandoned write committed nothing.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(mems.iter().all(|m| m.stored_bytes() == 0));
    }
}
