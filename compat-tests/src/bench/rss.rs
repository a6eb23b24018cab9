//! Samples a server process's resident memory from `/proc/PID/status` while
//! the load runs, so a run can report the server's peak RSS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// How often VmRSS is read.
const INTERVAL: Duration = Duration::from_millis(50);

/// Reads one `kB` field (`VmRSS`, `VmHWM`) of `/proc/PID/status`, in bytes.
pub fn read_status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = value.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// A background task that keeps the highest VmRSS seen, overall and since
/// the last [`RssSampler::take_phase_peak`].
#[derive(Debug)]
pub struct RssSampler {
    pid: u32,
    phase_peak: Arc<AtomicU64>,
    run_peak: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl RssSampler {
    /// Starts sampling `pid`; fails if the process cannot be read.
    pub fn start(pid: u32) -> Result<Self, String> {
        let first = read_status_field(pid, "VmRSS")
            .ok_or_else(|| format!("cannot read VmRSS of process {pid} from /proc"))?;
        let phase_peak = Arc::new(AtomicU64::new(first));
        let run_peak = Arc::new(AtomicU64::new(first));
        let task = tokio::spawn({
            let phase_peak = Arc::clone(&phase_peak);
            let run_peak = Arc::clone(&run_peak);
            async move {
                let mut ticks = tokio::time::interval(INTERVAL);
                while let Some(rss) = read_status_field(pid, "VmRSS") {
                    phase_peak.fetch_max(rss, Ordering::Relaxed);
                    run_peak.fetch_max(rss, Ordering::Relaxed);
                    ticks.tick().await;
                }
            }
        });
        Ok(RssSampler {
            pid,
            phase_peak,
            run_peak,
            task,
        })
    }

    /// The peak since the previous call (or the start), then starts a new phase.
    pub fn take_phase_peak(&self) -> u64 {
        let current = read_status_field(self.pid, "VmRSS").unwrap_or(0);
        self.run_peak.fetch_max(current, Ordering::Relaxed);
        self.phase_peak
            .swap(current, Ordering::Relaxed)
            .max(current)
    }

    /// Stops sampling; returns the run's peak VmRSS and the kernel's VmHWM
    /// (the process's peak since it started, if it is still running).
    pub fn finish(self) -> RssPeak {
        self.task.abort();
        let hwm = read_status_field(self.pid, "VmHWM");
        RssPeak {
            pid: self.pid,
            peak_rss_bytes: self.run_peak.load(Ordering::Relaxed),
            vm_hwm_bytes: hwm,
        }
    }
}

/// The memory a server used during a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RssPeak {
    /// The sampled process.
    pub pid: u32,
    /// Highest VmRSS sampled during the run.
    pub peak_rss_bytes: u64,
    /// The kernel's high-water mark since the process started.
    pub vm_hwm_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn samples_this_process() {
        let sampler = RssSampler::start(std::process::id()).unwrap();
        tokio::time::sleep(INTERVAL * 2).await;
        assert!(sampler.take_phase_peak() > 0);
        let peak = sampler.finish();
        assert!(peak.peak_rss_bytes > 0);
        assert!(peak.vm_hwm_bytes.unwrap() >= peak.peak_rss_bytes / 2);
    }

    #[test]
    fn missing_process_is_an_error() {
        assert!(RssSampler::start(u32::MAX).is_err());
    }
}
