//! Access keys and per-bucket grants, managed through the admin API and
//! enforced on real S3 requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use tessera_server::admin::{GrantSet, KeyCreate};
use tessera_server::testing::TestServer;

use common::{bucket_names, code, get_code};

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<(), String> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .map(drop)
        .map_err(|e| e.code().unwrap_or("no code").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_decide_what_a_key_may_do() {
    let server = TestServer::start().await.unwrap();
    let root = common::s3_client(&server);
    let admin = server.server().admin_client();
    root.create_bucket().bucket("shared").send().await.unwrap();
    put(&root, "shared", "doc.txt").await.unwrap();

    let created = admin
        .create_key(&KeyCreate {
            name: "reader".into(),
            allow_create_bucket: false,
            admin: false,
        })
        .await
        .unwrap();
    let reader = common::client_for(&server.s3_url(), &created.access_key, &created.secret_key);

    // No grant yet: nothing is visible, everything is denied.
    assert!(bucket_names(&reader).await.is_empty());
    assert_eq!(get_code(&reader, "shared", "doc.txt").await, "AccessDenied");
    assert_eq!(
        code(reader.list_objects_v2().bucket("shared").send().await),
        "AccessDenied"
    );
    assert_eq!(
        code(reader.create_bucket().bucket("mine").send().await),
        "AccessDenied"
    );

    // Read grant: reads work, writes do not.
    let mut grant = GrantSet {
        access_key: created.access_key.clone(),
        bucket: "shared".into(),
        read: true,
        write: false,
        owner: false,
    };
    admin.set_grant(&grant).await.unwrap();
    let body = reader
        .get_object()
        .bucket("shared")
        .key("doc.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        body.body.collect().await.unwrap().into_bytes().as_ref(),
        b"hello"
    );
    let names = bucket_names(&reader).await;
    assert_eq!(names, ["shared"]);
    assert_eq!(
        put(&reader, "shared", "new.txt").await.unwrap_err(),
        "AccessDenied"
    );
    assert_eq!(
        code(
            reader
                .delete_object()
                .bucket("shared")
                .key("doc.txt")
                .send()
                .await
        ),
        "AccessDenied"
    );
    assert_eq!(
        code(reader.delete_bucket().bucket("shared").send().await),
        "AccessDenied"
    );

    // Read + write: writes work; bucket settings still need ownership.
    grant.write = true;
    admin.set_grant(&grant).await.unwrap();
    put(&reader, "shared", "new.txt").await.unwrap();
    assert_eq!(
        code(
            reader
                .put_bucket_versioning()
                .bucket("shared")
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build()
                )
                .send()
                .await
        ),
        "AccessDenied"
    );

    // Copy needs read on the source too.
    root.create_bucket().bucket("private").send().await.unwrap();
    put(&root, "private", "secret.txt").await.unwrap();
    assert_eq!(
        code(
            reader
                .copy_object()
                .bucket("shared")
                .key("stolen.txt")
                .copy_source("private/secret.txt")
                .send()
                .await
        ),
        "AccessDenied"
    );

    // The listing shows the grant; deleting the key locks it out.
    let keys = admin.list_keys().await.unwrap();
    let info = keys
        .iter()
        .find(|k| k.access_key == created.access_key)
        .unwrap();
    assert_eq!(info.grants, [grant.clone()]);
    admin.delete_key(&created.access_key).await.unwrap();
    assert_eq!(
        get_code(&reader, "shared", "doc.txt").await,
        "InvalidAccessKeyId"
    );
    assert!(admin.delete_key(&created.access_key).await.is_err());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_owns_the_buckets_it_creates() {
    let server = TestServer::start().await.unwrap();
    let root = common::s3_client(&server);
    let admin = server.server().admin_client();
    root.create_bucket().bucket("roots").send().await.unwrap();
    let created = admin
        .create_key(&KeyCreate {
            name: "maker".into(),
            allow_create_bucket: true,
            admin: false,
        })
        .await
        .unwrap();
    let maker = common::client_for(&server.s3_url(), &created.access_key, &created.secret_key);
    maker.create_bucket().bucket("makers").send().await.unwrap();
    put(&maker, "makers", "a.txt").await.unwrap();
    maker
        .delete_object()
        .bucket("makers")
        .key("a.txt")
        .send()
        .await
        .unwrap();
    let names = bucket_names(&maker).await;
    assert_eq!(names, ["makers"]);
    assert_eq!(put(&maker, "roots", "x").await.unwrap_err(), "AccessDenied");
    maker.delete_bucket().bucket("makers").send().await.unwrap();

    // Unknown keys and wrong secrets are refused.
    let stranger = common::client_for(&server.s3_url(), "TKNOSUCHKEY000000000", "whatever-secret");
    assert_eq!(
        code(stranger.list_buckets().send().await),
        "InvalidAccessKeyId"
    );
    let wrong = common::client_for(&server.s3_url(), &created.access_key, "not-the-secret");
    assert_eq!(
        code(wrong.list_buckets().send().await),
        "SignatureDoesNotMatch"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_its_token() {
    let server = TestServer::start().await.unwrap();
    let wrong = tessera_server::admin::client::AdminClient::new(server.admin_url(), "wrong-token");
    let err = wrong.list_keys().await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    let keys = server.server().admin_client().list_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].admin);
    assert_eq!(keys[0].access_key, common::TEST_ACCESS_KEY);
    server.shutdown().await.unwrap();
}
