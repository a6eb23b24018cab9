//! The S3 surface: [`Gateway`] implements [`s3s::S3`] by translating S3
//! requests into metadata commands and reads (tessera-raft) and calls of the
//! data layer ([`crate::data`]), which stores, reads and commits object data.
//!
//! One file per concept: `bucket` (bucket ops and versioning), `tagging`,
//! `cors` (settings and preflight), `cors_layer` (CORS headers on actual
//! responses), `region_check` (signatures for another region refused as S3
//! does, before s3s), `bucket_policy` (bucket policies), `public_access`
//! (public access block), `acl` (ACLs and ownership controls), `object`
//! (single objects), `object_lock` (retention and legal holds), `lifecycle`
//! (lifecycle rules and `x-amz-expiration`), `copy`, `multipart`,
//! `mpu_checksum` (object checksums of multipart uploads), `listing`,
//! `body` (request and response bodies between s3s and the data layer),
//! `integrity` (a request's checksum claims), `conditions` (HTTP
//! preconditions), `convert` (model ↔ S3 types), `errors` (error mapping,
//! data-layer errors included), `body_limit` (XML body limit),
//! `post_object` (browser uploads, before s3s), `post_form` (their
//! multipart form, streamed) and `post_policy` (their policy document).

pub(crate) mod acl;
mod body;
pub(crate) mod body_limit;
mod bucket;
mod bucket_policy;
mod conditions;
mod convert;
mod copy;
mod cors;
mod cors_layer;
pub(crate) mod errors;
mod integrity;
mod lifecycle;
mod listing;
mod mpu_checksum;
mod multipart;
mod object;
mod object_lock;
pub(crate) mod post_form;
mod post_object;
mod post_policy;
mod public_access;
mod region_check;
mod tagging;

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use tessera_raft::node::MetaNode;

use crate::data::DataPlane;

pub use cors::CorsRoute;
pub use cors_layer::CorsLayer;
pub use post_object::PostObject;
pub use region_check::RegionCheck;

/// Tunables of the S3 surface (the data path's are [`crate::data::DataSettings`]).
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Smallest size of every multipart part but the last (S3: 5 MiB).
    pub min_part_size: u64,
    /// Region reported by `GetBucketLocation` and expected in signatures.
    pub region: String,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            min_part_size: 5 * 1024 * 1024,
            region: "us-east-1".to_owned(),
        }
    }
}

/// The S3 gateway: an [`s3s::S3`] implementation over Tessera's metadata
/// and data layer. Cheap to clone: clones share the data plane.
#[derive(Clone)]
pub struct Gateway {
    data: DataPlane,
    settings: GatewaySettings,
}

impl Gateway {
    /// A gateway over a data plane.
    pub fn new(data: DataPlane, settings: GatewaySettings) -> Self {
        Self { data, settings }
    }

    /// The settings this gateway runs with.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// The metadata member, for the operations that only touch metadata
    /// (buckets, listings, tags, deletes).
    fn meta(&self) -> &MetaNode {
        self.data.meta()
    }
}

/// Forwards each implemented `S3` operation to the function of the same name
/// in the module that owns it.
macro_rules! operations {
    ($($module:ident :: $op:ident ($input:ident) -> $output:ident;)*) => {
        #[async_trait::async_trait]
        impl S3 for Gateway {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    $module::$op(self, req).await
                }
            )*
        }
    };
}

operations! {
    bucket::create_bucket(CreateBucketInput) -> CreateBucketOutput;
    bucket::head_bucket(HeadBucketInput) -> HeadBucketOutput;
    bucket::delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
    bucket::list_buckets(ListBucketsInput) -> ListBucketsOutput;
    bucket::get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
    bucket::get_bucket_versioning(GetBucketVersioningInput) -> GetBucketVersioningOutput;
    bucket::put_bucket_versioning(PutBucketVersioningInput) -> PutBucketVersioningOutput;
    tagging::get_bucket_tagging(GetBucketTaggingInput) -> GetBucketTaggingOutput;
    tagging::put_bucket_tagging(PutBucketTaggingInput) -> PutBucketTaggingOutput;
    tagging::delete_bucket_tagging(DeleteBucketTaggingInput) -> DeleteBucketTaggingOutput;
    tagging::get_object_tagging(GetObjectTaggingInput) -> GetObjectTaggingOutput;
    tagging::put_object_tagging(PutObjectTaggingInput) -> PutObjectTaggingOutput;
    tagging::delete_object_tagging(DeleteObjectTaggingInput) -> DeleteObjectTaggingOutput;
    cors::get_bucket_cors(GetBucketCorsInput) -> GetBucketCorsOutput;
    cors::put_bucket_cors(PutBucketCorsInput) -> PutBucketCorsOutput;
    cors::delete_bucket_cors(DeleteBucketCorsInput) -> DeleteBucketCorsOutput;
    object::put_object(PutObjectInput) -> PutObjectOutput;
    object::get_object(GetObjectInput) -> GetObjectOutput;
    object::head_object(HeadObjectInput) -> HeadObjectOutput;
    object::delete_object(DeleteObjectInput) -> DeleteObjectOutput;
    object::delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
    copy::copy_object(CopyObjectInput) -> CopyObjectOutput;
    object::get_object_attributes(GetObjectAttributesInput) -> GetObjectAttributesOutput;
    listing::list_objects(ListObjectsInput) -> ListObjectsOutput;
    listing::list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
    listing::list_object_versions(ListObjectVersionsInput) -> ListObjectVersionsOutput;
    listing::list_multipart_uploads(ListMultipartUploadsInput) -> ListMultipartUploadsOutput;
    listing::list_parts(ListPartsInput) -> ListPartsOutput;
    multipart::create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
    multipart::upload_part(UploadPartInput) -> UploadPartOutput;
    multipart::upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
    multipart::complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput;
    multipart::abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    object_lock::put_object_lock_configuration(PutObjectLockConfigurationInput) -> PutObjectLockConfigurationOutput;
    object_lock::get_object_lock_configuration(GetObjectLockConfigurationInput) -> GetObjectLockConfigurationOutput;
    object_lock::put_object_retention(PutObjectRetentionInput) -> PutObjectRetentionOutput;
    object_lock::get_object_retention(GetObjectRetentionInput) -> GetObjectRetentionOutput;
    object_lock::put_object_legal_hold(PutObjectLegalHoldInput) -> PutObjectLegalHoldOutput;
    object_lock::get_object_legal_hold(GetObjectLegalHoldInput) -> GetObjectLegalHoldOutput;
    lifecycle::put_bucket_lifecycle_configuration(PutBucketLifecycleConfigurationInput) -> PutBucketLifecycleConfigurationOutput;
    lifecycle::get_bucket_lifecycle_configuration(GetBucketLifecycleConfigurationInput) -> GetBucketLifecycleConfigurationOutput;
    lifecycle::delete_bucket_lifecycle(DeleteBucketLifecycleInput) -> DeleteBucketLifecycleOutput;
    bucket_policy::put_bucket_policy(PutBucketPolicyInput) -> PutBucketPolicyOutput;
    bucket_policy::get_bucket_policy(GetBucketPolicyInput) -> GetBucketPolicyOutput;
    bucket_policy::delete_bucket_policy(DeleteBucketPolicyInput) -> DeleteBucketPolicyOutput;
    bucket_policy::get_bucket_policy_status(GetBucketPolicyStatusInput) -> GetBucketPolicyStatusOutput;
    public_access::put_public_access_block(PutPublicAccessBlockInput) -> PutPublicAccessBlockOutput;
    public_access::get_public_access_block(GetPublicAccessBlockInput) -> GetPublicAccessBlockOutput;
    public_access::delete_public_access_block(DeletePublicAccessBlockInput) -> DeletePublicAccessBlockOutput;
    acl::put_bucket_acl(PutBucketAclInput) -> PutBucketAclOutput;
    acl::get_bucket_acl(GetBucketAclInput) -> GetBucketAclOutput;
    acl::put_object_acl(PutObjectAclInput) -> PutObjectAclOutput;
    acl::get_object_acl(GetObjectAclInput) -> GetObjectAclOutput;
    acl::put_bucket_ownership_controls(PutBucketOwnershipControlsInput) -> PutBucketOwnershipControlsOutput;
    acl::get_bucket_ownership_controls(GetBucketOwnershipControlsInput) -> GetBucketOwnershipControlsOutput;
    acl::delete_bucket_ownership_controls(DeleteBucketOwnershipControlsInput) -> DeleteBucketOwnershipControlsOutput;
}
