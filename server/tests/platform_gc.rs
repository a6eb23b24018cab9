//! Garbage collection: shards of deleted and overwritten objects leave the disks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::{shard_files, wait_for_shards};
use tessera_server::testing::TestServer;

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
