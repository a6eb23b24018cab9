//! What every background job shares: a loop that runs passes until the
//! server stops, backs off after failures, and reports its progress.
//!
//! A job ([`Job`]) does a bounded amount of work per pass and says whether
//! more is waiting. [`run`] calls it again at once while there is, every
//! idle interval when there is not (or when woken), and after a failure
//! waits twice as long each time, up to [`MAX_BACKOFF`]. Each job has its
//! own queue and its own loop, so no kind of work can hold up another.
//!
//! Progress ([`Progress`]) is kept in counters that `/metrics` exports
//! (`tessera_job_*{worker="…"}`) and that `tessera admin jobs` shows with a
//! rate and an ETA ([`JobReport`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{counter, gauge};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest wait after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long the rate is measured over before it starts again.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Why a pass failed (it is retried after a backoff).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The metadata could not be read or written.
    #[error("metadata: {0}")]
    Meta(#[from] tessera_raft::MetaError),
    /// A shard store failed.
    #[error("storage: {0}")]
    Storage(#[from] tessera_storage::StorageError),
}

/// Whether a pass left work behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// More is waiting: run again at once.
    More,
    /// Nothing left for now: wait for the idle interval or a wake-up.
    Idle,
}

/// One kind of background work.
#[async_trait::async_trait]
pub trait Job: Send + 'static {
    /// Does a bounded amount of work, recording it in `progress`.
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError>;
}

/// A job that runs only on the metadata leader: in a cluster of several
/// gateways each kind of background work is done once, by the member that
/// leads; the others' passes do nothing until they lead.
pub struct OnLeader<J> {
    meta: tessera_raft::MetaNode,
    job: J,
}

impl<J> OnLeader<J> {
    /// `job`, run only while `meta` leads.
    pub fn new(meta: tessera_raft::MetaNode, job: J) -> Self {
        OnLeader { meta, job }
    }
}

#[async_trait::async_trait]
impl<J: Job> Job for OnLeader<J> {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        if self.meta.leads() {
            self.job.pass(progress).await
        } else {
            Ok(Pass::Idle)
        }
    }
}

/// Registers `job` as `name` with `jobs` and runs it on its own task until
/// `stop` is cancelled, every `idle` when it has nothing to do.
pub fn spawn<J: Job>(
    jobs: &Jobs,
    name: &'static str,
    job: J,
    idle: Duration,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let progress = Progress::new(name);
    let wake = Arc::new(Notify::new());
    jobs.register(progress.clone(), wake.clone());
    tokio::spawn(run(job, progress, idle, wake, stop.clone()))
}

/// Runs `job` until `stop` is cancelled: at once while it has more, every
/// `idle` (or when `wake` is notified) when it has not, with a growing
/// backoff after failures.
pub async fn run<J: Job>(
    mut job: J,
    progress: Arc<Progress>,
    idle: Duration,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let pause = match job.pass(&progress).await {
            Ok(Pass::More) => {
                failures = 0;
                Duration::ZERO
            }
            Ok(Pass::Idle) => {
                failures = 0;
                idle
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                progress.pass_failed();
                let backoff = idle
                    .max(Duration::from_secs(1))
                    .saturating_mul(1 << failures.min(8))
                    .min(MAX_BACKOFF);
                tracing::warn!(job = progress.name, error = %e, retry_in = ?backoff, "background job pass failed");
                backoff
            }
        };
        if pause.is_zero() {
            // Let other tasks (and the stop signal) in between passes.
            tokio::task::yield_now().await;
            if stop.is_cancelled() {
                return;
            }
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// A job's progress: what waits, what was done, what failed.
#[derive(Debug)]
pub struct Progress {
    name: &'static str,
    queued: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    failed_passes: AtomicU64,
    requested: AtomicBool,
    window: Mutex<Window>,
}

/// Where the current rate window started.
#[derive(Debug, Clone, Copy)]
struct Window {
    since: Instant,
    done: u64,
    bytes: u64,
}

impl Progress {
    /// A job named `name` (the `job` label of its metrics), nothing done
    /// yet: its metrics are published at 0 from now on.
    pub fn new(name: &'static str) -> Arc<Self> {
        gauge!("tessera_job_queued", "worker" => name).set(0.0);
        for counter in [
            "tessera_job_done_total",
            "tessera_job_bytes_total",
            "tessera_job_failed_total",
            "tessera_job_failed_passes_total",
        ] {
            counter!(counter, "worker" => name).increment(0);
        }
        Arc::new(Progress {
            name,
            queued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed_passes: AtomicU64::new(0),
            requested: AtomicBool::new(false),
            window: Mutex::new(Window {
                since: Instant::now(),
                done: 0,
                bytes: 0,
            }),
        })
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether an operator asked for a pass now (`tessera admin job
    /// start`) since the last call; a scheduled job starts one early.
    pub fn take_request(&self) -> bool {
        self.requested.swap(false, Ordering::Relaxed)
    }

    /// How many items wait now.
    pub fn set_queued(&self, n: u64) {
        self.queued.store(n, Ordering::Relaxed);
        gauge!("tessera_job_queued", "worker" => self.name).set(n as f64);
    }

    /// `n` items finished, moving `bytes`.
    pub fn done(&self, n: u64, bytes: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        counter!("tessera_job_done_total", "worker" => self.name).increment(n);
        counter!("tessera_job_bytes_total", "worker" => self.name).increment(bytes);
    }

    /// `n` items failed (they stay queued and are retried).
    pub fn failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
        counter!("tessera_job_failed_total", "worker" => self.name).increment(n);
    }

    fn pass_failed(&self) {
        self.failed_passes.fetch_add(1, Ordering::Relaxed);
        counter!("tessera_job_failed_passes_total", "worker" => self.name).increment(1);
    }

    /// What the job has done, with its current rate and the time left at
    /// that rate.
    pub fn report(&self) -> JobReport {
        let queued = self.queued.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = window.since.elapsed();
        let secs = elapsed.as_secs_f64().max(1e-3);
        let items_per_sec = (done - window.done) as f64 / secs;
        let bytes_per_sec = (bytes - window.bytes) as f64 / secs;
        if elapsed > RATE_WINDOW {
            *window = Window {
                since: Instant::now(),
                done,
                bytes,
            };
        }
        JobReport {
            job: self.name.to_owned(),
            queued,
            done,
            failed: self.failed.load(Ordering::Relaxed),
            failed_passes: self.failed_passes.load(Ordering::Relaxed),
            bytes,
            items_per_sec,
            bytes_per_sec,
            eta_secs: (queued > 0 && items_per_sec > 0.0).then(|| queued as f64 / items_per_sec),
        }
    }
}

/// One job's progress as `tessera admin jobs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job's name.
    pub job: String,
    /// Items waiting.
    pub queued: u64,
    /// Items finished since the server started.
    pub done: u64,
    /// Item attempts that failed (retried later).
    pub failed: u64,
    /// Passes that failed as a whole (retried after a backoff).
    pub failed_passes: u64,
    /// Bytes moved since the server started.
    pub bytes: u64,
    /// Items finished per second over the last minute or so.
    pub items_per_sec: f64,
    /// Bytes moved per second over the last minute or so.
    pub bytes_per_sec: f64,
    /// Seconds until the queue is empty at that rate (none when idle).
    pub eta_secs: Option<f64>,
}

/// Every job of the server, for the admin API.
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    jobs: Arc<Mutex<Vec<Registered>>>,
}

/// A registered job: its progress and what wakes it.
type Registered = (Arc<Progress>, Arc<Notify>);

impl Jobs {
    /// No jobs yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a job's progress and its wake-up handle.
    pub fn register(&self, progress: Arc<Progress>, wake: Arc<Notify>) {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((progress, wake));
    }

    /// Every job's report, in registration order.
    pub fn reports(&self) -> Vec<JobReport> {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(p, _)| p.report())
            .collect()
    }

    /// Wakes the job named `name` for a pass now (work was queued for it);
    /// false when there is none.
    pub fn wake(&self, name: &str) -> bool {
        self.find(name, false)
    }

    /// Starts a pass of the job named `name` now, as an operator asks
    /// (`tessera admin job start`): a scheduled job starts early; false when
    /// there is none.
    pub fn start(&self, name: &str) -> bool {
        self.find(name, true)
    }

    fn find(&self, name: &str, requested: bool) -> bool {
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        match jobs.iter().find(|(p, _)| p.name == name) {
            Some((progress, wake)) => {
                if requested {
                    progress.requested.store(true, Ordering::Relaxed);
                }
                wake.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Limits the bytes a job moves per second: each caller waits for its
/// turn, so a burst is spread out instead of refused.
#[derive(Debug)]
pub struct RateLimit {
    bytes_per_sec: u64,
    next: Mutex<Instant>,
}

impl RateLimit {
    /// At most `bytes_per_sec` (0: unlimited).
    pub fn new(bytes_per_sec: u64) -> Self {
        RateLimit {
            bytes_per_sec,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits until `bytes` more may be moved.
    pub async fn take(&self, bytes: u64) {
        if self.bytes_per_sec == 0 {
            return;
        }
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
            start
        };
        tokio::time::sleep_until(start.into()).await;
    }
}
