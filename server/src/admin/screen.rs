//! What `tessera admin status` and the `--watch` views print: the
//! cluster's health on one screen ([`status_screen`]) and a job's progress
//! as one line with a bar, rate and ETA ([`JobProgress::line`]). Plain
//! text, with ANSI colours only when asked (a terminal).

use std::fmt::Write as _;

use serde::Serialize;
use tessera_raft::model::NodeState;

use super::summary::{Severity, Summary};
use super::{JobReport, RepairStatus, ReplicationStatus};
use crate::members::admin::{MemberInfo, MemberList};

/// Width of a progress bar, in characters.
const BAR: usize = 24;

/// `n` bytes for a human: `1.5 GiB`.
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `secs` seconds for a human: `45s`, `3m05s`, `2h10m`, `3d04h`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).ceil() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// How far one job (repair, scrub, a drain) is, as a `--watch` view shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobProgress {
    /// What is watched: `repair`, `scrub`, `drain of node 3`.
    pub label: String,
    /// What it counts: `shards`, `segments`.
    pub unit: &'static str,
    /// Items finished since the server started.
    pub done: u64,
    /// Items waiting.
    pub remaining: u64,
    /// Bytes per second over the last minute or so.
    pub bytes_per_sec: f64,
    /// Items per second over the last minute or so.
    pub items_per_sec: f64,
    /// Seconds until nothing waits at that rate (none when unknown).
    pub eta_secs: Option<f64>,
    /// Whether the job is done: nothing left.
    pub finished: bool,
    /// What else matters (segments at risk, stores still to evacuate).
    pub note: String,
}

impl JobProgress {
    /// Repair's progress (or a drain's: repair moves a drained node's shards).
    pub fn repair(label: impl Into<String>, status: &RepairStatus) -> JobProgress {
        let mut notes = Vec::new();
        let at_risk: u64 = status.at_risk.iter().map(|r| r.segments).sum();
        if at_risk > 0 {
            notes.push(format!("{at_risk} segments degraded"));
        }
        if !status.outstanding_stores.is_empty() {
            notes.push(format!(
                "still to queue: {}",
                status.outstanding_stores.join(", ")
            ));
        }
        JobProgress {
            label: label.into(),
            unit: "shards",
            done: status.done_shards,
            remaining: status.pending_shards,
            bytes_per_sec: status.bytes_per_sec,
            items_per_sec: status.shards_per_sec,
            eta_secs: status.eta_secs,
            finished: status.done,
            note: notes.join("; "),
        }
    }

    /// Site replication's progress: the segment copies the sites lack.
    pub fn replication(status: &ReplicationStatus) -> JobProgress {
        let lag = status.sites.iter().map(|s| s.lag_secs).fold(0.0, f64::max);
        JobProgress {
            label: "replication".into(),
            unit: "shards",
            done: status.done_shards,
            remaining: status.pending_shards,
            bytes_per_sec: status.bytes_per_sec,
            items_per_sec: status.shards_per_sec,
            eta_secs: status.eta_secs,
            finished: status.done,
            note: if status.done {
                String::new()
            } else {
                format!("segments behind, the oldest {lag:.1} s")
            },
        }
    }

    /// A background job's progress from its report (scrub: segments).
    pub fn job(report: &JobReport, unit: &'static str) -> JobProgress {
        JobProgress {
            label: report.job.clone(),
            unit,
            done: report.done,
            remaining: report.queued,
            bytes_per_sec: report.bytes_per_sec,
            items_per_sec: report.items_per_sec,
            eta_secs: report.eta_secs,
            finished: report.queued == 0,
            note: if report.failed > 0 {
                format!("{} failed attempts", report.failed)
            } else {
                String::new()
            },
        }
    }

    /// One line: bar, share done since `base` (the items done when the
    /// watch began), counts, rate and ETA.
    pub fn line(&self, base: u64) -> String {
        let since = self.done.saturating_sub(base);
        let total = since + self.remaining;
        let share = if self.finished || total == 0 {
            1.0
        } else {
            since as f64 / total as f64
        };
        let filled = ((share * BAR as f64).round() as usize).min(BAR);
        let eta = match (self.finished, self.eta_secs) {
            (true, _) => "done".to_owned(),
            (false, Some(eta)) => format!("ETA {}", duration(eta)),
            (false, None) => "ETA -".to_owned(),
        };
        let mut out = format!(
            "{:<8} [{}{}] {:>3.0}%  {since}/{total} {}  {}/s  {:.1} {}/s  {eta}",
            self.label,
            "#".repeat(filled),
            "-".repeat(BAR - filled),
            share * 100.0,
            self.unit,
            bytes(self.bytes_per_sec),
            self.items_per_sec,
            self.unit,
        );
        if !self.note.is_empty() {
            let _ = write!(out, "  ({})", self.note);
        }
        out
    }
}

/// `text` in `code`'s ANSI colour when `color`.
fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

fn severity_label(severity: Severity, color: bool) -> String {
    let (text, code) = match severity {
        Severity::Ok => ("OK", "1;32"),
        Severity::Warning => ("WARNING", "1;33"),
        Severity::Critical => ("CRITICAL", "1;31"),
    };
    paint(text, code, color)
}

/// The cluster's health on one screen (see [`Summary`]).
pub fn status_screen(s: &Summary, color: bool) -> String {
    let mut out = String::new();
    let when = time::OffsetDateTime::from_unix_timestamp(s.at / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "TESSERA  {}  {when}  (asked member {})",
        severity_label(s.health, color),
        s.members.this
    );
    if !s.problems.is_empty() {
        out.push('\n');
        for p in &s.problems {
            let _ = writeln!(
                out,
                "  {:<8}  {}  [{}]",
                severity_label(p.severity, color),
                p.message,
                p.alert
            );
        }
    }
    out.push('\n');
    let m = &s.members;
    let voters = m.members.iter().filter(|x| x.voter).count();
    let _ = writeln!(
        out,
        "METADATA  leader {}, term {}, quorum {}, {voters} voters, {} learners, last log {}",
        m.leader
            .map_or_else(|| "NONE".to_owned(), |l| l.to_string()),
        m.term,
        if m.has_quorum { "yes" } else { "NO" },
        m.members.len() - voters,
        m.last_log_index
    );
    if m.members.len() > 1 {
        for x in &m.members {
            let role = member_role(m, x);
            let lag = x.lag.map_or_else(|| "-".to_owned(), |l| l.to_string());
            let _ = writeln!(
                out,
                "          member {:<4} {role:<8} {:<24} lag {lag}",
                x.id, x.addr
            );
        }
    }
    if !s.nodes.is_empty() {
        let count = |state: NodeState| s.nodes.iter().filter(|n| n.state == state).count();
        let capacity: u64 = s.nodes.iter().map(|n| n.capacity).sum();
        let used: u64 = s.nodes.iter().map(|n| n.used).sum();
        let _ = writeln!(
            out,
            "NODES     {} up, {} suspect, {} down, {} draining; {} used of {}{}",
            count(NodeState::Up),
            count(NodeState::Suspect),
            count(NodeState::Down),
            count(NodeState::Draining),
            bytes(used as f64),
            bytes(capacity as f64),
            percent(used, capacity)
        );
        for n in &s.nodes {
            let heard = if n.heartbeat == 0 {
                "never".to_owned()
            } else {
                format!(
                    "{} ago",
                    duration(((s.at - n.heartbeat).max(0) / 1000) as f64)
                )
            };
            let state = crate::nodes::state_name(n.state);
            let state = match n.state {
                NodeState::Down => paint(&format!("{state:<9}"), "1;31", color),
                NodeState::Suspect => paint(&format!("{state:<9}"), "1;33", color),
                _ => format!("{state:<9}"),
            };
            let _ = writeln!(
                out,
                "          node {:<4} {state} {:<22} heard {heard:<10} {} stores  {} of {}{}",
                n.id,
                n.address,
                n.stores.len(),
                bytes(n.used as f64),
                bytes(n.capacity as f64),
                percent(n.used, n.capacity)
            );
        }
    }
    let stores = &s.status.stores;
    let up = stores.iter().filter(|x| x.up).count();
    let lost = stores.iter().filter(|x| x.lost).count();
    let draining = stores.iter().filter(|x| x.draining).count();
    let _ = writeln!(
        out,
        "STORES    {up} of {} up, {} down ({lost} lost), {draining} draining",
        stores.len(),
        stores.len() - up
    );
    match &s.repair {
        None => {
            let _ = writeln!(out, "REPAIR    not here: a witness runs no jobs");
        }
        Some(r) => {
            let repair = if r.done {
                "done".to_owned()
            } else {
                format!(
                    "{} shards pending, {}/s, ETA {}",
                    r.pending_shards,
                    bytes(r.bytes_per_sec),
                    r.eta_secs.map_or_else(|| "-".to_owned(), duration)
                )
            };
            let _ = writeln!(out, "REPAIR    {repair}");
            for risk in &r.at_risk {
                let _ = writeln!(
                    out,
                    "          {} segments can lose {} more shards",
                    risk.segments, risk.redundancy_left
                );
            }
        }
    }
    if let Some(r) = s.replication.as_ref().filter(|r| !r.done) {
        for site in &r.sites {
            let _ = writeln!(
                out,
                "SITES     {} lacks {} segments ({}), the oldest {} behind",
                site.site,
                site.segments,
                bytes(site.bytes as f64),
                duration(site.lag_secs)
            );
        }
    }
    if let Some(leader) = m.leader.filter(|&l| l != m.this) {
        let _ = writeln!(
            out,
            "          (jobs run on the leader, member {leader}: ask its gateway for their progress)"
        );
    }
    let jobs: Vec<String> = s
        .status
        .jobs
        .iter()
        .map(|j| match j.eta_secs {
            Some(eta) if j.queued > 0 => {
                format!("{} {} queued (ETA {})", j.job, j.queued, duration(eta))
            }
            _ => format!("{} {} queued", j.job, j.queued),
        })
        .collect();
    let _ = writeln!(out, "JOBS      {}", jobs.join(" | "));
    let _ = writeln!(
        out,
        "DATA      {} buckets, {} access keys; ready: {}",
        s.status.buckets,
        s.status.keys,
        if s.status.ready { "yes" } else { "NO" }
    );
    out
}

/// `leader`, `voter` or `learner`: what `member` is in `list`.
pub fn member_role(list: &MemberList, member: &MemberInfo) -> &'static str {
    match (member.voter, list.leader == Some(member.id)) {
        (true, true) => "leader",
        (true, false) => "voter",
        (false, _) => "learner",
    }
}

/// ` (42%)` of `part` in `whole`, nothing when `whole` is 0.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        String::new()
    } else {
        format!(" ({:.0}%)", part as f64 * 100.0 / whole as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * (1u64 << 30) as f64), "3.0 GiB");
        assert_eq!(duration(0.2), "1s");
        assert_eq!(duration(59.0), "59s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7800.0), "2h10m");
        assert_eq!(duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3d04h");
    }

    #[test]
    fn a_progress_line_counts_from_where_the_watch_began() {
        let p = JobProgress {
            label: "repair".to_owned(),
            unit: "shards",
            done: 150,
            remaining: 150,
            bytes_per_sec: 2.0 * 1048576.0,
            items_per_sec: 2.5,
            eta_secs: Some(60.0),
            finished: false,
            note: String::new(),
        };
        assert_eq!(
            p.line(0),
            "repair   [############------------]  50%  150/300 shards  2.0 MiB/s  2.5 shards/s  ETA 1m00s"
        );
        // Begun at 100: 50 of the 200 since.
        assert!(
            p.line(100).contains(" 25%  50/200 shards"),
            "{}",
            p.line(100)
        );
        let done = JobProgress {
            remaining: 0,
            finished: true,
            ..p
        };
        assert!(done.line(150).contains("100%") && done.line(150).ends_with("done"));
    }
}
