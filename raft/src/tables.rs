//! The redb tables of the metadata model, their key encodings and the value codec.
//!
//! Every table maps bytes to bytes: keys are order-preserving encodings built
//! here, values are postcard-encoded model types. All table names start with
//! [`TABLE_PREFIX`] so the raft layer can keep its own tables apart.
//!
//! Object keys (which S3 allows to contain `\0`) are escaped: `\0` becomes
//! `\0 \xff` and the key ends with the terminator `\0 \x01`. This keeps the
//! byte order of encoded keys equal to the order of the keys themselves, and
//! the escaped form of a prefix is a byte prefix of the escaped form of every
//! key that starts with it. Keys are UTF-8, so the byte `\xff` never occurs
//! unescaped: `escape(prefix) ++ [0xff]` is an upper bound of every key under
//! a prefix.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | buckets | name | [`Bucket`](crate::model::Bucket) |
//! | versions | object ++ u64-BE(u64::MAX − log index) | [`ObjectVersion`](crate::model::ObjectVersion) |
//! | version_ids | object ++ version id | u64-BE log index of that version |
//! | live | object | [`ListedObject`](crate::model::ListedObject) of the latest version when it is not a delete marker |
//! | uploads | object ++ escape(upload id) ++ terminator | [`MultipartUpload`](crate::model::MultipartUpload) |
//! | parts | upload key ++ u32-BE(part number) | [`PartData`](crate::model::PartData) |
//! | access_keys | key id | [`AccessKey`](crate::model::AccessKey) |
//! | grants | escape(key id) ++ terminator ++ bucket | [`Grant`](crate::model::Grant) |
//! | grants_by_bucket | bucket ++ `\0` ++ key id | empty |
//! | nodes | store id | [`StorageNode`](crate::model::StorageNode) (superseded per-store records) |
//! | work | u64-BE queue id | [`WorkItem`](crate::model::WorkItem): segments to delete |
//! | counters | counter name | u64-BE |
//! | repairs | segment | [`RepairItem`](crate::model::RepairItem) |
//! | segments | segment | [`SegmentOwner`](crate::model::SegmentOwner) |
//! | storage_nodes | u64-BE node id | [`NodeRecord`](crate::model::NodeRecord) |
//! | object_locks | object ++ version id | [`ObjectLock`](crate::model::ObjectLock) of a version that has one |
//! | upload_locks | upload key | [`ObjectLock`](crate::model::ObjectLock) an upload's version is to get |
//! | completed_uploads | upload key | id of the version its completion stored |
//! | object_acls | object ++ version id | [`Acl`](crate::access::Acl) of a version that has one |
//! | upload_acls | upload key | [`Acl`](crate::access::Acl) an upload's version is to get |
//! | site_copies | segment ++ u16-BE(copy) | [`PendingCopy`](crate::model::PendingCopy) |
//! | site_copy_order | escape(site) ++ terminator ++ u64-BE(queued, offset) ++ segment ++ u16-BE(copy) | empty |
//! | site_copy_totals | site | [`SiteCopyTotals`](crate::model::SiteCopyTotals) |
//!
//! where `object = bucket ++ \0 ++ escape(key) ++ terminator` and
//! `segment = object id (16 bytes) ++ u32-BE(part)`.
//!
//! Each kind of background work has a table of its own (deletions in `work`,
//! rebuilds in `repairs`, copies a site does not hold yet in `site_copies`),
//! so a backlog of one kind never hides another.

use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};

use crate::error::MetaError;
use crate::model::ObjectVersion;

/// The type of every model table: encoded key → encoded value.
pub type RawTable = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Every model table name starts with this.
pub const TABLE_PREFIX: &str = "model_";

/// Buckets by name.
pub const BUCKETS: RawTable = TableDefinition::new("model_buckets");
/// Every object version and delete marker, newest first within a key.
pub const VERSIONS: RawTable = TableDefinition::new("model_versions");
/// Version id → log index of the version (its position in [`VERSIONS`]).
pub const VERSION_IDS: RawTable = TableDefinition::new("model_version_ids");
/// What listings show of each key whose latest version is not a delete marker.
pub const LIVE: RawTable = TableDefinition::new("model_live");
/// Multipart uploads in progress.
pub const UPLOADS: RawTable = TableDefinition::new("model_uploads");
/// Uploaded parts of uploads in progress.
pub const PARTS: RawTable = TableDefinition::new("model_parts");
/// Access keys by id.
pub const ACCESS_KEYS: RawTable = TableDefinition::new("model_access_keys");
/// Grants by (key id, bucket).
pub const GRANTS: RawTable = TableDefinition::new("model_grants");
/// Index of grants by (bucket, key id).
pub const GRANTS_BY_BUCKET: RawTable = TableDefinition::new("model_grants_by_bucket");
/// Per-store state records of the first storage-node release, by store id.
pub const NODES: RawTable = TableDefinition::new("model_nodes");
/// The deletion queue (segments no longer referenced) by queue id.
pub const WORK: RawTable = TableDefinition::new("model_work");
/// Named counters (the next work queue id).
pub const COUNTERS: RawTable = TableDefinition::new("model_counters");
/// The repair queue: shards to rebuild, one item per segment.
pub const REPAIRS: RawTable = TableDefinition::new("model_repairs");
/// Every segment a committed version or an upload in progress references,
/// with what references it.
pub const SEGMENTS: RawTable = TableDefinition::new("model_segments");
/// Storage nodes by number.
pub const STORAGE_NODES: RawTable = TableDefinition::new("model_storage_nodes");
/// The object lock of every version that has one, by version id.
pub const OBJECT_LOCKS: RawTable = TableDefinition::new("model_object_locks");
/// The object lock asked for at the creation of an upload in progress.
pub const UPLOAD_LOCKS: RawTable = TableDefinition::new("model_upload_locks");
/// Completed uploads: the id of the version each completion stored.
pub const COMPLETED_UPLOADS: RawTable = TableDefinition::new("model_completed_uploads");

/// The ACL of every version that has one, by version id.
pub const OBJECT_ACLS: RawTable = TableDefinition::new("model_object_acls");

/// The ACL asked for at the creation of an upload in progress.
pub const UPLOAD_ACLS: RawTable = TableDefinition::new("model_upload_acls");

/// Copies of segments that their site does not hold yet, by segment and copy.
pub const SITE_COPIES: RawTable = TableDefinition::new("model_site_copies");

/// The `site_copies` queue per site, oldest first.
pub const SITE_COPY_ORDER: RawTable = TableDefinition::new("model_site_copy_order");

/// How many copies (and bytes) each site still lacks.
pub const SITE_COPY_TOTALS: RawTable = TableDefinition::new("model_site_copy_totals");

/// Every model table, in a fixed order: the position is the table number of
/// snapshot records, so new tables are appended, never inserted.
pub const ALL: [RawTable; 23] = [
    BUCKETS,
    VERSIONS,
    VERSION_IDS,
    LIVE,
    UPLOADS,
    PARTS,
    ACCESS_KEYS,
    GRANTS,
    GRANTS_BY_BUCKET,
    NODES,
    WORK,
    COUNTERS,
    REPAIRS,
    SEGMENTS,
    STORAGE_NODES,
    OBJECT_LOCKS,
    UPLOAD_LOCKS,
    COMPLETED_UPLOADS,
    OBJECT_ACLS,
    UPLOAD_ACLS,
    SITE_COPIES,
    SITE_COPY_ORDER,
    SITE_COPY_TOTALS,
];

/// Create every model table that does not exist yet.
pub fn create_all(txn: &WriteTransaction) -> Result<(), MetaError> {
    for table in ALL {
        txn.open_table(table)?;
    }
    Ok(())
}

/// Encode a value for storage.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MetaError> {
    Ok(postcard::to_allocvec(value)?)
}

/// Decode a stored value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MetaError> {
    Ok(postcard::from_bytes(bytes)?)
}

/// Terminator of an escaped string component.
const TERMINATOR: [u8; 2] = [0, 1];
/// Escaped form of a `\0` byte inside a string component.
const ESCAPED_ZERO: [u8; 2] = [0, 0xff];
/// Counter holding the next work queue id.
pub(crate) const NEXT_WORK_ID: &[u8] = b"next_work_id";

/// Append `s` escaped (no terminator).
fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        if b == 0 {
            buf.extend_from_slice(&ESCAPED_ZERO);
        } else {
            buf.push(b);
        }
    }
}

/// `bucket ++ \0`: the start of every object, upload and part key of a bucket.
pub(crate) fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(bucket.len() + 1);
    buf.extend_from_slice(bucket.as_bytes());
    buf.push(0);
    buf
}

/// `bucket ++ \0 ++ escape(prefix)`: the start of every key beginning with `prefix`.
pub(crate) fn key_prefix(bucket: &str, prefix: &str) -> Vec<u8> {
    let mut buf = bucket_prefix(bucket);
    push_escaped(&mut buf, prefix);
    buf
}

/// Smallest encoding greater than every key that starts with the encoded prefix `p`
/// (an output of [`key_prefix`] or [`bucket_prefix`]).
pub(crate) fn after_prefix(mut p: Vec<u8>) -> Vec<u8> {
    p.push(0xff);
    p
}

/// `bucket ++ \0 ++ escape(key) ++ terminator`: the key of [`LIVE`] and the start
/// of every [`VERSIONS`], [`VERSION_IDS`], [`UPLOADS`] and [`PARTS`] key of the object.
pub(crate) fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut buf = key_prefix(bucket, key);
    buf.extend_from_slice(&TERMINATOR);
    buf
}

/// Smallest encoding greater than every key that starts with `encoded`, an
/// encoding that ends with a terminated string component ([`object_key`],
/// [`upload_key`], or [`grant_key`] with an empty bucket).
pub(crate) fn after_component(mut encoded: Vec<u8>) -> Vec<u8> {
    if let Some(last) = encoded.last_mut() {
        *last = TERMINATOR[1] + 1;
    }
    encoded
}

/// Smallest encoding greater than every record of the object (all its versions, uploads …).
pub(crate) fn after_object(bucket: &str, key: &str) -> Vec<u8> {
    after_component(object_key(bucket, key))
}

/// Key of the version written at `log_index` in [`VERSIONS`].
pub(crate) fn version_key(bucket: &str, key: &str, log_index: u64) -> Vec<u8> {
    let mut buf = object_key(bucket, key);
    buf.extend_from_slice(&(u64::MAX - log_index).to_be_bytes());
    buf
}

/// Key of a version id in [`VERSION_IDS`].
pub(crate) fn version_id_key(bucket: &str, key: &str, version_id: &str) -> Vec<u8> {
    let mut buf = object_key(bucket, key);
    buf.extend_from_slice(version_id.as_bytes());
    buf
}

/// Key of an upload in [`UPLOADS`] (and the start of its parts in [`PARTS`]).
pub(crate) fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut buf = object_key(bucket, key);
    push_escaped(&mut buf, upload_id);
    buf.extend_from_slice(&TERMINATOR);
    buf
}

/// Key of a part in [`PARTS`].
pub(crate) fn part_key(bucket: &str, key: &str, upload_id: &str, number: u32) -> Vec<u8> {
    let mut buf = upload_key(bucket, key, upload_id);
    buf.extend_from_slice(&number.to_be_bytes());
    buf
}

/// Key of a segment in [`SEGMENTS`] and [`REPAIRS`].
pub fn segment_key(object_id: &[u8; 16], part: u32) -> [u8; 20] {
    let mut buf = [0u8; 20];
    buf[..16].copy_from_slice(object_id);
    buf[16..].copy_from_slice(&part.to_be_bytes());
    buf
}

/// The object id and part a [`segment_key`] encodes.
pub fn split_segment_key(key: &[u8; 20]) -> ([u8; 16], u32) {
    let object_id = std::array::from_fn(|i| key[i]);
    let part = u32::from_be_bytes([key[16], key[17], key[18], key[19]]);
    (object_id, part)
}

/// Key of a copy in [`SITE_COPIES`].
pub(crate) fn site_copy_key(object_id: &[u8; 16], part: u32, copy: u16) -> [u8; 22] {
    let mut buf = [0u8; 22];
    buf[..20].copy_from_slice(&segment_key(object_id, part));
    buf[20..].copy_from_slice(&copy.to_be_bytes());
    buf
}

/// `escape(site) ++ terminator`: the start of every [`SITE_COPY_ORDER`] key of a site.
pub(crate) fn site_order_prefix(site: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(site.len() + 2);
    push_escaped(&mut buf, site);
    buf.extend_from_slice(&TERMINATOR);
    buf
}

/// Key of a copy in [`SITE_COPY_ORDER`]: its site's, ordered by when it
/// was queued (times before the epoch count as the epoch).
pub(crate) fn site_order_key(copy: &crate::model::PendingCopy) -> Vec<u8> {
    let mut buf = site_order_prefix(&copy.site);
    buf.extend_from_slice(&(copy.queued.max(0) as u64).to_be_bytes());
    buf.extend_from_slice(&site_copy_key(&copy.object_id, copy.part, copy.copy));
    buf
}

/// Key of a grant in [`GRANTS`]; with an empty bucket, the start of all grants of the key.
pub(crate) fn grant_key(key_id: &str, bucket: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(key_id.len() + bucket.len() + 2);
    push_escaped(&mut buf, key_id);
    buf.extend_from_slice(&TERMINATOR);
    buf.extend_from_slice(bucket.as_bytes());
    buf
}

/// Key of a grant in [`GRANTS_BY_BUCKET`]; with an empty key id, the start of the bucket's grants.
pub(crate) fn grant_by_bucket_key(bucket: &str, key_id: &str) -> Vec<u8> {
    let mut buf = bucket_prefix(bucket);
    buf.extend_from_slice(key_id.as_bytes());
    buf
}

/// `s` escaped, without a terminator (how a delimiter appears inside encoded keys).
pub(crate) fn escape(s: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(s.len());
    push_escaped(&mut buf, s);
    buf
}

/// Length of the escaped string component at the start of `encoded` (the
/// position of its terminator). A `\0` is always followed by `\xff` (escaped)
/// or `\x01` (terminator), so the first `\0 \x01` is the terminator.
pub(crate) fn component_len(encoded: &[u8]) -> Result<usize, MetaError> {
    encoded
        .windows(2)
        .position(|w| w == TERMINATOR)
        .ok_or_else(|| MetaError::Encoding("unterminated key component".into()))
}

/// The string an escaped component (without terminator) encodes.
pub(crate) fn unescape(escaped: &[u8]) -> Result<String, MetaError> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.iter();
    while let Some(&b) = bytes.next() {
        out.push(b);
        if b == 0 && bytes.next() != Some(&ESCAPED_ZERO[1]) {
            return Err(MetaError::Encoding("malformed escaped key".into()));
        }
    }
    String::from_utf8(out).map_err(|_| MetaError::Encoding("object key is not utf-8".into()))
}

/// Read a big-endian u64 stored value or key suffix.
pub(crate) fn be_u64(bytes: &[u8]) -> Result<u64, MetaError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| MetaError::Encoding("expected 8 bytes".into()))?;
    Ok(u64::from_be_bytes(arr))
}

/// The latest version of an object (possibly a delete marker) and its log index.
pub(crate) fn latest_version<T>(
    versions: &T,
    bucket: &str,
    key: &str,
) -> Result<Option<(u64, ObjectVersion)>, MetaError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let start = object_key(bucket, key);
    let end = after_object(bucket, key);
    let mut range = versions.range::<&[u8]>(start.as_slice()..end.as_slice())?;
    match range.next() {
        None => Ok(None),
        Some(entry) => {
            let (k, v) = entry?;
            let index = u64::MAX - be_u64(&k.value()[start.len()..])?;
            Ok(Some((index, decode(v.value())?)))
        }
    }
}

/// A version of an object by id, and its log index.
pub(crate) fn find_version<I, V>(
    version_ids: &I,
    versions: &V,
    bucket: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<(u64, ObjectVersion)>, MetaError>
where
    I: ReadableTable<&'static [u8], &'static [u8]>,
    V: ReadableTable<&'static [u8], &'static [u8]>,
{
    let Some(index) = version_ids.get(version_id_key(bucket, key, version_id).as_slice())? else {
        return Ok(None);
    };
    let index = be_u64(index.value())?;
    let Some(bytes) = versions.get(version_key(bucket, key, index).as_slice())? else {
        return Err(MetaError::Encoding(format!(
            "version index points at a missing version of {bucket}/{key}"
        )));
    };
    Ok(Some((index, decode(bytes.value())?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_keys_sort_like_keys() {
        let mut keys = vec![
            "a", "a\0", "a\0b", "a\u{1}", "ab", "a/b", "b", "", "\0", "é", "a\0\0",
        ];
        let mut encoded: Vec<(Vec<u8>, &str)> =
            keys.iter().map(|k| (object_key("bk", k), *k)).collect();
        keys.sort();
        encoded.sort();
        let order: Vec<&str> = encoded.iter().map(|(_, k)| *k).collect();
        assert_eq!(order, keys);
        for (e, k) in &encoded {
            let len = component_len(&e[3..]).unwrap();
            assert_eq!(len + 5, e.len());
            assert_eq!(&unescape(&e[3..3 + len]).unwrap(), k);
            assert_eq!(escape(k), e[3..3 + len]);
        }
    }

    #[test]
    fn prefix_bounds_cover_exactly_the_keys_under_a_prefix() {
        let keys = ["a", "a\0", "a\0b", "ab", "a/b", "b", "\0", "a\u{10FFFF}"];
        for prefix in ["", "a", "a\0", "a/", "\0", "b"] {
            let lo = key_prefix("bk", prefix);
            let hi = after_prefix(key_prefix("bk", prefix));
            for k in keys {
                let e = object_key("bk", k);
                let inside = e >= lo && e < hi;
                assert_eq!(inside, k.starts_with(prefix), "{prefix:?} {k:?}");
                let v = version_key("bk", k, 7);
                assert_eq!(v >= lo && v < hi, k.starts_with(prefix));
            }
        }
    }

    #[test]
    fn versions_of_a_key_stay_inside_its_object_range() {
        for k in ["a", "a\0", "ab"] {
            let lo = object_key("bk", k);
            let hi = after_object("bk", k);
            for idx in [0, 1, u64::MAX] {
                let v = version_key("bk", k, idx);
                assert!(v >= lo && v < hi);
            }
            for other in ["a", "a\0", "ab", "a\0\0", "aa"] {
                if other != k {
                    let v = version_key("bk", other, 5);
                    assert!(!(v >= lo && v < hi), "{k:?} {other:?}");
                }
            }
        }
        assert!(version_key("bk", "a", 9) < version_key("bk", "a", 3));
    }
}
