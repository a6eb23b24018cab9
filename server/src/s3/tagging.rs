//! Bucket and object tags.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};
use tessera_raft::command::{BucketUpdate, Command};
use tessera_raft::model::Tag;

use super::Gateway;
use super::convert::{self, BUCKET_TAG_LIMIT, OBJECT_TAG_LIMIT};
use super::errors;
use crate::data::VersionRef;

pub(crate) async fn get_bucket_tagging(
    gw: &Gateway,
    req: S3Request<GetBucketTaggingInput>,
) -> S3Result<S3Response<GetBucketTaggingOutput>> {
    let b = gw.bucket(&req.input.bucket).await?;
    let tags = b.tags.ok_or_else(|| s3_error!(NoSuchTagSet))?;
    Ok(S3Response::new(GetBucketTaggingOutput {
        tag_set: convert::tag_set(&tags),
    }))
}

pub(crate) async fn put_bucket_tagging(
    gw: &Gateway,
    req: S3Request<PutBucketTaggingInput>,
) -> S3Result<S3Response<PutBucketTaggingOutput>> {
    let i = req.input;
    let tags = convert::tags_in(i.tagging.tag_set, BUCKET_TAG_LIMIT)?;
    gw.update_bucket(&i.bucket, BucketUpdate::Tags(Some(tags)))
        .await?;
    Ok(S3Response::new(PutBucketTaggingOutput {}))
}

pub(crate) async fn delete_bucket_tagging(
    gw: &Gateway,
    req: S3Request<DeleteBucketTaggingInput>,
) -> S3Result<S3Response<DeleteBucketTaggingOutput>> {
    gw.update_bucket(&req.input.bucket, BucketUpdate::Tags(None))
        .await?;
    Ok(S3Response::new(DeleteBucketTaggingOutput {}))
}

impl Gateway {
    /// Replaces the tags of a version (the latest without a version id);
    /// returns the version id tagged.
    async fn set_object_tags(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<String>,
        tags: Vec<Tag>,
    ) -> S3Result<Option<String>> {
        let v = self
            .data
            .lookup(VersionRef {
                bucket,
                key,
                version_id: version_id.as_deref(),
            })
            .await?;
        self.meta()
            .write(Command::SetObjectTags {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version_id: Some(v.version_id.clone()),
                tags,
            })
            .await
            .map_err(errors::meta)?;
        Ok(convert::shown_version_id(&v.version_id))
    }
}

pub(crate) async fn get_object_tagging(
    gw: &Gateway,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let i = req.input;
    let v = gw
        .data
        .lookup(VersionRef {
            bucket: &i.bucket,
            key: &i.key,
            version_id: i.version_id.as_deref(),
        })
        .await?;
    Ok(S3Response::new(GetObjectTaggingOutput {
        tag_set: convert::tag_set(&v.tags),
        version_id: convert::shown_version_id(&v.version_id),
    }))
}

pub(crate) async fn put_object_tagging(
    gw: &Gateway,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let i = req.input;
    let tags = convert::tags_in(i.tagging.tag_set, OBJECT_TAG_LIMIT)?;
    let version_id = gw
        .set_object_tags(&i.bucket, &i.key, i.version_id, tags)
        .await?;
    Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
}

pub(crate) async fn delete_object_tagging(
    gw: &Gateway,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let i = req.input;
    let version_id = gw
        .set_object_tags(&i.bucket, &i.key, i.version_id, Vec::new())
        .await?;
    Ok(S3Response::new(DeleteObjectTaggingOutput { version_id }))
}
