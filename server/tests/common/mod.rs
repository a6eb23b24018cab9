//! Shared helpers of the integration tests: `aws-sdk-s3` clients for
//! in-process [`TestServer`]s, and the shard files on their disks.
//!
//! Use from a test file with `mod common;`.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_s3::error::ProvideErrorMetadata;
use tessera_server::testing::TestServer;

pub mod cluster;
pub mod process;

pub use tessera_server::testing::{TEST_ACCESS_KEY, TEST_SECRET_KEY};

/// A path-style SDK client of `server` signed with its root key.
pub fn s3_client(server: &TestServer) -> aws_sdk_s3::Client {
    let creds = server.credentials();
    client_for(&server.s3_url(), &creds.access_key, &creds.secret_key)
}

/// A path-style SDK client of the S3 endpoint `url` with these credentials.
pub fn client_for(url: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(config_builder(url, access_key, secret_key).build())
}

/// The SDK configuration behind [`client_for`], to adjust before building
/// (virtual-host style, a custom HTTP client for TLS, …). It never reads
/// the environment (`AWS_*` variables, profiles).
pub fn config_builder(
    url: &str,
    access_key: &str,
    secret_key: &str,
) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(credentials(access_key, secret_key))
        .force_path_style(true)
}

/// Static credentials for SDK clients in tests (S3 and STS alike).
pub fn credentials(access_key: &str, secret_key: &str) -> Credentials {
    Credentials::new(access_key, secret_key, None, None, "tessera-test")
}

/// An HTTPS client for the SDK that trusts exactly the PEM certificate `ca_pem`.
pub fn https_client_trusting(ca_pem: &str) -> SharedHttpClient {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(ca_pem.as_bytes().to_vec());
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap(),
        )
        .build_https()
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, written
/// with its key into `dir`: its PEM, and the files for a server's TLS.
pub fn self_signed_tls(dir: &Path) -> (String, tessera_server::config::TlsFiles) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let files = tessera_server::config::TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let cert_pem = cert.cert.pem();
    std::fs::write(&files.cert, &cert_pem).unwrap();
    std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
    (cert_pem, files)
}

/// A plain HTTP GET: status and body text.
pub async fn http_get(url: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.get(url.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The S3 error code of an SDK call (`"no error"` when it succeeded).
pub fn code<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "no error".to_owned(),
        Err(e) => e.code().unwrap_or("no code").to_owned(),
    }
}

/// HTTP status, S3 error code and `Retry-After` header of a refused SDK call.
pub fn refusal<T, E: ProvideErrorMetadata>(
    result: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) -> (u16, String, Option<String>) {
    let Err(err) = result else {
        panic!("the request succeeded");
    };
    let code = err.code().unwrap_or("no code").to_owned();
    let raw = err.raw_response().expect("an HTTP response");
    let retry_after = raw.headers().get("retry-after").map(str::to_owned);
    (raw.status().as_u16(), code, retry_after)
}

/// The error code of a GET (`"no error"` when it succeeds).
pub async fn get_code(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    code(client.get_object().bucket(bucket).key(key).send().await)
}

/// The names `ListBuckets` shows this client.
pub async fn bucket_names(client: &aws_sdk_s3::Client) -> Vec<String> {
    let out = client.list_buckets().send().await.unwrap();
    out.buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect()
}

/// Every file and directory below `dir` (not `dir` itself), depth first;
/// empty if `dir` does not exist.
pub fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if path.is_dir() {
            out.extend(tree(&path));
        }
    }
    out
}

/// Every shard file under `<data-dir>/disks/disk-N/shards`, sorted.
pub fn disk_shards(data_dir: &Path, disk: usize) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = tree(&data_dir.join(format!("disks/disk-{disk}/shards")))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// The identity file of `<data-dir>/disks/disk-N`.
pub fn store_identity(data_dir: &Path, disk: usize) -> tessera_storage::store::StoreIdentity {
    let root = data_dir.join(format!("disks/disk-{disk}"));
    tessera_storage::store::StoreIdentity::read(&root)
        .unwrap()
        .unwrap_or_else(|| panic!("{} has no store id", root.display()))
}

/// The store id of `<data-dir>/disks/disk-N`, from its identity file.
pub fn store_id(data_dir: &Path, disk: usize) -> String {
    store_identity(data_dir, disk).id
}

/// Every shard file on the six disks of the embedded default, sorted.
pub fn shard_files(data_dir: &Path) -> Vec<PathBuf> {
    (1..=6).flat_map(|n| disk_shards(data_dir, n)).collect()
}

/// The value of an unlabelled metric, or of one labelled series written
/// out in full (`name{label="v"}`), from a server's `/metrics`.
pub async fn metric(server: &TestServer, series: &str) -> Option<f64> {
    let (_, text) = http_get(&format!("{}/metrics", server.admin_url())).await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `check` every 100 ms for up to `secs` seconds; true once it holds.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Turns versioning on for `bucket`.
pub async fn enable_versioning(client: &aws_sdk_s3::Client, bucket: &str) {
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// A base port with the `count` ports from it free on loopback, below the
/// kernel's ephemeral range (so no port-0 listener of another test takes
/// one meanwhile), picked at random (so parallel tests do not collide).
pub fn free_ports(count: u16) -> u16 {
    for _ in 0..200 {
        let base = rand::random_range(20_000..32_000);
        let bound: Result<Vec<_>, _> = (base..base + count)
            .map(|port| std::net::TcpListener::bind(("127.0.0.1", port)))
            .collect();
        if bound.is_ok() {
            return base;
        }
    }
    panic!("no {count} free ports in a row");
}

/// PUTs `body` as `bucket/key`, which must succeed.
pub async fn put_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

/// The whole body of an object.
pub async fn get_bytes(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

/// Waits (up to 10 s) until the shard files are exactly `expected`.
pub async fn wait_for_shards(data_dir: &Path, expected: &[PathBuf]) {
    let converged = eventually(10, || async { shard_files(data_dir) == expected }).await;
    if !converged {
        assert_eq!(shard_files(data_dir), expected, "gc did not converge");
    }
}
