//! [`ReadView`]: consistent reads of the model over one redb read transaction.

use redb::{ReadTransaction, ReadableTable};

use crate::command::ApplyError;
use crate::error::MetaError;
use crate::listing::{
    self, ListObjectsQuery, ListUploadsQuery, ListVersionsQuery, ObjectsPage, PartsPage,
    RawReadTable, UploadsPage, VersionsPage,
};
use crate::model::{
    AccessKey, Bucket, Grant, MultipartUpload, NodeRecord, ObjectData, ObjectLock, ObjectVersion,
    PartData, PendingCopy, RepairItem, Segment, SegmentOwner, SiteCopyTotals, StorageNode,
    WorkItem,
};
use crate::tables::{self, RawTable, decode};

/// A consistent view of the whole model: every read through one view sees
/// the same applied state.
pub struct ReadView {
    txn: ReadTransaction,
}

impl ReadView {
    /// A view over `txn` (the model tables must exist: see [`tables::create_all`]).
    pub fn new(txn: ReadTransaction) -> Self {
        ReadView { txn }
    }

    /// The underlying transaction (to read tables other than the model's).
    pub fn transaction(&self) -> &ReadTransaction {
        &self.txn
    }

    fn table(&self, table: RawTable) -> Result<RawReadTable, MetaError> {
        Ok(self.txn.open_table(table)?)
    }

    /// Every value of a table whose key starts with `prefix` (all of it when empty).
    fn scan<T: serde::de::DeserializeOwned>(
        &self,
        table: RawTable,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, MetaError> {
        let table = self.table(table)?;
        let mut out = Vec::new();
        for entry in table.range::<&[u8]>(prefix..)?.take(limit) {
            let (k, v) = entry?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), decode(v.value())?));
        }
        Ok(out)
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        table: RawTable,
        key: &[u8],
    ) -> Result<Option<T>, MetaError> {
        match self.table(table)?.get(key)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Refuse with `NoSuchBucket` unless the bucket exists.
    fn require_bucket(&self, name: &str) -> Result<(), MetaError> {
        match self.table(tables::BUCKETS)?.get(name.as_bytes())? {
            Some(_) => Ok(()),
            None => Err(ApplyError::NoSuchBucket.into()),
        }
    }

    /// A bucket by name.
    pub fn bucket(&self, name: &str) -> Result<Option<Bucket>, MetaError> {
        self.get(tables::BUCKETS, name.as_bytes())
    }

    /// Every bucket, sorted by name.
    pub fn buckets(&self) -> Result<Vec<Bucket>, MetaError> {
        Ok(values(self.scan(tables::BUCKETS, b"", usize::MAX)?))
    }

    /// A version of an object; `None` version id: the latest (possibly a delete marker).
    pub fn object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<ObjectVersion>, MetaError> {
        let versions = self.table(tables::VERSIONS)?;
        let found = match version_id {
            None => tables::latest_version(&versions, bucket, key)?,
            Some(id) => {
                let ids = self.table(tables::VERSION_IDS)?;
                tables::find_version(&ids, &versions, bucket, key, id)?
            }
        };
        Ok(found.map(|(_, v)| v))
    }

    /// The object lock of a version (empty when it has none).
    pub fn object_lock(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<ObjectLock, MetaError> {
        let k = tables::version_id_key(bucket, key, version_id);
        Ok(self.get(tables::OBJECT_LOCKS, &k)?.unwrap_or_default())
    }

    /// The ACL of a version, `None` when it has none (its owner's alone).
    pub fn object_acl(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<crate::access::Acl>, MetaError> {
        let k = tables::version_id_key(bucket, key, version_id);
        self.get(tables::OBJECT_ACLS, &k)
    }

    /// `ListObjects`: latest versions that are not delete markers.
    /// Fails with `NoSuchBucket` when the bucket does not exist.
    pub fn list_objects(
        &self,
        bucket: &str,
        q: &ListObjectsQuery,
    ) -> Result<ObjectsPage, MetaError> {
        self.require_bucket(bucket)?;
        listing::list_objects(&self.table(tables::LIVE)?, bucket, q)
    }

    /// `ListObjectVersions`: versions and delete markers.
    /// Fails with `NoSuchBucket` when the bucket does not exist.
    pub fn list_versions(
        &self,
        bucket: &str,
        q: &ListVersionsQuery,
    ) -> Result<VersionsPage, MetaError> {
        self.require_bucket(bucket)?;
        listing::list_versions(
            &self.table(tables::VERSIONS)?,
            &self.table(tables::VERSION_IDS)?,
            bucket,
            q,
        )
    }

    /// A multipart upload in progress.
    pub fn upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<MultipartUpload>, MetaError> {
        self.get(tables::UPLOADS, &tables::upload_key(bucket, key, upload_id))
    }

    /// `ListMultipartUploads`: uploads by key, then by upload id.
    /// Fails with `NoSuchBucket` when the bucket does not exist.
    pub fn list_uploads(
        &self,
        bucket: &str,
        q: &ListUploadsQuery,
    ) -> Result<UploadsPage, MetaError> {
        self.require_bucket(bucket)?;
        listing::list_uploads(&self.table(tables::UPLOADS)?, bucket, q)
    }

    /// `ListParts`: parts numbered above `part_number_marker`, at most `max_parts`.
    /// Fails with `NoSuchUpload` when the upload does not exist.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number_marker: u32,
        max_parts: usize,
    ) -> Result<PartsPage, MetaError> {
        let upload = tables::upload_key(bucket, key, upload_id);
        if self
            .table(tables::UPLOADS)?
            .get(upload.as_slice())?
            .is_none()
        {
            return Err(ApplyError::NoSuchUpload.into());
        }
        listing::list_parts(
            &self.table(tables::PARTS)?,
            upload,
            part_number_marker,
            max_parts,
        )
    }

    /// An access key by id.
    pub fn access_key(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        self.get(tables::ACCESS_KEYS, id.as_bytes())
    }

    /// Every access key, sorted by id.
    pub fn access_keys(&self) -> Result<Vec<AccessKey>, MetaError> {
        Ok(values(self.scan(tables::ACCESS_KEYS, b"", usize::MAX)?))
    }

    /// The grant of a key on a bucket.
    pub fn grant(&self, key_id: &str, bucket: &str) -> Result<Option<Grant>, MetaError> {
        self.get(tables::GRANTS, &tables::grant_key(key_id, bucket))
    }

    /// Every grant of a key, as `(bucket, grant)` sorted by bucket.
    pub fn grants_of(&self, key_id: &str) -> Result<Vec<(String, Grant)>, MetaError> {
        let prefix = tables::grant_key(key_id, "");
        self.scan::<Grant>(tables::GRANTS, &prefix, usize::MAX)?
            .into_iter()
            .map(|(k, grant)| {
                let bucket = String::from_utf8(k[prefix.len()..].to_vec())
                    .map_err(|_| MetaError::Encoding("grant bucket is not utf-8".into()))?;
                Ok((bucket, grant))
            })
            .collect()
    }

    /// Every per-store state record of the first storage-node release,
    /// sorted by store id (see [`StorageNode`]).
    pub fn store_records(&self) -> Result<Vec<StorageNode>, MetaError> {
        Ok(values(self.scan(tables::NODES, b"", usize::MAX)?))
    }

    /// Every storage node, by number.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>, MetaError> {
        Ok(values(self.scan(tables::STORAGE_NODES, b"", usize::MAX)?))
    }

    /// Up to `limit` queued deletions with their queue ids, oldest first.
    pub fn deletions(&self, limit: usize) -> Result<Vec<(u64, Vec<Segment>)>, MetaError> {
        let table = self.table(tables::WORK)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry?;
            if let WorkItem::DeleteSegments { segments } = decode(v.value())? {
                out.push((tables::be_u64(k.value())?, segments));
            }
        }
        Ok(out)
    }

    /// Up to `limit` repair items, in segment order.
    pub fn repairs(&self, limit: usize) -> Result<Vec<RepairItem>, MetaError> {
        Ok(values(self.scan(tables::REPAIRS, b"", limit)?))
    }

    /// What each site still lacks (sites lacking nothing are left out).
    pub fn site_copy_totals(&self) -> Result<Vec<(String, SiteCopyTotals)>, MetaError> {
        self.scan(tables::SITE_COPY_TOTALS, b"", usize::MAX)?
            .into_iter()
            .map(|(k, totals)| {
                let site = String::from_utf8(k)
                    .map_err(|_| MetaError::Encoding("site name is not UTF-8".into()))?;
                Ok((site, totals))
            })
            .collect()
    }

    /// Up to `limit` copies `site` lacks, oldest first.
    pub fn site_copies(&self, site: &str, limit: usize) -> Result<Vec<PendingCopy>, MetaError> {
        let prefix = tables::site_order_prefix(site);
        let order = self.table(tables::SITE_COPY_ORDER)?;
        let mut out = Vec::new();
        for entry in order.range::<&[u8]>(prefix.as_slice()..)?.take(limit) {
            let (k, _) = entry?;
            let Some(copy_key) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            let copy_key = copy_key
                .get(8..)
                .ok_or_else(|| MetaError::Encoding("site copy order key is too short".into()))?;
            if let Some(pending) = self.get(tables::SITE_COPIES, copy_key)? {
                out.push(pending);
            }
        }
        Ok(out)
    }

    /// How many items wait in each queue.
    pub fn queue_lengths(&self) -> Result<QueueLengths, MetaError> {
        use redb::ReadableTableMetadata;
        Ok(QueueLengths {
            deletions: self.table(tables::WORK)?.len()?,
            repairs: self.table(tables::REPAIRS)?.len()?,
        })
    }

    /// Up to `limit` referenced segments after the segment key `after`
    /// (from the first when `None`), in key order, each with its key.
    pub fn segments_after(
        &self,
        after: Option<[u8; 20]>,
        limit: usize,
    ) -> Result<Vec<([u8; 20], SegmentRecord)>, MetaError> {
        let table = self.table(tables::SEGMENTS)?;
        let range = match &after {
            Some(key) => table.range::<&[u8]>((
                std::ops::Bound::Excluded(key.as_slice()),
                std::ops::Bound::Unbounded,
            ))?,
            None => table.range::<&[u8]>(..)?,
        };
        let mut out = Vec::new();
        for entry in range.take(limit) {
            let (k, _) = entry?;
            let key: [u8; 20] = k
                .value()
                .try_into()
                .map_err(|_| MetaError::Encoding("segment key is not 20 bytes".into()))?;
            let (object_id, part) = tables::split_segment_key(&key);
            if let Some(record) = self.segment(&object_id, part)? {
                out.push((key, record));
            }
        }
        Ok(out)
    }

    /// How many segments committed versions and uploads reference.
    pub fn segment_count(&self) -> Result<u64, MetaError> {
        use redb::ReadableTableMetadata;
        Ok(self.table(tables::SEGMENTS)?.len()?)
    }

    /// A segment that a committed version or an upload in progress
    /// references, with its referrer and the wrapped data key its shards
    /// are sealed under; `None` when nothing references it.
    pub fn segment(
        &self,
        object_id: &[u8; 16],
        part: u32,
    ) -> Result<Option<SegmentRecord>, MetaError> {
        let key = tables::segment_key(object_id, part);
        let Some(owner) = self.get::<SegmentOwner>(tables::SEGMENTS, &key)? else {
            return Ok(None);
        };
        let matches = |s: &Segment| s.object_id == *object_id && s.part == part;
        let found = match &owner {
            SegmentOwner::Version {
                bucket,
                key,
                version_id,
            } => self.object(bucket, key, Some(version_id))?.and_then(|v| {
                let segment = match &v.data {
                    ObjectData::Parts(parts) => parts
                        .iter()
                        .map(|p| &p.segment)
                        .find(|s| matches(s))
                        .cloned(),
                    ObjectData::Inline(_) | ObjectData::DeleteMarker => None,
                };
                segment.map(|s| (s, v.wrapped_key))
            }),
            SegmentOwner::Upload {
                bucket,
                key,
                upload_id,
                number,
            } => {
                let upload = self.get::<MultipartUpload>(
                    tables::UPLOADS,
                    &tables::upload_key(bucket, key, upload_id),
                )?;
                let part = self.get::<PartData>(
                    tables::PARTS,
                    &tables::part_key(bucket, key, upload_id, *number),
                )?;
                match (upload, part) {
                    (Some(u), Some(p)) if matches(&p.segment) => {
                        Some((p.segment, u.template.wrapped_key))
                    }
                    _ => None,
                }
            }
        };
        let Some((segment, wrapped_key)) = found else {
            return Err(MetaError::Encoding(format!(
                "segment index names {owner:?}, which does not hold the segment"
            )));
        };
        Ok(Some(SegmentRecord {
            owner,
            segment,
            wrapped_key,
        }))
    }
}

/// How many items wait in each background queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueLengths {
    /// Deletions (each of one or more segments).
    pub deletions: u64,
    /// Segments with shards to rebuild.
    pub repairs: u64,
}

/// A referenced segment as [`ReadView::segment`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRecord {
    /// What references it.
    pub owner: SegmentOwner,
    /// The segment as its referrer records it (placement, missing shards).
    pub segment: Segment,
    /// The data key its shards are sealed under, wrapped by the master key.
    pub wrapped_key: Vec<u8>,
}

fn values<T>(entries: Vec<(Vec<u8>, T)>) -> Vec<T> {
    entries.into_iter().map(|(_, v)| v).collect()
}
