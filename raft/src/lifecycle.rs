//! Bucket lifecycle (S3 `PutBucketLifecycleConfiguration`): the rules a
//! bucket keeps in its settings, and what they decide about a key's
//! versions and uploads at a given time.
//!
//! The rules are judged here without side effects, by the gateway (the
//! `x-amz-expiration` header) and by the lifecycle worker, which proposes
//! one [`Command::ApplyLifecycle`](crate::command::Command::ApplyLifecycle)
//! per action. The state machine then checks that the version is still as
//! the worker saw it ([`VersionStamp`]) and that no object lock protects
//! it, so a racing write, tag change or legal hold wins over the worker.
//!
//! Times follow S3: a rule of `Days` acts at the first midnight UTC at
//! least that many days after the object was written (or became
//! noncurrent, or the upload began); a rule of `Date` acts from that date on.

use serde::{Deserialize, Serialize};

use crate::error::MetaError;
use crate::model::{Bucket, Millis, MultipartUpload, ObjectVersion, Tag};
use crate::tables::{decode, encode};

/// The name of the [`Bucket::settings`] entry holding a bucket's
/// [`LifecycleConfig`] (postcard-encoded).
pub const LIFECYCLE_SETTING: &str = "lifecycle";

/// Milliseconds in a day.
pub const DAY: Millis = 86_400_000;

/// A bucket's lifecycle configuration: its rules, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    /// The rules (1 to 1000, unique ids).
    pub rules: Vec<LifecycleRule>,
}

/// One lifecycle rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    /// The rule's id (unique in the configuration).
    pub id: String,
    /// `Status` Enabled; a disabled rule is kept but never acts.
    pub enabled: bool,
    /// Which objects the rule applies to.
    pub filter: RuleFilter,
    /// What happens to current versions (or lone delete markers).
    pub expiration: Option<Expiration>,
    /// What happens to noncurrent versions.
    pub noncurrent: Option<NoncurrentExpiration>,
    /// Days after which an incomplete multipart upload is aborted.
    pub abort_upload_days: Option<u32>,
}

/// How a rule names the objects it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleFilter {
    /// The rule-level `Prefix` of the first lifecycle API.
    LegacyPrefix(String),
    /// A `Filter`: one condition (or none), or several under `And`.
    Filter {
        /// Whether the conditions were given under `And`.
        and: bool,
        /// The conditions, all of which must hold.
        conditions: Conditions,
    },
}

/// Conditions of a filter; all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    /// The key starts with this.
    pub prefix: Option<String>,
    /// The object has every one of these tags.
    pub tags: Vec<Tag>,
    /// The object is larger than this many bytes.
    pub size_greater_than: Option<u64>,
    /// The object is smaller than this many bytes.
    pub size_less_than: Option<u64>,
}

/// A rule's `Expiration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// Current versions expire this many days after they were written.
    Days(u32),
    /// Current versions expire from this time on (midnight UTC).
    Date(Millis),
    /// Whether delete markers left without any other version are removed.
    ExpiredObjectDeleteMarker(bool),
}

/// A rule's `NoncurrentVersionExpiration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    /// Days a version has been noncurrent before it is removed.
    pub days: u32,
    /// How many of the newest noncurrent versions are kept regardless.
    pub newer_versions: Option<u32>,
}

/// What the worker saw of a version; the state machine acts only on a
/// version still exactly like this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionStamp {
    /// The version id.
    pub version_id: String,
    /// Its Last-Modified.
    pub last_modified: Millis,
    /// Its ETag.
    pub etag: String,
    /// Its tags (a filter may depend on them).
    pub tags: Vec<Tag>,
}

impl VersionStamp {
    /// The stamp of `version`.
    pub fn of(version: &ObjectVersion) -> Self {
        VersionStamp {
            version_id: version.version_id.clone(),
            last_modified: version.last_modified,
            etag: version.etag.clone(),
            tags: version.tags.clone(),
        }
    }

    /// Whether `version` is still the one stamped.
    pub fn matches(&self, version: &ObjectVersion) -> bool {
        *self == VersionStamp::of(version)
    }
}

/// One change a lifecycle rule makes to a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleAction {
    /// Expire the current version: removed in an unversioned bucket, else
    /// hidden behind a new delete marker. It must still be the latest.
    ExpireCurrent(VersionStamp),
    /// Remove a noncurrent version for good. It must still be noncurrent,
    /// with at least `keep` noncurrent versions newer than it (the rule's
    /// `NewerNoncurrentVersions`).
    RemoveNoncurrent {
        /// The version.
        version: VersionStamp,
        /// Noncurrent versions that must remain newer than it.
        keep: u32,
    },
    /// Remove a delete marker that is its key's only version.
    RemoveExpiredMarker {
        /// The marker's version id.
        version_id: String,
    },
}

/// A bucket's lifecycle configuration, `None` when it has none.
pub fn bucket_config(bucket: &Bucket) -> Result<Option<LifecycleConfig>, MetaError> {
    bucket
        .settings
        .get(LIFECYCLE_SETTING)
        .map(|bytes| decode(bytes))
        .transpose()
}

/// The stored form of a configuration (the value of [`LIFECYCLE_SETTING`]).
pub fn encode_config(config: &LifecycleConfig) -> Result<Vec<u8>, MetaError> {
    encode(config)
}

/// The first midnight UTC at least `days` days after `start`.
pub fn after_days(start: Millis, days: u32) -> Millis {
    let t = start.saturating_add(i64::from(days).saturating_mul(DAY));
    t.div_euclid(DAY)
        .saturating_add(i64::from(t.rem_euclid(DAY) != 0))
        .saturating_mul(DAY)
}

impl Conditions {
    /// Whether an object of `key`, `size` bytes and `tags` meets them.
    pub fn matches(&self, key: &str, size: u64, tags: &[Tag]) -> bool {
        self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.tags.iter().all(|t| tags.contains(t))
            && self.size_greater_than.is_none_or(|n| size > n)
            && self.size_less_than.is_none_or(|n| size < n)
    }
}

impl RuleFilter {
    /// The filter's conditions (a legacy prefix is a prefix condition).
    pub fn conditions(&self) -> Conditions {
        match self {
            RuleFilter::LegacyPrefix(p) => Conditions {
                prefix: Some(p.clone()),
                ..Conditions::default()
            },
            RuleFilter::Filter { conditions, .. } => conditions.clone(),
        }
    }
}

impl LifecycleRule {
    /// Whether the rule applies to `version` (a delete marker: by its key
    /// alone, and only under a filter without tags or sizes).
    fn applies_to(&self, version: &ObjectVersion) -> bool {
        let c = self.filter.conditions();
        if version.is_delete_marker() {
            let plain =
                c.tags.is_empty() && c.size_greater_than.is_none() && c.size_less_than.is_none();
            return plain && c.matches(&version.key, 0, &[]);
        }
        c.matches(&version.key, version.size, &version.tags)
    }

    /// When the rule expires `version` as the current version, if it does.
    fn current_expiry(&self, version: &ObjectVersion) -> Option<Millis> {
        match self.expiration? {
            Expiration::Days(d) => Some(after_days(version.last_modified, d)),
            Expiration::Date(date) => Some(date),
            Expiration::ExpiredObjectDeleteMarker(_) => None,
        }
    }
}

impl LifecycleConfig {
    /// The enabled rules.
    fn enabled(&self) -> impl Iterator<Item = &LifecycleRule> {
        self.rules.iter().filter(|r| r.enabled)
    }

    /// When the current version `version` expires and by which rule (the
    /// earliest of the enabled rules that expire it), for `x-amz-expiration`.
    pub fn expiry(&self, version: &ObjectVersion) -> Option<(Millis, &str)> {
        if version.is_delete_marker() {
            return None;
        }
        self.enabled()
            .filter(|r| r.applies_to(version))
            .filter_map(|r| r.current_expiry(version).map(|t| (t, r.id.as_str())))
            .min_by_key(|(t, _)| *t)
    }

    /// When an upload begun at `upload.initiated` is to be aborted, if a rule says so.
    pub fn upload_abort_time(&self, upload: &MultipartUpload) -> Option<Millis> {
        self.enabled()
            .filter(|r| r.filter.conditions().matches(&upload.key, 0, &[]))
            .filter_map(|r| r.abort_upload_days)
            .map(|d| after_days(upload.initiated, d))
            .min()
    }

    /// What the rules do at `now` to one key whose versions are
    /// `versions`, newest first (the first is the current one).
    pub fn plan(&self, versions: &[ObjectVersion], now: Millis) -> Vec<LifecycleAction> {
        let mut actions = Vec::new();
        let Some((current, older)) = versions.split_first() else {
            return actions;
        };
        if self.expiry(current).is_some_and(|(t, _)| t <= now) {
            actions.push(LifecycleAction::ExpireCurrent(VersionStamp::of(current)));
        }
        // A noncurrent version became noncurrent when its successor was written.
        let mut removed = 0;
        for (newer, (version, successor)) in older.iter().zip(versions).enumerate() {
            let newer = u32::try_from(newer).unwrap_or(u32::MAX);
            // The fewest newer noncurrent versions a rule that removes it keeps.
            let keep = self
                .enabled()
                .filter_map(|r| r.noncurrent.filter(|_| r.applies_to(version)))
                .filter(|n| after_days(successor.last_modified, n.days) <= now)
                .map(|n| n.newer_versions.unwrap_or(0))
                .filter(|keep| newer >= *keep)
                .min();
            if let Some(keep) = keep {
                removed += 1;
                actions.push(LifecycleAction::RemoveNoncurrent {
                    version: VersionStamp::of(version),
                    keep,
                });
            }
        }
        // A lone marker goes under `ExpiredObjectDeleteMarker`, or, as S3
        // does with rules that expire current versions, under `Days` once
        // it is as old as they say and under `Date` once that has come.
        let alone = removed == older.len();
        let marker_due =
            self.enabled()
                .filter(|r| r.applies_to(current))
                .any(|r| match r.expiration {
                    Some(Expiration::ExpiredObjectDeleteMarker(on)) => on,
                    Some(Expiration::Days(d)) => after_days(current.last_modified, d) <= now,
                    Some(Expiration::Date(date)) => date <= now,
                    None => false,
                });
        if current.is_delete_marker() && alone && marker_due {
            actions.push(LifecycleAction::RemoveExpiredMarker {
                version_id: current.version_id.clone(),
            });
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ObjectData, SystemMetadata};

    fn version(key: &str, id: &str, modified: Millis, marker: bool) -> ObjectVersion {
        ObjectVersion {
            bucket: "b".into(),
            key: key.into(),
            version_id: id.into(),
            last_modified: modified,
            size: if marker { 0 } else { 10 },
            etag: String::new(),
            checksums: Vec::new(),
            system: SystemMetadata::default(),
            user: Default::default(),
            tags: Vec::new(),
            owner: String::new(),
            wrapped_key: Vec::new(),
            data: if marker {
                ObjectData::DeleteMarker
            } else {
                ObjectData::Parts(Vec::new())
            },
        }
    }

    fn rule(
        expiration: Option<Expiration>,
        noncurrent: Option<NoncurrentExpiration>,
    ) -> LifecycleRule {
        LifecycleRule {
            id: "r".into(),
            enabled: true,
            filter: RuleFilter::Filter {
                and: false,
                conditions: Conditions {
                    prefix: Some("logs/".into()),
                    ..Conditions::default()
                },
            },
            expiration,
            noncurrent,
            abort_upload_days: None,
        }
    }

    #[test]
    fn days_round_up_to_the_next_midnight() {
        assert_eq!(after_days(0, 1), DAY);
        assert_eq!(after_days(1, 1), 2 * DAY);
        assert_eq!(after_days(DAY - 1, 2), 3 * DAY);
    }

    #[test]
    fn current_versions_expire_after_their_days() {
        let config = LifecycleConfig {
            rules: vec![rule(Some(Expiration::Days(2)), None)],
        };
        let v = version("logs/a", "v1", 10, false);
        // Written just after midnight: due at the third midnight.
        assert_eq!(config.expiry(&v), Some((3 * DAY, "r")));
        assert!(
            config
                .plan(std::slice::from_ref(&v), 3 * DAY - 1)
                .is_empty()
        );
        assert_eq!(
            config.plan(std::slice::from_ref(&v), 3 * DAY),
            vec![LifecycleAction::ExpireCurrent(VersionStamp::of(&v))]
        );
        let other = version("data/a", "v1", 10, false);
        assert!(config.plan(&[other], 10 * DAY).is_empty());
        let mut disabled = config.clone();
        disabled.rules[0].enabled = false;
        assert!(disabled.plan(&[v], 10 * DAY).is_empty());
    }

    #[test]
    fn noncurrent_versions_go_after_their_days_keeping_the_newest() {
        let config = LifecycleConfig {
            rules: vec![rule(
                Some(Expiration::ExpiredObjectDeleteMarker(true)),
                Some(NoncurrentExpiration {
                    days: 1,
                    newer_versions: Some(1),
                }),
            )],
        };
        let versions = vec![
            version("logs/a", "v3", 3 * DAY, false),
            version("logs/a", "v2", 2 * DAY, false),
            version("logs/a", "v1", DAY, false),
        ];
        // v2 is noncurrent since day 3, v1 since day 2; one is kept.
        let actions = config.plan(&versions, 10 * DAY);
        assert_eq!(
            actions,
            vec![LifecycleAction::RemoveNoncurrent {
                version: VersionStamp::of(&versions[2]),
                keep: 1
            }]
        );
        // A marker whose versions all go is removed with them.
        let mut config = config;
        config.rules[0].noncurrent = Some(NoncurrentExpiration {
            days: 1,
            newer_versions: None,
        });
        let with_marker = vec![
            version("logs/a", "m", 3 * DAY, true),
            version("logs/a", "v1", DAY, false),
        ];
        assert!(config.plan(&with_marker, 4 * DAY - 1).is_empty());
        assert_eq!(
            config.plan(&with_marker, 4 * DAY).last(),
            Some(&LifecycleAction::RemoveExpiredMarker {
                version_id: "m".into()
            })
        );
    }

    #[test]
    fn lone_markers_go_under_days_once_old_enough() {
        let config = LifecycleConfig {
            rules: vec![rule(Some(Expiration::Days(1)), None)],
        };
        let marker = [version("logs/a", "m", 3 * DAY, true)];
        assert!(config.plan(&marker, 4 * DAY - 1).is_empty());
        assert_eq!(
            config.plan(&marker, 4 * DAY),
            vec![LifecycleAction::RemoveExpiredMarker {
                version_id: "m".into()
            }]
        );
        let with_version = [marker[0].clone(), version("logs/a", "v", DAY, false)];
        assert!(config.plan(&with_version, 10 * DAY).is_empty());
    }

    #[test]
    fn lone_markers_go_under_date_once_it_has_come() {
        let config = LifecycleConfig {
            rules: vec![rule(Some(Expiration::Date(5 * DAY)), None)],
        };
        let marker = [version("logs/a", "m", DAY, true)];
        assert!(config.plan(&marker, 5 * DAY - 1).is_empty());
        assert_eq!(
            config.plan(&marker, 5 * DAY),
            vec![LifecycleAction::RemoveExpiredMarker {
                version_id: "m".into()
            }]
        );
        let with_version = [marker[0].clone(), version("logs/a", "v", DAY, false)];
        assert!(config.plan(&with_version, 10 * DAY).is_empty());
    }

    #[test]
    fn filters_check_prefix_tags_and_sizes() {
        let c = Conditions {
            prefix: Some("a".into()),
            tags: vec![Tag {
                key: "k".into(),
                value: "v".into(),
            }],
            size_greater_than: Some(5),
            size_less_than: Some(20),
        };
        let tags = [Tag {
            key: "k".into(),
            value: "v".into(),
        }];
        assert!(c.matches("ab", 10, &tags));
        assert!(!c.matches("b", 10, &tags));
        assert!(!c.matches("ab", 10, &[]));
        assert!(!c.matches("ab", 5, &tags));
        assert!(!c.matches("ab", 20, &tags));
    }
}
