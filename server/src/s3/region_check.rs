//! The region of a SigV4 signature and the validity of a presigned URL,
//! checked before s3s sees the request: a hyper service wrapper around the
//! s3s service.
//!
//! s3s verifies a signature made for any region, and refuses one whose
//! region it cannot parse (s3cmd's default `bucket_location = US`) with
//! `InvalidRequest`. S3 answers a signature scoped to a region other than
//! its own with 400 `AuthorizationHeaderMalformed` (for a presigned URL,
//! `AuthorizationQueryParametersError`) naming the region it expects in the
//! message and in a `<Region>` element; s3cmd and other clients then sign
//! again for that region. Only S3 credential scopes are checked (service
//! `s3`; STS keeps its own), and requests that are not SigV4-signed pass on.
//!
//! The same wrapper checks a presigned URL's `X-Amz-Expires` as S3 does,
//! before s3s (which takes any number of seconds up to `u32::MAX` and
//! answers 400 to a malformed one): more than a week (604,800 s), negative
//! or not a number is 403 `AuthorizationQueryParametersError`.

use std::sync::Arc;

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use s3s::Body;

/// Refuses S3 requests signed for another region than the server's, and
/// presigned URLs with a bad `X-Amz-Expires` (see the module docs);
/// everything else goes to `inner`.
#[derive(Clone)]
pub struct RegionCheck<S> {
    inner: S,
    region: Arc<str>,
}

impl<S> RegionCheck<S> {
    /// Wraps `inner` for a server in `region`.
    pub fn new(inner: S, region: &str) -> Self {
        RegionCheck {
            inner,
            region: Arc::from(region),
        }
    }
}

/// Where a request carries its SigV4 credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carrier {
    /// The `Authorization` header.
    Header,
    /// The `X-Amz-Credential` parameter of a presigned URL.
    Query,
}

/// The region and service of a credential, `AKID/DATE/REGION/SERVICE/aws4_request`
/// (the access key id itself never contains `/`).
fn scope(credential: &str) -> Option<(&str, &str)> {
    let mut parts = credential.rsplitn(5, '/');
    let terminator = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let _date = parts.next()?;
    let _key = parts.next()?;
    (terminator == "aws4_request").then_some((region, service))
}

/// The credential scope of a SigV4-signed request and where it came from.
fn credential<B>(req: &Request<B>) -> Option<(Carrier, String)> {
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let auth = auth.to_str().ok()?.strip_prefix("AWS4-HMAC-SHA256 ")?;
        let cred = auth
            .split(',')
            .find_map(|field| field.trim().strip_prefix("Credential="))?;
        return Some((Carrier::Header, cred.to_owned()));
    }
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Credential")
        .map(|(_, v)| (Carrier::Query, v.into_owned()))
}

/// The region an S3 request was signed for when it is not `expected`.
fn wrong_region<B>(req: &Request<B>, expected: &str) -> Option<(Carrier, String)> {
    let (carrier, cred) = credential(req)?;
    let (region, service) = scope(&cred)?;
    (service == "s3" && region != expected).then(|| (carrier, region.to_owned()))
}

/// Longest validity S3 allows a presigned URL: a week, in seconds.
const MAX_EXPIRES_SECS: i64 = 604_800;

/// Why a SigV4 presigned URL's `X-Amz-Expires` is refused, if it is.
fn bad_expires<B>(req: &Request<B>) -> Option<&'static str> {
    let query = req.uri().query()?;
    let mut presigned = false;
    let mut expires = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "X-Amz-Credential" => presigned = true,
            "X-Amz-Expires" => expires = Some(v),
            _ => {}
        }
    }
    // Without X-Amz-Expires the URL is incomplete: s3s refuses it.
    let expires = expires.filter(|_| presigned)?;
    match expires.parse::<i64>() {
        Err(_) => Some("X-Amz-Expires should be a number"),
        Ok(secs) if secs < 0 => Some("X-Amz-Expires must be non-negative"),
        Ok(secs) if secs > MAX_EXPIRES_SECS => Some(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ),
        Ok(_) => None,
    }
}

/// An S3 error response (`region`: the `<Region>` element, when there is one).
fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    region: Option<&str>,
) -> Response<Body> {
    let region = region
        .map(|r| format!("<Region>{}</Region>", quick_xml::escape::partial_escape(r)))
        .unwrap_or_default();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>{region}</Error>",
        quick_xml::escape::partial_escape(message),
    );
    let mut resp = Response::new(Body::from(xml));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

/// S3's answer to a signature for region `got` at a server in `expected`.
fn refusal(carrier: Carrier, got: &str, expected: &str) -> Response<Body> {
    let (code, what) = match carrier {
        Carrier::Header => (
            "AuthorizationHeaderMalformed",
            "The authorization header is malformed",
        ),
        Carrier::Query => (
            "AuthorizationQueryParametersError",
            "Error parsing the X-Amz-Credential parameter",
        ),
    };
    let message = format!("{what}; the region '{got}' is wrong; expecting '{expected}'");
    error_response(StatusCode::BAD_REQUEST, code, &message, Some(expected))
}

impl<S> hyper::service::Service<Request<Incoming>> for RegionCheck<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let resp = if let Some((carrier, got)) = wrong_region(&req, &self.region) {
            tracing::debug!(region = %got, expected = %self.region, "signed for another region");
            refusal(carrier, &got, &self.region)
        } else if let Some(why) = bad_expires(&req) {
            tracing::debug!(why, "presigned URL with a bad X-Amz-Expires");
            error_response(
                StatusCode::FORBIDDEN,
                "AuthorizationQueryParametersError",
                why,
                None,
            )
        } else {
            return Box::pin(self.inner.call(req));
        };
        Box::pin(async move { Ok(resp) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(auth: &str) -> Request<()> {
        Request::builder()
            .uri("/bucket/key")
            .header(header::AUTHORIZATION, auth)
            .body(())
            .unwrap()
    }

    #[test]
    fn the_region_comes_from_the_header_or_the_presigned_url() {
        let header = signed(
            "AWS4-HMAC-SHA256 Credential=AKID/20261206/US/s3/aws4_request, SignedHeaders=host, Signature=00",
        );
        assert_eq!(
            wrong_region(&header, "us-east-1"),
            Some((Carrier::Header, "US".to_owned()))
        );
        assert_eq!(wrong_region(&header, "US"), None);
        let presigned = Request::builder()
            .uri("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261206%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=00")
            .body(())
            .unwrap();
        assert_eq!(
            wrong_region(&presigned, "us-east-1"),
            Some((Carrier::Query, "eu-west-1".to_owned()))
        );
    }

    #[test]
    fn presigned_urls_last_at_most_a_week() {
        let url = |expires: &str| {
            Request::builder()
                .uri(format!(
                    "/b/k?X-Amz-Credential=AKID%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Expires={expires}&X-Amz-Signature=00"
                ))
                .body(())
                .unwrap()
        };
        for ok in ["0", "60", "604800"] {
            assert_eq!(bad_expires(&url(ok)), None, "{ok}");
        }
        for bad in ["604801", "-1", "1e3", "", "99999999999999999999"] {
            assert!(bad_expires(&url(bad)).is_some(), "{bad}");
        }
        let unsigned = Request::builder()
            .uri("/b/k?X-Amz-Expires=9999999")
            .body(())
            .unwrap();
        assert_eq!(bad_expires(&unsigned), None);
    }

    #[test]
    fn other_services_unsigned_and_malformed_requests_pass() {
        let sts = signed(
            "AWS4-HMAC-SHA256 Credential=AKID/20261206/eu-west-1/sts/aws4_request, SignedHeaders=host, Signature=00",
        );
        assert_eq!(wrong_region(&sts, "us-east-1"), None);
        assert_eq!(wrong_region(&signed("AWS AKID:c2ln"), "us-east-1"), None);
        let short = signed("AWS4-HMAC-SHA256 Credential=AKID/US/s3, Signature=00");
        assert_eq!(wrong_region(&short, "us-east-1"), None);
        let unsigned = Request::builder().uri("/b/k").body(()).unwrap();
        assert_eq!(wrong_region(&unsigned, "us-east-1"), None);
    }
}
