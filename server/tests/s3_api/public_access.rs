//! The public access block: its API, `BlockPublicPolicy` refusing public
//! bucket policies, `RestrictPublicBuckets` closing a public policy to
//! unsigned requests.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::PublicAccessBlockConfiguration;
use tessera_server::testing::TestServer;

use super::{anonymous, code, common, get, put, status, with_bucket, xml_code};

const BUCKET: &str = "site";

const PUBLIC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#;

async fn block(client: &Client, block_public_policy: bool, restrict_public_buckets: bool) {
    client
        .put_public_access_block()
        .bucket(BUCKET)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_policy(block_public_policy)
                .restrict_public_buckets(restrict_public_buckets)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

async fn anon_status(server: &TestServer, path: &str) -> (u16, String) {
    let (st, body) = anonymous("GET", &format!("{}/{path}", server.s3_url()), b"").await;
    (st, xml_code(&body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_access_block_round_trip() {
    let (_server, c) = with_bucket(BUCKET).await;
    let missing = c.get_public_access_block().bucket(BUCKET).send().await;
    assert_eq!(code(missing), "NoSuchPublicAccessBlockConfiguration");
    let missing = c.get_public_access_block().bucket(BUCKET).send().await;
    assert_eq!(status(missing), 404);
    block(&c, true, false).await;
    let got = c
        .get_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let conf = got.public_access_block_configuration().unwrap();
    assert_eq!(conf.block_public_policy(), Some(true));
    assert_eq!(conf.restrict_public_buckets(), Some(false));
    assert_eq!(conf.block_public_acls(), Some(false));
    assert_eq!(conf.ignore_public_acls(), Some(false));
    c.delete_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let missing = c.get_public_access_block().bucket(BUCKET).send().await;
    assert_eq!(code(missing), "NoSuchPublicAccessBlockConfiguration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_public_policy_refuses_public_policies_only() {
    let (server, c) = with_bucket(BUCKET).await;
    block(&c, true, false).await;
    let refused = c
        .put_bucket_policy()
        .bucket(BUCKET)
        .policy(PUBLIC)
        .send()
        .await;
    assert_eq!(status(refused), 403);
    let refused = c
        .put_bucket_policy()
        .bucket(BUCKET)
        .policy(PUBLIC)
        .send()
        .await;
    assert_eq!(code(refused), "AccessDenied");
    assert_eq!(
        code(c.get_bucket_policy().bucket(BUCKET).send().await),
        "NoSuchBucketPolicy"
    );
    // A policy for a named key is not public.
    let owner = &server.credentials().access_key;
    let named = PUBLIC.replace(
        r#""Principal":"*""#,
        &format!(r#""Principal":{{"AWS":"{owner}"}}"#),
    );
    c.put_bucket_policy()
        .bucket(BUCKET)
        .policy(&named)
        .send()
        .await
        .unwrap();
    // Without the block, the public one is accepted; blocking afterwards
    // leaves it in place.
    c.delete_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    c.put_bucket_policy()
        .bucket(BUCKET)
        .policy(PUBLIC)
        .send()
        .await
        .unwrap();
    block(&c, true, false).await;
    let kept = c.get_bucket_policy().bucket(BUCKET).send().await.unwrap();
    assert_eq!(kept.policy(), Some(PUBLIC));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restrict_public_buckets_closes_a_public_policy_to_anonymous_requests() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "index.html", b"<html/>").await;
    c.put_bucket_policy()
        .bucket(BUCKET)
        .policy(PUBLIC)
        .send()
        .await
        .unwrap();
    assert_eq!(anon_status(&server, "site/index.html").await.0, 200);

    block(&c, false, true).await;
    assert_eq!(
        anon_status(&server, "site/index.html").await,
        (403, "AccessDenied".to_owned())
    );
    // Keys of the cluster are still served by the policy.
    let other = server
        .server()
        .admin_client()
        .create_key(&tessera_server::admin::KeyCreate {
            name: "reader".into(),
            allow_create_bucket: false,
            admin: false,
        })
        .await
        .unwrap();
    let reader = common::client_for(&server.s3_url(), &other.access_key, &other.secret_key);
    assert_eq!(get(&reader, BUCKET, "index.html").await, b"<html/>");

    c.delete_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(anon_status(&server, "site/index.html").await.0, 200);
}
