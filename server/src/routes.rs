//! The custom routes of the S3 listener, as the single [`S3Route`] s3s
//! accepts: CORS preflight ([`CorsRoute`]) and STS `AssumeRole`
//! ([`StsRoute`]). Everything else goes to the S3 operations.

use http::{Extensions, HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result, s3_error};

use crate::s3::CorsRoute;
use crate::sts::StsRoute;

/// Which route matched, noted in the request's extensions by `is_match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matched {
    Cors,
    Sts,
}

/// CORS preflight and STS behind one s3s route.
pub struct Routes {
    cors: CorsRoute,
    sts: StsRoute,
}

impl Routes {
    /// Both routes; install with `S3ServiceBuilder::set_route`.
    pub fn new(cors: CorsRoute, sts: StsRoute) -> Self {
        Routes { cors, sts }
    }
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routes").finish_non_exhaustive()
    }
}

fn matched<T>(req: &S3Request<T>) -> S3Result<Matched> {
    req.extensions
        .get::<Matched>()
        .copied()
        .ok_or_else(|| s3_error!(InternalError, "custom route called without a match"))
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &mut Extensions,
    ) -> bool {
        let which = if self.cors.is_match(method, uri, headers, extensions) {
            Matched::Cors
        } else if StsRoute::is_match(method, uri, headers) {
            Matched::Sts
        } else {
            return false;
        };
        extensions.insert(which);
        true
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match matched(req)? {
            Matched::Cors => self.cors.check_access(req).await,
            Matched::Sts => StsRoute::check_access(req),
        }
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        match matched(&req)? {
            Matched::Cors => self.cors.call(req).await,
            Matched::Sts => self.sts.call(req).await,
        }
    }
}
