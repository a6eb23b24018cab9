//! S3 Object Lock: a bucket's configuration (`Get`/`PutObjectLockConfiguration`),
//! the retention and legal hold of versions (`Get`/`PutObjectRetention`,
//! `Get`/`PutObjectLegalHold`), the lock headers of writes (PutObject,
//! CopyObject, CreateMultipartUpload) and of reads (GET, HEAD), and who may
//! bypass governance retention.
//!
//! The gateway only parses and validates requests; whether a version may
//! be deleted, overwritten or have its retention shortened is decided by
//! the state machine (`tessera_raft::lock`), so no gateway can race it.

use http::HeaderMap;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tessera_raft::command::{BucketUpdate, Command};
use tessera_raft::lock;
use tessera_raft::model::{
    DefaultRetention, Millis, ObjectLock, ObjectLockConfig, ObjectVersion, Retention,
    RetentionMode, RetentionPeriod,
};

use super::Gateway;
use super::convert;
use super::errors;
use super::object::requester;
use crate::data::{VersionRef, ids};

/// S3's answer to a lock request on a bucket without object lock.
const MISSING_CONFIG: &str = "Bucket is missing Object Lock Configuration";

/// The requested lock of a write input (PutObject, CopyObject,
/// CreateMultipartUpload: their types differ, their fields agree).
macro_rules! requested_lock {
    ($i:expr) => {
        $crate::s3::object_lock::requested(
            $i.object_lock_mode.as_ref(),
            $i.object_lock_retain_until_date.as_ref(),
            $i.object_lock_legal_hold_status.as_ref(),
        )?
    };
}
pub(crate) use requested_lock;

/// Milliseconds since the epoch of an S3 timestamp.
fn millis(ts: &Timestamp) -> Millis {
    let nanos = time::OffsetDateTime::from(ts.clone()).unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}

fn mode_in(mode: &str) -> S3Result<RetentionMode> {
    match mode {
        ObjectLockRetentionMode::GOVERNANCE => Ok(RetentionMode::Governance),
        ObjectLockRetentionMode::COMPLIANCE => Ok(RetentionMode::Compliance),
        _ => Err(s3_error!(InvalidArgument, "Unknown wormMode directive.")),
    }
}

fn mode_out(mode: RetentionMode) -> ObjectLockRetentionMode {
    ObjectLockRetentionMode::from_static(mode_name(mode))
}

/// The name S3 gives a retention mode.
pub(crate) fn mode_name(mode: RetentionMode) -> &'static str {
    match mode {
        RetentionMode::Governance => ObjectLockRetentionMode::GOVERNANCE,
        RetentionMode::Compliance => ObjectLockRetentionMode::COMPLIANCE,
    }
}

fn legal_hold_in(status: &str) -> S3Result<bool> {
    match status {
        ObjectLockLegalHoldStatus::ON => Ok(true),
        ObjectLockLegalHoldStatus::OFF => Ok(false),
        _ => Err(s3_error!(
            InvalidArgument,
            "Legal Hold must be either of 'ON' or 'OFF'"
        )),
    }
}

/// A legal hold as S3 shows it.
pub(crate) fn legal_hold_status(on: bool) -> ObjectLockLegalHoldStatus {
    ObjectLockLegalHoldStatus::from_static(if on {
        ObjectLockLegalHoldStatus::ON
    } else {
        ObjectLockLegalHoldStatus::OFF
    })
}

/// A retention whose date must lie ahead of the gateway's clock.
fn future_retention(mode: &str, until: &Timestamp) -> S3Result<Retention> {
    let retention = Retention {
        mode: mode_in(mode)?,
        retain_until: millis(until),
    };
    if !retention.lasts(ids::now_millis()) {
        return Err(s3_error!(
            InvalidArgument,
            "The retain until date must be in the future!"
        ));
    }
    Ok(retention)
}

/// The lock the headers of a write ask for (`None`: no lock header).
pub(crate) fn requested(
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<Option<ObjectLock>> {
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(mode), Some(until)) => Some(future_retention(mode.as_str(), until)?),
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied"
            ));
        }
    };
    let legal_hold = hold.map(|h| legal_hold_in(h.as_str())).transpose()?;
    if retention.is_none() && legal_hold.is_none() {
        return Ok(None);
    }
    Ok(Some(ObjectLock {
        retention,
        legal_hold,
    }))
}

/// Refuses a PutObject with lock headers but neither `Content-MD5` nor a
/// checksum, as S3 does.
pub(crate) fn require_integrity(headers: &HeaderMap, lock: Option<&ObjectLock>) -> S3Result<()> {
    if lock.is_none() {
        return Ok(());
    }
    let has_checksum = headers.contains_key("content-md5")
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("x-amz-checksum-"))
        || headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("x-amz-checksum-"));
    if has_checksum {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters"
        ))
    }
}

/// Fills the lock fields of a GET or HEAD output (their types differ, their
/// fields agree) from a version's lock.
macro_rules! describe_lock {
    ($out:ident, $lock:expr) => {{
        let lock: tessera_raft::model::ObjectLock = $lock;
        if let Some(r) = lock.retention {
            $out.object_lock_mode = Some(ObjectLockMode::from(
                $crate::s3::object_lock::mode_name(r.mode).to_owned(),
            ));
            $out.object_lock_retain_until_date =
                Some($crate::s3::convert::timestamp(r.retain_until));
        }
        $out.object_lock_legal_hold_status = lock
            .legal_hold
            .map($crate::s3::object_lock::legal_hold_status);
    }};
}
pub(crate) use describe_lock;

impl Gateway {
    /// The lock of a version a read just found (read locally: this member
    /// has applied at least what the read saw).
    pub(crate) async fn lock_of(&self, version: &ObjectVersion) -> S3Result<ObjectLock> {
        let (b, k, v) = (
            version.bucket.clone(),
            version.key.clone(),
            version.version_id.clone(),
        );
        self.meta()
            .read_local(move |view| view.object_lock(&b, &k, &v))
            .await
            .map_err(errors::meta)
    }

    /// Whether a request asking to bypass governance retention may
    /// (see [`crate::auth::may_bypass_governance`]).
    pub(crate) async fn bypass_governance(
        &self,
        caller: &str,
        bucket: &str,
        asked: Option<bool>,
    ) -> S3Result<bool> {
        if asked != Some(true) {
            return Ok(false);
        }
        let (caller, b) = (caller.to_owned(), bucket.to_owned());
        self.meta()
            .read(move |view| crate::auth::may_bypass_governance(view, &caller, &b))
            .await
            .map_err(errors::meta)
    }

    /// The bucket's object lock configuration, or InvalidRequest.
    async fn lock_config(&self, bucket: &str) -> S3Result<ObjectLockConfig> {
        let bucket = self.bucket(bucket).await?;
        lock::bucket_config(&bucket)
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(InvalidRequest, "{MISSING_CONFIG}"))
    }

    /// The lock of the version a Get*Retention / Get*LegalHold request names.
    async fn addressed_lock(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> S3Result<ObjectLock> {
        self.lock_config(bucket).await?;
        let version = self
            .data
            .lookup(VersionRef {
                bucket,
                key,
                version_id,
            })
            .await?;
        self.lock_of(&version).await
    }
}

/// `NoSuchObjectLockConfiguration`: the version has no retention (or legal hold).
fn no_lock() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchObjectLockConfiguration,
        "The specified object does not have a ObjectLock configuration",
    )
}

/// A configuration as the request gives it, validated as S3 does.
fn config_in(config: Option<ObjectLockConfiguration>) -> S3Result<ObjectLockConfig> {
    let config = config.ok_or_else(|| s3_error!(MalformedXML))?;
    let enabled = config
        .object_lock_enabled
        .as_ref()
        .is_some_and(|e| e.as_str() == ObjectLockEnabled::ENABLED);
    if !enabled {
        return Err(s3_error!(
            MalformedXML,
            "ObjectLockEnabled must be 'Enabled'"
        ));
    }
    let Some(rule) = config.rule else {
        return Ok(ObjectLockConfig::default());
    };
    let d = rule
        .default_retention
        .ok_or_else(|| s3_error!(MalformedXML))?;
    let mode = d.mode.as_ref().ok_or_else(|| s3_error!(MalformedXML))?;
    let period = match (d.days, d.years) {
        (Some(n), None) | (None, Some(n)) if n <= 0 => {
            return Err(s3_error!(
                InvalidArgument,
                "Default retention period must be a positive integer value."
            ));
        }
        (Some(days), None) => RetentionPeriod::Days(days.unsigned_abs()),
        (None, Some(years)) => RetentionPeriod::Years(years.unsigned_abs()),
        _ => {
            return Err(s3_error!(
                MalformedXML,
                "DefaultRetention needs exactly one of Days and Years"
            ));
        }
    };
    Ok(ObjectLockConfig {
        default_retention: Some(DefaultRetention {
            mode: mode_in(mode.as_str())?,
            period,
        }),
    })
}

fn config_out(config: &ObjectLockConfig) -> ObjectLockConfiguration {
    ObjectLockConfiguration {
        object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
        rule: config.default_retention.map(|d| {
            let (days, years) = match d.period {
                RetentionPeriod::Days(n) => (i32::try_from(n).ok(), None),
                RetentionPeriod::Years(n) => (None, i32::try_from(n).ok()),
            };
            ObjectLockRule {
                default_retention: Some(s3s::dto::DefaultRetention {
                    days,
                    mode: Some(mode_out(d.mode)),
                    years,
                }),
            }
        }),
    }
}

pub(crate) async fn put_object_lock_configuration(
    gw: &Gateway,
    req: S3Request<PutObjectLockConfigurationInput>,
) -> S3Result<S3Response<PutObjectLockConfigurationOutput>> {
    let i = req.input;
    let config = config_in(i.object_lock_configuration)?;
    gw.update_bucket(&i.bucket, BucketUpdate::ObjectLock(config))
        .await?;
    Ok(S3Response::new(PutObjectLockConfigurationOutput::default()))
}

pub(crate) async fn get_object_lock_configuration(
    gw: &Gateway,
    req: S3Request<GetObjectLockConfigurationInput>,
) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
    let bucket = gw.bucket(&req.input.bucket).await?;
    let config = lock::bucket_config(&bucket)
        .map_err(errors::meta)?
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::ObjectLockConfigurationNotFoundError,
                "Object Lock configuration does not exist for this bucket",
            )
        })?;
    Ok(S3Response::new(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(config_out(&config)),
    }))
}

pub(crate) async fn put_object_retention(
    gw: &Gateway,
    req: S3Request<PutObjectRetentionInput>,
) -> S3Result<S3Response<PutObjectRetentionOutput>> {
    let caller = requester(&req);
    let i = req.input;
    let retention = match i.retention {
        None => None,
        Some(r) => match (r.mode, r.retain_until_date) {
            (None, None) => None,
            (Some(mode), Some(until)) => Some(future_retention(mode.as_str(), &until)?),
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "Retention needs both Mode and RetainUntilDate"
                ));
            }
        },
    };
    let bypass = gw
        .bypass_governance(&caller, &i.bucket, i.bypass_governance_retention)
        .await?;
    let cmd = Command::SetObjectRetention {
        bucket: i.bucket,
        key: i.key,
        version_id: i.version_id,
        retention,
        bypass_governance: bypass,
        now: ids::now_millis(),
    };
    gw.meta().write(cmd).await.map_err(errors::meta)?;
    Ok(S3Response::new(PutObjectRetentionOutput::default()))
}

pub(crate) async fn get_object_retention(
    gw: &Gateway,
    req: S3Request<GetObjectRetentionInput>,
) -> S3Result<S3Response<GetObjectRetentionOutput>> {
    let i = req.input;
    let lock = gw
        .addressed_lock(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    let r = lock.retention.ok_or_else(no_lock)?;
    Ok(S3Response::new(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(mode_out(r.mode)),
            retain_until_date: Some(convert::timestamp(r.retain_until)),
        }),
    }))
}

pub(crate) async fn put_object_legal_hold(
    gw: &Gateway,
    req: S3Request<PutObjectLegalHoldInput>,
) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
    let i = req.input;
    let status = i
        .legal_hold
        .and_then(|h| h.status)
        .ok_or_else(|| s3_error!(MalformedXML, "LegalHold needs a Status"))?;
    let cmd = Command::SetObjectLegalHold {
        bucket: i.bucket,
        key: i.key,
        version_id: i.version_id,
        on: legal_hold_in(status.as_str())?,
    };
    gw.meta().write(cmd).await.map_err(errors::meta)?;
    Ok(S3Response::new(PutObjectLegalHoldOutput::default()))
}

pub(crate) async fn get_object_legal_hold(
    gw: &Gateway,
    req: S3Request<GetObjectLegalHoldInput>,
) -> S3Result<S3Response<GetObjectLegalHoldOutput>> {
    let i = req.input;
    let lock = gw
        .addressed_lock(&i.bucket, &i.key, i.version_id.as_deref())
        .await?;
    let on = lock.legal_hold.ok_or_else(no_lock)?;
    Ok(S3Response::new(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(legal_hold_status(on)),
        }),
    }))
}
