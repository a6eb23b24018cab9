//! The results of a run, as a table for people and as JSON for scripts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use super::rss::RssPeak;
use super::stats::{OpKind, OpSummary};
use super::units::{format_latency, format_size};
use super::workload::Workload;

/// Everything a run measured, with the settings that shaped it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The workload that ran.
    pub workload: Workload,
    /// The endpoint under load.
    pub endpoint: String,
    /// The bucket used.
    pub bucket: String,
    /// Object size in bytes.
    pub object_size: u64,
    /// Objects in the data set.
    pub objects: u64,
    /// Operations in flight at once.
    pub concurrency: usize,
    /// Whether PUT payloads were SHA-256 signed (else `UNSIGNED-PAYLOAD`).
    pub sign_payload: bool,
    /// The SDK's request checksum setting: `when_required` or `when_supported`.
    pub checksums: &'static str,
    /// Objects above this size were uploaded with multipart, in parts of it.
    pub multipart_size: Option<u64>,
    /// Setup and measured phases, in order.
    pub phases: Vec<PhaseReport>,
    /// The server's memory, when `--server-pid` was given.
    pub server_memory: Option<RssPeak>,
    /// Why the run's objects could not all be deleted afterwards.
    pub cleanup_error: Option<String>,
}

/// One phase: the data-set upload (`prepare`) or the measured load.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `prepare`, `put`, `get`, `mixed` or `list`.
    pub name: String,
    /// Workers in this phase.
    pub concurrency: usize,
    /// Wall time from the first request to the last response, in seconds.
    pub elapsed_s: f64,
    /// Results per kind of operation.
    pub ops: BTreeMap<OpKind, OpSummary>,
    /// Peak VmRSS of the server during this phase.
    pub peak_rss_bytes: Option<u64>,
    /// User plus system CPU seconds each server process (`--cpu-pid`)
    /// spent during this phase.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub server_cpu_s: BTreeMap<u32, f64>,
}

impl Report {
    /// Operations that failed, over all phases.
    pub fn errors(&self) -> u64 {
        self.phases
            .iter()
            .flat_map(|phase| phase.ops.values())
            .map(|summary| summary.errors)
            .sum()
    }

    /// The summary of `kind` in the phase called `phase`.
    pub fn summary(&self, phase: &str, kind: OpKind) -> Option<&OpSummary> {
        self.phases
            .iter()
            .find(|p| p.name == phase)
            .and_then(|p| p.ops.get(&kind))
    }
}

fn millis(ms: f64) -> String {
    format_latency(Duration::from_secs_f64(ms.max(0.0) / 1e3))
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} on {} (bucket {}): {} objects of {}, concurrency {}",
            self.workload.name(),
            self.endpoint,
            self.bucket,
            self.objects,
            format_size(self.object_size),
            self.concurrency
        )?;
        let multipart = self.multipart_size.map_or("off".to_owned(), |size| {
            format!("above {}", format_size(size))
        });
        writeln!(
            f,
            "payload {}, checksums {}, multipart {}",
            if self.sign_payload {
                "signed"
            } else {
                "unsigned"
            },
            self.checksums,
            multipart
        )?;
        writeln!(
            f,
            "{:<8} {:<6} {:>7} {:>6} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9}",
            "phase", "op", "ops", "errors", "ops/s", "MB/s", "p50", "p99", "max", "peak RSS"
        )?;
        for phase in &self.phases {
            let rss = phase.peak_rss_bytes.map_or(String::new(), mib);
            for (kind, s) in &phase.ops {
                writeln!(
                    f,
                    "{:<8} {:<6} {:>7} {:>6} {:>9.1} {:>9.1} {:>8} {:>8} {:>8} {:>9}",
                    phase.name,
                    kind.name(),
                    s.ops,
                    s.errors,
                    s.ops_per_sec,
                    s.mb_per_sec,
                    millis(s.p50_ms),
                    millis(s.p99_ms),
                    millis(s.max_ms),
                    rss
                )?;
                if let Some(error) = &s.first_error {
                    writeln!(f, "  first {} error: {error}", kind.name())?;
                }
            }
        }
        if let Some(memory) = &self.server_memory {
            write!(
                f,
                "server pid {}: peak RSS {}",
                memory.pid,
                mib(memory.peak_rss_bytes)
            )?;
            if let Some(hwm) = memory.vm_hwm_bytes {
                write!(f, " (VmHWM since start {})", mib(hwm))?;
            }
            writeln!(f)?;
        }
        if let Some(error) = &self.cleanup_error {
            writeln!(f, "cleanup failed: {error}")?;
        }
        Ok(())
    }
}
