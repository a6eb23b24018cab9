//! Object lock in the state machine: locked versions refuse removal (and a
//! refusal changes nothing, so their segments are never queued for
//! deletion), retentions end at the time the deleting command carries,
//! default retentions never start before an earlier write's time, uploads
//! carry their lock to the completed version, and lock buckets keep
//! versioning on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model_support;

use std::collections::BTreeMap;

use model_support::*;
use tessera_raft::command::{ApplyError, BucketUpdate, Command, CommandResponse};
use tessera_raft::lock;
use tessera_raft::model::{
    DefaultRetention, ObjectLock, ObjectLockConfig, Retention, RetentionMode, RetentionPeriod,
    Versioning,
};

const DAY: i64 = 86_400_000;

/// A database with the lock bucket `b` (default retention as given).
fn lock_bucket(default_retention: Option<DefaultRetention>) -> Meta {
    let mut meta = Meta::new();
    let mut b = bucket("b", Versioning::Enabled);
    let config = ObjectLockConfig { default_retention };
    b.settings = BTreeMap::from([(
        lock::OBJECT_LOCK_SETTING.to_owned(),
        lock::encode_config(&config).unwrap(),
    )]);
    meta.ok(Command::CreateBucket { bucket: b });
    meta
}

/// `b/k` version `version_id` written at `seed` with `lock`.
fn locked_put(version_id: &str, seed: u64, lock: ObjectLock) -> Command {
    Command::PutLockedObject {
        version: version("b", "k", version_id, seed),
        precondition: None,
        lock,
    }
}

fn retained(mode: RetentionMode, until: i64) -> ObjectLock {
    ObjectLock {
        retention: Some(Retention {
            mode,
            retain_until: until,
        }),
        legal_hold: None,
    }
}

fn delete_at(version_id: &str, now: i64) -> Command {
    Command::DeleteObject {
        bucket: "b".into(),
        key: "k".into(),
        version_id: Some(version_id.into()),
        marker_version_id: "marker".into(),
        now,
        owner: "TKowner".into(),
        precondition: None,
    }
}

fn bypass_delete_at(version_id: &str, now: i64) -> Command {
    Command::DeleteObjectBypassingGovernance {
        bucket: "b".into(),
        key: "k".into(),
        version_id: version_id.into(),
        now,
        precondition: None,
    }
}

fn denied() -> ApplyError {
    ApplyError::AccessDenied(lock::PROTECTED.to_owned())
}

#[test]
fn a_locked_version_refuses_removal_without_a_trace_until_its_retention_ends() {
    let mut meta = lock_bucket(None);
    meta.ok(locked_put(
        "v1",
        10,
        retained(RetentionMode::Compliance, 1000),
    ));
    let before = meta.dump();
    for cmd in [delete_at("v1", 999), bypass_delete_at("v1", 999)] {
        assert_eq!(meta.apply(cmd), Err(denied()));
        assert_eq!(meta.dump(), before, "a refusal changes nothing");
    }
    assert!(meta.view().deletions(10).unwrap().is_empty());
    // A delete marker is always allowed.
    meta.ok(delete("b", "k", None, "marker"));
    // At the retention's end the version goes, its segment queued for GC.
    meta.ok(delete_at("v1", 1000));
    assert_eq!(meta.view().deletions(10).unwrap().len(), 1);
    assert_eq!(
        meta.view().object_lock("b", "k", "v1").unwrap(),
        ObjectLock::default(),
        "the lock goes with its version"
    );
}

#[test]
fn governance_yields_to_the_bypass_and_legal_holds_to_nothing() {
    let mut meta = lock_bucket(None);
    meta.ok(locked_put(
        "v1",
        10,
        retained(RetentionMode::Governance, 1000),
    ));
    assert_eq!(meta.apply(delete_at("v1", 20)), Err(denied()));
    meta.ok(Command::SetObjectLegalHold {
        bucket: "b".into(),
        key: "k".into(),
        version_id: Some("v1".into()),
        on: true,
    });
    assert_eq!(meta.apply(bypass_delete_at("v1", 5000)), Err(denied()));
    meta.ok(Command::SetObjectLegalHold {
        bucket: "b".into(),
        key: "k".into(),
        version_id: None,
        on: false,
    });
    meta.ok(bypass_delete_at("v1", 20));
    assert!(meta.view().object("b", "k", Some("v1")).unwrap().is_none());
}

#[test]
fn retention_changes_are_checked_at_the_commands_time() {
    let mut meta = lock_bucket(None);
    meta.ok(locked_put(
        "v1",
        10,
        retained(RetentionMode::Compliance, 1000),
    ));
    let set = |until: i64, now: i64| Command::SetObjectRetention {
        bucket: "b".into(),
        key: "k".into(),
        version_id: Some("v1".into()),
        retention: Some(Retention {
            mode: RetentionMode::Governance,
            retain_until: until,
        }),
        bypass_governance: true,
        now,
    };
    assert_eq!(meta.apply(set(2000, 999)), Err(denied()));
    meta.ok(set(2000, 1000));
    assert_eq!(
        meta.view().object_lock("b", "k", "v1").unwrap(),
        retained(RetentionMode::Governance, 2000)
    );
}

#[test]
fn default_retention_starts_no_earlier_than_a_previous_write() {
    let mut meta = lock_bucket(Some(DefaultRetention {
        mode: RetentionMode::Governance,
        period: RetentionPeriod::Days(1),
    }));
    meta.ok(put("b", "k", "v1", 500));
    assert_eq!(
        meta.view().object_lock("b", "k", "v1").unwrap(),
        retained(RetentionMode::Governance, 500 + DAY)
    );
    // A gateway whose clock is behind writes at 100: its default retention
    // still starts at 500.
    meta.ok(put("b", "k", "v2", 100));
    assert_eq!(
        meta.view().object_lock("b", "k", "v2").unwrap(),
        retained(RetentionMode::Governance, 500 + DAY)
    );
    // An explicit retention or legal hold is kept as asked.
    let hold = ObjectLock {
        retention: None,
        legal_hold: Some(true),
    };
    meta.ok(locked_put("v3", 600, hold));
    let got = meta.view().object_lock("b", "k", "v3").unwrap();
    assert_eq!(got.legal_hold, Some(true));
    assert_eq!(got.retention.unwrap().retain_until, 600 + DAY);
}

#[test]
fn an_upload_carries_its_lock_to_the_completed_version() {
    let mut meta = lock_bucket(None);
    let Command::CreateMultipartUpload { upload } = create_upload("b", "k", "u1") else {
        unreachable!()
    };
    meta.ok(Command::CreateLockedMultipartUpload {
        upload,
        lock: retained(RetentionMode::Compliance, 9000),
    });
    meta.ok(put_part("b", "k", "u1", part(1, 10, 7)));
    let CommandResponse::ObjectStored { version } =
        meta.ok(complete("b", "k", "u1", vec![(1, etag_of(7))], "v9", 0))
    else {
        panic!("not stored")
    };
    assert_eq!(
        meta.view()
            .object_lock("b", "k", &version.version_id)
            .unwrap(),
        retained(RetentionMode::Compliance, 9000)
    );
    assert_eq!(
        meta.apply(delete_at(&version.version_id, 20)),
        Err(denied())
    );
}

#[test]
fn lock_requests_need_a_lock_bucket_and_lock_buckets_stay_versioned() {
    let mut meta = Meta::with_bucket("plain", Versioning::Unversioned);
    let asked = retained(RetentionMode::Governance, 10);
    let refused = meta.apply(Command::PutLockedObject {
        version: version("plain", "k", "v", 1),
        precondition: None,
        lock: asked,
    });
    assert!(matches!(refused, Err(ApplyError::InvalidRequest(_))));
    let config = |name: &str| Command::UpdateBucket {
        name: name.into(),
        update: BucketUpdate::ObjectLock(ObjectLockConfig::default()),
    };
    assert!(matches!(
        meta.apply(config("plain")),
        Err(ApplyError::InvalidBucketState(_))
    ));
    meta.ok(Command::UpdateBucket {
        name: "plain".into(),
        update: BucketUpdate::Versioning(Versioning::Enabled),
    });
    meta.ok(config("plain"));
    assert!(matches!(
        meta.apply(Command::UpdateBucket {
            name: "plain".into(),
            update: BucketUpdate::Versioning(Versioning::Suspended),
        }),
        Err(ApplyError::InvalidBucketState(_))
    ));
    // The setting cannot be removed or forged through the generic update.
    assert!(matches!(
        meta.apply(Command::UpdateBucket {
            name: "plain".into(),
            update: BucketUpdate::Setting(lock::OBJECT_LOCK_SETTING.into(), None),
        }),
        Err(ApplyError::InvalidRequest(_))
    ));
    // A lock bucket created without versioning is refused.
    let mut b = bucket("unversioned", Versioning::Unversioned);
    b.settings.insert(
        lock::OBJECT_LOCK_SETTING.into(),
        lock::encode_config(&ObjectLockConfig::default()).unwrap(),
    );
    assert!(matches!(
        meta.apply(Command::CreateBucket { bucket: b }),
        Err(ApplyError::InvalidBucketState(_))
    ));
}
