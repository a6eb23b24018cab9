//! The raft RPCs over the cluster network ([`tessera_net`]): their paths,
//! the errors of the client API as they cross the wire, and openraft's
//! network client.
//!
//! Besides openraft's own RPCs (append, vote, snapshot chunks) members call
//! each other for the client API: a follower forwards writes to the leader
//! and asks it for a read index.

use std::error::Error;
use std::sync::Arc;

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
use tessera_net::{CallError, RpcClient};

use crate::command::ApplyError;
use crate::error::MetaError;
use crate::types::{NodeId, TypeConfig};

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

impl From<CallError> for MetaError {
    fn from(e: CallError) -> Self {
        MetaError::Network(e.to_string())
    }
}

/// Makes openraft's per-peer clients.
pub struct NetworkFactory {
    peers: Arc<RpcClient>,
}

impl NetworkFactory {
    pub(crate) fn new(peers: Arc<RpcClient>) -> NetworkFactory {
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
    peers: Arc<RpcClient>,
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
