//! Garbage collection: shards of deleted and overwritten objects leave the disks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::shard_files;
use tessera_server::testing::TestServer;

/// Waits (up to 10 s) until the shard files are exactly `expected`.
async fn wait_for_shards(data_dir: &Path, expected: &[PathBuf]) {
    for _ in 0..100 {
        if shard_files(data_dir) == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shard_files(data_dir), expected, "gc did not converge");
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
    let server = TestServer::start().await.unwrap();
    let client = common::s3_client(&server);
    let dir = server.data_dir().to_path_buf();
    client
        .create_bucket()
        .bucket("collect")
        .send()
        .await
        .unwrap();

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
    let server = TestServer::start().await.unwrap();
    let client = common::s3_client(&server);
    let dir = server.data_dir().to_path_buf();
    client
        .create_bucket()
        .bucket("collect")
        .send()
        .await
        .unwrap();
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
    let server = TestServer::start().await.unwrap();
    let client = common::s3_client(&server);
    client
        .create_bucket()
        .bucket("collect")
        .send()
        .await
        .unwrap();
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
        versions.iter().any(|v| *v == copied),
        "the copy holds one whole version of its source"
    );
    server.shutdown().await.unwrap();
}
