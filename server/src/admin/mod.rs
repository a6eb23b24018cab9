//! The admin listener and its API.
//!
//! The admin listener (default `127.0.0.1:9001`, its own port so no bucket
//! name can collide) serves `/metrics`, `/health/live`, `/health/ready`
//! and a small JSON API under `/admin/v1/` for the `tessera admin` CLI,
//! authenticated by a bearer token kept in `<data-dir>/admin.token`.
//!
//! | method and path | body | answer |
//! | --- | --- | --- |
//! | `GET /admin/v1/status` | | [`Status`] |
//! | `GET /admin/v1/jobs` | | `[`[`JobReport`]`]` |
//! | `GET /admin/v1/repair` | | [`RepairStatus`] |
//! | `GET /admin/v1/lifecycle` | | [`LifecycleStatus`] |
//! | `POST /admin/v1/lifecycle/run` | [`RunRequest`] (optional) | [`LifecycleStatus`]; 409 on a member that does not lead |
//! | `GET /admin/v1/summary` | | [`summary::Summary`]: the cluster's health at a glance |
//! | `GET /admin/v1/keys` | | `[`[`KeyInfo`]`]` |
//! | `POST /admin/v1/keys` | [`KeyCreate`] | [`KeyCreated`] |
//! | `DELETE /admin/v1/keys/{id}` | | `{}` |
//! | `PUT /admin/v1/grants` | [`GrantSet`] | `{}` |
//!
//! Errors are `{"error": "..."}` with a 4xx/5xx status.

pub mod client;
pub(crate) mod console;
pub(crate) mod http;
pub mod screen;
mod storage_policy;
pub mod summary;
pub mod watch;

use serde::{Deserialize, Serialize};

pub use crate::workers::job::JobReport;
pub use crate::workers::lifecycle::{LifecycleStatus, RunRequest};

/// `POST /admin/v1/keys`: create an access key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCreate {
    /// A human name for the key.
    pub name: String,
    /// Whether the key may create buckets (it then owns them).
    #[serde(default = "yes")]
    pub allow_create_bucket: bool,
    /// Whether the key is an administrator key (every bucket, every operation).
    #[serde(default)]
    pub admin: bool,
}

fn yes() -> bool {
    true
}

/// The answer to [`KeyCreate`]: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyCreated {
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
    /// The key's name.
    pub name: String,
}

/// One access key as listed (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Access key id.
    pub access_key: String,
    /// Human name.
    pub name: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created: i64,
    /// Whether the key may create buckets.
    pub allow_create_bucket: bool,
    /// Whether it is an administrator key.
    pub admin: bool,
    /// Its grants, by bucket name.
    pub grants: Vec<GrantSet>,
}

/// `PUT /admin/v1/grants`: set a key's permissions on a bucket (all false removes the grant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSet {
    /// Access key id.
    pub access_key: String,
    /// Bucket name.
    pub bucket: String,
    /// May read and list.
    #[serde(default)]
    pub read: bool,
    /// May write and delete objects.
    #[serde(default)]
    pub write: bool,
    /// Owns the bucket (settings, delete).
    #[serde(default)]
    pub owner: bool,
}

/// `GET /admin/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Whether the server is ready to take writes (as `/health/ready`).
    pub ready: bool,
    /// The metadata member.
    pub raft: RaftStatus,
    /// The shard stores.
    pub stores: Vec<StoreStatus>,
    /// Number of buckets.
    pub buckets: usize,
    /// Number of access keys.
    pub keys: usize,
    /// Background jobs: what waits, what was done, at what rate.
    pub jobs: Vec<JobReport>,
}

/// The metadata member's view of raft.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RaftStatus {
    /// This member's id.
    pub id: u64,
    /// The leader it knows, if any.
    pub leader: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Last applied log index.
    pub last_applied: u64,
    /// Index of the last entry in the log: it moves with every command
    /// proposed, including those the state machine then refuses.
    #[serde(default)]
    pub last_log_index: u64,
}

/// One shard store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreStatus {
    /// Store id, unique in the cluster (for a local directory `st-` and 16
    /// hex digits, minted into its `store.id`).
    pub id: String,
    /// Whether it answered its last health probe.
    pub up: bool,
    /// Whether it has been down past the repair grace (its shards are
    /// being rebuilt elsewhere).
    #[serde(default)]
    pub lost: bool,
    /// Whether the operator is draining it (its shards move elsewhere).
    #[serde(default)]
    pub draining: bool,
    /// The storage node holding it (0: the gateway's own disks).
    #[serde(default)]
    pub node: u64,
    /// Its site, when configured.
    #[serde(default)]
    pub site: Option<String>,
    /// Its zone, when configured.
    #[serde(default)]
    pub zone: Option<String>,
}

/// `GET /admin/v1/repair`: how far repair is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairStatus {
    /// Whether repair is done: nothing queued, and no lost or draining
    /// store holds shards not yet queued. Every shard repair rebuilt was
    /// verified where it landed before it left the queue.
    pub done: bool,
    /// Shards queued to be checked and rebuilt.
    pub pending_shards: u64,
    /// Shards rebuilt and verified (or found intact) since the server started.
    pub done_shards: u64,
    /// Attempts that failed (the shards stay queued and are retried).
    pub failed_attempts: u64,
    /// Bytes of shard files rebuilt since the server started.
    pub bytes_rebuilt: u64,
    /// Bytes rebuilt per second over the last minute or so.
    pub bytes_per_sec: f64,
    /// Shards finished per second over the last minute or so.
    pub shards_per_sec: f64,
    /// Seconds until the queue is empty at that rate (none when idle).
    pub eta_secs: Option<f64>,
    /// Queued segments by how many more shards each can lose, fewest first.
    pub at_risk: Vec<AtRisk>,
    /// Lost or draining stores whose shards are not all queued yet.
    pub outstanding_stores: Vec<String>,
    /// Stores down within the repair grace: their shards are not rebuilt
    /// unless they stay down past it.
    pub waiting_stores: Vec<String>,
}

/// `GET /admin/v1/replication`: how far the site replicator is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationStatus {
    /// Whether every site holds its copy of every object kept as a copy
    /// per site: nothing queued. Every copy the replicator wrote was read
    /// back and verified on its site before it left the queue.
    pub done: bool,
    /// What each site still lacks (sites lacking nothing are left out).
    pub sites: Vec<SiteBacklog>,
    /// Shards of the copies the sites lack.
    pub pending_shards: u64,
    /// Shards written (or found in place) since the server started.
    pub done_shards: u64,
    /// Shards written per second over the last minute or so.
    pub shards_per_sec: f64,
    /// Bytes of shard files written since the server started.
    pub bytes_copied: u64,
    /// Bytes written per second over the last minute or so.
    pub bytes_per_sec: f64,
    /// Seconds until nothing is queued at that rate (none when idle).
    pub eta_secs: Option<f64>,
    /// Objects (oldest first, up to the limit asked for) that a site
    /// lacks: they have only their other sites' copies, and are lost with
    /// those sites.
    pub one_copy: Vec<OneCopyObject>,
}

/// What one site lacks of the objects kept as a copy per site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteBacklog {
    /// The site (empty when no node record names one).
    pub site: String,
    /// Segment copies waiting.
    pub segments: u64,
    /// Their shards.
    pub shards: u64,
    /// Their plain-text bytes.
    pub bytes: u64,
    /// Seconds the oldest has waited (0 when none waits).
    pub lag_secs: f64,
}

/// An object (or a part of an upload in progress) one site lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneCopyObject {
    /// The site that lacks it.
    pub site: String,
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Version id, or `upload <id> part <n>` for a part of an upload.
    pub version: String,
    /// Plain-text bytes of the segment.
    pub bytes: u64,
    /// When it was written (ms since the epoch, the writer's clock).
    pub written_ms: i64,
}

/// Degraded segments that can lose `redundancy_left` more shards and still
/// be read (0: one more loss makes them unreadable; below 0: unreadable
/// until a store comes back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtRisk {
    /// How many more shards each can lose.
    pub redundancy_left: i64,
    /// How many segments.
    pub segments: u64,
}

/// An error answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
}
