//! Multipart uploads: the happy path at 200 MiB, part rules, copy parts,
//! listings of uploads and parts, abort.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;
use s3s::crypto::{Checksum as _, Md5, Sha256};

use super::{code, data, get, hex_string, put, with_bucket};

const MIB: usize = 1024 * 1024;

fn completed(parts: &[(i32, String)]) -> CompletedMultipartUpload {
    let mut b = CompletedMultipartUpload::builder();
    for (n, e) in parts {
        b = b.parts(CompletedPart::builder().part_number(*n).e_tag(e).build());
    }
    b.build()
}

async fn upload_part(c: &Client, key: &str, id: &str, n: i32, body: Vec<u8>) -> String {
    let out = c
        .upload_part()
        .bucket("mpu")
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
    out.e_tag().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_200_mib() {
    let (_s, c) = with_bucket("mpu").await;
    const PARTS: i32 = 25;
    const PART: usize = 8 * MIB;
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("big")
        .content_type("application/x-big")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let etags: Vec<(i32, String)> = futures::stream::iter(1..=PARTS)
        .map(|n| {
            let (c, id) = (c.clone(), id.clone());
            async move {
                (
                    n,
                    upload_part(&c, "big", &id, n, data(PART, n as u64)).await,
                )
            }
        })
        .buffered(3)
        .collect()
        .await;
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big")
        .upload_id(&id)
        .multipart_upload(completed(&etags))
        .send()
        .await
        .unwrap();

    // Expected ETag (md5 of the part md5s, -N) and content hash, without holding 200 MiB.
    let mut md5s = Vec::new();
    let mut whole = Sha256::new();
    for n in 1..=PARTS {
        let part = data(PART, n as u64);
        md5s.extend_from_slice(&Md5::checksum(&part));
        whole.update(&part);
    }
    let expected_etag = format!("\"{}-{PARTS}\"", hex_string(&Md5::checksum(&md5s)));
    assert_eq!(done.e_tag(), Some(expected_etag.as_str()));
    let expected = hex_string(whole.finalize().as_ref());

    let got = c
        .get_object()
        .bucket("mpu")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some((PART * PARTS as usize) as i64));
    assert_eq!(got.e_tag(), Some(expected_etag.as_str()));
    assert_eq!(got.content_type(), Some("application/x-big"));
    let mut hasher = Sha256::new();
    let mut body = got.body;
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk.unwrap());
    }
    assert_eq!(hex_string(hasher.finalize().as_ref()), expected);

    // A range across a part boundary, and one part by number.
    let start = PART - 10;
    let r = c
        .get_object()
        .bucket("mpu")
        .key("big")
        .range(format!("bytes={start}-{}", start + 19))
        .send()
        .await
        .unwrap();
    let bytes = r.body.collect().await.unwrap().into_bytes();
    let mut want = data(PART, 1)[start..].to_vec();
    want.extend_from_slice(&data(PART, 2)[..10]);
    assert_eq!(bytes.to_vec(), want);
    let p3 = c
        .get_object()
        .bucket("mpu")
        .key("big")
        .part_number(3)
        .send()
        .await
        .unwrap();
    assert_eq!(p3.parts_count(), Some(PARTS));
    assert_eq!(p3.content_length(), Some(PART as i64));
    assert_eq!(
        Md5::checksum(&p3.body.collect().await.unwrap().into_bytes()),
        Md5::checksum(&data(PART, 3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_rules() {
    let (_s, c) = with_bucket("mpu").await;
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let e1 = upload_part(&c, "k", &id, 1, data(5 * MIB, 1)).await;
    let small = upload_part(&c, "k", &id, 2, data(1000, 2)).await;
    let e3 = upload_part(&c, "k", &id, 3, data(2000, 3)).await;

    let r = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .multipart_upload(completed(&[
            (1, e1.clone()),
            (2, "\"00000000000000000000000000000000\"".into()),
        ]))
        .send()
        .await;
    assert_eq!(code(r), "InvalidPart");
    let r = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .multipart_upload(completed(&[(2, small.clone()), (1, e1.clone())]))
        .send()
        .await;
    assert_eq!(code(r), "InvalidPartOrder");
    let r = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .multipart_upload(completed(&[
            (1, e1.clone()),
            (2, small.clone()),
            (3, e3.clone()),
        ]))
        .send()
        .await;
    assert_eq!(code(r), "EntityTooSmall");
    let r = c
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(10_001)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(r), "InvalidArgument");

    // Re-uploading a part replaces it.
    let e2 = upload_part(&c, "k", &id, 2, data(700, 22)).await;
    let parts = c
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, i64)> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
        .collect();
    assert_eq!(listed, [(1, 5 * MIB as i64), (2, 700), (3, 2000)]);
    let page = c
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.next_part_number_marker(), Some("2"));

    // Completing with a subset: part 3 is dropped.
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, e1), (2, e2)]))
        .send()
        .await
        .unwrap();
    let mut want = data(5 * MIB, 1);
    want.extend_from_slice(&data(700, 22));
    assert_eq!(get(&c, "mpu", "k").await, want);
    assert_eq!(
        code(
            c.list_parts()
                .bucket("mpu")
                .key("k")
                .upload_id(&id)
                .send()
                .await
        ),
        "NoSuchUpload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_and_list_uploads() {
    let (_s, c) = with_bucket("mpu").await;
    let a = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("dir/a")
        .send()
        .await
        .unwrap();
    let b = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("dir/b")
        .send()
        .await
        .unwrap();
    c.create_multipart_upload()
        .bucket("mpu")
        .key("other")
        .send()
        .await
        .unwrap();
    let list = c
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix("dir/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = list.uploads().iter().map(|u| u.key().unwrap()).collect();
    assert_eq!(keys, ["dir/a", "dir/b"]);
    let delim = c
        .list_multipart_uploads()
        .bucket("mpu")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(delim.common_prefixes()[0].prefix(), Some("dir/"));
    assert_eq!(delim.uploads().len(), 1);

    let id = a.upload_id().unwrap();
    upload_part(&c, "dir/a", id, 1, data(100, 1)).await;
    c.abort_multipart_upload()
        .bucket("mpu")
        .key("dir/a")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(
            c.upload_part()
                .bucket("mpu")
                .key("dir/a")
                .upload_id(id)
                .part_number(2)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await
        ),
        "NoSuchUpload"
    );
    assert_eq!(
        code(
            c.abort_multipart_upload()
                .bucket("mpu")
                .key("dir/a")
                .upload_id(id)
                .send()
                .await
        ),
        "NoSuchUpload"
    );
    let list = c
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix("dir/")
        .send()
        .await
        .unwrap();
    assert_eq!(list.uploads().len(), 1);
    assert_eq!(list.uploads()[0].upload_id(), b.upload_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_part_copy_with_ranges() {
    let (_s, c) = with_bucket("mpu").await;
    let src = data(6 * MIB + 500, 9);
    put(&c, "mpu", "src", &src).await;
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("dst")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let p1 = c
        .upload_part_copy()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .part_number(1)
        .copy_source("mpu/src")
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await
        .unwrap();
    let p2 = c
        .upload_part_copy()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .part_number(2)
        .copy_source("mpu/src")
        .copy_source_range(format!("bytes={}-{}", 5 * MIB, src.len() - 1))
        .send()
        .await
        .unwrap();
    let bad = c
        .upload_part_copy()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .part_number(3)
        .copy_source("mpu/src")
        .copy_source_range(format!("bytes=0-{}", src.len()))
        .send()
        .await;
    assert_eq!(code(bad), "InvalidRange");
    let e = |p: &aws_sdk_s3::operation::upload_part_copy::UploadPartCopyOutput| {
        p.copy_part_result().unwrap().e_tag().unwrap().to_owned()
    };
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("dst")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, e(&p1)), (2, e(&p2))]))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, "mpu", "dst").await, src);
}
