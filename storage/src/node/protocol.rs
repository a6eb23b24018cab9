//! The storage node protocol: one HTTP/2 request per store operation.
//!
//! ```text
//! GET  /v1/stores                              -> postcard Vec<String>: the node's store ids
//! PUT  /v1/shards/{store}/{object}/{part}/{i}  body: the shard file, streamed, then a
//!                                                trailer x-tessera-shard-length; -> postcard u64
//! GET  /v1/shards/{store}/{object}/{part}/{i}?start=S&end=E  -> the bytes, streamed
//! POST /v1/stat    ShardRequest -> Option<ShardStat>
//! POST /v1/delete  ShardRequest -> bool
//! POST /v1/list    ListRequest  -> Vec<ShardId>
//! POST /v1/health  StoreRequest -> StoreHealth
//! POST /v1/scrub/findings  StoreRequest -> Vec<ScrubFinding>
//! POST /v1/scrub/ack       AckRequest   -> u64: findings removed
//! POST /v1/scrub/start     ()           -> (): a pass of the node's scrub starts now
//! POST /v1/verify  ShardRequest -> VerifyAnswer: the shard checked where it is
//! ```
//!
//! The scrub calls are how a gateway learns what the node's own scrub (see
//! [`super::ScrubFindings`]) found: it reads the findings of a store,
//! queues repair for them, and only then acknowledges them, so a finding
//! outlives a crash of either side in between.
//!
//! A shard body that ends without its length trailer, or whose trailer
//! disagrees with the bytes that came, was cut short: the node keeps
//! nothing of it. Failures are answered with a status and a text reason:
//! 404 for a shard (or store) that is not there, 400 for a request the node
//! cannot parse, 500 for the node's own failures.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::store::ShardId;

/// The node's store ids.
pub const STORES: &str = "/v1/stores";
/// Prefix of a shard's path: `/v1/shards/{store}/{object}/{part}/{index}`.
pub const SHARDS: &str = "/v1/shards/";
/// A shard's size and age.
pub const STAT: &str = "/v1/stat";
/// Removes a shard.
pub const DELETE: &str = "/v1/delete";
/// A page of a store's shard ids.
pub const LIST: &str = "/v1/list";
/// A store's capacity and state.
pub const HEALTH: &str = "/v1/health";
/// The shards a store's scrub found bad, not yet acknowledged.
pub const SCRUB_FINDINGS: &str = "/v1/scrub/findings";
/// Acknowledges a store's findings up to a sequence number.
pub const SCRUB_ACK: &str = "/v1/scrub/ack";
/// Starts a scrub pass of the node now.
pub const SCRUB_START: &str = "/v1/scrub/start";
/// Checks one shard on the node (as its scrub does) instead of reading it back.
pub const VERIFY: &str = "/v1/verify";
/// Trailer of a shard upload: how many bytes were sent.
pub const LENGTH_TRAILER: &str = "x-tessera-shard-length";
/// Most shard ids one list answer holds.
pub const MAX_LIST: usize = 10_000;

/// Names one store of the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreRequest {
    /// The store's id.
    pub store: String,
}

/// Names one shard of one store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRequest {
    /// The store's id.
    pub store: String,
    /// The shard.
    pub shard: ShardId,
}

/// Asks for a page of a store's shard ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListRequest {
    /// The store's id.
    pub store: String,
    /// Only ids greater than this one.
    pub after: Option<ShardId>,
    /// At most this many (capped at [`MAX_LIST`]).
    pub limit: usize,
}

/// Acknowledges the findings of one store up to and including `through`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AckRequest {
    /// The store's id.
    pub store: String,
    /// The highest sequence number the gateway has queued for repair.
    pub through: u64,
}

/// What a node found checking one of its shards (header, trailer, length
/// and every block's xxh3; no key needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyAnswer {
    /// Intact: its header and trailer as stored.
    Intact {
        /// The encoded header.
        header: Vec<u8>,
        /// The encoded trailer.
        trailer: Vec<u8>,
    },
    /// The store has no such shard.
    Missing,
    /// Damaged: what the check found.
    Corrupt(String),
}

/// A shard the node's scrub found bad (unreadable, truncated, a block
/// whose xxh3 does not match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubFinding {
    /// Sequence number, increasing over the node's findings.
    pub seq: u64,
    /// The store holding the shard.
    pub store: String,
    /// The shard.
    pub shard: ShardId,
    /// What the check found.
    pub reason: String,
}

/// Whether `id` can name a store in a path: letters, digits, `-`, `_`, `.`.
pub fn valid_store_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The path of a shard's upload or download.
pub fn shard_path(store: &str, shard: ShardId) -> String {
    format!("{SHARDS}{store}/{shard}")
}

/// The store and shard a shard path names, `None` when it names none.
pub fn parse_shard_path(path: &str) -> Option<(&str, ShardId)> {
    let rest = path.strip_prefix(SHARDS)?;
    let (store, shard) = rest.split_once('/')?;
    if !valid_store_id(store) {
        return None;
    }
    Some((store, shard.parse().ok()?))
}

/// The query of a ranged download.
pub fn range_query(range: &Range<u64>) -> String {
    format!("start={}&end={}", range.start, range.end)
}

/// The byte range a download's query asks for, `None` when malformed.
pub fn parse_range_query(query: Option<&str>) -> Option<Range<u64>> {
    let (mut start, mut end) = (None, None);
    for pair in query?.split('&') {
        match pair.split_once('=')? {
            ("start", v) => start = Some(v.parse().ok()?),
            ("end", v) => end = Some(v.parse().ok()?),
            _ => return None,
        }
    }
    let range = start?..end?;
    (range.start <= range.end).then_some(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectId;

    #[test]
    fn shard_paths_round_trip_and_refuse_what_they_cannot_name() {
        let shard = ShardId {
            object: ObjectId([7; 16]),
            part: 3,
            index: 5,
        };
        let path = shard_path("st-00ff", shard);
        assert_eq!(parse_shard_path(&path), Some(("st-00ff", shard)));
        for bad in [
            "/v1/shards/st-1",
            "/v1/shards/../07070707070707070707070707070707/3/5",
            "/v1/shards/a b/07070707070707070707070707070707/3/5",
            "/v1/shards/st-1/0707/3/5",
            "/v1/shards/st-1/07070707070707070707070707070707/3/70000",
            "/v1/shards/st-1/07070707070707070707070707070707/3/5/9",
            "/v1/other/st-1/07070707070707070707070707070707/3/5",
        ] {
            assert_eq!(parse_shard_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn range_queries_round_trip_and_refuse_malformed_ones() {
        assert_eq!(parse_range_query(Some(&range_query(&(5..90)))), Some(5..90));
        for bad in [
            None,
            Some(""),
            Some("start=9&end=3"),
            Some("start=1"),
            Some("start=x&end=2"),
            Some("start=1&end=2&x=3"),
        ] {
            assert_eq!(parse_range_query(bad), None, "{bad:?}");
        }
    }
}
