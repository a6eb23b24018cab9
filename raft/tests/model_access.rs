//! Access settings in the state machine: a public policy is refused while
//! the public access block blocks public policies, the access settings
//! change only through their own updates, object ACLs belong to one
//! version (an overwrite or a delete drops them), and ownership controls
//! refuse ACLs granting anything beyond the owner, a write's ACL included
//! (refused whole, nothing stored).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model_support;

use model_support::*;
use tessera_raft::access::{
    self, Acl, AclGrant, Grantee, ObjectOwnership, Permission, PublicAccessBlock,
};
use tessera_raft::command::{ApplyError, BucketUpdate, Command};
use tessera_raft::model::Versioning;

fn update(update: BucketUpdate) -> Command {
    Command::UpdateBucket {
        name: "b".into(),
        update,
    }
}

fn policy(public: bool) -> Command {
    update(BucketUpdate::Policy {
        document: Some(format!("{{\"public\":{public}}}")),
        public,
    })
}

fn acl(grantee: Grantee) -> Acl {
    Acl {
        owner: "TKowner".into(),
        grants: vec![AclGrant {
            grantee,
            permission: Permission::Read,
        }],
    }
}

fn set_acl(acl: Acl) -> Command {
    Command::SetObjectAcl {
        bucket: "b".into(),
        key: "k".into(),
        version_id: None,
        acl,
    }
}

/// Applies `cmd`, which must be refused with `expected` and change nothing.
fn refused(meta: &mut Meta, cmd: Command, expected: ApplyError) {
    let before = meta.dump();
    assert_eq!(meta.apply(cmd), Err(expected));
    assert_eq!(meta.dump(), before);
}

fn stored_acl(meta: &Meta, version_id: &str) -> Option<Acl> {
    meta.view().object_acl("b", "k", version_id).unwrap()
}

#[test]
fn block_public_policy_is_decided_by_the_state_machine() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(policy(true));
    let block = PublicAccessBlock {
        block_public_policy: true,
        ..PublicAccessBlock::default()
    };
    meta.ok(update(BucketUpdate::PublicAccessBlock(Some(block))));
    // The existing public policy stays; a new public one is refused.
    let b = meta.view().bucket("b").unwrap().unwrap();
    assert_eq!(
        access::bucket_policy(&b).unwrap().as_deref(),
        Some("{\"public\":true}")
    );
    assert_eq!(access::public_access_block(&b).unwrap(), Some(block));
    refused(
        &mut meta,
        policy(true),
        ApplyError::AccessDenied(access::PUBLIC_POLICY_BLOCKED.into()),
    );
    meta.ok(policy(false));
    meta.ok(update(BucketUpdate::Policy {
        document: None,
        public: false,
    }));
    let b = meta.view().bucket("b").unwrap().unwrap();
    assert_eq!(access::bucket_policy(&b).unwrap(), None);
    for name in ["policy", "public-access-block", "acl", "ownership"] {
        let cmd = update(BucketUpdate::Setting(name.into(), None));
        assert!(
            matches!(meta.apply(cmd), Err(ApplyError::InvalidRequest(_))),
            "{name}"
        );
    }
}

#[test]
fn object_acls_belong_to_one_version() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(put("b", "k", "ignored", 1));
    meta.ok(set_acl(acl(Grantee::AllUsers)));
    assert_eq!(stored_acl(&meta, "null"), Some(acl(Grantee::AllUsers)));
    // Overwriting the null version gives the new one no ACL.
    meta.ok(put("b", "k", "ignored", 2));
    assert_eq!(stored_acl(&meta, "null"), None);
    meta.ok(set_acl(acl(Grantee::AllUsers)));
    meta.ok(delete("b", "k", None, "m"));
    assert_eq!(stored_acl(&meta, "null"), None);
    assert_eq!(
        meta.apply(set_acl(acl(Grantee::AllUsers))),
        Err(ApplyError::NoSuchKey)
    );
}

#[test]
fn bucket_owner_enforced_refuses_acls_for_others() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k", "v1", 1));
    meta.ok(update(BucketUpdate::Ownership(Some(
        ObjectOwnership::BucketOwnerEnforced,
    ))));
    refused(
        &mut meta,
        set_acl(acl(Grantee::AllUsers)),
        ApplyError::AclNotSupported,
    );
    refused(
        &mut meta,
        update(BucketUpdate::Acl(acl(Grantee::AuthenticatedUsers))),
        ApplyError::AclNotSupported,
    );
    let write = |grantee: Grantee| Command::PutObjectWithAcl {
        version: version("b", "k", "v2", 2),
        precondition: None,
        lock: None,
        acl: acl(grantee),
    };
    refused(
        &mut meta,
        write(Grantee::AllUsers),
        ApplyError::AclNotSupported,
    );
    let owner_only = acl(Grantee::Key("TKowner".into()));
    meta.ok(write(Grantee::Key("TKowner".into())));
    assert_eq!(stored_acl(&meta, "v2"), Some(owner_only.clone()));
    assert_eq!(stored_acl(&meta, "v1"), None);
    meta.ok(update(BucketUpdate::Acl(owner_only)));
    meta.ok(update(BucketUpdate::Ownership(None)));
    meta.ok(set_acl(acl(Grantee::AllUsers)));
    assert_eq!(stored_acl(&meta, "v2"), Some(acl(Grantee::AllUsers)));
}

/// [`create_upload`] of `b/k` with `acl`.
fn create_upload_with_acl(upload_id: &str, acl: Acl) -> Command {
    let Command::CreateMultipartUpload { upload } = create_upload("b", "k", upload_id) else {
        unreachable!("create_upload builds CreateMultipartUpload");
    };
    Command::CreateMultipartUploadWithAcl {
        upload,
        lock: None,
        acl,
    }
}

#[test]
fn an_upload_carries_its_acl_to_the_completed_version() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    let before = meta.dump();
    meta.ok(create_upload_with_acl("u0", acl(Grantee::AllUsers)));
    meta.ok(Command::AbortMultipartUpload {
        bucket: "b".into(),
        key: "k".into(),
        upload_id: "u0".into(),
    });
    assert_eq!(
        meta.dump(),
        before,
        "an aborted upload leaves no ACL behind"
    );

    meta.ok(create_upload_with_acl("u1", acl(Grantee::AllUsers)));
    meta.ok(put_part("b", "k", "u1", part(1, 10, 1)));
    meta.ok(complete("b", "k", "u1", vec![(1, etag_of(1))], "v1", 5));
    assert_eq!(stored_acl(&meta, "v1"), Some(acl(Grantee::AllUsers)));

    meta.ok(update(BucketUpdate::Ownership(Some(
        ObjectOwnership::BucketOwnerEnforced,
    ))));
    refused(
        &mut meta,
        create_upload_with_acl("u2", acl(Grantee::AllUsers)),
        ApplyError::AclNotSupported,
    );
}
