//! The bucket pages: the list with usage and versioning, browsing a
//! bucket by prefix, downloads and uploads; every S3 call signed as the
//! session's key ([`AsKey`]).

use futures::{StreamExt as _, TryStreamExt as _};
use http::{HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use serde::Deserialize;

use super::as_key::{AsKey, Call};
use super::pages::{self, BucketRow, Listing};
use super::session::tokens_match;
use super::{Console, Reply, User, forbidden, html, query, reply, see_other, upload};
use crate::s3::post_form;

/// Objects listed per page, and counted for a bucket's usage.
const PAGE: &str = "1000";

/// `ListAllMyBucketsResult`.
#[derive(Debug, Deserialize)]
struct BucketsDoc {
    #[serde(rename = "Buckets", default)]
    buckets: BucketsInner,
}

#[derive(Debug, Default, Deserialize)]
struct BucketsInner {
    #[serde(rename = "Bucket", default)]
    bucket: Vec<BucketDoc>,
}

#[derive(Debug, Deserialize)]
struct BucketDoc {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "CreationDate", default)]
    created: String,
}

/// `ListBucketResult` (V2).
#[derive(Debug, Deserialize)]
struct ObjectsDoc {
    #[serde(rename = "Contents", default)]
    contents: Vec<ObjectDoc>,
    #[serde(rename = "CommonPrefixes", default)]
    prefixes: Vec<PrefixDoc>,
    #[serde(rename = "IsTruncated", default)]
    truncated: bool,
    #[serde(rename = "NextContinuationToken", default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ObjectDoc {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "LastModified", default)]
    modified: String,
}

#[derive(Debug, Deserialize)]
struct PrefixDoc {
    #[serde(rename = "Prefix")]
    prefix: String,
}

/// `VersioningConfiguration`.
#[derive(Debug, Deserialize)]
struct VersioningDoc {
    #[serde(rename = "Status", default)]
    status: Option<String>,
}

async fn versioning(s3: &AsKey<'_>, bucket: &str) -> Option<String> {
    let call = Call::new(Method::GET, Some(bucket), None).query("versioning", "");
    s3.xml::<VersioningDoc>(call).await.ok()?.status
}

fn list_call<'a>(bucket: &'a str, prefix: &str, delimiter: bool, token: &str) -> Call<'a> {
    let mut call = Call::new(Method::GET, Some(bucket), None)
        .query("list-type", "2")
        .query("max-keys", PAGE)
        .query("prefix", prefix);
    if delimiter {
        call = call.query("delimiter", "/");
    }
    if !token.is_empty() {
        call = call.query("continuation-token", token);
    }
    call
}

pub(super) async fn bucket_list(
    console: &Console,
    user: &User,
    notice: Option<(&str, bool)>,
) -> Reply {
    let s3 = user.s3(console);
    let doc: BucketsDoc = match s3.xml(Call::new(Method::GET, None, None)).await {
        Ok(doc) => doc,
        Err(e) => return user.s3_refused(&e),
    };
    let mut rows = Vec::new();
    for b in doc.buckets.bucket {
        // Usage as the key may see it: one listing page, "+" beyond.
        let usage = s3
            .xml::<ObjectsDoc>(list_call(&b.name, "", false, ""))
            .await
            .ok()
            .map(|l| {
                let size = l.contents.iter().map(|o| o.size).sum();
                (l.contents.len() as u64, size, l.truncated)
            });
        rows.push(BucketRow {
            versioning: versioning(&s3, &b.name).await,
            name: b.name,
            created: b.created,
            usage,
        });
    }
    html(StatusCode::OK, pages::buckets(&user.frame(notice), &rows))
}

pub(super) async fn browse(
    console: &Console,
    user: &User,
    req: &Request<Incoming>,
    notice: Option<(&str, bool)>,
) -> Reply {
    let bucket = query(req, "name");
    let prefix = query(req, "prefix");
    let s3 = user.s3(console);
    let call = list_call(&bucket, &prefix, true, &query(req, "token"));
    let doc: ObjectsDoc = match s3.xml(call).await {
        Ok(doc) => doc,
        Err(e) => return user.s3_refused(&e),
    };
    let listing = Listing {
        versioning: versioning(&s3, &bucket).await,
        prefixes: doc.prefixes.into_iter().map(|p| p.prefix).collect(),
        objects: doc
            .contents
            .into_iter()
            .map(|o| (o.key, o.size, o.modified))
            .collect(),
        next: doc.next.filter(|_| doc.truncated),
        bucket,
        prefix,
    };
    html(StatusCode::OK, pages::bucket(&user.frame(notice), &listing))
}

pub(super) async fn download(console: &Console, user: &User, req: &Request<Incoming>) -> Reply {
    let (bucket, key) = (query(req, "bucket"), query(req, "key"));
    let call = Call::new(Method::GET, Some(&bucket), Some(&key));
    let object = match user.s3(console).send(call).await {
        Ok(object) => object,
        Err(e) => return user.s3_refused(&e),
    };
    let length = object.headers().get(header::CONTENT_LENGTH).cloned();
    let mut resp = reply(
        StatusCode::OK,
        "application/octet-stream",
        object.into_body(),
    );
    let name = key.rsplit('/').next().unwrap_or(&key);
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
    let headers = resp.headers_mut();
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, length);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename*=UTF-8''{}",
        encoded.replace('+', "%20")
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// The multipart upload form: the fields before the file (its CSRF token),
/// then the file, stored as it arrives ([`upload::store`]).
pub(super) async fn upload(console: &Console, user: &User, req: Request<Incoming>) -> Reply {
    let (bucket, prefix) = (query(&req, "bucket"), query(&req, "prefix"));
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(post_form::boundary);
    let Some(boundary) = boundary else {
        return forbidden("an upload is a multipart form");
    };
    let body = tessera_net::body::chunks(req.into_body())
        .map_err(std::io::Error::other)
        .boxed();
    // The fields before the file (the CSRF token) are read, the file not yet.
    let (form, file) = match post_form::read(body, &boundary).await {
        Ok(read) => read,
        Err(e) => return user.refused(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if !tokens_match(form.field("csrf").unwrap_or_default(), &user.session.csrf) {
        tracing::warn!("console: upload without its CSRF token refused");
        return forbidden("missing or wrong CSRF token");
    }
    let name = form.file_name;
    if name.is_empty() {
        return user.refused(StatusCode::BAD_REQUEST, "the file has no name");
    }
    let key = format!("{prefix}{name}");
    let Ok(_permit) = console.uploads.acquire().await else {
        return user.refused(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    match upload::store(&user.s3(console), &bucket, &key, file).await {
        Ok(_) => {
            tracing::info!(bucket, key, by = %user.key.id, "console: object uploaded");
            see_other(&format!(
                "/console/bucket?name={}&prefix={}&done=uploaded",
                pages::query_escape(&bucket),
                pages::query_escape(&prefix)
            ))
        }
        Err(e) => user.s3_refused(&e),
    }
}
