//! Where a bucket keeps its access settings: the bucket policy (a JSON
//! document the gateway parses and evaluates), the public access block,
//! the bucket ACL and the ownership controls, all in [`Bucket::settings`];
//! and the ACL model, also of object versions (their own table,
//! `object_acls`).
//!
//! Both change only through their own [`BucketUpdate`](crate::command::BucketUpdate)
//! variants, never as a plain named setting, so the one check that must
//! not race is made by the state machine: a policy the gateway judged
//! public is refused while the bucket's public access block blocks public
//! policies (`BlockPublicPolicy`), and an ACL granting anything to others
//! is refused while ownership controls disable ACLs (`BucketOwnerEnforced`).

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
    [
        POLICY_SETTING,
        PUBLIC_ACCESS_BLOCK_SETTING,
        ACL_SETTING,
        OWNERSHIP_SETTING,
    ]
    .contains(&name)
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

/// The [`Bucket::settings`] entry holding the bucket's [`Acl`] (postcard).
pub const ACL_SETTING: &str = "acl";

/// The [`Bucket::settings`] entry holding the bucket's [`ObjectOwnership`]
/// (postcard).
pub const OWNERSHIP_SETTING: &str = "ownership";

/// Who an ACL grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// An access key (its id is the canonical user id S3 shows).
    Key(String),
    /// Everyone, unsigned requests included (`AllUsers`).
    AllUsers,
    /// Every signed request (`AuthenticatedUsers`).
    AuthenticatedUsers,
}

/// What an ACL grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    /// Everything below.
    FullControl,
    /// Read the object, list the bucket.
    Read,
    /// Write objects into the bucket.
    Write,
    /// Read the ACL.
    ReadAcp,
    /// Change the ACL.
    WriteAcp,
}

/// One ACL grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclGrant {
    /// Who.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

/// An access control list of a bucket or an object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// The owner's access key id.
    pub owner: String,
    /// The grants.
    pub grants: Vec<AclGrant>,
}

impl Acl {
    /// Whether it grants nothing to anyone but `owner`: the only ACLs a
    /// bucket whose ownership is enforced accepts (`private`,
    /// `bucket-owner-full-control`).
    pub fn is_owner_only(&self, owner: &str) -> bool {
        self.grants
            .iter()
            .all(|g| g.grantee == Grantee::Key(owner.to_owned()))
    }

    /// Whether it grants anything to `AllUsers` or `AuthenticatedUsers`.
    pub fn is_public(&self) -> bool {
        self.grants
            .iter()
            .any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
    }
}

/// A bucket's object ownership (`PutBucketOwnershipControls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectOwnership {
    /// ACLs are disabled: the bucket owner owns everything.
    BucketOwnerEnforced,
    /// The bucket owner owns objects written with `bucket-owner-full-control`.
    BucketOwnerPreferred,
    /// The writer owns what it writes.
    ObjectWriter,
}

/// The message S3 gives when ownership controls refuse an ACL.
pub const ACLS_DISABLED: &str = "The bucket does not allow ACLs";

/// The bucket's ACL, `None` without one (the owner alone, full control).
pub fn bucket_acl(bucket: &Bucket) -> Result<Option<Acl>, MetaError> {
    bucket
        .settings
        .get(ACL_SETTING)
        .map(|bytes| decode(bytes))
        .transpose()
}

/// The bucket's object ownership, `None` without ownership controls.
pub fn ownership(bucket: &Bucket) -> Result<Option<ObjectOwnership>, MetaError> {
    bucket
        .settings
        .get(OWNERSHIP_SETTING)
        .map(|bytes| decode(bytes))
        .transpose()
}

/// Whether the bucket's ownership controls disable ACLs.
pub fn acls_disabled(bucket: &Bucket) -> Result<bool, MetaError> {
    Ok(ownership(bucket)? == Some(ObjectOwnership::BucketOwnerEnforced))
}

/// The stored form of an ACL (the value of [`ACL_SETTING`] and of the
/// object ACL table).
pub fn encode_acl(acl: &Acl) -> Result<Vec<u8>, MetaError> {
    encode(acl)
}

/// The stored form of an object ownership (the value of [`OWNERSHIP_SETTING`]).
pub fn encode_ownership(ownership: ObjectOwnership) -> Result<Vec<u8>, MetaError> {
    encode(&ownership)
}
