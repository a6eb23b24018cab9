//! Multipart uploads: Create, UploadPart, UploadPartCopy, Complete, Abort.
//!
//! An upload gets one data key at creation (wrapped into its template
//! version); every part is its own segment with a fresh storage object id, so
//! re-uploading a part never collides with the shards it replaces.
//!
//! An upload created with a checksum algorithm gets an object checksum on
//! completion, derived from its parts' checksums (see `mpu_checksum`).

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use tessera_raft::command::{ApplyError, Command};
use tessera_raft::model::{self, MultipartUpload, ObjectData, PartData};

use super::Gateway;
use super::body;
use super::conditions;
use super::convert;
use super::copy;
use super::errors;
use super::integrity;
use super::mpu_checksum::{self, UploadChecksum};
use super::object::{self, requester};
use super::object_lock::requested_lock;
use crate::data::{Destination, ObjectDataKey, ids};

/// Highest part number S3 accepts.
const MAX_PART_NUMBER: i32 = 10_000;

pub(crate) async fn create_multipart_upload(
    gw: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let owner = requester(&req);
    let i = req.input;
    let bucket = gw.bucket(&i.bucket).await?;
    let acl = gw
        .write_acl(&bucket, &owner, &super::acl::acl_input!(i, None, object))
        .await?;
    let checksum =
        UploadChecksum::requested(i.checksum_algorithm.as_ref(), i.checksum_type.as_ref())?;
    let algorithm = checksum.map(|c| c.algorithm.name().to_owned());
    let lock = requested_lock!(i);
    let key = ObjectDataKey::generate();
    let now = ids::now_millis();
    let template = model::ObjectVersion {
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        version_id: String::new(),
        last_modified: now,
        size: 0,
        etag: String::new(),
        checksums: Vec::new(),
        system: object::system_metadata!(i),
        user: object::user_metadata(i.metadata)?,
        tags: convert::tags_from_header(i.tagging.as_deref())?,
        owner,
        wrapped_key: gw.data.wrap_key(&key),
        data: ObjectData::Parts(Vec::new()),
    };
    let upload_id = ids::upload_id();
    let upload = MultipartUpload {
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        upload_id: upload_id.clone(),
        initiated: now,
        template,
        checksum_algorithm: algorithm.clone(),
        checksum_type: checksum.map(|c| c.kind),
    };
    let cmd = match (lock, acl) {
        (lock, Some(acl)) => Command::CreateMultipartUploadWithAcl { upload, lock, acl },
        (None, None) => Command::CreateMultipartUpload { upload },
        (Some(lock), None) => Command::CreateLockedMultipartUpload { upload, lock },
    };
    gw.meta().write(cmd).await.map_err(errors::meta)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(upload_id),
        checksum_algorithm: algorithm.map(ChecksumAlgorithm::from),
        checksum_type: checksum.map(|c| mpu_checksum::type_name(c.kind)),
        ..Default::default()
    }))
}

fn part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        u32::try_from(n).map_err(|_| s3_error!(InvalidArgument, "invalid part number"))
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ))
    }
}

impl Gateway {
    /// The upload, or `NoSuchUpload`.
    async fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<MultipartUpload> {
        let (b, k, u) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.meta()
            .read(move |view| view.upload(&b, &k, &u))
            .await
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(NoSuchUpload))
    }
}

pub(crate) async fn upload_part(
    gw: &Gateway,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let trailers = req.trailing_headers.clone();
    let headers = req.headers;
    let i = req.input;
    let number = part_number(i.part_number)?;
    let upload = gw.upload(&i.bucket, &i.key, &i.upload_id).await?;
    if let Some(expected) = UploadChecksum::of(&upload)? {
        expected.check_part_request(i.checksum_algorithm.as_ref(), &convert::checksums_of!(i))?;
    }
    let requested = i
        .checksum_algorithm
        .as_ref()
        .map(|a| a.as_str().to_owned())
        .or_else(|| upload.checksum_algorithm.clone());
    let integrity = integrity::from_request(
        &headers,
        i.content_md5.as_deref(),
        requested.as_deref(),
        trailers,
    )?;
    let key = gw.data.open_key(&upload.template.wrapped_key)?;
    let ing = gw
        .data
        .ingest(
            &key,
            body::request_body(i.body, i.content_length),
            body::upload(&upload.bucket, Destination::Part(number), &integrity),
        )
        .await?;
    crate::metrics::bytes_in(ing.size);
    gw.data.commit_part(&upload, &ing).await?;
    let mut out = UploadPartOutput {
        e_tag: Some(convert::etag(&ing.etag)),
        ..Default::default()
    };
    convert::set_checksums!(out, convert::checksum_fields(&ing.checksums));
    Ok(S3Response::new(out))
}

/// Parses `x-amz-copy-source-range: bytes=first-last` against the source size.
fn copy_range(range: Option<&str>, size: u64) -> S3Result<std::ops::Range<u64>> {
    let Some(r) = range else { return Ok(0..size) };
    let invalid = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = r
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(invalid)?;
    let first: u64 = first.trim().parse().map_err(|_| invalid())?;
    let last: u64 = last.trim().parse().map_err(|_| invalid())?;
    if first > last {
        return Err(invalid());
    }
    if last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok(first..last + 1)
}

pub(crate) async fn upload_part_copy(
    gw: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let mut i = req.input;
    let number = part_number(i.part_number)?;
    let source = copy::resolve_copy_source!(gw, i);
    let range = copy_range(i.copy_source_range.as_deref(), source.size)?;
    let upload = gw.upload(&i.bucket, &i.key, &i.upload_id).await?;
    let integrity = integrity::computing(upload.checksum_algorithm.as_deref())?;
    let key = gw.data.open_key(&upload.template.wrapped_key)?;
    let ing = gw
        .data
        .copy(
            &source,
            range,
            &key,
            body::upload(&upload.bucket, Destination::Part(number), &integrity),
        )
        .await?;
    gw.data.commit_part(&upload, &ing).await?;
    let mut result = CopyPartResult {
        e_tag: Some(convert::etag(&ing.etag)),
        last_modified: Some(convert::timestamp(ids::now_millis())),
        ..Default::default()
    };
    convert::set_checksums!(result, convert::checksum_fields(&ing.checksums));
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(result),
        copy_source_version_id: convert::shown_version_id(&source.version_id),
        ..Default::default()
    }))
}

pub(crate) async fn complete_multipart_upload(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let mut i = req.input;
    let precondition =
        conditions::write_precondition(i.if_match.as_ref(), i.if_none_match.as_ref())?;
    let listed = i
        .multipart_upload
        .take()
        .and_then(|m| m.parts)
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema"
        ));
    }
    // What the state machine would refuse is refused here, before the
    // request (up to the XML body limit) is written to the raft log.
    if listed.len() > usize::try_from(MAX_PART_NUMBER).unwrap_or(usize::MAX) {
        return Err(s3_error!(
            MalformedXML,
            "at most {MAX_PART_NUMBER} parts per upload"
        ));
    }
    let mut parts: Vec<(u32, String)> = Vec::with_capacity(listed.len());
    let mut part_sums = Vec::with_capacity(listed.len());
    for p in listed {
        let n = part_number(
            p.part_number
                .ok_or_else(|| s3_error!(MalformedXML, "a part has no PartNumber"))?,
        )?;
        if parts.last().is_some_and(|(before, _)| *before >= n) {
            return Err(errors::apply(ApplyError::InvalidPartOrder));
        }
        let etag = p
            .e_tag
            .as_ref()
            .map(|e| convert::etag_value(e).to_owned())
            .ok_or_else(|| s3_error!(MalformedXML, "a part has no ETag"))?;
        parts.push((n, etag));
        part_sums.push(convert::checksums_of!(p));
    }
    let bucket = gw.bucket(&i.bucket).await?;
    let checksum = gw.completion_checksum(&i, &parts, &part_sums).await?;
    let cmd = Command::CompleteMultipartUpload {
        bucket: i.bucket.clone(),
        key: i.key.clone(),
        upload_id: i.upload_id,
        parts,
        version_id: ids::version_id(),
        now: ids::now_millis(),
        min_part_size: gw.settings.min_part_size,
        precondition,
        checksum,
    };
    let stored = gw.data.complete_upload(cmd).await?;
    let sums = convert::checksum_fields(&stored.checksums);
    let mut out = CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(convert::etag(&stored.etag)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        version_id: object::shown_version_id(bucket.versioning, &stored),
        expiration: super::lifecycle::expiration_header(&bucket, &stored),
        checksum_type: sums.checksum_type.clone(),
        ..Default::default()
    };
    convert::set_checksums!(out, sums);
    Ok(S3Response::new(out))
}

impl Gateway {
    /// The object checksum a completion of the `listed` parts will store,
    /// after checking what the client declared: the part checksums it
    /// listed (`part_sums`, in the same order), the object checksum and
    /// type, and `x-amz-mp-object-size`. `None` for uploads created without
    /// a checksum algorithm, and for uploads that are gone.
    async fn completion_checksum(
        &self,
        i: &CompleteMultipartUploadInput,
        listed: &[(u32, String)],
        part_sums: &[Checksum],
    ) -> S3Result<Option<model::Checksum>> {
        let (b, k, u) = (i.bucket.clone(), i.key.clone(), i.upload_id.clone());
        let max = usize::try_from(MAX_PART_NUMBER).unwrap_or(usize::MAX);
        let found = self
            .meta()
            .read(move |view| {
                let Some(upload) = view.upload(&b, &k, &u)? else {
                    return Ok(None);
                };
                let page = view.list_parts(&b, &k, &u, 0, max)?;
                Ok(Some((upload, page)))
            })
            .await
            .map_err(errors::meta)?;
        // An upload that is gone may have been completed by an earlier
        // attempt of this request: the state machine answers a repeat with
        // what that stored, anything else with NoSuchUpload.
        let Some((upload, page)) = found else {
            return Ok(None);
        };
        let stored: BTreeMap<u32, &PartData> = page.parts.iter().map(|p| (p.number, p)).collect();
        let chosen = listed
            .iter()
            .map(|(n, etag)| {
                stored
                    .get(n)
                    .copied()
                    .filter(|p| p.etag == etag.trim_matches('"'))
                    .ok_or_else(|| errors::apply(ApplyError::InvalidPart(*n)))
            })
            .collect::<S3Result<Vec<&PartData>>>()?;
        let last = chosen.len().saturating_sub(1);
        if let Some(((n, _), _)) = listed
            .iter()
            .zip(&chosen)
            .take(last)
            .find(|(_, p)| p.size < self.settings.min_part_size)
        {
            return Err(errors::apply(ApplyError::EntityTooSmall(*n)));
        }
        if let Some(declared) = i.mpu_object_size {
            let size: u64 = chosen.iter().map(|p| p.size).sum();
            if u64::try_from(declared).ok() != Some(size) {
                return Err(s3_error!(
                    InvalidRequest,
                    "The provided 'x-amz-mp-object-size' header value {declared} does not match what was computed: {size}"
                ));
            }
        }
        let mut declared = convert::checksums_of!(i);
        declared.checksum_type = i.checksum_type.clone();
        let Some(want) = UploadChecksum::of(&upload)? else {
            mpu_checksum::refuse_undeclared(&declared)?;
            return Ok(None);
        };
        for (part, sums) in chosen.iter().zip(part_sums) {
            want.check_part(part, sums)?;
        }
        let checksum = want.object_checksum(&chosen)?;
        want.check_object(&checksum, &declared)?;
        Ok(Some(checksum))
    }
}

pub(crate) async fn abort_multipart_upload(
    gw: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let i = req.input;
    gw.meta()
        .write(Command::AbortMultipartUpload {
            bucket: i.bucket,
            key: i.key,
            upload_id: i.upload_id,
        })
        .await
        .map_err(errors::meta)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

#[cfg(test)]
mod tests {
    use super::copy_range;

    #[test]
    fn copy_ranges() {
        assert_eq!(copy_range(None, 10).unwrap(), 0..10);
        assert_eq!(copy_range(Some("bytes=2-5"), 10).unwrap(), 2..6);
        assert!(copy_range(Some("bytes=5-2"), 10).is_err());
        assert!(copy_range(Some("bytes=5-10"), 10).is_err());
        assert!(copy_range(Some("2-5"), 10).is_err());
    }
}
