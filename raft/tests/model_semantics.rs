//! S3 semantics of the metadata model, applied to redb without raft.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model_support;

use md5::{Digest, Md5};
use model_support::*;
use tessera_raft::command::{ApplyError, BucketUpdate, Command, CommandResponse, Precondition};
use tessera_raft::model::{
    AccessKey, Checksum, Grant, ListedObject, NULL_VERSION_ID, NodeRecord, NodeReport, NodeState,
    ObjectData, StorageNode, Versioning, WorkItem,
};
use tessera_raft::snapshot_data::{self, SnapshotRecord};
use tessera_raft::{ListObjectsQuery, ListUploadsQuery, ListVersionsQuery, MetaError};

fn set_versioning(meta: &mut Meta, bucket: &str, v: Versioning) {
    meta.ok(Command::UpdateBucket {
        name: bucket.into(),
        update: BucketUpdate::Versioning(v),
    });
}

/// `(version id, is_latest, is_marker)` of every version of the bucket.
fn versions(meta: &Meta, bucket: &str) -> Vec<(String, String, bool, bool)> {
    let page = meta
        .view()
        .list_versions(
            bucket,
            &ListVersionsQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    page.versions
        .into_iter()
        .map(|(v, latest)| {
            let marker = v.is_delete_marker();
            (v.key, v.version_id, latest, marker)
        })
        .collect()
}

fn keys(meta: &Meta, bucket: &str) -> Vec<String> {
    let page = meta
        .view()
        .list_objects(
            bucket,
            &ListObjectsQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    page.objects.into_iter().map(|v| v.key).collect()
}

/// Object ids (first 8 bytes as seed) of segments queued for deletion, in queue order.
fn queued_seeds(meta: &Meta) -> Vec<u64> {
    meta.view()
        .deletions(usize::MAX)
        .unwrap()
        .into_iter()
        .flat_map(|(_, segments)| segments)
        .map(|s| u64::from_be_bytes(s.object_id[..8].try_into().unwrap()))
        .collect()
}

fn owned(s: &[(&str, &str, bool, bool)]) -> Vec<(String, String, bool, bool)> {
    s.iter()
        .map(|(k, v, l, m)| (k.to_string(), v.to_string(), *l, *m))
        .collect()
}

#[test]
fn create_bucket_grants_owner_and_refuses_duplicates() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    let grant = meta.view().grant("TKowner", "b").unwrap().unwrap();
    assert!(grant.owner && grant.read && grant.write);
    let mut other = bucket("b", Versioning::Enabled);
    other.owner = "TKother".into();
    assert_eq!(
        meta.apply(Command::CreateBucket { bucket: other }),
        Err(ApplyError::BucketExists {
            owner: "TKowner".into()
        })
    );
    assert_eq!(meta.view().buckets().unwrap().len(), 1);
    assert_eq!(
        meta.view().bucket("b").unwrap().unwrap().versioning,
        Versioning::Unversioned
    );
}

#[test]
fn unversioned_put_replaces_null_version_and_delete_removes_it() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(put("b", "k", "ignored-1", 1));
    let resp = meta.ok(put("b", "k", "ignored-2", 2));
    let CommandResponse::ObjectStored { version } = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(version.version_id, NULL_VERSION_ID);
    assert_eq!(versions(&meta, "b"), owned(&[("k", "null", true, false)]));
    assert_eq!(meta.view().object("b", "k", None).unwrap().unwrap().size, 2);
    assert_eq!(queued_seeds(&meta), vec![1]);

    let resp = meta.ok(delete("b", "k", None, "unused"));
    assert_eq!(
        resp,
        CommandResponse::ObjectDeleted {
            version_id: None,
            delete_marker: false
        }
    );
    assert!(versions(&meta, "b").is_empty());
    assert!(meta.view().object("b", "k", None).unwrap().is_none());
    assert_eq!(queued_seeds(&meta), vec![1, 2]);
    // Deleting what is not there succeeds and changes nothing.
    meta.ok_unchanged(delete("b", "k", None, "unused"));
}

#[test]
fn enabled_versions_markers_and_version_deletes() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k", "v1", 1));
    meta.ok(put("b", "k", "v2", 2));
    assert_eq!(
        meta.view()
            .object("b", "k", None)
            .unwrap()
            .unwrap()
            .version_id,
        "v2"
    );
    let resp = meta.ok(delete("b", "k", None, "m1"));
    assert_eq!(
        resp,
        CommandResponse::ObjectDeleted {
            version_id: Some("m1".into()),
            delete_marker: true
        }
    );
    assert!(keys(&meta, "b").is_empty());
    assert!(
        meta.view()
            .object("b", "k", None)
            .unwrap()
            .unwrap()
            .is_delete_marker()
    );
    assert_eq!(
        versions(&meta, "b"),
        owned(&[
            ("k", "m1", true, true),
            ("k", "v2", false, false),
            ("k", "v1", false, false)
        ])
    );
    // No data was dropped by a marker.
    assert!(queued_seeds(&meta).is_empty());

    // Removing the marker makes v2 current again.
    let resp = meta.ok(delete("b", "k", Some("m1"), "unused"));
    assert_eq!(
        resp,
        CommandResponse::ObjectDeleted {
            version_id: Some("m1".into()),
            delete_marker: true
        }
    );
    assert_eq!(keys(&meta, "b"), vec!["k"]);
    // Removing the current version makes v1 current and drops v2's data.
    meta.ok(delete("b", "k", Some("v2"), "unused"));
    assert_eq!(
        meta.view()
            .object("b", "k", None)
            .unwrap()
            .unwrap()
            .version_id,
        "v1"
    );
    assert_eq!(queued_seeds(&meta), vec![2]);
    // A specific version stays readable; a missing one reads as None and deletes as a no-op.
    assert_eq!(
        meta.view()
            .object("b", "k", Some("v1"))
            .unwrap()
            .unwrap()
            .size,
        1
    );
    assert!(meta.view().object("b", "k", Some("v2")).unwrap().is_none());
    meta.ok_unchanged(delete("b", "k", Some("v2"), "unused"));
}

#[test]
fn suspended_null_version_moves_to_the_top_and_null_marker_replaces_it() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(put("b", "k", "x", 1)); // null, oldest
    set_versioning(&mut meta, "b", Versioning::Enabled);
    meta.ok(put("b", "k", "v2", 2));
    assert_eq!(
        versions(&meta, "b"),
        owned(&[("k", "v2", true, false), ("k", "null", false, false)])
    );
    set_versioning(&mut meta, "b", Versioning::Suspended);
    meta.ok(put("b", "k", "x", 3)); // replaces the old null version, now newest
    assert_eq!(
        versions(&meta, "b"),
        owned(&[("k", "null", true, false), ("k", "v2", false, false)])
    );
    assert_eq!(
        meta.view()
            .object("b", "k", Some("null"))
            .unwrap()
            .unwrap()
            .size,
        3
    );
    assert_eq!(queued_seeds(&meta), vec![1]);

    let resp = meta.ok(delete("b", "k", None, "unused"));
    assert_eq!(
        resp,
        CommandResponse::ObjectDeleted {
            version_id: Some("null".into()),
            delete_marker: true
        }
    );
    assert_eq!(
        versions(&meta, "b"),
        owned(&[("k", "null", true, true), ("k", "v2", false, false)])
    );
    assert_eq!(queued_seeds(&meta), vec![1, 3]);
    assert!(keys(&meta, "b").is_empty());

    // Versioning can be suspended and enabled again, never turned off.
    let before = meta.dump();
    assert!(matches!(
        meta.apply(Command::UpdateBucket {
            name: "b".into(),
            update: BucketUpdate::Versioning(Versioning::Unversioned)
        }),
        Err(ApplyError::InvalidRequest(_))
    ));
    assert_eq!(meta.dump(), before);
}

#[test]
fn preconditions_are_checked_against_the_current_version() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put_if("b", "k", "v1", 1, Precondition::IfNoneMatchAny));
    let before = meta.dump();
    assert_eq!(
        meta.apply(put_if("b", "k", "v2", 2, Precondition::IfNoneMatchAny)),
        Err(ApplyError::PreconditionFailed)
    );
    assert_eq!(
        meta.apply(put_if("b", "k", "v2", 2, Precondition::IfMatch(etag_of(7)))),
        Err(ApplyError::PreconditionFailed)
    );
    assert_eq!(
        meta.apply(put_if(
            "b",
            "nope",
            "v2",
            2,
            Precondition::IfMatch("*".into())
        )),
        Err(ApplyError::NoSuchKey)
    );
    assert_eq!(meta.dump(), before);

    let quoted = format!("\"{}\"", etag_of(1));
    meta.ok(put_if("b", "k", "v2", 2, Precondition::IfMatch(quoted)));
    meta.ok(put_if("b", "k", "v3", 3, Precondition::IfMatch("*".into())));
    // A delete marker as the current version counts as absent.
    meta.ok(delete("b", "k", None, "m"));
    assert_eq!(
        meta.apply(put_if("b", "k", "v4", 4, Precondition::IfMatch("*".into()))),
        Err(ApplyError::NoSuchKey)
    );
    meta.ok(put_if("b", "k", "v4", 4, Precondition::IfNoneMatchAny));
    assert_eq!(
        meta.view()
            .object("b", "k", None)
            .unwrap()
            .unwrap()
            .version_id,
        "v4"
    );
}

#[test]
fn delete_bucket_refuses_versions_and_markers_and_grants_go_with_it() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    let del = || Command::DeleteBucket { name: "b".into() };
    meta.ok(put("b", "k", "v1", 1));
    assert_eq!(meta.apply(del()), Err(ApplyError::BucketNotEmpty));
    meta.ok(delete("b", "k", Some("v1"), ""));
    meta.ok(delete("b", "k", None, "m1")); // only a marker left
    let before = meta.dump();
    assert_eq!(meta.apply(del()), Err(ApplyError::BucketNotEmpty));
    assert_eq!(meta.dump(), before);
    meta.ok(delete("b", "k", Some("m1"), ""));
    meta.ok(del());
    assert!(meta.view().bucket("b").unwrap().is_none());
    assert!(meta.view().grant("TKowner", "b").unwrap().is_none());
    assert_eq!(meta.apply(del()), Err(ApplyError::NoSuchBucket));
    assert!(matches!(
        meta.view().list_objects("b", &ListObjectsQuery::default()),
        Err(MetaError::Apply(ApplyError::NoSuchBucket))
    ));
}

#[test]
fn delete_bucket_takes_its_uploads_in_progress_along() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(Command::CreateBucket {
        bucket: bucket("bb", Versioning::Unversioned),
    });
    meta.ok(create_upload("b", "u", "up1"));
    meta.ok(put_part("b", "u", "up1", part(1, 100, 11)));
    meta.ok(put_part("b", "u", "up1", part(2, 100, 12)));
    meta.ok(create_upload("b", "a\0z", "up2"));
    meta.ok(put_part("b", "a\0z", "up2", part(1, 100, 21)));
    meta.ok(create_upload("b", "empty", "up3"));
    meta.ok(create_upload("bb", "u", "up1"));
    meta.ok(put_part("bb", "u", "up1", part(1, 100, 31)));

    // A version still refuses, and the refusal leaves the uploads alone.
    meta.ok(put("b", "k", "v1", 1));
    let before = meta.dump();
    assert_eq!(
        meta.apply(Command::DeleteBucket { name: "b".into() }),
        Err(ApplyError::BucketNotEmpty)
    );
    assert_eq!(meta.dump(), before);
    meta.ok(delete("b", "k", None, ""));
    assert_eq!(queued_seeds(&meta), vec![1]);

    meta.ok(Command::DeleteBucket { name: "b".into() });
    assert!(meta.view().bucket("b").unwrap().is_none());
    // Every part's data is queued, as AbortMultipartUpload queues it.
    let mut queued = queued_seeds(&meta);
    queued.sort_unstable();
    assert_eq!(queued, vec![1, 11, 12, 21]);
    // No upload or part row is left behind for a bucket of the same name.
    meta.ok(Command::CreateBucket {
        bucket: bucket("b", Versioning::Unversioned),
    });
    let uploads = meta
        .view()
        .list_uploads(
            "b",
            &ListUploadsQuery {
                max_uploads: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(uploads.uploads.is_empty(), "{:?}", uploads.uploads);
    for (key, id) in [("u", "up1"), ("a\0z", "up2"), ("empty", "up3")] {
        assert!(meta.view().upload("b", key, id).unwrap().is_none());
        assert!(matches!(
            meta.view().list_parts("b", key, id, 0, 10),
            Err(MetaError::Apply(ApplyError::NoSuchUpload))
        ));
    }
    assert_eq!(
        meta.apply(put_part("b", "u", "up1", part(3, 1, 13))),
        Err(ApplyError::NoSuchUpload)
    );
    // The other bucket's upload stands.
    let other = meta.view().list_parts("bb", "u", "up1", 0, 10).unwrap();
    assert_eq!(other.parts, vec![part(1, 100, 31)]);
}

#[test]
fn multipart_complete_checks_parts_and_builds_the_object() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(create_upload("b", "big", "up"));
    meta.ok(put_part("b", "big", "up", part(1, 100, 11)));
    meta.ok(put_part("b", "big", "up", part(2, 100, 12)));
    meta.ok(put_part("b", "big", "up", part(2, 100, 22))); // replaces part 2
    meta.ok(put_part("b", "big", "up", part(3, 5, 13)));
    assert_eq!(queued_seeds(&meta), vec![12]);
    let listed = meta.view().list_parts("b", "big", "up", 0, 2).unwrap();
    assert_eq!(
        listed.parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(listed.is_truncated);
    assert_eq!(listed.next_part_number_marker, Some(2));
    let rest = meta.view().list_parts("b", "big", "up", 2, 2).unwrap();
    assert_eq!(rest.parts.len(), 1);
    assert!(!rest.is_truncated);

    let before = meta.dump();
    let e = |n: u32, s: u64| (n, etag_of(s));
    let refusals = [
        (
            "big",
            vec![e(3, 13), e(1, 11)],
            10,
            ApplyError::InvalidPartOrder,
        ),
        (
            "big",
            vec![e(1, 11), e(2, 12)],
            10,
            ApplyError::InvalidPart(2),
        ),
        (
            "big",
            vec![e(1, 11), e(4, 13)],
            10,
            ApplyError::InvalidPart(4),
        ),
        (
            "big",
            vec![e(1, 11), e(3, 13)],
            101,
            ApplyError::EntityTooSmall(1),
        ),
        ("nope", vec![e(1, 11)], 10, ApplyError::NoSuchUpload),
    ];
    for (key, parts, min, error) in refusals {
        assert_eq!(
            meta.apply(complete("b", key, "up", parts, "v", min)),
            Err(error)
        );
    }
    assert_eq!(meta.dump(), before);

    let resp = meta.ok(complete(
        "b",
        "big",
        "up",
        vec![e(1, 11), e(3, 13)],
        "v",
        100,
    ));
    let CommandResponse::ObjectStored { version } = resp else {
        panic!("{resp:?}")
    };
    let mut md5 = Md5::new();
    md5.update(hex::decode(etag_of(11)).unwrap());
    md5.update(hex::decode(etag_of(13)).unwrap());
    assert_eq!(version.etag, format!("{}-2", hex::encode(md5.finalize())));
    assert_eq!(version.size, 105);
    assert_eq!(version.version_id, NULL_VERSION_ID);
    let ObjectData::Parts(parts) = &version.data else {
        panic!()
    };
    assert_eq!(
        parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(
        meta.view().object("b", "big", None).unwrap().unwrap(),
        version
    );
    assert!(meta.view().upload("b", "big", "up").unwrap().is_none());
    assert!(matches!(
        meta.view().list_parts("b", "big", "up", 0, 10),
        Err(MetaError::Apply(ApplyError::NoSuchUpload))
    ));
    // The unlisted part 2 (seed 22) is queued for deletion.
    assert_eq!(queued_seeds(&meta), vec![12, 22]);

    // Abort queues every part.
    meta.ok(create_upload("b", "big", "up2"));
    meta.ok(put_part("b", "big", "up2", part(1, 1, 31)));
    meta.ok(put_part("b", "big", "up2", part(2, 1, 32)));
    meta.ok(Command::AbortMultipartUpload {
        bucket: "b".into(),
        key: "big".into(),
        upload_id: "up2".into(),
    });
    assert_eq!(queued_seeds(&meta), vec![12, 22, 31, 32]);
    assert_eq!(
        meta.apply(put_part("b", "big", "up2", part(1, 1, 33))),
        Err(ApplyError::NoSuchUpload)
    );
}

/// How many completed uploads the state machine remembers.
fn remembered_completions(meta: &Meta) -> usize {
    use redb::TableHandle as _;
    let table = tessera_raft::tables::ALL
        .iter()
        .position(|t| t.name() == tessera_raft::tables::COMPLETED_UPLOADS.name())
        .unwrap();
    meta.dump()
        .iter()
        .filter(|r| usize::from(r.table) == table)
        .count()
}

#[test]
fn a_repeated_completion_answers_with_the_version_the_first_stored() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(create_upload("b", "k", "up"));
    meta.ok(put_part("b", "k", "up", part(1, 10, 7)));
    meta.ok(put_part("b", "k", "up", part(2, 10, 8)));
    let parts = vec![(1, etag_of(7)), (2, format!("\"{}\"", etag_of(8)))];
    let first = meta.ok(complete("b", "k", "up", parts.clone(), "v1", 0));
    assert_eq!(remembered_completions(&meta), 1);
    let before = meta.dump();
    assert_eq!(
        meta.ok(complete("b", "k", "up", parts.clone(), "v2", 0)),
        first
    );
    assert_eq!(meta.dump(), before, "a repeat changes nothing");
    // Other parts, or another upload id: the upload is gone.
    let fewer = complete("b", "k", "up", vec![(1, etag_of(7))], "v3", 0);
    assert_eq!(meta.apply(fewer), Err(ApplyError::NoSuchUpload));
    let other = complete("b", "k", "other", parts.clone(), "v3", 0);
    assert_eq!(meta.apply(other), Err(ApplyError::NoSuchUpload));
    // Once the version is deleted, so is the memory of its completion.
    meta.ok(delete("b", "k", Some("v1"), "m"));
    assert_eq!(remembered_completions(&meta), 0);
    let late = complete("b", "k", "up", parts, "v4", 0);
    assert_eq!(meta.apply(late), Err(ApplyError::NoSuchUpload));
}

#[test]
fn a_repeat_after_an_overwrite_is_no_such_upload() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(create_upload("b", "k", "up"));
    meta.ok(put_part("b", "k", "up", part(1, 10, 7)));
    let parts = vec![(1, etag_of(7))];
    meta.ok(complete("b", "k", "up", parts.clone(), "", 0));
    meta.ok(put("b", "k", "", 3));
    let again = complete("b", "k", "up", parts, "", 0);
    assert_eq!(meta.apply(again), Err(ApplyError::NoSuchUpload));
    meta.ok(delete("b", "k", None, "m"));
    assert_eq!(remembered_completions(&meta), 0);
}

#[test]
fn complete_with_if_none_match_is_refused_when_the_key_exists() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(put("b", "k", "", 1));
    meta.ok(create_upload("b", "k", "up"));
    meta.ok(put_part("b", "k", "up", part(1, 1, 2)));
    let mut cmd = complete("b", "k", "up", vec![(1, etag_of(2))], "", 0);
    if let Command::CompleteMultipartUpload { precondition, .. } = &mut cmd {
        *precondition = Some(Precondition::IfNoneMatchAny);
    }
    let before = meta.dump();
    assert_eq!(meta.apply(cmd), Err(ApplyError::PreconditionFailed));
    assert_eq!(meta.dump(), before);
}

#[test]
fn completion_stores_the_object_checksum_it_carries() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(create_upload("b", "k", "up"));
    meta.ok(put_part("b", "k", "up", part(1, 1, 2)));
    let sum = Checksum {
        algorithm: "CRC32".into(),
        value: "AAAAAA==-1".into(),
    };
    let mut cmd = complete("b", "k", "up", vec![(1, etag_of(2))], "", 0);
    if let Command::CompleteMultipartUpload { checksum, .. } = &mut cmd {
        *checksum = Some(sum.clone());
    }
    let CommandResponse::ObjectStored { version } = meta.ok(cmd) else {
        panic!("no version stored")
    };
    assert_eq!(version.checksums, vec![sum]);
    let stored = meta.view().object("b", "k", None).unwrap().unwrap();
    assert_eq!(stored.checksums, version.checksums);
}

#[test]
fn uploads_listing_orders_by_key_then_upload_id() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    for (k, u) in [
        ("a/1", "u2"),
        ("a/1", "u1"),
        ("a/2", "u1"),
        ("b", "u9"),
        ("c", "u1"),
    ] {
        meta.ok(create_upload("b", k, u));
    }
    let ids = |q: ListUploadsQuery| {
        let page = meta.view().list_uploads("b", &q).unwrap();
        (
            page.uploads
                .iter()
                .map(|u| format!("{}:{}", u.key, u.upload_id))
                .collect::<Vec<_>>(),
            page.common_prefixes,
            page.is_truncated,
            page.next_key_marker,
            page.next_upload_id_marker,
        )
    };
    let q = |max: usize| ListUploadsQuery {
        max_uploads: max,
        ..Default::default()
    };
    assert_eq!(
        ids(q(10)).0,
        vec!["a/1:u1", "a/1:u2", "a/2:u1", "b:u9", "c:u1"]
    );
    let page = ids(q(2));
    assert_eq!(page.0, vec!["a/1:u1", "a/1:u2"]);
    assert!(page.2);
    assert_eq!(
        (page.3.as_deref(), page.4.as_deref()),
        (Some("a/1"), Some("u2"))
    );
    let next = ids(ListUploadsQuery {
        key_marker: Some("a/1".into()),
        upload_id_marker: Some("u1".into()),
        ..q(10)
    });
    assert_eq!(next.0, vec!["a/1:u2", "a/2:u1", "b:u9", "c:u1"]);
    let delimited = ids(ListUploadsQuery {
        delimiter: Some("/".into()),
        ..q(2)
    });
    assert_eq!(delimited.0, vec!["b:u9"]);
    assert_eq!(delimited.1, vec!["a/"]);
    assert!(delimited.2);
    assert_eq!(
        (delimited.3.as_deref(), delimited.4.as_deref()),
        (Some("b"), Some("u9"))
    );
}

#[test]
fn listing_delimiter_start_after_and_max_keys() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    let all = [
        "a", "a\0x", "a/b/c", "a/b/d", "a/c", "b", "c/d", "c/e/f", "d",
    ];
    for (i, k) in all.iter().enumerate() {
        meta.ok(put("b", k, "", i as u64));
    }
    let list = |prefix: &str, delimiter: Option<&str>, start_after: Option<&str>, max: usize| {
        let page = meta
            .view()
            .list_objects(
                "b",
                &ListObjectsQuery {
                    prefix: prefix.into(),
                    delimiter: delimiter.map(Into::into),
                    start_after: start_after.map(Into::into),
                    max_keys: max,
                },
            )
            .unwrap();
        (
            page.objects.into_iter().map(|o| o.key).collect::<Vec<_>>(),
            page.common_prefixes,
            page.is_truncated,
            page.next_marker,
        )
    };
    assert_eq!(list("", None, None, 100).0, all.to_vec());
    assert_eq!(
        list("", Some("/"), None, 100),
        (
            vec!["a".to_string(), "a\0x".into(), "b".into(), "d".into()],
            vec!["a/".to_string(), "c/".into()],
            false,
            None
        )
    );
    assert_eq!(
        list("a/", Some("/"), None, 100),
        (
            vec!["a/c".to_string()],
            vec!["a/b/".to_string()],
            false,
            None
        )
    );
    // A common prefix as start_after skips everything under it.
    assert_eq!(
        list("", Some("/"), Some("a/"), 100),
        (
            vec!["b".to_string(), "d".into()],
            vec!["c/".to_string()],
            false,
            None
        )
    );
    // Truncation reports the last entry, key or prefix.
    assert_eq!(
        list("", Some("/"), None, 3),
        (
            vec!["a".to_string(), "a\0x".into()],
            vec!["a/".to_string()],
            true,
            Some("a/".to_string())
        )
    );
    assert_eq!(list("", None, None, 0), (vec![], vec![], false, None));
    assert_eq!(list("", None, Some("c/e/f"), 5).0, vec!["d".to_string()]);
    assert_eq!(list("a\0", None, None, 5).0, vec!["a\0x".to_string()]);
    assert_eq!(list("zz", Some("/"), None, 5).0, Vec::<String>::new());
    // A multi-character delimiter.
    assert_eq!(list("", Some("/b/"), None, 100).1, vec!["a/b/".to_string()]);
}

#[test]
fn tags_placement_nodes_keys_and_work_queue() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k", "v1", 1));
    meta.ok(Command::SetObjectTags {
        bucket: "b".into(),
        key: "k".into(),
        version_id: None,
        tags: vec![tessera_raft::model::Tag {
            key: "t".into(),
            value: "1".into(),
        }],
    });
    assert_eq!(
        meta.view()
            .object("b", "k", None)
            .unwrap()
            .unwrap()
            .tags
            .len(),
        1
    );
    assert_eq!(
        meta.apply(Command::SetObjectTags {
            bucket: "b".into(),
            key: "k".into(),
            version_id: Some("zz".into()),
            tags: vec![],
        }),
        Err(ApplyError::NoSuchVersion)
    );

    let seg = segment(1);
    meta.ok(Command::UpdatePlacement {
        bucket: "b".into(),
        key: "k".into(),
        version_id: "v1".into(),
        object_id: seg.object_id,
        part: seg.part,
        moved: vec![(3, "disk-9".into())],
    });
    let v = meta.view().object("b", "k", None).unwrap().unwrap();
    assert_eq!(v.segments()[0].placement[3], "disk-9");
    // The listing shows the version as before (placement is not listed).
    let page = meta
        .view()
        .list_objects(
            "b",
            &ListObjectsQuery {
                max_keys: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(page.objects[0], ListedObject::from(&v));
    assert!(matches!(
        meta.apply(Command::UpdatePlacement {
            bucket: "b".into(),
            key: "k".into(),
            version_id: "v1".into(),
            object_id: seg.object_id,
            part: seg.part,
            moved: vec![(6, "disk-9".into())],
        }),
        Err(ApplyError::InvalidRequest(_))
    ));

    let node = StorageNode {
        id: "n1".into(),
        site: "dc-a".into(),
        zone: "z".into(),
        address: "/x".into(),
        capacity: 1,
        state: NodeState::Up,
        since: 0,
    };
    meta.ok(Command::PutNode { node });
    meta.ok(Command::SetNodeState {
        id: "n1".into(),
        state: NodeState::Down,
        now: 42,
    });
    let nodes = meta.view().store_records().unwrap();
    assert_eq!((nodes[0].state, nodes[0].since), (NodeState::Down, 42));
    assert_eq!(
        meta.apply(Command::SetNodeState {
            id: "n2".into(),
            state: NodeState::Down,
            now: 1
        }),
        Err(ApplyError::NoSuchNode)
    );

    let key = AccessKey {
        id: "TKx".into(),
        sealed_secret: vec![1],
        name: "x".into(),
        created: 0,
        allow_create_bucket: false,
        admin: false,
    };
    meta.ok(Command::PutAccessKey { key });
    let read = Grant {
        read: true,
        write: false,
        owner: false,
    };
    meta.ok(Command::SetGrant {
        key_id: "TKx".into(),
        bucket: "b".into(),
        grant: read,
    });
    assert_eq!(
        meta.view().grants_of("TKx").unwrap(),
        vec![("b".to_string(), read)]
    );
    meta.ok(Command::DeleteAccessKey { id: "TKx".into() });
    assert!(meta.view().grants_of("TKx").unwrap().is_empty());
    assert!(meta.view().access_key("TKx").unwrap().is_none());
    assert_eq!(
        meta.apply(Command::SetGrant {
            key_id: "TKx".into(),
            bucket: "b".into(),
            grant: read
        }),
        Err(ApplyError::NoSuchAccessKey)
    );

    let item = WorkItem::DeleteSegments {
        segments: vec![segment(5)],
    };
    meta.ok(Command::EnqueueWork { item: item.clone() });
    meta.ok(Command::EnqueueWork { item });
    let ids: Vec<u64> = meta
        .view()
        .deletions(10)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec![1, 2]);
    meta.ok(Command::CompleteWork { ids });
    assert!(meta.view().deletions(10).unwrap().is_empty());
    meta.ok(Command::EnqueueWork {
        item: WorkItem::DeleteSegments { segments: vec![] },
    });
    // Queue ids keep increasing after the queue ran empty.
    assert_eq!(meta.view().deletions(10).unwrap()[0].0, 3);
}

#[test]
fn snapshot_records_round_trip_into_an_empty_database() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    for i in 0..50 {
        meta.ok(put("b", &format!("k{}", i % 7), &format!("v{i}"), i));
    }
    meta.ok(create_upload("b", "u", "up"));
    meta.ok(put_part("b", "u", "up", part(1, 1, 99)));
    meta.ok(delete("b", "k1", None, "m"));
    let records = meta.dump();
    let mut wire = Vec::new();
    for r in &records {
        r.write_to(&mut wire).unwrap();
    }
    let mut reader = wire.as_slice();
    let decoded: Vec<SnapshotRecord> =
        std::iter::from_fn(|| SnapshotRecord::read_from(&mut reader).unwrap()).collect();
    assert_eq!(decoded, records);

    // Install over a member that already holds other state.
    let mut other = Meta::new();
    other.ok(Command::CreateBucket {
        bucket: bucket("stale", Versioning::Unversioned),
    });
    let txn = other.db.begin_write().unwrap();
    snapshot_data::clear_all(&txn).unwrap();
    let n = snapshot_data::import(&txn, decoded.into_iter().map(Ok)).unwrap();
    txn.commit().unwrap();
    assert_eq!(n as usize, records.len());
    assert_eq!(other.dump(), records);
    assert_eq!(
        other
            .view()
            .list_versions(
                "b",
                &ListVersionsQuery {
                    max_keys: 1000,
                    ..Default::default()
                }
            )
            .unwrap(),
        meta.view()
            .list_versions(
                "b",
                &ListVersionsQuery {
                    max_keys: 1000,
                    ..Default::default()
                }
            )
            .unwrap()
    );

    // A truncated stream is an error, not a silent short snapshot.
    let mut short = &wire[..wire.len() - 1];
    let result: Result<Vec<_>, _> =
        std::iter::from_fn(|| SnapshotRecord::read_from(&mut short).transpose()).collect();
    assert!(result.is_err());
}

fn node_record(id: u64, stores: &[&str]) -> NodeRecord {
    NodeRecord {
        id,
        address: format!("127.0.0.1:{}", 7400 + id),
        site: None,
        zone: Some(format!("z{id}")),
        stores: stores.iter().map(|s| (*s).to_owned()).collect(),
        capacity: 0,
        used: 0,
        state: NodeState::Up,
        since: 1,
        heartbeat: 1,
    }
}

#[test]
fn node_records_register_report_drain_and_remove() {
    let mut meta = Meta::new();
    meta.ok(Command::RegisterNode {
        node: node_record(1, &["st-a"]),
    });
    meta.ok(Command::RegisterNode {
        node: node_record(2, &["st-b"]),
    });
    let report = |id, reached, state| NodeReport {
        id,
        reached,
        state,
        capacity: 100,
        used: 10,
    };
    // Node 1 answered, node 2 did not and is judged suspect; a report
    // naming an unknown node is ignored.
    meta.ok(Command::ReportNodes {
        reports: vec![
            report(1, true, NodeState::Up),
            report(2, false, NodeState::Suspect),
            report(9, true, NodeState::Up),
        ],
        now: 50,
    });
    let nodes = meta.view().nodes().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        (
            nodes[0].state,
            nodes[0].since,
            nodes[0].heartbeat,
            nodes[0].used
        ),
        (NodeState::Up, 1, 50, 10)
    );
    assert_eq!(
        (
            nodes[1].state,
            nodes[1].since,
            nodes[1].heartbeat,
            nodes[1].used
        ),
        (NodeState::Suspect, 50, 1, 0)
    );
    // Registering again moves the node and changes its stores, keeping
    // its health.
    let mut moved = node_record(2, &["st-b", "st-c"]);
    moved.address = "10.0.0.2:7402".into();
    moved.state = NodeState::Up;
    meta.ok(Command::RegisterNode { node: moved });
    let nodes = meta.view().nodes().unwrap();
    assert_eq!(nodes[1].address, "10.0.0.2:7402");
    assert_eq!(nodes[1].stores, vec!["st-b", "st-c"]);
    assert_eq!((nodes[1].state, nodes[1].since), (NodeState::Suspect, 50));
    // A drain sticks through reports until it is ended.
    meta.ok(Command::SetNodeDraining {
        id: 1,
        draining: true,
        now: 60,
    });
    meta.ok(Command::ReportNodes {
        reports: vec![report(1, false, NodeState::Down)],
        now: 70,
    });
    let nodes = meta.view().nodes().unwrap();
    assert_eq!((nodes[0].state, nodes[0].since), (NodeState::Draining, 60));
    meta.ok(Command::SetNodeDraining {
        id: 1,
        draining: false,
        now: 80,
    });
    assert_eq!(meta.view().nodes().unwrap()[0].state, NodeState::Up);
    assert_eq!(
        meta.apply(Command::SetNodeDraining {
            id: 7,
            draining: true,
            now: 1
        }),
        Err(ApplyError::NoSuchNode)
    );
    meta.ok(Command::RemoveNode { id: 1 });
    let nodes = meta.view().nodes().unwrap();
    assert_eq!(nodes.iter().map(|n| n.id).collect::<Vec<_>>(), vec![2]);
}
