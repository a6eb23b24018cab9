//! Background workers the server runs next to the S3 listener. Each stops
//! when the server's stop token is cancelled.
//!
//! - [`buffers`]: frees the memory budgets' stripe buffers once the load is over;
//! - [`gc`]: removes the shards of overwritten and deleted data, from the raft work queue;
//! - [`health`]: probes the shard stores and publishes store and raft state.

pub mod buffers;
pub mod gc;
pub mod health;
