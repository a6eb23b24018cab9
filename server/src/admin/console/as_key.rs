//! S3 requests on behalf of a console user: each is signed (SigV4, with
//! the session's access key) and handed to the gateway's own S3 service
//! in-process, so it passes the very authentication and authorization an
//! S3 client's request passes (grants, bucket policies, ACLs, the key's
//! right to create buckets): the console has no permission model of its
//! own.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use s3s::Body;
use s3s::service::S3Service;
use serde::Deserialize;
use tessera_storage::store::sigv4::{Signer, canonical_query, uri_encode};

use crate::listener::ConnInfo;

/// The largest S3 answer (XML) the console reads whole.
const MAX_XML: usize = 4 * 1024 * 1024;

/// The host signed requests name (path-style: no bucket in it).
const HOST: &str = "console.tessera.internal";

/// The payload hash of a request whose body is not hashed.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Why a request made for the console failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum S3CallError {
    /// S3 refused it: its status, code and message.
    #[error("{code}: {message}")]
    Refused {
        /// The HTTP status.
        status: StatusCode,
        /// The S3 error code (`AccessDenied` …).
        code: String,
        /// The message.
        message: String,
    },
    /// The answer could not be read.
    #[error("reading the S3 answer: {0}")]
    Answer(String),
}

/// S3's error document.
#[derive(Debug, Deserialize)]
struct ErrorDoc {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// Signs requests as one access key and runs them through the S3 service.
pub(crate) struct AsKey<'a> {
    /// The gateway's S3 service.
    pub service: &'a S3Service,
    /// The region requests are signed for.
    pub region: &'a str,
    /// The access key id.
    pub key: &'a str,
    /// Its secret.
    pub secret: &'a str,
    /// The console user's connection (for policy conditions on the source address).
    pub conn: Option<ConnInfo>,
}

/// One request to make.
pub(crate) struct Call<'a> {
    /// The method.
    pub method: Method,
    /// The bucket, if any.
    pub bucket: Option<&'a str>,
    /// The object key, if any.
    pub key: Option<&'a str>,
    /// Query parameters (sorted or not).
    pub query: Vec<(&'a str, String)>,
    /// The body.
    pub body: Body,
}

impl<'a> Call<'a> {
    /// A call without a body or query.
    pub fn new(method: Method, bucket: Option<&'a str>, key: Option<&'a str>) -> Self {
        Call {
            method,
            bucket,
            key,
            query: Vec::new(),
            body: Body::empty(),
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
}

impl AsKey<'_> {
    /// Makes `call`: its answer, or the S3 error it got.
    pub async fn send(&self, call: Call<'_>) -> Result<Response<Body>, S3CallError> {
        let req = self.signed(call, time::OffsetDateTime::now_utc())?;
        let resp = self
            .service
            .call(req)
            .await
            .map_err(|e| S3CallError::Answer(format!("S3 service: {e:?}")))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = read_all(resp.into_body()).await?;
        let doc: ErrorDoc = quick_xml::de::from_reader(body.as_ref()).unwrap_or(ErrorDoc {
            code: status.to_string(),
            message: String::new(),
        });
        Err(S3CallError::Refused {
            status,
            code: doc.code,
            message: doc.message,
        })
    }

    /// Makes `call` and parses its XML answer.
    pub async fn xml<T: serde::de::DeserializeOwned>(
        &self,
        call: Call<'_>,
    ) -> Result<T, S3CallError> {
        let body = read_all(self.send(call).await?.into_body()).await?;
        quick_xml::de::from_reader(body.as_ref()).map_err(|e| S3CallError::Answer(e.to_string()))
    }

    /// The request for `call`, signed at `now`.
    fn signed(
        &self,
        call: Call<'_>,
        now: time::OffsetDateTime,
    ) -> Result<Request<Body>, S3CallError> {
        let mut path = String::from("/");
        if let Some(bucket) = call.bucket {
            path.push_str(&uri_encode(bucket, false));
            if let Some(key) = call.key {
                path.push('/');
                path.push_str(&uri_encode(key, true));
            }
        }
        let query = canonical_query(&call.query);
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(HOST));
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(UNSIGNED_PAYLOAD),
        );
        Signer::new(self.key, self.secret, self.region, "s3").sign(
            &call.method,
            &path,
            &query,
            &mut headers,
            UNSIGNED_PAYLOAD,
            now,
        );
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let mut req = Request::builder()
            .method(call.method)
            .uri(uri)
            .body(call.body)
            .map_err(|e| S3CallError::Answer(e.to_string()))?;
        *req.headers_mut() = headers;
        if let Some(conn) = self.conn {
            req.extensions_mut().insert(conn);
        }
        Ok(req)
    }
}

/// Reads a (small) S3 answer whole, bounded by [`MAX_XML`].
async fn read_all(body: Body) -> Result<Bytes, S3CallError> {
    let limited = http_body_util::Limited::new(body, MAX_XML);
    let collected = tokio::time::timeout(Duration::from_secs(60), limited.collect())
        .await
        .map_err(|_| S3CallError::Answer("timed out".to_owned()))?
        .map_err(|e| S3CallError::Answer(e.to_string()))?;
    Ok(collected.to_bytes())
}
