//! Bucket policies: the API (Get/Put/Delete, status, MalformedPolicy) and
//! their effect on requests: an explicit Deny beats a grant, an Allow opens
//! what grants do not (to other keys and to unsigned requests),
//! conditions on the source address, TLS and listing parameters.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use tessera_server::admin::{GrantSet, KeyCreate};
use tessera_server::testing::TestServer;

use super::{anonymous, code, common, get, put, status, with_bucket, xml_code};

const BUCKET: &str = "pics";

/// A policy document with these statements.
fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// Anyone may GET objects under `pics/public/`.
const PUBLIC_READ: &str = r#"{"Sid":"pub","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/public/*"}"#;

async fn set_policy(client: &Client, policy: &str) {
    client
        .put_bucket_policy()
        .bucket(BUCKET)
        .policy(policy)
        .send()
        .await
        .unwrap();
}

/// A new key, with a grant on [`BUCKET`] when `read`/`write` ask for one.
async fn key(server: &TestServer, read: bool, write: bool) -> (Client, String) {
    let admin = server.server().admin_client();
    let created = admin
        .create_key(&KeyCreate {
            name: "other".into(),
            allow_create_bucket: false,
            admin: false,
        })
        .await
        .unwrap();
    if read || write {
        admin
            .set_grant(&GrantSet {
                access_key: created.access_key.clone(),
                bucket: BUCKET.into(),
                read,
                write,
                owner: false,
            })
            .await
            .unwrap();
    }
    let client = common::client_for(&server.s3_url(), &created.access_key, &created.secret_key);
    (client, created.access_key)
}

/// An anonymous GET of `path` (after the endpoint): status and error code.
async fn anon_get(server: &TestServer, path: &str) -> (u16, String) {
    let (status, body) = anonymous("GET", &format!("{}/{path}", server.s3_url()), b"").await;
    (status, xml_code(&body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_round_trip_and_status() {
    let (_server, c) = with_bucket(BUCKET).await;
    let get_policy = c.get_bucket_policy().bucket(BUCKET).send().await;
    assert_eq!(code(get_policy), "NoSuchBucketPolicy");
    let status_of = c.get_bucket_policy_status().bucket(BUCKET).send().await;
    assert_eq!(code(status_of), "NoSuchBucketPolicy");

    let public = doc(PUBLIC_READ);
    set_policy(&c, &public).await;
    let got = c.get_bucket_policy().bucket(BUCKET).send().await.unwrap();
    assert_eq!(got.policy(), Some(public.as_str()));
    let st = c
        .get_bucket_policy_status()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(st.policy_status().and_then(|s| s.is_public()), Some(true));

    // Limited to a source range: not public.
    let ranged = doc(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*",
            "Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}"#,
    );
    set_policy(&c, &ranged).await;
    let st = c
        .get_bucket_policy_status()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(st.policy_status().and_then(|s| s.is_public()), Some(false));

    c.delete_bucket_policy()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let get_policy = c.get_bucket_policy().bucket(BUCKET).send().await;
    assert_eq!(code(get_policy), "NoSuchBucketPolicy");
    let missing = c.get_bucket_policy().bucket("nope").send().await;
    assert_eq!(code(missing), "NoSuchBucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_policies_are_refused() {
    let (_server, c) = with_bucket(BUCKET).await;
    let bad = [
        "{not json".to_owned(),
        r#"{"Version":"2012-10-17"}"#.to_owned(),
        doc(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:Teleport","Resource":"arn:aws:s3:::pics/*"}"#,
        ),
        // An action whose first three bytes end inside a character.
        doc(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3é","Resource":"arn:aws:s3:::pics/*"}"#,
        ),
        doc(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}"#,
        ),
        doc(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics"}"#,
        ),
        doc(
            r#"{"Effect":"Allow","Principal":{"AWS":"NO-SUCH-KEY"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}"#,
        ),
        doc(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*","Condition":{"IpAddress":{"aws:SourceIp":"300.1.1.1"}}}"#,
        ),
        doc(
            r#"{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}"#,
        ),
    ];
    for policy in bad {
        let result = c
            .put_bucket_policy()
            .bucket(BUCKET)
            .policy(&policy)
            .send()
            .await;
        assert_eq!(status(result), 400, "{policy}");
        let result = c
            .put_bucket_policy()
            .bucket(BUCKET)
            .policy(&policy)
            .send()
            .await;
        assert_eq!(code(result), "MalformedPolicy", "{policy}");
    }
    let get_policy = c.get_bucket_policy().bucket(BUCKET).send().await;
    assert_eq!(code(get_policy), "NoSuchBucketPolicy", "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_reads_only_what_a_policy_allows() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "public/a.txt", b"for everyone").await;
    put(&c, BUCKET, "private/b.txt", b"secret").await;
    assert_eq!(
        anon_get(&server, "pics/public/a.txt").await,
        (403, "AccessDenied".into())
    );

    set_policy(&c, &doc(PUBLIC_READ)).await;
    let url = format!("{}/pics/public/a.txt", server.s3_url());
    let (st, body) = anonymous("GET", &url, b"").await;
    assert_eq!((st, body.as_slice()), (200, b"for everyone".as_slice()));
    let (st, _) = anonymous("HEAD", &url, b"").await;
    assert_eq!(st, 200);
    // Nothing else: other keys, listing, writes, deletes, bucket listing.
    assert_eq!(
        anon_get(&server, "pics/private/b.txt").await,
        (403, "AccessDenied".into())
    );
    assert_eq!(
        anon_get(&server, "pics?list-type=2").await,
        (403, "AccessDenied".into())
    );
    assert_eq!(anon_get(&server, "").await, (403, "AccessDenied".into()));
    let (st, body) = anonymous(
        "PUT",
        &format!("{}/pics/public/new.txt", server.s3_url()),
        b"x",
    )
    .await;
    assert_eq!((st, xml_code(&body).as_str()), (403, "AccessDenied"));
    let (st, _) = anonymous("DELETE", &url, b"").await;
    assert_eq!(st, 403);
    assert_eq!(get(&c, BUCKET, "public/a.txt").await, b"for everyone");
    // A bucket that does not exist is still NoSuchBucket.
    assert_eq!(
        anon_get(&server, "nope/x").await,
        (404, "NoSuchBucket".into())
    );

    c.delete_bucket_policy()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        anon_get(&server, "pics/public/a.txt").await,
        (403, "AccessDenied".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_writes_when_a_policy_allows_them() {
    let (server, c) = with_bucket(BUCKET).await;
    set_policy(
        &c,
        &doc(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["s3:PutObject","s3:ListBucket"],"Resource":["arn:aws:s3:::pics","arn:aws:s3:::pics/drop/*"]}"#),
    )
    .await;
    let (st, _) = anonymous(
        "PUT",
        &format!("{}/pics/drop/in.txt", server.s3_url()),
        b"dropped",
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(get(&c, BUCKET, "drop/in.txt").await, b"dropped");
    let (st, body) = anonymous("GET", &format!("{}/pics?list-type=2", server.s3_url()), b"").await;
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Key>drop/in.txt</Key>"));
    assert_eq!(
        anon_get(&server, "pics/drop/in.txt").await,
        (403, "AccessDenied".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_deny_beats_the_grant() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "doc.txt", b"v1").await;
    let (writer, id) = key(&server, true, true).await;
    put(&writer, BUCKET, "mine.txt", b"ok").await;

    set_policy(
        &c,
        &doc(&format!(
            r#"{{"Effect":"Deny","Principal":{{"AWS":"arn:aws:iam::123456789012:user/{id}"}},"Action":["s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::pics/*"}}"#
        )),
    )
    .await;
    let denied = writer
        .put_object()
        .bucket(BUCKET)
        .key("mine.txt")
        .body(b"again".to_vec().into())
        .send()
        .await;
    assert_eq!(code(denied), "AccessDenied");
    let denied = writer
        .delete_object()
        .bucket(BUCKET)
        .key("doc.txt")
        .send()
        .await;
    assert_eq!(code(denied), "AccessDenied");
    // What the Deny does not name, the grant still allows; others are not affected.
    assert_eq!(get(&writer, BUCKET, "doc.txt").await, b"v1");
    put(&c, BUCKET, "doc.txt", b"v2").await;
    // A denied key cannot copy into the bucket either.
    let copy = writer
        .copy_object()
        .bucket(BUCKET)
        .key("copy.txt")
        .copy_source("pics/doc.txt")
        .send()
        .await;
    assert_eq!(code(copy), "AccessDenied");
    // DeleteObjects is decided per key.
    let batch = Delete::builder()
        .objects(ObjectIdentifier::builder().key("doc.txt").build().unwrap())
        .build()
        .unwrap();
    let denied = writer
        .delete_objects()
        .bucket(BUCKET)
        .delete(batch)
        .send()
        .await;
    assert_eq!(code(denied), "AccessDenied");
    assert_eq!(get(&c, BUCKET, "doc.txt").await, b"v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_is_denied_too_but_keeps_the_policy_in_hand() {
    let (_server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "doc.txt", b"v1").await;
    set_policy(
        &c,
        &doc(r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pics","arn:aws:s3:::pics/*"]}"#),
    )
    .await;
    let denied = c.get_object().bucket(BUCKET).key("doc.txt").send().await;
    assert_eq!(code(denied), "AccessDenied");
    let denied = c.list_objects_v2().bucket(BUCKET).send().await;
    assert_eq!(code(denied), "AccessDenied");
    // The policy itself stays the owner's to read and remove.
    c.get_bucket_policy().bucket(BUCKET).send().await.unwrap();
    c.delete_bucket_policy()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(get(&c, BUCKET, "doc.txt").await, b"v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_allows_what_grants_do_not() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "doc.txt", b"shared").await;
    let (other, id) = key(&server, false, false).await;
    assert_eq!(
        code(
            other
                .get_object()
                .bucket(BUCKET)
                .key("doc.txt")
                .send()
                .await
        ),
        "AccessDenied"
    );

    set_policy(
        &c,
        &doc(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":["{id}"]}},"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::pics","arn:aws:s3:::pics/*"]}}"#
        )),
    )
    .await;
    assert_eq!(get(&other, BUCKET, "doc.txt").await, b"shared");
    let listed = other.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
    let put = other
        .put_object()
        .bucket(BUCKET)
        .key("x")
        .body(b"x".to_vec().into())
        .send()
        .await;
    assert_eq!(code(put), "AccessDenied");
    // The policy is the owner's business, not the reader's.
    assert_eq!(
        code(other.get_bucket_policy().bucket(BUCKET).send().await),
        "AccessDenied"
    );
    // Anonymous requests are not this key.
    assert_eq!(
        anon_get(&server, "pics/doc.txt").await,
        (403, "AccessDenied".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_on_source_ip_transport_and_listing() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "pub/a", b"a").await;
    let from = |cidr: &str| {
        doc(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*","Condition":{{"IpAddress":{{"aws:SourceIp":"{cidr}"}}}}}}"#
        ))
    };
    set_policy(&c, &from("127.0.0.0/8")).await;
    assert_eq!(anon_get(&server, "pics/pub/a").await.0, 200);
    set_policy(&c, &from("192.0.2.0/24")).await;
    assert_eq!(
        anon_get(&server, "pics/pub/a").await,
        (403, "AccessDenied".into())
    );

    // Listing only of one prefix, at most 10 keys at a time.
    set_policy(
        &c,
        &doc(r#"{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::pics",
                 "Condition":{"StringEquals":{"s3:prefix":"pub/"},"NumericLessThanEquals":{"s3:max-keys":"10"}}}"#),
    )
    .await;
    assert_eq!(
        anon_get(&server, "pics?list-type=2&prefix=pub/&max-keys=5")
            .await
            .0,
        200
    );
    assert_eq!(
        anon_get(&server, "pics?list-type=2&prefix=pub/&max-keys=50")
            .await
            .0,
        403
    );
    assert_eq!(
        anon_get(&server, "pics?list-type=2&prefix=other/&max-keys=5")
            .await
            .0,
        403
    );
    assert_eq!(
        anon_get(&server, "pics?list-type=2&max-keys=5").await.0,
        403
    );

    // Deny without TLS (the test server is plain HTTP): even the owner.
    set_policy(
        &c,
        &doc(r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*",
                 "Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#),
    )
    .await;
    assert_eq!(
        code(c.get_object().bucket(BUCKET).key("pub/a").send().await),
        "AccessDenied"
    );
    // A Deny from anywhere but here leaves the request alone.
    set_policy(
        &c,
        &doc(r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*",
                 "Condition":{"NotIpAddress":{"aws:SourceIp":["127.0.0.1/32","::1/128"]}}}"#),
    )
    .await;
    assert_eq!(get(&c, BUCKET, "pub/a").await, b"a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_opens_a_copy_source() {
    let (server, c) = with_bucket(BUCKET).await;
    c.create_bucket().bucket("dest").send().await.unwrap();
    put(&c, BUCKET, "src.txt", b"copy me").await;
    let (other, id) = key(&server, false, false).await;
    server
        .server()
        .admin_client()
        .set_grant(&GrantSet {
            access_key: id.clone(),
            bucket: "dest".into(),
            read: true,
            write: true,
            owner: false,
        })
        .await
        .unwrap();
    let copy = || {
        other
            .copy_object()
            .bucket("dest")
            .key("dst.txt")
            .copy_source("pics/src.txt")
            .send()
    };
    assert_eq!(code(copy().await), "AccessDenied");
    set_policy(
        &c,
        &doc(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{id}"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/src.txt"}}"#
        )),
    )
    .await;
    copy().await.unwrap();
    assert_eq!(get(&c, "dest", "dst.txt").await, b"copy me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expected_bucket_owner_is_checked() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "doc.txt", b"x").await;
    let owner = server.credentials().access_key.clone();
    c.get_object()
        .bucket(BUCKET)
        .key("doc.txt")
        .expected_bucket_owner(&owner)
        .send()
        .await
        .unwrap();
    let wrong = c
        .get_object()
        .bucket(BUCKET)
        .key("doc.txt")
        .expected_bucket_owner("111122223333")
        .send()
        .await;
    assert_eq!(code(wrong), "AccessDenied");
    let wrong = c
        .list_objects_v2()
        .bucket(BUCKET)
        .expected_bucket_owner("111122223333")
        .send()
        .await;
    assert_eq!(code(wrong), "AccessDenied");
    c.create_bucket().bucket("dest").send().await.unwrap();
    let wrong = c
        .copy_object()
        .bucket("dest")
        .key("k")
        .copy_source("pics/doc.txt")
        .expected_source_bucket_owner("111122223333")
        .send()
        .await;
    assert_eq!(code(wrong), "AccessDenied");
}
