//! Bucket CORS: the configuration (Get/Put/DeleteBucketCors, kept in
//! `Bucket.cors` as JSON of [`Rule`]s), [`CorsRoute`], which answers
//! browsers' `OPTIONS` preflight requests from it (s3s itself does not), and
//! [`response_headers`], the headers of actual cross-origin responses (added
//! by [`CorsLayer`](super::CorsLayer)).

use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::dto::*;
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use tessera_raft::command::BucketUpdate;
use tessera_raft::node::MetaNode;

use super::Gateway;
use super::errors;

/// One CORS rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Rule {
    id: Option<String>,
    allowed_headers: Vec<String>,
    allowed_methods: Vec<String>,
    allowed_origins: Vec<String>,
    expose_headers: Vec<String>,
    max_age_seconds: Option<i32>,
}

impl Rule {
    fn from_dto(r: CORSRule) -> Self {
        Self {
            id: r.id,
            allowed_headers: r.allowed_headers.unwrap_or_default(),
            allowed_methods: r.allowed_methods,
            allowed_origins: r.allowed_origins,
            expose_headers: r.expose_headers.unwrap_or_default(),
            max_age_seconds: r.max_age_seconds,
        }
    }

    fn to_dto(&self) -> CORSRule {
        let opt = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        CORSRule {
            id: self.id.clone(),
            allowed_headers: opt(&self.allowed_headers),
            allowed_methods: self.allowed_methods.clone(),
            allowed_origins: self.allowed_origins.clone(),
            expose_headers: opt(&self.expose_headers),
            max_age_seconds: self.max_age_seconds,
        }
    }

    /// Whether this rule allows a preflight for `origin`, `method` and the requested headers.
    fn allows(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| wildcard_match(o, origin))
            && self
                .allowed_methods
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method))
            && headers.iter().all(|h| {
                self.allowed_headers
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), &h.to_ascii_lowercase()))
            })
    }
}

/// The bucket a request addresses, when the [`CorsLayer`](super::CorsLayer)
/// could tell (virtual-host or path style); set as a request extension.
#[derive(Debug, Clone)]
pub(crate) struct RequestBucket(pub(crate) String);

/// The bucket of a path-style URL (`/bucket/key`).
pub(crate) fn path_bucket(uri: &Uri) -> Option<String> {
    let first = uri.path().trim_start_matches('/').split('/').next()?;
    (!first.is_empty()).then(|| first.to_owned())
}

/// Writes the CORS headers S3 sends when `rule` allows a request from
/// `origin`: a rule allowing any origin answers `*`, a rule naming origins
/// echoes the origin and allows credentials.
fn rule_headers(rule: &Rule, origin: &str, h: &mut HeaderMap) {
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    if rule.allowed_origins.iter().any(|o| o == "*") {
        put("access-control-allow-origin", "*");
    } else {
        put("access-control-allow-origin", origin);
        put("access-control-allow-credentials", "true");
    }
    put(
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        put(
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        put("access-control-max-age", &age.to_string());
    }
    put(
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
}

/// The CORS headers of the response to an actual (non-preflight) request
/// with `origin` and `method` on `bucket`: `None` when the bucket is
/// unknown, has no CORS configuration, or no rule allows the origin and
/// method (the response then carries no CORS headers, as in S3).
pub(crate) async fn response_headers(
    meta: &MetaNode,
    bucket: &str,
    origin: &str,
    method: &str,
) -> Option<HeaderMap> {
    let name = bucket.to_owned();
    let blob = match meta.read(move |view| view.bucket(&name)).await {
        Ok(b) => b?.cors?,
        Err(e) => {
            tracing::warn!(error = %e, bucket, "reading CORS rules failed");
            return None;
        }
    };
    let rules = decode(&blob).ok()?;
    let rule = rules.iter().find(|r| r.allows(origin, method, &[]))?;
    let mut h = HeaderMap::new();
    rule_headers(rule, origin, &mut h);
    Some(h)
}

/// `*` matches any run of characters (S3 allows at most one per pattern).
fn wildcard_match(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post)
        }
    }
}

fn decode(blob: &[u8]) -> S3Result<Vec<Rule>> {
    serde_json::from_slice(blob)
        .map_err(|e| errors::internal(format!("stored CORS configuration is unreadable: {e}")))
}

pub(crate) async fn get_bucket_cors(
    gw: &Gateway,
    req: S3Request<GetBucketCorsInput>,
) -> S3Result<S3Response<GetBucketCorsOutput>> {
    let b = gw.bucket(&req.input.bucket).await?;
    let blob = b.cors.ok_or_else(|| s3_error!(NoSuchCORSConfiguration))?;
    let rules = decode(&blob)?;
    Ok(S3Response::new(GetBucketCorsOutput {
        cors_rules: Some(rules.iter().map(Rule::to_dto).collect()),
    }))
}

pub(crate) async fn put_bucket_cors(
    gw: &Gateway,
    req: S3Request<PutBucketCorsInput>,
) -> S3Result<S3Response<PutBucketCorsOutput>> {
    let i = req.input;
    let rules: Vec<Rule> = i
        .cors_configuration
        .cors_rules
        .into_iter()
        .map(Rule::from_dto)
        .collect();
    if rules.is_empty() || rules.len() > 100 {
        return Err(s3_error!(
            MalformedXML,
            "a CORS configuration holds 1 to 100 rules"
        ));
    }
    const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
    for r in &rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "every CORS rule needs an origin and a method"
            ));
        }
        if let Some(m) = r
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(s3_error!(
                InvalidRequest,
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            ));
        }
    }
    let blob = serde_json::to_vec(&rules)
        .map_err(|e| errors::internal(format!("encoding CORS rules: {e}")))?;
    gw.update_bucket(&i.bucket, BucketUpdate::Cors(Some(blob)))
        .await?;
    Ok(S3Response::new(PutBucketCorsOutput {}))
}

pub(crate) async fn delete_bucket_cors(
    gw: &Gateway,
    req: S3Request<DeleteBucketCorsInput>,
) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
    gw.update_bucket(&req.input.bucket, BucketUpdate::Cors(None))
        .await?;
    Ok(S3Response::new(DeleteBucketCorsOutput {}))
}

/// Answers CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) from the bucket's rules. Install with
/// `S3ServiceBuilder::set_route(gateway.cors_route())`; the bucket is the one
/// [`CorsLayer`](super::CorsLayer) named (virtual-host style too), else the
/// first path segment.
pub struct CorsRoute {
    meta: MetaNode,
}

impl Gateway {
    /// The preflight handler for this gateway's buckets.
    pub fn cors_route(&self) -> CorsRoute {
        CorsRoute {
            meta: self.meta().clone(),
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[async_trait::async_trait]
impl S3Route for CorsRoute {
    fn is_match(
        &self,
        method: &Method,
        _uri: &Uri,
        headers: &HeaderMap,
        _: &mut http::Extensions,
    ) -> bool {
        method == Method::OPTIONS && headers.contains_key(http::header::ORIGIN)
    }

    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        // Browsers send preflights without credentials.
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let forbidden = || {
            s3_error!(
                AccessDenied,
                "CORSResponse: This CORS request is not allowed."
            )
        };
        let bucket = match req.extensions.get::<RequestBucket>() {
            Some(b) => b.0.clone(),
            None => path_bucket(&req.uri).ok_or_else(|| s3_error!(NoSuchBucket))?,
        };
        let origin = header(&req.headers, "origin")
            .unwrap_or_default()
            .to_owned();
        let method = header(&req.headers, "access-control-request-method")
            .ok_or_else(|| s3_error!(InvalidRequest, "missing Access-Control-Request-Method"))?
            .to_owned();
        let requested: Vec<String> = header(&req.headers, "access-control-request-headers")
            .map(|h| {
                h.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let name = bucket.clone();
        let b = self
            .meta
            .read(move |view| view.bucket(&name))
            .await
            .map_err(errors::meta)?
            .ok_or_else(|| s3_error!(NoSuchBucket))?;
        let rules = decode(&b.cors.ok_or_else(forbidden)?)?;
        let rule = rules
            .iter()
            .find(|r| r.allows(&origin, &method, &requested))
            .ok_or_else(forbidden)?;
        let mut resp = S3Response::new(Body::empty());
        resp.status = Some(StatusCode::OK);
        rule_headers(rule, &origin, &mut resp.headers);
        if !requested.is_empty()
            && let Ok(v) = HeaderValue::from_str(&requested.join(", "))
        {
            resp.headers.insert("access-control-allow-headers", v);
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard() {
        assert!(wildcard_match("*", "http://a"));
        assert!(wildcard_match(
            "http://*.example.com",
            "http://x.example.com"
        ));
        assert!(!wildcard_match(
            "http://*.example.com",
            "http://example.org"
        ));
        let r = Rule {
            id: None,
            allowed_headers: vec!["*".into()],
            allowed_methods: vec!["GET".into()],
            allowed_origins: vec!["https://app".into()],
            expose_headers: vec![],
            max_age_seconds: None,
        };
        assert!(r.allows("https://app", "GET", &["x-amz-date".into()]));
        assert!(!r.allows("https://app", "PUT", &[]));
    }
}
