//! `tessera-bench`: a warp-style S3 load generator for Tessera or any other
//! S3 endpoint.
//!
//! ```sh
//! tessera-bench get --endpoint http://127.0.0.1:9000 --access-key KEY --secret-key SECRET \
//!     --objects 8 --size 64MiB --concurrency 4
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use compat_tests::bench::units::{parse_duration, parse_size};
use compat_tests::bench::{BenchConfig, Mix, RequestOptions, Target, Workload, run};

/// Drives an S3 endpoint with PUT, GET, mixed or LIST load and reports
/// throughput, latency percentiles and errors.
///
/// Credentials and region come only from the flags (or the TESSERA_* variables
/// named below), never from AWS_* variables or ~/.aws, unless --aws-env is given.
#[derive(Debug, Parser)]
#[command(name = "tessera-bench", version)]
struct Cli {
    /// The load: put, get (uploads --objects first), mixed or list.
    #[arg(value_enum)]
    workload: Workload,

    /// S3 endpoint URL.
    #[arg(
        long,
        env = "TESSERA_BENCH_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    endpoint: String,

    /// Access key id.
    #[arg(long, env = "TESSERA_ACCESS_KEY", hide_env_values = true)]
    access_key: Option<String>,

    /// Secret access key.
    #[arg(long, env = "TESSERA_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,

    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    region: String,

    /// Take credentials and region from the standard AWS environment and
    /// config files instead of the flags.
    #[arg(long)]
    aws_env: bool,

    /// Bucket to use; created if missing (and then deleted at the end unless --keep).
    #[arg(long, default_value = "tessera-bench")]
    bucket: String,

    /// Object size, e.g. 4KiB, 64MiB, 1GB.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    size: u64,

    /// Objects to upload: what `put` writes when neither --ops nor --duration
    /// is given, the data set of get, mixed and list.
    #[arg(long, default_value_t = 100)]
    objects: u64,

    /// Operations in the measured phase (default: --objects for put and get,
    /// 100 for list and mixed, unlimited with --duration).
    #[arg(long)]
    ops: Option<u64>,

    /// Length of the measured phase, e.g. 30s, 2m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Operations started per second at most in the measured phase (a
    /// steady load, e.g. 12 × 4 MiB PUTs a second for 50 MB/s).
    #[arg(long)]
    rate: Option<f64>,

    /// Operations in flight at once.
    #[arg(long, short = 'c', default_value_t = 16)]
    concurrency: usize,

    /// Unmeasured load of the same kind before the measured phase, e.g. 5s.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,

    /// Mixed workload weights.
    #[arg(long, default_value = "get=60,put=25,delete=10,list=5")]
    mix: Mix,

    /// Upload objects larger than this with multipart, in parts of this size
    /// (at least 5MiB for most servers), e.g. 50MiB as s5cmd does.
    #[arg(long, value_parser = parse_size)]
    multipart_size: Option<u64>,

    /// Parts of one multipart upload sent at once.
    #[arg(long, default_value_t = 4)]
    part_concurrency: usize,

    /// Sign PUT payloads with SHA-256 instead of sending UNSIGNED-PAYLOAD.
    #[arg(long)]
    sign_payload: bool,

    /// Let the SDK add CRC32 checksums (aws-chunked trailers) whenever an
    /// operation allows them, as its default does; without this they are sent
    /// only when an operation requires one.
    #[arg(long)]
    checksums: bool,

    /// Compare every byte read by GET with what was written.
    #[arg(long)]
    verify: bool,

    /// Leave the run's objects (and a bucket it created) in place.
    #[arg(long)]
    keep: bool,

    /// Sample this server process's RSS during the run and report the peak.
    #[arg(long)]
    server_pid: Option<u32>,

    /// Report the CPU time (user and system) this process spends in each
    /// phase, in the JSON report, per process; repeat it for a server made
    /// of several processes (a gateway and its storage nodes).
    #[arg(long = "cpu-pid")]
    cpu_pids: Vec<u32>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl Cli {
    fn into_config(self) -> Result<(BenchConfig, bool), String> {
        let (access_key, secret_key) = match (self.access_key, self.secret_key, self.aws_env) {
            (Some(access), Some(secret), _) => (access, secret),
            (_, _, true) => (String::new(), String::new()),
            _ => {
                return Err(
                    "give --access-key and --secret-key (or TESSERA_ACCESS_KEY and \
                     TESSERA_SECRET_KEY), or --aws-env"
                        .into(),
                );
            }
        };
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if self.objects == 0 && self.workload != Workload::Put {
            return Err("--objects must be at least 1 for get, mixed and list".into());
        }
        let config = BenchConfig {
            target: Target {
                endpoint: self.endpoint,
                access_key,
                secret_key,
                region: self.region,
                aws_env: self.aws_env,
            },
            options: RequestOptions {
                sign_payload: self.sign_payload,
                checksums: self.checksums,
                multipart_size: self.multipart_size,
                part_concurrency: self.part_concurrency,
                verify: self.verify,
            },
            bucket: self.bucket,
            workload: self.workload,
            size: self.size,
            objects: self.objects,
            ops: self.ops,
            duration: self.duration,
            rate: self.rate,
            concurrency: self.concurrency,
            warmup: self.warmup,
            mix: self.mix,
            keep: self.keep,
            server_pid: self.server_pid,
            cpu_pids: self.cpu_pids.clone(),
        };
        Ok((config, self.json))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (config, json) = match Cli::parse().into_config() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("tessera-bench: {message}");
            return ExitCode::from(2);
        }
    };
    let report = match run(&config).await {
        Ok(report) => report,
        Err(message) => {
            eprintln!("tessera-bench: {message}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("tessera-bench: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{report}");
    }
    if report.errors() > 0 || report.cleanup_error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
