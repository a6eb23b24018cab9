//! Versioned buckets: version ids, delete markers, reads and deletes by version.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use super::{code, get, status, with_bucket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_and_delete_markers() {
    let (_s, c) = with_bucket("vers").await;
    c.put_bucket_versioning()
        .bucket("vers")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v1 = c
        .put_object()
        .bucket("vers")
        .key("k")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap();
    let v2 = c
        .put_object()
        .bucket("vers")
        .key("k")
        .body(ByteStream::from(vec![7u8; 100_000]))
        .send()
        .await
        .unwrap();
    let (id1, id2) = (
        v1.version_id().unwrap().to_owned(),
        v2.version_id().unwrap().to_owned(),
    );
    assert_ne!(id1, id2);
    assert_eq!(get(&c, "vers", "k").await, vec![7u8; 100_000]);
    let old = c
        .get_object()
        .bucket("vers")
        .key("k")
        .version_id(&id1)
        .send()
        .await
        .unwrap();
    assert_eq!(old.version_id(), Some(id1.as_str()));
    assert_eq!(
        old.body.collect().await.unwrap().into_bytes().as_ref(),
        b"one"
    );
    let head = c
        .head_object()
        .bucket("vers")
        .key("k")
        .version_id(&id1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(3));

    // Delete without a version id: a delete marker.
    let del = c
        .delete_object()
        .bucket("vers")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().unwrap().to_owned();
    let gone = c.get_object().bucket("vers").key("k").send().await;
    assert_eq!(code(gone), "NoSuchKey");
    let by_marker = c
        .get_object()
        .bucket("vers")
        .key("k")
        .version_id(&marker)
        .send()
        .await;
    assert_eq!(status(by_marker), 405);
    assert_eq!(
        code(
            c.get_object()
                .bucket("vers")
                .key("k")
                .version_id("00000000000000000000000000000000")
                .send()
                .await
        ),
        "NoSuchVersion"
    );

    let listing = c
        .list_object_versions()
        .bucket("vers")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = listing
        .versions()
        .iter()
        .map(|v| v.version_id().unwrap())
        .collect();
    assert_eq!(ids, [id2.as_str(), id1.as_str()]);
    assert_eq!(listing.delete_markers().len(), 1);
    assert_eq!(listing.delete_markers()[0].is_latest(), Some(true));
    assert!(
        listing
            .versions()
            .iter()
            .all(|v| v.is_latest() == Some(false))
    );

    // Removing the marker brings the object back; deleting a version removes it for good.
    let un = c
        .delete_object()
        .bucket("vers")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(un.delete_marker(), Some(true));
    assert_eq!(get(&c, "vers", "k").await, vec![7u8; 100_000]);
    c.delete_object()
        .bucket("vers")
        .key("k")
        .version_id(&id2)
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, "vers", "k").await, b"one");
    assert_eq!(
        code(
            c.get_object()
                .bucket("vers")
                .key("k")
                .version_id(&id2)
                .send()
                .await
        ),
        "NoSuchVersion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_versioning_overwrites_null() {
    let (_s, c) = with_bucket("susp").await;
    c.put_object()
        .bucket("susp")
        .key("k")
        .body(ByteStream::from_static(b"null-1"))
        .send()
        .await
        .unwrap();
    let cfg = |s| VersioningConfiguration::builder().status(s).build();
    c.put_bucket_versioning()
        .bucket("susp")
        .versioning_configuration(cfg(BucketVersioningStatus::Enabled))
        .send()
        .await
        .unwrap();
    let v = c
        .put_object()
        .bucket("susp")
        .key("k")
        .body(ByteStream::from_static(b"versioned"))
        .send()
        .await
        .unwrap();
    c.put_bucket_versioning()
        .bucket("susp")
        .versioning_configuration(cfg(BucketVersioningStatus::Suspended))
        .send()
        .await
        .unwrap();
    c.put_object()
        .bucket("susp")
        .key("k")
        .body(ByteStream::from_static(b"null-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, "susp", "k").await, b"null-2");
    let listing = c
        .list_object_versions()
        .bucket("susp")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = listing
        .versions()
        .iter()
        .map(|v| v.version_id().unwrap())
        .collect();
    assert_eq!(ids, ["null", v.version_id().unwrap()]);
    let old = c
        .get_object()
        .bucket("susp")
        .key("k")
        .version_id(v.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.body.collect().await.unwrap().into_bytes().as_ref(),
        b"versioned"
    );
}
