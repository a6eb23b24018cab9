//! Where a bucket keeps its access settings: the bucket policy (a JSON
//! document the gateway parses and evaluates) and the public access block,
//! both in [`Bucket::settings`].
//!
//! Both change only through their own [`BucketUpdate`](crate::command::BucketUpdate)
//! variants, never as a plain named setting, so the one check that must
//! not race is made by the state machine: a policy the gateway judged
//! public is refused while the bucket's public access block blocks public
//! policies (`BlockPublicPolicy`).

use serde::{Deserialize, Serialize};

use crate::error::MetaError;
use crate::model::Bucket;
use crate::tables::{decode, encode};

/// The [`Bucket::settings`] entry holding the bucket policy (UTF-8 JSON,
/// as the client sent it).
pub const POLICY_SETTING: &str = "policy";

/// The [`Bucket::settings`] entry holding the [`PublicAccessBlock`]
/// (postcard-encoded).
pub const PUBLIC_ACCESS_BLOCK_SETTING: &str = "public-access-block";

/// The message S3 gives when `BlockPublicPolicy` refuses a policy.
pub const PUBLIC_POLICY_BLOCKED: &str = "User is not authorized to perform this operation because public policies are blocked by the BlockPublicPolicy block public access setting.";

/// A bucket's public access block (`PutPublicAccessBlock`), S3's four flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PublicAccessBlock {
    /// Refuse requests that set public ACLs.
    pub block_public_acls: bool,
    /// Ignore public ACLs when authorizing.
    pub ignore_public_acls: bool,
    /// Refuse bucket policies that grant public access.
    pub block_public_policy: bool,
    /// Serve only the owner's account while the bucket policy is public.
    pub restrict_public_buckets: bool,
}

/// Whether `name` is one of the settings only their own updates may change.
pub fn is_access_setting(name: &str) -> bool {
    name == POLICY_SETTING || name == PUBLIC_ACCESS_BLOCK_SETTING
}

/// The bucket policy document, `None` without one.
pub fn bucket_policy(bucket: &Bucket) -> Result<Option<String>, MetaError> {
    bucket
        .settings
        .get(POLICY_SETTING)
        .map(|bytes| {
            String::from_utf8(bytes.clone())
                .map_err(|_| MetaError::Encoding("stored bucket policy is not utf-8".into()))
        })
        .transpose()
}

/// The bucket's public access block, `None` without one.
pub fn public_access_block(bucket: &Bucket) -> Result<Option<PublicAccessBlock>, MetaError> {
    bucket
        .settings
        .get(PUBLIC_ACCESS_BLOCK_SETTING)
        .map(|bytes| decode(bytes))
        .transpose()
}

/// The stored form of a public access block.
pub fn encode_public_access_block(block: &PublicAccessBlock) -> Result<Vec<u8>, MetaError> {
    encode(block)
}
