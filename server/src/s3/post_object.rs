//! Browser uploads (POST Object): an HTML form posted as
//! `multipart/form-data` to a bucket's URL (path style `/bucket`, or `/`
//! on a virtual host), stored as `PutObject` stores a body.
//!
//! s3s would gather the whole file in memory before its handler runs, so
//! this hyper service wrapper takes such requests before s3s: it reads the
//! fields before the file ([`super::post_form`]), authenticates them,
//! checks the policy ([`super::post_policy`]) and the caller's access as
//! for `PutObject` (anonymous forms only where a bucket policy or ACL lets
//! anyone write), then streams the file into [`super::object::put_object`]
//! (same durability: a success means the object is committed). The
//! policy's `content-length-range` is enforced while the file streams;
//! a file outside it fails the upload before anything is committed.
//!
//! Signing is SigV4 over the policy: `x-amz-algorithm`
//! (`AWS4-HMAC-SHA256`), `x-amz-credential`, `x-amz-date` and
//! `x-amz-signature`, the hex HMAC of the base64 `policy` under the
//! credential's signing key (the secret looked up as for any request,
//! temporary credentials with their `x-amz-security-token` field).
//!
//! Fields applied as `PutObject`'s headers: `key` (`${filename}` becomes
//! the file's name, in every field), `acl`, `Cache-Control`,
//! `Content-Type`, `Content-Disposition`, `Content-Encoding`, `Expires`,
//! `Content-MD5`, `x-amz-meta-*`, `x-amz-storage-class`,
//! `x-amz-website-redirect-location`, `x-amz-object-lock-*`,
//! `x-amz-checksum-*` and `tagging` (a `<Tagging>` document). The answer
//! is a 303 to `success_action_redirect` (with `bucket`, `key` and `etag`
//! in its query) when that is a URL, else `success_action_status`: 200,
//! 201 (with a `PostResponse` document) or 204 (the default).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use s3s::auth::{Credentials, S3Auth};
use s3s::dto::{
    ObjectCannedACL, ObjectLockLegalHoldStatus, ObjectLockMode, PutObjectInput, StorageClass,
    Tagging, Timestamp, TimestampFormat,
};
use s3s::{Body, S3Error, S3Request, S3Result, s3_error};
use time::OffsetDateTime;

use super::Gateway;
use super::post_form::{self, FileStream, Form, FormError};
use super::post_policy::PostPolicy;
use crate::auth::{Admission, GrantAccess, KeyAuth, Principal};
use crate::listener::ConnInfo;
use crate::vhost::BaseDomain;

/// The only signing algorithm of a form.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Takes browser uploads before `inner` (the s3s service; see the module
/// docs); every other request goes to `inner`.
#[derive(Clone)]
pub struct PostObject<S> {
    inner: S,
    uploads: Arc<Uploads>,
}

/// What handling a browser upload needs.
struct Uploads {
    gateway: Gateway,
    auth: KeyAuth,
    access: GrantAccess,
    host: Option<BaseDomain>,
    region: String,
}

impl<S> PostObject<S> {
    /// Wraps `inner`: uploads are stored by `gateway`, signatures checked
    /// with the secrets of `auth`, access decided by `access`; `host` is the
    /// base domain of virtual-host style requests, if one is configured.
    pub fn new(
        inner: S,
        gateway: Gateway,
        auth: KeyAuth,
        access: GrantAccess,
        host: Option<BaseDomain>,
    ) -> Self {
        let region = gateway.settings().region.clone();
        PostObject {
            inner,
            uploads: Arc::new(Uploads {
                gateway,
                auth,
                access,
                host,
                region,
            }),
        }
    }
}

/// Where a browser upload goes.
struct Target {
    bucket: String,
    /// Named by the `Host` (virtual-host style) rather than the path.
    virtual_host: bool,
    /// `None` when the content type's boundary is missing or not allowed:
    /// the form is refused as malformed (never left to s3s, which would
    /// gather its file in memory).
    boundary: Option<String>,
}

/// The upload `req` is, if it is one: a `multipart/form-data` POST to a
/// bucket's URL (no key in the path).
fn target<B>(host: Option<&BaseDomain>, req: &Request<B>) -> Option<Target> {
    if req.method() != Method::POST {
        return None;
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| post_form::is_form(v))?;
    let boundary = post_form::boundary(content_type);
    let (bucket, virtual_host) = super::cors_layer::addressed_bucket(host, req)?;
    let path = req.uri().path().trim_matches('/');
    let bare = if virtual_host {
        path.is_empty()
    } else {
        path == bucket
    };
    bare.then_some(Target {
        bucket,
        virtual_host,
        boundary,
    })
}

impl<S> hyper::service::Service<Request<Incoming>> for PostObject<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let Some(target) = target(self.uploads.host.as_ref(), &req) else {
            return Box::pin(self.inner.call(req));
        };
        let uploads = Arc::clone(&self.uploads);
        Box::pin(async move {
            crate::metrics::set_current_op("PostObject", Some(&target.bucket));
            Ok(match uploads.upload(req, &target).await {
                Ok(resp) => resp,
                Err(e) => error_response(e),
            })
        })
    }
}

/// An S3 error as its response. The request's body may be unread: the
/// connection is closed after it.
fn error_response(e: S3Error) -> Response<Body> {
    let mut resp = e.to_http_response().unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    });
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    if !resp.headers().contains_key(header::CONTENT_TYPE) {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
    }
    resp
}

/// 400 `InvalidArgument` for a field the form lacks.
fn missing(field: &str) -> S3Error {
    s3_error!(
        InvalidArgument,
        "Bucket POST must contain a field named '{field}'.  If it is specified, please check the order of the fields."
    )
}

/// A form that cannot be read as the S3 error S3 answers.
fn form_error(e: FormError) -> S3Error {
    match e {
        FormError::Malformed(_) => s3_error!(
            MalformedPOSTRequest,
            "The body of your POST request is not well-formed multipart/form-data."
        ),
        FormError::FieldsTooLarge => s3_error!(
            MaxPostPreDataLengthExceededError,
            "Your POST request fields preceeding the upload file was too large."
        ),
        FormError::NoFile => s3_error!(
            InvalidArgument,
            "POST requires exactly one file upload per request."
        ),
        FormError::Body(cause) => {
            s3_error!(IncompleteBody, "reading the request body failed: {cause}")
        }
    }
}

/// Why the file stream failed, kept for the answer: the ingest path only
/// sees that its body broke off.
#[derive(Clone, Default)]
struct Verdict(Arc<Mutex<Option<S3Error>>>);

impl Verdict {
    fn set(&self, e: S3Error) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    fn take(&self) -> Option<S3Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The file's bytes within `range` (bytes, inclusive): past the maximum
/// the stream fails at once, short of the minimum it fails at its end
/// instead of ending, so the upload is never committed. Failures are noted
/// in `verdict`.
fn within(
    file: FileStream,
    range: Option<(u64, u64)>,
    verdict: Verdict,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let (min, max) = range.unwrap_or((0, u64::MAX));
    let fail = |verdict: &Verdict, e: S3Error| -> Result<Bytes, std::io::Error> {
        let msg = e.message().unwrap_or_default().to_owned();
        verdict.set(e);
        Err(std::io::Error::other(msg))
    };
    futures::stream::unfold(
        (Some(file), 0u64, verdict),
        move |(file, seen, verdict)| async move {
            let mut file = file?;
            match file.next().await {
                Some(Ok(chunk)) => {
                    let seen = seen.saturating_add(chunk.len() as u64);
                    if seen > max {
                        let e = s3_error!(
                            EntityTooLarge,
                            "Your proposed upload exceeds the maximum allowed size"
                        );
                        return Some((fail(&verdict, e), (None, seen, verdict)));
                    }
                    Some((Ok(chunk), (Some(file), seen, verdict)))
                }
                Some(Err(e)) => Some((fail(&verdict, form_error(e)), (None, seen, verdict))),
                None if seen < min => {
                    let e = s3_error!(
                        EntityTooSmall,
                        "Your proposed upload is smaller than the minimum allowed size"
                    );
                    Some((fail(&verdict, e), (None, seen, verdict)))
                }
                None => None,
            }
        },
    )
    .boxed()
}

/// The signing credentials of a form, verified; `None` for an anonymous
/// form (neither policy nor signature).
async fn authenticate(
    auth: &KeyAuth,
    region: &str,
    form: &Form,
) -> S3Result<Option<(Credentials, PostPolicy)>> {
    if form.field("awsaccesskeyid").is_some() || form.field("signature").is_some() {
        return Err(s3_error!(
            InvalidArgument,
            "Signature Version 2 forms are not supported: sign with x-amz-algorithm AWS4-HMAC-SHA256."
        ));
    }
    let (policy, signature) = match (form.field("policy"), form.field("x-amz-signature")) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(missing("x-amz-signature")),
        (None, Some(_)) => return Err(missing("policy")),
        (Some(p), Some(s)) => (p, s),
    };
    let algorithm = form
        .field("x-amz-algorithm")
        .ok_or_else(|| missing("x-amz-algorithm"))?;
    if algorithm != ALGORITHM {
        return Err(s3_error!(
            InvalidArgument,
            "Unsupported x-amz-algorithm '{algorithm}': only {ALGORITHM} is supported."
        ));
    }
    let credential = form
        .field("x-amz-credential")
        .ok_or_else(|| missing("x-amz-credential"))?;
    form.field("x-amz-date")
        .ok_or_else(|| missing("x-amz-date"))?;
    let parsed = PostPolicy::parse(policy)?;
    let mut scope = credential.rsplitn(5, '/');
    let (Some("aws4_request"), Some(service), Some(cred_region), Some(day), Some(access_key)) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(s3_error!(
            InvalidArgument,
            "Invalid X-Amz-Credential: it must be <key>/<date>/<region>/s3/aws4_request."
        ));
    };
    if service != "s3" {
        return Err(s3_error!(
            InvalidArgument,
            "Error parsing the X-Amz-Credential parameter; incorrect service '{service}'. This endpoint belongs to 's3'."
        ));
    }
    if cred_region != region {
        return Err(s3_error!(
            InvalidArgument,
            "Error parsing the X-Amz-Credential parameter; the region '{cred_region}' is wrong; expecting '{region}'"
        ));
    }
    let secret = auth.get_secret_key(access_key).await?;
    let key = tessera_storage::store::sigv4::signing_key(secret.expose(), day, region, "s3");
    let expected = hex::encode(tessera_storage::store::sigv4::hmac(&key, policy.as_bytes()));
    if !constant_time_eq(
        expected.as_bytes(),
        signature.to_ascii_lowercase().as_bytes(),
    ) {
        return Err(s3_error!(
            SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        ));
    }
    Ok(Some((
        Credentials {
            access_key: access_key.to_owned(),
            secret_key: secret,
        },
        parsed,
    )))
}

/// Whether `a` and `b` are equal, in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The form fields that stand for `PutObject` headers, as those headers:
/// what the bucket policy's conditions (`s3:x-amz-acl` …) and the
/// ingest path (`Content-MD5`, `x-amz-checksum-*`) read.
fn field_headers(fields: &[(String, String)]) -> HeaderMap {
    const AUTH: [&str; 5] = [
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-signature",
        "x-amz-security-token",
    ];
    let mut out = HeaderMap::new();
    for (name, value) in fields {
        let header = match name.as_str() {
            "acl" => "x-amz-acl",
            "tagging" => continue,
            n if n.starts_with("x-amz-") && !AUTH.contains(&n) => n,
            n if n.starts_with("content-") || n == "cache-control" || n == "expires" => n,
            _ => continue,
        };
        if let (Ok(h), Ok(v)) = (
            HeaderName::from_bytes(header.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            out.insert(h, v);
        }
    }
    out
}

/// The request's own headers a policy may test (`User-Agent`, `Referer`,
/// `Host` …), without those that describe the form's body rather than the
/// object, then the form's fields as headers.
fn effective_headers(request: &HeaderMap, fields: &[(String, String)]) -> HeaderMap {
    let mut out: HeaderMap = request
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            !(n.starts_with("content-") || n.starts_with("x-amz-") || n == "transfer-encoding")
        })
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    out.extend(field_headers(fields));
    out
}

/// A `tagging` field (`<Tagging><TagSet><Tag>…`) as `x-amz-tagging`'s
/// query-string form.
fn tagging(xml: &str) -> S3Result<String> {
    let mut de = s3s::xml::Deserializer::new(xml.as_bytes());
    let doc: Tagging = s3s::xml::Deserialize::deserialize(&mut de).map_err(|_| {
        s3_error!(
            MalformedXML,
            "The tagging field is not a valid Tagging document."
        )
    })?;
    let mut out = form_urlencoded::Serializer::new(String::new());
    for tag in doc.tag_set {
        out.append_pair(&tag.key.unwrap_or_default(), &tag.value.unwrap_or_default());
    }
    Ok(out.finish())
}

/// A timestamp field.
fn timestamp(name: &str, value: &str, format: TimestampFormat) -> S3Result<Timestamp> {
    Timestamp::parse(format, value)
        .map_err(|_| s3_error!(InvalidArgument, "Invalid {name} field: '{value}'"))
}

/// The `PutObject` input of a form (fields already `${filename}`-expanded).
fn put_input(bucket: &str, key: String, fields: &[(String, String)]) -> S3Result<PutObjectInput> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let metadata: s3s::dto::Metadata = fields
        .iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("x-amz-meta-")?.to_owned(), v.clone())))
        .collect();
    Ok(PutObjectInput {
        bucket: bucket.to_owned(),
        key,
        acl: field("acl").map(ObjectCannedACL::from),
        cache_control: field("cache-control"),
        content_disposition: field("content-disposition"),
        content_encoding: field("content-encoding"),
        content_language: field("content-language"),
        content_type: field("content-type"),
        content_md5: field("content-md5"),
        expires: field("expires")
            .map(|v| timestamp("Expires", &v, TimestampFormat::HttpDate))
            .transpose()?,
        metadata: (!metadata.is_empty()).then_some(metadata),
        storage_class: field("x-amz-storage-class").map(StorageClass::from),
        tagging: field("tagging").map(|t| tagging(&t)).transpose()?,
        website_redirect_location: field("x-amz-website-redirect-location"),
        object_lock_mode: field("x-amz-object-lock-mode").map(ObjectLockMode::from),
        object_lock_retain_until_date: field("x-amz-object-lock-retain-until-date")
            .map(|v| {
                timestamp(
                    "x-amz-object-lock-retain-until-date",
                    &v,
                    TimestampFormat::DateTime,
                )
            })
            .transpose()?,
        object_lock_legal_hold_status: field("x-amz-object-lock-legal-hold")
            .map(ObjectLockLegalHoldStatus::from),
        ..Default::default()
    })
}

/// `s` percent-encoded for a URL path (`/` kept).
fn path_encode(s: &str) -> String {
    s.split('/')
        .map(|seg| {
            form_urlencoded::byte_serialize(seg.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// XML-escaped text.
fn xml(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

impl Uploads {
    /// Reads, checks and stores one browser upload.
    async fn upload(&self, req: Request<Incoming>, target: &Target) -> S3Result<Response<Body>> {
        let (parts, body) = req.into_parts();
        let stream = tessera_net::body::chunks(body)
            .map_err(std::io::Error::other)
            .boxed();
        let boundary = target
            .boundary
            .as_deref()
            .ok_or_else(|| form_error(FormError::Malformed("the boundary")))?;
        let (form, file) = post_form::read(stream, boundary)
            .await
            .map_err(form_error)?;
        let template = form.field("key").ok_or_else(|| missing("key"))?.to_owned();
        let signed = authenticate(&self.auth, &self.region, &form).await?;
        let (credentials, policy) = match signed {
            Some((c, p)) => (Some(c), Some(p)),
            None => (None, None),
        };
        if let Some(policy) = &policy {
            policy.check(OffsetDateTime::now_utc(), &form.fields, &target.bucket)?;
        }
        let name = form.file_name.clone();
        let fields: Vec<(String, String)> = form
            .fields
            .iter()
            .map(|(n, v)| (n.clone(), v.replace("${filename}", &name)))
            .collect();
        let key = template.replace("${filename}", &name);
        if key.is_empty() {
            return Err(s3_error!(
                InvalidArgument,
                "User key must have a length greater than 0."
            ));
        }
        let headers = effective_headers(&parts.headers, &fields);
        let conn = parts.extensions.get::<ConnInfo>().copied();
        let caller = self
            .access
            .admit(Admission {
                op: "PutObject",
                bucket: Some(target.bucket.clone()),
                key: Some(key.clone()),
                credentials: credentials.as_ref(),
                token: form.field("x-amz-security-token").map(str::to_owned),
                headers: &headers,
                uri: &parts.uri,
                conn,
            })
            .await?;
        let mut input = put_input(&target.bucket, key.clone(), &fields)?;
        let verdict = Verdict::default();
        let file = within(
            file,
            policy.as_ref().and_then(PostPolicy::length_range),
            verdict.clone(),
        );
        input.body = Some(super::body::sync_blob(file));
        let mut extensions = http::Extensions::new();
        if let Some(caller) = caller {
            extensions.insert(Principal(caller));
        }
        if let Some(conn) = conn {
            extensions.insert(conn);
        }
        let request = S3Request {
            input,
            method: Method::POST,
            uri: parts.uri.clone(),
            headers,
            extensions,
            credentials,
            region: None,
            service: None,
            trailing_headers: None,
        };
        let stored = super::object::put_object(&self.gateway, request)
            .await
            .map_err(|e| verdict.take().unwrap_or(e))?
            .output;
        let etag = stored
            .e_tag
            .as_ref()
            .map(|t| format!("\"{}\"", t.value()))
            .unwrap_or_default();
        let tls = conn.is_some_and(|c| c.tls);
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let location = if target.virtual_host {
            format!(
                "{}://{host}/{}",
                if tls { "https" } else { "http" },
                path_encode(&key)
            )
        } else {
            format!(
                "{}://{host}/{}/{}",
                if tls { "https" } else { "http" },
                target.bucket,
                path_encode(&key)
            )
        };
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let mut resp = Response::new(Body::empty());
        let redirect = field("success_action_redirect")
            .or_else(|| field("redirect"))
            .and_then(|u| u.parse::<http::Uri>().ok())
            .filter(|u| u.scheme().is_some() && u.host().is_some());
        if let Some(url) = redirect {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("bucket", &target.bucket)
                .append_pair("key", &key)
                .append_pair("etag", &etag)
                .finish();
            let sep = if url.query().is_some() { '&' } else { '?' };
            *resp.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&format!("{url}{sep}{query}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
        } else {
            match field("success_action_status") {
                Some("200") => *resp.status_mut() = StatusCode::OK,
                Some("201") => {
                    *resp.status_mut() = StatusCode::CREATED;
                    let doc = format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                        xml(&location),
                        xml(&target.bucket),
                        xml(&key),
                        xml(&etag)
                    );
                    *resp.body_mut() = Body::from(doc);
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/xml"),
                    );
                }
                _ => *resp.status_mut() = StatusCode::NO_CONTENT,
            }
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
        }
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        for (name, value) in [
            ("x-amz-version-id", stored.version_id),
            ("x-amz-expiration", stored.expiration),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                h.insert(name, v);
            }
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;

    fn request(method: &str, host: &str, path: &str, content_type: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, content_type)
            .body(())
            .unwrap()
    }

    #[test]
    fn uploads_are_form_posts_to_a_bucket_url() {
        let form = "multipart/form-data; boundary=x";
        let domain = BaseDomain::new("s3.example.com").unwrap();
        let hit = |req: &Request<()>, d: Option<&BaseDomain>| {
            target(d, req).map(|t| (t.bucket, t.virtual_host))
        };
        let path = request("POST", "127.0.0.1:9000", "/photos/", form);
        assert_eq!(hit(&path, None), Some(("photos".into(), false)));
        let vhost = request("POST", "photos.s3.example.com:9000", "/", form);
        assert_eq!(hit(&vhost, Some(&domain)), Some(("photos".into(), true)));
        for other in [
            request("POST", "127.0.0.1", "/photos/key", form),
            request("PUT", "127.0.0.1", "/photos", form),
            request("POST", "127.0.0.1", "/photos?delete", "application/xml"),
            request("POST", "photos.s3.example.com", "/photos", form),
        ] {
            assert!(hit(&other, Some(&domain)).is_none(), "{other:?}");
        }
    }

    #[test]
    fn fields_become_headers() {
        let fields: Vec<(String, String)> = [
            ("acl", "public-read"),
            ("content-type", "image/png"),
            ("x-amz-meta-a", "b"),
            ("x-amz-credential", "secret-ish"),
            ("success_action_status", "201"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut request = HeaderMap::new();
        request.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data"),
        );
        request.insert(header::USER_AGENT, HeaderValue::from_static("browser"));
        let h = effective_headers(&request, &fields);
        assert_eq!(h["x-amz-acl"], "public-read");
        assert_eq!(h[header::CONTENT_TYPE], "image/png");
        assert_eq!(h["x-amz-meta-a"], "b");
        assert_eq!(h[header::USER_AGENT], "browser");
        assert!(!h.contains_key("x-amz-credential"));
        assert!(!h.contains_key("success_action_status"));
    }

    #[test]
    fn tagging_documents_become_query_strings() {
        let doc = "<Tagging><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag><Tag><Key>c</Key><Value></Value></Tag></TagSet></Tagging>";
        assert_eq!(tagging(doc).unwrap(), "a+b=1%262&c=");
        assert_eq!(
            tagging("<x").unwrap_err().code(),
            &S3ErrorCode::MalformedXML
        );
    }
}
