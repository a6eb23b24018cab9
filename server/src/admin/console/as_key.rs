//! S3 requests on behalf of a console user: each is signed (SigV4, with
//! the session's access key) and handed to the gateway's own S3 service
//! in-process, so it passes the very authentication and authorization an
//! S3 client's request passes (grants, bucket policies, ACLs, the key's
//! right to create buckets): the console has no permission model of its
//! own.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit as _, Mac as _};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use s3s::Body;
use s3s::service::S3Service;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::listener::ConnInfo;

/// The largest S3 answer (XML) the console reads whole.
const MAX_XML: usize = 4 * 1024 * 1024;

/// The host signed requests name (path-style: no bucket in it).
const HOST: &str = "console.tessera.internal";

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

/// `text` encoded as SigV4 wants it (RFC 3986 unreserved kept; `/` kept
/// when `keep_slash`).
fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    m.update(data);
    m.finalize().into_bytes().to_vec()
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
        let mut query: Vec<(String, String)> = call
            .query
            .iter()
            .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
            .collect();
        query.sort();
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let amz_date = now
            .format(&format)
            .map_err(|e| S3CallError::Answer(e.to_string()))?;
        let day = &amz_date[..8];
        let payload = "UNSIGNED-PAYLOAD";
        let signed_headers = "host;x-amz-content-sha256;x-amz-date";
        let canonical = format!(
            "{}\n{path}\n{query}\nhost:{HOST}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n\n{signed_headers}\n{payload}",
            call.method
        );
        let scope = format!("{day}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{}", self.secret).as_bytes(), day.as_bytes());
        for part in [self.region, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
        let uri = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let mut req = Request::builder()
            .method(call.method)
            .uri(uri)
            .header(http::header::HOST, HOST)
            .header("x-amz-content-sha256", payload)
            .header("x-amz-date", &amz_date)
            .header(
                http::header::AUTHORIZATION,
                format!(
                    "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                    self.key
                ),
            )
            .body(call.body)
            .map_err(|e| S3CallError::Answer(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_sigv4_wants() {
        assert_eq!(uri_encode("a b/c~d", true), "a%20b/c~d");
        assert_eq!(uri_encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(uri_encode("é", false), "%C3%A9");
    }
}
