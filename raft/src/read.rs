//! [`ReadView`]: consistent reads of the model over one redb read transaction.

use redb::ReadTransaction;

use crate::command::ApplyError;
use crate::error::MetaError;
use crate::listing::{
    self, ListObjectsQuery, ListUploadsQuery, ListVersionsQuery, ObjectsPage, PartsPage,
    RawReadTable, UploadsPage, VersionsPage,
};
use crate::model::{
    AccessKey, Bucket, Grant, MultipartUpload, ObjectVersion, StorageNode, WorkItem,
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

    /// Every storage node, sorted by id.
    pub fn nodes(&self) -> Result<Vec<StorageNode>, MetaError> {
        Ok(values(self.scan(tables::NODES, b"", usize::MAX)?))
    }

    /// Up to `limit` queued work items with their queue ids, oldest first.
    pub fn work(&self, limit: usize) -> Result<Vec<(u64, WorkItem)>, MetaError> {
        self.scan(tables::WORK, b"", limit)?
            .into_iter()
            .map(|(k, item)| Ok((tables::be_u64(&k)?, item)))
            .collect()
    }
}

fn values<T>(entries: Vec<(Vec<u8>, T)>) -> Vec<T> {
    entries.into_iter().map(|(_, v)| v).collect()
}
