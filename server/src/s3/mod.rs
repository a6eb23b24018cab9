//! The S3 surface: [`Gateway`] implements [`s3s::S3`] by translating S3
//! requests into metadata commands and reads (tessera-raft) and shard writes
//! and reads (tessera-storage).
//!
//! One file per concept: `bucket` (bucket ops and versioning), `tagging`,
//! `cors` (settings and preflight), `cors_layer` (CORS headers on actual
//! responses), `region_check` (signatures for another region refused as S3
//! does, before s3s), `object` (single objects), `copy`, `multipart`,
//! `mpu_checksum` (object checksums of multipart uploads), `listing`,
//! `ingest` (a request body into stored, verified data), `retrieve` (stored data back out as a stream), `keys` (per-object
//! data keys), `conditions` (HTTP preconditions), `convert` (model ↔ S3
//! types), `errors` (error mapping), `ids` (version and upload ids).
//!
//! Durability order of every write: shards durable → metadata committed
//! through raft → 200. Refused commits release their shards; commits whose
//! outcome is unknown leave them to the GC.

pub(crate) mod body_limit;
mod bucket;
mod conditions;
mod convert;
mod copy;
mod cors;
mod cors_layer;
pub(crate) mod errors;
mod ids;
mod ingest;
pub(crate) mod keys;
mod listing;
mod mpu_checksum;
mod multipart;
mod object;
mod region_check;
mod retrieve;
mod tagging;

use std::sync::Arc;
use std::time::Duration;

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use tessera_raft::node::MetaNode;
use tessera_storage::{Geometry, MasterKey, MemoryBudget};

use crate::leases::ReadLeases;
use crate::placement::StoreSet;

pub use cors::CorsRoute;
pub use cors_layer::CorsLayer;
pub use region_check::RegionCheck;

/// Tunables of the gateway.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Erasure code and block size of new segments.
    pub geometry: Geometry,
    /// Objects up to this many bytes are sealed into the metadata instead of sharded.
    pub inline_threshold: usize,
    /// Smallest size of every multipart part but the last (S3: 5 MiB).
    pub min_part_size: u64,
    /// Region reported by `GetBucketLocation` and expected in signatures.
    pub region: String,
    /// Stripes encoded ahead of the slowest shard write (memory bound per upload).
    pub stripes_in_flight: usize,
    /// How long a read waits for one shard before using parity instead.
    pub shard_timeout: Duration,
    /// Memory shared by all uploads' stripes in flight.
    pub write_budget: MemoryBudget,
    /// Memory shared by all reads' stripes, from the stores until the
    /// client has been sent them.
    pub read_budget: MemoryBudget,
    /// An upload that sends no body bytes for this long fails with
    /// `RequestTimeout` (and gives back its share of the write budget).
    pub body_idle_timeout: Duration,
    /// Shards of a segment that must be durable before a write succeeds
    /// (`None`: k + 1, or k + m when there is no parity); the rest are
    /// queued for repair.
    pub write_quorum: Option<usize>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            geometry: Geometry::default(),
            inline_threshold: tessera_storage::DEFAULT_INLINE_THRESHOLD,
            min_part_size: 5 * 1024 * 1024,
            region: "us-east-1".to_owned(),
            stripes_in_flight: 2,
            shard_timeout: Duration::from_secs(10),
            write_budget: MemoryBudget::new(crate::config::DEFAULT_WRITE_BUFFER),
            read_budget: MemoryBudget::new(crate::config::DEFAULT_READ_BUFFER),
            body_idle_timeout: Duration::from_secs(30),
            write_quorum: None,
        }
    }
}

/// Everything a [`Gateway`] needs.
pub struct GatewayDeps {
    /// The metadata member this gateway talks to.
    pub meta: MetaNode,
    /// The shard stores.
    pub stores: StoreSet,
    /// The cluster master key that wraps every object's data key.
    pub master_key: Arc<MasterKey>,
    /// Tunables.
    pub settings: GatewaySettings,
    /// Leases of the reads in flight (GC spares their segments).
    pub leases: ReadLeases,
}

/// The S3 gateway: an [`s3s::S3`] implementation over Tessera's metadata and storage.
pub struct Gateway {
    meta: MetaNode,
    stores: StoreSet,
    master_key: Arc<MasterKey>,
    settings: GatewaySettings,
    leases: ReadLeases,
}

impl Gateway {
    /// A gateway over these parts.
    pub fn new(deps: GatewayDeps) -> Self {
        Self {
            meta: deps.meta,
            stores: deps.stores,
            master_key: deps.master_key,
            settings: deps.settings,
            leases: deps.leases,
        }
    }

    /// The settings this gateway runs with.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
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
}
