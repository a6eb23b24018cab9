//! Signatures for another region than the server's: 400 naming the region
//! it expects, as S3 answers, so that clients (s3cmd) sign again for it.

use std::time::Duration;

use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use tessera_server::testing::TestServer;

use super::{common, put, setup, setup_with};

/// A client of `server`'s root key signing for `region`.
fn client_in(server: &TestServer, region: &'static str) -> aws_sdk_s3::Client {
    let creds = server.credentials();
    let config = common::config_builder(&server.s3_url(), &creds.access_key, &creds.secret_key)
        .region(Region::from_static(region))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_for_another_region_is_refused_naming_the_right_one() {
    let (server, c) = setup().await;
    // s3cmd's default bucket_location, then a real region that is not ours.
    for region in ["US", "eu-west-1"] {
        let other = client_in(&server, region);
        let err = other
            .create_bucket()
            .bucket("elsewhere")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("AuthorizationHeaderMalformed"), "{region}");
        let raw = err.raw_response().unwrap();
        assert_eq!(raw.status().as_u16(), 400);
        let body = std::str::from_utf8(raw.body().bytes().unwrap()).unwrap();
        assert!(body.contains("<Region>us-east-1</Region>"), "{body}");
        let wrong = format!("the region '{region}' is wrong; expecting 'us-east-1'");
        assert!(err.message().is_some_and(|m| m.contains(&wrong)), "{err:?}");
    }
    assert_eq!(
        super::status(c.head_bucket().bucket("elsewhere").send().await),
        404,
        "nothing was created"
    );

    // A presigned URL for another region: AuthorizationQueryParametersError.
    c.create_bucket().bucket("here").send().await.unwrap();
    put(&c, "here", "k", b"v").await;
    let presigned = client_in(&server, "eu-west-1")
        .get_object()
        .bucket("here")
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let (status, body) = common::http_get(presigned.uri()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("<Code>AuthorizationQueryParametersError</Code>"),
        "{body}"
    );
    assert!(body.contains("<Region>us-east-1</Region>"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expected_region_is_the_configured_one() {
    let (server, c) = setup_with(|config| config.region = "eu-west-1".into()).await;
    let err = c.list_buckets().send().await.unwrap_err();
    assert_eq!(err.code(), Some("AuthorizationHeaderMalformed"));
    let raw = err.raw_response().unwrap();
    let body = std::str::from_utf8(raw.body().bytes().unwrap()).unwrap();
    assert!(body.contains("<Region>eu-west-1</Region>"), "{body}");
    client_in(&server, "eu-west-1")
        .list_buckets()
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_url_lasts_at_most_a_week() {
    let (_server, c) = setup().await;
    c.create_bucket().bucket("here").send().await.unwrap();
    put(&c, "here", "k", b"v").await;
    let presign = |secs| {
        c.get_object()
            .bucket("here")
            .key("k")
            .presigned(PresigningConfig::expires_in(Duration::from_secs(secs)).unwrap())
    };
    // A week is the most S3 allows.
    let week = presign(604_800).await.unwrap();
    assert!(week.uri().contains("X-Amz-Expires=604800"));
    let (status, body) = common::http_get(week.uri()).await;
    assert_eq!((status, body.as_str()), (200, "v"));
    // The SDK refuses to sign more; a URL edited to ask for more (or for a
    // negative or malformed validity) is refused before its signature is read.
    let url = presign(60).await.unwrap().uri().to_owned();
    for bad in ["604801", "-1", "soon"] {
        let edited = url.replace("X-Amz-Expires=60", &format!("X-Amz-Expires={bad}"));
        assert_ne!(edited, url);
        let (status, body) = common::http_get(&edited).await;
        assert_eq!(status, 403, "{bad}: {body}");
        assert!(
            body.contains("<Code>AuthorizationQueryParametersError</Code>"),
            "{bad}: {body}"
        );
        assert!(body.contains("X-Amz-Expires"), "{body}");
    }
}
