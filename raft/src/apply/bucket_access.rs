//! The state machine's side of access settings (see [`crate::access`]):
//! a bucket's policy, public access block, ACL and ownership controls,
//! and the ACLs of object versions.

use super::{Applier, Step};
use crate::access::{self, Acl, ObjectOwnership, PublicAccessBlock};
use crate::command::{ApplyError, CommandResponse, Precondition};
use crate::model::{Bucket, MultipartUpload, ObjectLock, ObjectVersion};
use crate::tables;

/// Sets (or with `None` removes) the bucket policy; a `public` one is
/// refused while the public access block blocks public policies.
pub(super) fn set_policy(bucket: &mut Bucket, document: Option<&str>, public: bool) -> Step<()> {
    let Some(document) = document else {
        bucket.settings.remove(access::POLICY_SETTING);
        return Ok(());
    };
    let blocked = access::public_access_block(bucket)?.is_some_and(|b| b.block_public_policy);
    if public && blocked {
        return Err(ApplyError::AccessDenied(access::PUBLIC_POLICY_BLOCKED.into()).into());
    }
    bucket.settings.insert(
        access::POLICY_SETTING.to_owned(),
        document.as_bytes().to_vec(),
    );
    Ok(())
}

/// Sets (or with `None` removes) the public access block.
pub(super) fn set_public_access_block(
    bucket: &mut Bucket,
    block: Option<PublicAccessBlock>,
) -> Step<()> {
    match block {
        Some(block) => {
            bucket.settings.insert(
                access::PUBLIC_ACCESS_BLOCK_SETTING.to_owned(),
                access::encode_public_access_block(&block)?,
            );
        }
        None => {
            bucket.settings.remove(access::PUBLIC_ACCESS_BLOCK_SETTING);
        }
    }
    Ok(())
}

/// Refuses an ACL granting anything beyond the bucket's owner while
/// ownership controls disable ACLs.
fn check_acl_allowed(bucket: &Bucket, acl: &Acl) -> Step<()> {
    if access::acls_disabled(bucket)? && !acl.is_owner_only(&bucket.owner) {
        return Err(ApplyError::AclNotSupported.into());
    }
    Ok(())
}

/// Replaces the bucket ACL.
pub(super) fn set_bucket_acl(bucket: &mut Bucket, acl: &Acl) -> Step<()> {
    check_acl_allowed(bucket, acl)?;
    bucket
        .settings
        .insert(access::ACL_SETTING.to_owned(), access::encode_acl(acl)?);
    Ok(())
}

/// Sets (or with `None` removes) the ownership controls.
pub(super) fn set_ownership(bucket: &mut Bucket, ownership: Option<ObjectOwnership>) -> Step<()> {
    let shared = access::bucket_acl(bucket)?.is_some_and(|acl| !acl.is_owner_only(&bucket.owner));
    if ownership == Some(ObjectOwnership::BucketOwnerEnforced) && shared {
        return Err(ApplyError::AclWithObjectOwnership.into());
    }
    match ownership {
        Some(o) => {
            bucket.settings.insert(
                access::OWNERSHIP_SETTING.to_owned(),
                access::encode_ownership(o)?,
            );
        }
        None => {
            bucket.settings.remove(access::OWNERSHIP_SETTING);
        }
    }
    Ok(())
}

impl Applier<'_> {
    /// `SetObjectAcl`: replaces the ACL of the addressed version.
    pub(super) fn set_object_acl(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        acl: &Acl,
    ) -> Step<CommandResponse> {
        check_acl_allowed(&self.bucket(bucket)?, acl)?;
        let (_, version) = self.addressed_version(bucket, key, version_id)?;
        self.write_object_acl(bucket, key, &version.version_id, acl)?;
        Ok(CommandResponse::Done)
    }

    /// Stores the ACL of a version.
    pub(super) fn write_object_acl(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: &str,
        acl: &Acl,
    ) -> Step<()> {
        let k = tables::version_id_key(bucket, key, version_id);
        self.object_acls
            .insert(k.as_slice(), access::encode_acl(acl)?.as_slice())?;
        Ok(())
    }

    /// `CreateMultipartUploadWithAcl`: creates the upload and records the
    /// ACL its version is to get.
    pub(super) fn create_upload_with_acl(
        &mut self,
        upload: &MultipartUpload,
        lock: Option<&ObjectLock>,
        acl: &Acl,
    ) -> Step<CommandResponse> {
        check_acl_allowed(&self.bucket(&upload.bucket)?, acl)?;
        let response = self.create_upload(upload, lock)?;
        let k = tables::upload_key(&upload.bucket, &upload.key, &upload.upload_id);
        self.upload_acls
            .insert(k.as_slice(), access::encode_acl(acl)?.as_slice())?;
        Ok(response)
    }

    /// The ACL an upload's version is to get, if its creation named one.
    pub(super) fn upload_acl(&self, bucket: &str, key: &str, upload_id: &str) -> Step<Option<Acl>> {
        super::record(
            &self.upload_acls,
            &tables::upload_key(bucket, key, upload_id),
        )
    }

    /// Drops the ACL of an upload that goes.
    pub(super) fn forget_upload_acl(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Step<()> {
        let k = tables::upload_key(bucket, key, upload_id);
        self.upload_acls.remove(k.as_slice())?;
        Ok(())
    }

    /// `PutObjectWithAcl`: stores the version, then its ACL.
    pub(super) fn put_object_with_acl(
        &mut self,
        log_index: u64,
        version: &ObjectVersion,
        precondition: Option<&Precondition>,
        lock: Option<&ObjectLock>,
        acl: &Acl,
    ) -> Step<CommandResponse> {
        check_acl_allowed(&self.bucket(&version.bucket)?, acl)?;
        let response = self.put_object(log_index, version, precondition, lock)?;
        if let CommandResponse::ObjectStored { version: stored } = &response {
            self.write_object_acl(&stored.bucket, &stored.key, &stored.version_id, acl)?;
        }
        Ok(response)
    }

    /// Drops the ACL of a version that goes (or is replaced).
    pub(super) fn forget_acl(&mut self, bucket: &str, key: &str, version_id: &str) -> Step<()> {
        let k = tables::version_id_key(bucket, key, version_id);
        self.object_acls.remove(k.as_slice())?;
        Ok(())
    }
}
