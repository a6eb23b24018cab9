//! A warp-style S3 load generator that drives any S3 endpoint with the Rust
//! SDK: PUT, GET, mixed and LIST workloads over a given object size,
//! concurrency and count or duration, reporting throughput, latency
//! percentiles, errors and (optionally) the server's peak RSS and CPU time.
//!
//! [`run`] is the whole benchmark; the `tessera-bench` binary is its CLI.

mod cpu;
mod report;
mod rss;
mod s3;
mod stats;
pub mod units;
mod workload;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;

pub use report::{PhaseReport, Report};
pub use rss::RssPeak;
pub use s3::{RequestOptions, Target};
pub use stats::{OpKind, OpSummary};
pub use workload::{Mix, Workload};

use cpu::{cpu_seconds, spent};
use rss::RssSampler;
use s3::BenchBucket;
use workload::{Job, Keys, Limit, MixedState, run_phase};

/// Everything one benchmark run needs.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Endpoint and credentials.
    pub target: Target,
    /// Signing, checksums, multipart and verification choices.
    pub options: RequestOptions,
    /// Bucket to use, created if missing.
    pub bucket: String,
    /// What load to generate.
    pub workload: Workload,
    /// Object size in bytes.
    pub size: u64,
    /// Objects to upload: the PUT count of `put` when neither `ops` nor
    /// `duration` is given, the data set of `get`, `mixed` and `list`.
    pub objects: u64,
    /// Operations in the measured phase; `None` with no duration means
    /// `objects` for `put` and `get`, and 100 for `list` and `mixed`.
    pub ops: Option<u64>,
    /// Length of the measured phase.
    pub duration: Option<Duration>,
    /// Operations started per second in the measured phase, at most.
    pub rate: Option<f64>,
    /// Operations in flight at once.
    pub concurrency: usize,
    /// Unmeasured run of the same load before the measured phase.
    pub warmup: Option<Duration>,
    /// Operation weights of the `mixed` workload.
    pub mix: Mix,
    /// Leave the objects (and a bucket the run created) in place.
    pub keep: bool,
    /// Sample this process's VmRSS during the run.
    pub server_pid: Option<u32>,
    /// Report the CPU time these processes spend in each phase.
    pub cpu_pids: Vec<u32>,
}

/// The operation count used when neither `ops` nor `duration` is given.
const DEFAULT_REPEATED_OPS: u64 = 100;

/// Runs the benchmark: sets up the bucket and data set, runs the warm-up
/// and measured phases, cleans up, and reports.
pub async fn run(config: &BenchConfig) -> Result<Report, String> {
    let size = usize::try_from(config.size).map_err(|_| "object size too large".to_owned())?;
    let payload = random_payload(size);
    let client = s3::client(&config.target, &config.options).await;
    let bucket = BenchBucket::new(client, config.bucket.clone(), payload, config.options);
    let created = bucket.ensure_exists(&config.target.region).await?;
    let keys = Keys::new(format!("tessera-bench-{:08x}/", rand::random::<u32>()));
    let sampler = config.server_pid.map(RssSampler::start).transpose()?;

    let phases = run_phases(config, &bucket, &keys, sampler.as_ref()).await;
    let cleanup_error = if config.keep {
        None
    } else {
        cleanup(&bucket, &keys, created).await.err()
    };
    Ok(Report {
        workload: config.workload,
        endpoint: config.target.endpoint.clone(),
        bucket: config.bucket.clone(),
        object_size: config.size,
        objects: config.objects,
        concurrency: config.concurrency,
        sign_payload: config.options.sign_payload,
        checksums: if config.options.checksums {
            "when_supported"
        } else {
            "when_required"
        },
        multipart_size: config.options.multipart_size,
        phases,
        server_memory: sampler.map(RssSampler::finish),
        cleanup_error,
    })
}

/// Random bytes (so nothing in between can compress them), made once and
/// shared by every request.
fn random_payload(size: usize) -> Bytes {
    let mut payload = vec![0u8; size];
    rand::rng().fill_bytes(&mut payload);
    Bytes::from(payload)
}

async fn run_phases(
    config: &BenchConfig,
    bucket: &BenchBucket,
    keys: &Keys,
    sampler: Option<&RssSampler>,
) -> Vec<PhaseReport> {
    let mut phases = Vec::new();
    let concurrency = config.concurrency;
    let objects = config.objects;
    let measured = Limit {
        ops: config.ops.or(match (config.duration, config.workload) {
            (Some(_), _) => None,
            (None, Workload::Put | Workload::Get) => Some(objects),
            (None, Workload::List | Workload::Mixed) => Some(DEFAULT_REPEATED_OPS),
        }),
        duration: config.duration,
        rate: config.rate,
    };
    let job = match config.workload {
        Workload::Put => Job::Put {
            keys: keys.clone(),
            warmup: false,
        },
        other => {
            let prepare = Job::Put {
                keys: keys.clone(),
                warmup: false,
            };
            let limit = Limit {
                ops: Some(objects),
                duration: None,
                rate: None,
            };
            phases.push(
                measure(
                    "prepare",
                    bucket,
                    Arc::new(prepare),
                    concurrency,
                    limit,
                    sampler,
                    &config.cpu_pids,
                )
                .await,
            );
            match other {
                Workload::Get => Job::Get {
                    keys: keys.clone(),
                    objects,
                },
                Workload::List => Job::List {
                    keys: keys.clone(),
                    objects,
                },
                _ => Job::Mixed(MixedState::new(keys.clone(), config.mix, objects)),
            }
        }
    };
    let job = Arc::new(job);
    if let Some(warmup) = config.warmup {
        let warmup_job = match config.workload {
            Workload::Put => Arc::new(Job::Put {
                keys: keys.clone(),
                warmup: true,
            }),
            _ => Arc::clone(&job),
        };
        let limit = Limit {
            ops: None,
            duration: Some(warmup),
            rate: None,
        };
        run_phase(bucket, warmup_job, concurrency, limit).await;
        if let Some(sampler) = sampler {
            sampler.take_phase_peak();
        }
    }
    let name = config.workload.name();
    phases.push(
        measure(
            name,
            bucket,
            job,
            concurrency,
            measured,
            sampler,
            &config.cpu_pids,
        )
        .await,
    );
    phases
}

/// Runs one measured phase, with the server's peak RSS during it.
async fn measure(
    name: &str,
    bucket: &BenchBucket,
    job: Arc<Job>,
    concurrency: usize,
    limit: Limit,
    sampler: Option<&RssSampler>,
    cpu_pids: &[u32],
) -> PhaseReport {
    if let Some(sampler) = sampler {
        sampler.take_phase_peak();
    }
    let cpu_before = cpu_seconds(cpu_pids);
    let (recorder, elapsed) = run_phase(bucket, job, concurrency, limit).await;
    let server_cpu_s = spent(&cpu_before, &cpu_seconds(cpu_pids));
    PhaseReport {
        name: name.to_owned(),
        concurrency,
        elapsed_s: elapsed.as_secs_f64(),
        ops: recorder.summarise(elapsed),
        peak_rss_bytes: sampler.map(RssSampler::take_phase_peak),
        server_cpu_s,
    }
}

/// Deletes the run's objects, and the bucket if this run created it.
async fn cleanup(bucket: &BenchBucket, keys: &Keys, created: bool) -> Result<(), String> {
    bucket
        .delete_all(keys.prefix())
        .await
        .map_err(|e| format!("deleting the run's objects: {e}"))?;
    if created {
        bucket
            .delete_bucket()
            .await
            .map_err(|e| format!("deleting bucket {}: {e}", bucket.name()))?;
    }
    Ok(())
}
