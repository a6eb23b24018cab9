//! The metadata model: what the cluster knows about buckets, object versions,
//! multipart uploads, storage nodes, access keys and background work.
//!
//! Every type here is plain data (serde), independent of S3 wire types and of
//! shard bytes. The gateway translates between S3 DTOs and these types; the
//! state machine stores them in redb.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, assigned by the proposer of a command
/// (the state machine never reads a clock, so every member applies the same value).
pub type Millis = i64;

/// The version id S3 shows for the null version.
pub const NULL_VERSION_ID: &str = "null";

/// Versioning state of a bucket, as S3 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Versioning {
    /// Versioning was never enabled: every write replaces the null version.
    #[default]
    Unversioned,
    /// Every write creates a new version with a fresh version id.
    Enabled,
    /// Writes replace the null version; older versions are kept.
    Suspended,
}

/// A bucket and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Bucket name (already validated by the gateway).
    pub name: String,
    /// Access key id of the owner (the key that created it).
    pub owner: String,
    /// Creation time.
    pub created: Millis,
    /// Versioning state.
    pub versioning: Versioning,
    /// Bucket tags (`PutBucketTagging`), `None` when never set or deleted.
    pub tags: Option<Vec<Tag>>,
    /// CORS configuration as an opaque blob the gateway encodes.
    pub cors: Option<Vec<u8>>,
    /// Further settings of later features (lifecycle, policy, storage policy …),
    /// keyed by name, each an opaque blob the gateway encodes.
    pub settings: BTreeMap<String, Vec<u8>>,
}

/// One `key=value` tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

/// A checksum the client asked for or sent (`x-amz-checksum-*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// Algorithm name as S3 spells it: `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`.
    pub algorithm: String,
    /// Base64 of the digest, as S3 returns it (`...-N` suffix for composite ones).
    pub value: String,
}

/// How the checksum of a multipart object derives from its parts' checksums
/// (`x-amz-checksum-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumType {
    /// A checksum of the part checksums, shown with a `-N` suffix (N parts).
    Composite,
    /// The checksum of the whole object (CRC algorithms only).
    FullObject,
}

/// HTTP system metadata of an object, returned as response headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SystemMetadata {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires`, kept as the string the client sent.
    pub expires: Option<String>,
    /// `x-amz-website-redirect-location`.
    pub website_redirect: Option<String>,
    /// `x-amz-storage-class` as sent (Tessera has one class; it is echoed).
    pub storage_class: Option<String>,
}

/// Where the erasure-coded shards of one data segment live.
///
/// A segment is one run of `ObjectWriter` output: a whole single-PUT body or
/// one multipart part. Its shards are `(object_id, part, index)` for `index` in
/// `0..data_shards + parity_shards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Storage object id (16 random bytes) naming the shard files.
    pub object_id: [u8; 16],
    /// Part number inside the storage object id.
    pub part: u32,
    /// Plain-text size in bytes.
    pub size: u64,
    /// Number of data shards (k).
    pub data_shards: u16,
    /// Number of parity shards (m).
    pub parity_shards: u16,
    /// Shard block size in bytes.
    pub block_size: u32,
    /// Store (or node) id holding shard `i`, for every shard index.
    pub placement: Vec<String>,
    /// Shard indexes known to be missing or bad, waiting for repair.
    pub missing: Vec<u16>,
}

impl Segment {
    /// The copies of a segment kept as a copy per site (two or more copies
    /// of `k + m` positions) that their site does not hold: each lacking
    /// more than `m` of its shards, so it cannot be read on its own. Empty
    /// for a segment kept as one copy.
    pub fn absent_copies(&self) -> Vec<u16> {
        let width = usize::from(self.data_shards) + usize::from(self.parity_shards);
        if width == 0 || self.placement.len() < 2 * width {
            return Vec::new();
        }
        let copies = self.placement.len() / width;
        (0..copies)
            .filter(|&c| {
                let positions = c * width..(c + 1) * width;
                let lacking = self
                    .missing
                    .iter()
                    .filter(|&&p| positions.contains(&usize::from(p)))
                    .count();
                lacking > usize::from(self.parity_shards)
            })
            .filter_map(|c| u16::try_from(c).ok())
            .collect()
    }

    /// Shards of one copy of the segment's stripe (`k + m`).
    pub fn copy_width(&self) -> u16 {
        self.data_shards.saturating_add(self.parity_shards)
    }

    /// The positions of copy `copy` (see [`Segment::absent_copies`]).
    pub fn copy_positions(&self, copy: u16) -> std::ops::Range<u16> {
        copy_range(copy, self.copy_width())
    }
}

/// The positions of copy `copy` of a segment whose copies have `width`
/// shards each: `copy·width ..`.
fn copy_range(copy: u16, width: u16) -> std::ops::Range<u16> {
    let start = copy.saturating_mul(width);
    start..start.saturating_add(width)
}

/// One part of an object's data (a single PUT has exactly one, numbered 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartData {
    /// Part number (1-based).
    pub number: u32,
    /// Size in bytes.
    pub size: u64,
    /// Hex MD5 of the part (no quotes).
    pub etag: String,
    /// Checksums of the part.
    pub checksums: Vec<Checksum>,
    /// Where its bytes live.
    pub segment: Segment,
    /// When it was uploaded.
    pub uploaded: Millis,
}

/// The bytes of an object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectData {
    /// Small object, sealed by the gateway and kept in metadata.
    Inline(#[serde(with = "byte_buf")] Vec<u8>),
    /// Erasure-coded parts on storage nodes.
    Parts(Vec<PartData>),
    /// No data: a delete marker.
    DeleteMarker,
}

/// One version of one object (or a delete marker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Version id; [`NULL_VERSION_ID`] for the null version.
    pub version_id: String,
    /// Last-Modified.
    pub last_modified: Millis,
    /// Size in bytes (0 for delete markers).
    pub size: u64,
    /// ETag without quotes: hex MD5, or `hex-N` for multipart objects.
    pub etag: String,
    /// Whole-object checksums.
    pub checksums: Vec<Checksum>,
    /// HTTP system metadata.
    pub system: SystemMetadata,
    /// User metadata (`x-amz-meta-*`, names lower-case without the prefix).
    pub user: BTreeMap<String, String>,
    /// Object tags.
    pub tags: Vec<Tag>,
    /// Access key id that wrote it.
    pub owner: String,
    /// Per-object data key wrapped by the cluster master key (empty for markers).
    #[serde(with = "byte_buf")]
    pub wrapped_key: Vec<u8>,
    /// The data.
    pub data: ObjectData,
}

impl ObjectVersion {
    /// Whether this version is a delete marker.
    pub fn is_delete_marker(&self) -> bool {
        matches!(self.data, ObjectData::DeleteMarker)
    }

    /// The segment `(object_id, part)` of this version's bytes, if it has it.
    pub fn segment_mut(&mut self, object_id: &[u8; 16], part: u32) -> Option<&mut Segment> {
        match &mut self.data {
            ObjectData::Parts(parts) => parts
                .iter_mut()
                .map(|p| &mut p.segment)
                .find(|s| s.object_id == *object_id && s.part == part),
            ObjectData::Inline(_) | ObjectData::DeleteMarker => None,
        }
    }

    /// The segments holding this version's bytes (empty for inline data and markers).
    pub fn segments(&self) -> Vec<Segment> {
        match &self.data {
            ObjectData::Parts(parts) => parts.iter().map(|p| p.segment.clone()).collect(),
            ObjectData::Inline(_) | ObjectData::DeleteMarker => Vec::new(),
        }
    }
}

/// What a listing shows of a key's latest version: the value of the `live`
/// table. Kept apart from [`ObjectVersion`] so that a small PUT writes its
/// inline data once, not twice, and a listing decodes no data, wrapped key,
/// metadata or placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedObject {
    /// Object key.
    pub key: String,
    /// Last-Modified.
    pub last_modified: Millis,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// Whole-object checksums (listings show their algorithms).
    pub checksums: Vec<Checksum>,
    /// Access key id that wrote it.
    pub owner: String,
    /// Storage class, when one was given.
    pub storage_class: Option<String>,
}

impl From<&ObjectVersion> for ListedObject {
    fn from(v: &ObjectVersion) -> Self {
        ListedObject {
            key: v.key.clone(),
            last_modified: v.last_modified,
            size: v.size,
            etag: v.etag.clone(),
            checksums: v.checksums.clone(),
            owner: v.owner.clone(),
            storage_class: v.system.storage_class.clone(),
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartUpload {
    /// Bucket name.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Upload id (opaque, generated by the gateway).
    pub upload_id: String,
    /// When the upload was created.
    pub initiated: Millis,
    /// Everything of the final object version that is known at creation:
    /// metadata, tags, owner, wrapped data key. `data`, `size`, `etag`,
    /// `version_id` and `last_modified` are filled in on completion.
    pub template: ObjectVersion,
    /// Checksum algorithm requested at creation (`x-amz-checksum-algorithm`).
    pub checksum_algorithm: Option<String>,
    /// How the object checksum is derived from the part checksums; set
    /// exactly when `checksum_algorithm` is.
    pub checksum_type: Option<ChecksumType>,
}

/// State of a storage node as the cluster sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeState {
    /// Healthy, takes writes.
    Up,
    /// Missed probes; reads avoid it, writes skip it.
    Suspect,
    /// Down past the grace period: its shards are being repaired elsewhere.
    Down,
    /// Being emptied by the operator: no new writes.
    Draining,
}

/// A store's state record as the first storage-node release kept it (one
/// per store, written by drain). Superseded by [`NodeRecord`]; still read
/// so that stores drained then stay drained, and still decoded so that
/// logs and snapshots holding such records replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageNode {
    /// Stable id (the store id used in [`Segment::placement`]).
    pub id: String,
    /// Site (datacenter) name.
    pub site: String,
    /// Failure zone inside the site.
    pub zone: String,
    /// Address: a URL for a remote node, a path for a local disk.
    pub address: String,
    /// Capacity in bytes.
    pub capacity: u64,
    /// Current state.
    pub state: NodeState,
    /// Last state change.
    pub since: Millis,
}

/// A storage node as the cluster knows it: where it is, the stores it
/// serves, and its health as the gateways' probes see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node's number (its certificate is issued to `node-<id>`).
    pub id: u64,
    /// `host:port` of its node listener.
    pub address: String,
    /// Site (datacenter), if the cluster names sites.
    pub site: Option<String>,
    /// Failure zone inside the site; `None`: the node is its own zone.
    pub zone: Option<String>,
    /// Ids of the stores (disks) it serves, ascending.
    pub stores: Vec<String>,
    /// Capacity of its stores in bytes, as last reported.
    pub capacity: u64,
    /// Bytes used on its stores, as last reported.
    pub used: u64,
    /// Current state.
    pub state: NodeState,
    /// When the state last changed.
    pub since: Millis,
    /// When a probe last reached it (0: never).
    pub heartbeat: Millis,
}

/// What one probe round found of a node ([`Command::ReportNodes`](crate::command::Command::ReportNodes)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node's number.
    pub id: u64,
    /// Whether the probe reached it (its heartbeat becomes the report's time).
    pub reached: bool,
    /// The state the prober judges it in: up, suspect or down (a report
    /// never starts or ends a drain).
    pub state: NodeState,
    /// Capacity of its stores in bytes (kept as it was when not reached).
    pub capacity: u64,
    /// Bytes used on its stores (kept as it was when not reached).
    pub used: u64,
}

/// An S3 access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// Access key id (`TK…`).
    pub id: String,
    /// Secret key sealed by the cluster master key.
    pub sealed_secret: Vec<u8>,
    /// Human name.
    pub name: String,
    /// Creation time.
    pub created: Millis,
    /// Whether the key may create buckets (it then owns them).
    pub allow_create_bucket: bool,
    /// Administrator keys may access every bucket.
    pub admin: bool,
}

/// An object lock retention mode, as S3 defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    /// Keys allowed to bypass governance may shorten or remove the
    /// retention and delete the version; nobody else may.
    Governance,
    /// Nobody may shorten or remove the retention, change its mode, or
    /// delete the version before it ends.
    Compliance,
}

/// The retention of one object version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The mode.
    pub mode: RetentionMode,
    /// Until when the version is protected (exclusive).
    pub retain_until: Millis,
}

/// The object lock state of one version (the `object_locks` table), or
/// the lock a write asks for (retention `None`: the bucket's default
/// retention applies; legal hold `None`: never set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ObjectLock {
    /// The retention, if any.
    pub retention: Option<Retention>,
    /// The legal hold: `Some(true)` while on, `None` when never set.
    pub legal_hold: Option<bool>,
}

/// The period of a bucket's default retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionPeriod {
    /// A number of days (of 24 hours).
    Days(u32),
    /// A number of years (of 365 days).
    Years(u32),
}

/// The retention every new version of a bucket gets unless its write names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// The mode.
    pub mode: RetentionMode,
    /// The period, counted from the version's Last-Modified.
    pub period: RetentionPeriod,
}

/// A bucket's object lock configuration: present once object lock is
/// enabled (it never goes away), kept in [`Bucket::settings`] under
/// [`OBJECT_LOCK_SETTING`](crate::lock::OBJECT_LOCK_SETTING).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ObjectLockConfig {
    /// The default retention, if any.
    pub default_retention: Option<DefaultRetention>,
}

/// Per-key, per-bucket permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Grant {
    /// May read objects and list.
    pub read: bool,
    /// May write and delete objects.
    pub write: bool,
    /// Owns the bucket: may change its settings and delete it.
    pub owner: bool,
}

/// A unit of background work, queued atomically with the change that caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkItem {
    /// Delete these segments' shards (a version was overwritten or deleted,
    /// an upload aborted, a part replaced).
    DeleteSegments {
        /// The segments to remove from their stores.
        segments: Vec<Segment>,
    },
    /// Check and rebuild shards of one segment: merged into the repair
    /// queue's item of the segment, which the segment index ties to its
    /// version or upload (the names here only describe the report).
    Repair {
        /// Bucket of the version, as the reporter saw it.
        bucket: String,
        /// Key of the version, as the reporter saw it.
        key: String,
        /// Version id, as the reporter saw it.
        version_id: String,
        /// Storage object id of the segment.
        object_id: [u8; 16],
        /// Part of the segment.
        part: u32,
        /// Shard indexes to rebuild.
        shards: Vec<u16>,
    },
}

/// What references a stored segment: the value of the `segments` index,
/// which lets GC, repair and the orphan sweep go from shard files back to
/// the metadata that needs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegmentOwner {
    /// A committed object version.
    Version {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Version id.
        version_id: String,
    },
    /// A part of a multipart upload in progress.
    Upload {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Upload id.
        upload_id: String,
        /// Part number.
        number: u32,
    },
}

/// Shards of one segment waiting to be rebuilt: the value of the `repairs`
/// queue, keyed by segment, so reports of the same shard merge into one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairItem {
    /// Storage object id of the segment.
    pub object_id: [u8; 16],
    /// Part of the segment.
    pub part: u32,
    /// Shard indexes to check and rebuild, ascending, without duplicates.
    pub shards: Vec<u16>,
}

/// A copy of a segment that its site does not hold yet (a segment kept as
/// a copy per site, written with this copy deferred or while its site was
/// down): the value of the `site_copies` queue, keyed by segment and copy.
/// Until the site replicator writes it, the object has only its other
/// sites' copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCopy {
    /// Storage object id of the segment.
    pub object_id: [u8; 16],
    /// Part of the segment.
    pub part: u32,
    /// Which copy (its shards are at positions `copy·width ..`).
    pub copy: u16,
    /// Shards of one copy (`k + m`).
    pub width: u16,
    /// The site that is to hold it (empty when no node record names one).
    pub site: String,
    /// Plain-text bytes of the segment.
    pub bytes: u64,
    /// When the segment was written, by the writer's clock: what the lag
    /// is measured from and the order the replicator takes a site's
    /// copies in; nothing about the data itself depends on it.
    pub queued: Millis,
}

impl PendingCopy {
    /// The segment positions of this copy's shards.
    pub fn positions(&self) -> std::ops::Range<u16> {
        copy_range(self.copy, self.width)
    }
}

/// What one site still lacks: the value of the `site_copy_totals` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SiteCopyTotals {
    /// Segment copies waiting.
    pub segments: u64,
    /// Their shards.
    pub shards: u64,
    /// Their plain-text bytes.
    pub bytes: u64,
}

/// Serde for byte vectors as one byte string rather than a sequence of
/// single bytes: the same postcard (and JSON) encoding as a plain `Vec<u8>`,
/// but copied in one piece instead of byte by byte (the inline data of
/// every small object goes through it).
mod byte_buf {
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::ser::Serializer;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(ByteBuf)
    }

    struct ByteBuf;

    impl<'de> Visitor<'de> for ByteBuf {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }

    #[cfg(test)]
    mod tests {
        use serde::{Deserialize, Serialize};

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Plain(Vec<u8>);

        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Bytes(#[serde(with = "super")] Vec<u8>);

        #[test]
        fn the_encoding_is_that_of_a_plain_byte_vector() {
            for len in [0usize, 1, 127, 128, 4096, 70_000] {
                let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
                let plain = postcard::to_allocvec(&Plain(data.clone())).unwrap();
                let bytes = postcard::to_allocvec(&Bytes(data.clone())).unwrap();
                assert_eq!(plain, bytes, "postcard, {len} bytes");
                let back: Bytes = postcard::from_bytes(&plain).unwrap();
                assert_eq!(back.0, data);
                let json = serde_json::to_string(&Plain(data.clone())).unwrap();
                assert_eq!(serde_json::to_string(&Bytes(data.clone())).unwrap(), json);
                let back: Bytes = serde_json::from_str(&json).unwrap();
                assert_eq!(back.0, data);
            }
        }
    }
}
