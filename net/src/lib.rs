//! Tessera's cluster network: how the machines of one cluster find each
//! other trustworthy and talk.
//!
//! - [`tls`]: a private cluster CA, the certificates it issues to metadata
//!   members and storage nodes, and the rustls configurations of mutual TLS
//!   (each side only talks to holders of a certificate from the CA).
//! - [`client`]: calls to other machines, HTTP/2 over mutual TLS, one
//!   multiplexed connection per address: whole postcard messages
//!   ([`wire`]) or bodies streamed both ways ([`body`]).
//! - [`server`]: the matching server, handing each request to an
//!   [`HttpService`] (or its whole body to a [`Service`]).
//! - [`trace`]: the trace context a call carries (W3C `traceparent`), so
//!   spans on both sides of it belong to one trace.
//!
//! The crate knows nothing of raft or of shards: `tessera-raft` runs its
//! member-to-member RPCs over it, and storage nodes serve shards over it.

pub mod body;
pub mod client;
pub mod error;
mod resolve;
pub mod server;
pub mod tls;
pub mod trace;
pub mod wire;

/// HTTP/2 flow-control window of one stream: a shard block (1 MiB) and
/// more in flight, so a stream never waits for window updates mid-block.
const STREAM_WINDOW: u32 = 4 << 20;
/// HTTP/2 flow-control window of a connection: several streams (the
/// shards of stripes in flight) at full speed.
const CONNECTION_WINDOW: u32 = 16 << 20;
/// Largest whole message a unary call reads, request or answer (a snapshot
/// chunk, a batch of entries).
pub const MAX_MESSAGE: usize = 64 << 20;
/// Largest HTTP/2 frame: large frames for shard bytes, but under the
/// server's 1 MiB malloc mmap threshold (see `tune_malloc` in the server's
/// `main.rs`): the receiving side's read buffer is allocated afresh for
/// every frame, and at 1 MiB each of those was a new mapping whose pages
/// the kernel zeroed (a third of a gateway's CPU reading from nodes).
const MAX_FRAME: u32 = 256 << 10;
/// Longest a new connection may take (TCP connect and TLS handshake): an
/// address that has gone silent (a site cut off) fails instead of hanging.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// How often a connection is pinged when nothing arrives on it, and how
/// long a ping may go unanswered before the connection is taken as dead
/// and every call on it fails: a peer that went silent mid-call (its site
/// cut off, its machine frozen) costs at most both, not forever.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// See [`KEEPALIVE_INTERVAL`].
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub use body::Body;
pub use client::{CallError, PeerId, RpcClient};
pub use error::NetError;
pub use server::{ClientCheck, HttpService, RpcServer, Service, Unary};
pub use tls::{CLUSTER_CA_NAME, ClusterCa, ClusterTls, MEMBER_SERVER_NAME};
