//! Bucket operations and bucket settings.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CorsConfiguration, CorsRule,
    CreateBucketConfiguration, Tag, Tagging, VersioningConfiguration,
};
use tessera_server::admin::KeyCreate;

use super::{code, common, data, put, setup, status, with_bucket};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_head_list_delete() {
    let (_server, c) = setup().await;
    for name in ["alpha", "beta.bucket", "gamma-1"] {
        c.create_bucket().bucket(name).send().await.unwrap();
    }
    c.head_bucket().bucket("alpha").send().await.unwrap();
    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .map(|b| b.name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["alpha", "beta.bucket", "gamma-1"]);
    c.delete_bucket()
        .bucket("beta.bucket")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(c.head_bucket().bucket("beta.bucket").send().await),
        404
    );
    assert_eq!(
        code(c.delete_bucket().bucket("beta.bucket").send().await),
        "NoSuchBucket"
    );
    assert_eq!(
        code(c.list_objects_v2().bucket("nope").send().await),
        "NoSuchBucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_rules_and_conflicts() {
    let (server, c) = setup().await;
    for bad in ["Upper", "a_b", "192.168.0.1", "bad..dots", "-start"] {
        assert_eq!(
            code(c.create_bucket().bucket(bad).send().await),
            "InvalidBucketName",
            "{bad}"
        );
    }
    c.create_bucket().bucket("mine").send().await.unwrap();
    assert_eq!(
        code(c.create_bucket().bucket("mine").send().await),
        "BucketAlreadyOwnedByYou"
    );
    let other = server
        .server()
        .admin_client()
        .create_key(&KeyCreate {
            name: "other".into(),
            allow_create_bucket: true,
            admin: false,
        })
        .await
        .unwrap();
    let c2 = common::client_for(&server.s3_url(), &other.access_key, &other.secret_key);
    assert_eq!(
        code(c2.create_bucket().bucket("mine").send().await),
        "BucketAlreadyExists"
    );
}

/// S3 deletes a bucket together with its multipart uploads in progress; the
/// parts' data goes as after AbortMultipartUpload. An object still refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_takes_uploads_in_progress_along() {
    let (server, c) = with_bucket("pending").await;
    let dir = server.data_dir().to_path_buf();
    let mut uploads = Vec::new();
    for key in ["a", "dir/b"] {
        let up = c
            .create_multipart_upload()
            .bucket("pending")
            .key(key)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_owned();
        c.upload_part()
            .bucket("pending")
            .key(key)
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from(data(300_000, 1)))
            .send()
            .await
            .unwrap();
        uploads.push((key, id));
    }
    assert_eq!(common::shard_files(&dir).len(), 12, "six shards per part");

    put(&c, "pending", "k", b"v").await;
    assert_eq!(
        code(c.delete_bucket().bucket("pending").send().await),
        "BucketNotEmpty"
    );
    c.delete_object()
        .bucket("pending")
        .key("k")
        .send()
        .await
        .unwrap();
    c.delete_bucket().bucket("pending").send().await.unwrap();
    assert_eq!(status(c.head_bucket().bucket("pending").send().await), 404);
    common::wait_for_shards(&dir, &[]).await;

    // A new bucket of the same name inherits none of the old uploads.
    c.create_bucket().bucket("pending").send().await.unwrap();
    let listed = c
        .list_multipart_uploads()
        .bucket("pending")
        .send()
        .await
        .unwrap();
    assert!(listed.uploads().is_empty(), "{:?}", listed.uploads());
    for (key, id) in &uploads {
        let parts = c
            .list_parts()
            .bucket("pending")
            .key(*key)
            .upload_id(id)
            .send()
            .await;
        assert_eq!(code(parts), "NoSuchUpload", "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_empty_and_location() {
    let (_server, c) = with_bucket("full").await;
    put(&c, "full", "k", b"v").await;
    assert_eq!(
        code(c.delete_bucket().bucket("full").send().await),
        "BucketNotEmpty"
    );
    let loc = c.get_bucket_location().bucket("full").send().await.unwrap();
    assert!(
        loc.location_constraint()
            .is_none_or(|l| l.as_str().is_empty())
    );
    let bad = c
        .create_bucket()
        .bucket("elsewhere")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await;
    assert_eq!(code(bad), "IllegalLocationConstraintException");
    c.delete_object()
        .bucket("full")
        .key("k")
        .send()
        .await
        .unwrap();
    c.delete_bucket().bucket("full").send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_setting() {
    let (_server, c) = with_bucket("ver").await;
    let v = c
        .get_bucket_versioning()
        .bucket("ver")
        .send()
        .await
        .unwrap();
    assert!(v.status().is_none());
    for s in [
        BucketVersioningStatus::Enabled,
        BucketVersioningStatus::Suspended,
    ] {
        c.put_bucket_versioning()
            .bucket("ver")
            .versioning_configuration(VersioningConfiguration::builder().status(s.clone()).build())
            .send()
            .await
            .unwrap();
        let got = c
            .get_bucket_versioning()
            .bucket("ver")
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), Some(&s));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_tagging() {
    let (_server, c) = with_bucket("tagged").await;
    assert_eq!(
        code(c.get_bucket_tagging().bucket("tagged").send().await),
        "NoSuchTagSet"
    );
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("team").value("storage").build().unwrap())
        .tag_set(Tag::builder().key("env").value("test").build().unwrap())
        .build()
        .unwrap();
    c.put_bucket_tagging()
        .bucket("tagged")
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    let got = c
        .get_bucket_tagging()
        .bucket("tagged")
        .send()
        .await
        .unwrap();
    let pairs: Vec<(&str, &str)> = got.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("team", "storage"), ("env", "test")]);
    c.delete_bucket_tagging()
        .bucket("tagged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(c.get_bucket_tagging().bucket("tagged").send().await),
        "NoSuchTagSet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_cors_and_preflight() {
    let (server, c) = with_bucket("web").await;
    assert_eq!(
        code(c.get_bucket_cors().bucket("web").send().await),
        "NoSuchCORSConfiguration"
    );
    let rule = CorsRule::builder()
        .allowed_origins("https://app.example")
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_headers("*")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .unwrap();
    c.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = c.get_bucket_cors().bucket("web").send().await.unwrap();
    let r = &got.cors_rules()[0];
    assert_eq!(r.allowed_methods(), ["GET", "PUT"]);
    assert_eq!(r.allowed_origins(), ["https://app.example"]);
    assert_eq!(r.max_age_seconds(), Some(600));

    let (ok, headers) = preflight(
        &server.s3_url(),
        "/web/file.txt",
        "https://app.example",
        "PUT",
    )
    .await;
    assert_eq!(ok, 200);
    assert_eq!(
        headers.get("access-control-allow-origin").unwrap(),
        "https://app.example"
    );
    assert_eq!(headers.get("access-control-max-age").unwrap(), "600");
    let (denied, _) = preflight(
        &server.s3_url(),
        "/web/file.txt",
        "https://evil.example",
        "PUT",
    )
    .await;
    assert_eq!(denied, 403);

    c.delete_bucket_cors().bucket("web").send().await.unwrap();
    assert_eq!(
        code(c.get_bucket_cors().bucket("web").send().await),
        "NoSuchCORSConfiguration"
    );
}

/// Sends a browser-style CORS preflight; returns status and headers.
async fn preflight(base: &str, path: &str, origin: &str, method: &str) -> (u16, http::HeaderMap) {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::builder()
        .method(http::Method::OPTIONS)
        .uri(format!("{base}{path}"))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .body(Empty::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    (resp.status().as_u16(), resp.headers().clone())
}
