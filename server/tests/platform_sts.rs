//! STS `AssumeRole` on the S3 listener and the temporary credentials it
//! issues, driven with the AWS SDKs (and raw HTTP for what an SDK would
//! not send) against a real server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::error::SdkError;
use tessera_server::admin::{GrantSet, KeyCreate, KeyCreated};
use tessera_server::auth::KeyStore;
use tessera_server::datadir::DataDir;
use tessera_server::sts::{MAX_ACCESS_KEY_ID_LEN, TempKeys};
use tessera_server::testing::TestServer;
use time::OffsetDateTime;

use common::{bucket_names, code, get_code};

/// An STS client of `server` signed with this key (never reads the environment).
fn sts_client(server: &TestServer, access_key: &str, secret_key: &str) -> aws_sdk_sts::Client {
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(server.s3_url())
        .credentials_provider(common::credentials(access_key, secret_key))
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

/// Temporary credentials as the S3 client gets them.
#[derive(Debug, Clone)]
struct Temp {
    access_key: String,
    secret_key: String,
    token: Option<String>,
}

/// `AssumeRole` as `key`, with `duration` seconds when given.
async fn assume_role(
    server: &TestServer,
    access_key: &str,
    secret_key: &str,
    duration: Option<i32>,
) -> Result<(Temp, OffsetDateTime), String> {
    let out = sts_client(server, access_key, secret_key)
        .assume_role()
        .role_arn("arn:aws:iam::000000000000:role/example")
        .role_session_name("test")
        .set_duration_seconds(duration)
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("no code").to_owned())?;
    let c = out.credentials().expect("credentials");
    let user = out.assumed_role_user().expect("assumed role user");
    assert!(
        user.arn().ends_with("assumed-role/example/test"),
        "{}",
        user.arn()
    );
    let expires = OffsetDateTime::from_unix_timestamp(c.expiration().secs()).unwrap();
    Ok((
        Temp {
            access_key: c.access_key_id().to_owned(),
            secret_key: c.secret_access_key().to_owned(),
            token: Some(c.session_token().to_owned()),
        },
        expires,
    ))
}

/// An S3 client signing with temporary credentials.
fn s3_with(server: &TestServer, temp: &Temp) -> aws_sdk_s3::Client {
    let conf = common::config_builder(&server.s3_url(), "unused", "unused")
        .credentials_provider(Credentials::new(
            &temp.access_key,
            &temp.secret_key,
            temp.token.clone(),
            None,
            "tessera-sts",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    code(
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await,
    )
}

async fn create_key(server: &TestServer, name: &str, allow_create_bucket: bool) -> KeyCreated {
    server
        .server()
        .admin_client()
        .create_key(&KeyCreate {
            name: name.into(),
            allow_create_bucket,
            admin: false,
        })
        .await
        .unwrap()
}

fn root(server: &TestServer) -> (String, String) {
    let c = server.credentials();
    (c.access_key.clone(), c.secret_key.clone())
}

/// The HTTP status of an STS call (200 when it succeeded, 0 without an answer).
fn status_of<T, E>(result: Result<T, SdkError<E, HttpResponse>>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(e) => e.raw_response().map_or(0, |r| r.status().as_u16()),
    }
}

/// A raw HTTP/1.1 request: status and body text.
async fn raw(
    url: &str,
    method: http::Method,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = client
        .request(req.body(Full::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_key_gets_working_temporary_admin_credentials() {
    let server = TestServer::start().await.unwrap();
    let (ak, sk) = root(&server);
    let before = OffsetDateTime::now_utc();
    let (temp, expires) = assume_role(&server, &ak, &sk, None).await.unwrap();
    assert!(temp.access_key.starts_with("TS"), "{}", temp.access_key);
    assert!(temp.access_key.len() <= MAX_ACCESS_KEY_ID_LEN);
    assert!(!temp.secret_key.is_empty() && temp.token.as_ref().is_some_and(|t| !t.is_empty()));
    let lifetime = (expires - before).whole_seconds();
    assert!(
        (3595..=3601).contains(&lifetime),
        "default lifetime {lifetime}s"
    );

    let s3 = s3_with(&server, &temp);
    s3.create_bucket().bucket("temp-made").send().await.unwrap();
    assert_eq!(put(&s3, "temp-made", "a.txt").await, "no error");
    assert_eq!(get_code(&s3, "temp-made", "a.txt").await, "no error");
    // An admin's temporary credentials see and manage everything.
    assert_eq!(bucket_names(&s3).await, ["temp-made"]);
    common::enable_versioning(&s3, "temp-made").await;

    // Presigned URLs carry the session token as a signed query parameter.
    let presigned = s3
        .get_object()
        .bucket("temp-made")
        .key("a.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    assert!(presigned.uri().contains("X-Amz-Security-Token="));
    let (status, body) = common::http_get(presigned.uri()).await;
    assert_eq!((status, body.as_str()), (200, "hello"));

    // DurationSeconds: 900..=43200.
    let (_, expires) = assume_role(&server, &ak, &sk, Some(900)).await.unwrap();
    let lifetime = (expires - OffsetDateTime::now_utc()).whole_seconds();
    assert!(
        (890..=901).contains(&lifetime),
        "900 s asked, {lifetime}s given"
    );
    assert!(assume_role(&server, &ak, &sk, Some(43_200)).await.is_ok());
    for bad in [899, 43_201, 0, -5] {
        assert_eq!(
            assume_role(&server, &ak, &sk, Some(bad)).await.unwrap_err(),
            "ValidationError",
            "DurationSeconds={bad}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_credentials_carry_the_parents_grants_and_die_with_it() {
    let server = TestServer::start().await.unwrap();
    let admin = server.server().admin_client();
    let root_s3 = common::s3_client(&server);
    root_s3
        .create_bucket()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    root_s3
        .create_bucket()
        .bucket("other")
        .send()
        .await
        .unwrap();
    assert_eq!(put(&root_s3, "shared", "doc.txt").await, "no error");

    let reader = create_key(&server, "reader", false).await;
    admin
        .set_grant(&GrantSet {
            access_key: reader.access_key.clone(),
            bucket: "shared".into(),
            read: true,
            write: false,
            owner: false,
        })
        .await
        .unwrap();
    let (temp, _) = assume_role(&server, &reader.access_key, &reader.secret_key, None)
        .await
        .unwrap();
    let s3 = s3_with(&server, &temp);
    // What the reader may do...
    assert_eq!(get_code(&s3, "shared", "doc.txt").await, "no error");
    assert_eq!(
        code(s3.list_objects_v2().bucket("shared").send().await),
        "no error"
    );
    assert_eq!(bucket_names(&s3).await, ["shared"]);
    // ...and what it may not.
    assert_eq!(put(&s3, "shared", "new.txt").await, "AccessDenied");
    assert_eq!(get_code(&s3, "other", "x").await, "AccessDenied");
    assert_eq!(
        code(
            s3.delete_object()
                .bucket("shared")
                .key("doc.txt")
                .send()
                .await
        ),
        "AccessDenied"
    );
    assert_eq!(
        code(s3.create_bucket().bucket("mine").send().await),
        "AccessDenied"
    );
    // Temporary credentials cannot mint more temporary credentials.
    assert_eq!(
        assume_role(&server, &temp.access_key, &temp.secret_key, None)
            .await
            .unwrap_err(),
        "AccessDenied"
    );

    // A bucket made with a creator's temporary credentials belongs to the creator.
    let creator = create_key(&server, "creator", true).await;
    let (ctemp, _) = assume_role(&server, &creator.access_key, &creator.secret_key, None)
        .await
        .unwrap();
    let cs3 = s3_with(&server, &ctemp);
    cs3.create_bucket().bucket("mine").send().await.unwrap();
    assert_eq!(put(&cs3, "mine", "k").await, "no error");
    let parent = common::client_for(&server.s3_url(), &creator.access_key, &creator.secret_key);
    assert_eq!(bucket_names(&parent).await, ["mine"]);
    assert_eq!(get_code(&parent, "mine", "k").await, "no error");

    // Deleting the parent key revokes its temporary credentials.
    admin.delete_key(&reader.access_key).await.unwrap();
    assert_eq!(
        get_code(&s3, "shared", "doc.txt").await,
        "InvalidAccessKeyId"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tampered_tokenless_and_expired_credentials_are_refused() {
    let server = TestServer::start().await.unwrap();
    let (ak, sk) = root(&server);
    common::s3_client(&server)
        .create_bucket()
        .bucket("sts-bucket")
        .send()
        .await
        .unwrap();
    let (temp, _) = assume_role(&server, &ak, &sk, None).await.unwrap();
    assert_eq!(bucket_names(&s3_with(&server, &temp)).await, ["sts-bucket"]);

    let without_token = Temp {
        token: None,
        ..temp.clone()
    };
    assert_eq!(
        get_code(&s3_with(&server, &without_token), "sts-bucket", "k").await,
        "InvalidToken"
    );
    let mut wrong = temp.token.clone().unwrap();
    wrong.replace_range(..1, if wrong.starts_with('A') { "B" } else { "A" });
    let wrong_token = Temp {
        token: Some(wrong),
        ..temp.clone()
    };
    assert_eq!(
        get_code(&s3_with(&server, &wrong_token), "sts-bucket", "k").await,
        "InvalidToken"
    );
    let (other, _) = assume_role(&server, &ak, &sk, None).await.unwrap();
    let swapped = Temp {
        token: other.token,
        ..temp.clone()
    };
    assert_eq!(
        get_code(&s3_with(&server, &swapped), "sts-bucket", "k").await,
        "InvalidToken"
    );
    let mut id = temp.access_key.clone();
    let mid = id.len() / 2;
    let flipped = if id[mid..].starts_with('A') { "B" } else { "A" };
    id.replace_range(mid..=mid, flipped);
    let tampered = Temp {
        access_key: id,
        ..temp.clone()
    };
    assert_eq!(
        get_code(&s3_with(&server, &tampered), "sts-bucket", "k").await,
        "InvalidAccessKeyId"
    );
    let wrong_secret = Temp {
        secret_key: format!("{}x", temp.secret_key),
        ..temp.clone()
    };
    assert_eq!(
        get_code(&s3_with(&server, &wrong_secret), "sts-bucket", "k").await,
        "SignatureDoesNotMatch"
    );

    // Credentials sealed with this cluster's master key by the same code as
    // AssumeRole: one set already expired, one still live.
    let master = Arc::new(
        DataDir::open(server.data_dir())
            .unwrap()
            .master_key()
            .unwrap(),
    );
    let keys = KeyStore::new(server.server().meta().clone(), Arc::clone(&master));
    let parent = keys.get(&ak).await.unwrap().unwrap();
    let temp_keys = TempKeys::new(master);
    let now = OffsetDateTime::now_utc();
    let crafted = |expires| {
        let c = temp_keys.issue(&parent, expires).unwrap();
        Temp {
            access_key: c.access_key_id,
            secret_key: c.secret_access_key,
            token: Some(c.session_token),
        }
    };
    let live = crafted(now + time::Duration::minutes(5));
    assert_eq!(
        get_code(&s3_with(&server, &live), "sts-bucket", "k").await,
        "NoSuchKey"
    );
    let expired = crafted(now - time::Duration::seconds(1));
    assert_eq!(
        get_code(&s3_with(&server, &expired), "sts-bucket", "k").await,
        "ExpiredToken"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_needs_a_correct_signature_of_a_known_key() {
    let server = TestServer::start().await.unwrap();
    let (ak, sk) = root(&server);
    let form = "Action=AssumeRole&Version=2011-06-15&RoleArn=example&RoleSessionName=test";
    let (status, body) = raw(
        &format!("{}/", server.s3_url()),
        http::Method::POST,
        &[("content-type", "application/x-www-form-urlencoded")],
        form,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(!body.contains("SecretAccessKey"), "{body}");

    // A wrong secret or an unknown key fails s3s's signature check before
    // the route: S3-style errors, which the STS SDK reads as a bare status.
    let wrong = sts_client(&server, &ak, &format!("{sk}x"))
        .assume_role()
        .role_arn("example")
        .role_session_name("test")
        .send()
        .await;
    assert_eq!(status_of(wrong), 403);
    let unknown = sts_client(&server, "TKNOSUCHKEY000000000", &sk)
        .assume_role()
        .role_arn("example")
        .role_session_name("test")
        .send()
        .await;
    assert_eq!(status_of(unknown), 403);

    // Route errors are STS documents.
    let e = sts_client(&server, &ak, &sk)
        .assume_role()
        .role_arn("example")
        .role_session_name("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationError"));
    assert!(
        e.message().is_some_and(|m| m.contains("roleSessionName")),
        "{e:?}"
    );
    server.shutdown().await.unwrap();
}
