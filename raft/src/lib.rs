//! Tessera metadata plane: an openraft cluster over redb that holds every
//! bucket, object version, multipart upload, storage node, access key and
//! queued background job.
//!
//! The crate knows nothing of S3 wire types or of shard bytes: the gateway
//! translates S3 requests into [`command::Command`]s and reads the
//! [`model`] back.

pub mod access;
pub mod apply;
pub mod command;
pub mod error;
pub mod lifecycle;
pub mod listing;
pub mod lock;
pub mod log_store;
pub mod membership;
pub mod model;
mod network;
pub mod node;
pub mod read;
mod rename;
pub mod snapshot_data;
pub mod state_machine;
pub mod tables;
pub mod types;
pub mod upgrade;
mod witness;

pub use error::MetaError;
pub use listing::{
    ListObjectsQuery, ListUploadsQuery, ListVersionsQuery, ObjectsPage, PartsPage, UploadsPage,
    VersionsPage,
};
pub use node::{MetaConfig, MetaNode, MetaStatus, RaftTiming};
pub use read::{QueueLengths, ReadView, SegmentRecord};
pub use tessera_net::{ClusterCa, ClusterTls};
