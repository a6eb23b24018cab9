//! The listeners: TLS (driven by the AWS SDK trusting a test CA),
//! virtual-host style addressing under a configured base domain, slow
//! clients cut off at the header timeout, and the connection cap.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tessera_server::testing::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_over_tls_with_a_real_client() {
    let certs = tempfile::tempdir().unwrap();
    let (cert_pem, files) = common::self_signed_tls(certs.path());
    let server = TestServer::start_with(|c| c.tls = Some(files))
        .await
        .unwrap();
    let url = server.s3_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let creds = server.credentials();
    let conf = common::config_builder(&url, &creds.access_key, &creds.secret_key)
        .http_client(common::https_client_trusting(&cert_pem))
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    client
        .create_bucket()
        .bucket("secure")
        .send()
        .await
        .unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    client
        .put_object()
        .bucket("secure")
        .key("blob")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let got = client
        .get_object()
        .bucket("secure")
        .key("blob")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        body.as_slice()
    );

    // A client that does not trust the certificate cannot connect at all,
    // and plain HTTP is not served on the TLS port.
    let untrusting = common::client_for(&url, &creds.access_key, &creds.secret_key);
    assert!(untrusting.list_buckets().send().await.is_err());
    let plain = common::client_for(
        &url.replace("https://", "http://"),
        &creds.access_key,
        &creds.secret_key,
    );
    assert!(plain.list_buckets().send().await.is_err());
    server.shutdown().await.unwrap();
}

/// Sends a presigned request to the server's socket with the URL's own Host
/// header (so `bucket.DOMAIN` needs no DNS): status and body.
async fn send_presigned(
    server: &TestServer,
    method: &str,
    presigned: &aws_sdk_s3::presigning::PresignedRequest,
    body: Bytes,
) -> (u16, Bytes) {
    let url: http::Uri = presigned.uri().parse().unwrap();
    let host = url.authority().unwrap().to_string();
    let path = url.path_and_query().unwrap().as_str();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", server.s3_addr()))
        .header(http::header::HOST, host)
        .body(Full::new(body))
        .unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client.request(request).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.into_body().collect().await.unwrap().to_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_host_style_under_the_configured_domain() {
    let server = TestServer::start_with(|c| c.domain = Some("s3.tessera.test".to_owned()))
        .await
        .unwrap();
    // Path style on the IP address keeps working.
    let path_style = common::s3_client(&server);
    path_style
        .create_bucket()
        .bucket("hosted")
        .send()
        .await
        .unwrap();

    let creds = server.credentials();
    let port = server.s3_addr().port();
    let vhost = aws_sdk_s3::Client::from_conf(
        common::config_builder(
            &format!("http://s3.tessera.test:{port}"),
            &creds.access_key,
            &creds.secret_key,
        )
        .force_path_style(false)
        .build(),
    );
    let expiry = PresigningConfig::expires_in(Duration::from_secs(60)).unwrap();
    let put = vhost
        .put_object()
        .bucket("hosted")
        .key("dir/file.txt")
        .presigned(expiry.clone())
        .await
        .unwrap();
    assert!(
        put.uri().starts_with("http://hosted.s3.tessera.test:"),
        "{}",
        put.uri()
    );
    let (status, body) = send_presigned(&server, "PUT", &put, Bytes::from_static(b"virtual")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let get = vhost
        .get_object()
        .bucket("hosted")
        .key("dir/file.txt")
        .presigned(expiry)
        .await
        .unwrap();
    let (status, body) = send_presigned(&server, "GET", &get, Bytes::new()).await;
    assert_eq!((status, body.as_ref()), (200, b"virtual".as_ref()));

    let got = path_style
        .get_object()
        .bucket("hosted")
        .key("dir/file.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"virtual"
    );
    server.shutdown().await.unwrap();
}

/// Opens a raw connection to `addr` and sends `sent` (nothing when empty).
async fn connect_sending(addr: SocketAddr, sent: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(sent.as_bytes()).await.unwrap();
    stream
}

/// Reads from `stream` until the server closes it (at most `limit`): the
/// bytes it sent, or `None` if it kept the connection open that long.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_finish_their_headers_are_cut_off() {
    let timeout = Duration::from_secs(1);
    let server = TestServer::start_with(|c| c.header_timeout = timeout)
        .await
        .unwrap();
    let (s3, admin) = (server.s3_addr(), server.server().admin_addr);
    let slow = [
        (
            s3,
            "GET /bucket/key HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Date: 2026",
        ),
        (s3, "GET /bucket/key HTT"),
        // Nothing at all, and half an HTTP/2 preface: hyper has not yet
        // told the protocol, so its own header timeout is not running.
        (s3, ""),
        (s3, "PRI * HTTP/2.0\r\n"),
        (admin, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        (admin, ""),
    ];
    let cut_off = futures::future::join_all(slow.iter().map(|&(addr, sent)| async move {
        let mut stream = connect_sending(addr, sent).await;
        let start = Instant::now();
        let closed = read_until_closed(&mut stream, Duration::from_secs(15)).await;
        (sent, closed.map(|_| start.elapsed()))
    }))
    .await;
    for (sent, after) in cut_off {
        let after = after.unwrap_or_else(|| panic!("{sent:?}: still open after 15 s"));
        assert!(
            after >= timeout / 2 && after < timeout * 6,
            "{sent:?}: closed after {after:?}"
        );
    }

    // A client that sends its request in time is served as before.
    let mut stream = connect_sending(s3, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
    tokio::time::sleep(timeout / 4).await;
    stream
        .write_all(b"Connection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(15))
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_for_a_free_one() {
    let server = TestServer::start_with(|c| {
        c.max_connections = 2;
        c.header_timeout = Duration::from_secs(60);
    })
    .await
    .unwrap();
    let s3 = server.s3_addr();
    // Two clients hold both connections (their headers are still coming).
    let mut first = connect_sending(s3, "GET / HTTP/1.1\r\n").await;
    let _second = connect_sending(s3, "GET / HTTP/1.1\r\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A third is not accepted (no answer) while they are open...
    let mut third = connect_sending(
        s3,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut byte = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_secs(1), third.read(&mut byte)).await;
    assert!(waited.is_err(), "answered over the cap: {waited:?}");

    // ...and is served as soon as one of them goes away.
    first.shutdown().await.unwrap();
    drop(first);
    let answer = read_until_closed(&mut third, Duration::from_secs(15))
        .await
        .expect("served once a connection closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    server.shutdown().await.unwrap();
}
