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
mod buckets;
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
use tessera_raft::model::AccessKey;

use super::http::{AdminState, Failure};
use super::{GrantSet, KeyCreate};
use crate::listener::ConnInfo;
use as_key::{AsKey, Call, S3CallError};
use pages::Frame as PageFrame;
use session::{Session, Sessions, same_origin, set_cookie, tokens_match};

/// Uploads at once; more wait: the console buffers at most this many parts.
const UPLOADS: usize = 4;

/// Largest url-encoded form accepted.
const MAX_FORM: usize = 16 * 1024;

/// The stylesheet, vendored.
const CSS: &str = include_str!("static/console.css");
/// The script (confirmations and auto refresh), vendored.
const JS: &str = include_str!("static/console.js");

/// The console of one gateway.
pub(crate) struct Console {
    sessions: Sessions,
    /// Uploads buffering a part at once (each holds [`upload::PART`]).
    uploads: tokio::sync::Semaphore,
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
            uploads: tokio::sync::Semaphore::new(UPLOADS),
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
        (&Method::GET, "/console/buckets") => buckets::bucket_list(console, &user, notice).await,
        (&Method::GET, "/console/bucket") => buckets::browse(console, &user, &req, notice).await,
        (&Method::GET, "/console/object") => buckets::download(console, &user, &req).await,
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
        (&Method::POST, "/console/upload") => buckets::upload(console, &user, req).await,
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
