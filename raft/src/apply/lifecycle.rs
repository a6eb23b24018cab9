//! The state machine's side of bucket lifecycle (rules in
//! [`crate::lifecycle`]): the configuration in a bucket's settings, and
//! the worker's actions, each made only if the version is still as the
//! worker saw it, through the same removal as a client's delete.

use redb::ReadableTable;

use super::{Applier, Step};
use crate::command::{ApplyError, CommandResponse};
use crate::lifecycle::{self, LifecycleAction, LifecycleConfig};
use crate::model::ObjectVersion;
use crate::tables;

impl Applier<'_> {
    /// `PutBucketLifecycleConfiguration` / `DeleteBucketLifecycle`.
    pub(super) fn set_bucket_lifecycle(
        &mut self,
        name: &str,
        config: Option<&LifecycleConfig>,
    ) -> Step<CommandResponse> {
        let mut bucket = self.bucket(name)?;
        match config {
            Some(config) => {
                bucket.settings.insert(
                    lifecycle::LIFECYCLE_SETTING.to_owned(),
                    lifecycle::encode_config(config)?,
                );
            }
            None => {
                bucket.settings.remove(lifecycle::LIFECYCLE_SETTING);
            }
        }
        self.put_bucket(&bucket)?;
        Ok(CommandResponse::Done)
    }

    /// How many versions of the key are newer than the one at `index`.
    fn versions_newer_than(&self, bucket: &str, key: &str, index: u64) -> Step<usize> {
        let start = tables::object_key(bucket, key);
        let end = tables::version_key(bucket, key, index);
        Ok(self
            .versions
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
            .count())
    }

    /// One action of the lifecycle worker: `marker` is the delete marker an
    /// expiry of the current version adds.
    pub(super) fn apply_lifecycle(
        &mut self,
        log_index: u64,
        mut marker: ObjectVersion,
        action: &LifecycleAction,
    ) -> Step<CommandResponse> {
        let bucket = self.bucket(&marker.bucket)?;
        let (b, k) = (bucket.name.as_str(), marker.key.clone());
        let changed = || -> Step<CommandResponse> { Err(ApplyError::PreconditionFailed.into()) };
        let latest = tables::latest_version(&self.versions, b, &k)?;
        let version_id = match action {
            LifecycleAction::ExpireCurrent(stamp) => {
                match &latest {
                    Some((_, v)) if !v.is_delete_marker() && stamp.matches(v) => {}
                    _ => return changed(),
                }
                marker.owner = bucket.owner.clone();
                None
            }
            LifecycleAction::RemoveNoncurrent { version, keep } => {
                let Some((index, found)) = self.find(b, &k, &version.version_id)? else {
                    return changed();
                };
                // Newer versions but the current one are the noncurrent ones.
                let noncurrent_newer = self.versions_newer_than(b, &k, index)?.saturating_sub(1);
                let still_noncurrent = latest.is_some_and(|(i, _)| i != index);
                if !version.matches(&found)
                    || !still_noncurrent
                    || noncurrent_newer < usize::try_from(*keep).unwrap_or(usize::MAX)
                {
                    return changed();
                }
                Some(version.version_id.as_str())
            }
            LifecycleAction::RemoveExpiredMarker { version_id } => {
                let alone = match &latest {
                    Some((_, v)) => {
                        v.is_delete_marker()
                            && v.version_id == *version_id
                            && self.count_versions(b, &k)? == 1
                    }
                    None => false,
                };
                if !alone {
                    return changed();
                }
                Some(version_id.as_str())
            }
        };
        self.delete_object(log_index, marker, version_id, None, false)
    }

    /// How many versions (markers included) the key has.
    fn count_versions(&self, bucket: &str, key: &str) -> Step<usize> {
        let start = tables::object_key(bucket, key);
        let end = tables::after_object(bucket, key);
        Ok(self
            .versions
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
            .count())
    }
}
