//! Listings: ListObjects (V1 and V2), ListObjectVersions,
//! ListMultipartUploads and ListParts, over the metadata's range scans.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use tessera_raft::listing::{ListObjectsQuery, ListUploadsQuery, ListVersionsQuery, ObjectsPage};
use tessera_raft::model;
use tessera_raft::{MetaError, ReadView};

use super::Gateway;
use super::convert;
use super::errors;
use super::mpu_checksum;

/// Most entries S3 returns in one page.
const PAGE_LIMIT: i32 = 1000;

fn page_size(requested: Option<i32>) -> usize {
    usize::try_from(requested.unwrap_or(PAGE_LIMIT).clamp(0, PAGE_LIMIT)).unwrap_or(0)
}

/// Applies `encoding-type=url` to the names of a listing.
struct Encoder(bool);

impl Encoder {
    fn new(t: Option<&EncodingType>) -> S3Result<Self> {
        match t.map(EncodingType::as_str) {
            None => Ok(Self(false)),
            Some(EncodingType::URL) => Ok(Self(true)),
            Some(other) => Err(s3_error!(
                InvalidArgument,
                "Invalid Encoding Method specified in Request: {other}"
            )),
        }
    }

    fn name(&self, s: &str) -> String {
        if self.0 {
            convert::url_encode(s)
        } else {
            s.to_owned()
        }
    }

    fn opt(&self, s: Option<&String>) -> Option<String> {
        s.map(|s| self.name(s))
    }

    /// The request's delimiter as the answer echoes it: an empty one is
    /// no delimiter, and S3 sends no `Delimiter` element for it.
    fn delimiter(&self, d: Option<&String>) -> Option<String> {
        self.opt(d.filter(|d| !d.is_empty()))
    }

    fn prefixes(&self, p: &[String]) -> Option<Vec<CommonPrefix>> {
        Some(
            p.iter()
                .map(|p| CommonPrefix {
                    prefix: Some(self.name(p)),
                })
                .collect(),
        )
    }
}

fn object_entry(v: &model::ListedObject, enc: &Encoder, owner: bool) -> Object {
    Object {
        checksum_algorithm: convert::checksum_algorithms(&v.checksums),
        e_tag: Some(convert::etag(&v.etag)),
        key: Some(enc.name(&v.key)),
        last_modified: Some(convert::timestamp(v.last_modified)),
        owner: owner.then(|| convert::owner(&v.owner)),
        size: Some(i64::try_from(v.size).unwrap_or(i64::MAX)),
        storage_class: Some(ObjectStorageClass::from(
            convert::storage_class(v.storage_class.as_deref())
                .as_str()
                .to_owned(),
        )),
        ..Default::default()
    }
}

impl Gateway {
    /// Reads from the metadata in a bucket that must exist (`NoSuchBucket` otherwise).
    async fn read_in_bucket<T>(
        &self,
        bucket: &str,
        f: impl FnOnce(&ReadView, &str) -> Result<T, MetaError>,
    ) -> S3Result<T> {
        self.meta()
            .read(move |view| match view.bucket(bucket)? {
                Some(_) => f(view, bucket).map(Some),
                None => Ok(None),
            })
            .await
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(NoSuchBucket))
    }

    async fn list_page(&self, bucket: &str, q: ListObjectsQuery) -> S3Result<ObjectsPage> {
        self.read_in_bucket(bucket, |view, b| {
            if q.max_keys == 0 {
                return Ok(ObjectsPage::default());
            }
            view.list_objects(b, &q)
        })
        .await
    }
}

pub(crate) async fn list_objects(
    gw: &Gateway,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = page_size(i.max_keys);
    let q = ListObjectsQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
        start_after: i.marker.clone().filter(|m| !m.is_empty()),
        max_keys: max,
    };
    let page = gw.list_page(&i.bucket, q).await?;
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket),
        prefix: Some(enc.name(i.prefix.as_deref().unwrap_or_default())),
        marker: Some(enc.name(i.marker.as_deref().unwrap_or_default())),
        max_keys: i32::try_from(max).ok(),
        is_truncated: Some(page.is_truncated),
        contents: Some(
            page.objects
                .iter()
                .map(|v| object_entry(v, &enc, true))
                .collect(),
        ),
        common_prefixes: enc.prefixes(&page.common_prefixes),
        delimiter: enc.delimiter(i.delimiter.as_ref()),
        next_marker: if page.is_truncated {
            enc.opt(page.next_marker.as_ref())
        } else {
            None
        },
        encoding_type: i.encoding_type,
        ..Default::default()
    }))
}

pub(crate) async fn list_objects_v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let i = req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = page_size(i.max_keys);
    let after_token = match i.continuation_token.as_deref() {
        Some(t) => Some(
            TOKEN
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "The continuation token provided is incorrect"
                    )
                })?,
        ),
        None => None,
    };
    let q = ListObjectsQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
        start_after: after_token
            .or_else(|| i.start_after.clone())
            .filter(|m| !m.is_empty()),
        max_keys: max,
    };
    let page = gw.list_page(&i.bucket, q).await?;
    let fetch_owner = i.fetch_owner.unwrap_or(false);
    let contents: Vec<Object> = page
        .objects
        .iter()
        .map(|v| object_entry(v, &enc, fetch_owner))
        .collect();
    let key_count = contents.len() + page.common_prefixes.len();
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket),
        prefix: Some(enc.name(i.prefix.as_deref().unwrap_or_default())),
        max_keys: i32::try_from(max).ok(),
        key_count: i32::try_from(key_count).ok(),
        continuation_token: i.continuation_token,
        is_truncated: Some(page.is_truncated),
        next_continuation_token: page
            .next_marker
            .filter(|_| page.is_truncated)
            .map(|m| TOKEN.encode(m.as_bytes())),
        contents: Some(contents),
        common_prefixes: enc.prefixes(&page.common_prefixes),
        delimiter: enc.delimiter(i.delimiter.as_ref()),
        encoding_type: i.encoding_type,
        start_after: enc.opt(i.start_after.as_ref()),
        ..Default::default()
    }))
}

pub(crate) async fn list_object_versions(
    gw: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let i = req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = page_size(i.max_keys);
    if i.version_id_marker.is_some() && i.key_marker.is_none() {
        return Err(s3_error!(
            InvalidArgument,
            "A version-id marker cannot be specified without a key marker."
        ));
    }
    let q = ListVersionsQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
        key_marker: i.key_marker.clone().filter(|m| !m.is_empty()),
        version_id_marker: i.version_id_marker.clone().filter(|m| !m.is_empty()),
        max_keys: max.max(1),
    };
    let page = gw
        .read_in_bucket(&i.bucket, |view, b| view.list_versions(b, &q))
        .await?;
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for (v, latest) in &page.versions {
        if v.is_delete_marker() {
            markers.push(DeleteMarkerEntry {
                is_latest: Some(*latest),
                key: Some(enc.name(&v.key)),
                last_modified: Some(convert::timestamp(v.last_modified)),
                owner: Some(convert::owner(&v.owner)),
                version_id: Some(v.version_id.clone()),
            });
        } else {
            versions.push(ObjectVersion {
                checksum_algorithm: convert::checksum_algorithms(&v.checksums),
                e_tag: Some(convert::etag(&v.etag)),
                is_latest: Some(*latest),
                key: Some(enc.name(&v.key)),
                last_modified: Some(convert::timestamp(v.last_modified)),
                owner: Some(convert::owner(&v.owner)),
                size: Some(i64::try_from(v.size).unwrap_or(i64::MAX)),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                version_id: Some(v.version_id.clone()),
                ..Default::default()
            });
        }
    }
    Ok(S3Response::new(ListObjectVersionsOutput {
        common_prefixes: enc.prefixes(&page.common_prefixes),
        delete_markers: Some(markers),
        delimiter: enc.delimiter(i.delimiter.as_ref()),
        encoding_type: i.encoding_type,
        is_truncated: Some(page.is_truncated),
        key_marker: Some(enc.name(i.key_marker.as_deref().unwrap_or_default())),
        max_keys: i32::try_from(max).ok(),
        name: Some(i.bucket),
        next_key_marker: enc.opt(page.next_key_marker.as_ref()),
        next_version_id_marker: page.next_version_id_marker,
        prefix: Some(enc.name(i.prefix.as_deref().unwrap_or_default())),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        versions: Some(versions),
        ..Default::default()
    }))
}

pub(crate) async fn list_multipart_uploads(
    gw: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let i = req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = page_size(i.max_uploads);
    let q = ListUploadsQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: i.delimiter.clone().filter(|d| !d.is_empty()),
        key_marker: i.key_marker.clone().filter(|m| !m.is_empty()),
        upload_id_marker: i.upload_id_marker.clone().filter(|m| !m.is_empty()),
        max_uploads: max.max(1),
    };
    let page = gw
        .read_in_bucket(&i.bucket, |view, b| view.list_uploads(b, &q))
        .await?;
    let uploads = page
        .uploads
        .iter()
        .map(|u| MultipartUpload {
            checksum_algorithm: u.checksum_algorithm.clone().map(ChecksumAlgorithm::from),
            checksum_type: u.checksum_type.map(mpu_checksum::type_name),
            initiated: Some(convert::timestamp(u.initiated)),
            initiator: Some(Initiator {
                display_name: Some(u.template.owner.clone()),
                id: Some(u.template.owner.clone()),
            }),
            key: Some(enc.name(&u.key)),
            owner: Some(convert::owner(&u.template.owner)),
            storage_class: Some(convert::storage_class(
                u.template.system.storage_class.as_deref(),
            )),
            upload_id: Some(u.upload_id.clone()),
        })
        .collect();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        common_prefixes: enc.prefixes(&page.common_prefixes),
        delimiter: enc.delimiter(i.delimiter.as_ref()),
        encoding_type: i.encoding_type,
        is_truncated: Some(page.is_truncated),
        key_marker: Some(enc.name(i.key_marker.as_deref().unwrap_or_default())),
        max_uploads: i32::try_from(max).ok(),
        next_key_marker: enc.opt(page.next_key_marker.as_ref()),
        next_upload_id_marker: page.next_upload_id_marker,
        prefix: Some(enc.name(i.prefix.as_deref().unwrap_or_default())),
        upload_id_marker: Some(i.upload_id_marker.unwrap_or_default()),
        uploads: Some(uploads),
        ..Default::default()
    }))
}

pub(crate) async fn list_parts(
    gw: &Gateway,
    req: S3Request<ListPartsInput>,
) -> S3Result<S3Response<ListPartsOutput>> {
    let i = req.input;
    let max = page_size(i.max_parts);
    let marker = u32::try_from(i.part_number_marker.unwrap_or(0)).unwrap_or(0);
    let (b, k, u) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
    let (upload, page) = gw
        .meta()
        .read(move |view| {
            let Some(upload) = view.upload(&b, &k, &u)? else {
                return Ok(None);
            };
            let page = view.list_parts(&b, &k, &u, marker, max.max(1))?;
            Ok(Some((upload, page)))
        })
        .await
        .map_err(errors::meta)?
        .ok_or_else(|| s3_error!(NoSuchUpload))?;
    let parts = page
        .parts
        .iter()
        .map(|p| {
            let mut part = Part {
                e_tag: Some(convert::etag(&p.etag)),
                last_modified: Some(convert::timestamp(p.uploaded)),
                part_number: i32::try_from(p.number).ok(),
                size: i64::try_from(p.size).ok(),
                ..Default::default()
            };
            convert::set_checksums!(part, convert::checksum_fields(&p.checksums));
            part
        })
        .collect();
    let owner = &upload.template.owner;
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket),
        checksum_algorithm: upload
            .checksum_algorithm
            .clone()
            .map(ChecksumAlgorithm::from),
        checksum_type: upload.checksum_type.map(mpu_checksum::type_name),
        initiator: Some(Initiator {
            display_name: Some(owner.clone()),
            id: Some(owner.clone()),
        }),
        is_truncated: Some(page.is_truncated),
        key: Some(i.key),
        max_parts: i32::try_from(max).ok(),
        next_part_number_marker: page
            .next_part_number_marker
            .and_then(|n| i32::try_from(n).ok()),
        owner: Some(convert::owner(owner)),
        part_number_marker: i.part_number_marker,
        parts: Some(parts),
        storage_class: Some(convert::storage_class(
            upload.template.system.storage_class.as_deref(),
        )),
        upload_id: Some(i.upload_id),
        ..Default::default()
    }))
}
