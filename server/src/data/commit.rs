//! Committing stored data through raft: new object versions, multipart
//! parts and completions.
//!
//! Durability order of every write: shards durable → metadata committed →
//! success. A commit the state machine refuses (deterministically: nothing
//! refers to the new shards) releases its shards at once; one whose outcome
//! is unknown (it may have committed) leaves them to the GC.

use std::collections::BTreeMap;

use tessera_raft::MetaError;
use tessera_raft::access::Acl;
use tessera_raft::command::{Command, CommandResponse, Precondition};
use tessera_raft::model::{
    self, MultipartUpload, ObjectData, ObjectLock, ObjectVersion, PartData, Segment, SystemMetadata,
};

use super::data_key::ObjectDataKey;
use super::ids;
use super::ingest::{Ingested, Stored};
use super::{DataError, DataPlane};

/// Everything of a new version that comes from the request, not from its data.
pub(crate) struct VersionMeta {
    /// The bucket.
    pub(crate) bucket: String,
    /// The object key.
    pub(crate) key: String,
    /// Content type, encoding and the other system metadata.
    pub(crate) system: SystemMetadata,
    /// User metadata.
    pub(crate) user: BTreeMap<String, String>,
    /// Object tags.
    pub(crate) tags: Vec<model::Tag>,
    /// The access key that writes it.
    pub(crate) owner: String,
}

impl DataPlane {
    /// A new single-part version of ingested data, under a fresh version id.
    pub(crate) fn new_version(
        &self,
        meta: VersionMeta,
        key: &ObjectDataKey,
        ing: &Ingested,
    ) -> ObjectVersion {
        let now = ids::now_millis();
        ObjectVersion {
            bucket: meta.bucket,
            key: meta.key,
            version_id: ids::version_id(),
            last_modified: now,
            size: ing.size,
            etag: ing.etag.clone(),
            checksums: ing.checksums.clone(),
            system: meta.system,
            user: meta.user,
            tags: meta.tags,
            owner: meta.owner,
            wrapped_key: self.wrap_key(key),
            data: object_data(ing, now),
        }
    }

    /// Commits a new object version, with the object lock and the ACL its
    /// write asked for, if any.
    pub(crate) async fn commit_version(
        &self,
        version: ObjectVersion,
        precondition: Option<Precondition>,
        lock: Option<ObjectLock>,
        acl: Option<Acl>,
    ) -> Result<ObjectVersion, DataError> {
        let segments = version.segments();
        let cmd = match (lock, acl) {
            (lock, Some(acl)) => Command::PutObjectWithAcl {
                version,
                precondition,
                lock,
                acl,
            },
            (None, None) => Command::PutObject {
                version,
                precondition,
            },
            (Some(lock), None) => Command::PutLockedObject {
                version,
                precondition,
                lock,
            },
        };
        let result = self.meta.write(cmd).await;
        self.stored_version(result, segments)
    }

    /// Records an ingested part of `upload` (its segment's part number is
    /// the part's number).
    pub(crate) async fn commit_part(
        &self,
        upload: &MultipartUpload,
        ing: &Ingested,
    ) -> Result<(), DataError> {
        let Stored::Segment(segment) = &ing.stored else {
            return Err(DataError::Internal(
                "a multipart part was stored inline".to_owned(),
            ));
        };
        let part = PartData {
            number: segment.part,
            size: ing.size,
            etag: ing.etag.clone(),
            checksums: ing.checksums.clone(),
            segment: segment.clone(),
            uploaded: ids::now_millis(),
        };
        let cmd = Command::PutPart {
            bucket: upload.bucket.clone(),
            key: upload.key.clone(),
            upload_id: upload.upload_id.clone(),
            part,
        };
        match self.meta.write(cmd).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failed_commit(e, vec![segment.clone()])),
        }
    }

    /// Commits a `Command::CompleteMultipartUpload`; a refused completion
    /// leaves the upload (and its parts) in place.
    pub(crate) async fn complete_upload(
        &self,
        completion: Command,
    ) -> Result<ObjectVersion, DataError> {
        let result = self.meta.write(completion).await;
        self.stored_version(result, Vec::new())
    }

    /// The version a PutObject or CompleteMultipartUpload command stored;
    /// a refusal releases `uncommitted`.
    fn stored_version(
        &self,
        result: Result<CommandResponse, MetaError>,
        uncommitted: Vec<Segment>,
    ) -> Result<ObjectVersion, DataError> {
        match result {
            Ok(CommandResponse::ObjectStored { version }) => Ok(version),
            Ok(other) => Err(DataError::Internal(format!(
                "unexpected answer to a write: {other:?}"
            ))),
            Err(e) => Err(self.failed_commit(e, uncommitted)),
        }
    }

    /// A commit that failed, as a data error; a refusal releases `uncommitted`.
    fn failed_commit(&self, e: MetaError, uncommitted: Vec<Segment>) -> DataError {
        if matches!(e, MetaError::Apply(_)) {
            // Refused deterministically: nothing refers to these shards.
            self.discard(uncommitted);
        }
        // Otherwise the outcome is unknown (it may have committed): the
        // shards are left to the GC.
        e.into()
    }
}

/// Data of an ingested body as object data (single-part).
fn object_data(ing: &Ingested, now: model::Millis) -> ObjectData {
    match &ing.stored {
        Stored::Inline(sealed) => ObjectData::Inline(sealed.clone()),
        Stored::Segment(seg) => ObjectData::Parts(vec![PartData {
            number: 1,
            size: ing.size,
            etag: ing.etag.clone(),
            checksums: ing.checksums.clone(),
            segment: seg.clone(),
            uploaded: now,
        }]),
    }
}
