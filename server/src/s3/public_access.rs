//! A bucket's public access block: `Get`/`Put`/`DeletePublicAccessBlock`.
//! Its flags act elsewhere: `BlockPublicPolicy` in the state machine (a
//! public bucket policy is refused with `AccessDenied`),
//! `RestrictPublicBuckets` in [`crate::auth`] (while the policy is public,
//! it allows nothing to unsigned requests).

use http::StatusCode;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use tessera_raft::access::{self, PublicAccessBlock};
use tessera_raft::command::BucketUpdate;

use super::Gateway;
use super::errors;

fn no_configuration() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
        "The public access block configuration was not found",
    );
    e.set_status_code(StatusCode::NOT_FOUND);
    e
}

pub(crate) async fn put_public_access_block(
    gw: &Gateway,
    req: S3Request<PutPublicAccessBlockInput>,
) -> S3Result<S3Response<PutPublicAccessBlockOutput>> {
    let i = req.input;
    let c = i.public_access_block_configuration;
    let block = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    gw.update_bucket(&i.bucket, BucketUpdate::PublicAccessBlock(Some(block)))
        .await?;
    Ok(S3Response::new(PutPublicAccessBlockOutput {}))
}

pub(crate) async fn get_public_access_block(
    gw: &Gateway,
    req: S3Request<GetPublicAccessBlockInput>,
) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
    let bucket = gw.bucket(&req.input.bucket).await?;
    let block = access::public_access_block(&bucket)
        .map_err(errors::meta)?
        .ok_or_else(no_configuration)?;
    Ok(S3Response::new(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(block.block_public_acls),
            block_public_policy: Some(block.block_public_policy),
            ignore_public_acls: Some(block.ignore_public_acls),
            restrict_public_buckets: Some(block.restrict_public_buckets),
        }),
    }))
}

pub(crate) async fn delete_public_access_block(
    gw: &Gateway,
    req: S3Request<DeletePublicAccessBlockInput>,
) -> S3Result<S3Response<DeletePublicAccessBlockOutput>> {
    gw.update_bucket(&req.input.bucket, BucketUpdate::PublicAccessBlock(None))
        .await?;
    Ok(S3Response::new(DeletePublicAccessBlockOutput {}))
}
