//! A small S3 client for one bucket: path-style requests over HTTP/1.1
//! (hyper's pooled client; TLS by rustls with aws-lc-rs), each signed with
//! [`Signer`] and bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;

use super::S3BucketConfig;
use super::sigv4::{EMPTY_SHA256, Signer, canonical_query, uri_encode};
use super::xml::{self, ErrorDoc};

/// The header naming the payload's hash (or that it is not signed).
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
/// Largest response body read whole (listings, errors, upload ids).
const MAX_SMALL_BODY: usize = 16 << 20;

/// Why a request to a bucket failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// The store's configuration cannot be used.
    #[error("bad bucket store configuration: {0}")]
    Config(String),
    /// The request could not be sent or its answer not read.
    #[error("request to {endpoint} failed: {reason}")]
    Transport {
        /// The endpoint called.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the store's timeout.
    #[error("no answer from {0} in time")]
    Timeout(String),
    /// The bucket refused the request.
    #[error("{status} {code}: {message}")]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The S3 error code, if the answer had one.
        code: String,
        /// The explanation, if the answer had one.
        message: String,
    },
    /// The answer was not what S3 sends.
    #[error("unexpected answer: {0}")]
    Answer(String),
    /// The store's identity object is unusable: the store refuses to open
    /// rather than take a new id (which would orphan its shards).
    #[error(transparent)]
    Identity(crate::error::StorageError),
}

impl S3Error {
    /// Whether trying again later may succeed: no answer came, or the
    /// service failed on its side (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            S3Error::Transport { .. } | S3Error::Timeout(_) => true,
            S3Error::Status { status, .. } => status.is_server_error(),
            S3Error::Config(_) | S3Error::Answer(_) | S3Error::Identity(_) => false,
        }
    }
}

/// One request: method, object key (`None`: the bucket itself), query
/// parameters, extra headers, body.
pub(super) struct Call<'a> {
    pub method: Method,
    pub key: Option<&'a str>,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl<'a> Call<'a> {
    /// A `method` call on object `key` (or the bucket) without a body.
    pub fn new(method: Method, key: Option<&'a str>) -> Self {
        Call {
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }
}

/// The bucket's endpoint and how to reach and sign for it.
pub(super) struct Client {
    http: HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    bucket: String,
    signer: Signer,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint())
            .field("bucket", &self.bucket)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the bucket `config` names. Nothing is sent yet.
    pub fn new(config: &S3BucketConfig) -> Result<Client, S3Error> {
        let uri: Uri = config
            .endpoint
            .parse()
            .map_err(|e| S3Error::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(S3Error::Config(format!(
                "endpoint {:?} must be http://host[:port] or https://host[:port]",
                config.endpoint
            )));
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(S3Error::Config(format!(
                "endpoint {:?} must have no path: the bucket goes in `bucket`",
                config.endpoint
            )));
        }
        if config.bucket.is_empty() || config.bucket.contains('/') {
            return Err(S3Error::Config(format!(
                "bucket name {:?} is not valid",
                config.bucket
            )));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| S3Error::Config(e.to_string()))?
        .with_root_certificates(trust_roots(config)?)
        .with_no_client_auth();
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Client {
            http,
            scheme: scheme.clone(),
            authority: authority.clone(),
            bucket: config.bucket.clone(),
            signer: Signer::new(&config.access_key, &config.secret_key, &config.region, "s3"),
            timeout: config.timeout,
        })
    }

    /// `scheme://host[:port]` of the bucket's endpoint.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// How long a request may wait for its answer (and a download for
    /// each piece of its body).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `call`, signed, and returns the answer's head (any status)
    /// once it arrived within the timeout. A body goes with its SHA-256
    /// in the signature, so a body changed on the way is refused.
    pub async fn send(&self, call: Call<'_>) -> Result<Response<Incoming>, S3Error> {
        let path = match call.key {
            Some(key) => format!("/{}/{}", self.bucket, uri_encode(key, true)),
            None => format!("/{}", self.bucket),
        };
        let query = canonical_query(&call.query);
        let path_and_query = if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        };
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| S3Error::Config(format!("request URI: {e}")))?;
        let payload_hash = if call.body.is_empty() {
            EMPTY_SHA256.to_owned()
        } else {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(&call.body))
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(self.authority.as_str())
                .map_err(|e| S3Error::Config(format!("host header: {e}")))?,
        );
        headers.insert(
            X_AMZ_CONTENT_SHA256,
            HeaderValue::from_str(&payload_hash).map_err(|e| S3Error::Answer(e.to_string()))?,
        );
        for (name, value) in call.headers {
            headers.insert(name, value);
        }
        self.signer.sign(
            &call.method,
            &path,
            &query,
            &mut headers,
            &payload_hash,
            time::OffsetDateTime::now_utc(),
        );
        let mut request = Request::builder()
            .method(call.method)
            .uri(uri)
            .body(Full::new(call.body))
            .map_err(|e| S3Error::Config(format!("request: {e}")))?;
        *request.headers_mut() = headers;
        match tokio::time::timeout(self.timeout, self.http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(S3Error::Transport {
                endpoint: self.endpoint(),
                reason: error_chain(&e),
            }),
            Err(_) => Err(S3Error::Timeout(self.endpoint())),
        }
    }

    /// Sends `call` and reads its whole (small) answer; a status but 2xx is
    /// the error it names.
    pub async fn call(&self, call: Call<'_>) -> Result<(HeaderMap, Bytes), S3Error> {
        let response = self.send(call).await?;
        let status = response.status();
        let (head, body) = response.into_parts();
        let body = self.read_small(body).await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        Ok((head.headers, body))
    }

    /// The whole of a small answer's body, within the timeout.
    pub async fn read_small(&self, body: Incoming) -> Result<Bytes, S3Error> {
        let collect = Limited::new(body, MAX_SMALL_BODY).collect();
        match tokio::time::timeout(self.timeout, collect).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) => Err(S3Error::Transport {
                endpoint: self.endpoint(),
                reason: format!("reading the answer: {e}"),
            }),
            Err(_) => Err(S3Error::Timeout(self.endpoint())),
        }
    }
}

/// The error an answer of `status` with `body` stands for.
pub(super) fn status_error(status: StatusCode, body: &[u8]) -> S3Error {
    let doc = xml::error_in(&String::from_utf8_lossy(body)).unwrap_or_default();
    S3Error::Status {
        status,
        code: doc.code,
        message: doc.message,
    }
}

/// What the error of a `200 OK` answer's body is, if it holds one.
pub(super) fn error_in_body(body: &[u8]) -> Option<S3Error> {
    xml::error_in(&String::from_utf8_lossy(body)).map(|ErrorDoc { code, message }| {
        S3Error::Status {
            status: StatusCode::OK,
            code,
            message,
        }
    })
}

/// `e` and its sources, joined: hyper's own message alone says little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The certificates a TLS endpoint may present a chain to: the CA file
/// of the configuration when it names one (a private CA, another
/// Tessera's own certificate), otherwise the system's trust store. The
/// system store (rustls-native-certs) rather than a list compiled in
/// (webpki-roots): it follows the operating system's CA updates and
/// additions without a new Tessera release, and adds no data to the binary.
fn trust_roots(config: &S3BucketConfig) -> Result<Arc<RootCertStore>, S3Error> {
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| S3Error::Config(format!("reading {}: {e}", path.display())))?;
        return tessera_net::tls::roots(&pem)
            .map_err(|e| S3Error::Config(format!("{}: {e}", path.display())));
    }
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "skipping part of the system's trust store");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(added, ignored, "system trust roots rustls cannot use");
    }
    if roots.is_empty() && config.endpoint.starts_with("https:") {
        return Err(S3Error::Config(
            "no trusted certificates found in the system's trust store: set ca_file".into(),
        ));
    }
    Ok(Arc::new(roots))
}
