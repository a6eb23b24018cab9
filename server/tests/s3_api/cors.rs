//! CORS on actual responses (not only preflights), path and virtual-host
//! style, driven with raw HTTP requests carrying `Origin` — presigned by the
//! SDK, so they pass authentication like a browser's would.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::Full;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use tessera_server::testing::TestServer;

use super::{common, put};

const DOMAIN: &str = "s3.tessera.test";
const APP: &str = "https://app.example";

/// A server with a base domain, a path-style client, and bucket `web` with
/// two CORS rules: `APP` may GET/PUT/HEAD (exposing ETag, cached 600 s), any
/// `http://*.example.org` origin may GET.
async fn setup() -> (TestServer, Client) {
    let server = TestServer::start_with(|c| c.domain = Some(DOMAIN.to_owned()))
        .await
        .unwrap();
    let c = common::s3_client(&server);
    c.create_bucket().bucket("web").send().await.unwrap();
    c.create_bucket().bucket("plain").send().await.unwrap();
    let app = CorsRule::builder()
        .allowed_origins(APP)
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_methods("HEAD")
        .allowed_headers("*")
        .expose_headers("ETag")
        .expose_headers("x-amz-version-id")
        .max_age_seconds(600)
        .build()
        .unwrap();
    let any_org = CorsRule::builder()
        .allowed_origins("http://*.example.org")
        .allowed_methods("GET")
        .build()
        .unwrap();
    c.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(app)
                .cors_rules(any_org)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    put(&c, "web", "page.html", b"<html/>").await;
    put(&c, "plain", "page.html", b"<html/>").await;
    (server, c)
}

/// A virtual-host style client (`bucket.DOMAIN:port`) of `server`.
fn vhost_client(server: &TestServer) -> Client {
    let creds = server.credentials();
    let url = format!("http://{DOMAIN}:{}", server.s3_addr().port());
    Client::from_conf(
        common::config_builder(&url, &creds.access_key, &creds.secret_key)
            .force_path_style(false)
            .build(),
    )
}

fn expiry() -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(300)).unwrap()
}

/// Sends `method uri` to `server` whatever host the URI names (the `Host`
/// header keeps it), with `headers` and `body`; returns status and headers.
async fn send(
    server: &TestServer,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> (u16, HeaderMap) {
    let uri: http::Uri = uri.parse().unwrap();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", server.s3_addr()))
        .header(http::header::HOST, uri.authority().unwrap().as_str());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let client: HttpClient<_, Full<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
    let resp = client
        .request(req.body(Full::new(Bytes::from_static(body))).unwrap())
        .await
        .unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}

/// Sends a presigned request with an `Origin` header (if any).
async fn send_presigned(
    server: &TestServer,
    p: &PresignedRequest,
    origin: Option<&str>,
    body: &'static [u8],
) -> (u16, HeaderMap) {
    let mut headers: Vec<(&str, &str)> = p.headers().collect();
    if let Some(o) = origin {
        headers.push(("origin", o));
    }
    send(server, p.method(), p.uri(), &headers, body).await
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn assert_no_cors(h: &HeaderMap, what: &str) {
    let cors: Vec<_> = h
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{what}: unexpected CORS headers {cors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_origins_get_cors_headers_on_actual_responses() {
    let (server, c) = setup().await;
    let get = c
        .get_object()
        .bucket("web")
        .key("page.html")
        .presigned(expiry())
        .await
        .unwrap();
    let (status, h) = send_presigned(&server, &get, Some(APP), b"").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    assert_eq!(
        header(&h, "access-control-expose-headers"),
        Some("ETag, x-amz-version-id")
    );
    assert_eq!(
        header(&h, "access-control-allow-methods"),
        Some("GET, PUT, HEAD")
    );
    assert_eq!(header(&h, "access-control-max-age"), Some("600"));
    assert!(header(&h, "vary").unwrap().contains("Origin"));

    let head = c
        .head_object()
        .bucket("web")
        .key("page.html")
        .presigned(expiry())
        .await
        .unwrap();
    let (status, h) = send_presigned(&server, &head, Some(APP), b"").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));

    let put = c
        .put_object()
        .bucket("web")
        .key("upload.txt")
        .presigned(expiry())
        .await
        .unwrap();
    let (status, h) = send_presigned(&server, &put, Some(APP), b"from a browser").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));

    // A wildcard origin pattern echoes the origin; only its methods count.
    let (status, h) = send_presigned(&server, &get, Some("http://docs.example.org"), b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&h, "access-control-allow-origin"),
        Some("http://docs.example.org")
    );
    assert_eq!(header(&h, "access-control-expose-headers"), None);

    // Error responses carry them too, as in S3.
    let missing = c
        .get_object()
        .bucket("web")
        .key("missing")
        .presigned(expiry())
        .await
        .unwrap();
    let (status, h) = send_presigned(&server, &missing, Some(APP), b"").await;
    assert_eq!(status, 404);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_get_no_cors_headers() {
    let (server, c) = setup().await;
    let get = c
        .get_object()
        .bucket("web")
        .key("page.html")
        .presigned(expiry())
        .await
        .unwrap();
    let (status, h) = send_presigned(&server, &get, Some("https://evil.example"), b"").await;
    assert_eq!(status, 200, "the request itself is served");
    assert_no_cors(&h, "origin matching no rule");
    let (_, h) = send_presigned(&server, &get, None, b"").await;
    assert_no_cors(&h, "no Origin");

    // The origin matches, the method does not.
    let delete = c
        .delete_object()
        .bucket("web")
        .key("page.html")
        .presigned(expiry())
        .await
        .unwrap();
    let (status, h) = send_presigned(&server, &delete, Some(APP), b"").await;
    assert_eq!(status, 204);
    assert_no_cors(&h, "DELETE not allowed");

    // A bucket without CORS rules.
    let plain = c
        .get_object()
        .bucket("plain")
        .key("page.html")
        .presigned(expiry())
        .await
        .unwrap();
    let (status, h) = send_presigned(&server, &plain, Some(APP), b"").await;
    assert_eq!(status, 200);
    assert_no_cors(&h, "bucket without CORS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_host_style_preflight_and_actual_requests() {
    let (server, _) = setup().await;
    let port = server.s3_addr().port();
    let vhost = format!("http://web.{DOMAIN}:{port}/dir/page.html");
    let ask = |origin: &'static str, method: &'static str| {
        [
            ("origin", origin),
            ("access-control-request-method", method),
            ("access-control-request-headers", "content-type, x-amz-date"),
        ]
    };
    let (status, h) = send(&server, "OPTIONS", &vhost, &ask(APP, "PUT"), b"").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&h, "access-control-allow-headers"),
        Some("content-type, x-amz-date")
    );
    assert_eq!(header(&h, "access-control-allow-credentials"), Some("true"));
    let (status, _) = send(&server, "OPTIONS", &vhost, &ask(APP, "DELETE"), b"").await;
    assert_eq!(status, 403);
    let (status, _) = send(
        &server,
        "OPTIONS",
        &format!("http://plain.{DOMAIN}:{port}/page.html"),
        &ask(APP, "GET"),
        b"",
    )
    .await;
    assert_eq!(status, 403, "bucket without CORS rules");
    // Path style on the address still works next to it.
    let path = format!("http://{}/web/dir/page.html", server.s3_addr());
    let (status, _) = send(&server, "OPTIONS", &path, &ask(APP, "GET"), b"").await;
    assert_eq!(status, 200);

    let get = vhost_client(&server)
        .get_object()
        .bucket("web")
        .key("page.html")
        .presigned(expiry())
        .await
        .unwrap();
    assert!(
        get.uri().starts_with("http://web.s3.tessera.test:"),
        "{}",
        get.uri()
    );
    let (status, h) = send_presigned(&server, &get, Some(APP), b"").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "access-control-allow-origin"), Some(APP));
}
