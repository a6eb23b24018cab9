//! Single objects: put/get/head/delete, integrity checks, ranges, metadata,
//! tags, attributes.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, Delete, ObjectAttributes, ObjectIdentifier, Tag, Tagging,
};
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{code, common, data, get, md5_hex, put, setup_with, status, with_bucket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_and_large_round_trip() {
    let (_s, c) = with_bucket("bkt").await;
    // Sizes around the inline threshold and around stripe boundaries.
    for (i, len) in [0usize, 1, 4096, 4097, 1 << 20, 4 << 20, (9 << 20) + 123]
        .into_iter()
        .enumerate()
    {
        let body = data(len, i as u64);
        let key = format!("obj-{len}");
        let put = c
            .put_object()
            .bucket("bkt")
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(put.e_tag().unwrap(), format!("\"{}\"", md5_hex(&body)));
        assert_eq!(get(&c, "bkt", &key).await, body, "{len} bytes");
        let head = c
            .head_object()
            .bucket("bkt")
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(len as i64));
        assert_eq!(head.e_tag(), put.e_tag());
    }
    assert_eq!(
        code(c.get_object().bucket("bkt").key("missing").send().await),
        "NoSuchKey"
    );
    assert_eq!(
        status(c.head_object().bucket("bkt").key("missing").send().await),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_overrides() {
    let (_s, c) = with_bucket("bkt").await;
    c.put_object()
        .bucket("bkt")
        .key("doc.html")
        .content_type("text/html")
        .cache_control("max-age=60")
        .content_disposition("inline")
        .metadata("owner", "alice")
        .metadata("Project", "tessera")
        .body(ByteStream::from_static(b"<p>hi</p>"))
        .send()
        .await
        .unwrap();
    let head = c
        .head_object()
        .bucket("bkt")
        .key("doc.html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/html"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(head.content_disposition(), Some("inline"));
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("owner").map(String::as_str), Some("alice"));
    assert_eq!(meta.get("project").map(String::as_str), Some("tessera"));
    let got = c
        .get_object()
        .bucket("bkt")
        .key("doc.html")
        .response_content_type("application/octet-stream")
        .response_content_disposition("attachment; filename=x.html")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/octet-stream"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=x.html")
    );
}

/// User metadata with non-ASCII values, as S3 documents it: values sent
/// RFC 2047-encoded (B or Q) are decoded before they are stored and
/// encoded (B, UTF-8) when sent back; ASCII values are sent as they are.
/// A copy keeps the decoded values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_metadata_is_stored_decoded_and_sent_rfc2047_encoded() {
    let (_s, c) = with_bucket("bkt").await;
    c.put_object()
        .bucket("bkt")
        .key("u")
        .metadata("city", "=?UTF-8?Q?Z=C3=BCrich?=")
        .metadata("drink", "=?UTF-8?B?4piVIGNhZsOp?=")
        .metadata("plain", "ascii only")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    c.copy_object()
        .bucket("bkt")
        .key("copy")
        .copy_source("bkt/u")
        .send()
        .await
        .unwrap();
    for key in ["u", "copy"] {
        let head = c.head_object().bucket("bkt").key(key).send().await.unwrap();
        let meta = head.metadata().unwrap();
        let shown = |k: &str| meta.get(k).map(String::as_str);
        // "Zürich" and "☕ café", B-encoded whatever encoding they came in.
        assert_eq!(shown("city"), Some("=?UTF-8?B?WsO8cmljaA==?="), "{key}");
        assert_eq!(shown("drink"), Some("=?UTF-8?B?4piVIGNhZsOp?="), "{key}");
        assert_eq!(shown("plain"), Some("ascii only"), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_md5_and_checksums_are_verified() {
    let (_s, c) = with_bucket("bkt").await;
    let body = data(10_000, 7);
    let wrong_md5 = B64.encode([0u8; 16]);
    let r = c
        .put_object()
        .bucket("bkt")
        .key("k")
        .content_md5(wrong_md5)
        .body(ByteStream::from(body.clone()))
        .send()
        .await;
    assert_eq!(code(r), "BadDigest");
    assert_eq!(
        code(c.get_object().bucket("bkt").key("k").send().await),
        "NoSuchKey"
    );
    // Small (inline) body too.
    let r = c
        .put_object()
        .bucket("bkt")
        .key("s")
        .content_md5(B64.encode([1u8; 16]))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(r), "BadDigest");

    let right_md5 = B64.encode(hex_bytes(&md5_hex(&body)));
    c.put_object()
        .bucket("bkt")
        .key("k")
        .content_md5(right_md5)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();

    // A wrong explicit CRC32 header.
    let r = c
        .put_object()
        .bucket("bkt")
        .key("c")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from(body.clone()))
        .send()
        .await;
    assert_eq!(code(r), "BadDigest");
    assert_eq!(
        code(c.head_object().bucket("bkt").key("c").send().await),
        "NotFound"
    );

    // SDK-computed checksums (sent as headers or aws-chunked trailers) are stored and returned.
    for alg in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Sha256,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Crc64Nvme,
    ] {
        let key = format!("sum-{}", alg.as_str());
        let put = c
            .put_object()
            .bucket("bkt")
            .key(&key)
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let got = c
            .get_object()
            .bucket("bkt")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let pick = |crc32: Option<&str>,
                    crc32c: Option<&str>,
                    sha256: Option<&str>,
                    sha1: Option<&str>,
                    crc64: Option<&str>| {
            match alg {
                ChecksumAlgorithm::Crc32 => crc32,
                ChecksumAlgorithm::Crc32C => crc32c,
                ChecksumAlgorithm::Sha256 => sha256,
                ChecksumAlgorithm::Sha1 => sha1,
                _ => crc64,
            }
            .map(str::to_owned)
        };
        let sent = pick(
            put.checksum_crc32(),
            put.checksum_crc32_c(),
            put.checksum_sha256(),
            put.checksum_sha1(),
            put.checksum_crc64_nvme(),
        );
        let back = pick(
            got.checksum_crc32(),
            got.checksum_crc32_c(),
            got.checksum_sha256(),
            got.checksum_sha1(),
            got.checksum_crc64_nvme(),
        );
        assert!(sent.is_some(), "{key}");
        assert_eq!(sent, back, "{key}");
        assert_eq!(
            got.body.collect().await.unwrap().into_bytes().to_vec(),
            body
        );
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges() {
    let (_s, c) = with_bucket("bkt").await;
    let body = data(3 * 1024 * 1024 + 17, 3);
    put(&c, "bkt", "big", &body).await;
    put(&c, "bkt", "small", b"0123456789").await;
    let len = body.len();
    for (range, expect) in [
        ("bytes=0-9".to_owned(), 0..10),
        ("bytes=-5".to_owned(), len - 5..len),
        (format!("bytes={}-", len - 100), len - 100..len),
        ("bytes=1048570-2097160".to_owned(), 1_048_570..2_097_161),
        (format!("bytes=10-{}", len + 1000), 10..len),
    ] {
        let out = c
            .get_object()
            .bucket("bkt")
            .key("big")
            .range(&range)
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.content_length(),
            Some((expect.end - expect.start) as i64),
            "{range}"
        );
        assert_eq!(
            out.content_range().unwrap(),
            format!("bytes {}-{}/{len}", expect.start, expect.end - 1)
        );
        assert_eq!(
            out.body.collect().await.unwrap().into_bytes().to_vec(),
            body[expect].to_vec(),
            "{range}"
        );
    }
    let out = c
        .get_object()
        .bucket("bkt")
        .key("small")
        .range("bytes=2-4")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes().as_ref(),
        b"234"
    );
    let bad = c
        .get_object()
        .bucket("bkt")
        .key("small")
        .range("bytes=20-30")
        .send()
        .await;
    assert_eq!(status(bad), 416);
    let bad = c
        .get_object()
        .bucket("bkt")
        .key("small")
        .range("bytes=20-30")
        .send()
        .await;
    assert_eq!(code(bad), "InvalidRange");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_delete_objects() {
    let (_s, c) = with_bucket("bkt").await;
    for k in ["a", "b", "c", "d"] {
        put(&c, "bkt", k, k.as_bytes()).await;
    }
    c.delete_object()
        .bucket("bkt")
        .key("a")
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket("bkt")
        .key("never-existed")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(c.get_object().bucket("bkt").key("a").send().await),
        "NoSuchKey"
    );

    let ids = |keys: &[&str]| {
        let mut d = Delete::builder();
        for k in keys {
            d = d.objects(ObjectIdentifier::builder().key(*k).build().unwrap());
        }
        d
    };
    let verbose = c
        .delete_objects()
        .bucket("bkt")
        .delete(ids(&["b", "zz"]).build().unwrap())
        .send()
        .await
        .unwrap();
    let mut deleted: Vec<&str> = verbose.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort_unstable();
    assert_eq!(deleted, ["b", "zz"]);
    assert!(verbose.errors().is_empty());
    let quiet = c
        .delete_objects()
        .bucket("bkt")
        .delete(ids(&["c", "d"]).quiet(true).build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(quiet.deleted().is_empty());
    let left = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(left.key_count(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_objects_refuses_too_many_keys_and_huge_bodies() {
    let (_s, c) = with_bucket("bkt").await;
    put(&c, "bkt", "0000000", b"kept").await;
    let keys = |n: usize, len: usize| {
        let mut d = Delete::builder();
        for i in 0..n {
            let key = format!("{i:0len$}");
            d = d.objects(ObjectIdentifier::builder().key(key).build().unwrap());
        }
        d.build().unwrap()
    };
    // S3 takes at most 1,000 keys.
    let r = c
        .delete_objects()
        .bucket("bkt")
        .delete(keys(1001, 7))
        .send()
        .await;
    let (http, error, _) = crate::common::refusal(r);
    assert_eq!((http, error.as_str()), (400, "MalformedXML"));
    // 28 MB of XML: refused from its length, not a 500.
    let r = c
        .delete_objects()
        .bucket("bkt")
        .delete(keys(28_000, 1000))
        .send()
        .await;
    let (http, error, _) = crate::common::refusal(r);
    assert_eq!((http, error.as_str()), (400, "MaxMessageLengthExceeded"));
    assert_eq!(get(&c, "bkt", "0000000").await, b"kept");
    // 1,000 keys are fine.
    let done = c
        .delete_objects()
        .bucket("bkt")
        .delete(keys(1000, 7))
        .send()
        .await
        .unwrap();
    assert_eq!(done.deleted().len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_tagging() {
    let (_s, c) = with_bucket("bkt").await;
    c.put_object()
        .bucket("bkt")
        .key("k")
        .tagging("a=1&b=two%20words")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let got = c
        .get_object_tagging()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = got.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("a", "1"), ("b", "two words")]);
    let obj = c.get_object().bucket("bkt").key("k").send().await.unwrap();
    assert_eq!(obj.tag_count(), Some(2));
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("x").value("y").build().unwrap())
        .build()
        .unwrap();
    c.put_object_tagging()
        .bucket("bkt")
        .key("k")
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    let got = c
        .get_object_tagging()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_set().len(), 1);
    assert_eq!(got.tag_set()[0].key(), "x");
    c.delete_object_tagging()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(
        c.get_object_tagging()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .unwrap()
            .tag_set()
            .is_empty()
    );
    assert_eq!(
        code(
            c.get_object_tagging()
                .bucket("bkt")
                .key("nope")
                .send()
                .await
        ),
        "NoSuchKey"
    );
    let too_many = (0..11).fold(Tagging::builder(), |t, i| {
        t.tag_set(
            Tag::builder()
                .key(format!("k{i}"))
                .value("v")
                .build()
                .unwrap(),
        )
    });
    assert_eq!(
        code(
            c.put_object_tagging()
                .bucket("bkt")
                .key("k")
                .tagging(too_many.build().unwrap())
                .send()
                .await
        ),
        "InvalidTag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_attributes() {
    let (_s, c) = with_bucket("bkt").await;
    let body = data(5000, 1);
    c.put_object()
        .bucket("bkt")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let attrs = c
        .get_object_attributes()
        .bucket("bkt")
        .key("k")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    // s3s quotes ETags in XML (S3 leaves them bare here); compare the value.
    assert_eq!(
        attrs.e_tag().map(|e| e.trim_matches('"')),
        Some(md5_hex(&body).as_str())
    );
    assert_eq!(attrs.object_size(), Some(5000));
    assert_eq!(attrs.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    assert!(attrs.checksum().and_then(|c| c.checksum_sha256()).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_upload_with_trailer_checksum() {
    let (_s, c) = with_bucket("bkt").await;
    // A file body has no in-memory bytes to sign, so the SDK streams it
    // aws-chunked with the checksum in a trailer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let body = data(3 * 1024 * 1024 + 5, 11);
    std::fs::write(&path, &body).unwrap();
    let put = c
        .put_object()
        .bucket("bkt")
        .key("streamed")
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag().unwrap(), format!("\"{}\"", md5_hex(&body)));
    let got = c
        .get_object()
        .bucket("bkt")
        .key("streamed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32_c(), put.checksum_crc32_c());
    assert!(got.checksum_crc32_c().is_some());
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_take_turns_in_a_small_read_budget() {
    // 1 MiB: less than one stripe, so every read holds the whole budget for
    // each stripe it has not sent yet, and the reads must take turns.
    let (_s, c) = setup_with(|config| config.read_buffer = 1 << 20).await;
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let body = data((9 << 20) + 77, 7);
    put(&c, "bkt", "big", &body).await;
    let range = 1_000_000..6_000_000;
    let whole = (0..4).map(|_| get(&c, "bkt", "big"));
    let ranged = (0..2).map(|_| async {
        let out = c
            .get_object()
            .bucket("bkt")
            .key("big")
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().into_bytes().to_vec()
    });
    let copy = c
        .copy_object()
        .bucket("bkt")
        .key("copy")
        .copy_source("bkt/big")
        .send();
    let all = async {
        futures::join!(
            futures::future::join_all(whole),
            futures::future::join_all(ranged),
            copy
        )
    };
    let (whole, ranged, copied) = tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("reads sharing a read budget must not deadlock");
    assert!(whole.iter().all(|b| *b == body));
    assert!(ranged.iter().all(|b| *b == body[range.start..range.end]));
    copied.unwrap();
    assert!(get(&c, "bkt", "copy").await == body);
}

/// A presigned PUT over a raw socket with `Expect: 100-continue` (as curl
/// and the AWS CLI send large bodies) and, in a second request, with
/// `Transfer-Encoding: chunked` and no Content-Length: `100 Continue`
/// before the body, then 200, and the bytes stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_and_chunked_bodies_are_taken() {
    let (server, c) = with_bucket("bkt").await;
    let body = data(300_000, 7);
    let head_for = |key: &'static str, framing: String| {
        let c = c.clone();
        async move {
            let presigned = c
                .put_object()
                .bucket("bkt")
                .key(key)
                .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
                .await
                .unwrap();
            let uri: http::Uri = presigned.uri().parse().unwrap();
            format!(
                "PUT {} HTTP/1.1\r\nHost: {}\r\n{framing}\r\n",
                uri.path_and_query().unwrap(),
                uri.authority().unwrap(),
            )
        }
    };

    let mut sock = tokio::net::TcpStream::connect(server.s3_addr())
        .await
        .unwrap();
    let head = head_for(
        "continued",
        format!("Content-Length: {}\r\nExpect: 100-continue\r\n", body.len()),
    )
    .await;
    sock.write_all(head.as_bytes()).await.unwrap();
    let interim = tokio::time::timeout(Duration::from_secs(10), read_until(&mut sock, b"\r\n\r\n"))
        .await
        .expect("100 Continue before the body");
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    sock.write_all(&body).await.unwrap();
    let done = read_until(&mut sock, b"\r\n\r\n").await;
    assert!(done.starts_with("HTTP/1.1 200 "), "{done}");

    let mut sock = tokio::net::TcpStream::connect(server.s3_addr())
        .await
        .unwrap();
    let head = head_for("chunked", "Transfer-Encoding: chunked\r\n".into()).await;
    sock.write_all(head.as_bytes()).await.unwrap();
    for piece in body.chunks(100_000) {
        sock.write_all(format!("{:x}\r\n", piece.len()).as_bytes())
            .await
            .unwrap();
        sock.write_all(piece).await.unwrap();
        sock.write_all(b"\r\n").await.unwrap();
    }
    sock.write_all(b"0\r\n\r\n").await.unwrap();
    let done = read_until(&mut sock, b"\r\n\r\n").await;
    assert!(done.starts_with("HTTP/1.1 200 "), "{done}");

    assert_eq!(get(&c, "bkt", "continued").await, body);
    assert_eq!(get(&c, "bkt", "chunked").await, body);
}

/// Reads from `sock` until `end` has arrived: what came, as text.
async fn read_until(sock: &mut tokio::net::TcpStream, end: &[u8]) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(end.len()).any(|w| w == end) {
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// A single PUT may carry at most 5 GiB: one declaring 5 GiB + 1 byte (over
/// a raw socket, presigned, its body never sent) is answered EntityTooLarge
/// without waiting for the body, and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_above_5_gib_is_entity_too_large() {
    let (server, c) = with_bucket("bkt").await;
    let presigned = c
        .put_object()
        .bucket("bkt")
        .key("huge")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let uri: http::Uri = presigned.uri().parse().unwrap();
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        uri.path_and_query().unwrap(),
        uri.authority().unwrap(),
        (5u64 << 30) + 1
    );
    let mut sock = tokio::net::TcpStream::connect(server.s3_addr())
        .await
        .unwrap();
    sock.write_all(head.as_bytes()).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(20), read_until(&mut sock, b"</Error>"))
        .await
        .expect("an answer before the body");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("<Code>EntityTooLarge</Code>"), "{answer}");

    assert_eq!(
        status(c.head_object().bucket("bkt").key("huge").send().await),
        404
    );
    let listed = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
    assert!(common::shard_files(server.data_dir()).is_empty());
}
