//! A witness: a voter in a third place, so that either site alone keeps a
//! quorum. The leader runs the cluster's background jobs (repair, GC,
//! scrub), which need the stores only gateways have, so a witness should
//! not lead; but it must be able to: when the other site is lost and the
//! surviving gateway's log lacks entries the witness holds, only the
//! witness can be elected (raft elects no member with less than a
//! majority's committed log), and it then brings that gateway up to date.
//!
//! So a witness founds nothing itself (initializing starts an election at
//! once), stands for election only after twice the others' timeout, and
//! once it leads and another voter has caught up with its log, hands
//! leadership over: it restarts its raft as a follower (openraft would
//! resume leading from a stored vote of its own: that vote is kept, no
//! longer marked as granted by a quorum) that stands for no election for a
//! few election timeouts, so the caught-up voter is elected. Writes wait for the new
//! leader meanwhile (an election: a second or two); a witness that wins
//! again hands over again, at most every [`HAND_OVER_GAP`].

use std::sync::Weak;
use std::time::{Duration, Instant};

use openraft::ServerState;

use crate::node::Core;

/// How often a witness looks whether it leads and can hand over.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long another voter must have been caught up before the hand-over.
const CAUGHT_UP_FOR: Duration = Duration::from_secs(1);
/// Least time between two hand-overs.
const HAND_OVER_GAP: Duration = Duration::from_secs(10);

/// Hands leadership over whenever this witness leads and may; ends with
/// the member.
pub(crate) async fn hand_over(core: Weak<Core>) {
    let mut caught_up_since: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let Some(core) = core.upgrade() else {
            return;
        };
        let hold = core.timing.election_timeout_max * 4;
        if !heir_caught_up(&core) {
            caught_up_since = None;
            continue;
        }
        let since = *caught_up_since.get_or_insert_with(Instant::now);
        if since.elapsed() < CAUGHT_UP_FOR || last.is_some_and(|l| l.elapsed() < HAND_OVER_GAP) {
            continue;
        }
        tracing::info!(
            id = core.id,
            "the witness leads: handing leadership to a caught-up voter"
        );
        metrics::counter!("tessera_raft_witness_hand_overs_total").increment(1);
        last = Some(Instant::now());
        caught_up_since = None;
        let restarted = match core.stop_raft().await {
            Ok(()) => core.restart_raft(true).await,
            Err(e) => Err(e),
        };
        match restarted {
            Ok(()) => {
                // Its own election timer starts afresh, the others' ran on
                // since its last heartbeat, but it may still run out first:
                // no campaign until a caught-up voter has had its turn.
                let raft = core.raft();
                drop(core);
                raft.runtime_config().elect(false);
                tokio::time::sleep(hold).await;
                raft.runtime_config().elect(true);
            }
            Err(e) => {
                tracing::error!(error = %e, "the witness could not restart its raft after handing over");
            }
        }
    }
}

/// Whether this member leads and another voter holds its whole log.
fn heir_caught_up(core: &Core) -> bool {
    let metrics = core.raft().metrics();
    let m = metrics.borrow();
    if m.state != ServerState::Leader {
        return false;
    }
    let Some(last) = m.last_log_index else {
        return false;
    };
    let Some(replication) = m.replication.as_ref() else {
        return false;
    };
    m.membership_config
        .membership()
        .voter_ids()
        .filter(|id| *id != core.id)
        .any(|id| {
            replication
                .get(&id)
                .and_then(|log| log.as_ref())
                .is_some_and(|log| log.index >= last)
        })
}
