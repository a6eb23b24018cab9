//! The RPC client: HTTP/2 over mutual TLS to other machines of the cluster,
//! one multiplexed connection per address, pinged while nothing arrives so
//! that a peer gone silent fails its calls within seconds (connecting is
//! bounded too; names are looked up one at a time each, see
//! [`crate::resolve`]). [`RpcClient::call`] sends and
//! answers whole postcard messages; [`RpcClient::send`] any request, with
//! bodies streamed both ways. Each request carries the caller's trace
//! context, when tracing is on (see [`crate::trace`]).
//!
//! [`RpcClient`] also holds a test hook that drops all traffic to chosen
//! peers, to cut partitions inside one process.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_rustls::TlsConnector;

use crate::body::{Body, full};
use crate::resolve::Resolver;
use crate::wire::{decode, encode};

/// The cluster-wide number of the machine called (a metadata member or a
/// storage node); the partition hook blocks by it.
pub type PeerId = u64;

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Traffic to this peer is cut (test partition hook).
    #[error("peer {0} is cut off")]
    Blocked(PeerId),
    /// No connection could be made.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address dialled.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// The call did not finish in time (it may or may not have run).
    #[error("call to {0} timed out")]
    Timeout(String),
    /// The TLS handshake failed: the peer showed a certificate we do not
    /// accept (another cluster's, or another member's than expected), or
    /// refused ours. A configuration fault, not a passing one.
    #[error("{addr} refused: {reason}")]
    Refused {
        /// The address dialled.
        addr: String,
        /// What the handshake said.
        reason: String,
    },
    /// The request failed after it may have been sent.
    #[error("rpc to {addr} failed: {reason}")]
    Failed {
        /// The address called.
        addr: String,
        /// What went wrong.
        reason: String,
    },
}

impl CallError {
    /// Whether the request surely never reached the peer.
    pub fn not_sent(&self) -> bool {
        matches!(
            self,
            CallError::Blocked(_) | CallError::Connect { .. } | CallError::Refused { .. }
        )
    }
}

/// Connections to the other machines of the cluster.
pub struct RpcClient {
    tls: Option<TlsConnector>,
    conns: Mutex<HashMap<(PeerId, String), SendRequest<Body>>>,
    resolver: Resolver,
    blocked: RwLock<BTreeSet<PeerId>>,
    /// With `Some(prefix)`, peer N must hold a certificate issued to
    /// `{prefix}-N`; otherwise any member of the cluster will do.
    peer_names: Option<&'static str>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client presenting the identity in `tls` (see
    /// [`crate::tls::client_config`]); without one every call fails to connect.
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>) -> RpcClient {
        RpcClient {
            tls: tls.map(TlsConnector::from),
            conns: Mutex::new(HashMap::new()),
            resolver: Resolver::default(),
            blocked: RwLock::new(BTreeSet::new()),
            peer_names: None,
        }
    }

    /// This client, checking that peer N's certificate was issued to
    /// `{prefix}-N` (e.g. `node-3`): an address that leads to another
    /// member is refused ([`CallError::Refused`]).
    pub fn expecting_names(mut self, prefix: &'static str) -> RpcClient {
        self.peer_names = Some(prefix);
        self
    }

    fn server_name(&self, peer: PeerId) -> Result<ServerName<'static>, String> {
        match self.peer_names {
            None => Ok(crate::tls::member_server_name()),
            Some(prefix) => {
                ServerName::try_from(crate::tls::member_dns_name(&format!("{prefix}-{peer}")))
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Drops all traffic to `peers` from now on (empty set: heal).
    pub fn set_blocked(&self, peers: BTreeSet<PeerId>) {
        *self.blocked.write().unwrap_or_else(PoisonError::into_inner) = peers;
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn is_blocked(&self, peer: PeerId) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&peer)
    }

    async fn connection(&self, peer: PeerId, addr: &str) -> Result<SendRequest<Body>, CallError> {
        let key = (peer, addr.to_owned());
        let cached = self
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
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
            .ok_or_else(|| connect_err("no cluster TLS configured here".into()))?;
        let name = self.server_name(peer).map_err(connect_err)?;
        let connect = async {
            let addrs = self.resolver.resolve(addr).await.map_err(connect_err)?;
            let tcp = tokio::net::TcpStream::connect(&addrs[..])
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            tcp.set_nodelay(true)
                .map_err(|e| connect_err(e.to_string()))?;
            tls.connect(name, tcp)
                .await
                .map_err(|e| CallError::Refused {
                    addr: addr.to_owned(),
                    reason: format!("tls: {e}"),
                })
        };
        let stream = tokio::time::timeout(crate::CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| connect_err(format!("no answer within {:?}", crate::CONNECT_TIMEOUT)))??;
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(crate::STREAM_WINDOW)
            .initial_connection_window_size(crate::CONNECTION_WINDOW)
            .max_frame_size(crate::MAX_FRAME)
            .timer(TokioTimer::new())
            .keep_alive_interval(crate::KEEPALIVE_INTERVAL)
            .keep_alive_timeout(crate::KEEPALIVE_TIMEOUT)
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "rpc connection closed");
            }
        });
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, sender.clone());
        Ok(sender)
    }

    /// Calls `path` on peer `target` at `addr` and decodes its answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: PeerId,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        if self.is_blocked(target) {
            return Err(CallError::Blocked(target));
        }
        match tokio::time::timeout(timeout, self.call_inner(target, addr, path, req)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(addr.to_owned())),
        }
    }

    /// Sends `request` to peer `target` at `addr` (its URI's path and query
    /// matter; scheme and authority are filled in) and returns the answer's
    /// head once it arrives within `timeout`; its body streams on after.
    pub async fn send(
        &self,
        target: PeerId,
        addr: &str,
        request: http::Request<Body>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, CallError> {
        if self.is_blocked(target) {
            return Err(CallError::Blocked(target));
        }
        match tokio::time::timeout(timeout, self.send_inner(target, addr, request)).await {
            Ok(r) => r,
            Err(_) => Err(CallError::Timeout(addr.to_owned())),
        }
    }

    async fn send_inner(
        &self,
        peer: PeerId,
        addr: &str,
        mut request: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, CallError> {
        let failed = |reason: String| CallError::Failed {
            addr: addr.to_owned(),
            reason,
        };
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        *request.uri_mut() = format!("https://{addr}{path}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| failed(e.to_string()))?;
        crate::trace::inject(request.headers_mut());
        let mut sender = self.connection(peer, addr).await?;
        sender.send_request(request).await.map_err(|e| {
            self.conns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&(peer, addr.to_owned()));
            failed(e.to_string())
        })
    }

    async fn call_inner<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        peer: PeerId,
        addr: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, CallError> {
        let failed = |reason: String| CallError::Failed {
            addr: addr.to_owned(),
            reason,
        };
        let body = encode(req).map_err(|e| failed(e.to_string()))?;
        let request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/x-postcard")
            .body(full(body))
            .map_err(|e| failed(e.to_string()))?;
        let response = self.send_inner(peer, addr, request).await?;
        let status = response.status();
        let bytes = http_body_util::Limited::new(response.into_body(), crate::MAX_MESSAGE)
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
