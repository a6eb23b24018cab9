//! Tessera metadata plane: an openraft cluster over redb that holds every
//! bucket, object version, multipart upload, storage node, access key and
//! queued background job.
//!
//! The crate knows nothing of S3 wire types or of shard bytes: the gateway
//! translates S3 requests into [`command::Command`]s and reads the
//! [`model`] back.

pub mod command;
pub mod model;
pub mod error;

pub use error::MetaError;
