//! Single-object operations: Put, Get, Head, Delete, DeleteObjects,
//! GetObjectAttributes; plus the bucket lookup and request metadata the
//! write operations share.

use futures::StreamExt;
use http::{HeaderMap, HeaderValue};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tessera_raft::MetaError;
use tessera_raft::command::{ApplyError, Command, CommandResponse, Precondition};
use tessera_raft::model::{
    Bucket, NULL_VERSION_ID, ObjectData, ObjectVersion, PartData, Versioning,
};

use super::Gateway;
use super::acl::acl_input;
use super::body;
use super::conditions::{self, ReadConditions};
use super::convert::{self, Headers, Overrides};
use super::errors;
use super::integrity;
use super::lifecycle;
use super::object_lock::{self, describe_lock, requested_lock};
use crate::data::{Destination, ObjectDataKey, VersionMeta, VersionRef, ids};

/// Deletes of one DeleteObjects request in flight at once.
const DELETE_CONCURRENCY: usize = 16;

/// Most bytes of user metadata S3 accepts on one object.
const USER_METADATA_LIMIT: usize = 2048;

/// The access key id a request acts as (`anonymous` without credentials;
/// the parent key for temporary credentials, see [`crate::auth`]).
pub(crate) fn requester<T>(req: &S3Request<T>) -> String {
    crate::auth::principal(req)
        .unwrap_or("anonymous")
        .to_owned()
}

impl Gateway {
    /// The bucket, or `NoSuchBucket`.
    pub(crate) async fn bucket(&self, name: &str) -> S3Result<Bucket> {
        let name = name.to_owned();
        self.meta()
            .read(move |view| view.bucket(&name))
            .await
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(NoSuchBucket))
    }
}

/// The version id S3 shows for a stored version in a bucket.
pub(crate) fn shown_version_id(versioning: Versioning, v: &ObjectVersion) -> Option<String> {
    (versioning != Versioning::Unversioned || v.version_id != NULL_VERSION_ID)
        .then(|| v.version_id.clone())
}

/// The system metadata of a write request (PutObject, CopyObject with
/// REPLACE, CreateMultipartUpload: their types differ, their fields agree).
macro_rules! system_metadata {
    ($i:expr) => {
        tessera_raft::model::SystemMetadata {
            content_type: $i.content_type,
            content_encoding: $i.content_encoding,
            content_disposition: $i.content_disposition,
            content_language: $i.content_language,
            cache_control: $i.cache_control,
            expires: $crate::s3::convert::expires_in($i.expires)?,
            website_redirect: $i.website_redirect_location,
            storage_class: $i.storage_class.map(|s| s.as_str().to_owned()),
        }
    };
}
pub(crate) use system_metadata;

/// User metadata of a request, size-checked.
pub(crate) fn user_metadata(
    meta: Option<Metadata>,
) -> S3Result<std::collections::BTreeMap<String, String>> {
    let user = convert::user_metadata_in(meta);
    let size: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > USER_METADATA_LIMIT {
        return Err(s3_error!(MetadataTooLarge));
    }
    Ok(user)
}

pub(crate) async fn put_object(
    gw: &Gateway,
    req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let owner = requester(&req);
    let trailers = req.trailing_headers.clone();
    let headers = req.headers;
    let input = req.input;
    let bucket = gw.bucket(&input.bucket).await?;
    let precondition =
        conditions::write_precondition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
    let integrity = integrity::from_request(
        &headers,
        input.content_md5.as_deref(),
        input
            .checksum_algorithm
            .as_ref()
            .map(ChecksumAlgorithm::as_str),
        trailers,
    )?;
    let lock = requested_lock!(input);
    object_lock::require_integrity(&headers, lock.as_ref())?;
    let acl = gw
        .write_acl(&bucket, &owner, &acl_input!(input, None, object))
        .await?;
    let tags = convert::tags_from_header(input.tagging.as_deref())?;
    let user = user_metadata(input.metadata)?;
    let system = system_metadata!(input);
    let key = ObjectDataKey::generate();
    let ing = gw
        .data
        .ingest(
            &key,
            body::request_body(input.body, input.content_length),
            body::upload(&input.bucket, Destination::Object, &integrity),
        )
        .await?;
    crate::metrics::bytes_in(ing.size);
    let meta = VersionMeta {
        bucket: input.bucket,
        key: input.key,
        system,
        user,
        tags,
        owner,
    };
    let stored = gw
        .data
        .commit_version(
            gw.data.new_version(meta, &key, &ing),
            precondition,
            lock,
            acl,
        )
        .await?;
    let sums = convert::checksum_fields(&stored.checksums);
    let mut out = PutObjectOutput {
        e_tag: Some(convert::etag(&stored.etag)),
        version_id: shown_version_id(bucket.versioning, &stored),
        expiration: lifecycle::expiration_header(&bucket, &stored),
        checksum_type: sums.checksum_type.clone(),
        ..Default::default()
    };
    convert::set_checksums!(out, sums);
    Ok(S3Response::new(out))
}

/// What a GET or HEAD resolved: the version, the byte range to send, and the
/// part count when a part was addressed.
struct ReadPlan {
    version: ObjectVersion,
    range: std::ops::Range<u64>,
    content_range: Option<String>,
    parts_count: Option<i32>,
}

async fn plan_read(
    gw: &Gateway,
    target: VersionRef<'_>,
    conds: &ReadConditions,
    range: Option<Range>,
    part_number: Option<i32>,
) -> S3Result<ReadPlan> {
    let version = gw.data.lookup(target).await?;
    conds.check(&version)?;
    let size = version.size;
    let parts = match &version.data {
        ObjectData::Parts(p) => p.len(),
        _ => 1,
    };
    let multipart = version.etag.contains('-');
    let (range, content_range, parts_count) = match (range, part_number) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter"
            ));
        }
        (Some(r), None) => {
            let r = r.check(size).map_err(|_| {
                let mut e = s3_error!(InvalidRange, "The requested range is not satisfiable");
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(http::header::CONTENT_RANGE, v);
                }
                e.set_headers(h);
                e
            })?;
            let cr = format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1));
            (r, Some(cr), None)
        }
        (None, Some(n)) => {
            if !(1..=10_000).contains(&n) {
                return Err(s3_error!(
                    InvalidArgument,
                    "Part number must be an integer between 1 and 10000, inclusive"
                ));
            }
            // A part the object does not have: 400 InvalidPartNumber, as S3 answers.
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= parts)
                .ok_or_else(|| {
                    let mut e = S3Error::with_message(
                        S3ErrorCode::Custom("InvalidPartNumber".into()),
                        "The requested partnumber is not satisfiable",
                    );
                    e.set_status_code(http::StatusCode::BAD_REQUEST);
                    e
                })?;
            let r = match &version.data {
                ObjectData::Parts(p) => {
                    let start: u64 = p[..n - 1].iter().map(|x| x.size).sum();
                    start..start + p[n - 1].size
                }
                _ => 0..size,
            };
            let cr = (multipart && !r.is_empty())
                .then(|| format!("bytes {}-{}/{size}", r.start, r.end - 1));
            (
                r,
                cr,
                multipart.then(|| i32::try_from(parts).unwrap_or(i32::MAX)),
            )
        }
        (None, None) => (0..size, None, None),
    };
    Ok(ReadPlan {
        version,
        range,
        content_range,
        parts_count,
    })
}

/// Fills the fields GET and HEAD outputs share (their types differ, their fields agree).
macro_rules! describe {
    ($out:ident, $plan:expr, $headers:expr, $checksums:expr) => {{
        let v = &$plan.version;
        let h: Headers = $headers;
        $out.accept_ranges = Some("bytes".to_owned());
        $out.content_length =
            Some(i64::try_from($plan.range.end - $plan.range.start).unwrap_or(i64::MAX));
        $out.content_range = $plan.content_range.clone();
        $out.parts_count = $plan.parts_count;
        $out.e_tag = Some(convert::etag(&v.etag));
        $out.last_modified = Some(convert::timestamp(v.last_modified));
        $out.metadata = convert::user_metadata(&v.user);
        $out.version_id = convert::shown_version_id(&v.version_id);
        $out.content_type = h.content_type;
        $out.content_encoding = h.content_encoding;
        $out.content_disposition = h.content_disposition;
        $out.content_language = h.content_language;
        $out.cache_control = h.cache_control;
        $out.expires = h.expires;
        $out.website_redirect_location = h.website_redirect;
        $out.storage_class = v.system.storage_class.clone().map(StorageClass::from);
        if $checksums && $plan.content_range.is_none() {
            let sums = convert::checksum_fields(&v.checksums);
            $out.checksum_type = sums.checksum_type.clone();
            convert::set_checksums!($out, sums);
        }
    }};
}

fn checksums_wanted(mode: Option<&ChecksumMode>) -> bool {
    mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED))
}

/// Resolves a GET or HEAD input (their types differ, their fields agree)
/// into its read plan and `response-*` overrides.
macro_rules! prepare_read {
    ($gw:expr, $i:expr) => {{
        let conds = ReadConditions {
            if_match: $i.if_match,
            if_none_match: $i.if_none_match,
            if_modified_since: $i.if_modified_since,
            if_unmodified_since: $i.if_unmodified_since,
        };
        let target = VersionRef {
            bucket: &$i.bucket,
            key: &$i.key,
            version_id: $i.version_id.as_deref(),
        };
        let plan = plan_read($gw, target, &conds, $i.range, $i.part_number).await?;
        let overrides = Overrides {
            content_type: $i.response_content_type,
            content_encoding: $i.response_content_encoding,
            content_disposition: $i.response_content_disposition,
            content_language: $i.response_content_language,
            cache_control: $i.response_cache_control,
            expires: $i.response_expires,
        };
        (plan, overrides)
    }};
}

pub(crate) async fn get_object(
    gw: &Gateway,
    req: S3Request<GetObjectInput>,
) -> S3Result<S3Response<GetObjectOutput>> {
    let i = req.input;
    let (plan, overrides) = prepare_read!(gw, i);
    let stream = gw.data.read(&plan.version, plan.range.clone()).await?;
    crate::metrics::bytes_out(plan.range.end - plan.range.start);
    let mut out = GetObjectOutput {
        body: Some(body::blob(stream)),
        tag_count: (!plan.version.tags.is_empty())
            .then(|| i32::try_from(plan.version.tags.len()).unwrap_or(i32::MAX)),
        ..Default::default()
    };
    describe!(
        out,
        plan,
        Headers::of(&plan.version, overrides),
        checksums_wanted(i.checksum_mode.as_ref())
    );
    describe_lock!(out, gw.lock_of(&plan.version).await?);
    out.expiration = gw
        .expiration_of(&plan.version, i.version_id.is_some())
        .await?;
    Ok(S3Response::new(out))
}

pub(crate) async fn head_object(
    gw: &Gateway,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let i = req.input;
    let (plan, overrides) = prepare_read!(gw, i);
    let mut out = HeadObjectOutput::default();
    describe!(
        out,
        plan,
        Headers::of(&plan.version, overrides),
        checksums_wanted(i.checksum_mode.as_ref())
    );
    describe_lock!(out, gw.lock_of(&plan.version).await?);
    out.expiration = gw
        .expiration_of(&plan.version, i.version_id.is_some())
        .await?;
    Ok(S3Response::new(out))
}

/// The outcome of deleting one key (or version).
struct Deleted {
    version_id: Option<String>,
    delete_marker: bool,
}

/// What a delete addresses, beyond the bucket.
struct DeleteTarget {
    key: String,
    version_id: Option<String>,
    precondition: Option<Precondition>,
    /// The caller may and asked to bypass governance retention.
    bypass_governance: bool,
}

async fn delete_one(
    gw: &Gateway,
    owner: &str,
    bucket: &str,
    target: DeleteTarget,
) -> S3Result<Deleted> {
    let DeleteTarget {
        key,
        version_id,
        precondition,
        bypass_governance,
    } = target;
    let cmd = match &version_id {
        Some(id) if bypass_governance => Command::DeleteObjectBypassingGovernance {
            bucket: bucket.to_owned(),
            key,
            version_id: id.clone(),
            now: ids::now_millis(),
            precondition,
        },
        _ => Command::DeleteObject {
            bucket: bucket.to_owned(),
            key,
            version_id: version_id.clone(),
            marker_version_id: ids::version_id(),
            now: ids::now_millis(),
            owner: owner.to_owned(),
            precondition,
        },
    };
    match gw.meta().write(cmd).await {
        Ok(CommandResponse::ObjectDeleted {
            version_id,
            delete_marker,
        }) => Ok(Deleted {
            version_id,
            delete_marker,
        }),
        Ok(other) => Err(errors::internal(format!(
            "unexpected answer to a delete: {other:?}"
        ))),
        // S3 answers 204 for keys and versions that are already gone.
        Err(MetaError::Apply(ApplyError::NoSuchKey | ApplyError::NoSuchVersion)) => Ok(Deleted {
            version_id,
            delete_marker: false,
        }),
        Err(e) => Err(errors::meta(e)),
    }
}

pub(crate) async fn delete_object(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let owner = requester(&req);
    let i = req.input;
    let precondition = conditions::write_precondition(i.if_match.as_ref(), None)?;
    let bypass_governance = gw
        .bypass_governance(&owner, &i.bucket, i.bypass_governance_retention)
        .await?;
    let target = DeleteTarget {
        key: i.key,
        version_id: i.version_id,
        precondition,
        bypass_governance,
    };
    let d = delete_one(gw, &owner, &i.bucket, target).await?;
    Ok(S3Response::new(DeleteObjectOutput {
        delete_marker: d.delete_marker.then_some(true),
        version_id: d.version_id,
        ..Default::default()
    }))
}

pub(crate) async fn delete_objects(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let owner = requester(&req);
    let i = req.input;
    if i.delete.objects.len() > 1000 {
        return Err(s3_error!(MalformedXML, "at most 1000 keys per request"));
    }
    gw.bucket(&i.bucket).await?;
    let bypass_governance = gw
        .bypass_governance(&owner, &i.bucket, i.bypass_governance_retention)
        .await?;
    let quiet = i.delete.quiet.unwrap_or(false);
    let outcomes: Vec<(ObjectIdentifier, S3Result<Deleted>)> =
        futures::stream::iter(i.delete.objects)
            .map(|obj| {
                let (owner, bucket) = (&owner, &i.bucket);
                async move {
                    let target = DeleteTarget {
                        key: obj.key.clone(),
                        version_id: obj.version_id.clone(),
                        precondition: None,
                        bypass_governance,
                    };
                    let result = delete_one(gw, owner, bucket, target).await;
                    (obj, result)
                }
            })
            .buffered(DELETE_CONCURRENCY)
            .collect()
            .await;
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for (obj, result) in outcomes {
        match result {
            Ok(d) if !quiet => deleted.push(DeletedObject {
                delete_marker: d.delete_marker.then_some(true),
                delete_marker_version_id: d.delete_marker.then(|| d.version_id.clone()).flatten(),
                key: Some(obj.key),
                version_id: obj.version_id,
            }),
            Ok(_) => {}
            Err(e) => failed.push(Error {
                code: Some(e.code().as_str().to_owned()),
                key: Some(obj.key),
                message: e.message().map(str::to_owned),
                version_id: obj.version_id,
            }),
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: Some(failed),
        ..Default::default()
    }))
}

pub(crate) async fn get_object_attributes(
    gw: &Gateway,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let i = req.input;
    let v = gw
        .data
        .lookup(VersionRef {
            bucket: &i.bucket,
            key: &i.key,
            version_id: i.version_id.as_deref(),
        })
        .await?;
    let wants = |name: &str| {
        i.object_attributes
            .iter()
            .any(|a| a.as_str().eq_ignore_ascii_case(name))
    };
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(convert::timestamp(v.last_modified)),
        version_id: convert::shown_version_id(&v.version_id),
        ..Default::default()
    };
    if wants(ObjectAttributes::ETAG) {
        out.e_tag = Some(convert::etag(&v.etag));
    }
    if wants(ObjectAttributes::CHECKSUM) && !v.checksums.is_empty() {
        out.checksum = Some(convert::checksum_fields(&v.checksums));
    }
    if wants(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(i64::try_from(v.size).unwrap_or(i64::MAX));
    }
    if wants(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(convert::storage_class(v.system.storage_class.as_deref()));
    }
    if wants(ObjectAttributes::OBJECT_PARTS)
        && v.etag.contains('-')
        && let ObjectData::Parts(parts) = &v.data
    {
        let marker = i.part_number_marker.unwrap_or(0);
        let max = usize::try_from(i.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let after: Vec<&PartData> = parts
            .iter()
            .filter(|p| i64::from(p.number) > i64::from(marker))
            .collect();
        let page = &after[..after.len().min(max)];
        let truncated = after.len() > page.len();
        out.object_parts = Some(GetObjectAttributesParts {
            is_truncated: Some(truncated),
            max_parts: Some(i32::try_from(max).unwrap_or(1000)),
            next_part_number_marker: page
                .last()
                .filter(|_| truncated)
                .and_then(|p| i32::try_from(p.number).ok()),
            part_number_marker: Some(marker),
            total_parts_count: Some(i32::try_from(parts.len()).unwrap_or(i32::MAX)),
            parts: Some(
                page.iter()
                    .map(|p| {
                        let mut part = ObjectPart {
                            part_number: i32::try_from(p.number).ok(),
                            size: i64::try_from(p.size).ok(),
                            ..Default::default()
                        };
                        convert::set_checksums!(part, convert::checksum_fields(&p.checksums));
                        part
                    })
                    .collect(),
            ),
        });
    }
    Ok(S3Response::new(out))
}
