//! An S3 bucket as a node, with real processes: a second `tessera serve`
//! plays the off-site bucket. The bucket store keeps the shard store
//! contract over it (ranges, misses, multipart uploads of long shards,
//! listing order, deletes, its identity object); and a gateway with five
//! local disks and the bucket (4+2) puts one shard of every segment there,
//! reads through the bucket's death (SIGKILL), and after its restart GC
//! removes a deleted object's shard from it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::process::{Process, kill, spawn};
use common::{TEST_ACCESS_KEY, TEST_SECRET_KEY};
use futures::{StreamExt, TryStreamExt};
use tessera_storage::store::{S3Error, StoreIdentity};
use tessera_storage::{
    ByteStream, ObjectId, S3Bucket, S3BucketConfig, ShardId, ShardStore, StorageError,
};

/// The bucket the second Tessera serves as the off-site store.
const BUCKET: &str = "offsite";

/// Starts `tessera serve` on `port` with data in `data` and the test's
/// root key: the "remote bucket".
async fn start_remote(data: &Path, port: u16) -> Process {
    spawn(
        &[
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            "127.0.0.1:0",
            "--access-key",
            TEST_ACCESS_KEY,
            "--secret-key",
            TEST_SECRET_KEY,
        ],
        "Tessera S3 API on ",
    )
    .await
}

/// The remote's endpoint on `port`, with an SDK client of it and the bucket created.
async fn remote_bucket(port: u16) -> (String, aws_sdk_s3::Client) {
    let url = format!("http://127.0.0.1:{port}");
    let client = common::client_for(&url, TEST_ACCESS_KEY, TEST_SECRET_KEY);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    (url, client)
}

fn store_config(endpoint: &str, prefix: &str) -> S3BucketConfig {
    S3BucketConfig {
        endpoint: endpoint.to_owned(),
        bucket: BUCKET.to_owned(),
        prefix: prefix.to_owned(),
        region: "us-east-1".to_owned(),
        access_key: TEST_ACCESS_KEY.to_owned(),
        secret_key: TEST_SECRET_KEY.to_owned(),
        ca_file: None,
        timeout: Duration::from_secs(10),
    }
}

/// Every key under `prefix` in the remote bucket.
async fn keys(client: &aws_sdk_s3::Client, prefix: &str) -> BTreeSet<String> {
    client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .iter()
        .flat_map(|page| page.contents())
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// `len` bytes of a pattern seeded by `seed`.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (j * 31 + seed * 7 + j / 251) as u8)
        .collect()
}

/// `data` as a store's input stream, in chunks of `chunk` bytes.
fn chunked(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, StorageError>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

async fn read(store: &S3Bucket, id: ShardId, range: std::ops::Range<u64>) -> Vec<u8> {
    let stream = store.get(id, range).await.unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    chunks.concat()
}

fn shard(object: ObjectId, part: u32, index: u16) -> ShardId {
    ShardId {
        object,
        part,
        index,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_keeps_the_shard_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_ports(1);
    let remote = start_remote(&dir.path().join("remote"), port).await;
    let (url, client) = remote_bucket(port).await;

    // The id is minted once into the bucket and read back by every later
    // open; another prefix is another store.
    let store = S3Bucket::open(&store_config(&url, "cluster-a/"))
        .await
        .unwrap();
    assert!(StoreIdentity::is_minted_id(store.id()), "{}", store.id());
    let again = S3Bucket::open(&store_config(&url, "cluster-a"))
        .await
        .unwrap();
    assert_eq!(again.id(), store.id());
    let other = S3Bucket::open(&store_config(&url, "cluster-b"))
        .await
        .unwrap();
    assert_ne!(other.id(), store.id());
    assert_eq!(
        keys(&client, "cluster-a/").await,
        BTreeSet::from(["cluster-a/store.id".to_owned()])
    );
    let text = common::get_bytes(&client, BUCKET, "cluster-a/store.id").await;
    let identity = StoreIdentity::parse(
        std::str::from_utf8(&text).unwrap(),
        Path::new("cluster-a/store.id"),
    )
    .unwrap();
    assert_eq!(identity.id, store.id());
    assert!(store.health().await.unwrap().ok);

    // A small shard: whole, ranged, past its end, and missing ones.
    let object = ObjectId::random();
    let small = pattern(100_000, 1);
    let id = shard(object, 1, 0);
    assert_eq!(
        store.put(id, chunked(&small, 30_000)).await.unwrap(),
        100_000
    );
    assert_eq!(read(&store, id, 0..100_000).await, small);
    assert_eq!(read(&store, id, 10..20).await, &small[10..20]);
    assert_eq!(read(&store, id, 99_995..100_100).await, &small[99_995..]);
    assert!(read(&store, id, 100_000..100_010).await.is_empty());
    assert!(read(&store, id, 5..5).await.is_empty());
    let stat = store.stat(id).await.unwrap().unwrap();
    assert_eq!(stat.size, 100_000);
    let age = SystemTime::now()
        .duration_since(stat.modified)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "{age:?}");
    let missing = shard(object, 1, 1);
    assert!(matches!(
        store.get(missing, 0..10).await,
        Err(StorageError::NotFound(m)) if m == missing
    ));
    assert!(matches!(
        store.get(missing, 0..0).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        store.open_reader(missing, 0..10).await,
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(store.stat(missing).await.unwrap(), None);
    let mut reader = store.open_reader(id, 50..100_000).await.unwrap();
    let buf = reader.read(Vec::new(), 1000).await.unwrap();
    assert_eq!(buf, &small[50..1050]);

    // A shard longer than a part goes up as a multipart upload and comes
    // back byte for byte.
    let long = pattern(2 * tessera_storage::store::S3_PART_SIZE + 12_345, 2);
    let long_id = shard(object, 1, 2);
    let stored = store.put(long_id, chunked(&long, 1 << 20)).await.unwrap();
    assert_eq!(stored, long.len() as u64);
    assert_eq!(read(&store, long_id, 0..long.len() as u64).await, long);
    let tail = long.len() as u64 - 100;
    assert_eq!(
        read(&store, long_id, tail..tail + 1000).await,
        &long[long.len() - 100..]
    );

    // A stream that fails midway leaves no shard and no upload behind.
    let broken_id = shard(object, 1, 3);
    let broken = chunked(&long[..9 << 20], 1 << 20)
        .chain(futures::stream::iter([Err(StorageError::Format(
            "cut".into(),
        ))]))
        .boxed();
    assert!(matches!(
        store.put(broken_id, broken).await,
        Err(StorageError::Format(_))
    ));
    assert_eq!(store.stat(broken_id).await.unwrap(), None);
    let uploads_gone = common::eventually(10, || async {
        let out = client
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        out.uploads().is_empty()
    })
    .await;
    assert!(uploads_gone, "the failed upload was aborted");

    // Listing is in id order (part 10 after part 2, which the ids' text
    // form would not give) and pages with `after`.
    let mut ids = BTreeSet::from([id, long_id]);
    for (part, index) in [(2, 0), (10, 0), (2, 11), (65_536, 3)] {
        let extra = shard(object, part, index);
        store.put(extra, chunked(b"x", 1)).await.unwrap();
        ids.insert(extra);
    }
    let lower = shard(ObjectId([0; 16]), 7, 7);
    store.put(lower, chunked(b"", 1)).await.unwrap();
    ids.insert(lower);
    let all: Vec<ShardId> = ids.iter().copied().collect();
    assert_eq!(store.list(None, 100).await.unwrap(), all);
    assert_eq!(store.list(None, 3).await.unwrap(), &all[..3]);
    assert_eq!(store.list(Some(all[2]), 3).await.unwrap(), &all[3..6]);
    assert_eq!(store.list(Some(all[6]), 3).await.unwrap(), &all[7..]);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(after, 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(*last);
        paged.extend(page);
    }
    assert_eq!(paged, all);
    assert!(other.list(None, 100).await.unwrap().is_empty());

    // Deletes say whether the shard was there.
    assert!(store.delete(id).await.unwrap());
    assert!(!store.delete(id).await.unwrap());
    assert_eq!(store.stat(id).await.unwrap(), None);

    // Wrong credentials are refused at once, not retried as a passing fault.
    let mut wrong = store_config(&url, "cluster-a");
    wrong.secret_key.push('x');
    let err = S3Bucket::open(&wrong).await.unwrap_err();
    assert!(
        matches!(err, S3Error::Status { .. }) && !err.is_transient(),
        "{err}"
    );

    // A dead bucket is an unavailable store, not a missing shard.
    kill(remote).await;
    assert!(store.health().await.is_err());
    assert!(matches!(
        store.get(long_id, 0..10).await,
        Err(StorageError::Unavailable { .. })
    ));
    assert!(store.stat(long_id).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_keeps_a_shard_of_every_segment_in_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_ports(1);
    let remote_data = dir.path().join("remote");
    let remote = start_remote(&remote_data, port).await;
    let (url, bucket) = remote_bucket(port).await;

    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
             access_key = \"{TEST_ACCESS_KEY}\"\nsecret_key = \"{TEST_SECRET_KEY}\"\n\
             disks = 5\ngc_grace_secs = 1\n\n\
             [[bucket_nodes]]\nid = 1\nendpoint = \"{url}\"\nbucket = \"{BUCKET}\"\n\
             prefix = \"gw-1\"\naccess_key = \"{TEST_ACCESS_KEY}\"\nsecret_key = \"{TEST_SECRET_KEY}\"\n\
             timeout_secs = 5\nzone = \"offsite\"\n",
            dir.path().join("gateway"),
        ),
    )
    .unwrap();
    let gateway = spawn(
        &["serve", "--config", config.to_str().unwrap()],
        "Tessera S3 API on ",
    )
    .await;
    let gateway_url = gateway.announced["Tessera S3 API on ".len()..]
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let s3 = common::client_for(&gateway_url, TEST_ACCESS_KEY, TEST_SECRET_KEY);
    s3.create_bucket().bucket("photos").send().await.unwrap();

    // Objects inline in the metadata (0 and 100 bytes), of one stripe, of
    // several, and one whose bucket shard is a multipart upload; each
    // object's bucket keys are those that appeared with it.
    let shard_keys = || keys(&bucket, "gw-1/");
    let mut objects = Vec::new();
    for (i, size) in [0usize, 100, 5_000, 70_000, (3 << 20) + 17, (40 << 20) + 3]
        .into_iter()
        .enumerate()
    {
        let before = shard_keys().await;
        let body = pattern(size, i);
        let key = format!("obj-{i}");
        common::put_bytes(&s3, "photos", &key, body.clone()).await;
        let added: BTreeSet<String> = shard_keys().await.difference(&before).cloned().collect();
        let segments = if size <= 4096 { 0 } else { 1 };
        assert_eq!(added.len(), segments, "{key}: {added:?}");
        objects.push((key, body, added));
    }
    // A multipart object: one segment per part, each with a shard in the bucket.
    let before = shard_keys().await;
    let parts = [pattern(5 << 20, 10), pattern((1 << 20) + 7, 11)];
    let upload = s3
        .create_multipart_upload()
        .bucket("photos")
        .key("multi")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let mut completed = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        let number = n as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("photos")
            .key("multi")
            .upload_id(upload_id)
            .part_number(number)
            .body(part.clone().into())
            .send()
            .await
            .unwrap();
        completed.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket("photos")
        .key("multi")
        .upload_id(upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let added: BTreeSet<String> = shard_keys().await.difference(&before).cloned().collect();
    assert_eq!(added.len(), 2, "{added:?}");
    objects.push(("multi".to_owned(), parts.concat(), added));

    let check_all = |when: &'static str| {
        let (s3, objects) = (&s3, &objects);
        async move {
            for (key, body, _) in objects {
                let got = common::get_bytes(s3, "photos", key).await;
                assert!(&got == body, "{key} {when}: {} bytes", got.len());
            }
        }
    };
    check_all("written").await;

    // What the bucket holds are sealed shard files, and its store id.
    let all_keys = shard_keys().await;
    assert!(all_keys.contains("gw-1/store.id"), "{all_keys:?}");
    let some_shard = objects[2].2.iter().next().unwrap();
    let bytes = common::get_bytes(&bucket, BUCKET, some_shard).await;
    assert_eq!(&bytes[..8], b"TESSHARD");

    // The bucket dies: parity covers its shard of every segment.
    kill(remote).await;
    check_all("with the bucket killed").await;

    // Back on the same address: reads go on, and a deleted object's
    // shard leaves the bucket once GC has run.
    let remote = start_remote(&remote_data, port).await;
    check_all("after the bucket's restart").await;
    let (deleted, _, deleted_keys) = &objects[5];
    s3.delete_object()
        .bucket("photos")
        .key(deleted)
        .send()
        .await
        .unwrap();
    let collected = common::eventually(60, || async {
        shard_keys().await.is_disjoint(deleted_keys)
    })
    .await;
    assert!(collected, "{deleted_keys:?} still in the bucket");
    let kept: BTreeSet<String> = objects
        .iter()
        .filter(|(key, _, _)| key != deleted)
        .flat_map(|(_, _, k)| k.iter().cloned())
        .chain(["gw-1/store.id".to_owned()])
        .collect();
    assert_eq!(shard_keys().await, kept);
    drop((gateway, remote));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_over_https_trusts_its_configured_ca_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, files) = common::self_signed_tls(dir.path());
    let cert_file = files.cert.clone();
    let server = tessera_server::testing::TestServer::start_with(|c| c.tls = Some(files))
        .await
        .unwrap();
    let url = server.s3_url();
    let creds = server.credentials();
    let conf = common::config_builder(&url, &creds.access_key, &creds.secret_key)
        .http_client(common::https_client_trusting(&cert_pem))
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    client.create_bucket().bucket(BUCKET).send().await.unwrap();

    let mut config = store_config(&url, "tls");
    config.access_key = creds.access_key.clone();
    config.secret_key = creds.secret_key.clone();
    // The system's trust store does not know this certificate.
    let err = S3Bucket::open(&config).await.unwrap_err();
    assert!(matches!(err, S3Error::Transport { .. }), "{err}");
    config.ca_file = Some(cert_file);
    let store = S3Bucket::open(&config).await.unwrap();
    let id = shard(ObjectId::random(), 1, 4);
    let data = pattern(300_000, 3);
    store.put(id, chunked(&data, 65_536)).await.unwrap();
    assert_eq!(read(&store, id, 0..300_000).await, data);
    assert_eq!(keys(&client, "tls/").await.len(), 2);
}
