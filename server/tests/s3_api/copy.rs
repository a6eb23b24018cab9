//! CopyObject: directives, conditions, same-key metadata changes.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{MetadataDirective, TaggingDirective};

use super::{code, data, get, md5_hex, with_bucket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_with_directives() {
    let (_s, c) = with_bucket("src").await;
    c.create_bucket().bucket("dst").send().await.unwrap();
    for (key, len) in [("small", 10usize), ("large", 2_500_000)] {
        let body = data(len, len as u64);
        c.put_object()
            .bucket("src")
            .key(key)
            .content_type("text/plain")
            .metadata("color", "blue")
            .tagging("t=1")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let out = c
            .copy_object()
            .bucket("dst")
            .key(key)
            .copy_source(format!("src/{key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.copy_object_result().unwrap().e_tag().unwrap(),
            format!("\"{}\"", md5_hex(&body))
        );
        assert_eq!(get(&c, "dst", key).await, body);
        let head = c.head_object().bucket("dst").key(key).send().await.unwrap();
        assert_eq!(head.content_type(), Some("text/plain"));
        assert_eq!(head.metadata().unwrap().get("color").unwrap(), "blue");
        let tags = c
            .get_object_tagging()
            .bucket("dst")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tag_set()[0].key(), "t");

        c.copy_object()
            .bucket("dst")
            .key(format!("{key}-replaced"))
            .copy_source(format!("src/{key}"))
            .metadata_directive(MetadataDirective::Replace)
            .content_type("application/json")
            .metadata("color", "red")
            .tagging_directive(TaggingDirective::Replace)
            .tagging("u=2")
            .send()
            .await
            .unwrap();
        let head = c
            .head_object()
            .bucket("dst")
            .key(format!("{key}-replaced"))
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/json"));
        assert_eq!(head.metadata().unwrap().get("color").unwrap(), "red");
        let tags = c
            .get_object_tagging()
            .bucket("dst")
            .key(format!("{key}-replaced"))
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tag_set()[0].key(), "u");
    }
    assert_eq!(
        code(
            c.copy_object()
                .bucket("dst")
                .key("x")
                .copy_source("src/missing")
                .send()
                .await
        ),
        "NoSuchKey"
    );
    assert_eq!(
        code(
            c.copy_object()
                .bucket("nobucket")
                .key("x")
                .copy_source("src/small")
                .send()
                .await
        ),
        "NoSuchBucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_copy_and_conditions() {
    let (_s, c) = with_bucket("bkt").await;
    let put = c
        .put_object()
        .bucket("bkt")
        .key("k")
        .content_type("text/plain")
        .body(ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap();
    assert_eq!(
        code(
            c.copy_object()
                .bucket("bkt")
                .key("k")
                .copy_source("bkt/k")
                .send()
                .await
        ),
        "InvalidRequest"
    );
    c.copy_object()
        .bucket("bkt")
        .key("k")
        .copy_source("bkt/k")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/markdown")
        .send()
        .await
        .unwrap();
    let head = c.head_object().bucket("bkt").key("k").send().await.unwrap();
    assert_eq!(head.content_type(), Some("text/markdown"));
    assert_eq!(head.e_tag(), Some(etag));
    assert_eq!(get(&c, "bkt", "k").await, b"data");

    let r = c
        .copy_object()
        .bucket("bkt")
        .key("k2")
        .copy_source("bkt/k")
        .copy_source_if_match("\"nope\"")
        .send()
        .await;
    assert_eq!(code(r), "PreconditionFailed");
    let r = c
        .copy_object()
        .bucket("bkt")
        .key("k2")
        .copy_source("bkt/k")
        .copy_source_if_none_match(etag)
        .send()
        .await;
    assert_eq!(code(r), "PreconditionFailed");
    c.copy_object()
        .bucket("bkt")
        .key("k2")
        .copy_source("bkt/k")
        .copy_source_if_match(etag)
        .send()
        .await
        .unwrap();
}
