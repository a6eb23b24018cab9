//! Lifecycle in the state machine: the configuration kept in the bucket's
//! settings, and the worker's actions made only on versions still as the
//! worker saw them (a refusal changes nothing), through the same removal
//! as a client's delete (data queued for deletion), never on a locked version.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model_support;

use model_support::*;
use tessera_raft::command::{ApplyError, BucketUpdate, Command};
use tessera_raft::lifecycle::{
    self, Conditions, Expiration, LifecycleAction, LifecycleConfig, LifecycleRule, RuleFilter,
    VersionStamp,
};
use tessera_raft::listing::ListVersionsQuery;
use tessera_raft::model::{Tag, Versioning};

fn config() -> LifecycleConfig {
    LifecycleConfig {
        rules: vec![LifecycleRule {
            id: "r".into(),
            enabled: true,
            filter: RuleFilter::Filter {
                and: false,
                conditions: Conditions::default(),
            },
            expiration: Some(Expiration::Days(1)),
            noncurrent: None,
            abort_upload_days: None,
        }],
    }
}

fn act(action: LifecycleAction) -> Command {
    Command::ApplyLifecycle {
        bucket: "b".into(),
        key: "k".into(),
        action,
        marker_version_id: "m".into(),
        now: 100,
    }
}

fn stamp(meta: &Meta, version_id: &str) -> VersionStamp {
    let v = meta
        .view()
        .object("b", "k", Some(version_id))
        .unwrap()
        .unwrap();
    VersionStamp::of(&v)
}

fn ids(meta: &Meta) -> Vec<String> {
    let page = meta
        .view()
        .list_versions(
            "b",
            &ListVersionsQuery {
                max_keys: 100,
                ..Default::default()
            },
        )
        .unwrap();
    page.versions
        .into_iter()
        .map(|(v, _)| v.version_id)
        .collect()
}

#[test]
fn the_configuration_lives_in_the_settings_and_only_its_command_changes_it() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(Command::SetBucketLifecycle {
        bucket: "b".into(),
        config: Some(config()),
    });
    let bucket = meta.view().bucket("b").unwrap().unwrap();
    assert_eq!(lifecycle::bucket_config(&bucket).unwrap(), Some(config()));
    let sneaky = Command::UpdateBucket {
        name: "b".into(),
        update: BucketUpdate::Setting(lifecycle::LIFECYCLE_SETTING.into(), None),
    };
    assert!(matches!(
        meta.apply(sneaky),
        Err(ApplyError::InvalidRequest(_))
    ));
    meta.ok(Command::SetBucketLifecycle {
        bucket: "b".into(),
        config: None,
    });
    let bucket = meta.view().bucket("b").unwrap().unwrap();
    assert_eq!(lifecycle::bucket_config(&bucket).unwrap(), None);
    let missing = Command::SetBucketLifecycle {
        bucket: "nope".into(),
        config: None,
    };
    assert_eq!(meta.apply(missing), Err(ApplyError::NoSuchBucket));
}

#[test]
fn expiry_needs_the_current_version_unchanged() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(put("b", "k", "null", 5));
    let seen = stamp(&meta, "null");
    // Overwritten since (same id "null", other time): refused, nothing changes.
    meta.ok(put("b", "k", "null", 6));
    let before = meta.dump();
    assert_eq!(
        meta.apply(act(LifecycleAction::ExpireCurrent(seen))),
        Err(ApplyError::PreconditionFailed)
    );
    assert_eq!(meta.dump(), before);
    // Tagged since: refused too (a tag filter may no longer match).
    let seen = stamp(&meta, "null");
    meta.ok(Command::SetObjectTags {
        bucket: "b".into(),
        key: "k".into(),
        version_id: None,
        tags: vec![Tag {
            key: "keep".into(),
            value: "yes".into(),
        }],
    });
    assert_eq!(
        meta.apply(act(LifecycleAction::ExpireCurrent(seen))),
        Err(ApplyError::PreconditionFailed)
    );
    // As seen: removed, its data queued for deletion like a client's delete.
    let queued = meta.view().deletions(usize::MAX).unwrap().len();
    let seen = stamp(&meta, "null");
    meta.ok(act(LifecycleAction::ExpireCurrent(seen)));
    assert!(ids(&meta).is_empty());
    assert_eq!(meta.view().deletions(usize::MAX).unwrap().len(), queued + 1);
}

#[test]
fn versioned_expiry_adds_a_marker_and_noncurrent_removal_checks_its_place() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k", "v1", 1));
    meta.ok(put("b", "k", "v2", 2));
    meta.ok(act(LifecycleAction::ExpireCurrent(stamp(&meta, "v2"))));
    assert_eq!(ids(&meta), ["m", "v2", "v1"]);
    let latest = meta.view().object("b", "k", None).unwrap().unwrap();
    assert!(latest.is_delete_marker());
    assert_eq!(latest.owner, "TKowner");

    // v1 has one noncurrent version newer than it (v2): keeping two refuses.
    let v1 = stamp(&meta, "v1");
    let keep_two = LifecycleAction::RemoveNoncurrent {
        version: v1.clone(),
        keep: 2,
    };
    assert_eq!(
        meta.apply(act(keep_two)),
        Err(ApplyError::PreconditionFailed)
    );
    meta.ok(act(LifecycleAction::RemoveNoncurrent {
        version: v1,
        keep: 1,
    }));
    assert_eq!(ids(&meta), ["m", "v2"]);

    // The marker is not alone yet; once v2 is gone it is.
    let marker = LifecycleAction::RemoveExpiredMarker {
        version_id: "m".into(),
    };
    assert_eq!(
        meta.apply(act(marker.clone())),
        Err(ApplyError::PreconditionFailed)
    );
    // A version that became current again is not removed as noncurrent.
    meta.ok(delete("b", "k", Some("m"), "unused"));
    let v2 = stamp(&meta, "v2");
    let current = LifecycleAction::RemoveNoncurrent {
        version: v2,
        keep: 0,
    };
    assert_eq!(
        meta.apply(act(current)),
        Err(ApplyError::PreconditionFailed)
    );
    assert_eq!(ids(&meta), ["v2"]);
    meta.ok(act(LifecycleAction::ExpireCurrent(stamp(&meta, "v2"))));
    let v2 = stamp(&meta, "v2");
    meta.ok(act(LifecycleAction::RemoveNoncurrent {
        version: v2,
        keep: 0,
    }));
    assert_eq!(ids(&meta), ["m"]);
    meta.ok(act(marker));
    assert!(ids(&meta).is_empty());
}

#[test]
fn locked_versions_are_refused() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k", "v1", 1));
    meta.ok(Command::UpdateBucket {
        name: "b".into(),
        update: BucketUpdate::ObjectLock(Default::default()),
    });
    meta.ok(Command::SetObjectLegalHold {
        bucket: "b".into(),
        key: "k".into(),
        version_id: Some("v1".into()),
        on: true,
    });
    meta.ok(put("b", "k", "v2", 2));
    let before = meta.dump();
    let remove = LifecycleAction::RemoveNoncurrent {
        version: stamp(&meta, "v1"),
        keep: 0,
    };
    assert!(matches!(
        meta.apply(act(remove)),
        Err(ApplyError::AccessDenied(_))
    ));
    assert_eq!(meta.dump(), before);
}

#[test]
fn suspended_expiry_replaces_the_null_version_with_a_marker() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k", "v1", 1));
    meta.ok(Command::UpdateBucket {
        name: "b".into(),
        update: BucketUpdate::Versioning(Versioning::Suspended),
    });
    meta.ok(put("b", "k", "ignored", 2));
    let queued = meta.view().deletions(usize::MAX).unwrap().len();
    meta.ok(act(LifecycleAction::ExpireCurrent(stamp(&meta, "null"))));
    assert_eq!(ids(&meta), ["null", "v1"]);
    let latest = meta.view().object("b", "k", None).unwrap().unwrap();
    assert!(latest.is_delete_marker());
    // The null version's data went with it.
    assert_eq!(meta.view().deletions(usize::MAX).unwrap().len(), queued + 1);
    let gone = Command::ApplyLifecycle {
        bucket: "nope".into(),
        key: "k".into(),
        action: LifecycleAction::RemoveExpiredMarker {
            version_id: "null".into(),
        },
        marker_version_id: "m".into(),
        now: 100,
    };
    assert_eq!(meta.apply(gone), Err(ApplyError::NoSuchBucket));
}
