//! The S3 surface of the gateway, driven with `aws-sdk-s3` against an
//! in-process server on a random loopback port. One test binary, one module
//! per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod acl;
mod bucket;
mod conditional;
mod copy;
mod cors;
mod lifecycle;
mod listing;
mod multipart;
mod object;
mod object_lock;
mod policy;
mod post_object;
mod public_access;
mod region;
mod versioning;

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::StalledStreamProtectionConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use tessera_server::Config;
use tessera_server::testing::TestServer;

/// A fresh server and a client of it. The shared build machine can be so
/// loaded that a body pauses for seconds, so the SDK's stalled-stream guard
/// gets a long grace period.
pub async fn setup() -> (TestServer, Client) {
    setup_with(|_| {}).await
}

/// [`setup`] with the server's configuration adjusted first.
pub async fn setup_with(adjust: impl FnOnce(&mut Config)) -> (TestServer, Client) {
    let server = TestServer::start_with(adjust).await.unwrap();
    let creds = server.credentials();
    let config = common::config_builder(&server.s3_url(), &creds.access_key, &creds.secret_key)
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(Duration::from_secs(60))
                .build(),
        )
        .build();
    (server, Client::from_conf(config))
}

/// A fresh server, a client, and an empty bucket `name`.
pub async fn with_bucket(name: &str) -> (TestServer, Client) {
    let (server, client) = setup().await;
    client.create_bucket().bucket(name).send().await.unwrap();
    (server, client)
}

/// The S3 error code of a failed SDK call (`"no error"` on success).
pub fn code<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "no error".to_owned(),
        Err(e) => e.code().unwrap_or("no code").to_owned(),
    }
}

/// The HTTP status of a failed SDK call.
pub fn status<T, R>(
    result: Result<T, aws_sdk_s3::error::SdkError<R, aws_sdk_s3::config::http::HttpResponse>>,
) -> u16 {
    match result {
        Ok(_) => 200,
        Err(e) => e.raw_response().map_or(0, |r| r.status().as_u16()),
    }
}

/// Stores `data` at `bucket/key`.
pub async fn put(client: &Client, bucket: &str, key: &str, data: &[u8]) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap();
}

/// Stores `body` at `bucket/key` in a versioned bucket; returns the new
/// version id.
pub async fn put_version(client: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned()
}

/// Reads `bucket/key` whole.
pub async fn get(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// An unsigned (anonymous) request: status and body.
pub async fn anonymous(method: &str, url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;
    let client: HttpClient<_, Full<bytes::Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(bytes::Bytes::copy_from_slice(body)))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

/// The `<Code>` of an S3 error body (`""` when there is none).
pub fn xml_code(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_default()
}

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Hex MD5 of bytes.
pub fn md5_hex(data: &[u8]) -> String {
    use s3s::crypto::Checksum as _;
    hex_string(&s3s::crypto::Md5::checksum(data))
}

/// Lower-case hex.
pub fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
