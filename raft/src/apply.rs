//! The deterministic state transition: one [`Command`] applied to the model
//! tables inside a redb write transaction.
//!
//! Every command first checks everything that can make it refuse, and only
//! then writes, so a refusal ([`ApplyError`]) leaves the tables untouched.
//! Nothing here reads a clock or draws a random number: times and ids travel
//! in the command, the order of versions comes from the raft log index.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

mod bucket_access;
mod completed;
mod lifecycle;
mod object_lock;
mod site_copies;

use self::bucket_access::{set_bucket_acl, set_ownership, set_policy, set_public_access_block};

use crate::access;
use crate::command::{ApplyError, BucketUpdate, Command, CommandResponse, Precondition};
use crate::error::MetaError;
use crate::lock;
use crate::model::{
    AccessKey, Bucket, Checksum, Grant, ListedObject, Millis, MultipartUpload, NULL_VERSION_ID,
    NodeRecord, NodeReport, NodeState, ObjectData, ObjectLock, ObjectVersion, PartData, RepairItem,
    Segment, SegmentOwner, StorageNode, SystemMetadata, Tag, Versioning, WorkItem,
};
use crate::rename;
use crate::tables::{self, decode, encode};

/// The result of applying one command: outer error = storage failure (the
/// transaction must be dropped), inner error = deterministic refusal.
pub type ApplyOutcome = Result<Result<CommandResponse, ApplyError>, MetaError>;

/// Apply one command at `log_index` inside `txn`.
///
/// Log indexes must increase from one call to the next: they order the
/// versions of a key. Opens the model tables for this one command; to apply a
/// batch, open an [`Applier`] once and call [`Applier::apply`] for each.
pub fn apply(txn: &WriteTransaction, log_index: u64, cmd: &Command) -> ApplyOutcome {
    Applier::open(txn)?.apply(log_index, cmd)
}

pub(crate) type RawTableMut<'txn> = Table<'txn, &'static [u8], &'static [u8]>;

/// The record under `key` in `table`, decoded; `None` when there is none.
fn record<T: serde::de::DeserializeOwned>(table: &RawTableMut<'_>, key: &[u8]) -> Step<Option<T>> {
    match table.get(key)? {
        Some(bytes) => Ok(Some(decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// Why a step of a command stopped: a refusal or a storage failure.
enum Failure {
    Refused(ApplyError),
    Storage(MetaError),
}

impl From<ApplyError> for Failure {
    fn from(e: ApplyError) -> Self {
        Failure::Refused(e)
    }
}

impl From<MetaError> for Failure {
    fn from(e: MetaError) -> Self {
        Failure::Storage(e)
    }
}

impl From<redb::StorageError> for Failure {
    fn from(e: redb::StorageError) -> Self {
        Failure::Storage(e.into())
    }
}

type Step<T> = Result<T, Failure>;

/// The model tables opened for writing in one transaction.
pub struct Applier<'txn> {
    buckets: RawTableMut<'txn>,
    versions: RawTableMut<'txn>,
    version_ids: RawTableMut<'txn>,
    live: RawTableMut<'txn>,
    uploads: RawTableMut<'txn>,
    parts: RawTableMut<'txn>,
    access_keys: RawTableMut<'txn>,
    grants: RawTableMut<'txn>,
    grants_by_bucket: RawTableMut<'txn>,
    nodes: RawTableMut<'txn>,
    work: RawTableMut<'txn>,
    counters: RawTableMut<'txn>,
    repairs: RawTableMut<'txn>,
    segments: RawTableMut<'txn>,
    storage_nodes: RawTableMut<'txn>,
    object_locks: RawTableMut<'txn>,
    upload_locks: RawTableMut<'txn>,
    completed_uploads: RawTableMut<'txn>,
    object_acls: RawTableMut<'txn>,
    upload_acls: RawTableMut<'txn>,
    site_copies: RawTableMut<'txn>,
    site_copy_order: RawTableMut<'txn>,
    site_copy_totals: RawTableMut<'txn>,
}

impl<'txn> Applier<'txn> {
    /// Open (creating if needed) every model table in `txn`.
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, MetaError> {
        Ok(Applier {
            buckets: txn.open_table(tables::BUCKETS)?,
            versions: txn.open_table(tables::VERSIONS)?,
            version_ids: txn.open_table(tables::VERSION_IDS)?,
            live: txn.open_table(tables::LIVE)?,
            uploads: txn.open_table(tables::UPLOADS)?,
            parts: txn.open_table(tables::PARTS)?,
            access_keys: txn.open_table(tables::ACCESS_KEYS)?,
            grants: txn.open_table(tables::GRANTS)?,
            grants_by_bucket: txn.open_table(tables::GRANTS_BY_BUCKET)?,
            nodes: txn.open_table(tables::NODES)?,
            work: txn.open_table(tables::WORK)?,
            counters: txn.open_table(tables::COUNTERS)?,
            repairs: txn.open_table(tables::REPAIRS)?,
            segments: txn.open_table(tables::SEGMENTS)?,
            storage_nodes: txn.open_table(tables::STORAGE_NODES)?,
            object_locks: txn.open_table(tables::OBJECT_LOCKS)?,
            upload_locks: txn.open_table(tables::UPLOAD_LOCKS)?,
            completed_uploads: txn.open_table(tables::COMPLETED_UPLOADS)?,
            object_acls: txn.open_table(tables::OBJECT_ACLS)?,
            upload_acls: txn.open_table(tables::UPLOAD_ACLS)?,
            site_copies: txn.open_table(tables::SITE_COPIES)?,
            site_copy_order: txn.open_table(tables::SITE_COPY_ORDER)?,
            site_copy_totals: txn.open_table(tables::SITE_COPY_TOTALS)?,
        })
    }

    /// Apply one command at `log_index` (greater than every index applied before).
    pub fn apply(&mut self, log_index: u64, cmd: &Command) -> ApplyOutcome {
        match self.dispatch(log_index, cmd) {
            Ok(response) => Ok(Ok(response)),
            Err(Failure::Refused(e)) => Ok(Err(e)),
            Err(Failure::Storage(e)) => Err(e),
        }
    }

    fn dispatch(&mut self, log_index: u64, cmd: &Command) -> Step<CommandResponse> {
        match cmd {
            Command::CreateBucket { bucket } => self.create_bucket(bucket),
            Command::DeleteBucket { name } => self.delete_bucket(name),
            Command::UpdateBucket { name, update } => self.update_bucket(name, update),
            Command::PutObject {
                version,
                precondition,
            } => self.put_object(log_index, version, precondition.as_ref(), None),
            Command::PutLockedObject {
                version,
                precondition,
                lock,
            } => self.put_object(log_index, version, precondition.as_ref(), Some(lock)),
            Command::DeleteObject {
                bucket,
                key,
                version_id,
                marker_version_id,
                now,
                owner,
                precondition,
            } => {
                let marker = delete_marker(bucket, key, marker_version_id, *now, owner);
                self.delete_object(
                    log_index,
                    marker,
                    version_id.as_deref(),
                    precondition.as_ref(),
                    false,
                )
            }
            Command::DeleteObjectBypassingGovernance {
                bucket,
                key,
                version_id,
                now,
                precondition,
            } => {
                // Deleting a version by id never creates a marker.
                let marker = delete_marker(bucket, key, "", *now, "");
                self.delete_object(
                    log_index,
                    marker,
                    Some(version_id),
                    precondition.as_ref(),
                    true,
                )
            }
            Command::SetObjectTags {
                bucket,
                key,
                version_id,
                tags,
            } => self.set_object_tags(bucket, key, version_id.as_deref(), tags),
            Command::CreateMultipartUpload { upload } => self.create_upload(upload, None),
            Command::CreateLockedMultipartUpload { upload, lock } => {
                self.create_upload(upload, Some(lock))
            }
            Command::CreateMultipartUploadWithAcl { upload, lock, acl } => {
                self.create_upload_with_acl(upload, lock.as_ref(), acl)
            }
            Command::SetObjectRetention {
                bucket,
                key,
                version_id,
                retention,
                bypass_governance,
                now,
            } => self.set_object_retention(
                bucket,
                key,
                version_id.as_deref(),
                retention.as_ref(),
                *bypass_governance,
                *now,
            ),
            Command::PutObjectWithAcl {
                version,
                precondition,
                lock,
                acl,
            } => self.put_object_with_acl(
                log_index,
                version,
                precondition.as_ref(),
                lock.as_ref(),
                acl,
            ),
            Command::SetBucketLifecycle { bucket, config } => {
                self.set_bucket_lifecycle(bucket, config.as_ref())
            }
            Command::ApplyLifecycle {
                bucket,
                key,
                action,
                marker_version_id,
                now,
            } => {
                let marker = delete_marker(bucket, key, marker_version_id, *now, "");
                self.apply_lifecycle(log_index, marker, action)
            }
            Command::SetObjectAcl {
                bucket,
                key,
                version_id,
                acl,
            } => self.set_object_acl(bucket, key, version_id.as_deref(), acl),
            Command::SetObjectLegalHold {
                bucket,
                key,
                version_id,
                on,
            } => self.set_object_legal_hold(bucket, key, version_id.as_deref(), *on),
            Command::PutPart {
                bucket,
                key,
                upload_id,
                part,
            } => self.put_part(bucket, key, upload_id, part),
            Command::CompleteMultipartUpload {
                bucket,
                key,
                upload_id,
                parts,
                version_id,
                now,
                min_part_size,
                precondition,
                checksum,
            } => self.complete_upload(
                log_index,
                Completion {
                    bucket,
                    key,
                    upload_id,
                    parts,
                    version_id,
                    now: *now,
                    min_part_size: *min_part_size,
                    checksum: checksum.as_ref(),
                },
                precondition.as_ref(),
            ),
            Command::AbortMultipartUpload {
                bucket,
                key,
                upload_id,
            } => self.abort_upload(bucket, key, upload_id),
            Command::PutAccessKey { key } => self.put_access_key(key),
            Command::DeleteAccessKey { id } => self.delete_access_key(id),
            Command::SetGrant {
                key_id,
                bucket,
                grant,
            } => self.set_grant(key_id, bucket, *grant),
            Command::PutNode { node } => self.put_node(node),
            Command::SetNodeState { id, state, now } => self.set_node_state(id, *state, *now),
            Command::UpdatePlacement {
                bucket,
                key,
                version_id,
                object_id,
                part,
                moved,
            } => self.update_placement(bucket, key, version_id, (*object_id, *part), moved),
            Command::EnqueueWork { item } => {
                self.enqueue(item)?;
                Ok(CommandResponse::Done)
            }
            Command::CompleteWork { ids } => {
                for id in ids {
                    self.work.remove(id.to_be_bytes().as_slice())?;
                }
                Ok(CommandResponse::Done)
            }
            Command::CompleteRepair {
                object_id,
                part,
                rebuilt,
                sound,
            } => self.complete_repair((*object_id, *part), rebuilt, sound),
            Command::RenameStores { renames } => {
                let renames = rename::Renames::new(renames)?;
                let tables = rename::Tables {
                    versions: &mut self.versions,
                    parts: &mut self.parts,
                    work: &mut self.work,
                    nodes: &mut self.nodes,
                };
                tables.rename(&renames)?;
                Ok(CommandResponse::Done)
            }
            Command::RegisterNode { node } => self.register_node(node),
            Command::ReportNodes { reports, now } => self.report_nodes(reports, *now),
            Command::SetNodeDraining { id, draining, now } => {
                self.set_node_draining(*id, *draining, *now)
            }
            Command::RemoveNode { id } => {
                self.storage_nodes.remove(id.to_be_bytes().as_slice())?;
                Ok(CommandResponse::Done)
            }
        }
    }

    // ---- buckets ----

    fn bucket(&self, name: &str) -> Step<Bucket> {
        match self.buckets.get(name.as_bytes())? {
            Some(bytes) => Ok(decode(bytes.value())?),
            None => Err(ApplyError::NoSuchBucket.into()),
        }
    }

    fn put_bucket(&mut self, bucket: &Bucket) -> Step<()> {
        self.buckets
            .insert(bucket.name.as_bytes(), encode(bucket)?.as_slice())?;
        Ok(())
    }

    fn create_bucket(&mut self, bucket: &Bucket) -> Step<CommandResponse> {
        // The key encoding relies on this; the gateway validates names fully.
        if bucket.name.is_empty() || bucket.name.contains('\0') {
            return Err(ApplyError::InvalidRequest("invalid bucket name".into()).into());
        }
        object_lock::check_new_bucket(bucket)?;
        if let Some(existing) = self.buckets.get(bucket.name.as_bytes())? {
            let existing: Bucket = decode(existing.value())?;
            return Err(ApplyError::BucketExists {
                owner: existing.owner,
            }
            .into());
        }
        self.put_bucket(bucket)?;
        let owner = Grant {
            read: true,
            write: true,
            owner: true,
        };
        self.write_grant(&bucket.owner, &bucket.name, owner)?;
        Ok(CommandResponse::Done)
    }

    fn delete_bucket(&mut self, name: &str) -> Step<CommandResponse> {
        self.bucket(name)?;
        let start = tables::bucket_prefix(name);
        let end = tables::after_prefix(start.clone());
        let range = start.as_slice()..end.as_slice();
        if self
            .versions
            .range::<&[u8]>(range.clone())?
            .next()
            .is_some()
        {
            return Err(ApplyError::BucketNotEmpty.into());
        }
        // Uploads in progress go with the bucket, as in S3.
        let mut uploads = Vec::new();
        for entry in self.uploads.range::<&[u8]>(range)? {
            let (_, v) = entry?;
            let upload: MultipartUpload = decode(v.value())?;
            uploads.push((upload.key, upload.upload_id));
        }
        for (key, upload_id) in uploads {
            self.discard_upload(name, &key, &upload_id)?;
        }
        let mut grantees = Vec::new();
        for entry in self
            .grants_by_bucket
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
        {
            let (k, _) = entry?;
            let key_id = std::str::from_utf8(&k.value()[start.len()..])
                .map_err(|_| MetaError::Encoding("grant key id is not utf-8".into()))?;
            grantees.push(key_id.to_owned());
        }
        for key_id in grantees {
            self.write_grant(&key_id, name, Grant::default())?;
        }
        self.buckets.remove(name.as_bytes())?;
        Ok(CommandResponse::Done)
    }

    fn update_bucket(&mut self, name: &str, update: &BucketUpdate) -> Step<CommandResponse> {
        let mut bucket = self.bucket(name)?;
        let locked = self.lock_config(&bucket)?.is_some();
        match update {
            BucketUpdate::Versioning(Versioning::Unversioned) => {
                return Err(ApplyError::InvalidRequest(
                    "versioning cannot be turned off, only suspended".into(),
                )
                .into());
            }
            BucketUpdate::Versioning(state) if locked && *state != Versioning::Enabled => {
                return Err(ApplyError::InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
                )
                .into());
            }
            BucketUpdate::Versioning(state) => bucket.versioning = *state,
            BucketUpdate::Setting(name, _)
                if name == lock::OBJECT_LOCK_SETTING
                    || name == crate::lifecycle::LIFECYCLE_SETTING
                    || access::is_access_setting(name) =>
            {
                return Err(ApplyError::InvalidRequest(format!(
                    "the {name} setting changes only through its own update"
                ))
                .into());
            }
            BucketUpdate::Policy { document, public } => {
                set_policy(&mut bucket, document.as_deref(), *public)?;
            }
            BucketUpdate::PublicAccessBlock(block) => set_public_access_block(&mut bucket, *block)?,
            BucketUpdate::Acl(acl) => set_bucket_acl(&mut bucket, acl)?,
            BucketUpdate::Ownership(ownership) => set_ownership(&mut bucket, *ownership)?,
            BucketUpdate::ObjectLock(_) if bucket.versioning != Versioning::Enabled => {
                return Err(ApplyError::InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
                        .into(),
                )
                .into());
            }
            BucketUpdate::ObjectLock(config) => {
                bucket.settings.insert(
                    lock::OBJECT_LOCK_SETTING.to_owned(),
                    lock::encode_config(config)?,
                );
            }
            BucketUpdate::Tags(tags) => bucket.tags = tags.clone(),
            BucketUpdate::Cors(cors) => bucket.cors = cors.clone(),
            BucketUpdate::Setting(name, Some(value)) => {
                bucket.settings.insert(name.clone(), value.clone());
            }
            BucketUpdate::Setting(name, None) => {
                bucket.settings.remove(name);
            }
        }
        self.put_bucket(&bucket)?;
        Ok(CommandResponse::Done)
    }

    // ---- object versions ----

    /// Refuse unless `precondition` holds on the latest version of the key.
    fn check_precondition(
        &self,
        bucket: &str,
        key: &str,
        precondition: Option<&Precondition>,
    ) -> Step<()> {
        let Some(precondition) = precondition else {
            return Ok(());
        };
        let current = tables::latest_version(&self.versions, bucket, key)?
            .map(|(_, v)| v)
            .filter(|v| !v.is_delete_marker());
        match (precondition, current) {
            (Precondition::IfNoneMatchAny, None) => Ok(()),
            (Precondition::IfNoneMatchAny, Some(_)) => Err(ApplyError::PreconditionFailed.into()),
            (Precondition::IfMatch(_), None) => Err(ApplyError::NoSuchKey.into()),
            (Precondition::IfMatch(etag), Some(v)) => {
                let wanted = etag.trim_matches('"');
                if wanted == "*" || wanted == v.etag {
                    Ok(())
                } else {
                    Err(ApplyError::PreconditionFailed.into())
                }
            }
        }
    }

    fn put_object(
        &mut self,
        log_index: u64,
        version: &ObjectVersion,
        precondition: Option<&Precondition>,
        requested_lock: Option<&ObjectLock>,
    ) -> Step<CommandResponse> {
        let bucket = self.bucket(&version.bucket)?;
        self.check_precondition(&version.bucket, &version.key, precondition)?;
        let now = version.last_modified;
        let lock = self.new_version_lock(&bucket, requested_lock, now)?;
        if lock.is_some() {
            self.check_replaceable(&bucket, &version.key, &version.version_id, now)?;
        }
        let version = self.store_version(log_index, bucket.versioning, version.clone())?;
        self.lock_new_version(&bucket.name, &version.key, &version.version_id, lock, now)?;
        Ok(CommandResponse::ObjectStored { version })
    }

    /// Store `version` as the newest version of its key. Outside versioning
    /// Enabled it becomes the null version, replacing the previous null
    /// version wherever that sat; replaced data is queued for deletion.
    fn store_version(
        &mut self,
        log_index: u64,
        versioning: Versioning,
        mut version: ObjectVersion,
    ) -> Step<ObjectVersion> {
        if versioning != Versioning::Enabled {
            version.version_id = NULL_VERSION_ID.to_owned();
        }
        let (bucket, key) = (version.bucket.as_str(), version.key.as_str());
        if let Some((index, old)) = tables::find_version(
            &self.version_ids,
            &self.versions,
            bucket,
            key,
            &version.version_id,
        )? {
            self.versions
                .remove(tables::version_key(bucket, key, index).as_slice())?;
            self.forget_acl(bucket, key, &old.version_id)?;
            self.discard(unshared(old.segments(), &version.segments()))?;
        }
        let owner = SegmentOwner::Version {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: version.version_id.clone(),
        };
        self.reference(&version.segments(), &owner, version.last_modified)?;
        let bytes = encode(&version)?;
        self.versions.insert(
            tables::version_key(bucket, key, log_index).as_slice(),
            bytes.as_slice(),
        )?;
        self.version_ids.insert(
            tables::version_id_key(bucket, key, &version.version_id).as_slice(),
            log_index.to_be_bytes().as_slice(),
        )?;
        let object = tables::object_key(bucket, key);
        if version.is_delete_marker() {
            self.live.remove(object.as_slice())?;
        } else {
            let listed = encode(&ListedObject::from(&version))?;
            self.live.insert(object.as_slice(), listed.as_slice())?;
        }
        Ok(version)
    }

    /// Remove one version for good and let the next one become the latest.
    fn remove_version(&mut self, index: u64, old: &ObjectVersion) -> Step<()> {
        let (bucket, key) = (old.bucket.as_str(), old.key.as_str());
        self.versions
            .remove(tables::version_key(bucket, key, index).as_slice())?;
        self.version_ids
            .remove(tables::version_id_key(bucket, key, &old.version_id).as_slice())?;
        self.write_version_lock(bucket, key, &old.version_id, &ObjectLock::default())?;
        self.forget_acl(bucket, key, &old.version_id)?;
        self.forget_completions(bucket, key, &old.version_id)?;
        self.refresh_live(bucket, key)?;
        self.discard(old.segments())
    }

    /// Rewrite a version in place (same position, same id) with changes a
    /// listing does not show (tags, placement), so its live entry stands.
    fn rewrite_version(&mut self, index: u64, version: &ObjectVersion) -> Step<()> {
        let (bucket, key) = (version.bucket.as_str(), version.key.as_str());
        self.versions.insert(
            tables::version_key(bucket, key, index).as_slice(),
            encode(version)?.as_slice(),
        )?;
        Ok(())
    }

    /// Make the live entry of a key match its latest version.
    fn refresh_live(&mut self, bucket: &str, key: &str) -> Step<()> {
        let object = tables::object_key(bucket, key);
        match tables::latest_version(&self.versions, bucket, key)? {
            Some((_, latest)) if !latest.is_delete_marker() => {
                let listed = encode(&ListedObject::from(&latest))?;
                self.live.insert(object.as_slice(), listed.as_slice())?;
            }
            _ => {
                self.live.remove(object.as_slice())?;
            }
        }
        Ok(())
    }

    fn find(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Step<Option<(u64, ObjectVersion)>> {
        Ok(tables::find_version(
            &self.version_ids,
            &self.versions,
            bucket,
            key,
            version_id,
        )?)
    }

    fn delete_object(
        &mut self,
        log_index: u64,
        marker: ObjectVersion,
        version_id: Option<&str>,
        precondition: Option<&Precondition>,
        bypass_governance: bool,
    ) -> Step<CommandResponse> {
        let bucket = self.bucket(&marker.bucket)?;
        self.check_precondition(&marker.bucket, &marker.key, precondition)?;
        if let Some(version_id) = version_id {
            // Deleting a version that does not exist succeeds, as in S3.
            let mut delete_marker = false;
            if let Some((index, old)) = self.find(&marker.bucket, &marker.key, version_id)? {
                let now = marker.last_modified;
                self.check_removable(&bucket.name, &old.key, version_id, now, bypass_governance)?;
                delete_marker = old.is_delete_marker();
                self.remove_version(index, &old)?;
            }
            return Ok(CommandResponse::ObjectDeleted {
                version_id: Some(version_id.to_owned()),
                delete_marker,
            });
        }
        if bucket.versioning == Versioning::Unversioned {
            if let Some((index, old)) = self.find(&marker.bucket, &marker.key, NULL_VERSION_ID)? {
                self.remove_version(index, &old)?;
            }
            return Ok(CommandResponse::ObjectDeleted {
                version_id: None,
                delete_marker: false,
            });
        }
        let marker = self.store_version(log_index, bucket.versioning, marker)?;
        Ok(CommandResponse::ObjectDeleted {
            version_id: Some(marker.version_id),
            delete_marker: true,
        })
    }

    /// The version a command addresses: by id, or the latest (not a marker).
    fn addressed_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Step<(u64, ObjectVersion)> {
        self.bucket(bucket)?;
        let found = match version_id {
            Some(id) => self
                .find(bucket, key, id)?
                .ok_or(ApplyError::NoSuchVersion)?,
            None => tables::latest_version(&self.versions, bucket, key)?
                .filter(|(_, v)| !v.is_delete_marker())
                .ok_or(ApplyError::NoSuchKey)?,
        };
        if found.1.is_delete_marker() {
            return Err(ApplyError::InvalidRequest("the version is a delete marker".into()).into());
        }
        Ok(found)
    }

    fn set_object_tags(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        tags: &[Tag],
    ) -> Step<CommandResponse> {
        let (index, mut version) = self.addressed_version(bucket, key, version_id)?;
        version.tags = tags.to_vec();
        self.rewrite_version(index, &version)?;
        Ok(CommandResponse::Done)
    }

    fn update_placement(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: &str,
        (object_id, part): ([u8; 16], u32),
        moved: &[(u16, String)],
    ) -> Step<CommandResponse> {
        let (index, mut version) = self.addressed_version(bucket, key, Some(version_id))?;
        let Some(segment) = version.segment_mut(&object_id, part) else {
            return Err(ApplyError::InvalidRequest("no such segment in the version".into()).into());
        };
        if moved
            .iter()
            .any(|(shard, _)| usize::from(*shard) >= segment.placement.len())
        {
            return Err(ApplyError::InvalidRequest("shard index out of range".into()).into());
        }
        for (shard, store) in moved {
            segment.placement[usize::from(*shard)] = store.clone();
            segment.missing.retain(|m| m != shard);
        }
        self.rewrite_version(index, &version)?;
        Ok(CommandResponse::Done)
    }

    // ---- multipart uploads ----

    fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Step<MultipartUpload> {
        self.bucket(bucket)?;
        match self
            .uploads
            .get(tables::upload_key(bucket, key, upload_id).as_slice())?
        {
            Some(bytes) => Ok(decode(bytes.value())?),
            None => Err(ApplyError::NoSuchUpload.into()),
        }
    }

    fn create_upload(
        &mut self,
        upload: &MultipartUpload,
        lock: Option<&ObjectLock>,
    ) -> Step<CommandResponse> {
        let bucket = self.bucket(&upload.bucket)?;
        let k = tables::upload_key(&upload.bucket, &upload.key, &upload.upload_id);
        if self.uploads.get(k.as_slice())?.is_some() {
            return Err(ApplyError::InvalidRequest("upload id already in use".into()).into());
        }
        // Refuses a lock in a bucket without object lock before any write.
        self.new_version_lock(&bucket, lock, upload.initiated)?;
        if let Some(lock) = lock {
            self.write_upload_lock(&upload.bucket, &upload.key, &upload.upload_id, lock)?;
        }
        self.uploads
            .insert(k.as_slice(), encode(upload)?.as_slice())?;
        Ok(CommandResponse::Done)
    }

    fn put_part(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part: &PartData,
    ) -> Step<CommandResponse> {
        self.upload(bucket, key, upload_id)?;
        let k = tables::part_key(bucket, key, upload_id, part.number);
        let old = match self.parts.get(k.as_slice())? {
            Some(bytes) => Some(decode::<PartData>(bytes.value())?),
            None => None,
        };
        if let Some(old) = old {
            self.discard(unshared(
                vec![old.segment],
                std::slice::from_ref(&part.segment),
            ))?;
        }
        let owner = SegmentOwner::Upload {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            number: part.number,
        };
        self.reference(std::slice::from_ref(&part.segment), &owner, part.uploaded)?;
        self.parts.insert(k.as_slice(), encode(part)?.as_slice())?;
        Ok(CommandResponse::Done)
    }

    /// Every stored part of an upload, by number.
    fn upload_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Step<BTreeMap<u32, PartData>> {
        let start = tables::upload_key(bucket, key, upload_id);
        let end = tables::after_component(start.clone());
        let mut parts = BTreeMap::new();
        for entry in self
            .parts
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
        {
            let (_, v) = entry?;
            let part: PartData = decode(v.value())?;
            parts.insert(part.number, part);
        }
        Ok(parts)
    }

    /// Remove an upload and its parts; returns the parts.
    fn drop_upload(
        &mut self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Step<BTreeMap<u32, PartData>> {
        let parts = self.upload_parts(bucket, key, upload_id)?;
        for number in parts.keys() {
            self.parts
                .remove(tables::part_key(bucket, key, upload_id, *number).as_slice())?;
        }
        self.uploads
            .remove(tables::upload_key(bucket, key, upload_id).as_slice())?;
        self.forget_upload_lock(bucket, key, upload_id)?;
        self.forget_upload_acl(bucket, key, upload_id)?;
        Ok(parts)
    }

    fn complete_upload(
        &mut self,
        log_index: u64,
        c: Completion<'_>,
        precondition: Option<&Precondition>,
    ) -> Step<CommandResponse> {
        let upload = match self.upload(c.bucket, c.key, c.upload_id) {
            Err(Failure::Refused(ApplyError::NoSuchUpload)) => return self.completed_again(&c),
            other => other?,
        };
        let bucket = self.bucket(c.bucket)?;
        let versioning = bucket.versioning;
        if c.parts.is_empty() {
            return Err(ApplyError::InvalidRequest("no parts listed".into()).into());
        }
        if c.parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(ApplyError::InvalidPartOrder.into());
        }
        let stored = self.upload_parts(c.bucket, c.key, c.upload_id)?;
        let mut chosen = Vec::with_capacity(c.parts.len());
        for (i, (number, etag)) in c.parts.iter().enumerate() {
            let part = stored
                .get(number)
                .filter(|p| p.etag == etag.trim_matches('"'))
                .ok_or(ApplyError::InvalidPart(*number))?;
            if i + 1 < c.parts.len() && part.size < c.min_part_size {
                return Err(ApplyError::EntityTooSmall(*number).into());
            }
            chosen.push(part.clone());
        }
        self.check_precondition(c.bucket, c.key, precondition)?;
        let requested = self.upload_lock(c.bucket, c.key, c.upload_id)?;
        let lock = self.new_version_lock(&bucket, requested.as_ref(), c.now)?;
        if lock.is_some() {
            self.check_replaceable(&bucket, c.key, c.version_id, c.now)?;
        }

        let mut version = upload.template;
        version.bucket = c.bucket.to_owned();
        version.key = c.key.to_owned();
        version.version_id = c.version_id.to_owned();
        version.last_modified = c.now;
        version.size = chosen.iter().map(|p| p.size).sum();
        version.etag = completed::multipart_etag(chosen.iter().map(|p| p.etag.as_str()))
            .ok_or_else(|| MetaError::Encoding("a stored part's ETag is not hex".into()))?;
        version.checksums = c.checksum.cloned().into_iter().collect();
        version.data = ObjectData::Parts(chosen);

        let acl = self.upload_acl(c.bucket, c.key, c.upload_id)?;
        let all = self.drop_upload(c.bucket, c.key, c.upload_id)?;
        let unlisted = all
            .into_values()
            .filter(|p| c.parts.iter().all(|(n, _)| *n != p.number))
            .map(|p| p.segment)
            .collect();
        self.discard(unlisted)?;
        let version = self.store_version(log_index, versioning, version)?;
        self.lock_new_version(c.bucket, c.key, &version.version_id, lock, c.now)?;
        if let Some(acl) = acl {
            self.write_object_acl(c.bucket, c.key, &version.version_id, &acl)?;
        }
        self.remember_completion(&c, &version.version_id)?;
        Ok(CommandResponse::ObjectStored { version })
    }

    fn abort_upload(&mut self, bucket: &str, key: &str, upload_id: &str) -> Step<CommandResponse> {
        self.upload(bucket, key, upload_id)?;
        self.discard_upload(bucket, key, upload_id)?;
        Ok(CommandResponse::Done)
    }

    /// Remove an upload and its parts and queue the parts' data for deletion.
    fn discard_upload(&mut self, bucket: &str, key: &str, upload_id: &str) -> Step<()> {
        let parts = self.drop_upload(bucket, key, upload_id)?;
        self.discard(parts.into_values().map(|p| p.segment).collect())
    }

    // ---- access keys, grants, nodes ----

    fn put_access_key(&mut self, key: &AccessKey) -> Step<CommandResponse> {
        self.access_keys
            .insert(key.id.as_bytes(), encode(key)?.as_slice())?;
        Ok(CommandResponse::Done)
    }

    fn delete_access_key(&mut self, id: &str) -> Step<CommandResponse> {
        if self.access_keys.get(id.as_bytes())?.is_none() {
            return Err(ApplyError::NoSuchAccessKey.into());
        }
        let start = tables::grant_key(id, "");
        let end = tables::after_component(start.clone());
        let mut buckets = Vec::new();
        for entry in self
            .grants
            .range::<&[u8]>(start.as_slice()..end.as_slice())?
        {
            let (k, _) = entry?;
            let bucket = std::str::from_utf8(&k.value()[start.len()..])
                .map_err(|_| MetaError::Encoding("grant bucket is not utf-8".into()))?;
            buckets.push(bucket.to_owned());
        }
        for bucket in buckets {
            self.write_grant(id, &bucket, Grant::default())?;
        }
        self.access_keys.remove(id.as_bytes())?;
        Ok(CommandResponse::Done)
    }

    fn set_grant(&mut self, key_id: &str, bucket: &str, grant: Grant) -> Step<CommandResponse> {
        if self.access_keys.get(key_id.as_bytes())?.is_none() {
            return Err(ApplyError::NoSuchAccessKey.into());
        }
        self.bucket(bucket)?;
        self.write_grant(key_id, bucket, grant)?;
        Ok(CommandResponse::Done)
    }

    /// Store a grant and its index entry; an all-false grant removes both.
    fn write_grant(&mut self, key_id: &str, bucket: &str, grant: Grant) -> Step<()> {
        let by_key = tables::grant_key(key_id, bucket);
        let by_bucket = tables::grant_by_bucket_key(bucket, key_id);
        if grant == Grant::default() {
            self.grants.remove(by_key.as_slice())?;
            self.grants_by_bucket.remove(by_bucket.as_slice())?;
        } else {
            self.grants
                .insert(by_key.as_slice(), encode(&grant)?.as_slice())?;
            self.grants_by_bucket
                .insert(by_bucket.as_slice(), [].as_slice())?;
        }
        Ok(())
    }

    fn put_node(&mut self, node: &StorageNode) -> Step<CommandResponse> {
        self.nodes
            .insert(node.id.as_bytes(), encode(node)?.as_slice())?;
        Ok(CommandResponse::Done)
    }

    fn set_node_state(&mut self, id: &str, state: NodeState, now: Millis) -> Step<CommandResponse> {
        let mut node: StorageNode = match self.nodes.get(id.as_bytes())? {
            Some(bytes) => decode(bytes.value())?,
            None => return Err(ApplyError::NoSuchNode.into()),
        };
        node.state = state;
        node.since = now;
        self.put_node(&node)
    }

    fn node_record(&self, id: u64) -> Step<Option<NodeRecord>> {
        match self.storage_nodes.get(id.to_be_bytes().as_slice())? {
            Some(bytes) => Ok(Some(decode(bytes.value())?)),
            None => Ok(None),
        }
    }

    fn put_node_record(&mut self, node: &NodeRecord) -> Step<CommandResponse> {
        self.storage_nodes
            .insert(node.id.to_be_bytes().as_slice(), encode(node)?.as_slice())?;
        Ok(CommandResponse::Done)
    }

    fn register_node(&mut self, node: &NodeRecord) -> Step<CommandResponse> {
        let record = match self.node_record(node.id)? {
            Some(known) => NodeRecord {
                address: node.address.clone(),
                site: node.site.clone(),
                zone: node.zone.clone(),
                stores: node.stores.clone(),
                ..known
            },
            None => node.clone(),
        };
        self.put_node_record(&record)
    }

    fn report_nodes(&mut self, reports: &[NodeReport], now: Millis) -> Step<CommandResponse> {
        for report in reports {
            let Some(mut node) = self.node_record(report.id)? else {
                continue;
            };
            if report.reached {
                node.heartbeat = now;
                node.capacity = report.capacity;
                node.used = report.used;
            }
            let judged = report.state != NodeState::Draining;
            if judged && node.state != NodeState::Draining && node.state != report.state {
                node.state = report.state;
                node.since = now;
            }
            self.put_node_record(&node)?;
        }
        Ok(CommandResponse::Done)
    }

    fn set_node_draining(&mut self, id: u64, draining: bool, now: Millis) -> Step<CommandResponse> {
        let Some(mut node) = self.node_record(id)? else {
            return Err(ApplyError::NoSuchNode.into());
        };
        let state = if draining {
            NodeState::Draining
        } else {
            NodeState::Up
        };
        if node.state != state {
            node.state = state;
            node.since = now;
        }
        self.put_node_record(&node)
    }

    // ---- background work ----

    /// Queue work: deletions in the deletion queue; repairs merge into the
    /// repair item of their segment (dropped when no version or upload
    /// references the segment any more: there is nothing left to repair;
    /// shards of a copy in the `site_copies` queue are that queue's).
    fn enqueue(&mut self, item: &WorkItem) -> Step<()> {
        match item {
            WorkItem::DeleteSegments { .. } => {
                let id = match self.counters.get(tables::NEXT_WORK_ID)? {
                    Some(bytes) => tables::be_u64(bytes.value())?,
                    None => 1,
                };
                self.work
                    .insert(id.to_be_bytes().as_slice(), encode(item)?.as_slice())?;
                self.counters
                    .insert(tables::NEXT_WORK_ID, (id + 1).to_be_bytes().as_slice())?;
            }
            WorkItem::Repair {
                object_id,
                part,
                shards,
                ..
            } => {
                let key = tables::segment_key(object_id, *part);
                if self.segments.get(key.as_slice())?.is_some() {
                    let shards = self.outside_queued_copies(object_id, *part, shards)?;
                    self.queue_repair(object_id, *part, &shards)?;
                }
            }
        }
        Ok(())
    }

    /// Merge `shards` into the repair item of a segment.
    fn queue_repair(&mut self, object_id: &[u8; 16], part: u32, shards: &[u16]) -> Step<()> {
        Ok(merge_repair(&mut self.repairs, object_id, part, shards)?)
    }

    /// Record `owner` as the referrer of `segments` (written at `now`),
    /// and queue what they were written without: copies their sites lack
    /// in the `site_copies` queue, other shards for repair.
    fn reference(&mut self, segments: &[Segment], owner: &SegmentOwner, now: Millis) -> Step<()> {
        if segments.is_empty() {
            return Ok(());
        }
        let value = encode(owner)?;
        for seg in segments {
            let key = tables::segment_key(&seg.object_id, seg.part);
            self.segments.insert(key.as_slice(), value.as_slice())?;
            let deferred = self.queue_site_copies(seg, now)?;
            let repair: Vec<u16> = seg
                .missing
                .iter()
                .copied()
                .filter(|p| !deferred.contains(p))
                .collect();
            self.queue_repair(&seg.object_id, seg.part, &repair)?;
        }
        Ok(())
    }

    /// Queue segments whose data is no longer referenced for deletion (and
    /// forget their references and pending repairs).
    fn discard(&mut self, segments: Vec<Segment>) -> Step<()> {
        if segments.is_empty() {
            return Ok(());
        }
        for seg in &segments {
            let key = tables::segment_key(&seg.object_id, seg.part);
            self.segments.remove(key.as_slice())?;
            self.repairs.remove(key.as_slice())?;
            self.forget_site_copies(&seg.object_id, seg.part)?;
        }
        self.enqueue(&WorkItem::DeleteSegments { segments })
    }

    /// A repair pass over one segment finished: `rebuilt` shards now live,
    /// verified, on the named stores; `sound` shards were found intact where
    /// they are. Both leave the segment's missing list and its repair item.
    /// A segment nobody references any more only loses its repair item.
    fn complete_repair(
        &mut self,
        (object_id, part): ([u8; 16], u32),
        rebuilt: &[(u16, String)],
        sound: &[u16],
    ) -> Step<CommandResponse> {
        let key = tables::segment_key(&object_id, part);
        let owner = match self.segments.get(key.as_slice())? {
            Some(bytes) => Some(decode::<SegmentOwner>(bytes.value())?),
            None => None,
        };
        let owner_gone = owner.is_none();
        let fixed: Vec<u16> = rebuilt
            .iter()
            .map(|(i, _)| *i)
            .chain(sound.iter().copied())
            .collect();
        // A rebuilt shard must be one the placement has; a sound index out
        // of range (a bad report) only leaves the queue.
        let fix = |segment: &mut Segment| -> Step<Segment> {
            if rebuilt
                .iter()
                .any(|(i, _)| usize::from(*i) >= segment.placement.len())
            {
                return Err(ApplyError::InvalidRequest("shard index out of range".into()).into());
            }
            for (index, store) in rebuilt {
                segment.placement[usize::from(*index)] = store.clone();
            }
            segment.missing.retain(|m| !fixed.contains(m));
            Ok(segment.clone())
        };
        let fixed_segment = match owner {
            Some(SegmentOwner::Version {
                bucket,
                key: object_key,
                version_id,
            }) => {
                let (index, mut version) = self
                    .find(&bucket, &object_key, &version_id)?
                    .ok_or_else(|| {
                        MetaError::Encoding("segment index names a missing version".into())
                    })?;
                let segment = version.segment_mut(&object_id, part).ok_or_else(|| {
                    MetaError::Encoding("segment index names a version without it".into())
                })?;
                let fixed = fix(segment)?;
                self.rewrite_version(index, &version)?;
                Some(fixed)
            }
            Some(SegmentOwner::Upload {
                bucket,
                key: object_key,
                upload_id,
                number,
            }) => {
                let k = tables::part_key(&bucket, &object_key, &upload_id, number);
                let mut stored: PartData = match self.parts.get(k.as_slice())? {
                    Some(bytes) => decode(bytes.value())?,
                    None => {
                        return Err(MetaError::Encoding(
                            "segment index names a missing part".into(),
                        )
                        .into());
                    }
                };
                let fixed = fix(&mut stored.segment)?;
                self.parts
                    .insert(k.as_slice(), encode(&stored)?.as_slice())?;
                Some(fixed)
            }
            None => None,
        };
        let item = match self.repairs.get(key.as_slice())? {
            Some(bytes) => Some(decode::<RepairItem>(bytes.value())?),
            None => None,
        };
        if let Some(mut item) = item {
            item.shards.retain(|s| !fixed.contains(s));
            if item.shards.is_empty() || owner_gone {
                self.repairs.remove(key.as_slice())?;
            } else {
                self.repairs
                    .insert(key.as_slice(), encode(&item)?.as_slice())?;
            }
        }
        match fixed_segment {
            Some(segment) => self.settle_site_copies(&segment)?,
            None => self.forget_site_copies(&object_id, part)?,
        }
        Ok(CommandResponse::Done)
    }
}

/// Merge `shards` into the repair item of a segment in `repairs`.
pub(crate) fn merge_repair(
    repairs: &mut RawTableMut<'_>,
    object_id: &[u8; 16],
    part: u32,
    shards: &[u16],
) -> Result<(), MetaError> {
    if shards.is_empty() {
        return Ok(());
    }
    let key = tables::segment_key(object_id, part);
    let mut item = match repairs.get(key.as_slice())? {
        Some(bytes) => decode::<RepairItem>(bytes.value())?,
        None => RepairItem {
            object_id: *object_id,
            part,
            shards: Vec::new(),
        },
    };
    item.shards.extend_from_slice(shards);
    item.shards.sort_unstable();
    item.shards.dedup();
    repairs.insert(key.as_slice(), encode(&item)?.as_slice())?;
    Ok(())
}

/// The arguments of a multipart completion.
struct Completion<'a> {
    bucket: &'a str,
    key: &'a str,
    upload_id: &'a str,
    parts: &'a [(u32, String)],
    version_id: &'a str,
    now: Millis,
    min_part_size: u64,
    checksum: Option<&'a Checksum>,
}

/// The delete marker a `DeleteObject` without version id would create.
fn delete_marker(
    bucket: &str,
    key: &str,
    version_id: &str,
    now: Millis,
    owner: &str,
) -> ObjectVersion {
    ObjectVersion {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version_id.to_owned(),
        last_modified: now,
        size: 0,
        etag: String::new(),
        checksums: Vec::new(),
        system: SystemMetadata::default(),
        user: BTreeMap::new(),
        tags: Vec::new(),
        owner: owner.to_owned(),
        wrapped_key: Vec::new(),
        data: ObjectData::DeleteMarker,
    }
}

/// The segments of `old` that `keep` does not reference (same object id and part).
fn unshared(old: Vec<Segment>, keep: &[Segment]) -> Vec<Segment> {
    old.into_iter()
        .filter(|s| {
            !keep
                .iter()
                .any(|k| k.object_id == s.object_id && k.part == s.part)
        })
        .collect()
}
