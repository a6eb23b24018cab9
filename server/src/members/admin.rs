//! `tessera admin member`: the metadata cluster's members as a member sees
//! them, and membership changes (carried out on the leader, forwarded by
//! any member, through raft's joint consensus).

use serde::{Deserialize, Serialize};
use tessera_raft::{MetaError, MetaNode};

/// The metadata cluster as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberList {
    /// The member that answered.
    pub this: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Whether it sees a working quorum.
    pub has_quorum: bool,
    /// Index of the leader's last log entry, as this member knows it (its own
    /// last index when it leads).
    pub last_log_index: u64,
    /// Every member, voters first.
    pub members: Vec<MemberInfo>,
}

/// One member of the metadata cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its id.
    pub id: u64,
    /// Its cluster (raft) address.
    pub addr: String,
    /// Whether it votes (else: a learner).
    pub voter: bool,
    /// Log entries it is behind the leader; known only when the answering
    /// member leads.
    pub lag: Option<u64>,
}

/// A member to add (`POST /admin/v1/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAdd {
    /// Its id (its certificate must be issued to `member-<id>`).
    pub id: u64,
    /// Its cluster (raft) address.
    pub addr: String,
}

/// The members as `meta` sees them now.
pub fn list(meta: &MetaNode) -> MemberList {
    let status = meta.status();
    let lag = |id: u64| {
        (status.leader == Some(status.id)).then(|| {
            let matched = status.matched.get(&id).copied().unwrap_or(0);
            status.last_log_index.saturating_sub(matched)
        })
    };
    let members = status
        .voters
        .iter()
        .map(|id| (*id, true))
        .chain(status.learners.iter().map(|id| (*id, false)))
        .map(|(id, voter)| MemberInfo {
            id,
            addr: status.addresses.get(&id).cloned().unwrap_or_default(),
            voter,
            lag: lag(id),
        })
        .collect();
    MemberList {
        this: status.id,
        leader: status.leader,
        term: status.term,
        has_quorum: status.has_quorum,
        last_log_index: status.last_log_index,
        members,
    }
}

/// Adds a learner and returns once it has caught up with the leader's log.
pub async fn add(meta: &MetaNode, add: &MemberAdd) -> Result<(), MetaError> {
    if meta.status().addresses.contains_key(&add.id) {
        return Err(MetaError::Invalid(format!(
            "member {} is already in the cluster",
            add.id
        )));
    }
    meta.add_learner(add.id, add.addr.clone()).await
}

/// Turns learner `id` into a voter.
pub async fn promote(meta: &MetaNode, id: u64) -> Result<(), MetaError> {
    let status = meta.status();
    if status.voters.contains(&id) {
        return Err(MetaError::Invalid(format!("member {id} already votes")));
    }
    if !status.learners.contains(&id) {
        return Err(MetaError::Invalid(format!(
            "member {id} is not in the cluster: add it first"
        )));
    }
    meta.promote([id]).await
}

/// Removes member `id` (voter or learner); refused for the last voter.
pub async fn remove(meta: &MetaNode, id: u64) -> Result<(), MetaError> {
    let status = meta.status();
    if !status.addresses.contains_key(&id) {
        return Err(MetaError::Invalid(format!(
            "member {id} is not in the cluster"
        )));
    }
    if status.voters == [id] {
        return Err(MetaError::Invalid(format!(
            "member {id} is the last voter: the cluster cannot go on without it"
        )));
    }
    meta.remove_member(id).await
}
