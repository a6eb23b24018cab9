//! The web console on the admin listener, under `/console/`.
//!
//! - Log in with an access key and its secret, or with the admin token
//!   (which then acts as the root key: the token may mint admin keys
//!   anyway). A session is a random id in an HttpOnly, SameSite=Strict
//!   cookie ([`session`]); without one, pages redirect to the login page
//!   and forms are refused (403).
//! - Every form post carries the session's CSRF token and must come from
//!   the console's own origin (`Origin`, `Sec-Fetch-Site`).
//! - Bucket and object actions are S3 requests signed with the session's
//!   key and run through the gateway's own S3 service ([`as_key`]): the
//!   key's grants, role and the bucket policies decide, as for any S3
//!   client. Cluster, jobs and access keys come from the admin API's own
//!   code ([`AdminState`]); the key pages only for administrator keys.
//! - Uploads go from the multipart form to S3 a part at a time
//!   ([`upload`]); downloads stream out of `GetObject`: memory does not
//!   grow with file size.

mod as_key;
mod pages;
pub(crate) mod session;
mod upload;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use maud::Markup;
use s3s::Body;
use s3s::service::S3Service;
use serde::Deserialize;
use tessera_raft::model::AccessKey;

use super::http::{AdminState, Failure};
use super::{GrantSet, KeyCreate};
use crate::listener::ConnInfo;
use as_key::{AsKey, Call, S3CallError};
use pages::{BucketRow, Frame as PageFrame, Listing};
use session::{Session, Sessions, same_origin, set_cookie, tokens_match};

/// Largest url-encoded form accepted.
const MAX_FORM: usize = 16 * 1024;

/// Objects listed per page, and counted for a bucket's usage.
const PAGE: &str = "1000";

/// The stylesheet, vendored.
const CSS: &str = include_str!("static/console.css");
/// The script (confirmations and auto refresh), vendored.
const JS: &str = include_str!("static/console.js");

/// The console of one gateway.
pub(crate) struct Console {
    sessions: Sessions,
    s3: S3Service,
    region: String,
    root_key: String,
}

impl Console {
    /// A console whose S3 actions go to `s3` (signed for `region`); the
    /// admin token logs in as `root_key`.
    pub(crate) fn new(s3: S3Service, region: String, root_key: String) -> Self {
        Console {
            sessions: Sessions::default(),
            s3,
            region,
            root_key,
        }
    }
}

type Reply = Response<Body>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Reply {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    resp
}

fn html(status: StatusCode, page: Markup) -> Reply {
    reply(status, "text/html; charset=utf-8", page.into_string())
}

fn see_other(to: &str) -> Reply {
    let mut resp = reply(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Bytes::new(),
    );
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn forbidden(message: &str) -> Reply {
    reply(
        StatusCode::FORBIDDEN,
        "text/plain; charset=utf-8",
        format!("{message}\n"),
    )
}

fn query(req: &Request<Incoming>, name: &str) -> String {
    req.uri()
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

/// A url-encoded form.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn checked(&self, name: &str) -> bool {
        self.get(name) == "on"
    }
}

async fn read_form(req: Request<Incoming>) -> Result<Form, Reply> {
    let body = Limited::new(req.into_body(), MAX_FORM)
        .collect()
        .await
        .map_err(|_| {
            reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/plain; charset=utf-8",
                "form too large\n".to_owned(),
            )
        })?
        .to_bytes();
    Ok(Form(form_urlencoded::parse(&body).into_owned().collect()))
}

/// Who is logged in, for one request.
struct User {
    session: Session,
    key: AccessKey,
    secret: String,
    conn: Option<ConnInfo>,
}

impl User {
    fn frame<'a>(&'a self, notice: Option<(&'a str, bool)>) -> PageFrame<'a> {
        PageFrame {
            key: &self.key.id,
            admin: self.key.admin,
            csrf: &self.session.csrf,
            notice,
        }
    }

    fn s3<'a>(&'a self, console: &'a Console) -> AsKey<'a> {
        AsKey {
            service: &console.s3,
            region: &console.region,
            key: &self.key.id,
            secret: &self.secret,
            conn: self.conn,
        }
    }

    /// A page telling why an action was refused, with the status S3 (or the admin API) gave.
    fn refused(&self, status: StatusCode, message: &str) -> Reply {
        html(status, pages::refused(&self.frame(None), message))
    }

    fn s3_refused(&self, e: &S3CallError) -> Reply {
        let status = match e {
            S3CallError::Refused { status, .. } => *status,
            S3CallError::Answer(_) => StatusCode::BAD_GATEWAY,
        };
        self.refused(status, &e.to_string())
    }

    fn failed(&self, Failure(status, message): Failure) -> Reply {
        self.refused(status, &message)
    }
}

/// What a finished action's redirect tells the next page.
fn done_notice(code: &str) -> Option<(&'static str, bool)> {
    let text = match code {
        "created" => "Bucket created.",
        "uploaded" => "Uploaded.",
        "versioning" => "Versioning changed.",
        "grant" => "Grant set.",
        "deleted" => "Key deleted.",
        _ => return None,
    };
    Some((text, false))
}

/// Answers a request under `/console`.
pub(crate) async fn handle(state: &AdminState, console: &Console, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match (&method, path.as_str()) {
        (&Method::GET, "/console/static/console.css") => {
            return reply(
                StatusCode::OK,
                "text/css; charset=utf-8",
                Bytes::from_static(CSS.as_bytes()),
            );
        }
        (&Method::GET, "/console/static/console.js") => {
            return reply(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                Bytes::from_static(JS.as_bytes()),
            );
        }
        (&Method::GET, "/console/login") => {
            return html(StatusCode::OK, pages::login(None));
        }
        (&Method::POST, "/console/login") => return login(state, console, req).await,
        _ => {}
    }
    let Some(user) = user(state, console, &req).await else {
        return if method == Method::GET {
            see_other("/console/login")
        } else {
            forbidden("log in first")
        };
    };
    if method == Method::POST && !same_origin(req.headers()) {
        tracing::warn!(path, "console: cross-site form post refused");
        return forbidden("cross-site request refused");
    }
    let notice = done_notice(&query(&req, "done"));
    match (&method, path.as_str()) {
        (&Method::GET, "/console" | "/console/") => see_other("/console/cluster"),
        (&Method::GET, "/console/cluster") => match state.summary().await {
            Ok(summary) => html(
                StatusCode::OK,
                pages::cluster(&user.frame(notice), &summary),
            ),
            Err(e) => user.failed(e),
        },
        (&Method::GET, "/console/jobs") => html(
            StatusCode::OK,
            pages::jobs(&user.frame(notice), &state.jobs.reports()),
        ),
        (&Method::GET, "/console/buckets") => bucket_list(console, &user, notice).await,
        (&Method::GET, "/console/bucket") => browse(console, &user, &req, notice).await,
        (&Method::GET, "/console/object") => download(console, &user, &req).await,
        (&Method::GET, "/console/keys") if user.key.admin => match state.list_keys().await {
            Ok(keys) => html(
                StatusCode::OK,
                pages::keys(&user.frame(notice), &keys, None),
            ),
            Err(e) => user.failed(e),
        },
        (&Method::GET, "/console/keys") => user.refused(
            StatusCode::FORBIDDEN,
            "Access keys are managed by administrator keys only.",
        ),
        (&Method::POST, "/console/upload") => upload(console, &user, req).await,
        (&Method::POST, _) => {
            let form = match read_form(req).await {
                Ok(form) => form,
                Err(reply) => return reply,
            };
            if !tokens_match(form.get("csrf"), &user.session.csrf) {
                tracing::warn!(path, "console: form post without its CSRF token refused");
                return forbidden("missing or wrong CSRF token");
            }
            post(state, console, &user, &path, &form).await
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
    }
}

/// The logged-in user of `req`: its session and the key's current record
/// (a deleted key's sessions end; a demoted key loses its admin pages).
async fn user(state: &AdminState, console: &Console, req: &Request<Incoming>) -> Option<User> {
    let session = console.sessions.get(req.headers())?;
    let keys = state.keys.as_ref()?;
    let Ok(Some(key)) = keys.get(&session.key).await else {
        console.sessions.close_key(&session.key);
        return None;
    };
    let secret = keys.open(&key)?;
    Some(User {
        session,
        key,
        secret,
        conn: req.extensions().get::<ConnInfo>().copied(),
    })
}

async fn login(state: &AdminState, console: &Console, req: Request<Incoming>) -> Reply {
    if !same_origin(req.headers()) {
        return forbidden("cross-site request refused");
    }
    let form = match read_form(req).await {
        Ok(form) => form,
        Err(reply) => return reply,
    };
    let (access_key, secret) = (form.get("access_key").trim(), form.get("secret_key"));
    let key = if access_key.is_empty() {
        tokens_match(secret, &state.token).then(|| console.root_key.clone())
    } else {
        match state.keys.as_ref().map(|k| (k, k.get(access_key))) {
            Some((keys, lookup)) => match lookup.await {
                Ok(Some(key)) if keys.open(&key).is_some_and(|s| tokens_match(&s, secret)) => {
                    Some(key.id)
                }
                _ => None,
            },
            None => None,
        }
    };
    let Some(key) = key else {
        tracing::warn!(access_key, "console: login refused");
        return html(
            StatusCode::UNAUTHORIZED,
            pages::login(Some("Wrong access key or secret.")),
        );
    };
    tracing::info!(key, "console: logged in");
    let id = console.sessions.open(&key);
    let mut resp = see_other("/console/cluster");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&id)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// The url-encoded form posts (CSRF token already checked).
async fn post(
    state: &AdminState,
    console: &Console,
    user: &User,
    path: &str,
    form: &Form,
) -> Reply {
    match path {
        "/console/logout" => {
            console.sessions.close(&user.session.id);
            let mut resp = see_other("/console/login");
            if let Ok(v) = HeaderValue::from_str(&set_cookie("")) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        "/console/buckets" => {
            let bucket = form.get("bucket").trim();
            let call = Call::new(Method::PUT, Some(bucket), None);
            match user.s3(console).send(call).await {
                Ok(_) => {
                    tracing::info!(bucket, key = %user.key.id, "console: bucket created");
                    see_other(&format!(
                        "/console/bucket?name={}&done=created",
                        pages::query_escape(bucket)
                    ))
                }
                Err(e) => user.s3_refused(&e),
            }
        }
        "/console/versioning" => {
            let bucket = form.get("bucket");
            let status = if form.get("status") == "Enabled" {
                "Enabled"
            } else {
                "Suspended"
            };
            let xml = format!(
                "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{status}</Status></VersioningConfiguration>"
            );
            let call = Call::new(Method::PUT, Some(bucket), None)
                .query("versioning", "")
                .body(Body::from(xml));
            match user.s3(console).send(call).await {
                Ok(_) => see_other(&format!(
                    "/console/bucket?name={}&done=versioning",
                    pages::query_escape(bucket)
                )),
                Err(e) => user.s3_refused(&e),
            }
        }
        _ if !user.key.admin => user.refused(
            StatusCode::FORBIDDEN,
            "Access keys are managed by administrator keys only.",
        ),
        "/console/keys" => {
            let (admin, allow_create_bucket) = match form.get("role") {
                "admin" => (true, true),
                "read-write" => (false, true),
                _ => (false, false),
            };
            let create = KeyCreate {
                name: form.get("name").trim().to_owned(),
                allow_create_bucket,
                admin,
            };
            let created = match state.create_key(create).await {
                Ok(created) => created,
                Err(e) => return user.failed(e),
            };
            match state.list_keys().await {
                Ok(keys) => html(
                    StatusCode::OK,
                    pages::keys(&user.frame(None), &keys, Some(&created)),
                ),
                Err(e) => user.failed(e),
            }
        }
        "/console/keys/delete" => {
            let id = form.get("access_key");
            match state.delete_key(id).await {
                Ok(()) => {
                    console.sessions.close_key(id);
                    see_other("/console/keys?done=deleted")
                }
                Err(e) => user.failed(e),
            }
        }
        "/console/grants" => {
            let grant = GrantSet {
                access_key: form.get("access_key").to_owned(),
                bucket: form.get("bucket").trim().to_owned(),
                read: form.checked("read"),
                write: form.checked("write"),
                owner: form.checked("owner"),
            };
            match state.set_grant(grant).await {
                Ok(()) => see_other("/console/keys?done=grant"),
                Err(e) => user.failed(e),
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
    }
}

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

async fn bucket_list(console: &Console, user: &User, notice: Option<(&str, bool)>) -> Reply {
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

async fn browse(
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

async fn download(console: &Console, user: &User, req: &Request<Incoming>) -> Reply {
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

/// The multipart upload form: its CSRF token first, then the file,
/// stored as it arrives ([`upload::store`]).
async fn upload(console: &Console, user: &User, req: Request<Incoming>) -> Reply {
    let (bucket, prefix) = (query(&req, "bucket"), query(&req, "prefix"));
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let Some(boundary) = boundary else {
        return forbidden("an upload is a multipart form");
    };
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["csrf", "file"])
        .size_limit(multer::SizeLimit::new().for_field("csrf", 1024));
    let mut form = multer::Multipart::with_constraints(
        req.into_body().into_data_stream(),
        boundary,
        constraints,
    );
    let csrf = match form.next_field().await {
        Ok(Some(field)) if field.name() == Some("csrf") => field.text().await.unwrap_or_default(),
        _ => String::new(),
    };
    if !tokens_match(&csrf, &user.session.csrf) {
        tracing::warn!("console: upload without its CSRF token refused");
        return forbidden("missing or wrong CSRF token");
    }
    let field = match form.next_field().await {
        Ok(Some(field)) if field.name() == Some("file") => field,
        _ => return user.refused(StatusCode::BAD_REQUEST, "no file in the form"),
    };
    let name = field
        .file_name()
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned())
        .filter(|n| !n.is_empty());
    let Some(name) = name else {
        return user.refused(StatusCode::BAD_REQUEST, "the file has no name");
    };
    let key = format!("{prefix}{name}");
    match upload::store(&user.s3(console), &bucket, &key, field).await {
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
