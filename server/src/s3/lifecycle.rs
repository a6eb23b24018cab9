//! Bucket lifecycle: `Get`/`Put`/`DeleteBucketLifecycleConfiguration`,
//! validated as S3 validates them, kept in the bucket's settings through
//! `Command::SetBucketLifecycle`, and the `x-amz-expiration` header of
//! objects a rule will expire (GET, HEAD, PUT, CopyObject,
//! CompleteMultipartUpload). The rules are carried out by the lifecycle
//! worker (`crate::workers::lifecycle`); Tessera has one storage class, so
//! transitions are refused.

use std::collections::BTreeSet;

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tessera_raft::command::Command;
use tessera_raft::lifecycle::{
    self, Conditions, Expiration, LifecycleConfig, LifecycleRule as Rule, NoncurrentExpiration,
    RuleFilter,
};
use tessera_raft::model::{Bucket, Millis, ObjectVersion};

use super::Gateway;
use super::convert;
use super::errors;
use crate::data::ids;

/// Most rules a configuration may have.
const MAX_RULES: usize = 1000;
/// Longest rule id.
const MAX_ID_LEN: usize = 255;
/// Most noncurrent versions a rule may keep.
const MAX_NEWER_VERSIONS: i32 = 100;

fn malformed(message: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedXML, message.to_owned())
}

/// A count of days that must be a positive integer.
fn positive_days(days: i32, what: &str) -> S3Result<u32> {
    u32::try_from(days)
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| s3_error!(InvalidArgument, "'{what}' must be a positive integer"))
}

/// Milliseconds since the epoch of an S3 timestamp.
fn millis(ts: &Timestamp) -> Millis {
    let nanos = time::OffsetDateTime::from(ts.clone()).unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

fn size_in(size: Option<i64>) -> S3Result<Option<u64>> {
    size.map(|n| {
        u64::try_from(n).map_err(|_| s3_error!(InvalidArgument, "Object size must be non-negative"))
    })
    .transpose()
}

/// A rule's filter, from its `Filter` or its legacy `Prefix`.
fn filter_in(prefix: Option<String>, filter: Option<LifecycleRuleFilter>) -> S3Result<RuleFilter> {
    let f = match (prefix, filter) {
        (Some(_), Some(_)) => {
            return Err(malformed("A rule may have a Filter or a Prefix, not both"));
        }
        (Some(p), None) => return Ok(RuleFilter::LegacyPrefix(p)),
        (None, None) => return Err(malformed("A rule needs a Filter or a Prefix")),
        (None, Some(f)) => f,
    };
    let given = usize::from(f.prefix.is_some())
        + usize::from(f.tag.is_some())
        + usize::from(f.and.is_some())
        + usize::from(f.object_size_greater_than.is_some())
        + usize::from(f.object_size_less_than.is_some());
    if given > 1 {
        return Err(malformed(
            "A Filter has at most one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan and And",
        ));
    }
    let (and, prefix, tags, greater, less) = match f.and {
        Some(a) => (
            true,
            a.prefix,
            a.tags.unwrap_or_default(),
            a.object_size_greater_than,
            a.object_size_less_than,
        ),
        None => (
            false,
            f.prefix,
            f.tag.into_iter().collect(),
            f.object_size_greater_than,
            f.object_size_less_than,
        ),
    };
    if tags.iter().any(|t| t.key.is_none()) {
        return Err(malformed("A Tag needs a Key"));
    }
    let tags = convert::tags_in(tags, usize::MAX)?;
    let conditions = Conditions {
        prefix,
        tags,
        size_greater_than: size_in(greater)?,
        size_less_than: size_in(less)?,
    };
    if let (Some(g), Some(l)) = (conditions.size_greater_than, conditions.size_less_than)
        && g >= l
    {
        return Err(s3_error!(
            InvalidArgument,
            "ObjectSizeGreaterThan must be less than ObjectSizeLessThan"
        ));
    }
    Ok(RuleFilter::Filter { and, conditions })
}

fn expiration_in(e: LifecycleExpiration) -> S3Result<Expiration> {
    match (e.days, e.date, e.expired_object_delete_marker) {
        (Some(days), None, None) => Ok(Expiration::Days(positive_days(days, "Days")?)),
        (None, Some(date), None) => {
            let at = millis(&date);
            if at.rem_euclid(lifecycle::DAY) != 0 {
                return Err(s3_error!(InvalidArgument, "'Date' must be at midnight GMT"));
            }
            Ok(Expiration::Date(at))
        }
        (None, None, Some(on)) => Ok(Expiration::ExpiredObjectDeleteMarker(on)),
        (None, None, None) => Err(malformed(
            "Expiration needs one of Days, Date and ExpiredObjectDeleteMarker",
        )),
        _ => Err(malformed(
            "Expiration takes only one of Days, Date and ExpiredObjectDeleteMarker",
        )),
    }
}

fn noncurrent_in(n: NoncurrentVersionExpiration) -> S3Result<NoncurrentExpiration> {
    let days = n
        .noncurrent_days
        .ok_or_else(|| malformed("NoncurrentVersionExpiration needs NoncurrentDays"))?;
    let newer_versions = match n.newer_noncurrent_versions {
        None => None,
        Some(k) if (1..=MAX_NEWER_VERSIONS).contains(&k) => Some(k.unsigned_abs()),
        Some(_) => {
            return Err(s3_error!(
                InvalidArgument,
                "NewerNoncurrentVersions must be between 1 and {MAX_NEWER_VERSIONS}"
            ));
        }
    };
    Ok(NoncurrentExpiration {
        days: positive_days(days, "NoncurrentDays")?,
        newer_versions,
    })
}

/// One rule as the request gives it, validated as S3 does.
fn rule_in(r: LifecycleRule) -> S3Result<Rule> {
    if r.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions
            .as_ref()
            .is_some_and(|t| !t.is_empty())
    {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Tessera has a single storage class: lifecycle transitions are not supported",
        ));
    }
    let enabled = match r.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        _ => return Err(malformed("Status must be Enabled or Disabled")),
    };
    let id = match r.id.filter(|id| !id.is_empty()) {
        Some(id) if id.len() > MAX_ID_LEN => {
            return Err(s3_error!(
                InvalidArgument,
                "ID length should not exceed allowed limit of {MAX_ID_LEN}"
            ));
        }
        Some(id) => id,
        None => ids::version_id(),
    };
    let filter = filter_in(r.prefix, r.filter)?;
    let expiration = r.expiration.map(expiration_in).transpose()?;
    let noncurrent = r
        .noncurrent_version_expiration
        .map(noncurrent_in)
        .transpose()?;
    let abort_upload_days = r
        .abort_incomplete_multipart_upload
        .map(|a| {
            let days = a.days_after_initiation.ok_or_else(|| {
                malformed("AbortIncompleteMultipartUpload needs DaysAfterInitiation")
            })?;
            positive_days(days, "DaysAfterInitiation")
        })
        .transpose()?;
    let c = filter.conditions();
    let sized = c.size_greater_than.is_some() || c.size_less_than.is_some();
    if abort_upload_days.is_some() && (!c.tags.is_empty() || sized) {
        return Err(s3_error!(
            InvalidRequest,
            "AbortIncompleteMultipartUpload cannot be specified with Tags or object sizes."
        ));
    }
    if matches!(expiration, Some(Expiration::ExpiredObjectDeleteMarker(_))) && !c.tags.is_empty() {
        return Err(s3_error!(
            InvalidRequest,
            "ExpiredObjectDeleteMarker cannot be specified with Tags."
        ));
    }
    if expiration.is_none() && noncurrent.is_none() && abort_upload_days.is_none() {
        return Err(s3_error!(
            InvalidRequest,
            "At least one action needs to be specified in a rule"
        ));
    }
    Ok(Rule {
        id,
        enabled,
        filter,
        expiration,
        noncurrent,
        abort_upload_days,
    })
}

/// A configuration as the request gives it, validated as S3 does.
fn config_in(config: Option<BucketLifecycleConfiguration>) -> S3Result<LifecycleConfig> {
    let rules = config.map(|c| c.rules).unwrap_or_default();
    if rules.is_empty() {
        return Err(malformed(
            "A lifecycle configuration needs at least one Rule",
        ));
    }
    if rules.len() > MAX_RULES {
        return Err(malformed(
            "A lifecycle configuration has at most 1000 rules",
        ));
    }
    let rules = rules
        .into_iter()
        .map(rule_in)
        .collect::<S3Result<Vec<_>>>()?;
    let mut ids = BTreeSet::new();
    if !rules.iter().all(|r| ids.insert(r.id.as_str())) {
        return Err(s3_error!(
            InvalidArgument,
            "Rule ID must be unique. Found same ID for more than one rule"
        ));
    }
    Ok(LifecycleConfig { rules })
}

fn conditions_out(and: bool, c: &Conditions) -> LifecycleRuleFilter {
    let greater = c.size_greater_than.and_then(|n| i64::try_from(n).ok());
    let less = c.size_less_than.and_then(|n| i64::try_from(n).ok());
    if and {
        return LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: c.prefix.clone(),
                tags: (!c.tags.is_empty()).then(|| convert::tag_set(&c.tags)),
                object_size_greater_than: greater,
                object_size_less_than: less,
            }),
            ..Default::default()
        };
    }
    LifecycleRuleFilter {
        and: None,
        prefix: c.prefix.clone(),
        tag: convert::tag_set(&c.tags).into_iter().next(),
        object_size_greater_than: greater,
        object_size_less_than: less,
    }
}

fn rule_out(r: &Rule) -> LifecycleRule {
    let (prefix, filter) = match &r.filter {
        RuleFilter::LegacyPrefix(p) => (Some(p.clone()), None),
        RuleFilter::Filter { and, conditions } => (None, Some(conditions_out(*and, conditions))),
    };
    let days = |d: u32| i32::try_from(d).unwrap_or(i32::MAX);
    LifecycleRule {
        id: Some(r.id.clone()),
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        prefix,
        filter,
        expiration: r.expiration.map(|e| match e {
            Expiration::Days(d) => LifecycleExpiration {
                days: Some(days(d)),
                ..Default::default()
            },
            Expiration::Date(at) => LifecycleExpiration {
                date: Some(convert::timestamp(at)),
                ..Default::default()
            },
            Expiration::ExpiredObjectDeleteMarker(on) => LifecycleExpiration {
                expired_object_delete_marker: Some(on),
                ..Default::default()
            },
        }),
        noncurrent_version_expiration: r.noncurrent.map(|n| NoncurrentVersionExpiration {
            noncurrent_days: Some(days(n.days)),
            newer_noncurrent_versions: n.newer_versions.map(days),
        }),
        abort_incomplete_multipart_upload: r.abort_upload_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(days(d)),
            }
        }),
        transitions: None,
        noncurrent_version_transitions: None,
    }
}

/// The `x-amz-expiration` value for the current version `version` of
/// `bucket`, when one of its lifecycle rules will expire it.
pub(crate) fn expiration_header(bucket: &Bucket, version: &ObjectVersion) -> Option<String> {
    let config = lifecycle::bucket_config(bucket).ok()??;
    let (at, rule) = config.expiry(version)?;
    let when = time::OffsetDateTime::from_unix_timestamp(at.div_euclid(1000)).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let date = when.format(&format).ok()?;
    Some(format!("expiry-date=\"{date}\", rule-id=\"{rule}\""))
}

impl Gateway {
    /// `x-amz-expiration` for `version` of a GET or HEAD (`named`: the
    /// request gave its version id), when it is the current version of its
    /// key: a version id naming the current version gets the header as a
    /// request without one does. Read locally, as the lock of a read is.
    pub(crate) async fn expiration_of(
        &self,
        version: &ObjectVersion,
        named: bool,
    ) -> S3Result<Option<String>> {
        let (name, key) = (version.bucket.clone(), version.key.clone());
        let (bucket, latest) = self
            .meta()
            .read_local(move |view| {
                let latest = if named {
                    view.object(&name, &key, None)?.map(|v| v.version_id)
                } else {
                    None
                };
                Ok((view.bucket(&name)?, latest))
            })
            .await
            .map_err(errors::meta)?;
        if named && latest.as_deref() != Some(version.version_id.as_str()) {
            return Ok(None);
        }
        Ok(bucket.and_then(|b| expiration_header(&b, version)))
    }
}

pub(crate) async fn put_bucket_lifecycle_configuration(
    gw: &Gateway,
    req: S3Request<PutBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<PutBucketLifecycleConfigurationOutput>> {
    let i = req.input;
    let config = config_in(i.lifecycle_configuration)?;
    gw.meta()
        .write(Command::SetBucketLifecycle {
            bucket: i.bucket,
            config: Some(config),
        })
        .await
        .map_err(errors::meta)?;
    Ok(S3Response::new(
        PutBucketLifecycleConfigurationOutput::default(),
    ))
}

pub(crate) async fn get_bucket_lifecycle_configuration(
    gw: &Gateway,
    req: S3Request<GetBucketLifecycleConfigurationInput>,
) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
    let bucket = gw.bucket(&req.input.bucket).await?;
    let config = lifecycle::bucket_config(&bucket)
        .map_err(errors::meta)?
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::NoSuchLifecycleConfiguration,
                "The lifecycle configuration does not exist",
            )
        })?;
    Ok(S3Response::new(GetBucketLifecycleConfigurationOutput {
        rules: Some(config.rules.iter().map(rule_out).collect()),
        transition_default_minimum_object_size: None,
    }))
}

pub(crate) async fn delete_bucket_lifecycle(
    gw: &Gateway,
    req: S3Request<DeleteBucketLifecycleInput>,
) -> S3Result<S3Response<DeleteBucketLifecycleOutput>> {
    gw.meta()
        .write(Command::SetBucketLifecycle {
            bucket: req.input.bucket,
            config: None,
        })
        .await
        .map_err(errors::meta)?;
    Ok(S3Response::new(DeleteBucketLifecycleOutput::default()))
}
