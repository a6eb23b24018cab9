//! The CPU time server processes spend in a phase, from `/proc/PID/stat`,
//! so a run on a machine the client shares can be judged by the server's
//! CPU per operation as well as by wall-clock throughput.

use std::collections::BTreeMap;

/// Clock ticks per second of `/proc/PID/stat` (Linux's USER_HZ).
const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU seconds each of `pids` has used so far; a process
/// that cannot be read is left out.
pub fn cpu_seconds(pids: &[u32]) -> BTreeMap<u32, f64> {
    pids.iter()
        .filter_map(|&pid| Some((pid, process_cpu(pid)?)))
        .collect()
}

/// The CPU seconds each process used between `before` and `after`.
pub fn spent(before: &BTreeMap<u32, f64>, after: &BTreeMap<u32, f64>) -> BTreeMap<u32, f64> {
    after
        .iter()
        .filter_map(|(pid, a)| Some((*pid, a - before.get(pid)?)))
        .collect()
}

fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SEC)
}
