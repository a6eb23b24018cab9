//! `GET /admin/v1/summary`: the cluster's health at a glance, what
//! `tessera admin status` shows on one screen.
//!
//! Besides the parts ([`Status`], the members, the storage nodes,
//! repair, site replication), it judges them: each [`Problem`] names the alert of
//! `docker/monitoring/rules.yml` that watches the same condition (its
//! runbook is in `docs/operations.md`), with the same severity and
//! thresholds, so the screen and the pager agree.

use serde::{Deserialize, Serialize};
use tessera_raft::model::{NodeRecord, NodeState};

use super::{RepairStatus, ReplicationStatus, Status};
use crate::members::admin::MemberList;

/// A member this many log entries behind the leader is lagging
/// (`TesseraRaftMemberLagging`).
pub const LAG_ENTRIES: u64 = 1000;
/// A site whose oldest missing copy waited longer than this, in seconds,
/// is behind (`TesseraSiteReplicationLag`).
pub const REPLICATION_LAG_SECS: f64 = 300.0;
/// Free space below this share of a node's capacity is low
/// (`TesseraStoreSpaceLow`, warning).
pub const FREE_LOW: f64 = 0.10;
/// Free space below this share is critical (`TesseraStoreSpaceLow`).
pub const FREE_CRITICAL: f64 = 0.05;

/// How bad things are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to do.
    Ok,
    /// Look at it today.
    Warning,
    /// Someone must act now.
    Critical,
}

impl Severity {
    /// Its name, as in the alert rules' `severity` label.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Something the person on call should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// The alert watching the same condition (its runbook's anchor).
    pub alert: String,
    /// What is wrong, in words.
    pub message: String,
}

/// The whole answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The worst severity among the problems (`ok` without any).
    pub health: Severity,
    /// What is wrong, worst first.
    pub problems: Vec<Problem>,
    /// The answering gateway's status: readiness, raft, stores, jobs.
    pub status: Status,
    /// The metadata cluster's members, as the answering member sees them.
    pub members: MemberList,
    /// The storage nodes (none when the gateway uses its own disks only).
    pub nodes: Vec<NodeRecord>,
    /// How far repair is (none on a witness, which runs no jobs).
    pub repair: Option<RepairStatus>,
    /// How far site replication is (none on a witness).
    #[serde(default)]
    pub replication: Option<ReplicationStatus>,
    /// When this was put together, milliseconds since the Unix epoch.
    pub at: i64,
}

impl Summary {
    /// The summary of these parts, judged.
    pub fn new(
        status: Status,
        members: MemberList,
        nodes: Vec<NodeRecord>,
        repair: Option<RepairStatus>,
        at: i64,
    ) -> Summary {
        Summary {
            health: Severity::Ok,
            problems: Vec::new(),
            status,
            members,
            nodes,
            repair,
            replication: None,
            at,
        }
        .judged()
    }

    /// The summary with site replication's status too, judged again.
    pub fn with_replication(mut self, replication: ReplicationStatus) -> Summary {
        self.replication = Some(replication);
        self.judged()
    }

    /// The summary with its problems and health set from its parts.
    fn judged(mut self) -> Summary {
        let mut problems = self.judge();
        problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
        self.health = problems.first().map_or(Severity::Ok, |p| p.severity);
        self.problems = problems;
        self
    }

    fn judge(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut say = |severity, alert: &str, message: String| {
            out.push(Problem {
                severity,
                alert: alert.to_owned(),
                message,
            });
        };
        if self.members.leader.is_none() {
            say(
                Severity::Critical,
                "TesseraRaftNoLeader",
                "the metadata cluster has no leader: every write fails".to_owned(),
            );
        } else if !self.members.has_quorum {
            say(
                Severity::Critical,
                "TesseraRaftNoLeader",
                format!(
                    "member {} does not hear from a quorum: writes fail",
                    self.members.this
                ),
            );
        } else if !self.status.ready {
            // With a leader and a quorum, only stores are left to miss.
            say(
                Severity::Critical,
                "TesseraStoresDownAtParityLimit",
                "not ready (/health/ready fails): too few stores up to write a segment whole"
                    .to_owned(),
            );
        }
        for m in &self.members.members {
            if let Some(lag) = m.lag.filter(|&lag| lag > LAG_ENTRIES) {
                say(
                    Severity::Warning,
                    "TesseraRaftMemberLagging",
                    format!("member {} is {lag} log entries behind the leader", m.id),
                );
            }
        }
        for n in &self.nodes {
            match n.state {
                NodeState::Down => say(
                    Severity::Critical,
                    "TesseraNodeDown",
                    format!(
                        "storage node {} is down: its shards are being rebuilt elsewhere",
                        n.id
                    ),
                ),
                NodeState::Suspect => say(
                    Severity::Warning,
                    "TesseraNodeUnreachable",
                    format!(
                        "storage node {} does not answer: reads use parity meanwhile",
                        n.id
                    ),
                ),
                NodeState::Up | NodeState::Draining => {}
            }
            if n.capacity > 0 {
                let free = n.capacity.saturating_sub(n.used) as f64 / n.capacity as f64;
                let severity = if free < FREE_CRITICAL {
                    Some(Severity::Critical)
                } else if free < FREE_LOW {
                    Some(Severity::Warning)
                } else {
                    None
                };
                if let Some(severity) = severity {
                    say(
                        severity,
                        "TesseraStoreSpaceLow",
                        format!("storage node {} has {:.1}% free", n.id, free * 100.0),
                    );
                }
            }
        }
        // Stores of a node already reported down or suspect are not said again.
        let node_reported = |node: u64| {
            self.nodes
                .iter()
                .any(|n| n.id == node && matches!(n.state, NodeState::Down | NodeState::Suspect))
        };
        let down: Vec<&str> = self
            .status
            .stores
            .iter()
            .filter(|s| !s.up && !node_reported(s.node))
            .map(|s| s.id.as_str())
            .collect();
        if !down.is_empty() {
            say(
                Severity::Warning,
                "TesseraStoreDown",
                format!("stores down: {}", down.join(", ")),
            );
        }
        for job in &self.status.jobs {
            if job.failed_passes > 0 && job.done == 0 && job.queued > 0 {
                say(
                    Severity::Warning,
                    "TesseraBackgroundJobFailing",
                    format!(
                        "{} has failed {} passes and finished nothing",
                        job.job, job.failed_passes
                    ),
                );
            }
        }
        for site in self.replication.iter().flat_map(|r| &r.sites) {
            if site.lag_secs > REPLICATION_LAG_SECS {
                say(
                    Severity::Warning,
                    "TesseraSiteReplicationLag",
                    format!(
                        "site {} lacks {} segments ({} bytes), the oldest written {:.0} s ago",
                        site.site, site.segments, site.bytes, site.lag_secs
                    ),
                );
            }
        }
        let Some(repair) = &self.repair else {
            return out;
        };
        for risk in &repair.at_risk {
            let (severity, alert, message) = match risk.redundancy_left {
                left if left < 0 => (
                    Severity::Critical,
                    "TesseraSegmentsWithoutParity",
                    format!(
                        "{} segments are unreadable until a store comes back",
                        risk.segments
                    ),
                ),
                0 => (
                    Severity::Critical,
                    "TesseraSegmentsWithoutParity",
                    format!(
                        "{} segments have no parity left: one more lost shard loses data",
                        risk.segments
                    ),
                ),
                left => (
                    Severity::Warning,
                    "TesseraSegmentsDegraded",
                    format!(
                        "{} segments degraded (each can lose {left} more shards)",
                        risk.segments
                    ),
                ),
            };
            say(severity, alert, message);
        }
        if repair.pending_shards > 0 && repair.shards_per_sec == 0.0 && repair.failed_attempts > 0 {
            say(
                Severity::Warning,
                "TesseraRepairStalled",
                format!(
                    "repair has {} shards pending, finishes none and failed {} attempts",
                    repair.pending_shards, repair.failed_attempts
                ),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AtRisk, RaftStatus, StoreStatus};
    use crate::members::admin::MemberInfo;

    fn healthy() -> (Status, MemberList, Vec<NodeRecord>, RepairStatus) {
        let status = Status {
            ready: true,
            raft: RaftStatus {
                id: 1,
                leader: Some(1),
                term: 2,
                last_applied: 10,
                last_log_index: 10,
            },
            stores: vec![StoreStatus {
                id: "st-1".to_owned(),
                up: true,
                lost: false,
                draining: false,
                node: 1,
                site: None,
                zone: None,
            }],
            buckets: 1,
            keys: 1,
            jobs: Vec::new(),
        };
        let members = MemberList {
            this: 1,
            leader: Some(1),
            term: 2,
            has_quorum: true,
            last_log_index: 10,
            members: vec![MemberInfo {
                id: 1,
                addr: "a:1".to_owned(),
                voter: true,
                lag: Some(0),
            }],
        };
        let nodes = vec![NodeRecord {
            id: 1,
            address: "n:1".to_owned(),
            site: None,
            zone: None,
            stores: vec!["st-1".to_owned()],
            capacity: 1000,
            used: 100,
            state: NodeState::Up,
            since: 0,
            heartbeat: 0,
        }];
        let repair = RepairStatus {
            done: true,
            pending_shards: 0,
            done_shards: 0,
            failed_attempts: 0,
            bytes_rebuilt: 0,
            bytes_per_sec: 0.0,
            shards_per_sec: 0.0,
            eta_secs: None,
            at_risk: Vec::new(),
            outstanding_stores: Vec::new(),
            waiting_stores: Vec::new(),
        };
        (status, members, nodes, repair)
    }

    #[test]
    fn a_healthy_cluster_has_no_problems() {
        let (status, members, nodes, repair) = healthy();
        let summary = Summary::new(status, members, nodes, Some(repair), 0);
        assert_eq!(summary.health, Severity::Ok);
        assert!(summary.problems.is_empty());
    }

    #[test]
    fn problems_are_judged_as_the_alert_rules_judge_them_worst_first() {
        let (mut status, mut members, mut nodes, mut repair) = healthy();
        members.members[0].lag = Some(LAG_ENTRIES + 1);
        nodes[0].used = 920;
        status.stores[0].up = false;
        repair.at_risk = vec![
            AtRisk {
                redundancy_left: 0,
                segments: 3,
            },
            AtRisk {
                redundancy_left: 1,
                segments: 5,
            },
        ];
        let summary = Summary::new(status.clone(), members, nodes.clone(), Some(repair), 0);
        let alerts: Vec<(Severity, &str)> = summary
            .problems
            .iter()
            .map(|p| (p.severity, p.alert.as_str()))
            .collect();
        assert_eq!(
            alerts,
            vec![
                (Severity::Critical, "TesseraSegmentsWithoutParity"),
                (Severity::Warning, "TesseraRaftMemberLagging"),
                (Severity::Warning, "TesseraStoreSpaceLow"),
                (Severity::Warning, "TesseraStoreDown"),
                (Severity::Warning, "TesseraSegmentsDegraded"),
            ]
        );
        assert_eq!(summary.health, Severity::Critical);

        // A node down is said once, not again for each of its stores.
        nodes[0].state = NodeState::Down;
        nodes[0].used = 0;
        let (_, members, _, repair) = healthy();
        let summary = Summary::new(status, members, nodes, Some(repair), 0);
        let alerts: Vec<&str> = summary.problems.iter().map(|p| p.alert.as_str()).collect();
        assert_eq!(alerts, vec!["TesseraNodeDown"]);
    }

    #[test]
    fn a_site_behind_past_the_alert_threshold_is_a_warning() {
        let replication = |lag_secs| ReplicationStatus {
            done: false,
            sites: vec![crate::admin::SiteBacklog {
                site: "dc-b".into(),
                segments: 4,
                shards: 24,
                bytes: 4096,
                lag_secs,
            }],
            pending_shards: 24,
            done_shards: 0,
            shards_per_sec: 0.0,
            bytes_copied: 0,
            bytes_per_sec: 0.0,
            eta_secs: None,
            one_copy: Vec::new(),
        };
        let judged = |lag| {
            let (status, members, nodes, repair) = healthy();
            Summary::new(status, members, nodes, Some(repair), 0).with_replication(replication(lag))
        };
        assert!(judged(REPLICATION_LAG_SECS - 1.0).problems.is_empty());
        let behind = judged(REPLICATION_LAG_SECS + 1.0);
        assert_eq!(behind.health, Severity::Warning);
        assert_eq!(behind.problems[0].alert, "TesseraSiteReplicationLag");
        assert!(
            behind.problems[0]
                .message
                .contains("site dc-b lacks 4 segments")
        );
    }
}
