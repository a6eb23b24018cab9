//! Bucket policies: `Get`/`Put`/`DeleteBucketPolicy` and
//! `GetBucketPolicyStatus`. The document is checked here
//! ([`crate::policy`]; `MalformedPolicy` when it is not valid), stored as
//! sent in the bucket's settings through raft (which refuses a public one
//! while the public access block blocks public policies), and evaluated on
//! every request by [`crate::auth`].

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tessera_raft::access;
use tessera_raft::command::BucketUpdate;

use super::Gateway;
use super::errors;
use crate::policy::{Policy, PolicyError, Validation};

fn malformed(e: &PolicyError) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, e.to_string())
}

fn no_policy() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchBucketPolicy,
        "The bucket policy does not exist",
    )
}

impl Gateway {
    /// The bucket's policy document, or `NoSuchBucketPolicy`.
    async fn policy_document(&self, bucket: &str) -> S3Result<String> {
        let bucket = self.bucket(bucket).await?;
        access::bucket_policy(&bucket)
            .map_err(errors::meta)?
            .ok_or_else(no_policy)
    }
}

pub(crate) async fn put_bucket_policy(
    gw: &Gateway,
    req: S3Request<PutBucketPolicyInput>,
) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let i = req.input;
    let (text, bucket) = (i.policy.clone(), i.bucket.clone());
    // Principals must be existing keys: check them against this member's state.
    let parsed = gw
        .meta()
        .read_local(move |view| {
            let exists = |id: &str| view.access_key(id).ok().flatten().is_some();
            Ok(Policy::parse(
                &text,
                Some(&Validation {
                    bucket: &bucket,
                    key_exists: &exists,
                }),
            ))
        })
        .await
        .map_err(errors::meta)?;
    let policy = parsed.map_err(|e| malformed(&e))?;
    let update = BucketUpdate::Policy {
        document: Some(i.policy),
        public: policy.is_public(),
    };
    gw.update_bucket(&i.bucket, update).await?;
    Ok(S3Response::new(PutBucketPolicyOutput {}))
}

pub(crate) async fn get_bucket_policy(
    gw: &Gateway,
    req: S3Request<GetBucketPolicyInput>,
) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let policy = gw.policy_document(&req.input.bucket).await?;
    Ok(S3Response::new(GetBucketPolicyOutput {
        policy: Some(policy),
    }))
}

pub(crate) async fn delete_bucket_policy(
    gw: &Gateway,
    req: S3Request<DeleteBucketPolicyInput>,
) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let update = BucketUpdate::Policy {
        document: None,
        public: false,
    };
    gw.update_bucket(&req.input.bucket, update).await?;
    Ok(S3Response::new(DeleteBucketPolicyOutput {}))
}

pub(crate) async fn get_bucket_policy_status(
    gw: &Gateway,
    req: S3Request<GetBucketPolicyStatusInput>,
) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
    let text = gw.policy_document(&req.input.bucket).await?;
    let policy = Policy::parse(&text, None).map_err(|e| {
        tracing::error!(error = %e, "stored bucket policy does not parse");
        s3_error!(InternalError, "the bucket policy cannot be read")
    })?;
    Ok(S3Response::new(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(policy.is_public()),
        }),
    }))
}
