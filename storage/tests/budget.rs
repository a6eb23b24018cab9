//! Writes sharing a memory budget: they wait for each other instead of
//! buffering, all complete, read back intact, and give all the memory back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tessera_storage::{
    DataKey, Geometry, MemoryBudget, ObjectId, ObjectLocation, ReadOptions, WriteOptions,
    read_object, write_object,
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
