//! `tessera admin failover --to SITE`: the way out for a two-site cluster
//! without a witness whose voting site is lost for good. The operator
//! fences the lost site (powered off, or cut off for good), looks at what
//! may be lost, and confirms; the members of the surviving site then
//! become the voters of a new membership (see
//! [`tessera_raft::membership`]: the most up-to-date survivor writes it into
//! its own log and leads).
//!
//! What may be lost is known from the survivors' side only: the member
//! asked saw the leader's commit index with every append it accepted, so
//! `leader_commit_seen − last_log_index` committed entries are surely not
//! here, plus whatever the leader committed in the time since it was last
//! heard. Both are shown before anything is done, with the objects whose
//! data the surviving site lacks (kept as a copy per site but not copied
//! there yet: asynchronous site replication behind, or the site down when
//! they were written), which are lost with the other site.

use serde::{Deserialize, Serialize};
use tessera_raft::{MetaError, MetaNode};

use crate::admin::{OneCopyObject, SiteBacklog};
use crate::config::MemberEntry;
use crate::workers::replicate;

/// Objects the surviving site lacks that a plan names (all are counted).
const NAMED: usize = 100;

/// What a failover to one site would do, as the member asked sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverPlan {
    /// The surviving site.
    pub site: String,
    /// The members that would vote afterwards (those of the site that are
    /// in the cluster).
    pub survivors: Vec<u64>,
    /// Whether the cluster still has a quorum (then failover is refused:
    /// change the membership normally).
    pub has_quorum: bool,
    /// The member asked.
    pub asked: u64,
    /// Index of its last log entry.
    pub last_log_index: u64,
    /// The lost leader's commit index when it was last heard here.
    pub leader_commit_seen: u64,
    /// Milliseconds since then (`None`: not heard since this member started).
    pub leader_heard_ms_ago: Option<u64>,
    /// Committed entries surely missing here: `leader_commit_seen −
    /// last_log_index` (the survivor that leads afterwards may have more).
    pub surely_lost_entries: u64,
    /// What the surviving site lacks of the objects kept as a copy per
    /// site, as far as the metadata here knows (`None`: nothing).
    #[serde(default)]
    pub site_lacks: Option<SiteBacklog>,
    /// The oldest of those objects, by name: their data is only on the
    /// other site.
    #[serde(default)]
    pub lacking_objects: Vec<OneCopyObject>,
}

/// A failover to carry out (`POST /admin/v1/failover`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRequest {
    /// The surviving site.
    pub site: String,
}

/// Why a failover was refused.
#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// No founding member stands in the site.
    #[error(
        "no member of this cluster stands in site {0:?} (sites come from [[members]] of this \
         gateway's config)"
    )]
    NoSuchSite(String),
    /// The member asked is not one of the survivors.
    #[error("ask a gateway of site {site} (this is member {asked}, not one of {survivors:?})")]
    NotASurvivor {
        /// The site.
        site: String,
        /// The member asked.
        asked: u64,
        /// The survivors.
        survivors: Vec<u64>,
    },
    /// The cluster still has a quorum.
    #[error("the cluster still has a quorum (leader {0:?}): change the membership instead")]
    HasQuorum(Option<u64>),
    /// The metadata refused or failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
}

/// What failing over to `site` would do.
pub async fn plan(
    meta: &MetaNode,
    founding: &[MemberEntry],
    site: &str,
) -> Result<FailoverPlan, FailoverError> {
    let status = meta.status();
    let survivors: Vec<u64> = founding
        .iter()
        .filter(|m| m.site.as_deref() == Some(site))
        .map(|m| m.id)
        .filter(|id| status.addresses.contains_key(id))
        .collect();
    if survivors.is_empty() {
        return Err(FailoverError::NoSuchSite(site.to_owned()));
    }
    let (mut lacks, lacking_objects) = replicate::backlog(meta, Some(site), NAMED).await?;
    Ok(FailoverPlan {
        site_lacks: lacks.pop(),
        lacking_objects,
        site: site.to_owned(),
        survivors,
        has_quorum: status.has_quorum,
        asked: status.id,
        last_log_index: status.last_log_index,
        leader_commit_seen: status.leader_commit_seen,
        leader_heard_ms_ago: status.leader_heard_ms_ago,
        surely_lost_entries: status
            .leader_commit_seen
            .saturating_sub(status.last_log_index),
    })
}

/// Fails over to `site` once the plan allows it.
pub async fn run(
    meta: &MetaNode,
    founding: &[MemberEntry],
    site: &str,
) -> Result<FailoverPlan, FailoverError> {
    let plan = plan(meta, founding, site).await?;
    if plan.has_quorum {
        return Err(FailoverError::HasQuorum(meta.status().leader));
    }
    if !plan.survivors.contains(&plan.asked) {
        return Err(FailoverError::NotASurvivor {
            site: site.to_owned(),
            asked: plan.asked,
            survivors: plan.survivors,
        });
    }
    let lacking = plan.site_lacks.as_ref().map_or(0, |l| l.segments);
    tracing::warn!(site, survivors = ?plan.survivors, surely_lost = plan.surely_lost_entries, lacking_copies = lacking, "forced failover confirmed by the operator");
    meta.force_failover(plan.survivors.iter().copied().collect())
        .await?;
    Ok(plan)
}
