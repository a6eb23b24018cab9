//! Commands: every change to the metadata is one of these, proposed through
//! raft and applied by the state machine inside one redb write transaction.
//!
//! Preconditions travel with the command and are checked inside `apply`, so a
//! conditional write is linearizable: of two racing `If-None-Match: *` puts,
//! exactly one wins, on every member.

use serde::{Deserialize, Serialize};

use crate::access::{Acl, ObjectOwnership, PublicAccessBlock};
use crate::lifecycle::{LifecycleAction, LifecycleConfig};
use crate::model::{
    AccessKey, Bucket, Checksum, Grant, Millis, MultipartUpload, NodeRecord, NodeReport, NodeState,
    ObjectLock, ObjectLockConfig, ObjectVersion, PartData, Retention, StorageNode, Tag, Versioning,
    WorkItem,
};

/// A condition on the current (latest) version of a key, checked at apply time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// `If-None-Match: *`: the key must have no current version (a delete
    /// marker as the latest version counts as absent).
    IfNoneMatchAny,
    /// `If-Match: etag`: the current version must exist and have this ETag
    /// (without quotes). `*` matches any existing object. A different ETag is
    /// [`ApplyError::PreconditionFailed`]; no current version (absent, or a
    /// delete marker) is [`ApplyError::NoSuchKey`], as S3 answers 404 then.
    IfMatch(String),
}

/// A change to a bucket's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BucketUpdate {
    /// `PutBucketVersioning` (Enabled or Suspended; never back to Unversioned).
    Versioning(Versioning),
    /// `PutBucketTagging` / `DeleteBucketTagging`.
    Tags(Option<Vec<Tag>>),
    /// `PutBucketCors` / `DeleteBucketCors`.
    Cors(Option<Vec<u8>>),
    /// Any other named setting; `None` removes it. The object lock,
    /// policy and public access block settings are not among them: they
    /// change only through their own updates.
    Setting(String, Option<Vec<u8>>),
    /// `PutObjectLockConfiguration`: enables object lock (for good) or
    /// changes its default retention. Needs versioning Enabled
    /// ([`ApplyError::InvalidBucketState`] otherwise).
    ObjectLock(ObjectLockConfig),
    /// `PutBucketPolicy` (`Some`) / `DeleteBucketPolicy` (`None`). A policy
    /// the gateway found `public` is refused with
    /// [`ApplyError::AccessDenied`] while the bucket's public access block
    /// blocks public policies (see [`crate::access`]).
    Policy {
        /// The policy document (JSON), or `None` to delete it.
        document: Option<String>,
        /// Whether the policy grants public access.
        public: bool,
    },
    /// `PutPublicAccessBlock` (`Some`) / `DeletePublicAccessBlock` (`None`).
    PublicAccessBlock(Option<PublicAccessBlock>),
    /// `PutBucketAcl`. While ownership controls disable ACLs, only an ACL
    /// granting nothing beyond the owner is accepted
    /// ([`ApplyError::AclNotSupported`] otherwise).
    Acl(Acl),
    /// `PutBucketOwnershipControls` (`Some`) / `DeleteBucketOwnershipControls`
    /// (`None`). `BucketOwnerEnforced` is refused
    /// ([`ApplyError::AclWithObjectOwnership`]) while the bucket ACL grants
    /// something to others.
    Ownership(Option<ObjectOwnership>),
}

/// One change to the metadata.
///
/// Commands live in the raft log and in snapshots' history, encoded with
/// postcard, which numbers variants by position: new variants go at the
/// end, none is ever removed or reordered, and a variant's fields never
/// change, so every command ever logged still decodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a bucket; fails with [`ApplyError::BucketExists`] if the name is taken.
    /// The owner key gets an owner grant on it in the same transaction.
    CreateBucket {
        /// The new bucket.
        bucket: Bucket,
    },
    /// Delete a bucket without versions or markers; its uploads in progress
    /// go with it, their parts' data queued for deletion.
    DeleteBucket {
        /// Bucket name.
        name: String,
    },
    /// Change a bucket setting.
    UpdateBucket {
        /// Bucket name.
        name: String,
        /// The change.
        update: BucketUpdate,
    },
    /// Write an object version. The state machine decides, from the bucket's
    /// versioning state, whether it becomes a new version or replaces the null
    /// version: with versioning Enabled `version.version_id` is kept as given;
    /// otherwise it is stored as the null version. Replaced data is queued
    /// for deletion.
    PutObject {
        /// The version to store.
        version: ObjectVersion,
        /// Optional condition on the current version.
        precondition: Option<Precondition>,
    },
    /// `DeleteObject`, with S3 semantics: with `version_id` the version is
    /// removed for good; without it, a delete marker is added (versioning
    /// Enabled: with `marker_version_id`; Suspended: as the null version) or,
    /// in an unversioned bucket, the null version is removed. Deleting a
    /// version id or key that does not exist succeeds and changes nothing, as in S3.
    DeleteObject {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Delete exactly this version.
        version_id: Option<String>,
        /// Version id to give a new delete marker (versioning Enabled).
        marker_version_id: String,
        /// Time of the delete (the marker's Last-Modified).
        now: Millis,
        /// Access key id doing the delete (the marker's owner).
        owner: String,
        /// Optional condition (`If-Match` on DeleteObject).
        precondition: Option<Precondition>,
    },
    /// Replace an object version's tags (`None` version: the latest).
    SetObjectTags {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Version id, or the latest.
        version_id: Option<String>,
        /// The new tag set (empty to delete).
        tags: Vec<Tag>,
    },
    /// Start a multipart upload.
    CreateMultipartUpload {
        /// The upload.
        upload: MultipartUpload,
    },
    /// Record an uploaded part; a part with the same number is replaced and
    /// its data queued for deletion.
    PutPart {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Upload id.
        upload_id: String,
        /// The part.
        part: PartData,
    },
    /// Complete an upload from the listed parts, in order. Checks: parts
    /// exist with these ETags (InvalidPart), ascending numbers
    /// (InvalidPartOrder), every part but the last at least `min_part_size`
    /// (EntityTooSmall). Unlisted parts are queued for deletion.
    ///
    /// `checksum` is the object checksum the gateway derived from the listed
    /// parts' checksums; it becomes the version's only checksum. A listed
    /// part replaced after the gateway read it has a different ETag (and is
    /// refused as InvalidPart) unless its bytes, and so its checksum, are the same.
    CompleteMultipartUpload {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Upload id.
        upload_id: String,
        /// `(part number, etag without quotes)` as the client listed them.
        parts: Vec<(u32, String)>,
        /// Version id for the new version (used when versioning is Enabled).
        version_id: String,
        /// Completion time (Last-Modified).
        now: Millis,
        /// Smallest allowed size of every part but the last.
        min_part_size: u64,
        /// Optional condition on the current version.
        precondition: Option<Precondition>,
        /// Whole-object checksum of the completed object, if the upload has one.
        checksum: Option<Checksum>,
    },
    /// Abort an upload; its parts are queued for deletion.
    AbortMultipartUpload {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Upload id.
        upload_id: String,
    },
    /// Create or replace an access key.
    PutAccessKey {
        /// The key.
        key: AccessKey,
    },
    /// Delete an access key and its grants.
    DeleteAccessKey {
        /// Access key id.
        id: String,
    },
    /// Set (or, with all flags false, remove) a key's grant on a bucket.
    SetGrant {
        /// Access key id.
        key_id: String,
        /// Bucket name.
        bucket: String,
        /// The permissions.
        grant: Grant,
    },
    /// Put a per-store state record (the first storage-node release's
    /// drain; superseded by [`Command::RegisterNode`] and kept so old logs replay).
    PutNode {
        /// The node.
        node: StorageNode,
    },
    /// Change a per-store state record (superseded, see [`Command::PutNode`]).
    SetNodeState {
        /// Node id.
        id: String,
        /// New state.
        state: NodeState,
        /// Time of the change.
        now: Millis,
    },
    /// Record that segments' missing shards were rebuilt onto new stores.
    UpdatePlacement {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Version id.
        version_id: String,
        /// Storage object id of the segment.
        object_id: [u8; 16],
        /// Part of the segment.
        part: u32,
        /// `(shard index, new store id)` pairs.
        moved: Vec<(u16, String)>,
    },
    /// Queue background work.
    EnqueueWork {
        /// The work.
        item: WorkItem,
    },
    /// Remove finished deletions from the deletion queue.
    CompleteWork {
        /// Queue ids, as returned when reading the queue.
        ids: Vec<u64>,
    },
    /// A repair pass over one segment is done: `rebuilt` shards were
    /// rebuilt and verified on the named stores (placement follows them),
    /// `sound` shards were found intact where they are. Both leave the
    /// segment's missing list and its repair item; shards reported bad
    /// meanwhile stay queued. A rebuilt index the placement does not have
    /// is refused; a `sound` one (a report naming no real shard) is simply
    /// taken off the queue.
    CompleteRepair {
        /// Storage object id of the segment.
        object_id: [u8; 16],
        /// Part of the segment.
        part: u32,
        /// `(shard index, store id)` of every rebuilt shard.
        rebuilt: Vec<(u16, String)>,
        /// Shard indexes verified intact on their stores.
        sound: Vec<u16>,
    },
    /// Stores change ids: every placement (of stored versions, uploaded
    /// parts and queued deletions) and storage node record naming a store
    /// by an old id names it by the new one. All renames apply at once
    /// (`a → b, b → a` swaps). Idempotent: a name no longer present is
    /// simply not found, so the same command may be proposed again after
    /// a crash. Old ids must be distinct.
    ///
    /// Used once per store written before store ids were minted (`disk-N`).
    RenameStores {
        /// `(old id, new id)` pairs.
        renames: Vec<(String, String)>,
    },
    /// Add a storage node, or update where an existing one is and which
    /// stores it serves (its state, heartbeat and figures stay). A node
    /// registered anew starts in the given state.
    RegisterNode {
        /// The node.
        node: NodeRecord,
    },
    /// What a probe round found of the storage nodes: heartbeats, figures
    /// and state changes. Reports of nodes not (any longer) registered are
    /// ignored; a node being drained stays so.
    ReportNodes {
        /// One report per probed node.
        reports: Vec<NodeReport>,
        /// Time of the round.
        now: Millis,
    },
    /// Start (or end) draining a storage node.
    SetNodeDraining {
        /// The node's number.
        id: u64,
        /// Whether it is to be drained.
        draining: bool,
        /// Time of the change.
        now: Millis,
    },
    /// Forget a storage node (the caller checks that nothing it holds is
    /// still referenced).
    RemoveNode {
        /// The node's number.
        id: u64,
    },
    /// [`Command::PutObject`] with object lock headers: the new version
    /// gets `lock` (its retention, or the bucket's default retention when
    /// it names none, and its legal hold). The bucket must have object
    /// lock enabled (InvalidRequest otherwise).
    PutLockedObject {
        /// The version to store.
        version: ObjectVersion,
        /// Optional condition on the current version.
        precondition: Option<Precondition>,
        /// The lock the write asks for.
        lock: ObjectLock,
    },
    /// [`Command::CreateMultipartUpload`] with object lock headers: the
    /// completed version gets `lock` as [`Command::PutLockedObject`] would.
    CreateLockedMultipartUpload {
        /// The upload.
        upload: MultipartUpload,
        /// The lock the completed version is to get.
        lock: ObjectLock,
    },
    /// `PutObjectRetention`: set (or, with `None`, remove) a version's
    /// retention. While the current retention lasts, it may only be
    /// extended (a governance one may also become compliance); shortening,
    /// removing or weakening a governance retention needs
    /// `bypass_governance`, a compliance one cannot be. Refusals are
    /// [`ApplyError::AccessDenied`].
    SetObjectRetention {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Version id, or the latest.
        version_id: Option<String>,
        /// The new retention.
        retention: Option<Retention>,
        /// The caller may and asked to bypass governance retention.
        bypass_governance: bool,
        /// The proposer's time (see [`crate::lock`] on clocks).
        now: Millis,
    },
    /// `PutObjectLegalHold`: turn a version's legal hold on or off.
    SetObjectLegalHold {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Version id, or the latest.
        version_id: Option<String>,
        /// Whether the hold is on.
        on: bool,
    },
    /// [`Command::DeleteObject`] of one version by a caller who may and
    /// asked to bypass governance retention
    /// (`x-amz-bypass-governance-retention`): a version under governance
    /// retention is removed; compliance retention and legal holds still refuse.
    DeleteObjectBypassingGovernance {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// The version to delete.
        version_id: String,
        /// Time of the delete.
        now: Millis,
        /// Optional condition (`If-Match`).
        precondition: Option<Precondition>,
    },
    /// `PutBucketLifecycleConfiguration` (`Some`) or
    /// `DeleteBucketLifecycle` (`None`): the bucket's lifecycle rules, kept
    /// in its settings (see [`crate::lifecycle`]).
    SetBucketLifecycle {
        /// Bucket name.
        bucket: String,
        /// The new configuration, or none.
        config: Option<LifecycleConfig>,
    },
    /// One change the lifecycle worker decided, made as a client's delete
    /// would make it (its data queued for deletion) but only if the
    /// version is still as the worker saw it ([`ApplyError::PreconditionFailed`]
    /// otherwise); a version object lock protects at `now` is refused
    /// ([`ApplyError::AccessDenied`]).
    ApplyLifecycle {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// The change.
        action: LifecycleAction,
        /// Version id of the delete marker an expiry adds (versioning Enabled).
        marker_version_id: String,
        /// The proposer's real time (the marker's Last-Modified, lock checks).
        now: Millis,
    },
    /// `PutObjectAcl`: replace a version's ACL (a version without one is
    /// its owner's alone). A new version of the same id (the null version
    /// overwritten) starts without. Refused with
    /// [`ApplyError::AclNotSupported`] when ownership controls disable
    /// ACLs and `acl` grants anything to others.
    SetObjectAcl {
        /// Bucket name.
        bucket: String,
        /// Object key.
        key: String,
        /// Version id, or the latest.
        version_id: Option<String>,
        /// The new ACL.
        acl: Acl,
    },
    /// [`Command::PutObject`] (with `lock`: [`Command::PutLockedObject`])
    /// whose write names an ACL (`x-amz-acl`, `x-amz-grant-*`): the new
    /// version gets `acl` in the same transaction. Refused as
    /// [`Command::SetObjectAcl`] is.
    PutObjectWithAcl {
        /// The version to store.
        version: ObjectVersion,
        /// Optional condition on the current version.
        precondition: Option<Precondition>,
        /// The lock the write asks for, if any.
        lock: Option<ObjectLock>,
        /// The version's ACL.
        acl: Acl,
    },
    /// [`Command::CreateMultipartUpload`] (with `lock`:
    /// [`Command::CreateLockedMultipartUpload`]) whose request names an
    /// ACL: the completed version gets `acl`. Refused as
    /// [`Command::SetObjectAcl`] is.
    CreateMultipartUploadWithAcl {
        /// The upload.
        upload: MultipartUpload,
        /// The lock the completed version is to get, if any.
        lock: Option<ObjectLock>,
        /// The completed version's ACL.
        acl: Acl,
    },
}

/// What a successfully applied command returns.
// The stored version is returned by value: responses are built once per
// command and moved, so boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// Nothing to report.
    Done,
    /// An object version was stored (PutObject, CompleteMultipartUpload).
    ObjectStored {
        /// The version as stored (with its final version id).
        version: ObjectVersion,
    },
    /// DeleteObject result, as S3 reports it.
    ObjectDeleted {
        /// The version id removed or created (marker), if any.
        version_id: Option<String>,
        /// Whether a delete marker was created or removed.
        delete_marker: bool,
    },
}

/// Why a command was refused. Refusal is deterministic: every member refuses
/// the same command the same way, and nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    /// The bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// A bucket of this name exists (owned by `owner`).
    #[error("bucket already exists (owner {owner})")]
    BucketExists {
        /// Access key id of the existing bucket's owner.
        owner: String,
    },
    /// The bucket still holds versions or markers.
    #[error("bucket not empty")]
    BucketNotEmpty,
    /// The key (or version) does not exist.
    #[error("no such key")]
    NoSuchKey,
    /// The version id does not exist.
    #[error("no such version")]
    NoSuchVersion,
    /// The upload does not exist.
    #[error("no such upload")]
    NoSuchUpload,
    /// A precondition failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A listed part is missing or its ETag differs.
    #[error("invalid part {0}")]
    InvalidPart(u32),
    /// Listed parts are not in ascending order.
    #[error("invalid part order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum.
    #[error("part {0} too small")]
    EntityTooSmall(u32),
    /// Versioning cannot go back to Unversioned, and similar misuse.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The access key does not exist.
    #[error("no such access key")]
    NoSuchAccessKey,
    /// The storage node does not exist.
    #[error("no such node")]
    NoSuchNode,
    /// Object lock forbids the change (a locked version deleted or
    /// overwritten, a retention shortened).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The bucket's state forbids the change (object lock without
    /// versioning, versioning suspended under object lock).
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(String),
    /// Ownership controls disable ACLs (`BucketOwnerEnforced`) and the ACL
    /// grants something to others.
    #[error("the bucket does not allow ACLs")]
    AclNotSupported,
    /// Ownership controls cannot disable ACLs while the bucket ACL grants
    /// something to others.
    #[error("the bucket ACL grants access to others")]
    AclWithObjectOwnership,
}
