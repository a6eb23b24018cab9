//! ACLs: canned ACLs, grant headers and bodies on buckets and objects,
//! anonymous reads through `public-read`, the public access block's ACL
//! flags, and ownership controls disabling ACLs.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, CompletedMultipartUpload, CompletedPart, Grant, Grantee,
    ObjectCannedAcl, ObjectOwnership, Owner, OwnershipControls, OwnershipControlsRule, Permission,
    PublicAccessBlockConfiguration, Type,
};
use tessera_server::testing::TestServer;

use super::{anonymous, code, put, with_bucket, xml_code};

const BUCKET: &str = "docs";
const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

async fn anon_get(server: &TestServer, path: &str) -> (u16, String) {
    let (st, body) = anonymous("GET", &format!("{}/{path}", server.s3_url()), b"").await;
    (st, xml_code(&body))
}

/// `(grantee id or group uri, permission)` of every grant.
fn grants(list: &[Grant]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .iter()
        .map(|g| {
            let who = g.grantee().unwrap();
            let name = who.id().or(who.uri()).unwrap_or_default().to_owned();
            (name, g.permission().unwrap().as_str().to_owned())
        })
        .collect();
    out.sort();
    out
}

fn sorted<const N: usize>(mut pairs: [(String, String); N]) -> Vec<(String, String)> {
    pairs.sort();
    pairs.to_vec()
}

async fn object_acl(c: &Client, key: &str, acl: ObjectCannedAcl) -> String {
    code(
        c.put_object_acl()
            .bucket(BUCKET)
            .key(key)
            .acl(acl)
            .send()
            .await,
    )
}

/// Ownership controls with `BucketOwnerEnforced`.
fn enforced() -> OwnershipControls {
    OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::BucketOwnerEnforced)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

async fn enforce_ownership(c: &Client) {
    c.put_bucket_ownership_controls()
        .bucket(BUCKET)
        .ownership_controls(enforced())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_round_trip() {
    let (server, c) = with_bucket(BUCKET).await;
    let root = server.credentials().access_key.clone();
    let fc = || (root.clone(), "FULL_CONTROL".to_owned());
    let got = c.get_bucket_acl().bucket(BUCKET).send().await.unwrap();
    assert_eq!(grants(got.grants()), [fc()]);
    assert_eq!(got.owner().and_then(|o| o.id()), Some(root.as_str()));

    c.put_bucket_acl()
        .bucket(BUCKET)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let got = c.get_bucket_acl().bucket(BUCKET).send().await.unwrap();
    assert_eq!(
        grants(got.grants()),
        sorted([(ALL_USERS.to_owned(), "READ".to_owned()), fc()])
    );

    put(&c, BUCKET, "a.txt", b"a").await;
    c.put_object_acl()
        .bucket(BUCKET)
        .key("a.txt")
        .grant_read(format!("id=\"{root}\", uri=\"{ALL_USERS}\""))
        .send()
        .await
        .unwrap();
    let got = c
        .get_object_acl()
        .bucket(BUCKET)
        .key("a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        grants(got.grants()),
        sorted([
            (ALL_USERS.to_owned(), "READ".to_owned()),
            (root.clone(), "READ".to_owned())
        ])
    );
    // An AccessControlPolicy body.
    let body = AccessControlPolicy::builder()
        .owner(Owner::builder().id(&root).build())
        .grants(
            Grant::builder()
                .grantee(
                    Grantee::builder()
                        .r#type(Type::CanonicalUser)
                        .id(&root)
                        .build()
                        .unwrap(),
                )
                .permission(Permission::FullControl)
                .build(),
        )
        .build();
    c.put_object_acl()
        .bucket(BUCKET)
        .key("a.txt")
        .access_control_policy(body)
        .send()
        .await
        .unwrap();
    let got = c
        .get_object_acl()
        .bucket(BUCKET)
        .key("a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(grants(got.grants()), [fc()]);

    // Refusals.
    let unknown = c
        .put_object_acl()
        .bucket(BUCKET)
        .key("a.txt")
        .grant_read("id=\"NO-SUCH-KEY\"")
        .send()
        .await;
    assert_eq!(code(unknown), "InvalidArgument");
    let both = c
        .put_object_acl()
        .bucket(BUCKET)
        .key("a.txt")
        .acl(ObjectCannedAcl::Private)
        .grant_read(format!("id=\"{root}\""))
        .send()
        .await;
    assert_eq!(code(both), "InvalidRequest");
    let missing = c.get_object_acl().bucket(BUCKET).key("nope").send().await;
    assert_eq!(code(missing), "NoSuchKey");

    // CreateBucket's x-amz-acl.
    c.create_bucket()
        .bucket("open")
        .acl(BucketCannedAcl::AuthenticatedRead)
        .send()
        .await
        .unwrap();
    let got = c.get_bucket_acl().bucket("open").send().await.unwrap();
    assert_eq!(
        grants(got.grants()),
        sorted([
            (
                "http://acs.amazonaws.com/groups/global/AuthenticatedUsers".to_owned(),
                "READ".to_owned()
            ),
            fc()
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_reads_through_public_read() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "open.txt", b"open").await;
    put(&c, BUCKET, "closed.txt", b"closed").await;
    assert_eq!(
        anon_get(&server, "docs/open.txt").await,
        (403, "AccessDenied".into())
    );

    assert_eq!(
        object_acl(&c, "open.txt", ObjectCannedAcl::PublicRead).await,
        "no error"
    );
    let (st, body) = anonymous("GET", &format!("{}/docs/open.txt", server.s3_url()), b"").await;
    assert_eq!((st, body.as_slice()), (200, b"open".as_slice()));
    assert_eq!(
        anon_get(&server, "docs/closed.txt").await,
        (403, "AccessDenied".into())
    );
    // An object's READ is not the bucket's: no listing, no writes.
    assert_eq!(anon_get(&server, "docs?list-type=2").await.0, 403);
    let (st, _) = anonymous("PUT", &format!("{}/docs/open.txt", server.s3_url()), b"x").await;
    assert_eq!(st, 403);

    // IgnorePublicAcls, then BlockPublicAcls.
    let block = |ignore: bool, deny: bool| {
        c.put_public_access_block()
            .bucket(BUCKET)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .ignore_public_acls(ignore)
                    .block_public_acls(deny)
                    .build(),
            )
            .send()
    };
    block(true, false).await.unwrap();
    assert_eq!(anon_get(&server, "docs/open.txt").await.0, 403);
    block(false, true).await.unwrap();
    assert_eq!(anon_get(&server, "docs/open.txt").await.0, 200);
    assert_eq!(
        object_acl(&c, "closed.txt", ObjectCannedAcl::PublicRead).await,
        "AccessDenied"
    );
    c.delete_public_access_block()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();

    // Overwriting the object gives the new version no ACL: private again.
    put(&c, BUCKET, "open.txt", b"new").await;
    assert_eq!(anon_get(&server, "docs/open.txt").await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_read_bucket_acl_opens_listing() {
    let (server, c) = with_bucket(BUCKET).await;
    put(&c, BUCKET, "a.txt", b"a").await;
    assert_eq!(anon_get(&server, "docs?list-type=2").await.0, 403);
    c.put_bucket_acl()
        .bucket(BUCKET)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let (st, body) = anonymous("GET", &format!("{}/docs?list-type=2", server.s3_url()), b"").await;
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("<Key>a.txt</Key>"));
    assert_eq!(anon_get(&server, "docs/a.txt").await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_owner_enforced_disables_acls() {
    let (server, c) = with_bucket(BUCKET).await;
    assert_eq!(
        code(
            c.get_bucket_ownership_controls()
                .bucket(BUCKET)
                .send()
                .await
        ),
        "OwnershipControlsNotFoundError"
    );
    put(&c, BUCKET, "a.txt", b"a").await;
    assert_eq!(
        object_acl(&c, "a.txt", ObjectCannedAcl::PublicRead).await,
        "no error"
    );
    assert_eq!(anon_get(&server, "docs/a.txt").await.0, 200);

    // Not while the bucket ACL grants something to others.
    c.put_bucket_acl()
        .bucket(BUCKET)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let refused = c
        .put_bucket_ownership_controls()
        .bucket(BUCKET)
        .ownership_controls(enforced())
        .send()
        .await;
    assert_eq!(code(refused), "InvalidBucketAclWithObjectOwnership");
    c.put_bucket_acl()
        .bucket(BUCKET)
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    enforce_ownership(&c).await;
    let got = c
        .get_bucket_ownership_controls()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let rule = &got.ownership_controls().unwrap().rules()[0];
    assert_eq!(
        rule.object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );
    // Stored ACLs no longer count; new ones other than the owner's alone are refused.
    assert_eq!(anon_get(&server, "docs/a.txt").await.0, 403);
    assert_eq!(
        object_acl(&c, "a.txt", ObjectCannedAcl::PublicRead).await,
        "AccessControlListNotSupported"
    );
    let refused = c
        .put_bucket_acl()
        .bucket(BUCKET)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await;
    assert_eq!(code(refused), "AccessControlListNotSupported");
    assert_eq!(
        object_acl(&c, "a.txt", ObjectCannedAcl::Private).await,
        "no error"
    );
    assert_eq!(
        object_acl(&c, "a.txt", ObjectCannedAcl::BucketOwnerFullControl).await,
        "no error"
    );
    let created = c
        .create_bucket()
        .bucket("other")
        .acl(BucketCannedAcl::PublicRead)
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .send()
        .await;
    assert_eq!(code(created), "AccessControlListNotSupported");

    c.delete_bucket_ownership_controls()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(
            c.get_bucket_ownership_controls()
                .bucket(BUCKET)
                .send()
                .await
        ),
        "OwnershipControlsNotFoundError"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_carry_their_acl() {
    let (server, c) = with_bucket(BUCKET).await;
    c.put_object()
        .bucket(BUCKET)
        .key("put.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .body(b"put".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(anon_get(&server, "docs/put.txt").await.0, 200);
    c.copy_object()
        .bucket(BUCKET)
        .key("copy.txt")
        .copy_source("docs/put.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    assert_eq!(anon_get(&server, "docs/copy.txt").await.0, 200);
    // Without an ACL, a copy is private whatever its source's.
    c.copy_object()
        .bucket(BUCKET)
        .key("plain.txt")
        .copy_source("docs/put.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(anon_get(&server, "docs/plain.txt").await.0, 403);
    // A multipart upload's ACL goes to the completed version.
    let upload = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mpu")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket(BUCKET)
        .key("mpu")
        .upload_id(id)
        .part_number(1)
        .body(b"parts".to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        anon_get(&server, "docs/mpu").await.0,
        403,
        "not completed yet"
    );
    c.complete_multipart_upload()
        .bucket(BUCKET)
        .key("mpu")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (st, body) = anonymous("GET", &format!("{}/docs/mpu", server.s3_url()), b"").await;
    assert_eq!((st, body.as_slice()), (200, b"parts".as_slice()));

    enforce_ownership(&c).await;
    let refused = c
        .put_object()
        .bucket(BUCKET)
        .key("new.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .body(b"new".to_vec().into())
        .send()
        .await;
    assert_eq!(code(refused), "AccessControlListNotSupported");
    let head = c.head_object().bucket(BUCKET).key("new.txt").send().await;
    assert_eq!(code(head), "NotFound", "the refused write stored nothing");
    c.put_object()
        .bucket(BUCKET)
        .key("new.txt")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(b"new".to_vec().into())
        .send()
        .await
        .unwrap();
    let upload = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mpu")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await;
    assert_eq!(code(upload), "AccessControlListNotSupported");
}
