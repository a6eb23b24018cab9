//! A server restarted on the same data directory keeps buckets, objects
//! (inline and erasure-coded) and keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::primitives::ByteStream;
use tessera_server::testing::TestServer;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

async fn read_all(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_buckets_objects_and_keys() {
    let mut server = TestServer::start().await.unwrap();
    let client = common::s3_client(&server);
    client.create_bucket().bucket("keep").send().await.unwrap();
    let small = b"small object, kept inline".to_vec();
    let large = pattern(5 * 1024 * 1024 + 12_345, 7);
    client
        .put_object()
        .bucket("keep")
        .key("small.txt")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    client
        .put_object()
        .bucket("keep")
        .key("dir/large.bin")
        .body(ByteStream::from(large.clone()))
        .send()
        .await
        .unwrap();
    let created = server
        .server()
        .admin_client()
        .create_key(&tessera_server::admin::KeyCreate {
            name: "survivor".into(),
            allow_create_bucket: true,
            admin: false,
        })
        .await
        .unwrap();

    server.restart().await.unwrap();

    let client = common::s3_client(&server);
    assert_eq!(read_all(&client, "keep", "small.txt").await, small);
    assert_eq!(read_all(&client, "keep", "dir/large.bin").await, large);
    let listed = client
        .list_objects_v2()
        .bucket("keep")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["dir/large.bin", "small.txt"]);
    let buckets = client.list_buckets().send().await.unwrap();
    assert_eq!(buckets.buckets().len(), 1);

    let survivor = common::client_for(&server.s3_url(), &created.access_key, &created.secret_key);
    survivor
        .create_bucket()
        .bucket("after-restart")
        .send()
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}
