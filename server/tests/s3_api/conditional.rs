//! Preconditions on reads (304/412) and conditional writes (412), including a
//! race of two `If-None-Match: *` writers.

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::{code, data, put, status, with_bucket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_preconditions() {
    let (_s, c) = with_bucket("bkt").await;
    put(&c, "bkt", "k", b"hello").await;
    let head = c.head_object().bucket("bkt").key("k").send().await.unwrap();
    let etag = head.e_tag().unwrap().to_owned();
    let modified = head.last_modified().unwrap().secs();
    let before = DateTime::from_secs(modified - 3600);
    let after = DateTime::from_secs(modified + 3600);

    c.get_object()
        .bucket("bkt")
        .key("k")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(
            c.get_object()
                .bucket("bkt")
                .key("k")
                .if_match("\"nope\"")
                .send()
                .await
        ),
        412
    );
    assert_eq!(
        status(
            c.get_object()
                .bucket("bkt")
                .key("k")
                .if_none_match(&etag)
                .send()
                .await
        ),
        304
    );
    c.get_object()
        .bucket("bkt")
        .key("k")
        .if_none_match("\"other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(
            c.get_object()
                .bucket("bkt")
                .key("k")
                .if_modified_since(after)
                .send()
                .await
        ),
        304
    );
    c.get_object()
        .bucket("bkt")
        .key("k")
        .if_modified_since(before)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(
            c.get_object()
                .bucket("bkt")
                .key("k")
                .if_unmodified_since(before)
                .send()
                .await
        ),
        412
    );
    c.get_object()
        .bucket("bkt")
        .key("k")
        .if_unmodified_since(after)
        .send()
        .await
        .unwrap();
    // If-Match wins over a failing If-Unmodified-Since (RFC 9110).
    c.get_object()
        .bucket("bkt")
        .key("k")
        .if_match(&etag)
        .if_unmodified_since(before)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(
            c.head_object()
                .bucket("bkt")
                .key("k")
                .if_none_match(&etag)
                .send()
                .await
        ),
        304
    );
    assert_eq!(
        status(
            c.head_object()
                .bucket("bkt")
                .key("k")
                .if_match("\"x\"")
                .send()
                .await
        ),
        412
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_put() {
    let (_s, c) = with_bucket("bkt").await;
    let first = c
        .put_object()
        .bucket("bkt")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    let again = c
        .put_object()
        .bucket("bkt")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await;
    assert_eq!(code(again), "PreconditionFailed");
    let wrong = c
        .put_object()
        .bucket("bkt")
        .key("k")
        .if_match("\"0123\"")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await;
    assert_eq!(code(wrong), "PreconditionFailed");
    // S3 answers If-Match on a missing key with 404 NoSuchKey.
    let missing = c
        .put_object()
        .bucket("bkt")
        .key("absent")
        .if_match(first.e_tag().unwrap())
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(missing), "NoSuchKey");
    c.put_object()
        .bucket("bkt")
        .key("k")
        .if_match(first.e_tag().unwrap())
        .body(ByteStream::from_static(b"three"))
        .send()
        .await
        .unwrap();
    assert_eq!(super::common::get_bytes(&c, "bkt", "k").await, b"three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_create_only_puts() {
    let (_s, c) = with_bucket("bkt").await;
    for round in 0..5 {
        let key = format!("race-{round}");
        // One small (inline) and one sharded body, racing for the same key.
        let bodies = [data(100, round), data(300_000, round + 100)];
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let c = c.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    c.put_object()
                        .bucket("bkt")
                        .key(key)
                        .if_none_match("*")
                        .body(ByteStream::from(body.clone()))
                        .send()
                        .await
                        .map(|_| body)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut losers = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(body) => winners.push(body),
                Err(e) => {
                    assert_eq!(code::<(), _>(Err(e)), "PreconditionFailed");
                    losers += 1;
                }
            }
        }
        assert_eq!((winners.len(), losers), (1, 1), "round {round}");
        let stored = c
            .get_object()
            .bucket("bkt")
            .key(&key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(stored.to_vec(), winners[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_complete_multipart() {
    let (_s, c) = with_bucket("bkt").await;
    put(&c, "bkt", "k", b"exists").await;
    let up = c
        .create_multipart_upload()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let p = c
        .upload_part()
        .bucket("bkt")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    let parts = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(p.e_tag().unwrap())
                .build(),
        )
        .build();
    let r = c
        .complete_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(id)
        .multipart_upload(parts.clone())
        .if_none_match("*")
        .send()
        .await;
    assert_eq!(code(r), "PreconditionFailed");
    // The upload survives a refused completion.
    c.complete_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await
        .unwrap();
    let body = c
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(body.as_ref(), b"part");
}
