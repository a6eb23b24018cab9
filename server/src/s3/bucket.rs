//! Bucket operations: Create, Head, Delete, List, GetBucketLocation and the
//! versioning setting.

use std::collections::{BTreeMap, BTreeSet};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use tessera_raft::MetaError;
use tessera_raft::command::{ApplyError, BucketUpdate, Command};
use tessera_raft::lock;
use tessera_raft::model::{self, Versioning};

use super::Gateway;
use super::convert;
use super::errors;
use super::object::requester;
use crate::data::ids;

/// Whether a name follows S3's general-purpose bucket naming rules.
pub(crate) fn valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3")
        && name.parse::<std::net::Ipv4Addr>().is_err()
}

impl Gateway {
    /// Applies a bucket settings change.
    pub(crate) async fn update_bucket(&self, name: &str, update: BucketUpdate) -> S3Result<()> {
        self.meta()
            .write(Command::UpdateBucket {
                name: name.to_owned(),
                update,
            })
            .await
            .map_err(errors::meta)?;
        Ok(())
    }
}

pub(crate) async fn create_bucket(
    gw: &Gateway,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let owner = requester(&req);
    let i = req.input;
    if !valid_bucket_name(&i.bucket) {
        return Err(s3_error!(InvalidBucketName));
    }
    let mut settings: BTreeMap<String, Vec<u8>> = super::acl::new_bucket_settings(&i, &owner)?
        .into_iter()
        .collect();
    let constraint = i
        .create_bucket_configuration
        .and_then(|c| c.location_constraint)
        .map(|c| c.as_str().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(c) = constraint
        && c != gw.settings.region
    {
        return Err(s3_error!(
            IllegalLocationConstraintException,
            "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
        ));
    }
    // Object lock turns versioning on for good.
    let locked = i.object_lock_enabled_for_bucket == Some(true);
    if locked {
        settings.insert(
            lock::OBJECT_LOCK_SETTING.to_owned(),
            lock::encode_config(&model::ObjectLockConfig::default()).map_err(errors::meta)?,
        );
    }
    let bucket = model::Bucket {
        name: i.bucket.clone(),
        owner: owner.clone(),
        created: ids::now_millis(),
        versioning: if locked {
            Versioning::Enabled
        } else {
            Versioning::Unversioned
        },
        tags: None,
        cors: None,
        settings,
    };
    match gw.meta().write(Command::CreateBucket { bucket }).await {
        Ok(_) => Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", i.bucket)),
        })),
        Err(MetaError::Apply(ApplyError::BucketExists { owner: existing }))
            if existing == owner =>
        {
            Err(s3_error!(BucketAlreadyOwnedByYou))
        }
        Err(e) => Err(errors::meta(e)),
    }
}

pub(crate) async fn head_bucket(
    gw: &Gateway,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    gw.bucket(&req.input.bucket).await?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(gw.settings.region.clone()),
        ..Default::default()
    }))
}

pub(crate) async fn delete_bucket(
    gw: &Gateway,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    gw.meta()
        .write(Command::DeleteBucket {
            name: req.input.bucket,
        })
        .await
        .map_err(errors::meta)?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(crate) async fn list_buckets(
    gw: &Gateway,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let who = requester(&req);
    let i = req.input;
    let me = who.clone();
    let (buckets, visible) = gw
        .meta()
        .read(move |view| {
            let buckets = view.buckets()?;
            // A key known to the cluster sees what it owns or is granted; admins
            // and requests not tied to a stored key see everything.
            let visible: Option<BTreeSet<String>> = match view.access_key(&me)? {
                Some(k) if !k.admin => {
                    Some(view.grants_of(&me)?.into_iter().map(|(b, _)| b).collect())
                }
                _ => None,
            };
            Ok((buckets, visible))
        })
        .await
        .map_err(errors::meta)?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let after = i.continuation_token.clone().unwrap_or_default();
    let max = usize::try_from(i.max_buckets.unwrap_or(10_000).clamp(1, 10_000)).unwrap_or(10_000);
    let mut listed: Vec<Bucket> = buckets
        .into_iter()
        .filter(|b| {
            visible
                .as_ref()
                .is_none_or(|v| v.contains(&b.name) || b.owner == who)
        })
        .filter(|b| b.name.starts_with(&prefix) && b.name > after)
        .map(|b| Bucket {
            bucket_region: Some(gw.settings.region.clone()),
            creation_date: Some(convert::timestamp(b.created)),
            name: Some(b.name),
        })
        .take(max + 1)
        .collect();
    let token = if listed.len() > max {
        listed.truncate(max);
        listed.last().and_then(|b| b.name.clone())
    } else {
        None
    };
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(listed),
        continuation_token: token,
        owner: Some(convert::owner(&who)),
        prefix: i.prefix,
    }))
}

pub(crate) async fn get_bucket_location(
    gw: &Gateway,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    gw.bucket(&req.input.bucket).await?;
    // us-east-1 is reported as an empty constraint, as S3 does.
    let constraint = (gw.settings.region != "us-east-1")
        .then(|| BucketLocationConstraint::from(gw.settings.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: constraint,
    }))
}

pub(crate) async fn get_bucket_versioning(
    gw: &Gateway,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    let b = gw.bucket(&req.input.bucket).await?;
    let status = match b.versioning {
        Versioning::Unversioned => None,
        Versioning::Enabled => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::ENABLED,
        )),
        Versioning::Suspended => Some(BucketVersioningStatus::from_static(
            BucketVersioningStatus::SUSPENDED,
        )),
    };
    Ok(S3Response::new(GetBucketVersioningOutput {
        mfa_delete: None,
        status,
    }))
}

pub(crate) async fn put_bucket_versioning(
    gw: &Gateway,
    req: S3Request<PutBucketVersioningInput>,
) -> S3Result<S3Response<PutBucketVersioningOutput>> {
    let i = req.input;
    let state = match i
        .versioning_configuration
        .status
        .as_ref()
        .map(BucketVersioningStatus::as_str)
    {
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "versioning status must be Enabled or Suspended"
            ));
        }
    };
    gw.update_bucket(&i.bucket, BucketUpdate::Versioning(state))
        .await?;
    Ok(S3Response::new(PutBucketVersioningOutput {}))
}

#[cfg(test)]
mod tests {
    use super::valid_bucket_name;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket.v2", "a1b", &"a".repeat(63)] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "a_b",
            "xn--abc",
            &"a".repeat(64),
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }
}
