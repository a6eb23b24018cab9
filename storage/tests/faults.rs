//! Lost, corrupt, swapped, truncated and slow shards: exact bytes or a clear
//! error, never wrong bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Written, collect, data, put_file, shard_file, write_memory};
use proptest::prelude::*;
use tessera_storage::crypto::TAG_LEN;
use tessera_storage::format::{BLOCK_OVERHEAD, HEADER_LEN, block_hash, verify_shard_file};
use tessera_storage::{
    DataKey, Geometry, Memory, ObjectId, ObjectLocation, ReadOptions, ShardStore, StorageError,
    WriteOptions, read_object, repair_shard, scrub_shard, write_object,
};

fn geometry() -> impl Strategy<Value = Geometry> {
    (2u16..=12, 1u16..=4, 1u32..=32).prop_map(|(k, m, half)| Geometry::new(k, m, half * 2).unwrap())
}

/// Objects of 1 byte to 3.5 stripes.
fn object() -> impl Strategy<Value = (Geometry, Vec<u8>)> {
    (geometry(), 0.0f64..3.5, any::<u64>()).prop_map(|(g, stripes, seed)| {
        let size = ((stripes * g.stripe_size() as f64) as usize).max(1);
        (g, data(size, seed))
    })
}

/// The only acceptable outcomes: exact bytes or an error.
fn exact_or_error(out: &Result<Vec<u8>, StorageError>, want: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(got) = out {
        prop_assert!(got.as_slice() == want, "read returned wrong bytes");
    }
    Ok(())
}

async fn setup(g: Geometry, bytes: &[u8]) -> Written {
    write_memory(bytes, g, 1000).await
}

proptest! {
    #![proptest_config(common::proptest_config(48))]

    /// Up to m shards lost (deleted or their store unknown): exact bytes.
    /// More than m: exact bytes only if no needed data shard is gone, else an error.
    #[test]
    fn lost_shards((g, bytes) in object(), picks in prop::collection::vec(any::<prop::sample::Index>(), 1..6), unknown in any::<bool>()) {
        common::rt().block_on(async {
            let w = setup(g, &bytes).await;
            let n = g.total_shards();
            let lost: BTreeSet<usize> = picks.iter().map(|p| p.index(n)).collect();
            let mut loc = w.location();
            for &i in &lost {
                if unknown { loc.stores[i] = None; } else { w.mems[i].delete(w.shard(i)).await.unwrap(); }
            }
            let (out, bad) = w.read_at(loc, 0..bytes.len() as u64).await;
            if lost.len() <= usize::from(g.parity_shards) {
                prop_assert_eq!(out.as_deref().ok(), Some(bytes.as_slice()));
                prop_assert!(bad.iter().all(|b| lost.contains(&usize::from(*b))));
                // A deleted data shard is reported when the read needed it; a
                // store given as unknown (None) is the caller's knowledge, not news.
                let needed = |i: usize| i < g.k() && i * (g.block_size as usize) < bytes.len();
                if unknown {
                    prop_assert!(bad.is_empty());
                } else {
                    prop_assert!(lost.iter().filter(|&&i| needed(i)).all(|i| bad.contains(&(*i as u16))));
                }
            } else {
                exact_or_error(&out, &bytes)?;
            }
            Ok(())
        })?;
    }

    /// One byte flipped anywhere in one shard file: exact bytes; the shard is
    /// reported if the read needed it, and scrub always flags it.
    #[test]
    fn flipped_byte_in_any_shard((g, bytes) in object(), shard in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        common::rt().block_on(async {
            let w = setup(g, &bytes).await;
            let i = shard.index(g.total_shards());
            let mut file = shard_file(&w.mems[i], w.shard(i)).await;
            let pos = at.index(file.len());
            file[pos] ^= 1 << bit;
            put_file(&w.mems[i], w.shard(i), file.clone()).await;
            let (out, bad) = w.read(0..bytes.len() as u64).await;
            prop_assert_eq!(out.as_deref().ok(), Some(bytes.as_slice()));
            let in_blocks = pos >= HEADER_LEN && pos < file.len() - tessera_storage::format::TRAILER_LEN;
            let needed = i < g.k() && i * (g.block_size as usize) < bytes.len();
            if needed && in_blocks {
                prop_assert_eq!(bad, vec![i as u16]);
            }
            prop_assert!(scrub_shard(&w.mems[i], w.shard(i)).await.is_err());
            prop_assert!(verify_shard_file(&file).is_err());
            Ok(())
        })?;
    }

    /// Bytes flipped in several shards: exact bytes when at most m shards
    /// were hit, else exact bytes or an error.
    #[test]
    fn flips_in_many_shards((g, bytes) in object(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..8), lo in 0.0f64..1.0) {
        common::rt().block_on(async {
            let w = setup(g, &bytes).await;
            let mut hit = BTreeSet::new();
            for (shard, at) in flips {
                let i = shard.index(g.total_shards());
                hit.insert(i);
                let mut file = shard_file(&w.mems[i], w.shard(i)).await;
                let pos = at.index(file.len());
                file[pos] ^= 0x5a;
                put_file(&w.mems[i], w.shard(i), file).await;
            }
            let start = (lo * bytes.len() as f64) as usize;
            let (out, _) = w.read(start as u64..bytes.len() as u64).await;
            if hit.len() <= usize::from(g.parity_shards) {
                prop_assert_eq!(out.as_deref().ok(), Some(&bytes[start..]));
                Ok(())
            } else {
                exact_or_error(&out, &bytes[start..])
            }
        })?;
    }

    /// A block moved within a shard, copied from another shard, or from the
    /// same position of another object: detected, read around, exact bytes.
    #[test]
    fn swapped_blocks((g, bytes) in object(), shard in any::<prop::sample::Index>(), other in any::<prop::sample::Index>(), mode in 0u8..3) {
        let stripes = g.stripe_count(bytes.len() as u64);
        prop_assume!(stripes >= 3); // so there are two full blocks to swap
        common::rt().block_on(async {
            let w = setup(g, &bytes).await;
            let n = g.total_shards();
            let i = shard.index(n);
            let rec = g.block_size as usize + BLOCK_OVERHEAD;
            let block = |b: usize| HEADER_LEN + b * rec..HEADER_LEN + (b + 1) * rec;
            let mut file = shard_file(&w.mems[i], w.shard(i)).await;
            match mode {
                0 => {
                    // Swap blocks 0 and 1 of shard i.
                    let (a, b) = (file[block(0)].to_vec(), file[block(1)].to_vec());
                    file[block(0)].copy_from_slice(&b);
                    file[block(1)].copy_from_slice(&a);
                }
                1 => {
                    // Block 0 of another shard of the same object.
                    let j = (i + 1 + other.index(n - 1)) % n;
                    let src = shard_file(&w.mems[j], w.shard(j)).await;
                    file[block(0)].copy_from_slice(&src[block(0)]);
                }
                _ => {
                    // Block 1 of the same shard of another object in the same stores.
                    let key = DataKey::generate();
                    let twin = ObjectId::random();
                    let opts = WriteOptions { geometry: g, ..WriteOptions::default() };
                    write_object(&w.stores, twin, 1, &key, &opts, common::body(&data(bytes.len(), 99), 512)).await.unwrap();
                    let src = shard_file(&w.mems[i], tessera_storage::ShardId { object: twin, part: 1, index: i as u16 }).await;
                    file[block(1)].copy_from_slice(&src[block(1)]);
                }
            }
            put_file(&w.mems[i], w.shard(i), file).await;
            let (out, bad) = w.read(0..bytes.len() as u64).await;
            prop_assert_eq!(out.as_deref().ok(), Some(bytes.as_slice()));
            if i < g.k() {
                prop_assert_eq!(bad, vec![i as u16]);
            }
            prop_assert!(scrub_shard(&w.mems[i], w.shard(i)).await.is_err());
            Ok(())
        })?;
    }

    /// Shard files cut short: with ≤ m cut, exact bytes; with more, exact or error.
    #[test]
    fn truncated_shards((g, bytes) in object(), cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..6)) {
        common::rt().block_on(async {
            let w = setup(g, &bytes).await;
            let mut cut = BTreeSet::new();
            for (shard, at) in cuts {
                let i = shard.index(g.total_shards());
                let mut file = shard_file(&w.mems[i], w.shard(i)).await;
                if file.is_empty() {
                    // Cut to nothing by an earlier pick of the same shard.
                    continue;
                }
                file.truncate(at.index(file.len()));
                put_file(&w.mems[i], w.shard(i), file).await;
                cut.insert(i);
            }
            let (out, _) = w.read(0..bytes.len() as u64).await;
            if cut.len() <= usize::from(g.parity_shards) {
                prop_assert_eq!(out.as_deref().ok(), Some(bytes.as_slice()));
            } else {
                exact_or_error(&out, &bytes)?;
            }
            for i in cut {
                prop_assert!(scrub_shard(&w.mems[i], w.shard(i)).await.is_err());
            }
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_shard_files_swapped_between_objects_are_rejected() {
    let g = Geometry::new(3, 2, 64).unwrap();
    let a = write_memory(&data(1000, 1), g, 100).await;
    let b_key = DataKey::generate();
    let b_obj = ObjectId::random();
    let opts = WriteOptions {
        geometry: g,
        ..WriteOptions::default()
    };
    write_object(
        &a.stores,
        b_obj,
        1,
        &b_key,
        &opts,
        common::body(&data(1000, 2), 100),
    )
    .await
    .unwrap();
    // Shard 0 of object b stored under object a's name.
    let b0 = shard_file(
        &a.mems[0],
        tessera_storage::ShardId {
            object: b_obj,
            part: 1,
            index: 0,
        },
    )
    .await;
    put_file(&a.mems[0], a.shard(0), b0).await;
    let (out, bad) = a.read(0..1000).await;
    assert_eq!(out.unwrap(), data(1000, 1));
    assert_eq!(bad, vec![0]);
}

/// 10,000 bytes of data `seed` written 4+2 to six stores behind
/// [`common::Faulty`] wrappers: the bytes, the wrappers, the key and where
/// the shards are.
async fn on_faulty_stores(
    seed: u64,
) -> (Vec<u8>, Vec<Arc<common::Faulty>>, DataKey, ObjectLocation) {
    let g = Geometry::new(4, 2, 256).unwrap();
    let bytes = data(10_000, seed);
    let (_, faulty, stores) = common::faulty_stores(6);
    let key = DataKey::generate();
    let object = ObjectId::random();
    let opts = WriteOptions {
        geometry: g,
        ..WriteOptions::default()
    };
    write_object(&stores, object, 1, &key, &opts, common::body(&bytes, 999))
        .await
        .unwrap();
    let loc = ObjectLocation {
        object,
        part: 1,
        size: bytes.len() as u64,
        geometry: g,
        stores: stores.iter().cloned().map(Some).collect(),
    };
    (bytes, faulty, key, loc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_failing_stores_are_read_around() {
    let (bytes, faulty, key, loc) = on_faulty_stores(3).await;
    faulty[1].hang_gets.store(true, Ordering::SeqCst);
    faulty[2].fail_gets.store(true, Ordering::SeqCst);
    let reported = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = reported.clone();
    let read_opts = ReadOptions {
        shard_timeout: Duration::from_millis(200),
        on_bad_shard: Some(Arc::new(move |id, _e: &StorageError| {
            sink.lock().unwrap().push(id.index)
        })),
        ..ReadOptions::default()
    };
    let started = std::time::Instant::now();
    let out = collect(read_object(
        loc.clone(),
        key.clone(),
        0..10_000,
        read_opts.clone(),
    ))
    .await
    .unwrap();
    assert_eq!(out, bytes);
    assert!(started.elapsed() < Duration::from_secs(3));
    let mut reported = reported.lock().unwrap().clone();
    reported.sort_unstable();
    assert_eq!(reported, vec![1, 2]);
    // A third bad store is one too many for 4+2.
    faulty[0].fail_gets.store(true, Ordering::SeqCst);
    let err = collect(read_object(loc, key, 0..10_000, read_opts))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Quorum { needed: 4, .. }),
        "{err}"
    );
}

async fn read_all(loc: ObjectLocation, key: &DataKey) -> Vec<u8> {
    let size = loc.size;
    collect(read_object(
        loc,
        key.clone(),
        0..size,
        ReadOptions::default(),
    ))
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_quorum_and_cleanup() {
    let g = Geometry::new(4, 2, 128).unwrap();
    let bytes = data(5_000, 8);
    let (mems, faulty, stores) = common::faulty_stores(6);
    faulty[3].fail_puts.store(true, Ordering::SeqCst);
    let key = DataKey::generate();
    let refused = |opts: WriteOptions| {
        let (stores, key, bytes) = (stores.clone(), key.clone(), bytes.clone());
        async move {
            write_object(
                &stores,
                ObjectId::random(),
                1,
                &key,
                &opts,
                common::body(&bytes, 700),
            )
            .await
            .unwrap_err()
        }
    };

    // Default quorum (all shards): fails, and nothing is left behind.
    let err = refused(WriteOptions {
        geometry: g,
        ..WriteOptions::default()
    })
    .await;
    assert!(
        matches!(err, StorageError::Quorum { needed: 6, .. }),
        "{err}"
    );
    assert!(mems.iter().all(|m| m.stored_bytes() == 0));

    // Quorum k + 1 = 5: succeeds and names the missing shard.
    let object = ObjectId::random();
    let opts = WriteOptions {
        geometry: g,
        write_quorum: Some(5),
        ..WriteOptions::default()
    };
    let out = write_object(&stores, object, 1, &key, &opts, common::body(&bytes, 700))
        .await
        .unwrap();
    assert_eq!(out.missing_shards, vec![3]);
    let mut loc = ObjectLocation {
        object,
        part: 1,
        size: out.size,
        geometry: g,
        stores: stores.iter().cloned().map(Some).collect(),
    };
    assert_eq!(read_all(loc.clone(), &key).await, bytes);

    // Repair shard 3 onto a fresh store, paced block by block; the object
    // then survives losing two others.
    let fresh = Arc::new(Memory::new("fresh"));
    let paced = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = paced.clone();
    let pace: tessera_storage::Pace = Arc::new(move |bytes| {
        sink.lock().unwrap().push(bytes);
        Box::pin(async {})
    });
    repair_shard(&loc, &key, 3, fresh.clone(), Some(pace))
        .await
        .unwrap();
    let id = tessera_storage::ShardId {
        object,
        part: 1,
        index: 3,
    };
    let summary = scrub_shard(fresh.as_ref(), id).await.unwrap();
    let paced = paced.lock().unwrap().clone();
    assert_eq!(paced.len() as u64, summary.trailer.blocks, "once per block");
    assert_eq!(
        paced.iter().sum::<u64>(),
        (0..summary.trailer.blocks)
            .map(|b| g.sealed_len(out.size, b, 3) as u64)
            .sum::<u64>(),
        "the rebuilt bytes"
    );
    loc.stores[3] = Some(fresh);
    loc.stores[0] = None;
    loc.stores[5] = None;
    assert_eq!(read_all(loc, &key).await, bytes);

    // A store known to be down is not even tried: with shard 1 skipped and
    // shard 3 failing, quorum 5 cannot be met and nothing is left behind ...
    let before: Vec<u64> = mems.iter().map(|m| m.stored_bytes()).collect();
    let opts = WriteOptions {
        geometry: g,
        write_quorum: Some(5),
        unavailable: vec![1],
        ..WriteOptions::default()
    };
    let err = refused(opts.clone()).await;
    assert!(
        matches!(
            err,
            StorageError::Quorum {
                needed: 5,
                available: 4
            }
        ),
        "{err}"
    );
    let after: Vec<u64> = mems.iter().map(|m| m.stored_bytes()).collect();
    assert_eq!(after, before);
    // ... while quorum k accepts it, without parity to spare.
    let object = ObjectId::random();
    let opts = WriteOptions {
        write_quorum: Some(4),
        ..opts
    };
    let out = write_object(&stores, object, 1, &key, &opts, common::body(&bytes, 700))
        .await
        .unwrap();
    assert_eq!(out.missing_shards, vec![1, 3]);
    assert_eq!(
        mems[1].stored_bytes(),
        before[1],
        "the skipped store got nothing"
    );
    let loc = ObjectLocation {
        object,
        part: 1,
        size: out.size,
        geometry: g,
        stores: stores.iter().cloned().map(Some).collect(),
    };
    assert_eq!(read_all(loc, &key).await, bytes);

    // Quorum below k is refused up front.
    let err = refused(WriteOptions {
        geometry: g,
        write_quorum: Some(3),
        ..WriteOptions::default()
    })
    .await;
    assert!(matches!(err, StorageError::InvalidGeometry(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repaired_shards_are_byte_identical() {
    let g = Geometry::new(5, 3, 64).unwrap();
    let bytes = data(2_345, 4);
    let w = write_memory(&bytes, g, 100).await;
    for i in [0usize, 4, 5, 7] {
        let original = shard_file(&w.mems[i], w.shard(i)).await;
        w.mems[i].delete(w.shard(i)).await.unwrap();
        repair_shard(&w.location(), &w.key, i as u16, w.stores[i].clone(), None)
            .await
            .unwrap();
        assert_eq!(
            shard_file(&w.mems[i], w.shard(i)).await,
            original,
            "shard {i}"
        );
        let summary = verify_shard_file(&original).unwrap();
        assert_eq!(summary.trailer.size, 2_345);
    }
    // With the wrong key, repair refuses instead of writing garbage.
    w.mems[1].delete(w.shard(1)).await.unwrap();
    let err = repair_shard(
        &w.location(),
        &DataKey::generate(),
        1,
        w.stores[1].clone(),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert_eq!(w.mems[1].stat(w.shard(1)).await.unwrap(), None);
}

/// A data block forged on its store (bytes changed, checksum made to
/// match, as a hostile node could) is never built into a rebuilt shard:
/// not into a parity block, not into another data block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_block_with_a_matching_checksum_is_never_repaired_into_others() {
    let g = Geometry::new(5, 3, 64).unwrap();
    let w = write_memory(&data(2_345, 9), g, 100).await;
    let forged = 2;
    let mut file = shard_file(&w.mems[forged], w.shard(forged)).await;
    let sealed = HEADER_LEN..HEADER_LEN + 64 + TAG_LEN;
    file[sealed.start + 5] ^= 0x40;
    let hash = block_hash(w.shard(forged), 0, &file[sealed.clone()]);
    file[sealed.end..sealed.end + hash.len()].copy_from_slice(&hash);
    put_file(&w.mems[forged], w.shard(forged), file).await;
    for lost in [6usize, 0] {
        w.mems[lost].delete(w.shard(lost)).await.unwrap();
        let err = repair_shard(
            &w.location(),
            &w.key,
            lost as u16,
            w.stores[lost].clone(),
            None,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, StorageError::Corrupt { .. }),
            "shard {lost}: {err}"
        );
        assert_eq!(w.mems[lost].stat(w.shard(lost)).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_body_leaves_no_shards() {
    let (mems, stores) = common::memory_stores(3);
    let body = futures::stream::iter(vec![
        Ok(bytes::Bytes::from(vec![1u8; 5000])),
        Err(std::io::Error::other("client went away")),
    ]);
    let opts = WriteOptions {
        geometry: Geometry::new(2, 1, 64).unwrap(),
        ..WriteOptions::default()
    };
    let err = write_object(
        &stores,
        ObjectId::random(),
        1,
        &DataKey::generate(),
        &opts,
        body,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StorageError::Body(_)), "{err}");
    assert!(mems.iter().all(|m| m.stored_bytes() == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_an_error_not_garbage() {
    let w = write_memory(&data(3000, 6), Geometry::new(3, 1, 64).unwrap(), 300).await;
    let out = collect(read_object(
        w.location(),
        DataKey::generate(),
        0..3000,
        ReadOptions::default(),
    ))
    .await;
    assert!(matches!(out, Err(StorageError::Corrupt { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedged_read_outruns_a_stalled_store_and_reports_it_slow_not_bad() {
    let (bytes, faulty, key, loc) = on_faulty_stores(5).await;
    // A data shard's store stalls: without hedging the read would wait
    // the whole shard timeout for it.
    faulty[2].hang_gets.store(true, Ordering::SeqCst);
    let stalled = loc.stores[2].as_ref().unwrap().id().to_owned();
    let bad: Arc<std::sync::Mutex<Vec<u16>>> = Arc::default();
    let slow: Arc<std::sync::Mutex<Vec<(u16, String)>>> = Arc::default();
    let (bad_sink, slow_sink) = (bad.clone(), slow.clone());
    let read_opts = ReadOptions {
        shard_timeout: Duration::from_secs(30),
        hedge_after: Some(Duration::from_millis(50)),
        on_bad_shard: Some(Arc::new(move |id, _e: &StorageError| {
            bad_sink.lock().unwrap().push(id.index)
        })),
        on_slow_shard: Some(Arc::new(move |id, store: &str| {
            slow_sink.lock().unwrap().push((id.index, store.to_owned()))
        })),
        ..ReadOptions::default()
    };
    let started = std::time::Instant::now();
    let out = collect(read_object(loc, key, 0..10_000, read_opts))
        .await
        .unwrap();
    assert_eq!(out, bytes);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        *slow.lock().unwrap(),
        vec![(2, stalled)],
        "the stalled shard is slow"
    );
    assert!(bad.lock().unwrap().is_empty(), "and not reported bad");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_are_the_same_shards_and_each_reads_alone() {
    // 2+1 kept twice (one copy a site): positions 0-2 and 3-5.
    let g = Geometry::new(2, 1, 256).unwrap();
    let bytes = data(3_000, 21);
    let (mems, faulty, stores) = common::faulty_stores(6);
    let key = DataKey::generate();
    let opts = WriteOptions {
        geometry: g,
        write_quorum: Some(3),
        ..WriteOptions::default()
    };
    // A new object written with `unavailable` positions: its id and outcome.
    let write = |unavailable: Vec<u16>| {
        let (stores, key, bytes) = (stores.clone(), key.clone(), bytes.clone());
        let opts = WriteOptions {
            unavailable,
            ..opts.clone()
        };
        async move {
            let object = ObjectId::random();
            let out = write_object(&stores, object, 1, &key, &opts, common::body(&bytes, 500));
            (object, out.await)
        }
    };
    let copy = |object: ObjectId, size: u64, c: usize| ObjectLocation {
        object,
        part: 1,
        size,
        geometry: g,
        stores: stores[c * 3..c * 3 + 3].iter().cloned().map(Some).collect(),
    };

    let (object, out) = write(Vec::new()).await;
    let out = out.unwrap();
    assert!(out.missing_shards.is_empty());
    for index in 0..3u16 {
        let id = tessera_storage::ShardId {
            object,
            part: 1,
            index,
        };
        let first = shard_file(stores[usize::from(index)].as_ref(), id).await;
        let twin = shard_file(stores[usize::from(index) + 3].as_ref(), id).await;
        assert_eq!(
            first, twin,
            "shard {index}: both copies hold the same bytes"
        );
    }
    assert_eq!(read_all(copy(object, out.size, 0), &key).await, bytes);
    assert_eq!(read_all(copy(object, out.size, 1), &key).await, bytes);

    // A copy whose every store is down is skipped whole (repair writes it
    // later) and the other is written ...
    let (object, out) = write(vec![3, 4, 5]).await;
    let out = out.unwrap();
    assert_eq!(out.missing_shards, vec![3, 4, 5]);
    assert_eq!(read_all(copy(object, out.size, 0), &key).await, bytes);

    // ... but every copy that is written must reach the quorum on its own:
    // a failing store in one copy fails the write, and nothing is left.
    faulty[4].fail_puts.store(true, Ordering::SeqCst);
    let before: Vec<u64> = mems.iter().map(|m| m.stored_bytes()).collect();
    let err = write(Vec::new()).await.1.unwrap_err();
    let expected = StorageError::Quorum {
        needed: 3,
        available: 2,
    };
    assert_eq!(err.to_string(), expected.to_string());
    let after: Vec<u64> = mems.iter().map(|m| m.stored_bytes()).collect();
    assert_eq!(before, after);
    // No copy to write at all is refused too.
    let err = write((0..6).collect()).await.1.unwrap_err();
    assert!(
        matches!(err, StorageError::Quorum { available: 0, .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_is_written_around_not_waited_for() {
    // Many stripes, so the stalled shard's stream fills up.
    let g = Geometry::new(4, 2, 128).unwrap();
    let bytes = data(40_000, 5);
    let (_mems, faulty, stores) = common::faulty_stores(6);
    faulty[2].hang_puts.store(true, Ordering::SeqCst);
    let key = DataKey::generate();
    let object = ObjectId::random();
    let opts = WriteOptions {
        geometry: g,
        write_quorum: Some(5),
        stall_timeout: Some(Duration::from_millis(300)),
        ..WriteOptions::default()
    };
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        write_object(&stores, object, 1, &key, &opts, common::body(&bytes, 1000)),
    )
    .await
    .expect("the write waited on the stalled store")
    .unwrap();
    assert_eq!(out.missing_shards, vec![2]);
    let mut loc = ObjectLocation {
        object,
        part: 1,
        size: out.size,
        geometry: g,
        stores: stores.iter().cloned().map(Some).collect(),
    };
    loc.stores[2] = None;
    assert_eq!(read_all(loc, &key).await, bytes);
}
