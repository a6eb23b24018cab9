//! CopyObject and the copy-source handling UploadPartCopy shares. The bytes
//! are copied by the data layer (`DataPlane::copy`): read, decrypted,
//! re-encrypted under the destination's new data key and written,
//! streaming, never whole in memory.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::Gateway;
use super::acl::acl_input;
use super::body;
use super::convert;
use super::integrity;
use super::object::{requester, shown_version_id, system_metadata, user_metadata};
use super::object_lock::requested_lock;
use crate::data::{Destination, ObjectDataKey, VersionMeta};

/// The source version of a CopyObject or UploadPartCopy input (their types
/// differ, their fields agree), after its `x-amz-copy-source-if-*` checks.
macro_rules! resolve_copy_source {
    ($gw:expr, $i:expr) => {{
        let (bucket, key, version_id) = $crate::s3::copy::copy_source(&$i.copy_source)?;
        let source = $gw
            .data
            .lookup($crate::data::VersionRef {
                bucket: &bucket,
                key: &key,
                version_id: version_id.as_deref(),
            })
            .await?;
        $crate::s3::conditions::ReadConditions {
            if_match: $i.copy_source_if_match.take(),
            if_none_match: $i.copy_source_if_none_match.take(),
            if_modified_since: $i.copy_source_if_modified_since.take(),
            if_unmodified_since: $i.copy_source_if_unmodified_since.take(),
        }
        .check_copy_source(&source)?;
        source
    }};
}
pub(crate) use resolve_copy_source;

/// Parses `x-amz-copy-source` into (bucket, key, version id).
pub(crate) fn copy_source(src: &CopySource) -> S3Result<(String, String, Option<String>)> {
    match src {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_deref().map(str::to_owned),
        )),
        _ => Err(s3_error!(
            NotImplemented,
            "only bucket/key copy sources are supported"
        )),
    }
}

fn is_replace(d: Option<&MetadataDirective>) -> bool {
    d.is_some_and(|d| d.as_str().eq_ignore_ascii_case(MetadataDirective::REPLACE))
}

pub(crate) async fn copy_object(
    gw: &Gateway,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let owner = requester(&req);
    let headers = req.headers;
    let mut i = req.input;
    let source = resolve_copy_source!(gw, i);
    let (src_bucket, src_key, src_version) = copy_source(&i.copy_source)?;
    let bucket = gw.bucket(&i.bucket).await?;
    // The copy gets the lock its headers ask for, never the source's.
    let lock = requested_lock!(i);
    let acl = gw
        .write_acl(&bucket, &owner, &acl_input!(i, None, object))
        .await?;
    let replace_meta = is_replace(i.metadata_directive.as_ref());
    let replace_tags = i
        .tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str().eq_ignore_ascii_case(TaggingDirective::REPLACE));
    if src_bucket == i.bucket
        && src_key == i.key
        && src_version.is_none()
        && !replace_meta
        && i.storage_class.is_none()
    {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let (system, user) = if replace_meta {
        let system = system_metadata!(i);
        (system, user_metadata(i.metadata)?)
    } else {
        let mut system = source.system.clone();
        if let Some(sc) = i.storage_class {
            system.storage_class = Some(sc.as_str().to_owned());
        }
        (system, source.user.clone())
    };
    let tags = if replace_tags {
        convert::tags_from_header(headers.get("x-amz-tagging").and_then(|v| v.to_str().ok()))?
    } else {
        source.tags.clone()
    };
    let algorithm = i
        .checksum_algorithm
        .as_ref()
        .map(|a| a.as_str().to_owned())
        .or_else(|| source.checksums.first().map(|c| c.algorithm.clone()));
    let integrity = integrity::computing(algorithm.as_deref())?;
    let key = ObjectDataKey::generate();
    let ing = gw
        .data
        .copy(
            &source,
            0..source.size,
            &key,
            body::upload(&i.bucket, Destination::Object, &integrity),
        )
        .await?;
    let meta = VersionMeta {
        bucket: i.bucket,
        key: i.key,
        system,
        user,
        tags,
        owner,
    };
    let stored = gw
        .data
        .commit_version(gw.data.new_version(meta, &key, &ing), None, lock, acl)
        .await?;
    let sums = convert::checksum_fields(&stored.checksums);
    let mut result = CopyObjectResult {
        e_tag: Some(convert::etag(&stored.etag)),
        last_modified: Some(convert::timestamp(stored.last_modified)),
        checksum_type: sums.checksum_type.clone(),
        ..Default::default()
    };
    convert::set_checksums!(result, sums);
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(result),
        copy_source_version_id: convert::shown_version_id(&source.version_id),
        version_id: shown_version_id(bucket.versioning, &stored),
        expiration: super::lifecycle::expiration_header(&bucket, &stored),
        ..Default::default()
    }))
}
