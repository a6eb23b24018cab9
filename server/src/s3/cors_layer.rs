//! CORS on actual responses: a hyper service wrapper around the s3s service.
//!
//! Browsers check the CORS headers of the real response too, not only of the
//! preflight. For a request carrying `Origin` (and only then: other requests
//! pay nothing but a header lookup) the wrapper names the addressed bucket —
//! from the `Host` header under the configured base domain, else from the
//! path — for [`CorsRoute`](super::CorsRoute)'s preflight answers, and adds
//! the headers of the bucket's first CORS rule allowing the origin and
//! method to the response, error responses included, as S3 does.

use std::net::{IpAddr, SocketAddr};

use futures::future::BoxFuture;
use http::{Method, Request, Response, header};
use hyper::body::Incoming;
use s3s::host::S3Host as _;
use tessera_raft::node::MetaNode;

use super::cors::{self, RequestBucket};
use crate::vhost::BaseDomain;

/// Adds bucket CORS headers to the responses of `inner` (see the module docs).
#[derive(Clone)]
pub struct CorsLayer<S> {
    inner: S,
    meta: MetaNode,
    host: Option<BaseDomain>,
}

impl<S> CorsLayer<S> {
    /// Wraps `inner`, reading CORS rules from `meta`; `host` is the base
    /// domain of virtual-host style requests, if one is configured.
    pub fn new(inner: S, meta: MetaNode, host: Option<BaseDomain>) -> Self {
        Self { inner, meta, host }
    }
}

/// The bucket `req` addresses, as s3s will resolve it: virtual-host style
/// when a base domain is configured and `Host` is a name (not an address),
/// path style otherwise.
fn request_bucket<B>(domain: Option<&BaseDomain>, req: &Request<B>) -> Option<String> {
    addressed_bucket(domain, req).map(|(bucket, _)| bucket)
}

/// The bucket `req` addresses (see [`request_bucket`]) and whether it was
/// named by the `Host` (virtual-host style).
pub(crate) fn addressed_bucket<B>(
    domain: Option<&BaseDomain>,
    req: &Request<B>,
) -> Option<(String, bool)> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if let (Some(domain), Some(host)) = (domain, host)
        && host.parse::<SocketAddr>().is_err()
        && host.parse::<IpAddr>().is_err()
    {
        let vh = domain.parse_host_header(host).ok()?;
        if let Some(bucket) = vh.bucket() {
            return Some((bucket.to_owned(), true));
        }
    }
    cors::path_bucket(req.uri()).map(|bucket| (bucket, false))
}

impl<S, B> hyper::service::Service<Request<Incoming>> for CorsLayer<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<B>, S::Error>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let Some(origin) = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return Box::pin(self.inner.call(req));
        };
        let bucket = request_bucket(self.host.as_ref(), &req);
        if let Some(b) = &bucket {
            req.extensions_mut().insert(RequestBucket(b.clone()));
        }
        // Preflights are answered whole by `CorsRoute`.
        let method = req.method().clone();
        let actual = method != Method::OPTIONS;
        let response = self.inner.call(req);
        let meta = self.meta.clone();
        Box::pin(async move {
            let mut resp = response.await?;
            if actual
                && let Some(bucket) = bucket
                && let Some(headers) =
                    cors::response_headers(&meta, &bucket, &origin, method.as_str()).await
            {
                resp.headers_mut().extend(headers);
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(domain: Option<&str>, host: &str, path: &str) -> Option<String> {
        let domain = domain.map(|d| BaseDomain::new(d).unwrap());
        let req = Request::builder()
            .uri(path)
            .header(header::HOST, host)
            .body(())
            .unwrap();
        request_bucket(domain.as_ref(), &req)
    }

    #[test]
    fn buckets_from_host_or_path() {
        let d = Some("s3.example.com");
        assert_eq!(
            bucket(d, "pics.s3.example.com:9000", "/a/b").as_deref(),
            Some("pics")
        );
        assert_eq!(
            bucket(d, "s3.example.com", "/pics/a").as_deref(),
            Some("pics")
        );
        assert_eq!(
            bucket(d, "127.0.0.1:9000", "/pics/a").as_deref(),
            Some("pics")
        );
        assert_eq!(
            bucket(None, "pics.s3.example.com", "/other/a").as_deref(),
            Some("other")
        );
        assert_eq!(bucket(None, "127.0.0.1:9000", "/"), None);
    }
}
