//! Object lock (write-once versions): the rules the state machine applies
//! to a version's retention and legal hold, and where a bucket keeps its
//! object lock configuration.
//!
//! A locked version cannot be removed: [`ObjectLock::refusal`] is checked
//! inside the state machine before a version is deleted, so no gateway can
//! race it, and since its segments are queued for deletion only when the
//! version is removed, GC never touches a locked version's shards. The
//! lock of a version lives in a table of its own, keyed by the version id,
//! so repairs (which rewrite the version's placement) and snapshots carry
//! it unchanged.
//!
//! # Clocks
//!
//! The state machine reads no clock: every command that needs the time
//! carries its proposer's, so every member decides the same.
//!
//! - Whether a retention still lasts is decided with the time of the
//!   command that asks (a delete, a retention change). A gateway whose
//!   clock is behind only keeps versions locked longer; one whose clock is
//!   ahead by S can end retentions S early for the commands it proposes,
//!   and no more: its time is not kept for others' decisions.
//! - A default retention starts at the later of the write's time and the
//!   latest write time seen before in a lock bucket (the lock clock of
//!   [`Applier`](crate::apply::Applier)), so a gateway whose clock is
//!   behind cannot make a new version's default retention end early. A
//!   clock far ahead can only lengthen later default retentions.

use crate::command::ApplyError;
use crate::error::MetaError;
use crate::model::{
    Bucket, Millis, ObjectLock, ObjectLockConfig, Retention, RetentionMode, RetentionPeriod,
};
use crate::tables::{decode, encode};

/// The name of the [`Bucket::settings`] entry holding a bucket's
/// [`ObjectLockConfig`] (postcard-encoded).
pub const OBJECT_LOCK_SETTING: &str = "object-lock";

/// Milliseconds in a day of a default retention.
const DAY: Millis = 86_400_000;

/// The message S3 gives when object lock refuses a change.
pub const PROTECTED: &str = "Access Denied because object protected by object lock.";

/// A bucket's object lock configuration, `None` when object lock is not enabled.
pub fn bucket_config(bucket: &Bucket) -> Result<Option<ObjectLockConfig>, MetaError> {
    bucket
        .settings
        .get(OBJECT_LOCK_SETTING)
        .map(|bytes| decode(bytes))
        .transpose()
}

/// The stored form of a configuration (the value of [`OBJECT_LOCK_SETTING`]).
pub fn encode_config(config: &ObjectLockConfig) -> Result<Vec<u8>, MetaError> {
    encode(config)
}

impl RetentionPeriod {
    /// The period in milliseconds (saturating).
    pub fn millis(self) -> Millis {
        let days = match self {
            RetentionPeriod::Days(d) => i64::from(d),
            RetentionPeriod::Years(y) => i64::from(y).saturating_mul(365),
        };
        days.saturating_mul(DAY)
    }
}

impl Retention {
    /// Whether the retention still protects its version at `now`.
    pub fn lasts(&self, now: Millis) -> bool {
        now < self.retain_until
    }
}

impl ObjectLock {
    /// The lock a new version written at `created` gets in a bucket with
    /// `config`: the retention the write asked for, else the bucket's
    /// default; the legal hold the write asked for.
    pub fn for_new_version(
        requested: Option<&ObjectLock>,
        config: &ObjectLockConfig,
        created: Millis,
    ) -> ObjectLock {
        let retention = requested.and_then(|r| r.retention).or_else(|| {
            config.default_retention.map(|d| Retention {
                mode: d.mode,
                retain_until: created.saturating_add(d.period.millis()),
            })
        });
        ObjectLock {
            retention,
            legal_hold: requested.and_then(|r| r.legal_hold),
        }
    }

    /// Whether there is nothing to keep (no retention, legal hold never set).
    pub fn is_empty(&self) -> bool {
        *self == ObjectLock::default()
    }

    /// Why the version may not be removed at `now`, if it may not: a legal
    /// hold, a compliance retention, or a governance retention without
    /// `bypass_governance`.
    pub fn refusal(&self, now: Millis, bypass_governance: bool) -> Option<ApplyError> {
        let held = self.legal_hold == Some(true);
        let retained = self.retention.is_some_and(|r| {
            r.lasts(now) && (r.mode == RetentionMode::Compliance || !bypass_governance)
        });
        (held || retained).then(|| ApplyError::AccessDenied(PROTECTED.to_owned()))
    }
}

/// Refuses replacing the retention `old` by `new` at `now` unless S3
/// allows it: anything goes once `old` has ended; while it lasts, a
/// compliance retention may only be extended, a governance one extended or
/// made compliance, and shortened, removed or changed otherwise only with
/// `bypass_governance`.
pub fn check_retention_change(
    old: Option<&Retention>,
    new: Option<&Retention>,
    now: Millis,
    bypass_governance: bool,
) -> Result<(), ApplyError> {
    let Some(old) = old.filter(|o| o.lasts(now)) else {
        return Ok(());
    };
    let allowed = match (old.mode, new) {
        (RetentionMode::Governance, _) if bypass_governance => true,
        (_, None) => false,
        (RetentionMode::Compliance, Some(n)) => {
            n.mode == RetentionMode::Compliance && n.retain_until >= old.retain_until
        }
        (RetentionMode::Governance, Some(n)) => n.retain_until >= old.retain_until,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApplyError::AccessDenied(PROTECTED.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DefaultRetention;

    fn retention(mode: RetentionMode, until: Millis) -> Retention {
        Retention {
            mode,
            retain_until: until,
        }
    }

    #[test]
    fn new_versions_get_the_requested_retention_or_the_default() {
        let config = ObjectLockConfig {
            default_retention: Some(DefaultRetention {
                mode: RetentionMode::Governance,
                period: RetentionPeriod::Days(2),
            }),
        };
        let lock = ObjectLock::for_new_version(None, &config, 1000);
        assert_eq!(
            lock.retention,
            Some(retention(RetentionMode::Governance, 1000 + 2 * DAY))
        );
        let asked = ObjectLock {
            retention: Some(retention(RetentionMode::Compliance, 5)),
            legal_hold: Some(true),
        };
        assert_eq!(
            ObjectLock::for_new_version(Some(&asked), &config, 1000),
            asked
        );
        let hold_only = ObjectLock {
            retention: None,
            legal_hold: Some(true),
        };
        let lock = ObjectLock::for_new_version(Some(&hold_only), &config, 0);
        assert_eq!(lock.retention.map(|r| r.retain_until), Some(2 * DAY));
        assert_eq!(lock.legal_hold, Some(true));
        assert!(ObjectLock::for_new_version(None, &ObjectLockConfig::default(), 0).is_empty());
        assert_eq!(RetentionPeriod::Years(1).millis(), 365 * DAY);
    }

    #[test]
    fn removal_is_refused_while_a_lock_lasts() {
        let gov = ObjectLock {
            retention: Some(retention(RetentionMode::Governance, 100)),
            legal_hold: None,
        };
        assert!(gov.refusal(99, false).is_some());
        assert!(gov.refusal(99, true).is_none());
        assert!(gov.refusal(100, false).is_none());
        let comp = ObjectLock {
            retention: Some(retention(RetentionMode::Compliance, 100)),
            legal_hold: Some(false),
        };
        assert!(comp.refusal(99, true).is_some());
        assert!(comp.refusal(100, false).is_none());
        let held = ObjectLock {
            retention: None,
            legal_hold: Some(true),
        };
        assert!(held.refusal(i64::MAX, true).is_some());
    }

    #[test]
    fn retention_changes_follow_s3() {
        let g = |t| retention(RetentionMode::Governance, t);
        let c = |t| retention(RetentionMode::Compliance, t);
        let ok = |old: Option<Retention>, new: Option<Retention>, bypass| {
            check_retention_change(old.as_ref(), new.as_ref(), 50, bypass).is_ok()
        };
        // Nothing or an ended retention: anything goes.
        assert!(ok(None, Some(g(10)), false));
        assert!(ok(Some(c(50)), None, false));
        // Compliance: only extended, never weakened.
        assert!(ok(Some(c(100)), Some(c(100)), false));
        assert!(ok(Some(c(100)), Some(c(200)), false));
        assert!(!ok(Some(c(100)), Some(c(99)), true));
        assert!(!ok(Some(c(100)), Some(g(200)), true));
        assert!(!ok(Some(c(100)), None, true));
        // Governance: extended or made compliance freely, else with bypass.
        assert!(ok(Some(g(100)), Some(g(150)), false));
        assert!(ok(Some(g(100)), Some(c(100)), false));
        assert!(!ok(Some(g(100)), Some(g(99)), false));
        assert!(!ok(Some(g(100)), None, false));
        assert!(ok(Some(g(100)), Some(g(60)), true));
        assert!(ok(Some(g(100)), None, true));
    }
}
