//! Access control lists: `Get`/`PutBucketAcl`, `Get`/`PutObjectAcl` (canned
//! ACLs, `x-amz-grant-*` headers or an `AccessControlPolicy` body), the ACL
//! of `CreateBucket`, and the ownership controls
//! (`Get`/`Put`/`DeleteBucketOwnershipControls`).
//!
//! Grantees are access keys (their id is the canonical user id S3 shows)
//! and the `AllUsers` and `AuthenticatedUsers` groups; e-mail grantees
//! and other groups are refused. A bucket or version without an ACL is its
//! owner's alone. `BucketOwnerEnforced` disables ACLs: the state machine
//! then refuses any ACL granting something beyond the bucket owner
//! (`AccessControlListNotSupported`), and [`crate::auth`] ignores stored
//! ones. What ACLs allow is decided in [`crate::auth`].

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tessera_raft::access::{self, Acl, AclGrant, Grantee, Permission};
use tessera_raft::command::{BucketUpdate, Command};
use tessera_raft::model;

use super::Gateway;
use super::convert;
use super::errors;
use crate::data::VersionRef;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

/// The ACL parts of a request: its canned ACL, its `x-amz-grant-*`
/// headers (full control, read, read ACP, write, write ACP) and its body.
pub(crate) struct AclInput<'a> {
    pub(crate) canned: Option<&'a str>,
    pub(crate) grants: [Option<&'a str>; 5],
    pub(crate) body: Option<&'a AccessControlPolicy>,
}

/// The ACL parts of an input with the usual field names.
macro_rules! acl_input {
    // Object writes have no `x-amz-grant-write`.
    ($i:expr, $body:expr, object) => {
        $crate::s3::acl::AclInput {
            canned: $i.acl.as_ref().map(|a| a.as_str()),
            grants: [
                $i.grant_full_control.as_deref(),
                $i.grant_read.as_deref(),
                $i.grant_read_acp.as_deref(),
                None,
                $i.grant_write_acp.as_deref(),
            ],
            body: $body,
        }
    };
    ($i:expr, $body:expr) => {
        $crate::s3::acl::AclInput {
            canned: $i.acl.as_ref().map(|a| a.as_str()),
            grants: [
                $i.grant_full_control.as_deref(),
                $i.grant_read.as_deref(),
                $i.grant_read_acp.as_deref(),
                $i.grant_write.as_deref(),
                $i.grant_write_acp.as_deref(),
            ],
            body: $body,
        }
    };
}
pub(crate) use acl_input;

const HEADER_PERMISSIONS: [Permission; 5] = [
    Permission::FullControl,
    Permission::Read,
    Permission::ReadAcp,
    Permission::Write,
    Permission::WriteAcp,
];

fn grant(grantee: Grantee, permission: Permission) -> AclGrant {
    AclGrant {
        grantee,
        permission,
    }
}

fn group(uri: &str) -> S3Result<Grantee> {
    match uri {
        ALL_USERS => Ok(Grantee::AllUsers),
        AUTHENTICATED_USERS => Ok(Grantee::AuthenticatedUsers),
        _ => Err(s3_error!(InvalidArgument, "Invalid group uri")),
    }
}

/// A canned ACL's grants: `owner` owns, `bucket_owner` owns the bucket.
fn canned(name: &str, owner: &str, bucket_owner: &str) -> S3Result<Vec<AclGrant>> {
    let mut grants = vec![grant(
        Grantee::Key(owner.to_owned()),
        Permission::FullControl,
    )];
    match name {
        "private" => {}
        "public-read" => grants.push(grant(Grantee::AllUsers, Permission::Read)),
        "public-read-write" => {
            grants.push(grant(Grantee::AllUsers, Permission::Read));
            grants.push(grant(Grantee::AllUsers, Permission::Write));
        }
        "authenticated-read" => grants.push(grant(Grantee::AuthenticatedUsers, Permission::Read)),
        "bucket-owner-read" | "bucket-owner-full-control" if bucket_owner != owner => {
            let p = if name == "bucket-owner-read" {
                Permission::Read
            } else {
                Permission::FullControl
            };
            grants.push(grant(Grantee::Key(bucket_owner.to_owned()), p));
        }
        "bucket-owner-read" | "bucket-owner-full-control" => {}
        _ => return Err(s3_error!(InvalidArgument, "Unsupported canned ACL {name}")),
    }
    Ok(grants)
}

/// The grantees of one `x-amz-grant-*` header: `id="…"` or `uri="…"`, comma-separated.
fn header_grantees(value: &str) -> S3Result<Vec<Grantee>> {
    value
        .split(',')
        .map(|part| {
            let (kind, v) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| s3_error!(InvalidArgument, "Invalid grant header"))?;
            let v = v.trim().trim_matches('"');
            match kind.trim().to_ascii_lowercase().as_str() {
                "id" => Ok(Grantee::Key(v.to_owned())),
                "uri" => group(v),
                "emailaddress" => Err(s3_error!(
                    UnresolvableGrantByEmailAddress,
                    "e-mail grantees are not supported"
                )),
                _ => Err(s3_error!(InvalidArgument, "Invalid grant header")),
            }
        })
        .collect()
}

fn permission_in(p: &str) -> S3Result<Permission> {
    match p {
        "FULL_CONTROL" => Ok(Permission::FullControl),
        "READ" => Ok(Permission::Read),
        "WRITE" => Ok(Permission::Write),
        "READ_ACP" => Ok(Permission::ReadAcp),
        "WRITE_ACP" => Ok(Permission::WriteAcp),
        _ => Err(s3_error!(MalformedACLError, "Invalid permission {p}")),
    }
}

fn body_grants(body: &AccessControlPolicy) -> S3Result<Vec<AclGrant>> {
    let mut out = Vec::new();
    for g in body.grants.iter().flatten() {
        let (Some(grantee), Some(permission)) = (&g.grantee, &g.permission) else {
            return Err(s3_error!(MalformedACLError));
        };
        let who = match grantee.type_.as_str() {
            Type::CANONICAL_USER => Grantee::Key(
                grantee
                    .id
                    .clone()
                    .ok_or_else(|| s3_error!(MalformedACLError, "CanonicalUser needs an ID"))?,
            ),
            Type::GROUP => group(grantee.uri.as_deref().unwrap_or_default())?,
            _ => {
                return Err(s3_error!(
                    UnresolvableGrantByEmailAddress,
                    "e-mail grantees are not supported"
                ));
            }
        };
        out.push(grant(who, permission_in(permission.as_str())?));
    }
    Ok(out)
}

/// The ACL a request asks for (`None`: it names none). One of a canned
/// ACL, grant headers or a body; `owner` owns the resource.
pub(crate) fn requested(
    input: &AclInput<'_>,
    owner: &str,
    bucket_owner: &str,
) -> S3Result<Option<Acl>> {
    let has_headers = input.grants.iter().any(Option::is_some);
    let grants = match (input.canned, has_headers, input.body) {
        (None, false, None) => return Ok(None),
        (Some(name), false, None) => canned(name, owner, bucket_owner)?,
        (None, true, None) => {
            let mut grants = Vec::new();
            for (value, permission) in input.grants.iter().zip(HEADER_PERMISSIONS) {
                if let Some(v) = value {
                    for who in header_grantees(v)? {
                        grants.push(grant(who, permission));
                    }
                }
            }
            grants
        }
        (None, false, Some(body)) => body_grants(body)?,
        _ => {
            return Err(s3_error!(
                InvalidRequest,
                "Specifying both Canned ACLs and Header Grants is not allowed"
            ));
        }
    };
    Ok(Some(Acl {
        owner: owner.to_owned(),
        grants,
    }))
}

/// An ACL as S3 shows it.
fn grants_out(acl: &Acl) -> Vec<s3s::dto::Grant> {
    acl.grants
        .iter()
        .map(|g| {
            let grantee = match &g.grantee {
                Grantee::Key(id) => s3s::dto::Grantee {
                    display_name: Some(id.clone()),
                    email_address: None,
                    id: Some(id.clone()),
                    type_: Type::from_static(Type::CANONICAL_USER),
                    uri: None,
                },
                Grantee::AllUsers | Grantee::AuthenticatedUsers => s3s::dto::Grantee {
                    display_name: None,
                    email_address: None,
                    id: None,
                    type_: Type::from_static(Type::GROUP),
                    uri: Some(
                        if g.grantee == Grantee::AllUsers {
                            ALL_USERS
                        } else {
                            AUTHENTICATED_USERS
                        }
                        .to_owned(),
                    ),
                },
            };
            let permission = match g.permission {
                Permission::FullControl => "FULL_CONTROL",
                Permission::Read => "READ",
                Permission::Write => "WRITE",
                Permission::ReadAcp => "READ_ACP",
                Permission::WriteAcp => "WRITE_ACP",
            };
            s3s::dto::Grant {
                grantee: Some(grantee),
                permission: Some(s3s::dto::Permission::from(permission.to_owned())),
            }
        })
        .collect()
}

/// The ACL of a resource without one: its owner, full control.
fn default_acl(owner: &str) -> Acl {
    Acl {
        owner: owner.to_owned(),
        grants: vec![grant(
            Grantee::Key(owner.to_owned()),
            Permission::FullControl,
        )],
    }
}

impl Gateway {
    /// Refuses an ACL naming access keys that do not exist, or a public
    /// one while the bucket's public access block blocks public ACLs.
    async fn check_acl(&self, bucket: &model::Bucket, acl: &Acl) -> S3Result<()> {
        let block = access::public_access_block(bucket).map_err(errors::meta)?;
        if block.is_some_and(|b| b.block_public_acls) && acl.is_public() {
            return Err(s3_error!(
                AccessDenied,
                "public ACLs are blocked by the BlockPublicAcls block public access setting"
            ));
        }
        let ids: Vec<String> = acl
            .grants
            .iter()
            .filter_map(|g| match &g.grantee {
                Grantee::Key(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let all_exist = self
            .meta()
            .read_local(move |view| {
                for id in &ids {
                    if view.access_key(id)?.is_none() {
                        return Ok(false);
                    }
                }
                Ok(true)
            })
            .await
            .map_err(errors::meta)?;
        if all_exist {
            Ok(())
        } else {
            Err(s3_error!(InvalidArgument, "Invalid id"))
        }
    }

    /// The ACL an object write (PutObject, CopyObject,
    /// CreateMultipartUpload) asks for, checked.
    pub(crate) async fn write_acl(
        &self,
        bucket: &model::Bucket,
        writer: &str,
        input: &AclInput<'_>,
    ) -> S3Result<Option<Acl>> {
        let owner = Gateway::object_owner(bucket, writer)?;
        let acl = requested(input, &owner, &bucket.owner)?;
        if let Some(acl) = &acl {
            self.check_acl(bucket, acl).await?;
        }
        Ok(acl)
    }

    /// The owner of objects in `bucket` written by `writer`: the bucket
    /// owner when ownership is enforced.
    fn object_owner(bucket: &model::Bucket, writer: &str) -> S3Result<String> {
        if access::acls_disabled(bucket).map_err(errors::meta)? {
            Ok(bucket.owner.clone())
        } else {
            Ok(writer.to_owned())
        }
    }
}

/// The access settings `CreateBucket` asks for (its ACL, its object
/// ownership) as settings of the new bucket owned by `owner`.
pub(crate) fn new_bucket_settings(
    i: &CreateBucketInput,
    owner: &str,
) -> S3Result<Vec<(String, Vec<u8>)>> {
    let mut settings = Vec::new();
    let ownership = i.object_ownership.as_ref().map(|o| {
        ownership_in(&OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: o.clone(),
            }],
        })
    });
    let ownership = ownership.transpose()?;
    if let Some(o) = ownership {
        settings.push((
            access::OWNERSHIP_SETTING.to_owned(),
            tessera_raft::access::encode_ownership(o).map_err(errors::meta)?,
        ));
    }
    if let Some(acl) = requested(&acl_input!(i, None), owner, owner)? {
        if ownership == Some(access::ObjectOwnership::BucketOwnerEnforced)
            && !acl.is_owner_only(owner)
        {
            return Err(errors::apply(
                tessera_raft::command::ApplyError::AclNotSupported,
            ));
        }
        settings.push((
            access::ACL_SETTING.to_owned(),
            access::encode_acl(&acl).map_err(errors::meta)?,
        ));
    }
    Ok(settings)
}

pub(crate) async fn put_bucket_acl(
    gw: &Gateway,
    req: S3Request<PutBucketAclInput>,
) -> S3Result<S3Response<PutBucketAclOutput>> {
    let i = req.input;
    let bucket = gw.bucket(&i.bucket).await?;
    let input = acl_input!(i, i.access_control_policy.as_ref());
    let acl = requested(&input, &bucket.owner, &bucket.owner)?
        .ok_or_else(|| s3_error!(MalformedACLError, "the request names no ACL"))?;
    gw.check_acl(&bucket, &acl).await?;
    gw.update_bucket(&i.bucket, BucketUpdate::Acl(acl)).await?;
    Ok(S3Response::new(PutBucketAclOutput {}))
}

pub(crate) async fn get_bucket_acl(
    gw: &Gateway,
    req: S3Request<GetBucketAclInput>,
) -> S3Result<S3Response<GetBucketAclOutput>> {
    let bucket = gw.bucket(&req.input.bucket).await?;
    let stored = access::bucket_acl(&bucket).map_err(errors::meta)?;
    let acl = match stored {
        Some(acl) if !access::acls_disabled(&bucket).map_err(errors::meta)? => acl,
        _ => default_acl(&bucket.owner),
    };
    Ok(S3Response::new(GetBucketAclOutput {
        grants: Some(grants_out(&acl)),
        owner: Some(convert::owner(&acl.owner)),
    }))
}

/// The bucket and the version an object ACL request is about.
async fn acl_subject(
    gw: &Gateway,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> S3Result<(model::Bucket, model::ObjectVersion)> {
    let found = gw.bucket(bucket).await?;
    let version = gw
        .data
        .lookup(VersionRef {
            bucket,
            key,
            version_id,
        })
        .await?;
    Ok((found, version))
}

pub(crate) async fn put_object_acl(
    gw: &Gateway,
    req: S3Request<PutObjectAclInput>,
) -> S3Result<S3Response<PutObjectAclOutput>> {
    let i = req.input;
    let (bucket, version) = acl_subject(gw, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let owner = Gateway::object_owner(&bucket, &version.owner)?;
    let input = acl_input!(i, i.access_control_policy.as_ref());
    let acl = requested(&input, &owner, &bucket.owner)?
        .ok_or_else(|| s3_error!(MalformedACLError, "the request names no ACL"))?;
    gw.check_acl(&bucket, &acl).await?;
    let cmd = Command::SetObjectAcl {
        bucket: i.bucket,
        key: i.key,
        version_id: Some(version.version_id),
        acl,
    };
    gw.meta().write(cmd).await.map_err(errors::meta)?;
    Ok(S3Response::new(PutObjectAclOutput::default()))
}

pub(crate) async fn get_object_acl(
    gw: &Gateway,
    req: S3Request<GetObjectAclInput>,
) -> S3Result<S3Response<GetObjectAclOutput>> {
    let i = req.input;
    let (bucket, version) = acl_subject(gw, &i.bucket, &i.key, i.version_id.as_deref()).await?;
    let (b, k, v) = (i.bucket.clone(), i.key.clone(), version.version_id.clone());
    let stored = gw
        .meta()
        .read_local(move |view| view.object_acl(&b, &k, &v))
        .await
        .map_err(errors::meta)?;
    let owner = Gateway::object_owner(&bucket, &version.owner)?;
    let acl = match stored {
        Some(acl) if !access::acls_disabled(&bucket).map_err(errors::meta)? => acl,
        _ => default_acl(&owner),
    };
    Ok(S3Response::new(GetObjectAclOutput {
        grants: Some(grants_out(&acl)),
        owner: Some(convert::owner(&acl.owner)),
        request_charged: None,
    }))
}

fn ownership_in(controls: &OwnershipControls) -> S3Result<access::ObjectOwnership> {
    let [rule] = controls.rules.as_slice() else {
        return Err(s3_error!(
            MalformedXML,
            "OwnershipControls needs exactly one rule"
        ));
    };
    match rule.object_ownership.as_str() {
        ObjectOwnership::BUCKET_OWNER_ENFORCED => Ok(access::ObjectOwnership::BucketOwnerEnforced),
        ObjectOwnership::BUCKET_OWNER_PREFERRED => {
            Ok(access::ObjectOwnership::BucketOwnerPreferred)
        }
        ObjectOwnership::OBJECT_WRITER => Ok(access::ObjectOwnership::ObjectWriter),
        _ => Err(s3_error!(MalformedXML, "Invalid ObjectOwnership")),
    }
}

fn ownership_name(o: access::ObjectOwnership) -> &'static str {
    match o {
        access::ObjectOwnership::BucketOwnerEnforced => ObjectOwnership::BUCKET_OWNER_ENFORCED,
        access::ObjectOwnership::BucketOwnerPreferred => ObjectOwnership::BUCKET_OWNER_PREFERRED,
        access::ObjectOwnership::ObjectWriter => ObjectOwnership::OBJECT_WRITER,
    }
}

pub(crate) async fn put_bucket_ownership_controls(
    gw: &Gateway,
    req: S3Request<PutBucketOwnershipControlsInput>,
) -> S3Result<S3Response<PutBucketOwnershipControlsOutput>> {
    let i = req.input;
    let ownership = ownership_in(&i.ownership_controls)?;
    gw.update_bucket(&i.bucket, BucketUpdate::Ownership(Some(ownership)))
        .await?;
    Ok(S3Response::new(PutBucketOwnershipControlsOutput {}))
}

pub(crate) async fn get_bucket_ownership_controls(
    gw: &Gateway,
    req: S3Request<GetBucketOwnershipControlsInput>,
) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
    let bucket = gw.bucket(&req.input.bucket).await?;
    let ownership = access::ownership(&bucket)
        .map_err(errors::meta)?
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::OwnershipControlsNotFoundError,
                "The bucket ownership controls were not found",
            )
        })?;
    Ok(S3Response::new(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from_static(ownership_name(ownership)),
            }],
        }),
    }))
}

pub(crate) async fn delete_bucket_ownership_controls(
    gw: &Gateway,
    req: S3Request<DeleteBucketOwnershipControlsInput>,
) -> S3Result<S3Response<DeleteBucketOwnershipControlsOutput>> {
    gw.update_bucket(&req.input.bucket, BucketUpdate::Ownership(None))
        .await?;
    Ok(S3Response::new(DeleteBucketOwnershipControlsOutput {}))
}
