//! Listings as S3 returns them: objects, object versions, multipart uploads
//! and parts, each a range scan over one model table.
//!
//! With a delimiter, every key whose remainder after the prefix contains the
//! delimiter rolls up into a common prefix; the scan then seeks past that
//! prefix instead of walking the keys under it. Every entry returned (key or
//! common prefix) sorts after the marker: a marker that is a common prefix
//! skips everything under it.

use std::ops::Bound;

use redb::ReadOnlyTable;

use crate::error::MetaError;
use crate::model::{ListedObject, MultipartUpload, ObjectVersion, PartData};
use crate::tables::{self, decode};

/// A model table opened for reading.
pub(crate) type RawReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// `ListObjects` / `ListObjectsV2` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListObjectsQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up into common prefixes at the first delimiter after the prefix.
    pub delimiter: Option<String>,
    /// Exclusive start: a key or a common prefix (`StartAfter`, `Marker`, continuation token).
    pub start_after: Option<String>,
    /// Most keys plus common prefixes to return.
    pub max_keys: usize,
}

/// A page of `ListObjects`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectsPage {
    /// Latest versions that are not delete markers, by key, as listed.
    pub objects: Vec<ListedObject>,
    /// Common prefixes, sorted.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// When truncated: the last key or common prefix returned (the next `start_after`).
    pub next_marker: Option<String>,
}

/// `ListObjectVersions` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListVersionsQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up into common prefixes at the first delimiter after the prefix.
    pub delimiter: Option<String>,
    /// Start after this key (or common prefix).
    pub key_marker: Option<String>,
    /// With `key_marker`: start after this version of that key.
    pub version_id_marker: Option<String>,
    /// Most versions plus common prefixes to return.
    pub max_keys: usize,
}

/// A page of `ListObjectVersions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionsPage {
    /// Versions and delete markers, by key then newest first, each with `is_latest`.
    pub versions: Vec<(ObjectVersion, bool)>,
    /// Common prefixes, sorted.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// When truncated: key (or common prefix) of the last entry returned.
    pub next_key_marker: Option<String>,
    /// When truncated and the last entry was a version: its id.
    pub next_version_id_marker: Option<String>,
}

/// `ListMultipartUploads` parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUploadsQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up into common prefixes at the first delimiter after the prefix.
    pub delimiter: Option<String>,
    /// Start after this key (or common prefix).
    pub key_marker: Option<String>,
    /// With `key_marker`: start after this upload id of that key.
    pub upload_id_marker: Option<String>,
    /// Most uploads plus common prefixes to return.
    pub max_uploads: usize,
}

/// A page of `ListMultipartUploads`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadsPage {
    /// Uploads, by key then upload id.
    pub uploads: Vec<MultipartUpload>,
    /// Common prefixes, sorted.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// When truncated: key (or common prefix) of the last entry returned.
    pub next_key_marker: Option<String>,
    /// When truncated and the last entry was an upload: its id.
    pub next_upload_id_marker: Option<String>,
}

/// A page of `ListParts`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartsPage {
    /// Parts by number.
    pub parts: Vec<PartData>,
    /// Whether more parts follow.
    pub is_truncated: bool,
    /// When truncated: the number of the last part returned.
    pub next_part_number_marker: Option<u32>,
}

/// One step of a listing walk.
enum Item<'a> {
    /// The encoded value of a record whose key does not roll up.
    Entry(&'a [u8]),
    /// A common prefix.
    Prefix(String),
}

/// What a page ended with, to name the next marker.
enum Last {
    Entry,
    Prefix,
}

/// Where `needle` (non-empty) first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A range scan over records keyed by object (`bucket \0 escape(key) terminator …`).
struct Walk<'q> {
    bucket: &'q str,
    prefix: &'q str,
    delimiter: Option<&'q str>,
    /// Entries (and common prefixes) must sort after this.
    marker: Option<&'q str>,
    /// Where the scan starts (it also never starts before the prefix).
    start: Bound<Vec<u8>>,
    max: usize,
}

impl Walk<'_> {
    /// Feed up to `max` items to `sink`, in order; returns whether more follow.
    fn run(
        self,
        table: &RawReadTable,
        mut sink: impl FnMut(Item<'_>) -> Result<(), MetaError>,
    ) -> Result<bool, MetaError> {
        if self.max == 0 {
            return Ok(false);
        }
        let bucket_len = self.bucket.len() + 1;
        let scan_start = tables::key_prefix(self.bucket, self.prefix);
        let scan_end = tables::after_prefix(scan_start.clone());
        let mut lower = match self.start {
            Bound::Included(k) | Bound::Excluded(k) if k < scan_start => {
                Bound::Included(scan_start.clone())
            }
            Bound::Unbounded => Bound::Included(scan_start.clone()),
            bound => bound,
        };
        // Keys are compared escaped: a delimiter occurs in an escaped key
        // exactly where it occurs in the key (UTF-8 never holds `\xff`).
        let delimiter = self.delimiter.filter(|d| !d.is_empty()).map(tables::escape);
        let mut count = 0;
        'seek: loop {
            match &lower {
                Bound::Included(k) | Bound::Excluded(k) if *k >= scan_end => return Ok(false),
                _ => {}
            }
            let range = table.range::<&[u8]>((
                lower.as_ref().map(Vec::as_slice),
                Bound::Excluded(scan_end.as_slice()),
            ))?;
            for entry in range {
                let (k, v) = entry?;
                let encoded = k.value();
                if let Some(d) = &delimiter {
                    let rest = &encoded[scan_start.len()..];
                    let rest = &rest[..tables::component_len(rest)?];
                    if let Some(at) = find(rest, d) {
                        let end = scan_start.len() + at + d.len();
                        let common = tables::unescape(&encoded[bucket_len..end])?;
                        if self.marker.is_none_or(|m| common.as_str() > m) {
                            if count == self.max {
                                return Ok(true);
                            }
                            sink(Item::Prefix(common))?;
                            count += 1;
                        }
                        lower = Bound::Included(tables::after_prefix(encoded[..end].to_vec()));
                        continue 'seek;
                    }
                }
                if count == self.max {
                    return Ok(true);
                }
                sink(Item::Entry(v.value()))?;
                count += 1;
            }
            return Ok(false);
        }
    }
}

/// Where a scan starts given a key marker: after every record of that key.
fn after_key_marker(bucket: &str, key_marker: Option<&str>) -> Bound<Vec<u8>> {
    match key_marker {
        Some(k) => Bound::Included(tables::after_object(bucket, k)),
        None => Bound::Unbounded,
    }
}

/// `ListObjects` over the live table.
pub(crate) fn list_objects(
    live: &RawReadTable,
    bucket: &str,
    q: &ListObjectsQuery,
) -> Result<ObjectsPage, MetaError> {
    let mut page = ObjectsPage::default();
    let mut last = Last::Entry;
    let walk = Walk {
        bucket,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        marker: q.start_after.as_deref(),
        start: match &q.start_after {
            Some(after) => Bound::Excluded(tables::object_key(bucket, after)),
            None => Bound::Unbounded,
        },
        max: q.max_keys,
    };
    page.is_truncated = walk.run(live, |item| {
        match item {
            Item::Entry(value) => {
                page.objects.push(decode(value)?);
                last = Last::Entry;
            }
            Item::Prefix(p) => {
                page.common_prefixes.push(p);
                last = Last::Prefix;
            }
        }
        Ok(())
    })?;
    if page.is_truncated {
        page.next_marker = match last {
            Last::Entry => page.objects.last().map(|v| v.key.clone()),
            Last::Prefix => page.common_prefixes.last().cloned(),
        };
    }
    Ok(page)
}

/// `ListObjectVersions` over the versions table.
pub(crate) fn list_versions(
    versions: &RawReadTable,
    version_ids: &RawReadTable,
    bucket: &str,
    q: &ListVersionsQuery,
) -> Result<VersionsPage, MetaError> {
    let key_marker = q.key_marker.as_deref();
    // Versions of the marker's key that follow a version id marker are not the latest.
    let mut continued: Option<&str> = None;
    let mut start = after_key_marker(bucket, key_marker);
    if let (Some(k), Some(v)) = (key_marker, q.version_id_marker.as_deref())
        && let Some(index) = version_ids.get(tables::version_id_key(bucket, k, v).as_slice())?
    {
        let index = tables::be_u64(index.value())?;
        start = Bound::Excluded(tables::version_key(bucket, k, index));
        continued = Some(k);
    }
    let mut page = VersionsPage::default();
    let mut last = Last::Entry;
    let walk = Walk {
        bucket,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        marker: key_marker,
        start,
        max: q.max_keys,
    };
    page.is_truncated = walk.run(versions, |item| {
        match item {
            Item::Entry(value) => {
                let version: ObjectVersion = decode(value)?;
                // A version is the latest when it is the first seen of its key.
                let previous = match page.versions.last() {
                    Some((v, _)) => Some(v.key.as_str()),
                    None => continued,
                };
                let is_latest = previous != Some(version.key.as_str());
                page.versions.push((version, is_latest));
                last = Last::Entry;
            }
            Item::Prefix(p) => {
                page.common_prefixes.push(p);
                last = Last::Prefix;
            }
        }
        Ok(())
    })?;
    if page.is_truncated {
        match last {
            Last::Entry => {
                if let Some((v, _)) = page.versions.last() {
                    page.next_key_marker = Some(v.key.clone());
                    page.next_version_id_marker = Some(v.version_id.clone());
                }
            }
            Last::Prefix => page.next_key_marker = page.common_prefixes.last().cloned(),
        }
    }
    Ok(page)
}

/// `ListMultipartUploads` over the uploads table.
pub(crate) fn list_uploads(
    uploads: &RawReadTable,
    bucket: &str,
    q: &ListUploadsQuery,
) -> Result<UploadsPage, MetaError> {
    let key_marker = q.key_marker.as_deref();
    let start = match (key_marker, q.upload_id_marker.as_deref()) {
        (Some(k), Some(u)) => Bound::Excluded(tables::upload_key(bucket, k, u)),
        _ => after_key_marker(bucket, key_marker),
    };
    let mut page = UploadsPage::default();
    let mut last = Last::Entry;
    let walk = Walk {
        bucket,
        prefix: &q.prefix,
        delimiter: q.delimiter.as_deref(),
        marker: key_marker,
        start,
        max: q.max_uploads,
    };
    page.is_truncated = walk.run(uploads, |item| {
        match item {
            Item::Entry(value) => {
                page.uploads.push(decode(value)?);
                last = Last::Entry;
            }
            Item::Prefix(p) => {
                page.common_prefixes.push(p);
                last = Last::Prefix;
            }
        }
        Ok(())
    })?;
    if page.is_truncated {
        match last {
            Last::Entry => {
                if let Some(u) = page.uploads.last() {
                    page.next_key_marker = Some(u.key.clone());
                    page.next_upload_id_marker = Some(u.upload_id.clone());
                }
            }
            Last::Prefix => page.next_key_marker = page.common_prefixes.last().cloned(),
        }
    }
    Ok(page)
}

/// `ListParts` of one upload: parts numbered above `after`, at most `max`.
pub(crate) fn list_parts(
    parts: &RawReadTable,
    upload_key: Vec<u8>,
    after: u32,
    max: usize,
) -> Result<PartsPage, MetaError> {
    let mut page = PartsPage::default();
    if max == 0 {
        return Ok(page);
    }
    let mut start = upload_key.clone();
    start.extend_from_slice(&after.to_be_bytes());
    let end = tables::after_component(upload_key);
    for entry in parts.range::<&[u8]>((
        Bound::Excluded(start.as_slice()),
        Bound::Excluded(end.as_slice()),
    ))? {
        if page.parts.len() == max {
            page.is_truncated = true;
            page.next_part_number_marker = page.parts.last().map(|p| p.number);
            break;
        }
        let (_, v) = entry?;
        page.parts.push(decode(v.value())?);
    }
    Ok(page)
}
