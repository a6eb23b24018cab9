//! The storage node: a process serving its disks' shards to gateways over
//! the cluster network (HTTP/2, mutual TLS, see `tessera-net`).
//!
//! [`protocol`] is what crosses the wire, [`NodeService`] the node's side
//! of it over any [`crate::ShardStore`]s, [`crate::Remote`] the gateway's.
//! [`NodeScrub`] holds what the node's own scrub found until a gateway
//! has queued it for repair.

pub mod protocol;
mod scrub;
mod service;

pub use scrub::NodeScrub;
pub use service::NodeService;
