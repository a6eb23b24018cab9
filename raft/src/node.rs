//! [`MetaNode`]: one member of the metadata cluster and the client API the
//! gateway uses — writes (forwarded to the leader by any member),
//! linearizable reads (the leader's read index), local reads, status.
//!
//! Every call is bounded by [`RaftTiming::request_timeout`]. When no quorum
//! answers, calls end with [`MetaError::NoQuorum`] instead of hanging: at once
//! on a leader that has not heard from a quorum for two election timeouts,
//! after at most two election timeouts on a member that knows no leader.
//! A write that timed out after it was proposed may still commit later: the
//! caller must treat `NoQuorum` from `write` as "outcome unknown".

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::raft::AppendEntriesResponse;
use openraft::{BasicNode, ServerState};
use redb::{Database, ReadableDatabase};
use serde::Serialize;
use tessera_net::{CallError, RpcClient, RpcServer, Service, Unary};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::command::{Command, CommandResponse};
use crate::error::MetaError;
use crate::log_store::{LogStore, LogTail};
use crate::membership::MembershipChange;
use crate::network::{NetworkFactory, WireError, path};
use crate::read::ReadView;
use crate::state_machine::StateMachineStore;
use crate::types::{LogId, MAX_PROPOSAL, NodeId, Proposal, Raft, decode, encode};
pub use tessera_net::ClusterTls;

/// Members' certificates are issued to `member-<id>` ([`member_name`]): a
/// member checks that the peer it calls holds the certificate of the id it
/// meant to reach, and refuses to start with a certificate of another id.
pub const MEMBER_NAME_PREFIX: &str = "member";

/// The name a metadata member's certificate is issued to: `member-3`.
pub fn member_name(id: u64) -> String {
    format!("{MEMBER_NAME_PREFIX}-{id}")
}

/// Raft timing and log-compaction knobs.
#[derive(Debug, Clone)]
pub struct RaftTiming {
    /// Leader heartbeat interval. openraft also uses it as the time limit of
    /// one AppendEntries RPC (which includes the follower's fsync): keep it
    /// well above the disk's worst fsync time.
    pub heartbeat: Duration,
    /// Shortest election timeout.
    pub election_timeout_min: Duration,
    /// Longest election timeout.
    pub election_timeout_max: Duration,
    /// Upper bound of one client call (write, read) before `NoQuorum`.
    pub request_timeout: Duration,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (lets lagging members catch
    /// up from the log rather than a snapshot).
    pub logs_kept_after_snapshot: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat: Duration::from_millis(250),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            request_timeout: Duration::from_secs(5),
            snapshot_every: 20_000,
            logs_kept_after_snapshot: 5_000,
        }
    }
}

/// How to start a member.
#[derive(Debug, Clone)]
pub struct MetaConfig {
    /// This member's id, unique in the cluster, never reused.
    pub node_id: u64,
    /// Directory of the log, the state and the snapshots.
    pub data_dir: PathBuf,
    /// Where to serve raft RPC (needs `tls`); `None` for a single member
    /// that never talks to others.
    pub rpc_listen: Option<SocketAddr>,
    /// `host:port` other members use to reach this one; defaults to the bound RPC address.
    pub advertise: Option<String>,
    /// Cluster TLS material (required with `rpc_listen`).
    pub tls: Option<ClusterTls>,
    /// Raft timing.
    pub timing: RaftTiming,
    /// Most memory the state file's page cache may hold, in bytes.
    pub state_cache_bytes: usize,
    /// Whom the RPC server answers: `None`, every holder of a certificate
    /// from the cluster CA; `Some(ids)`, only the certificates of members
    /// of the cluster (`member-<id>`) and of `ids` (members expected to
    /// join): a storage node's certificate, though from the same CA, gets
    /// no answer.
    pub accept_peers: Option<BTreeSet<u64>>,
    /// Whether this member is a witness (see [`crate::witness`]): it
    /// founds nothing itself, stands for election only after the others,
    /// and hands leadership over as soon as another voter has caught up.
    pub witness: bool,
}

/// Default of [`MetaConfig::state_cache_bytes`].
pub const DEFAULT_STATE_CACHE_BYTES: usize = 8 << 20;

impl MetaConfig {
    /// A config for member `node_id` in `data_dir`, without RPC, default
    /// timing and state cache.
    pub fn new(node_id: u64, data_dir: impl Into<PathBuf>) -> MetaConfig {
        MetaConfig {
            node_id,
            data_dir: data_dir.into(),
            rpc_listen: None,
            advertise: None,
            tls: None,
            timing: RaftTiming::default(),
            state_cache_bytes: DEFAULT_STATE_CACHE_BYTES,
            accept_peers: None,
            witness: false,
        }
    }
}

/// A snapshot of a member's raft state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaStatus {
    /// This member's id.
    pub id: u64,
    /// The leader this member knows of.
    pub leader: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Index of the last entry applied to the state machine.
    pub last_applied: u64,
    /// Index of the last entry in the log.
    pub last_log_index: u64,
    /// Last index covered by this member's snapshot (0: none).
    pub snapshot_index: u64,
    /// Last index purged from this member's log (0: none).
    pub purged_index: u64,
    /// Role: "leader", "follower", "candidate", "learner" or "shutdown".
    pub role: &'static str,
    /// Voter ids of the effective membership.
    pub voters: Vec<u64>,
    /// Learner ids of the effective membership.
    pub learners: Vec<u64>,
    /// Member id → advertised address.
    pub addresses: BTreeMap<u64, String>,
    /// On a leader: member id → index of the last entry known to be
    /// replicated on it (0: none yet). Empty elsewhere.
    pub matched: BTreeMap<u64, u64>,
    /// On a follower or learner: the leader's commit index as of the last
    /// append accepted from it, and how long ago that was. If the leader is
    /// lost for good, at least `leader_commit - last_log_index` committed
    /// entries are missing here, and whatever it committed since.
    pub leader_commit_seen: u64,
    /// Milliseconds since the last append accepted from a leader (`None`:
    /// none since this member started).
    pub leader_heard_ms_ago: Option<u64>,
    /// Whether this member sees a working quorum: a leader that heard from a
    /// quorum within two election timeouts, or a member that heard from a
    /// leader within that time (it cannot tell whether that leader still
    /// has its quorum; writes through it still answer `NoQuorum` if not).
    pub has_quorum: bool,
}

/// One running member. Cheap to clone.
#[derive(Clone)]
pub struct MetaNode {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<Core>,
    server: tokio::sync::Mutex<Option<RpcServer>>,
    rpc_addr: Option<SocketAddr>,
    advertise: String,
}

/// What both the client API and the RPC service need.
pub(crate) struct Core {
    pub(crate) id: NodeId,
    pub(crate) timing: RaftTiming,
    pub(crate) peers: Arc<RpcClient>,
    /// See [`MetaConfig::witness`].
    pub(crate) witness: bool,
    data_dir: PathBuf,
    state_cache_bytes: usize,
    running: RwLock<Running>,
    /// When this member was created; the origin of `leader_contact_ms`.
    epoch: Instant,
    /// Milliseconds after `epoch` of the last append accepted from a leader.
    leader_contact_ms: AtomicU64,
    /// The commit index the leader sent with its last accepted append.
    leader_commit_seen: AtomicU64,
    /// Commands waiting to be proposed (group commit, see [`propose_loop`]).
    proposals: mpsc::Sender<Pending>,
}

/// A command waiting for a proposal, and who waits for its outcome.
type Pending = (Command, oneshot::Sender<Result<CommandResponse, MetaError>>);

/// Proposals in flight at once: while one waits for its fsync, the next
/// commands gather into the next proposal. One, so batches grow with the
/// load: under 32 concurrent small PUTs (s5cmd) two in flight made batches
/// of five commands, one makes them of nine and spends 16 % less CPU per
/// PUT (fewer log fsyncs, transactions and wake-ups).
const PROPOSALS_IN_FLIGHT: usize = 1;

/// Most commands waiting for a proposal: a writer past them waits (within
/// its deadline) for room, so a stalled commit holds a bounded queue, not
/// every command sent meanwhile.
const QUEUED_COMMANDS: usize = MAX_PROPOSAL;

/// The parts replaced when raft restarts (forced failover).
struct Running {
    raft: Raft,
    state: Option<Arc<Database>>,
    tail: LogTail,
    files: Vec<Weak<Database>>,
}

/// Whether [`Core::at_leader`] may send a request to the leader again
/// after an attempt that may have reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Only when the request surely was not delivered: it changes state.
    IfUnsent,
    /// After any failure short of a timeout: asking again changes nothing.
    Always,
}

/// openraft's answer to a failed `client_write`.
type WriteError = RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>;

pub(crate) fn map_write_error(e: WriteError) -> MetaError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => MetaError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            MetaError::Invalid(e.to_string())
        }
        RaftError::Fatal(f) => fatal(f),
    }
}

pub(crate) fn fatal(f: openraft::error::Fatal<NodeId>) -> MetaError {
    match f {
        openraft::error::Fatal::Stopped => MetaError::Shutdown,
        other => MetaError::Storage(other.to_string()),
    }
}

impl MetaNode {
    /// Opens the member's files in `cfg.data_dir`, starts raft and (with
    /// `rpc_listen`) the RPC server. A member that was part of a cluster
    /// rejoins it; a fresh one waits to be bootstrapped or added.
    pub async fn start(cfg: MetaConfig) -> Result<MetaNode, MetaError> {
        crate::types::create_private_dir(&cfg.data_dir)?;
        let client_tls = cfg
            .tls
            .as_ref()
            .map(tessera_net::tls::client_config)
            .transpose()?;
        let server_tls = cfg
            .tls
            .as_ref()
            .map(tessera_net::tls::server_config)
            .transpose()?;
        let listener = match cfg.rpc_listen {
            Some(addr) => {
                if server_tls.is_none() {
                    return Err(MetaError::Invalid("raft rpc needs cluster tls".into()));
                }
                Some(tokio::net::TcpListener::bind(addr).await?)
            }
            None => None,
        };
        let rpc_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let advertise = cfg
            .advertise
            .clone()
            .or_else(|| rpc_addr.map(|a| a.to_string()))
            .unwrap_or_default();

        if let Some(tls) = &cfg.tls {
            let name = member_name(cfg.node_id);
            tessera_net::tls::verify_member(tls, &name).map_err(|e| {
                MetaError::Invalid(format!(
                    "the cluster certificate cannot serve as metadata member {}: {e}",
                    cfg.node_id
                ))
            })?;
        }
        let peers = Arc::new(RpcClient::new(client_tls).expecting_names(MEMBER_NAME_PREFIX));
        let running = open_running(
            cfg.node_id,
            &cfg.data_dir,
            &cfg.timing,
            cfg.witness,
            cfg.state_cache_bytes,
            &peers,
        )
        .await?;
        let (proposals, pending) = mpsc::channel(QUEUED_COMMANDS);
        let core = Arc::new(Core {
            id: cfg.node_id,
            timing: cfg.timing.clone(),
            peers,
            witness: cfg.witness,
            data_dir: cfg.data_dir.clone(),
            state_cache_bytes: cfg.state_cache_bytes,
            running: RwLock::new(running),
            epoch: Instant::now(),
            leader_contact_ms: AtomicU64::new(0),
            leader_commit_seen: AtomicU64::new(0),
            proposals,
        });
        tokio::spawn(propose_loop(Arc::downgrade(&core), pending));
        if cfg.witness {
            tokio::spawn(crate::witness::hand_over(Arc::downgrade(&core)));
        }
        let server = match (listener, server_tls) {
            (Some(listener), Some(tls)) => {
                let service = Arc::new(Unary(core.clone()));
                Some(match cfg.accept_peers.clone() {
                    None => RpcServer::start("raft", listener, tls, service),
                    Some(also) => RpcServer::start_checked(
                        "raft",
                        listener,
                        tls,
                        service,
                        Arc::new(MembersOnly {
                            core: Arc::downgrade(&core),
                            also,
                        }),
                    ),
                })
            }
            _ => None,
        };
        tracing::info!(id = cfg.node_id, rpc = ?rpc_addr, "metadata member started");
        Ok(MetaNode {
            inner: Arc::new(Inner {
                core,
                server: tokio::sync::Mutex::new(server),
                rpc_addr,
                advertise,
            }),
        })
    }

    pub(crate) fn core(&self) -> &Core {
        &self.inner.core
    }

    /// This member's id.
    pub fn id(&self) -> u64 {
        self.inner.core.id
    }

    /// The bound RPC address, when serving RPC.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.inner.rpc_addr
    }

    /// Whether this member is the leader it knows of (in a cluster of
    /// several, background work that must run once runs where this holds).
    pub fn leads(&self) -> bool {
        let metrics = self.core().raft().metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id())
    }

    /// The address other members use to reach this one.
    pub fn advertise(&self) -> &str {
        &self.inner.advertise
    }

    /// Makes this member a cluster of one (the embedded default). A no-op if
    /// it already belongs to a cluster. Returns once it leads.
    pub async fn bootstrap_single(&self) -> Result<(), MetaError> {
        let core = self.core();
        let initialized = core.raft().is_initialized().await.map_err(fatal)?;
        if !initialized {
            let members = BTreeMap::from([(core.id, BasicNode::new(self.advertise()))]);
            match core.raft().initialize(members).await {
                Ok(()) => tracing::info!(
                    id = core.id,
                    "bootstrapped a single-member metadata cluster"
                ),
                Err(RaftError::APIError(e)) => tracing::info!(error = %e, "already initialized"),
                Err(RaftError::Fatal(f)) => return Err(fatal(f)),
            }
        }
        core.wait_for_leader(Instant::now() + core.timing.request_timeout)
            .await
            .map(|_| ())
    }

    /// Proposes `cmd` and returns its outcome once applied. Any member
    /// accepts writes: a follower forwards to the leader. A refusal of the
    /// state machine is [`MetaError::Apply`].
    ///
    /// The write is a span (`raft.commit`) of the caller's trace, when
    /// tracing is on (see [`tessera_net::trace`]).
    pub async fn write(&self, cmd: Command) -> Result<CommandResponse, MetaError> {
        let span = tracing::info_span!(
            target: tessera_net::trace::TARGET,
            "raft.commit",
            tessera.member = self.core().id,
            error = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self.core().write(cmd).instrument(span.clone()).await;
        metrics::histogram!("tessera_raft_write_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            span.record("error", tracing::field::display(e));
        }
        result
    }

    /// Runs `f` on a view that reflects every write acknowledged before this
    /// call began (linearizable: the leader's read index, waited for locally).
    ///
    /// A leader that is the only voter, once it applied an entry of its term,
    /// reads its own state at once: it applies every write before
    /// acknowledging it, and no other member can be elected, or acknowledge
    /// a write, without its vote.
    pub async fn read<T>(
        &self,
        f: impl FnOnce(&ReadView) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let core = self.core();
        if !core.leads_alone() {
            let span = tracing::info_span!(
                target: tessera_net::trace::TARGET,
                "raft.read_index",
                tessera.member = core.id,
            );
            let deadline = Instant::now() + core.timing.request_timeout;
            async {
                let index = core.read_index(deadline).await?;
                core.wait_applied(index, deadline).await
            }
            .instrument(span)
            .await?;
        }
        self.read_local(f).await
    }

    /// Runs `f` on this member's applied state, without asking the leader
    /// (may lag behind the cluster).
    pub async fn read_local<T>(
        &self,
        f: impl FnOnce(&ReadView) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        let db = self.core().state_db()?;
        let view = ReadView::new(db.begin_read()?);
        f(&view)
    }

    /// This member's raft state.
    pub fn status(&self) -> MetaStatus {
        self.core().status()
    }

    /// Test hook: drops all raft traffic from this member to `peers` (an empty
    /// set heals). Cut both directions to partition members in-process.
    pub fn set_partitioned(&self, peers: impl IntoIterator<Item = u64>) {
        self.core().peers.set_blocked(peers.into_iter().collect());
    }

    /// Stops raft and the RPC server and closes the files. Other clones of
    /// this `MetaNode` answer [`MetaError::Shutdown`] afterwards.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        if let Some(server) = self.inner.server.lock().await.take() {
            server.stop().await;
        }
        let core = self.core();
        core.stop_raft().await?;
        tracing::info!(id = core.id, "metadata member stopped");
        Ok(())
    }
}

/// Group commit: takes every command waiting, proposes them as one raft
/// entry, and hands each caller its own outcome. At most
/// [`PROPOSALS_IN_FLIGHT`] proposals wait for raft at once; commands arriving
/// meanwhile form the next one. A command whose caller stopped waiting
/// (its deadline passed) is dropped unproposed.
async fn propose_loop(core: Weak<Core>, mut pending: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(Semaphore::new(PROPOSALS_IN_FLIGHT));
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::new();
        while batch.is_empty() {
            let Some(first) = pending.recv().await else {
                return;
            };
            batch.extend(waited_for(first));
        }
        while batch.len() < MAX_PROPOSAL {
            match pending.try_recv() {
                Ok(p) => batch.extend(waited_for(p)),
                Err(_) => break,
            }
        }
        let Some(raft) = core.upgrade().map(|c| c.raft()) else {
            return;
        };
        metrics::histogram!("tessera_raft_proposal_commands").record(batch.len() as f64);
        tokio::spawn(async move {
            let (commands, waiters): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
            match raft.client_write(Proposal(commands)).await {
                Ok(resp) => {
                    for (waiter, outcome) in waiters.into_iter().zip(resp.data.0) {
                        let _ = waiter.send(outcome.map_err(MetaError::Apply));
                    }
                }
                Err(e) => {
                    let e = map_write_error(e);
                    for waiter in waiters {
                        let _ = waiter.send(Err(e.clone()));
                    }
                }
            }
            drop(permit);
        });
    }
}

/// `p`, unless its caller no longer waits for the outcome.
fn waited_for(p: Pending) -> Option<Pending> {
    (!p.1.is_closed()).then_some(p)
}

fn raft_config(t: &RaftTiming, witness: bool) -> Result<openraft::Config, MetaError> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    // A witness waits twice as long before it stands for election: a
    // voter that may lead goes first.
    let patience: u32 = if witness { 2 } else { 1 };
    openraft::Config {
        cluster_name: "tessera".into(),
        heartbeat_interval: ms(t.heartbeat),
        election_timeout_min: ms(t.election_timeout_min * patience),
        election_timeout_max: ms(t.election_timeout_max * patience),
        install_snapshot_timeout: ms(t.request_timeout).max(2_000),
        max_payload_entries: 256,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(t.snapshot_every),
        max_in_snapshot_log_to_keep: t.logs_kept_after_snapshot,
        purge_batch_size: 64,
        ..Default::default()
    }
    .validate()
    .map_err(|e| MetaError::Invalid(e.to_string()))
}

/// Opens the member's log and state and starts raft on them.
/// Keeps the stored vote of a member that led, but no longer as granted
/// by a quorum: openraft then starts it as a follower, not as the leader
/// of that term. It still never votes for another in that term.
async fn step_down_vote(id: NodeId, dir: &Path) -> Result<(), MetaError> {
    use openraft::storage::RaftLogStorage;
    let mut log = LogStore::open(&dir.join("raft-log.redb"))?;
    let vote = log
        .read_vote()
        .await
        .map_err(|e| MetaError::Storage(e.to_string()))?;
    if let Some(vote) = vote.filter(|v| v.is_committed() && v.leader_id().voted_for() == Some(id)) {
        log.save_vote(&crate::types::Vote::new(vote.leader_id().term, id))
            .await
            .map_err(|e| MetaError::Storage(e.to_string()))?;
    }
    // The log's writer thread closes the file a moment after the drop.
    let file = log.db_weak();
    drop(log);
    closed(&[file], "raft log still open after stepping down").await
}

/// Waits (10 s at most) until nothing holds `files` open any more; fails
/// with `still_open` when something still does.
async fn closed(files: &[Weak<Database>], still_open: &str) -> Result<(), MetaError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while files.iter().any(|f| f.strong_count() > 0) {
        if Instant::now() > deadline {
            return Err(MetaError::Storage(still_open.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn open_running(
    id: NodeId,
    dir: &Path,
    timing: &RaftTiming,
    witness: bool,
    state_cache_bytes: usize,
    peers: &Arc<RpcClient>,
) -> Result<Running, MetaError> {
    let log = LogStore::open(&dir.join("raft-log.redb"))?;
    let sm = StateMachineStore::open(
        &dir.join("state.redb"),
        &dir.join("snapshots"),
        state_cache_bytes,
    )?;
    let state = sm.db();
    let files = vec![log.db_weak(), Arc::downgrade(&state)];
    let tail = log.tail();
    let raft = Raft::new(
        id,
        Arc::new(raft_config(timing, witness)?),
        NetworkFactory::new(peers.clone()),
        log,
        sm,
    )
    .await
    .map_err(fatal)?;
    Ok(Running {
        raft,
        state: Some(state),
        tail,
        files,
    })
}

impl Core {
    fn running(&self) -> std::sync::RwLockReadGuard<'_, Running> {
        self.running
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The running raft (cheap handle).
    pub(crate) fn raft(&self) -> Raft {
        self.running().raft.clone()
    }

    fn state_db(&self) -> Result<Arc<Database>, MetaError> {
        self.running().state.clone().ok_or(MetaError::Shutdown)
    }

    /// The last log id of this member.
    pub(crate) fn last_log_id(&self) -> Option<LogId> {
        self.running().tail.last_log_id()
    }

    /// Stops raft and waits until its files are closed.
    pub(crate) async fn stop_raft(&self) -> Result<(), MetaError> {
        if let Err(e) = self.raft().shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let files = {
            let mut running = self
                .running
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            running.state = None;
            running.files.clone()
        };
        // openraft drops its storage a moment after shutdown returns.
        closed(&files, "metadata files still open after shutdown").await
    }

    /// Starts raft again on this member's files (after [`Core::stop_raft`]);
    /// with `step_down`, as a follower even if it led.
    pub(crate) async fn restart_raft(&self, step_down: bool) -> Result<(), MetaError> {
        if step_down {
            step_down_vote(self.id, &self.data_dir).await?;
        }
        let running = open_running(
            self.id,
            &self.data_dir,
            &self.timing,
            self.witness,
            self.state_cache_bytes,
            &self.peers,
        )
        .await?;
        *self
            .running
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = running;
        Ok(())
    }

    /// The member's data directory.
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Longest a leader may go without a quorum acknowledgement before it
    /// answers `NoQuorum` at once.
    fn quorum_grace(&self) -> Duration {
        self.timing.election_timeout_max * 2
    }

    pub(crate) fn status(&self) -> MetaStatus {
        let m = self.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let has_quorum = match m.state {
            ServerState::Leader => m
                .millis_since_quorum_ack
                .is_some_and(|ms| Duration::from_millis(ms) < self.quorum_grace()),
            _ => m.current_leader.is_some() && self.leader_recently_heard(),
        };
        MetaStatus {
            id: self.id,
            leader: m.current_leader,
            term: m.current_term,
            last_applied: m.last_applied.map_or(0, |l| l.index),
            last_log_index: m.last_log_index.unwrap_or(0),
            snapshot_index: m.snapshot.map_or(0, |l| l.index),
            purged_index: m.purged.map_or(0, |l| l.index),
            role,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            addresses: membership
                .nodes()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect(),
            matched: m
                .replication
                .iter()
                .flat_map(|r| r.iter())
                .map(|(id, log)| (*id, log.map_or(0, |l| l.index)))
                .collect(),
            leader_commit_seen: self.leader_commit_seen.load(Ordering::Relaxed),
            leader_heard_ms_ago: self.leader_heard_ms_ago(),
            has_quorum,
        }
    }

    /// Whether a leader's append reached this member within the quorum grace
    /// (counting from start-up, to give a restarted member time to hear one).
    fn leader_recently_heard(&self) -> bool {
        let last = Duration::from_millis(self.leader_contact_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last) < self.quorum_grace()
    }

    /// Milliseconds since a leader's append was last accepted here.
    fn leader_heard_ms_ago(&self) -> Option<u64> {
        let last = self.leader_contact_ms.load(Ordering::Relaxed);
        (last > 0).then(|| {
            let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            now.saturating_sub(last)
        })
    }

    fn note_leader_contact(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.leader_contact_ms.store(now, Ordering::Relaxed);
    }

    /// Whether this member leads but has not heard from a quorum lately.
    fn leader_without_quorum(&self) -> bool {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader
            && m.millis_since_quorum_ack
                .is_some_and(|ms| Duration::from_millis(ms) >= self.quorum_grace())
    }

    /// Whether this member leads, is the only voter of the effective
    /// membership (joint configurations included) and has applied an entry
    /// of its own term (so entries of earlier terms are applied too): its
    /// applied state then holds every acknowledged write (see
    /// [`MetaNode::read`]).
    pub(crate) fn leads_alone(&self) -> bool {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        if m.state != ServerState::Leader
            || m.current_leader != Some(self.id)
            || m.last_applied
                .is_none_or(|l| l.leader_id.term != m.current_term)
        {
            return false;
        }
        let mut voters = m.membership_config.membership().voter_ids();
        voters.next() == Some(self.id) && voters.next().is_none()
    }

    /// The current leader, waiting (at most two election timeouts and until
    /// `deadline`) for one to be elected.
    pub(crate) async fn wait_for_leader(&self, deadline: Instant) -> Result<NodeId, MetaError> {
        let deadline = deadline.min(Instant::now() + self.timing.election_timeout_max * 2);
        let mut rx = self.raft().metrics();
        loop {
            let (leader, state) = {
                let m = rx.borrow_and_update();
                (m.current_leader, m.state)
            };
            if state == ServerState::Shutdown {
                return Err(MetaError::Shutdown);
            }
            if let Some(leader) = leader {
                return Ok(leader);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.changed()).await {
                Err(_) => return Err(MetaError::NoQuorum),
                Ok(Err(_)) => return Err(MetaError::Shutdown),
                Ok(Ok(())) => {}
            }
        }
    }

    fn address_of(&self, id: NodeId) -> Result<String, MetaError> {
        let m = self.raft().metrics().borrow().clone();
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .ok_or_else(|| MetaError::Network(format!("no address known for member {id}")))
    }

    /// Runs a client-API request where the leader is: `local` when this
    /// member leads, else the `rpc` on the leader. Retries while leadership
    /// moves and while the request surely was not delivered; resends a
    /// request that may have run only when `resend` says it is harmless.
    pub(crate) async fn at_leader<Req, T, F, Fut>(
        &self,
        rpc: &str,
        req: &Req,
        resend: Resend,
        deadline: Instant,
        local: F,
    ) -> Result<T, MetaError>
    where
        Req: Serialize,
        T: serde::de::DeserializeOwned,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, MetaError>>,
    {
        loop {
            let leader = self.wait_for_leader(deadline).await?;
            if leader == self.id {
                match local().await {
                    Err(MetaError::NotLeader { .. }) => {}
                    other => return other,
                }
            } else if !self.leader_recently_heard() {
                // The leader we know has gone quiet (a learner never elects
                // a new one): no quorum we can reach.
                return Err(MetaError::NoQuorum);
            } else {
                let answer: Result<Result<T, WireError>, CallError> =
                    self.call_member(leader, rpc, req, deadline).await;
                match answer {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(WireError::NotLeader(_))) => {}
                    // The leader stopped (a witness handing leadership
                    // over, a member shutting down): another is elected.
                    Ok(Err(WireError::Shutdown)) if resend == Resend::Always => {}
                    Ok(Err(e)) => return Err(e.into()),
                    Err(e) if e.not_sent() => {}
                    Err(CallError::Timeout(_)) => return Err(MetaError::NoQuorum),
                    Err(_) if resend == Resend::Always => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if Instant::now() >= deadline {
                return Err(MetaError::NoQuorum);
            }
            tokio::time::sleep(self.timing.heartbeat.min(Duration::from_millis(50))).await;
        }
    }

    async fn write(&self, cmd: Command) -> Result<CommandResponse, MetaError> {
        let deadline = Instant::now() + self.timing.request_timeout;
        self.at_leader(path::WRITE, &cmd, Resend::IfUnsent, deadline, || {
            self.write_as_leader(cmd.clone(), deadline)
        })
        .await
    }

    /// Proposes `cmd` on this member, which must lead.
    pub(crate) async fn write_as_leader(
        &self,
        cmd: Command,
        deadline: Instant,
    ) -> Result<CommandResponse, MetaError> {
        let (tx, rx) = oneshot::channel();
        let proposed = async {
            self.proposals
                .send((cmd, tx))
                .await
                .map_err(|_| MetaError::Shutdown)?;
            rx.await.map_err(|_| MetaError::Shutdown)?
        };
        self.leader_bounded(deadline, proposed).await?
    }

    /// Runs `work` on the leader until it finishes, the deadline passes or
    /// the leader loses touch with its quorum (both: `NoQuorum`).
    async fn leader_bounded<T>(
        &self,
        deadline: Instant,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, MetaError> {
        let quorum_lost = async {
            while !self.leader_without_quorum() {
                tokio::time::sleep(self.timing.heartbeat).await;
            }
        };
        tokio::select! {
            done = work => Ok(done),
            () = quorum_lost => Err(MetaError::NoQuorum),
            () = tokio::time::sleep_until(deadline.into()) => Err(MetaError::NoQuorum),
        }
    }

    /// The log index a linearizable read must wait for.
    async fn read_index(&self, deadline: Instant) -> Result<u64, MetaError> {
        let log_id = self
            .at_leader(path::READ_INDEX, &(), Resend::Always, deadline, || {
                self.read_index_as_leader(deadline)
            })
            .await?;
        Ok(log_id.map_or(0, |l| l.index))
    }

    /// Confirms leadership with a quorum and returns the read log id.
    ///
    /// openraft confirms with one round of heartbeats, each answer allowed
    /// one heartbeat interval. With a site down every surviving voter must
    /// answer that round in time, so one follower briefly busy (a long
    /// fsync, a starved CPU) fails it although the quorum stands. A failed
    /// round is tried again until the deadline; a leader that really lost
    /// its quorum is still told apart by [`Core::leader_bounded`].
    pub(crate) async fn read_index_as_leader(
        &self,
        deadline: Instant,
    ) -> Result<Option<LogId>, MetaError> {
        loop {
            match self
                .leader_bounded(deadline, self.raft().ensure_linearizable())
                .await?
            {
                Ok(log_id) => return Ok(log_id),
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                    return Err(MetaError::NotLeader {
                        leader: f.leader_id,
                    });
                }
                Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                    let pause = self.timing.heartbeat.min(Duration::from_millis(50));
                    if Instant::now() + pause + self.timing.heartbeat >= deadline {
                        return Err(MetaError::NoQuorum);
                    }
                    metrics::counter!("tessera_raft_read_index_retries_total").increment(1);
                    tokio::time::sleep(pause).await;
                }
                Err(RaftError::Fatal(f)) => return Err(fatal(f)),
            }
        }
    }

    async fn wait_applied(&self, index: u64, deadline: Instant) -> Result<(), MetaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft()
            .wait(Some(left))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => MetaError::NoQuorum,
                openraft::metrics::WaitError::ShuttingDown => MetaError::Shutdown,
            })
    }

    /// Calls a client-API RPC on member `target`.
    pub(crate) async fn call_member<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        target: NodeId,
        rpc: &str,
        req: &Req,
        deadline: Instant,
    ) -> Result<Resp, CallError> {
        let addr = self.address_of(target).map_err(|e| CallError::Connect {
            addr: String::new(),
            reason: e.to_string(),
        })?;
        let left = deadline.saturating_duration_since(Instant::now());
        self.peers.call(target, &addr, rpc, req, left).await
    }
}

/// The RPC server's check with [`MetaConfig::accept_peers`] set: the
/// caller's certificate must be a member's of the cluster, or of one
/// expected to join.
struct MembersOnly {
    core: Weak<Core>,
    also: BTreeSet<u64>,
}

impl tessera_net::ClientCheck for MembersOnly {
    fn allows(&self, cert: &rustls::pki_types::CertificateDer<'_>) -> bool {
        let Some(core) = self.core.upgrade() else {
            return false;
        };
        let members: BTreeSet<u64> = core
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect();
        members
            .union(&self.also)
            .any(|id| tessera_net::tls::issued_to(cert, &member_name(*id)))
    }
}

fn bad_request(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, e.to_string())
}

fn encoded<T: Serialize>(value: &T) -> Result<Vec<u8>, (StatusCode, String)> {
    encode(value).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

impl Service for Core {
    async fn handle(&self, rpc: String, body: Bytes) -> Result<Vec<u8>, (StatusCode, String)> {
        match rpc.as_str() {
            path::APPEND => {
                let req: openraft::raft::AppendEntriesRequest<crate::types::TypeConfig> =
                    decode(&body).map_err(bad_request)?;
                let leader_commit = req.leader_commit.map_or(0, |l| l.index);
                let resp = self.raft().append_entries(req).await;
                if matches!(
                    resp,
                    Ok(AppendEntriesResponse::Success
                        | AppendEntriesResponse::PartialSuccess(_)
                        | AppendEntriesResponse::Conflict)
                ) {
                    self.note_leader_contact();
                    self.leader_commit_seen
                        .store(leader_commit, Ordering::Relaxed);
                }
                encoded(&resp)
            }
            path::VOTE => {
                let req = decode(&body).map_err(bad_request)?;
                encoded(&self.raft().vote(req).await)
            }
            path::SNAPSHOT => {
                let req = decode(&body).map_err(bad_request)?;
                encoded(&self.raft().install_snapshot(req).await)
            }
            path::WRITE => {
                let cmd: Command = decode(&body).map_err(bad_request)?;
                let deadline = Instant::now() + self.timing.request_timeout;
                let result = self
                    .write_as_leader(cmd, deadline)
                    .await
                    .map_err(WireError::from);
                encoded(&result)
            }
            path::READ_INDEX => {
                let deadline = Instant::now() + self.timing.request_timeout;
                let result = self
                    .read_index_as_leader(deadline)
                    .await
                    .map_err(WireError::from);
                encoded(&result)
            }
            path::LOG_STATE => encoded(&self.last_log_id()),
            path::MEMBERSHIP => {
                let change: MembershipChange = decode(&body).map_err(bad_request)?;
                let deadline = Instant::now() + self.timing.request_timeout * 10;
                let result = self
                    .change_membership_as_leader(change, deadline)
                    .await
                    .map_err(WireError::from);
                encoded(&result)
            }
            path::FAILOVER => {
                let survivors: BTreeSet<NodeId> = decode(&body).map_err(bad_request)?;
                encoded(
                    &self
                        .force_failover(survivors)
                        .await
                        .map_err(WireError::from),
                )
            }
            _ => Err((StatusCode::NOT_FOUND, format!("no rpc {rpc}"))),
        }
    }
}
