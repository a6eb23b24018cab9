//! The raft RPC client: HTTP/2 over mutual TLS to other members, one
//! multiplexed connection per peer, postcard bodies.
//!
//! Besides openraft's own RPCs (append, vote, snapshot chunks) members call
//! each other for the client API: a follower forwards writes to the leader
//! and asks it for a read index. [`Peers`] also holds a test hook that drops
//! all traffic to chosen members, to cut partitions in-process.

use std::collections::{BTreeSet, HashMap};
use std::error::Error;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsConnector;

use crate::command::ApplyError;
use crate::error::MetaError;
use crate::types::{NodeId, TypeConfig, decode, encode};

/// URL paths of the member-to-member RPCs.
pub(crate) mod path {
    /// openraft AppendEntries.
    pub const APPEND: &str = "/raft/append";
    /// openraft Vote.
    pub const VOTE: &str = "/raft/vote";
    /// openraft InstallSnapshot (one chunk).
    pub const SNAPSHOT: &str = "/raft/snapshot";
    /// A write forwarded to the leader.
    pub const WRITE: &str = "/meta/write";
    /// A read index asked of the leader.
    pub const READ_INDEX: &str = "/meta/read-index";
    /// A member's last log id (forced failover compares members).
    pub const LOG_STATE: &str = "/meta/log-state";
    /// A membership change forwarded to the leader.
    pub const MEMBERSHIP: &str = "/meta/membership";
    /// A forced failover handed to the most up-to-date survivor.
    pub const FAILOVER: &str = "/meta/failover";
}

/// A failure of the client API as it crosses the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WireError {
    Apply(ApplyError),
    NoQuorum,
    NotLeader(Option<u64>),
    Shutdown,
    Other(String),
}

impl From<MetaError> for WireError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Apply(a) => WireError::Apply(a),
            MetaError::NoQuorum => WireError::NoQuorum,
            MetaError::NotLeader { leader } => WireError::NotLeader(leader),
            MetaError::Shutdown => WireError::Shutdown,
            other => WireError::Other(other.to_string()),
        }
    }
}

impl From<WireError> for MetaError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Apply(a) => MetaError::Apply(a),
            WireError::NoQuorum => MetaError::NoQuorum,
            WireError::NotLeader(leader) => MetaError::NotLeader { leader },
            WireError::Shutdown => MetaError::Network("peer is shutting down".into()),
            WireError::Other(s) => MetaError::Network(s),
        }
    }
}

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallError {
    /// Traffic to this peer is cut (test partition hook).
    #[error("peer {0} is cut off")]
    Blocked(NodeId),
    /// No connection could be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The call did not finish in time (it may or may not have run).
    #[error("call to {0} timed out")]
    Timeout(String),
    /// The request failed after it may have been sent.
    #[error("rpc to {addr} failed: {reason}")]
    Failed { addr: String, reason: String },
}

impl CallError {
    /// Whether the request surely never reached the peer.
    pub(crate) fn not_sent(&self) -> bool {
        matches!(self, CallError::Blocked(_) | CallError::Connect { .. })
    }
}

impl From<CallError> for MetaError {
    fn from(e: CallError) -> Self {
        MetaError::Network(e.to_string())
    }
}

/// Connections to the other members.
pub(crate) struct Peers {
    tls: Option<TlsConnector>,
    conns: Mutex<HashMap<String, SendRequest<Full<Bytes>>>>,
    blocked: RwLock<BTreeSet<NodeId>>,
}

impl Peers {
    pub(crate) fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Peers {
        Peers {
            tls: tls.map(TlsConnector::from),
            conns: Mutex::new(HashMap::new()),
            blocked: RwLock::new(BTreeSet::new()),
        }
    }

    /// Drops all traffic to `peers` from now on (empty set: heal).
    pub(crate) fn set_blocked(&self, peers: BTreeSet<NodeId>) {
        *self
            .blocked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = peers;
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    fn is_blocked(&self, peer: NodeId) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&peer)
    }

    async fn connection(&self, addr: &str) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let cached = self
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(addr)
            .filter(|c| !c.is_closed())
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let connect_err = |reason: String| CallError::Connect {
            addr: addr.to_owned(),
            reason,
        };
        let tls = self
            .tls
            .as_ref()
            .ok_or_else(|| connect_err("this member has no cluster TLS configured".into()))?;
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        tcp.set_nodelay(true)
            .map_err(|e| connect_err(e.to_string()))?;
        let stream = tls
            .connect(crate::tls::member_server_name(), tcp)
            .await
            .map_err(|e| connect_err(format!("tls: {e}")))?;
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "raft rpc connection closed");
            }
        });
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(addr.to_owned(), sender.clone());
        Ok(sender)
    }

    /// Calls `path` on member `target` at `addr` and decodes its answer.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: NodeId,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        if self.is_blocked(target) {
            return Err(CallError::Blocked(target));
        }
        match tokio::time::timeout(timeout, self.call_inner(addr, path, req)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(addr.to_owned())),
        }
    }

    async fn call_inner<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, CallError> {
        let failed = |reason: String| CallError::Failed {
            addr: addr.to_owned(),
            reason,
        };
        let body = encode(req).map_err(|e| failed(e.to_string()))?;
        let mut sender = self.connection(addr).await?;
        let request = http::Request::post(format!("https://{addr}{path}"))
            .header(http::header::CONTENT_TYPE, "application/x-postcard")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| {
            self.conns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(addr);
            failed(e.to_string())
        })?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(failed(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        decode(&bytes).map_err(|e| failed(format!("bad answer: {e}")))
    }
}

/// Makes openraft's per-peer clients.
pub struct NetworkFactory {
    peers: Arc<Peers>,
}

impl NetworkFactory {
    pub(crate) fn new(peers: Arc<Peers>) -> NetworkFactory {
        NetworkFactory { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            peers: self.peers.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// openraft's client for one peer.
pub struct PeerClient {
    peers: Arc<Peers>,
    target: NodeId,
    addr: String,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn raft_call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: Error + DeserializeOwned,
    {
        let answer: Result<Result<Resp, RaftError<NodeId, E>>, CallError> = self
            .peers
            .call(self.target, &self.addr, path, req, option.hard_ttl())
            .await;
        match answer {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Err(e) if e.not_sent() => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.raft_call(path::APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.raft_call(path::SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.raft_call(path::VOTE, &rpc, &option).await
    }
}
