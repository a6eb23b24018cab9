//! Lifecycle: carries out the buckets' lifecycle rules (see
//! `tessera_raft::lifecycle`) once a day, and when an operator asks
//! (`tessera admin lifecycle run`).
//!
//! A run walks every bucket with enabled rules: its versions, key by key
//! (current versions expired, noncurrent versions past their days
//! removed, delete markers left alone removed), then its uploads in
//! progress (aborted past their days). Each change is one
//! `Command::ApplyLifecycle` (or `AbortMultipartUpload`), removing data as
//! a client's delete does (so GC frees the shards), and made by the state
//! machine only if the version is still as the worker saw it and no object
//! lock protects it: locked versions are skipped and counted.
//!
//! The rules are judged as of the run's time: now, or, when the operator
//! asks for it (`--days-ahead`), that many days later, to try rules out
//! without waiting. Object locks are always judged at the real time.
//! Changes are made at most [`Config::lifecycle_rate`](crate::config::Config)
//! per second. Runs go on the metadata leader; the time of the last
//! finished run is kept in `<data-dir>/lifecycle.state`, so a restart does
//! not make a run due early.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::counter;
use serde::{Deserialize, Serialize};
use tessera_raft::MetaError;
use tessera_raft::command::{ApplyError, Command};
use tessera_raft::lifecycle::{self, LifecycleAction, LifecycleConfig};
use tessera_raft::listing::{ListUploadsQuery, ListVersionsQuery};
use tessera_raft::model::{Millis, ObjectVersion};

use super::job::{Job, JobError, Pass, Progress, RateLimit};
use super::pass_state::PassState;
use crate::data::{DataPlane, ids};

/// Versions (or uploads) read per step.
const BATCH: usize = 256;
/// How often a run is due.
pub const INTERVAL: Duration = Duration::from_secs(86_400);

/// What a run did (the one under way, or the last).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Current versions expired (removed, or hidden behind a delete marker).
    pub objects_expired: u64,
    /// Noncurrent versions removed.
    pub versions_removed: u64,
    /// Delete markers removed (left without any other version).
    pub markers_removed: u64,
    /// Incomplete multipart uploads aborted.
    pub uploads_aborted: u64,
    /// Versions left because object lock protects them.
    pub skipped_locked: u64,
    /// Versions left because they changed since the worker looked.
    pub skipped_changed: u64,
}

/// Where lifecycle stands, as `tessera admin lifecycle status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleStatus {
    /// Whether a run was asked for and has not started yet.
    pub pending: bool,
    /// Whether a run is under way.
    pub running: bool,
    /// Runs finished since the server started.
    pub runs: u64,
    /// The time the rules are judged at in the run under way or the last
    /// (milliseconds since the epoch).
    pub as_of: Option<Millis>,
    /// What that run did.
    pub counts: RunCounts,
}

/// A run an operator asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// Judge the rules as if this many more days had passed.
    #[serde(default)]
    pub days_ahead: u32,
}

/// Shared between the worker and the admin API: runs asked for, and the status.
#[derive(Debug, Clone, Default)]
pub struct LifecycleControl {
    inner: Arc<Mutex<(Option<RunRequest>, LifecycleStatus)>>,
}

impl LifecycleControl {
    /// Nothing asked, nothing run.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<RunRequest>, LifecycleStatus)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a run (the worker starts it at its next turn: wake it).
    pub fn request(&self, request: RunRequest) {
        self.lock().0 = Some(request);
    }

    fn take_request(&self) -> Option<RunRequest> {
        self.lock().0.take()
    }

    /// Where lifecycle stands.
    pub fn status(&self) -> LifecycleStatus {
        let state = self.lock();
        LifecycleStatus {
            pending: state.0.is_some(),
            ..state.1.clone()
        }
    }

    fn update(&self, f: impl FnOnce(&mut LifecycleStatus)) {
        f(&mut self.lock().1);
    }
}

/// What part of a bucket the run is at.
#[derive(Debug)]
enum Phase {
    /// Its versions, after these markers; `key` holds the versions read so
    /// far of the key the last page ended in.
    Versions {
        marker: Option<(String, String)>,
        key: Vec<ObjectVersion>,
    },
    /// Its uploads in progress, after these markers.
    Uploads { marker: Option<(String, String)> },
}

/// A run under way.
#[derive(Debug)]
struct Run {
    as_of: Millis,
    buckets: VecDeque<String>,
    phase: Phase,
}

/// How one proposed change ended: made, refused by object lock, refused
/// because the version changed, or its bucket is gone.
enum Outcome {
    Done,
    Locked,
    Changed,
    BucketGone,
}

/// The lifecycle job.
pub struct LifecycleJob {
    data: DataPlane,
    control: LifecycleControl,
    rate: RateLimit,
    state: PassState,
    run: Option<Run>,
}

impl LifecycleJob {
    /// Lifecycle over the data plane's metadata, at most `per_sec` changes
    /// a second (0: no limit), its last run's time kept in `state_file`.
    pub fn new(
        data: DataPlane,
        control: LifecycleControl,
        per_sec: u64,
        state_file: PathBuf,
    ) -> Self {
        for name in METRICS {
            counter!(name).increment(0);
        }
        LifecycleJob {
            data,
            control,
            rate: RateLimit::new(per_sec),
            state: PassState::load(state_file),
            run: None,
        }
    }

    /// Starts a run if one is asked for or due.
    async fn start(&mut self, progress: &Progress) -> Result<bool, JobError> {
        let asked = self.control.take_request();
        let requested = progress.take_request();
        if asked.is_none() && !requested && !self.state.due(INTERVAL) {
            return Ok(false);
        }
        let days = asked.map_or(0, |r| r.days_ahead);
        let as_of = ids::now_millis().saturating_add(i64::from(days) * lifecycle::DAY);
        let buckets = self
            .data
            .meta()
            .read_local(|view| {
                let mut names = VecDeque::new();
                for bucket in view.buckets()? {
                    let config = lifecycle::bucket_config(&bucket)?;
                    if config.is_some_and(|c| c.rules.iter().any(|r| r.enabled)) {
                        names.push_back(bucket.name);
                    }
                }
                Ok(names)
            })
            .await?;
        tracing::info!(buckets = buckets.len(), as_of, "lifecycle: run started");
        self.control.update(|s| {
            s.running = true;
            s.as_of = Some(as_of);
            s.counts = RunCounts::default();
        });
        self.run = Some(Run {
            as_of,
            buckets,
            phase: Phase::start(),
        });
        Ok(true)
    }

    /// The bucket's configuration now (`None`: gone, or no rules left).
    async fn config(&self, bucket: &str) -> Result<Option<LifecycleConfig>, JobError> {
        let name = bucket.to_owned();
        let bucket = self
            .data
            .meta()
            .read_local(move |view| view.bucket(&name))
            .await?;
        Ok(match bucket {
            Some(b) => lifecycle::bucket_config(&b)?,
            None => None,
        })
    }

    /// Proposes one change, at the rate allowed.
    async fn propose(&self, cmd: Command) -> Result<Outcome, JobError> {
        self.rate.take(1).await;
        match self.data.meta().write(cmd).await {
            Ok(_) => Ok(Outcome::Done),
            Err(MetaError::Apply(ApplyError::AccessDenied(_))) => Ok(Outcome::Locked),
            Err(MetaError::Apply(ApplyError::PreconditionFailed | ApplyError::NoSuchUpload)) => {
                Ok(Outcome::Changed)
            }
            Err(MetaError::Apply(ApplyError::NoSuchBucket)) => Ok(Outcome::BucketGone),
            Err(e) => Err(e.into()),
        }
    }

    /// Proposes one change and records how it ended (`bytes`: the data it
    /// frees); false when the bucket is gone.
    async fn change(
        &self,
        change: Change,
        cmd: Command,
        bytes: u64,
        progress: &Progress,
    ) -> Result<bool, JobError> {
        match self.propose(cmd).await? {
            Outcome::Done => {
                counter!(change.metric()).increment(1);
                self.control.update(|s| change.count(&mut s.counts));
                progress.done(1, bytes);
            }
            Outcome::Locked => {
                counter!(SKIPPED_LOCKED).increment(1);
                self.control.update(|s| s.counts.skipped_locked += 1);
            }
            Outcome::Changed => self.control.update(|s| s.counts.skipped_changed += 1),
            Outcome::BucketGone => return Ok(false),
        }
        Ok(true)
    }

    /// Carries out what the rules decide for one key (its versions, newest
    /// first); false when the bucket is gone.
    async fn key(
        &self,
        config: &LifecycleConfig,
        versions: &[ObjectVersion],
        as_of: Millis,
        progress: &Progress,
    ) -> Result<bool, JobError> {
        let Some(first) = versions.first() else {
            return Ok(true);
        };
        for action in config.plan(versions, as_of) {
            let (change, bytes) = match &action {
                LifecycleAction::ExpireCurrent(_) => (Change::Expired, 0),
                LifecycleAction::RemoveNoncurrent { version, .. } => {
                    let size = versions
                        .iter()
                        .find(|v| v.version_id == version.version_id)
                        .map_or(0, |v| v.size);
                    (Change::VersionRemoved, size)
                }
                LifecycleAction::RemoveExpiredMarker { .. } => (Change::MarkerRemoved, 0),
            };
            let cmd = Command::ApplyLifecycle {
                bucket: first.bucket.clone(),
                key: first.key.clone(),
                action,
                marker_version_id: ids::version_id(),
                now: ids::now_millis(),
            };
            if !self.change(change, cmd, bytes, progress).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A page of a bucket's versions: the keys it completes are carried
    /// out, the versions of the key it ends in kept for the next page.
    /// Returns the next phase, `None` when the bucket is gone.
    async fn versions_page(
        &self,
        bucket: &str,
        config: &LifecycleConfig,
        marker: Option<(String, String)>,
        mut key: Vec<ObjectVersion>,
        as_of: Millis,
        progress: &Progress,
    ) -> Result<Option<Phase>, JobError> {
        let q = ListVersionsQuery {
            key_marker: marker.as_ref().map(|m| m.0.clone()),
            version_id_marker: marker.map(|m| m.1),
            max_keys: BATCH,
            ..ListVersionsQuery::default()
        };
        let b = bucket.to_owned();
        let page = match self
            .data
            .meta()
            .read_local(move |view| view.list_versions(&b, &q))
            .await
        {
            Err(MetaError::Apply(ApplyError::NoSuchBucket)) => return Ok(None),
            page => page?,
        };
        for (version, _) in page.versions {
            if key.first().is_some_and(|k| k.key != version.key) {
                if !self.key(config, &key, as_of, progress).await? {
                    return Ok(None);
                }
                key.clear();
            }
            key.push(version);
        }
        if page.is_truncated {
            return Ok(Some(Phase::Versions {
                marker: page.next_key_marker.zip(page.next_version_id_marker),
                key,
            }));
        }
        if !self.key(config, &key, as_of, progress).await? {
            return Ok(None);
        }
        Ok(Some(Phase::Uploads { marker: None }))
    }

    /// A page of a bucket's uploads in progress, overdue ones aborted.
    /// Returns the next phase, `None` when the bucket is finished or gone.
    async fn uploads_page(
        &self,
        bucket: &str,
        config: &LifecycleConfig,
        marker: Option<(String, String)>,
        as_of: Millis,
        progress: &Progress,
    ) -> Result<Option<Phase>, JobError> {
        let q = ListUploadsQuery {
            key_marker: marker.as_ref().map(|m| m.0.clone()),
            upload_id_marker: marker.map(|m| m.1),
            max_uploads: BATCH,
            ..ListUploadsQuery::default()
        };
        let b = bucket.to_owned();
        let page = match self
            .data
            .meta()
            .read_local(move |view| view.list_uploads(&b, &q))
            .await
        {
            Err(MetaError::Apply(ApplyError::NoSuchBucket)) => return Ok(None),
            page => page?,
        };
        for upload in &page.uploads {
            if config.upload_abort_time(upload).is_none_or(|t| t > as_of) {
                continue;
            }
            let cmd = Command::AbortMultipartUpload {
                bucket: upload.bucket.clone(),
                key: upload.key.clone(),
                upload_id: upload.upload_id.clone(),
            };
            if !self.change(Change::UploadAborted, cmd, 0, progress).await? {
                return Ok(None);
            }
        }
        Ok(page.is_truncated.then(|| Phase::Uploads {
            marker: page.next_key_marker.zip(page.next_upload_id_marker),
        }))
    }

    /// One step of the run: a page of the first bucket's versions or
    /// uploads. Returns false when that bucket is finished.
    async fn step(&mut self, progress: &Progress) -> Result<bool, JobError> {
        let Some(run) = self.run.as_mut() else {
            return Ok(false);
        };
        let Some(bucket) = run.buckets.front().cloned() else {
            return Ok(false);
        };
        let as_of = run.as_of;
        let phase = std::mem::replace(&mut run.phase, Phase::start());
        let Some(config) = self.config(&bucket).await? else {
            return Ok(false);
        };
        let next = match phase {
            Phase::Versions { marker, key } => {
                self.versions_page(&bucket, &config, marker, key, as_of, progress)
                    .await?
            }
            Phase::Uploads { marker } => {
                self.uploads_page(&bucket, &config, marker, as_of, progress)
                    .await?
            }
        };
        match (next, self.run.as_mut()) {
            (Some(next), Some(run)) => {
                run.phase = next;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// A kind of change a run makes.
#[derive(Debug, Clone, Copy)]
enum Change {
    Expired,
    VersionRemoved,
    MarkerRemoved,
    UploadAborted,
}

impl Change {
    /// The counter of changes of this kind.
    fn metric(self) -> &'static str {
        match self {
            Change::Expired => METRICS[0],
            Change::VersionRemoved => METRICS[1],
            Change::MarkerRemoved => METRICS[2],
            Change::UploadAborted => METRICS[3],
        }
    }

    /// Counts one change of this kind in `counts`.
    fn count(self, counts: &mut RunCounts) {
        let n = match self {
            Change::Expired => &mut counts.objects_expired,
            Change::VersionRemoved => &mut counts.versions_removed,
            Change::MarkerRemoved => &mut counts.markers_removed,
            Change::UploadAborted => &mut counts.uploads_aborted,
        };
        *n += 1;
    }
}

impl Phase {
    /// The start of a bucket.
    fn start() -> Self {
        Phase::Versions {
            marker: None,
            key: Vec::new(),
        }
    }
}

/// The counter of versions object lock kept.
const SKIPPED_LOCKED: &str = "tessera_lifecycle_skipped_locked_total";

/// The counters lifecycle publishes.
const METRICS: [&str; 5] = [
    "tessera_lifecycle_objects_expired_total",
    "tessera_lifecycle_versions_removed_total",
    "tessera_lifecycle_delete_markers_removed_total",
    "tessera_lifecycle_uploads_aborted_total",
    SKIPPED_LOCKED,
];

#[async_trait::async_trait]
impl Job for LifecycleJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        if self.run.is_none() && !self.start(progress).await? {
            return Ok(Pass::Idle);
        }
        if !self.step(progress).await?
            && let Some(run) = self.run.as_mut()
        {
            run.buckets.pop_front();
            run.phase = Phase::start();
        }
        let left = self.run.as_ref().map_or(0, |r| r.buckets.len());
        progress.set_queued(left as u64);
        if left > 0 {
            return Ok(Pass::More);
        }
        self.run = None;
        self.state.finish();
        self.control.update(|s| {
            s.running = false;
            s.runs += 1;
        });
        tracing::info!(counts = ?self.control.status().counts, "lifecycle: run finished");
        Ok(Pass::Idle)
    }
}
