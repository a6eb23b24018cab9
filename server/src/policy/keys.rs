//! The condition keys Tessera supplies, from the request and its
//! connection. A policy may name any other key; it is then absent.
//!
//! | key | value |
//! | --- | --- |
//! | `aws:SourceIp` | the client's address (the TCP peer; proxies are not trusted) |
//! | `aws:SecureTransport` | `true` over TLS |
//! | `aws:CurrentTime`, `aws:EpochTime` | the gateway's clock |
//! | `aws:UserAgent`, `aws:Referer` | those headers |
//! | `aws:username`, `aws:userid` | the access key id (signed requests) |
//! | `aws:PrincipalType` | `User`, or `Anonymous` when unsigned |
//! | `s3:prefix`, `s3:delimiter`, `s3:max-keys` | the listing's parameters |
//! | `s3:VersionId` | the `versionId` parameter |
//! | `s3:x-amz-acl`, `s3:x-amz-copy-source`, `s3:x-amz-metadata-directive`, `s3:x-amz-server-side-encryption`, `s3:x-amz-storage-class`, `s3:x-amz-grant-*` | those headers |

use http::{HeaderMap, Uri};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::condition::Context;
use crate::listener::ConnInfo;

/// Headers offered as `s3:<header>` keys.
const HEADER_KEYS: [&str; 10] = [
    "x-amz-acl",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-server-side-encryption",
    "x-amz-storage-class",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];

/// Query parameters offered as `s3:` keys: `(parameter, key)`.
const QUERY_KEYS: [(&str, &str); 4] = [
    ("prefix", "s3:prefix"),
    ("delimiter", "s3:delimiter"),
    ("max-keys", "s3:max-keys"),
    ("versionId", "s3:VersionId"),
];

/// The condition keys of a request from `conn` signed for `principal`.
pub(crate) fn context(
    headers: &HeaderMap,
    uri: &Uri,
    conn: Option<&ConnInfo>,
    principal: Option<&str>,
) -> Context {
    let mut cx = Context::default();
    if let Some(conn) = conn {
        cx.set("aws:SourceIp", conn.peer.ip().to_canonical().to_string());
        cx.set("aws:SecureTransport", conn.tls.to_string());
    }
    let now = OffsetDateTime::now_utc();
    if let Ok(t) = now.format(&Rfc3339) {
        cx.set("aws:CurrentTime", t);
    }
    cx.set("aws:EpochTime", now.unix_timestamp().to_string());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ua) = header("user-agent") {
        cx.set("aws:UserAgent", ua);
    }
    if let Some(referer) = header("referer") {
        cx.set("aws:Referer", referer);
    }
    match principal {
        Some(key) => {
            cx.set("aws:username", key);
            cx.set("aws:userid", key);
            cx.set("aws:PrincipalType", "User");
        }
        None => cx.set("aws:PrincipalType", "Anonymous"),
    }
    for name in HEADER_KEYS {
        if let Some(v) = header(name) {
            cx.set(&format!("s3:{name}"), v);
        }
    }
    if let Some(query) = uri.query() {
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if let Some((_, key)) = QUERY_KEYS.iter().find(|(p, _)| *p == k) {
                cx.set(key, v.into_owned());
            }
        }
    }
    cx
}

/// The version a request names (`versionId`).
pub(crate) fn version_id(uri: &Uri) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, v)| k == "versionId" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}
