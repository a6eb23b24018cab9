//! Multipart uploads: the happy path at 200 MiB, part rules, copy parts,
//! listings of uploads and parts, abort, object checksums (composite and
//! full-object) derived from part checksums.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::complete_multipart_upload::{
    CompleteMultipartUploadError, CompleteMultipartUploadOutput,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::StreamExt;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};

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

/// Starts an upload of `key` in bucket `mpu`: its id.
async fn create_upload(c: &Client, key: &str) -> String {
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key(key)
        .send()
        .await
        .unwrap();
    up.upload_id().unwrap().to_owned()
}

/// Completes upload `id` of `mpu/key` with `parts`.
async fn complete(
    c: &Client,
    key: &str,
    id: &str,
    parts: &[(i32, String)],
) -> Result<CompleteMultipartUploadOutput, SdkError<CompleteMultipartUploadError, HttpResponse>> {
    c.complete_multipart_upload()
        .bucket("mpu")
        .key(key)
        .upload_id(id)
        .multipart_upload(completed(parts))
        .send()
        .await
}

/// Starts an upload of `mpu/key`; returns its id.
async fn create(c: &Client, key: &str) -> String {
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key(key)
        .send()
        .await
        .unwrap();
    up.upload_id().unwrap().to_owned()
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
async fn refused_completions_never_reach_the_raft_log() {
    let (s, c) = with_bucket("mpu").await;
    let id = create_upload(&c, "k").await;
    let e1 = upload_part(&c, "k", &id, 1, data(5 * MIB, 1)).await;
    let e2 = upload_part(&c, "k", &id, 2, data(1000, 2)).await;
    let e3 = upload_part(&c, "k", &id, 3, data(1000, 3)).await;
    // The raft log's last index, from the admin API.
    let admin = s.server().admin_client();
    let last_log_index = || async { admin.status().await.unwrap().raft.last_log_index };
    let before = last_log_index().await;

    let many = |n: i32| (1..=n).map(|i| (i, e1.clone())).collect::<Vec<_>>();
    let refused = [
        (vec![(2, e2.clone()), (1, e1.clone())], "InvalidPartOrder"),
        (vec![(1, e1.clone()), (1, e1.clone())], "InvalidPartOrder"),
        (vec![(2, e2.clone()), (3, e3.clone())], "EntityTooSmall"),
        (Vec::new(), "MalformedXML"),
        (many(10_001), "MalformedXML"),
        // About 22 MB of XML.
        (many(250_000), "MaxMessageLengthExceeded"),
    ];
    for (parts, want) in refused {
        let r = complete(&c, "k", &id, &parts).await;
        assert_eq!(code(r), want, "{} parts", parts.len());
    }
    assert_eq!(
        last_log_index().await,
        before,
        "a refused completion was logged"
    );

    // The upload is intact, and a completion that is taken is logged.
    complete(&c, "k", &id, &[(1, e1), (3, e3)]).await.unwrap();
    assert!(last_log_index().await > before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_rules() {
    let (_s, c) = with_bucket("mpu").await;
    let id = create_upload(&c, "k").await;
    let e1 = upload_part(&c, "k", &id, 1, data(5 * MIB, 1)).await;
    let small = upload_part(&c, "k", &id, 2, data(1000, 2)).await;
    let e3 = upload_part(&c, "k", &id, 3, data(2000, 3)).await;

    let bad_etag = "\"00000000000000000000000000000000\"".to_owned();
    let r = complete(&c, "k", &id, &[(1, e1.clone()), (2, bad_etag)]).await;
    assert_eq!(code(r), "InvalidPart");
    let r = complete(&c, "k", &id, &[(2, small.clone()), (1, e1.clone())]).await;
    assert_eq!(code(r), "InvalidPartOrder");
    let parts = [(1, e1.clone()), (2, small.clone()), (3, e3.clone())];
    assert_eq!(code(complete(&c, "k", &id, &parts).await), "EntityTooSmall");
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
    complete(&c, "k", &id, &[(1, e1), (2, e2)]).await.unwrap();
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

/// Uploads `parts` (numbered from 1) to a new upload of `mpu/key` created
/// with `algorithm` (and `kind`, if given). Returns the upload id and the
/// parts as `CompleteMultipartUpload` lists them, with the part checksums
/// UploadPart returned.
async fn checksummed_upload(
    c: &Client,
    key: &str,
    algorithm: ChecksumAlgorithm,
    kind: Option<ChecksumType>,
    parts: &[Vec<u8>],
) -> (String, Vec<CompletedPart>) {
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key(key)
        .checksum_algorithm(algorithm.clone())
        .set_checksum_type(kind.clone())
        .send()
        .await
        .unwrap();
    let default_kind = if algorithm == ChecksumAlgorithm::Crc64Nvme {
        ChecksumType::FullObject
    } else {
        ChecksumType::Composite
    };
    let expected_kind = kind.unwrap_or(default_kind);
    assert_eq!(up.checksum_type(), Some(&expected_kind));
    assert_eq!(up.checksum_algorithm(), Some(&algorithm));
    let id = up.upload_id().unwrap().to_owned();
    let mut completed = Vec::new();
    for (n, body) in (1..).zip(parts) {
        let out = c
            .upload_part()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_owned))
                .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_owned))
                .set_checksum_sha1(out.checksum_sha1().map(str::to_owned))
                .set_checksum_sha256(out.checksum_sha256().map(str::to_owned))
                .build(),
        );
    }
    let listed = c
        .list_parts()
        .bucket("mpu")
        .key(key)
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.checksum_algorithm(), Some(&algorithm), "{key}");
    assert_eq!(listed.checksum_type(), Some(&expected_kind), "{key}");
    let uploads = c
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix(key)
        .send()
        .await
        .unwrap();
    let mine = uploads
        .uploads()
        .iter()
        .find(|u| u.upload_id() == Some(id.as_str()))
        .expect("the upload is listed");
    assert_eq!(mine.checksum_algorithm(), Some(&algorithm), "{key}");
    assert_eq!(mine.checksum_type(), Some(&expected_kind), "{key}");
    (id, completed)
}

/// The raw digest of `data` under `algorithm`, computed by the test itself.
fn digest(algorithm: &ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
    match algorithm {
        ChecksumAlgorithm::Crc32 => Crc32::checksum(data).to_vec(),
        ChecksumAlgorithm::Crc32C => Crc32c::checksum(data).to_vec(),
        ChecksumAlgorithm::Crc64Nvme => Crc64Nvme::checksum(data).to_vec(),
        ChecksumAlgorithm::Sha1 => Sha1::checksum(data).to_vec(),
        ChecksumAlgorithm::Sha256 => Sha256::checksum(data).to_vec(),
        other => panic!("no test digest for {other}"),
    }
}

/// S3's composite checksum: the digest of the concatenated part digests, `-N`.
fn composite(algorithm: &ChecksumAlgorithm, parts: &[Vec<u8>]) -> String {
    let raw: Vec<u8> = parts.iter().flat_map(|p| digest(algorithm, p)).collect();
    format!("{}-{}", B64.encode(digest(algorithm, &raw)), parts.len())
}

/// The value of `algorithm` among the five checksum fields of a response.
macro_rules! checksum_value {
    ($out:expr, $algorithm:expr) => {
        match $algorithm {
            ChecksumAlgorithm::Crc32 => $out.checksum_crc32(),
            ChecksumAlgorithm::Crc32C => $out.checksum_crc32_c(),
            ChecksumAlgorithm::Crc64Nvme => $out.checksum_crc64_nvme(),
            ChecksumAlgorithm::Sha1 => $out.checksum_sha1(),
            ChecksumAlgorithm::Sha256 => $out.checksum_sha256(),
            _ => None,
        }
    };
}

/// Completes `key`'s upload and checks the object checksum everywhere S3
/// returns it: the Complete answer, HeadObject and GetObject with
/// ChecksumMode=ENABLED (the SDK validates full-object values against the
/// body), and GetObjectAttributes.
async fn complete_and_check(
    c: &Client,
    key: &str,
    (id, parts): (String, Vec<CompletedPart>),
    algorithm: &ChecksumAlgorithm,
    kind: ChecksumType,
    expected: &str,
) {
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(checksum_value!(done, algorithm), Some(expected), "{key}");
    assert_eq!(done.checksum_type(), Some(&kind), "{key}");

    let head = c
        .head_object()
        .bucket("mpu")
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(checksum_value!(head, algorithm), Some(expected), "{key}");
    assert_eq!(head.checksum_type(), Some(&kind), "{key}");
    let plain = c.head_object().bucket("mpu").key(key).send().await.unwrap();
    assert_eq!(
        checksum_value!(plain, algorithm),
        None,
        "{key}: not asked for"
    );

    let got = c
        .get_object()
        .bucket("mpu")
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(checksum_value!(got, algorithm), Some(expected), "{key}");
    got.body.collect().await.unwrap();

    let attrs = c
        .get_object_attributes()
        .bucket("mpu")
        .key(key)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    let sums = attrs.checksum().unwrap();
    assert_eq!(checksum_value!(sums, algorithm), Some(expected), "{key}");
    assert_eq!(sums.checksum_type(), Some(&kind), "{key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_object_checksums() {
    let (_s, c) = with_bucket("mpu").await;
    let parts = vec![data(5 * MIB, 41), data(5 * MIB + 3, 42), data(777, 43)];
    for algorithm in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha1,
    ] {
        let key = format!("composite-{algorithm}");
        let upload = checksummed_upload(&c, &key, algorithm.clone(), None, &parts).await;
        let expected = composite(&algorithm, &parts);
        complete_and_check(
            &c,
            &key,
            upload,
            &algorithm,
            ChecksumType::Composite,
            &expected,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_object_checksums() {
    let (_s, c) = with_bucket("mpu").await;
    let parts = vec![data(5 * MIB + 1, 51), data(5 * MIB, 52), data(4321, 53)];
    let whole = parts.concat();
    for (algorithm, kind) in [
        (ChecksumAlgorithm::Crc64Nvme, None),
        (ChecksumAlgorithm::Crc32, Some(ChecksumType::FullObject)),
        (ChecksumAlgorithm::Crc32C, Some(ChecksumType::FullObject)),
    ] {
        let key = format!("full-{algorithm}");
        let (id, mut listed) = checksummed_upload(&c, &key, algorithm.clone(), kind, &parts).await;
        // Part checksums are optional when completing a full-object upload.
        listed[1] = CompletedPart::builder()
            .part_number(2)
            .e_tag(listed[1].e_tag().unwrap())
            .build();
        let expected = B64.encode(digest(&algorithm, &whole));
        complete_and_check(
            &c,
            &key,
            (id, listed),
            &algorithm,
            ChecksumType::FullObject,
            &expected,
        )
        .await;
    }

    // A client that knows the whole object's CRC declares it when completing.
    let key = "declared";
    let algorithm = ChecksumAlgorithm::Crc64Nvme;
    let (id, listed) = checksummed_upload(&c, key, algorithm.clone(), None, &parts).await;
    let expected = B64.encode(digest(&algorithm, &whole));
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key(key)
        .upload_id(&id)
        .checksum_crc64_nvme(&expected)
        .checksum_type(ChecksumType::FullObject)
        .mpu_object_size(whole.len() as i64)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(listed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(done.checksum_crc64_nvme(), Some(expected.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_mistakes_are_refused() {
    let (_s, c) = with_bucket("mpu").await;
    let parts = vec![data(5 * MIB, 61), data(1000, 62)];
    let r = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .checksum_type(ChecksumType::Composite)
        .send()
        .await;
    assert_eq!(code(r), "InvalidRequest");
    let r = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await;
    assert_eq!(code(r), "InvalidRequest");

    let algorithm = ChecksumAlgorithm::Crc32;
    let (id, listed) = checksummed_upload(&c, "k", algorithm.clone(), None, &parts).await;
    // A part of another algorithm than the upload's.
    let r = c
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(3)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(r), "InvalidRequest");

    let complete = |parts: Vec<CompletedPart>| {
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
    };
    let expected = composite(&algorithm, &parts);
    let wrong = composite(&algorithm, &[data(5, 1)]);
    let r = complete(listed.clone()).checksum_crc32(&wrong).send().await;
    assert_eq!(code(r), "BadDigest");
    let r = complete(listed.clone())
        .checksum_sha256(B64.encode(digest(&ChecksumAlgorithm::Sha256, b"")))
        .send()
        .await;
    assert_eq!(code(r), "InvalidRequest");
    let r = complete(listed.clone())
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await;
    assert_eq!(code(r), "InvalidRequest");
    let r = complete(listed.clone()).mpu_object_size(1).send().await;
    assert_eq!(code(r), "InvalidRequest");
    // Composite uploads need every part's checksum, and the right one.
    let bare = CompletedPart::builder()
        .part_number(2)
        .e_tag(listed[1].e_tag().unwrap())
        .build();
    let r = complete(vec![listed[0].clone(), bare]).send().await;
    assert_eq!(code(r), "InvalidRequest");
    let forged = CompletedPart::builder()
        .part_number(2)
        .e_tag(listed[1].e_tag().unwrap())
        .checksum_crc32(B64.encode(digest(&algorithm, b"forged")))
        .build();
    let r = complete(vec![listed[0].clone(), forged]).send().await;
    assert_eq!(code(r), "InvalidPart");

    // Nothing was consumed: the right declaration (without `-N`) completes.
    let (digest_only, _) = expected.split_once('-').unwrap();
    let done = complete(listed)
        .checksum_crc32(digest_only)
        .checksum_type(ChecksumType::Composite)
        .send()
        .await
        .unwrap();
    assert_eq!(done.checksum_crc32(), Some(expected.as_str()));

    // An upload without a checksum algorithm has no object checksum and
    // takes no declaration.
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("plain")
        .send()
        .await
        .unwrap();
    let plain_id = up.upload_id().unwrap().to_owned();
    let etag = upload_part(&c, "plain", &plain_id, 1, data(10, 7)).await;
    let plain_parts = completed(&[(1, etag)]);
    let r = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("plain")
        .upload_id(&plain_id)
        .checksum_crc32(B64.encode(digest(&algorithm, &data(10, 7))))
        .multipart_upload(plain_parts.clone())
        .send()
        .await;
    assert_eq!(code(r), "InvalidRequest");
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("plain")
        .upload_id(&plain_id)
        .multipart_upload(plain_parts)
        .send()
        .await
        .unwrap();
    assert_eq!(done.checksum_type(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_complete_answers_with_what_the_first_stored() {
    let (_s, c) = with_bucket("mpu").await;
    crate::common::enable_versioning(&c, "mpu").await;
    let id = &create(&c, "k").await;
    let e1 = upload_part(&c, "k", id, 1, data(5 * MIB, 1)).await;
    let e2 = upload_part(&c, "k", id, 2, data(300, 2)).await;
    let parts = [(1, e1.clone()), (2, e2)];
    let first = complete(&c, "k", id, &parts).await.unwrap();
    // An SDK retrying after a lost response gets the same answer.
    let again = complete(&c, "k", id, &parts).await.unwrap();
    assert_eq!(again.e_tag(), first.e_tag());
    assert!(first.e_tag().unwrap().ends_with("-2\""));
    assert_eq!(again.version_id(), first.version_id());
    let versions = c.list_object_versions().bucket("mpu").send().await.unwrap();
    assert_eq!(versions.versions().len(), 1, "a repeat stores nothing");
    // Other parts are not a repeat; nor is an upload that was aborted.
    assert_eq!(
        code(complete(&c, "k", id, &[(1, e1)]).await),
        "NoSuchUpload"
    );
    let aborted = &create(&c, "k").await;
    let e = upload_part(&c, "k", aborted, 1, data(300, 3)).await;
    c.abort_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(aborted)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(complete(&c, "k", aborted, &[(1, e)]).await),
        "NoSuchUpload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_head_of_a_part_the_object_lacks_are_invalid_part_number() {
    let (_s, c) = with_bucket("mpu").await;
    let id = &create(&c, "two").await;
    let e1 = upload_part(&c, "two", id, 1, data(5 * MIB, 4)).await;
    let e2 = upload_part(&c, "two", id, 2, data(100, 5)).await;
    complete(&c, "two", id, &[(1, e1), (2, e2)]).await.unwrap();
    put(&c, "mpu", "single", b"one part").await;

    let part2 = c
        .get_object()
        .bucket("mpu")
        .key("two")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(part2.parts_count(), Some(2));
    assert_eq!(
        part2.body.collect().await.unwrap().into_bytes().as_ref(),
        data(100, 5).as_slice()
    );
    for (key, n) in [("two", 3), ("single", 2)] {
        let got = c
            .get_object()
            .bucket("mpu")
            .key(key)
            .part_number(n)
            .send()
            .await;
        let (http, err, _) = crate::common::refusal(got);
        assert_eq!(
            (http, err.as_str()),
            (400, "InvalidPartNumber"),
            "GET {key} part {n}"
        );
        let head = c
            .head_object()
            .bucket("mpu")
            .key(key)
            .part_number(n)
            .send()
            .await;
        assert_eq!(super::status(head), 400, "HEAD {key} part {n}");
    }
    for n in [0, 10_001] {
        let got = c
            .get_object()
            .bucket("mpu")
            .key("two")
            .part_number(n)
            .send()
            .await;
        assert_eq!(code(got), "InvalidArgument", "part {n}");
    }
}
