//! The state machine's side of object lock (rules in [`crate::lock`]):
//! locks of versions and of uploads in progress, their checks, and the
//! lock clock.

use redb::ReadableTable;

use super::{Applier, Step};
use crate::command::{ApplyError, CommandResponse};
use crate::lock;
use crate::model::{Bucket, Millis, ObjectLock, ObjectLockConfig, Retention};
use crate::tables::{self, decode, encode};

/// Counter holding the latest time of a write into a lock bucket (u64-BE
/// milliseconds; see "Clocks" in [`crate::lock`]).
const LOCK_CLOCK: &[u8] = b"lock_clock";

/// S3's answer to a lock request on a bucket without object lock.
const MISSING_CONFIG: &str = "Bucket is missing Object Lock Configuration";

impl Applier<'_> {
    /// The bucket's object lock configuration, `None` without object lock.
    pub(super) fn lock_config(&self, bucket: &Bucket) -> Step<Option<ObjectLockConfig>> {
        Ok(lock::bucket_config(bucket)?)
    }

    /// The bucket's object lock configuration, or InvalidRequest.
    fn required_lock_config(&self, bucket: &str) -> Step<ObjectLockConfig> {
        let bucket = self.bucket(bucket)?;
        self.lock_config(&bucket)?
            .ok_or_else(|| ApplyError::InvalidRequest(MISSING_CONFIG.to_owned()).into())
    }

    /// When a default retention of a version written at `now` starts:
    /// `now`, or the latest write time seen when that is later.
    fn retention_start(&self, now: Millis) -> Step<Millis> {
        let seen = match self.counters.get(LOCK_CLOCK)? {
            Some(bytes) => i64::try_from(tables::be_u64(bytes.value())?).unwrap_or(i64::MAX),
            None => 0,
        };
        Ok(now.max(seen))
    }

    /// Moves the lock clock forward to `now` (never back).
    fn advance_lock_clock(&mut self, now: Millis) -> Step<()> {
        if self.retention_start(now)? == now {
            let value = u64::try_from(now).unwrap_or(0);
            self.counters
                .insert(LOCK_CLOCK, value.to_be_bytes().as_slice())?;
        }
        Ok(())
    }

    /// The lock of a version (empty when it has none).
    pub(super) fn version_lock(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Step<ObjectLock> {
        let k = tables::version_id_key(bucket, key, version_id);
        match self.object_locks.get(k.as_slice())? {
            Some(bytes) => Ok(decode(bytes.value())?),
            None => Ok(ObjectLock::default()),
        }
    }

    /// Stores the lock of a version (an empty one removes the entry).
    pub(super) fn write_version_lock(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: &str,
        lock: &ObjectLock,
    ) -> Step<()> {
        let k = tables::version_id_key(bucket, key, version_id);
        if lock.is_empty() {
            self.object_locks.remove(k.as_slice())?;
        } else {
            self.object_locks
                .insert(k.as_slice(), encode(lock)?.as_slice())?;
        }
        Ok(())
    }

    /// Refuses (AccessDenied) unless the version may be removed at `now`.
    pub(super) fn check_removable(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        now: Millis,
        bypass_governance: bool,
    ) -> Step<()> {
        let lock = self.version_lock(bucket, key, version_id)?;
        match lock.refusal(now, bypass_governance) {
            Some(refusal) => Err(refusal.into()),
            None => Ok(()),
        }
    }

    /// Refuses (AccessDenied) a write of `version_id` (as the bucket's
    /// versioning stores it) that would replace a locked version. Under
    /// object lock versioning stays Enabled, so only a reused version id
    /// could replace one.
    pub(super) fn check_replaceable(
        &self,
        bucket: &Bucket,
        key: &str,
        version_id: &str,
        now: Millis,
    ) -> Step<()> {
        let id = if bucket.versioning == crate::model::Versioning::Enabled {
            version_id
        } else {
            crate::model::NULL_VERSION_ID
        };
        self.check_removable(&bucket.name, key, id, now, false)
    }

    /// The lock a new version of `bucket` written at `created` gets;
    /// refuses a requested lock in a bucket without object lock.
    pub(super) fn new_version_lock(
        &self,
        bucket: &Bucket,
        requested: Option<&ObjectLock>,
        created: Millis,
    ) -> Step<Option<ObjectLock>> {
        match (self.lock_config(bucket)?, requested) {
            (Some(config), _) => Ok(Some(ObjectLock::for_new_version(
                requested,
                &config,
                self.retention_start(created)?,
            ))),
            (None, Some(_)) => Err(ApplyError::InvalidRequest(MISSING_CONFIG.to_owned()).into()),
            (None, None) => Ok(None),
        }
    }

    /// Gives a just stored version its lock (`None`: the bucket has no
    /// object lock) and moves the lock clock to its time.
    pub(super) fn lock_new_version(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: &str,
        lock: Option<ObjectLock>,
        created: Millis,
    ) -> Step<()> {
        if let Some(lock) = lock {
            self.write_version_lock(bucket, key, version_id, &lock)?;
            self.advance_lock_clock(created)?;
        }
        Ok(())
    }

    /// Records the lock an upload's version is to get.
    pub(super) fn write_upload_lock(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        lock: &ObjectLock,
    ) -> Step<()> {
        self.required_lock_config(bucket)?;
        let k = tables::upload_key(bucket, key, upload_id);
        self.upload_locks
            .insert(k.as_slice(), encode(lock)?.as_slice())?;
        Ok(())
    }

    /// The lock an upload's version is to get, if its creation asked for one.
    pub(super) fn upload_lock(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Step<Option<ObjectLock>> {
        super::record(
            &self.upload_locks,
            &tables::upload_key(bucket, key, upload_id),
        )
    }

    /// Forgets the lock of an upload (completed or discarded).
    pub(super) fn forget_upload_lock(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Step<()> {
        let k = tables::upload_key(bucket, key, upload_id);
        self.upload_locks.remove(k.as_slice())?;
        Ok(())
    }

    /// `PutObjectRetention` (see [`crate::command::Command::SetObjectRetention`]).
    pub(super) fn set_object_retention(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        retention: Option<&Retention>,
        bypass_governance: bool,
        now: Millis,
    ) -> Step<CommandResponse> {
        self.required_lock_config(bucket)?;
        let (_, version) = self.addressed_version(bucket, key, version_id)?;
        let mut lock = self.version_lock(bucket, key, &version.version_id)?;
        lock::check_retention_change(lock.retention.as_ref(), retention, now, bypass_governance)?;
        lock.retention = retention.copied();
        self.write_version_lock(bucket, key, &version.version_id, &lock)?;
        Ok(CommandResponse::Done)
    }

    /// `PutObjectLegalHold`.
    pub(super) fn set_object_legal_hold(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Step<CommandResponse> {
        self.required_lock_config(bucket)?;
        let (_, version) = self.addressed_version(bucket, key, version_id)?;
        let mut lock = self.version_lock(bucket, key, &version.version_id)?;
        lock.legal_hold = Some(on);
        self.write_version_lock(bucket, key, &version.version_id, &lock)?;
        Ok(CommandResponse::Done)
    }
}

/// Refuses a bucket created with object lock but without versioning
/// Enabled, or with a configuration that does not decode.
pub(super) fn check_new_bucket(bucket: &Bucket) -> Step<()> {
    let config = lock::bucket_config(bucket)
        .map_err(|_| ApplyError::InvalidRequest("invalid object lock configuration".into()))?;
    if config.is_some() && bucket.versioning != crate::model::Versioning::Enabled {
        return Err(ApplyError::InvalidBucketState(
            "a bucket with object lock must have versioning enabled".into(),
        )
        .into());
    }
    Ok(())
}
