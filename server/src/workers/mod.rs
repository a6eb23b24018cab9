//! Background workers the server runs next to the S3 listener. Each stops
//! when the server's stop token is cancelled.
//!
//! - [`job`]: what the queue-driven jobs share: their loop, backoff, progress, rate limit;
//! - [`gc`]: removes the shards of overwritten and deleted data, from the deletion queue;
//! - [`repair`]: rebuilds missing and corrupt shards, from the repair queue;
//! - [`rebuild`]: puts one segment's shards back where they belong (repair and replication);
//! - [`replicate`]: writes the copies sites lack, from the `site_copies` queue;
//! - [`lifecycle`]: carries out the buckets' lifecycle rules, daily and on demand;
//! - [`scrub`]: verifies every referenced shard on a schedule, findings to repair;
//! - [`node_scrub`]: a storage node's scrub of its own disks, findings kept for the gateways;
//! - [`pass_state`]: where a scheduled pass stands, saved between steps;
//! - [`sweep`]: removes shard files nothing references (orphans of failed writes);
//! - [`buffers`]: frees the memory budgets' stripe buffers once the load is over;
//! - [`health`]: probes the shard stores and publishes store and raft state.

pub mod buffers;
pub mod evacuate;
pub mod gc;
pub mod health;
pub mod job;
pub mod lifecycle;
pub mod node_scrub;
pub mod pass_state;
pub mod rebuild;
pub mod repair;
pub mod replicate;
pub mod scrub;
pub mod sweep;
