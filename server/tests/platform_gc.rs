//! Garbage collection: shards of deleted and overwritten objects leave the disks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::{shard_files, wait_for_shards};
use tessera_server::testing::TestServer;

/// A test server (after `adjust`) with the bucket `collect`, its client and
/// data directory.
async fn start_with(
    adjust: impl FnOnce(&mut tessera_server::Config),
) -> (TestServer, aws_sdk_s3::Client, PathBuf) {
    let server = TestServer::start_with(adjust).await.unwrap();
    let client = common::s3_client(&server);
    let dir = server.data_dir().to_path_buf();
    client
        .create_bucket()
        .bucket("collect")
        .send()
        .await
        .unwrap();
    (server, client, dir)
}

async fn start() -> (TestServer, aws_sdk_s3::Client, PathBuf) {
    start_with(|_| {}).await
}

async fn put(client: &aws_sdk_s3::Client, key: &str, len: usize, fill: u8) {
    client
        .put_object()
        .bucket("collect")
        .key(key)
        .body(ByteStream::from(vec![fill; len]))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_overwritten_data_is_collected() {
    let (server, client, dir) = start().await;

    put(&client, "kept", 300_000, 1).await;
    let kept = shard_files(&dir);
    assert_eq!(kept.len(), 6, "one shard per disk for 4+2");

    put(&client, "doomed", 300_000, 2).await;
    assert_eq!(shard_files(&dir).len(), 12);
    client
        .delete_object()
        .bucket("collect")
        .key("doomed")
        .send()
        .await
        .unwrap();
    wait_for_shards(&dir, &kept).await;

    // Overwriting replaces the shards: the old ones go.
    put(&client, "kept", 200_000, 3).await;
    let mut replaced = Vec::new();
    for _ in 0..100 {
        replaced = shard_files(&dir);
        if replaced.len() == 6 && replaced.iter().all(|p| !kept.contains(p)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(replaced.len(), 6);
    assert!(
        replaced.iter().all(|p| !kept.contains(p)),
        "old shards collected"
    );
    let got = client
        .get_object()
        .bucket("collect")
        .key("kept")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        vec![3u8; 200_000].as_slice()
    );

    let (_, metrics) = common::http_get(&format!("{}/metrics", server.admin_url())).await;
    let deleted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_gc_segments_deleted_total "))
        .expect("gc metric present")
        .parse()
        .unwrap();
    assert!(deleted >= 2.0, "{deleted}");
    server.shutdown().await.unwrap();
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_racing_an_overwrite_reads_the_old_bytes_to_the_end() {
    let (server, client, dir) = start().await;
    let old = pattern(24 << 20, 1);
    client
        .put_object()
        .bucket("collect")
        .key("race")
        .body(ByteStream::from(old.clone()))
        .send()
        .await
        .unwrap();
    let old_shards = shard_files(&dir);

    let mut body = client
        .get_object()
        .bucket("collect")
        .key("race")
        .send()
        .await
        .unwrap()
        .body;
    let mut got = Vec::new();
    while got.len() < 1 << 20 {
        got.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    // Overwrite, then give GC many passes past its grace period.
    put(&client, "race", 300_000, 9).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        old_shards.iter().all(|p| p.exists()),
        "the old version's shards stay while a read holds them"
    );
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(got == old, "the GET read the old version to its end");
    drop(body);
    // Once the read is over its shards go.
    let collected = common::eventually(10, || async {
        old_shards.iter().all(|p| !p.exists()) && shard_files(&dir).len() == 6
    })
    .await;
    assert!(collected, "old shards collected after the read");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_racing_overwrites_of_its_source_copies_one_whole_version() {
    let (server, client, _) = start().await;
    let versions: Vec<Vec<u8>> = (0..4).map(|i| pattern(12 << 20, 20 + i)).collect();
    let upload = |data: Vec<u8>| {
        let client = client.clone();
        async move {
            client
                .put_object()
                .bucket("collect")
                .key("src")
                .body(ByteStream::from(data))
                .send()
                .await
                .unwrap();
        }
    };
    upload(versions[0].clone()).await;
    let copy = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .copy_object()
                .bucket("collect")
                .key("dst")
                .copy_source("collect/src")
                .send()
                .await
        })
    };
    for data in &versions[1..] {
        upload(data.clone()).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    copy.await.unwrap().expect("the copy succeeds");
    let copied = common::get_bytes(&client, "collect", "dst").await;
    assert!(
        versions.contains(&copied),
        "the copy holds one whole version of its source"
    );
    server.shutdown().await.unwrap();
}

/// Waits until the disks hold exactly `count` shard files.
async fn wait_for_count(dir: &Path, count: usize) {
    let done = common::eventually(15, || async { shard_files(dir).len() == count }).await;
    assert!(done, "{} shard files, want {count}", shard_files(dir).len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_losers_of_a_conditional_write_race_are_collected() {
    let (server, client, dir) = start().await;
    let racers: Vec<_> = (0..4u8)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .put_object()
                    .bucket("collect")
                    .key("once")
                    .if_none_match("*")
                    .body(ByteStream::from(pattern(400_000, i)))
                    .send()
                    .await
                    .map(|_| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for r in racers {
        if let Ok(i) = r.await.unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one conditional write wins");
    wait_for_count(&dir, 6).await;
    let got = common::get_bytes(&client, "collect", "once").await;
    assert!(got == pattern(400_000, winners[0]));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwrites_racing_overwrites_and_deletes_leave_one_version() {
    let (server, client, dir) = start().await;
    let tasks: Vec<_> = (0..3u8)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                for round in 0..8u8 {
                    if t == 2 && round % 2 == 1 {
                        client
                            .delete_object()
                            .bucket("collect")
                            .key("hot")
                            .send()
                            .await
                            .unwrap();
                    } else {
                        client
                            .put_object()
                            .bucket("collect")
                            .key("hot")
                            .body(ByteStream::from(pattern(300_000, t * 16 + round)))
                            .send()
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let head = client
        .head_object()
        .bucket("collect")
        .key("hot")
        .send()
        .await;
    let expected = if head.is_ok() { 6 } else { 0 };
    wait_for_count(&dir, expected).await;
    if head.is_ok() {
        let got = common::get_bytes(&client, "collect", "hot").await;
        let whole = (0..3u8).any(|t| (0..8u8).any(|r| got == pattern(300_000, t * 16 + r)));
        assert!(whole, "the key holds one whole version");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_uploads_and_deleted_versions_are_collected() {
    let (server, client, dir) = start().await;
    common::enable_versioning(&client, "collect").await;

    // An upload with two parts, then aborted.
    let upload = client
        .create_multipart_upload()
        .bucket("collect")
        .key("mpu")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    for n in 1..=2 {
        client
            .upload_part()
            .bucket("collect")
            .key("mpu")
            .upload_id(upload_id)
            .part_number(n)
            .body(ByteStream::from(pattern(5 << 20, n as u8)))
            .send()
            .await
            .unwrap();
    }
    wait_for_count(&dir, 12).await;
    client
        .abort_multipart_upload()
        .bucket("collect")
        .key("mpu")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    wait_for_count(&dir, 0).await;

    // Two versions and a delete marker: the marker removes nothing, deleting
    // a version by id removes its shards and only those.
    let mut ids = Vec::new();
    for seed in [1u8, 2] {
        let out = client
            .put_object()
            .bucket("collect")
            .key("v")
            .body(ByteStream::from(pattern(300_000, seed)))
            .send()
            .await
            .unwrap();
        ids.push(out.version_id().unwrap().to_owned());
    }
    client
        .delete_object()
        .bucket("collect")
        .key("v")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        shard_files(&dir).len(),
        12,
        "a delete marker removes nothing"
    );
    client
        .delete_object()
        .bucket("collect")
        .key("v")
        .version_id(&ids[0])
        .send()
        .await
        .unwrap();
    wait_for_count(&dir, 6).await;
    let kept = client
        .get_object()
        .bucket("collect")
        .key("v")
        .version_id(&ids[1])
        .send()
        .await
        .unwrap();
    let bytes = kept.body.collect().await.unwrap().into_bytes();
    assert!(bytes[..] == pattern(300_000, 2)[..]);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_under_concurrent_writes_removes_nothing_referenced() {
    let (server, client, dir) = start_with(|c| c.orphan_grace = Duration::from_secs(1)).await;
    let admin = server.server().admin_client();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3u8)
        .map(|w| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in 0u8.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{w}/{i}");
                    // Overwrites too: every third write replaces an earlier key.
                    let key = if i % 3 == 2 { format!("w{w}/0") } else { key };
                    let data = pattern(350_000, w.wrapping_mul(50).wrapping_add(i));
                    client
                        .put_object()
                        .bucket("collect")
                        .key(&key)
                        .body(ByteStream::from(data.clone()))
                        .send()
                        .await
                        .unwrap();
                    written.retain(|(k, _)| *k != key);
                    written.push((key, data));
                }
                written
            })
        })
        .collect();
    for _ in 0..15 {
        admin.start_job("sweep").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut objects = Vec::new();
    for w in writers {
        objects.extend(w.await.unwrap());
    }
    for (key, data) in &objects {
        assert!(
            common::get_bytes(&client, "collect", key).await == *data,
            "{key}"
        );
    }
    // The last overwrites' old data goes through GC; nothing else is left.
    wait_for_count(&dir, 6 * objects.len()).await;
    server.shutdown().await.unwrap();
}
