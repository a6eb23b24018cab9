//! The S3 side of the load generator: a client built only from what the user
//! gave (no AWS_* environment unless asked), and the operations the workloads
//! time, each returning what it moved or a printable error.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    Delete, ObjectIdentifier,
};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::stats::Moved;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// Endpoint URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Signing region.
    pub region: String,
    /// Take credentials, region and the rest from the standard AWS
    /// environment and profile files instead (the endpoint still applies).
    pub aws_env: bool,
}

/// How requests are built: the choices that change what the client spends
/// CPU on.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions {
    /// Sign the payload's SHA-256 (`x-amz-content-sha256`) instead of
    /// sending `UNSIGNED-PAYLOAD` on PUT and UploadPart.
    pub sign_payload: bool,
    /// Send CRC32 checksums whenever the API allows them (the SDK's default,
    /// as aws-chunked trailers) instead of only when an operation requires one.
    pub checksums: bool,
    /// Use a multipart upload for objects larger than this, in parts of this size.
    pub multipart_size: Option<u64>,
    /// Parts of one multipart upload in flight at once.
    pub part_concurrency: usize,
    /// Compare every byte read by GET with what was written.
    pub verify: bool,
}

/// Builds the S3 client: path-style, no retries (a failed operation is
/// counted, not hidden), no stalled-stream cut-off.
pub async fn client(target: &Target, options: &RequestOptions) -> Client {
    let checksums = if options.checksums {
        (
            RequestChecksumCalculation::WhenSupported,
            ResponseChecksumValidation::WhenSupported,
        )
    } else {
        (
            RequestChecksumCalculation::WhenRequired,
            ResponseChecksumValidation::WhenRequired,
        )
    };
    let builder = if target.aws_env {
        let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
        aws_sdk_s3::config::Builder::from(&shared)
    } else {
        aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(target.region.clone()))
            .credentials_provider(Credentials::new(
                target.access_key.clone(),
                target.secret_key.clone(),
                None,
                None,
                "tessera-bench",
            ))
    };
    let config = builder
        .endpoint_url(target.endpoint.clone())
        .force_path_style(true)
        .request_checksum_calculation(checksums.0)
        .response_checksum_validation(checksums.1)
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    Client::from_conf(config)
}

/// Prints an SDK error with its whole chain of causes.
fn describe(error: impl std::error::Error) -> String {
    DisplayErrorContext(error).to_string()
}

/// One bucket under load, with the payload every PUT sends.
#[derive(Debug, Clone)]
pub struct BenchBucket {
    client: Client,
    name: String,
    payload: Bytes,
    options: RequestOptions,
}

impl BenchBucket {
    /// Wraps `client` for bucket `name`; every PUT sends (slices of) `payload`.
    pub fn new(client: Client, name: String, payload: Bytes, options: RequestOptions) -> Self {
        BenchBucket {
            client,
            name,
            payload,
            options,
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the bucket unless it exists; returns whether it was created.
    pub async fn ensure_exists(&self, region: &str) -> Result<bool, String> {
        if self
            .client
            .head_bucket()
            .bucket(&self.name)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        let mut create = self.client.create_bucket().bucket(&self.name);
        if region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
            {
                Ok(false)
            }
            Err(error) => Err(format!(
                "creating bucket {}: {}",
                self.name,
                describe(error)
            )),
        }
    }

    /// Uploads the payload to `key`, as a multipart upload when it is larger
    /// than the multipart size.
    pub async fn put(&self, key: &str) -> Result<Moved, String> {
        let size = self.payload.len() as u64;
        match self.options.multipart_size {
            Some(part_size) if size > part_size && part_size > 0 => {
                self.put_multipart(key, part_size).await?;
            }
            _ => {
                let request = self
                    .client
                    .put_object()
                    .bucket(&self.name)
                    .key(key)
                    .body(ByteStream::from(self.payload.clone()));
                let sent = if self.options.sign_payload {
                    request.send().await
                } else {
                    request.customize().disable_payload_signing().send().await
                };
                sent.map_err(describe)?;
            }
        }
        Ok(Moved {
            bytes: size,
            keys: 0,
        })
    }

    async fn put_multipart(&self, key: &str, part_size: u64) -> Result<(), String> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(describe)?;
        let upload_id = created
            .upload_id()
            .ok_or("CreateMultipartUpload returned no UploadId")?
            .to_owned();
        match self.upload_parts(key, &upload_id, part_size).await {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.name)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(drop)
                .map_err(describe),
            Err(error) => {
                // Best effort: the upload is already failed and counted.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.name)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(error)
            }
        }
    }

    /// Uploads the payload's parts with at most `part_concurrency` in flight.
    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        part_size: u64,
    ) -> Result<Vec<CompletedPart>, String> {
        let part_size = usize::try_from(part_size).map_err(|e| e.to_string())?;
        let mut in_flight = JoinSet::new();
        let mut parts = Vec::new();
        for (index, start) in (0..self.payload.len()).step_by(part_size).enumerate() {
            if in_flight.len() >= self.options.part_concurrency.max(1) {
                parts.push(join_part(&mut in_flight).await?);
            }
            let part_number = i32::try_from(index + 1).map_err(|e| e.to_string())?;
            let end = (start + part_size).min(self.payload.len());
            let request = self
                .client
                .upload_part()
                .bucket(&self.name)
                .key(key)
                .upload_id(upload_id)
                .part_number(part_number)
                .body(ByteStream::from(self.payload.slice(start..end)));
            let sign_payload = self.options.sign_payload;
            in_flight.spawn(async move {
                let sent = if sign_payload {
                    request.send().await
                } else {
                    request.customize().disable_payload_signing().send().await
                };
                let output = sent.map_err(describe)?;
                Ok(CompletedPart::builder()
                    .part_number(part_number)
                    .set_e_tag(output.e_tag)
                    .build())
            });
        }
        while !in_flight.is_empty() {
            parts.push(join_part(&mut in_flight).await?);
        }
        parts.sort_by_key(|part| part.part_number());
        Ok(parts)
    }

    /// Reads `key` to the end, checking its length (and bytes with `verify`).
    pub async fn get(&self, key: &str) -> Result<Moved, String> {
        let output = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(describe)?;
        let mut body = output.body;
        let mut received = 0usize;
        while let Some(chunk) = body.try_next().await.map_err(describe)? {
            if self.options.verify {
                let expected = self.payload.get(received..received + chunk.len());
                if expected != Some(&chunk[..]) {
                    return Err(format!(
                        "{key}: body differs from what was written near byte {received}"
                    ));
                }
            }
            received += chunk.len();
        }
        if received != self.payload.len() {
            return Err(format!(
                "{key}: read {received} bytes, expected {}",
                self.payload.len()
            ));
        }
        Ok(Moved {
            bytes: received as u64,
            keys: 0,
        })
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<Moved, String> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(describe)?;
        Ok(Moved::default())
    }

    /// Lists every key under `prefix`, page by page.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(describe)?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
        }
        Ok(keys)
    }

    /// Deletes every object under `prefix` with DeleteObjects, 1,000 at a time.
    pub async fn delete_all(&self, prefix: &str) -> Result<usize, String> {
        let keys = self.list(prefix).await?;
        for batch in keys.chunks(1000) {
            let objects = batch
                .iter()
                .map(|key| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .build()
                        .map_err(describe)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(describe)?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.name)
                .delete(delete)
                .send()
                .await
                .map_err(describe)?;
            if let Some(error) = output.errors().first() {
                return Err(format!(
                    "deleting {}: {}",
                    error.key().unwrap_or("?"),
                    error.message().or(error.code()).unwrap_or("unknown error")
                ));
            }
        }
        Ok(keys.len())
    }

    /// Deletes the (empty) bucket.
    pub async fn delete_bucket(&self) -> Result<(), String> {
        self.client
            .delete_bucket()
            .bucket(&self.name)
            .send()
            .await
            .map(drop)
            .map_err(describe)
    }
}

/// Waits for the next finished part upload.
async fn join_part(
    in_flight: &mut JoinSet<Result<CompletedPart, String>>,
) -> Result<CompletedPart, String> {
    match in_flight.join_next().await {
        Some(Ok(part)) => part,
        Some(Err(join_error)) => Err(format!("part upload task failed: {join_error}")),
        None => Err("no part upload in flight".to_owned()),
    }
}
