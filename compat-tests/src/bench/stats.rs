//! What each worker records per operation, and the summary of a phase:
//! counts, throughput and latency percentiles per kind of operation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// The S3 operations the load generator issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OpKind {
    /// PutObject, or a whole multipart upload.
    Put,
    /// GetObject, reading the body to the end.
    Get,
    /// DeleteObject.
    Delete,
    /// ListObjectsV2 through every page of the run's objects.
    List,
}

impl OpKind {
    /// The upper-case name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Put => "PUT",
            OpKind::Get => "GET",
            OpKind::Delete => "DELETE",
            OpKind::List => "LIST",
        }
    }
}

/// The result of one operation as a worker sees it.
#[derive(Debug)]
pub struct Outcome {
    /// Which operation ran.
    pub kind: OpKind,
    /// From just before the request to the last byte of the response.
    pub latency: Duration,
    /// Object bytes moved (PUT body or GET body), listed keys for LIST, or
    /// the error that ended the operation.
    pub result: Result<Moved, String>,
}

/// What a successful operation moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// Object bytes sent or received.
    pub bytes: u64,
    /// Keys returned by a listing.
    pub keys: u64,
}

/// Per-kind raw samples, kept by one worker and merged at the end of a phase.
#[derive(Debug, Default)]
pub struct Recorder {
    kinds: BTreeMap<OpKind, Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    /// Latencies of successful operations in microseconds.
    latencies_us: Vec<u64>,
    bytes: u64,
    keys: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Recorder {
    /// Adds one operation's outcome.
    pub fn record(&mut self, outcome: Outcome) {
        let samples = self.kinds.entry(outcome.kind).or_default();
        match outcome.result {
            Ok(moved) => {
                let micros = u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX);
                samples.latencies_us.push(micros);
                samples.bytes += moved.bytes;
                samples.keys += moved.keys;
            }
            Err(message) => {
                samples.errors += 1;
                samples.first_error.get_or_insert(message);
            }
        }
    }

    /// Folds another worker's samples into this one.
    pub fn merge(&mut self, other: Recorder) {
        for (kind, theirs) in other.kinds {
            let ours = self.kinds.entry(kind).or_default();
            ours.latencies_us.extend(theirs.latencies_us);
            ours.bytes += theirs.bytes;
            ours.keys += theirs.keys;
            ours.errors += theirs.errors;
            if ours.first_error.is_none() {
                ours.first_error = theirs.first_error;
            }
        }
    }

    /// Summarises every kind of operation over a phase that took `elapsed`.
    pub fn summarise(self, elapsed: Duration) -> BTreeMap<OpKind, OpSummary> {
        self.kinds
            .into_iter()
            .map(|(kind, samples)| (kind, samples.summarise(elapsed)))
            .collect()
    }
}

impl Samples {
    fn summarise(mut self, elapsed: Duration) -> OpSummary {
        self.latencies_us.sort_unstable();
        let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let ops = self.latencies_us.len() as u64;
        let percentile_ms = |p: f64| percentile(&self.latencies_us, p) as f64 / 1e3;
        OpSummary {
            ops,
            errors: self.errors,
            bytes: self.bytes,
            keys_listed: self.keys,
            ops_per_sec: ops as f64 / seconds,
            mb_per_sec: self.bytes as f64 / 1e6 / seconds,
            mean_ms: if ops == 0 {
                0.0
            } else {
                self.latencies_us.iter().sum::<u64>() as f64 / ops as f64 / 1e3
            },
            p50_ms: percentile_ms(50.0),
            p90_ms: percentile_ms(90.0),
            p99_ms: percentile_ms(99.0),
            max_ms: self.latencies_us.last().copied().unwrap_or(0) as f64 / 1e3,
            first_error: self.first_error,
        }
    }
}

/// The nearest-rank percentile of sorted samples (0 for no samples).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Throughput and latency of one kind of operation over one phase.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    /// Successful operations.
    pub ops: u64,
    /// Failed operations (not in the latencies).
    pub errors: u64,
    /// Object bytes moved by successful operations.
    pub bytes: u64,
    /// Keys returned by successful listings.
    pub keys_listed: u64,
    /// Successful operations per second of the phase.
    pub ops_per_sec: f64,
    /// Object bytes per second of the phase, in MB (10^6 bytes).
    pub mb_per_sec: f64,
    /// Mean latency in milliseconds.
    pub mean_ms: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile latency in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Slowest operation in milliseconds.
    pub max_ms: f64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: OpKind, millis: u64, bytes: u64) -> Outcome {
        Outcome {
            kind,
            latency: Duration::from_millis(millis),
            result: Ok(Moved { bytes, keys: 0 }),
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50.0), 50);
        assert_eq!(percentile(&samples, 99.0), 99);
        assert_eq!(percentile(&samples, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn merged_recorders_summarise_per_kind() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for millis in 1..=50 {
            a.record(ok(OpKind::Put, millis, 1_000_000));
        }
        for millis in 51..=100 {
            b.record(ok(OpKind::Put, millis, 1_000_000));
        }
        b.record(Outcome {
            kind: OpKind::Get,
            latency: Duration::from_millis(3),
            result: Err("NoSuchKey".into()),
        });
        a.merge(b);
        let summary = a.summarise(Duration::from_secs(2));
        let put = &summary[&OpKind::Put];
        assert_eq!((put.ops, put.errors, put.bytes), (100, 0, 100_000_000));
        assert_eq!(put.ops_per_sec, 50.0);
        assert_eq!(put.mb_per_sec, 50.0);
        assert_eq!((put.p50_ms, put.p99_ms, put.max_ms), (50.0, 99.0, 100.0));
        let get = &summary[&OpKind::Get];
        assert_eq!((get.ops, get.errors), (0, 1));
        assert_eq!(get.first_error.as_deref(), Some("NoSuchKey"));
    }
}
