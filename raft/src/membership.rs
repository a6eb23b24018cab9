//! Membership: add learners, promote them to voters, replace or remove
//! members — all through raft's joint consensus, on the leader (any member
//! forwards) — and the forced failover for a two-site cluster whose active
//! site is gone.
//!
//! # Forced failover (operator-confirmed)
//!
//! With two sites and no witness, the voters live in the active site and the
//! passive site holds learners. When the active site is lost there is no
//! quorum and raft, by design, cannot change membership. [`MetaNode::force_failover`]
//! does what raft cannot: the operator names the surviving members (those of
//! one site) and confirms that the old site is fenced (powered off or cut
//! off for good — if it comes back with its old membership it could elect
//! its own leader: split brain). Then:
//!
//! 1. the survivor with the most up-to-date log is chosen (the call is
//!    forwarded to it if it is not this member);
//! 2. that member stops raft, appends to its own log a membership entry
//!    whose voters are exactly the survivors, in a new term, and restarts;
//! 3. it campaigns; the other survivors vote for it (its log is the newest),
//!    it replicates the new membership to them and the cluster runs again.
//!
//! Everything in the chosen member's log survives, including entries that
//! were never committed; acknowledged writes that had not reached the
//! surviving site are lost: the RPO is the replication lag at that moment.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use openraft::{BasicNode, ChangeMembers, CommittedLeaderId, EntryPayload, Membership};
use serde::{Deserialize, Serialize};

use crate::error::MetaError;
use crate::log_store::LogStore;
use crate::network::{WireError, path};
use crate::node::{Core, MetaNode, Resend, map_write_error};
use crate::types::{Entry, LogId, NodeId, Vote};
use tessera_net::CallError;

/// A membership change, as forwarded to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum MembershipChange {
    /// Add a non-voting member that receives the log.
    AddLearner {
        /// Member id.
        id: NodeId,
        /// Its RPC address.
        addr: String,
    },
    /// Turn learners into voters.
    Promote(BTreeSet<NodeId>),
    /// Make exactly these the voters (removed voters stay learners).
    ReplaceVoters(BTreeSet<NodeId>),
    /// Remove a member (voter or learner) from the cluster.
    Remove(NodeId),
}

impl MetaNode {
    /// Adds member `id`, reachable at `addr`, as a learner and returns once
    /// it has caught up with the leader's log (via a snapshot if needed).
    pub async fn add_learner(&self, id: u64, addr: impl Into<String>) -> Result<(), MetaError> {
        self.core()
            .change_membership(MembershipChange::AddLearner {
                id,
                addr: addr.into(),
            })
            .await
    }

    /// Turns learners into voters.
    pub async fn promote(&self, ids: impl IntoIterator<Item = u64>) -> Result<(), MetaError> {
        self.core()
            .change_membership(MembershipChange::Promote(ids.into_iter().collect()))
            .await
    }

    /// Makes exactly `voters` the voting members (each must already be a
    /// member); voters not listed stay as learners.
    pub async fn change_membership(&self, voters: BTreeSet<u64>) -> Result<(), MetaError> {
        self.core()
            .change_membership(MembershipChange::ReplaceVoters(voters))
            .await
    }

    /// Removes member `id` (voter or learner) from the cluster.
    pub async fn remove_member(&self, id: u64) -> Result<(), MetaError> {
        self.core()
            .change_membership(MembershipChange::Remove(id))
            .await
    }

    /// Founds a cluster whose voters are `voters` (id → RPC address), this
    /// member among them. Every founding voter may call it with the same
    /// map (they all write the same first entry); a no-op on a member that
    /// already belongs to a cluster, and on a witness (initializing starts
    /// an election at once, which it could win: it takes the founding
    /// membership from the first leader instead). Does not wait for a
    /// leader.
    pub async fn bootstrap(&self, voters: BTreeMap<u64, String>) -> Result<(), MetaError> {
        if !voters.contains_key(&self.id()) {
            return Err(MetaError::Invalid(format!(
                "member {} founds a cluster it is not a voter of",
                self.id()
            )));
        }
        let raft = self.core().raft();
        if self.core().witness || raft.is_initialized().await.map_err(crate::node::fatal)? {
            return Ok(());
        }
        let nodes: BTreeMap<NodeId, BasicNode> = voters
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match raft.initialize(nodes).await {
            Ok(()) => {
                tracing::info!(id = self.id(), "founded the metadata cluster");
                Ok(())
            }
            Err(openraft::error::RaftError::APIError(e)) => {
                tracing::info!(error = %e, "metadata member already initialized");
                Ok(())
            }
            Err(openraft::error::RaftError::Fatal(f)) => Err(crate::node::fatal(f)),
        }
    }

    /// Whether this member belongs to a cluster (founded one or was added).
    pub async fn is_member(&self) -> Result<bool, MetaError> {
        self.core()
            .raft()
            .is_initialized()
            .await
            .map_err(crate::node::fatal)
    }

    /// Asks the cluster whose voters are `voters` (id → RPC address) to add
    /// this member as a learner, trying each voter in turn (the leader takes
    /// it) until `deadline`; returns once the leader has caught it up.
    pub async fn join(
        &self,
        voters: &BTreeMap<u64, String>,
        deadline: Instant,
    ) -> Result<(), MetaError> {
        let change = MembershipChange::AddLearner {
            id: self.id(),
            addr: self.advertise().to_owned(),
        };
        let core = self.core();
        let mut last = MetaError::NoQuorum;
        while Instant::now() < deadline {
            for (id, addr) in voters {
                let left = deadline.saturating_duration_since(Instant::now());
                let answer: Result<Result<(), WireError>, CallError> = core
                    .peers
                    .call(*id, addr, path::MEMBERSHIP, &change, left)
                    .await;
                match answer {
                    Ok(Ok(())) => {
                        tracing::info!(id = self.id(), via = id, "joined the metadata cluster");
                        return Ok(());
                    }
                    Ok(Err(e)) => last = e.into(),
                    Err(e) => last = e.into(),
                }
            }
            tokio::time::sleep(core.timing.heartbeat).await;
        }
        Err(last)
    }

    /// Forced failover: rebuilds the membership from `survivors` (the
    /// members of one site, this one among them) when the cluster has lost
    /// its quorum for good. Only after the operator fenced the lost members.
    /// See the module docs for what happens and what may be lost.
    pub async fn force_failover(&self, survivors: BTreeSet<u64>) -> Result<(), MetaError> {
        self.core().force_failover(survivors).await
    }
}

impl Core {
    /// Runs `change` on the leader (forwarding if needed).
    pub(crate) async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<(), MetaError> {
        let deadline = Instant::now() + self.timing.request_timeout * 10;
        self.at_leader(
            path::MEMBERSHIP,
            &change,
            Resend::IfUnsent,
            deadline,
            || self.change_membership_as_leader(change.clone(), deadline),
        )
        .await
    }

    /// Runs `change` on this member, which must lead.
    pub(crate) async fn change_membership_as_leader(
        &self,
        change: MembershipChange,
        deadline: Instant,
    ) -> Result<(), MetaError> {
        let raft = self.raft();
        let is_voter = |id: NodeId| {
            raft.metrics()
                .borrow()
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == id)
        };
        let proposal = async {
            match change {
                MembershipChange::AddLearner { id, addr } => {
                    raft.add_learner(id, BasicNode::new(addr), true).await
                }
                MembershipChange::Promote(ids) => {
                    raft.change_membership(ChangeMembers::AddVoterIds(ids), false)
                        .await
                }
                MembershipChange::ReplaceVoters(voters) => {
                    raft.change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
                        .await
                }
                MembershipChange::Remove(id) if is_voter(id) => {
                    raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                        .await
                }
                MembershipChange::Remove(id) => {
                    raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                        .await
                }
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, proposal).await {
            Err(_) => Err(MetaError::NoQuorum),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(map_write_error(e)),
        }
    }

    /// See [`MetaNode::force_failover`].
    pub(crate) async fn force_failover(
        &self,
        survivors: BTreeSet<NodeId>,
    ) -> Result<(), MetaError> {
        if !survivors.contains(&self.id) {
            return Err(MetaError::Invalid(
                "force_failover must run on a survivor".into(),
            ));
        }
        let status = self.status();
        if status.has_quorum {
            return Err(MetaError::Invalid(
                "the cluster has a quorum: change membership normally instead".into(),
            ));
        }
        let mut nodes = BTreeMap::new();
        for id in &survivors {
            let addr = status
                .addresses
                .get(id)
                .ok_or_else(|| MetaError::Invalid(format!("member {id} is not in the cluster")))?;
            nodes.insert(*id, BasicNode::new(addr.clone()));
        }

        // The most up-to-date reachable survivor must lead the new cluster.
        let mine = self.last_log_id();
        let deadline = Instant::now() + self.timing.request_timeout;
        for id in survivors.iter().filter(|id| **id != self.id) {
            let theirs: Result<Option<LogId>, CallError> =
                self.call_member(*id, path::LOG_STATE, &(), deadline).await;
            match theirs {
                Ok(theirs) if theirs > mine => {
                    tracing::warn!(
                        to = id,
                        "forced failover: forwarding to a more up-to-date survivor"
                    );
                    let answer: Result<Result<(), WireError>, CallError> = self
                        .call_member(*id, path::FAILOVER, &survivors, deadline)
                        .await;
                    return answer?.map_err(MetaError::from);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(member = id, error = %e, "forced failover: survivor unreachable")
                }
            }
        }
        self.rewrite_membership(nodes).await
    }

    /// Stops raft, appends a membership entry of `nodes` (all voters) in a
    /// new term to the local log, restarts raft and campaigns.
    async fn rewrite_membership(
        &self,
        nodes: BTreeMap<NodeId, BasicNode>,
    ) -> Result<(), MetaError> {
        let voters: BTreeSet<NodeId> = nodes.keys().copied().collect();
        tracing::warn!(voters = ?voters, "forced failover: rewriting membership");
        self.stop_raft().await?;
        {
            let log = LogStore::open(&self.data_dir().join("raft-log.redb"))?;
            let last = log.tail().last_log_id();
            let vote_term = log.vote()?.map_or(0, |v| v.leader_id().term);
            let term = vote_term.max(last.map_or(0, |l| l.leader_id.term)) + 1;
            let index = last.map_or(0, |l| l.index + 1);
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(term, self.id), index),
                payload: EntryPayload::Membership(Membership::new(vec![voters], nodes)),
            };
            log.force_append(entry, &Vote::new(term, self.id))?;
        }
        self.restart_raft(false).await?;
        if let Err(e) = self.raft().trigger().elect().await {
            tracing::warn!(error = %e, "forced failover: could not trigger election");
        }
        metrics::counter!("tessera_raft_forced_failovers_total").increment(1);
        Ok(())
    }
}
