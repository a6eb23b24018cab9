//! The state machine's side of a bucket's access settings (see
//! [`crate::access`]): the policy and the public access block.

use super::Step;
use crate::access::{self, PublicAccessBlock};
use crate::command::ApplyError;
use crate::model::Bucket;

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
