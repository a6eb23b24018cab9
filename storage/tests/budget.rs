//! Writes and reads sharing a memory budget: they wait for each other
//! instead of buffering, never deadlock, all complete intact, and give all
//! the memory back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tessera_storage::{
    DataKey, Geometry, LocalDir, MemoryBudget, ObjectId, ObjectLocation, ReadOptions, ShardStore,
    WriteOptions, read_object, write_object,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_a_small_budget() {
    let geometry = Geometry::new(2, 1, 4096).unwrap();
    // One full stripe costs 8 KiB plain + 12 KiB framed; the budget holds
    // about one and a half, so eight writers of three stripes each must take turns.
    let budget = MemoryBudget::new(30 * 1024);
    let mut writes = Vec::new();
    for i in 0..8u64 {
        let budget = budget.clone();
        writes.push(tokio::spawn(async move {
            let (_, stores) = common::memory_stores(3);
            let bytes = common::data(3 * 8192 - 100, i);
            let key = DataKey::generate();
            let object = ObjectId::random();
            let opts = WriteOptions {
                geometry,
                budget: Some(budget),
                // Every other writer tells its size; the rest reserve whole stripes.
                size_hint: (i % 2 == 0).then_some(bytes.len() as u64),
                ..WriteOptions::default()
            };
            let body = common::body(&bytes, 1000);
            let outcome = write_object(&stores, object, 1, &key, &opts, body)
                .await
                .unwrap();
            assert_eq!(outcome.size, bytes.len() as u64);
            let loc = ObjectLocation {
                object,
                part: 1,
                size: outcome.size,
                geometry,
                stores: stores.into_iter().map(Some).collect(),
            };
            let read = read_object(loc, key, 0..outcome.size, ReadOptions::default());
            assert_eq!(common::collect(read).await.unwrap(), bytes);
        }));
    }
    for w in writes {
        tokio::time::timeout(std::time::Duration::from_secs(60), w)
            .await
            .expect("writers sharing a budget must not deadlock")
            .unwrap();
    }
    assert_eq!(budget.available(), budget.capacity());
}

/// Geometry of the read tests: a stripe is 8 KiB of plain text, and its two
/// framed data blocks (what a read of it reserves) fit in 9 KiB.
fn small_geometry() -> Geometry {
    Geometry::new(2, 1, 4096).unwrap()
}
const STRIPE_COST: usize = 9 * 1024;

/// Writes `len` bytes as part 1 of a fresh object on `stores`.
async fn write(
    stores: &[Arc<dyn ShardStore>],
    len: usize,
    seed: u64,
) -> (Vec<u8>, ObjectLocation, DataKey) {
    let geometry = small_geometry();
    let bytes = common::data(len, seed);
    let key = DataKey::generate();
    let object = ObjectId::random();
    let opts = WriteOptions {
        geometry,
        ..WriteOptions::default()
    };
    let outcome = write_object(stores, object, 1, &key, &opts, common::body(&bytes, 5000))
        .await
        .unwrap();
    let loc = ObjectLocation {
        object,
        part: 1,
        size: outcome.size,
        geometry,
        stores: stores.iter().cloned().map(Some).collect(),
    };
    (bytes, loc, key)
}

fn budgeted(budget: &MemoryBudget) -> ReadOptions {
    ReadOptions {
        budget: Some(budget.clone()),
        ..ReadOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_a_small_budget() {
    // Room for one stripe, not two: a reader that waited for its next stripe
    // while holding the one it decoded would wait forever (as would the
    // others, for it), so each must yield its stripe before it waits.
    let budget = MemoryBudget::new(STRIPE_COST + 3 * 1024);
    let mut reads = Vec::new();
    for i in 0..4u64 {
        let budget = budget.clone();
        reads.push(tokio::spawn(async move {
            let (_, stores) = common::memory_stores(3);
            let (bytes, loc, key) = write(&stores, 6 * 8192 - 100, i).await;
            for _ in 0..3 {
                let read = read_object(loc.clone(), key.clone(), 0..loc.size, budgeted(&budget));
                assert_eq!(common::collect(read).await.unwrap(), bytes);
            }
            // A range inside one block, one across stripes.
            let read = read_object(loc.clone(), key.clone(), 5000..6000, budgeted(&budget));
            assert_eq!(common::collect(read).await.unwrap(), &bytes[5000..6000]);
            let read = read_object(loc.clone(), key.clone(), 100..20_000, budgeted(&budget));
            assert_eq!(common::collect(read).await.unwrap(), &bytes[100..20_000]);
        }));
    }
    for r in reads {
        tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .expect("readers sharing a budget must not deadlock")
            .unwrap();
    }
    assert_eq!(budget.available(), budget.capacity());
}

/// Bytes of `budget` reserved right now.
fn reserved(budget: &MemoryBudget) -> usize {
    budget.capacity() - budget.available()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_holds_no_more_than_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<Arc<dyn ShardStore>> = (0..3)
        .map(|i| {
            let store = LocalDir::open(dir.path().join(i.to_string()));
            Arc::new(store.unwrap()) as Arc<dyn ShardStore>
        })
        .collect();
    let (bytes, loc, key) = write(&stores, 10 * 8192, 7).await;

    // A consumer that keeps every byte it is given stalls the read once the
    // budget (three stripes) is spent: the bytes it holds stay reserved.
    let budget = MemoryBudget::new(3 * STRIPE_COST);
    let mut read = read_object(loc.clone(), key.clone(), 0..loc.size, budgeted(&budget));
    let mut out = Vec::new();
    let mut held: Vec<Bytes> = Vec::new();
    let mut stalls = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), read.next()).await {
            Ok(Some(chunk)) => {
                held.push(chunk.unwrap());
                let held_bytes: usize = held.iter().map(Bytes::len).sum();
                assert!(held_bytes <= reserved(&budget), "held bytes are reserved");
            }
            Ok(None) => break,
            // Only slow: the reader has budget left for its next stripe.
            Err(_) if budget.available() >= STRIPE_COST => {}
            Err(_) => {
                // Stalled for budget that is in the consumer's hands.
                assert!(!held.is_empty());
                stalls += 1;
                held.drain(..).for_each(|b| out.extend_from_slice(&b));
            }
        }
    }
    held.drain(..).for_each(|b| out.extend_from_slice(&b));
    assert_eq!(out, bytes);
    assert!(
        stalls >= 2,
        "ten stripes through a three-stripe budget stall, {stalls}"
    );
    drop(read);
    assert_eq!(budget.available(), budget.capacity());

    // A consumer that drops what it is given: with budget to spare, a read
    // holds at most the stripe being yielded, one decoding and one fetching.
    let budget = MemoryBudget::new(100 * STRIPE_COST);
    let mut read = read_object(loc, key, 0..bytes.len() as u64, budgeted(&budget));
    let (mut peak, mut len) = (0, 0);
    while let Some(chunk) = read.next().await {
        len += chunk.unwrap().len();
        peak = peak.max(reserved(&budget));
    }
    assert_eq!(len, bytes.len());
    assert!(peak <= 3 * STRIPE_COST, "peak reservation {peak}");
    assert_eq!(budget.available(), budget.capacity());
}
