//! Keeping data alive on one machine: lost and corrupt shards are rebuilt,
//! writes go on with a disk down and are repaired when it returns, and the
//! repair backlog never holds up GC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use aws_sdk_s3::primitives::ByteStream;
use common::{disk_shards, eventually, get_bytes, metric, shard_files};
use tessera_server::testing::TestServer;

const BUCKET: &str = "alive";

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn put(client: &aws_sdk_s3::Client, key: &str, data: &[u8]) {
    client
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap();
}

/// A test server with the bucket, its client and data directory.
async fn start() -> (TestServer, aws_sdk_s3::Client, PathBuf) {
    let server = TestServer::start().await.unwrap();
    let client = common::s3_client(&server);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let dir = server.data_dir().to_path_buf();
    (server, client, dir)
}

/// Shards `server`'s repair job has waiting (from its own admin API: the
/// metrics recorder is shared by every server of the test process).
async fn repair_queued(server: &TestServer) -> u64 {
    let jobs = server.server().admin_client().jobs().await.unwrap();
    jobs.iter().find(|j| j.job == "repair").unwrap().queued
}

/// Whether repair has nothing left.
async fn repair_idle(server: &TestServer) -> bool {
    repair_queued(server).await == 0
}

/// Removes every file under `disk`'s shard directory.
fn wipe(data_dir: &Path, disk: usize) -> Vec<PathBuf> {
    let files = disk_shards(data_dir, disk);
    for f in &files {
        std::fs::remove_file(f).unwrap();
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_disk_is_rebuilt_then_two_other_disks_can_go() {
    let (server, client, dir) = start().await;
    let objects: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("obj-{i}"), body(700_000 + i * 300_000, i as u8)))
        .collect();
    for (key, data) in &objects {
        put(&client, key, data).await;
    }
    let before = shard_files(&dir);
    assert_eq!(before.len(), 6 * objects.len());

    // Disk 2 loses everything; reads still answer (and report the data
    // shards they miss), and a scrub finds the parity shards no read needs.
    let lost = wipe(&dir, 2);
    assert_eq!(lost.len(), objects.len());
    for (key, data) in &objects {
        assert_eq!(&get_bytes(&client, BUCKET, key).await, data, "{key}");
    }
    server
        .server()
        .admin_client()
        .start_job("scrub")
        .await
        .unwrap();
    let rebuilt = eventually(30, || async {
        disk_shards(&dir, 2) == lost && repair_idle(&server).await
    })
    .await;
    assert!(rebuilt, "disk 2 rebuilt: {:?}", disk_shards(&dir, 2));
    assert_eq!(shard_files(&dir), before);

    // Full redundancy again: two other disks can go at once.
    wipe(&dir, 4);
    wipe(&dir, 5);
    for (key, data) in &objects {
        assert_eq!(&get_bytes(&client, BUCKET, key).await, data, "{key}");
    }
    let (_, jobs) = common::http_get(&format!("{}/metrics", server.admin_url())).await;
    let repaired = jobs
        .lines()
        .find_map(|l| l.strip_prefix(r#"tessera_job_done_total{worker="repair"} "#))
        .and_then(|v| v.parse::<f64>().ok());
    assert!(repaired.is_some_and(|n| n > 0.0), "{jobs}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_shard_is_rebuilt_in_place() {
    let (server, client, dir) = start().await;
    let data = body(3_000_000, 7);
    put(&client, "k", &data).await;
    // A data shard (index 0), which every read of the object meets; which
    // disk holds it depends on the stores' ids.
    let shard = shard_files(&dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("-0000"))
        .unwrap();
    let original = std::fs::read(&shard).unwrap();
    let mut bad = original.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x40;
    std::fs::write(&shard, &bad).unwrap();

    assert_eq!(get_bytes(&client, BUCKET, "k").await, data);
    let fixed = eventually(30, || async {
        std::fs::read(&shard).is_ok_and(|now| now == original) && repair_idle(&server).await
    })
    .await;
    assert!(fixed, "the corrupt shard was rebuilt byte for byte");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_go_on_with_a_disk_down_and_are_repaired_when_it_returns() {
    let (server, client, dir) = start().await;
    let disk = dir.join("disks/disk-6");
    let away = dir.join("disks/disk-6.away");
    std::fs::rename(&disk, &away).unwrap();

    let objects: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("degraded-{i}"), body(1_500_000, 40 + i as u8)))
        .collect();
    for (key, data) in &objects {
        put(&client, key, data).await;
    }
    assert_eq!(
        shard_files(&dir).len(),
        5 * objects.len(),
        "five shards each"
    );
    for (key, data) in &objects {
        assert_eq!(&get_bytes(&client, BUCKET, key).await, data, "{key}");
    }
    let waiting = eventually(10, || async { repair_queued(&server).await == 3 }).await;
    assert!(waiting, "the missing shards wait for repair");
    for series in [
        "tessera_repair_pending_shards",
        r#"tessera_segments_degraded{missing="1"}"#,
    ] {
        assert!(metric(&server, series).await.is_some(), "{series} exported");
    }

    std::fs::rename(&away, &disk).unwrap();
    let repaired = eventually(30, || async {
        disk_shards(&dir, 6).len() == objects.len() && repair_idle(&server).await
    })
    .await;
    assert!(repaired, "disk 6 holds its shards again");

    // Every object has all six shards: any two disks can go.
    wipe(&dir, 1);
    wipe(&dir, 6);
    for (key, data) in &objects {
        assert_eq!(&get_bytes(&client, BUCKET, key).await, data, "{key}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_backlog_never_holds_up_gc() {
    let (server, client, dir) = start().await;
    let data = body(600_000, 9);
    for i in 0..3 {
        put(&client, &format!("k{i}"), &data).await;
    }
    // Corrupt a data shard of every object and take a disk away, so that
    // nothing can be repaired, then read enough to queue over a hundred
    // reports.
    for shard in shard_files(&dir).into_iter().filter(|p| {
        p.to_string_lossy().ends_with("-0001") && !p.starts_with(dir.join("disks/disk-1"))
    }) {
        let mut bytes = std::fs::read(&shard).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        std::fs::write(&shard, bytes).unwrap();
    }
    let disk = dir.join("disks/disk-1");
    let away = dir.join("disks/disk-1.away");
    std::fs::rename(&disk, &away).unwrap();
    for round in 0..35 {
        for i in 0..3 {
            let got = get_bytes(&client, BUCKET, &format!("k{i}")).await;
            assert_eq!(got, data, "round {round}");
        }
    }
    for i in 0..3 {
        client
            .delete_object()
            .bucket(BUCKET)
            .key(format!("k{i}"))
            .send()
            .await
            .unwrap();
    }
    let collected = eventually(30, || async { shard_files(&dir).is_empty() }).await;
    assert!(collected, "left behind: {:?}", shard_files(&dir));
    std::fs::rename(&away, &disk).unwrap();
    assert!(eventually(30, || async { repair_idle(&server).await }).await);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_finds_rot_no_read_would_meet_and_repair_fixes_it() {
    let (server, client, dir) = start().await;
    let data = body(2_500_000, 77);
    put(&client, "cold", &data).await;
    // A parity shard: reads use the data shards and never notice it.
    let parity = shard_files(&dir)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with("-0005"))
        .unwrap();
    let original = std::fs::read(&parity).unwrap();
    let mut bad = original.clone();
    for at in [100, original.len() / 3, original.len() - 40] {
        bad[at] ^= 0x01;
    }
    std::fs::write(&parity, &bad).unwrap();
    for _ in 0..5 {
        assert_eq!(get_bytes(&client, BUCKET, "cold").await, data);
    }
    assert_eq!(
        std::fs::read(&parity).unwrap(),
        bad,
        "reads leave parity alone"
    );

    server
        .server()
        .admin_client()
        .start_job("scrub")
        .await
        .unwrap();
    let fixed = eventually(30, || async {
        std::fs::read(&parity).is_ok_and(|now| now == original) && repair_idle(&server).await
    })
    .await;
    assert!(fixed, "scrub found the rot and repair rebuilt the shard");
    let jobs = server.server().admin_client().jobs().await.unwrap();
    let scrub = jobs.iter().find(|j| j.job == "scrub").unwrap();
    assert!(scrub.done >= 1 && scrub.bytes > 0, "{scrub:?}");
    // Two data shards gone: parity stands in, with the right bytes.
    for p in shard_files(&dir).into_iter().filter(|p| {
        p.to_string_lossy().ends_with("-0000") || p.to_string_lossy().ends_with("-0001")
    }) {
        std::fs::remove_file(p).unwrap();
    }
    assert_eq!(get_bytes(&client, BUCKET, "cold").await, data);
    server.shutdown().await.unwrap();
}
