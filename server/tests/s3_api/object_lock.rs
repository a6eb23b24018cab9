//! Object lock: bucket configuration, retention, legal holds, lock headers
//! on writes and reads, and deletes refused while a lock lasts.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, DefaultRetention,
    ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
    ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode, ObjectLockRule,
    VersioningConfiguration,
};
use tessera_server::admin::{GrantSet, KeyCreate};

use super::{code, common, put_version, setup, status};

/// A bucket created with object lock enabled.
async fn lock_bucket(c: &Client, name: &str) {
    c.create_bucket()
        .bucket(name)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
}

/// `secs` seconds from now (whole seconds, as S3 dates are).
fn in_secs(secs: i64) -> DateTime {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    DateTime::from_secs(i64::try_from(now).unwrap() + secs)
}

fn retention(mode: ObjectLockRetentionMode, until: DateTime) -> ObjectLockRetention {
    ObjectLockRetention::builder()
        .mode(mode)
        .retain_until_date(until)
        .build()
}

fn config(rule: Option<DefaultRetention>) -> ObjectLockConfiguration {
    let mut b = ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled);
    if let Some(d) = rule {
        b = b.rule(ObjectLockRule::builder().default_retention(d).build());
    }
    b.build()
}

/// A PutObject of `body` at `bucket/key` with lock headers: a mode and
/// retain-until date (`retain`), a legal hold (`hold`).
fn put_locked(
    c: &Client,
    (bucket, key): (&str, &str),
    body: &[u8],
    retain: Option<(ObjectLockMode, DateTime)>,
    hold: bool,
) -> PutObjectFluentBuilder {
    let (mode, until) = retain.unzip();
    c.put_object()
        .bucket(bucket)
        .key(key)
        .set_object_lock_mode(mode)
        .set_object_lock_retain_until_date(until)
        .set_object_lock_legal_hold_status(hold.then_some(ObjectLockLegalHoldStatus::On))
        .body(ByteStream::from(body.to_vec()))
}

/// Sends a PutObject that must succeed; returns the new version id.
async fn stored(req: PutObjectFluentBuilder) -> String {
    req.send().await.unwrap().version_id().unwrap().to_owned()
}

/// GetObjectRetention of a version (`None`: the latest).
async fn get_retention(
    c: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<
    aws_sdk_s3::operation::get_object_retention::GetObjectRetentionOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::get_object_retention::GetObjectRetentionError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
> {
    c.get_object_retention()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
}

/// The result of deleting one version.
async fn delete_version(
    c: &Client,
    bucket: &str,
    key: &str,
    version: &str,
    bypass: bool,
) -> String {
    let mut req = c
        .delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version);
    if bypass {
        req = req.bypass_governance_retention(true);
    }
    code(req.send().await)
}

async fn set_retention(
    c: &Client,
    bucket: &str,
    key: &str,
    version: &str,
    r: Option<ObjectLockRetention>,
    bypass: bool,
) -> String {
    let mut req = c
        .put_object_retention()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .set_retention(r);
    if bypass {
        req = req.bypass_governance_retention(true);
    }
    code(req.send().await)
}

async fn read_version(c: &Client, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_configuration_of_buckets() {
    let (_s, c) = setup().await;
    lock_bucket(&c, "locked").await;
    let versioning = c
        .get_bucket_versioning()
        .bucket("locked")
        .send()
        .await
        .unwrap();
    assert_eq!(versioning.status(), Some(&BucketVersioningStatus::Enabled));
    let got = c
        .get_object_lock_configuration()
        .bucket("locked")
        .send()
        .await
        .unwrap();
    let got = got.object_lock_configuration().unwrap();
    assert_eq!(got.object_lock_enabled(), Some(&ObjectLockEnabled::Enabled));
    assert!(got.rule().is_none());

    // Versioning cannot be suspended under object lock.
    let suspend = c
        .put_bucket_versioning()
        .bucket("locked")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await;
    let (http, err, _) = common::refusal(suspend);
    assert_eq!((http, err.as_str()), (409, "InvalidBucketState"));

    // A default retention in days, then in years.
    for (days, years) in [(Some(3), None), (None, Some(2))] {
        let rule = DefaultRetention::builder()
            .mode(ObjectLockRetentionMode::Compliance)
            .set_days(days)
            .set_years(years)
            .build();
        c.put_object_lock_configuration()
            .bucket("locked")
            .object_lock_configuration(config(Some(rule)))
            .send()
            .await
            .unwrap();
        let got = c
            .get_object_lock_configuration()
            .bucket("locked")
            .send()
            .await
            .unwrap();
        let d = got
            .object_lock_configuration()
            .unwrap()
            .rule()
            .unwrap()
            .default_retention()
            .unwrap();
        assert_eq!(d.mode(), Some(&ObjectLockRetentionMode::Compliance));
        assert_eq!((d.days(), d.years()), (days, years));
    }
    // Invalid rules.
    let both = DefaultRetention::builder()
        .mode(ObjectLockRetentionMode::Governance)
        .days(1)
        .years(1)
        .build();
    let zero = DefaultRetention::builder()
        .mode(ObjectLockRetentionMode::Governance)
        .days(0)
        .build();
    let no_mode = DefaultRetention::builder().days(1).build();
    for (rule, expected) in [
        (both, "MalformedXML"),
        (zero, "InvalidArgument"),
        (no_mode, "MalformedXML"),
    ] {
        let r = c
            .put_object_lock_configuration()
            .bucket("locked")
            .object_lock_configuration(config(Some(rule)))
            .send()
            .await;
        assert_eq!(code(r), expected);
    }
    let not_enabled = c
        .put_object_lock_configuration()
        .bucket("locked")
        .object_lock_configuration(ObjectLockConfiguration::builder().build())
        .send()
        .await;
    assert_eq!(code(not_enabled), "MalformedXML");

    // A bucket without object lock: none to get; enabling needs versioning.
    c.create_bucket().bucket("plain").send().await.unwrap();
    let none = c
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await;
    assert_eq!(code(none), "ObjectLockConfigurationNotFoundError");
    let unversioned = c
        .put_object_lock_configuration()
        .bucket("plain")
        .object_lock_configuration(config(None))
        .send()
        .await;
    assert_eq!(code(unversioned), "InvalidBucketState");
    common::enable_versioning(&c, "plain").await;
    c.put_object_lock_configuration()
        .bucket("plain")
        .object_lock_configuration(config(None))
        .send()
        .await
        .unwrap();
    let got = c
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.object_lock_configuration()
            .unwrap()
            .object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    let missing = c
        .get_object_lock_configuration()
        .bucket("nonexistent")
        .send()
        .await;
    assert_eq!(code(missing), "NoSuchBucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_retention_protects_versions_but_not_from_delete_markers() {
    let (_s, c) = setup().await;
    lock_bucket(&c, "backups").await;
    let rule = DefaultRetention::builder()
        .mode(ObjectLockRetentionMode::Governance)
        .days(1)
        .build();
    c.put_object_lock_configuration()
        .bucket("backups")
        .object_lock_configuration(config(Some(rule)))
        .send()
        .await
        .unwrap();
    let before = in_secs(0).secs();
    let v1 = put_version(&c, "backups", "db.dump", b"monday").await;

    let r = get_retention(&c, "backups", "db.dump", Some(&v1))
        .await
        .unwrap();
    let r = r.retention().unwrap();
    assert_eq!(r.mode(), Some(&ObjectLockRetentionMode::Governance));
    let until = r.retain_until_date().unwrap().secs();
    assert!(
        (before + 86_399..=before + 86_401).contains(&until),
        "{until}"
    );
    let head = c
        .head_object()
        .bucket("backups")
        .key("db.dump")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(head.object_lock_retain_until_date().unwrap().secs(), until);
    assert!(head.object_lock_legal_hold_status().is_none());

    // The version cannot be deleted; a delete marker can be added.
    let refused = c
        .delete_object()
        .bucket("backups")
        .key("db.dump")
        .version_id(&v1)
        .send()
        .await;
    let (http, err, _) = common::refusal(refused);
    assert_eq!((http, err.as_str()), (403, "AccessDenied"));
    let marker = c
        .delete_object()
        .bucket("backups")
        .key("db.dump")
        .send()
        .await
        .unwrap();
    assert_eq!(marker.delete_marker(), Some(true));
    // ... and removed again (markers carry no lock).
    delete_version(
        &c,
        "backups",
        "db.dump",
        marker.version_id().unwrap(),
        false,
    )
    .await;

    // Overwriting writes a new version; the old one stays intact.
    let v2 = put_version(&c, "backups", "db.dump", b"tuesday").await;
    assert_ne!(v1, v2);
    assert_eq!(read_version(&c, "backups", "db.dump", &v1).await, b"monday");
    assert_eq!(
        read_version(&c, "backups", "db.dump", &v2).await,
        b"tuesday"
    );

    // DeleteObjects refuses the locked versions one by one.
    let out = c
        .delete_objects()
        .bucket("backups")
        .delete(
            aws_sdk_s3::types::Delete::builder()
                .objects(
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key("db.dump")
                        .version_id(&v1)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors().len(), 1);
    assert_eq!(out.errors()[0].code(), Some("AccessDenied"));
    assert_eq!(read_version(&c, "backups", "db.dump", &v1).await, b"monday");

    // The root key may bypass governance.
    assert_eq!(
        delete_version(&c, "backups", "db.dump", &v1, true).await,
        "no error"
    );
    let gone = c
        .get_object()
        .bucket("backups")
        .key("db.dump")
        .version_id(&v1)
        .send()
        .await;
    assert_eq!(code(gone), "NoSuchVersion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_can_be_extended_but_shortened_only_in_governance_with_bypass() {
    let (_s, c) = setup().await;
    lock_bucket(&c, "vault").await;
    let v = put_version(&c, "vault", "k", b"data").await;
    let none = get_retention(&c, "vault", "k", None).await;
    assert_eq!(code(none), "NoSuchObjectLockConfiguration");
    // Unprotected until a retention is set.
    let gov = ObjectLockRetentionMode::Governance;
    let comp = ObjectLockRetentionMode::Compliance;
    let r = |m: &ObjectLockRetentionMode, secs| Some(retention(m.clone(), in_secs(secs)));
    assert_eq!(
        set_retention(&c, "vault", "k", &v, r(&gov, 3600), false).await,
        "no error"
    );
    // Extending is allowed, shortening or removing needs the bypass.
    assert_eq!(
        set_retention(&c, "vault", "k", &v, r(&gov, 7200), false).await,
        "no error"
    );
    assert_eq!(
        set_retention(&c, "vault", "k", &v, r(&gov, 1800), false).await,
        "AccessDenied"
    );
    let removed = || Some(ObjectLockRetention::builder().build());
    assert_eq!(
        set_retention(&c, "vault", "k", &v, removed(), false).await,
        "AccessDenied"
    );
    assert_eq!(
        set_retention(&c, "vault", "k", &v, r(&gov, 1800), true).await,
        "no error"
    );
    let got = get_retention(&c, "vault", "k", Some(&v)).await.unwrap();
    let until = got.retention().unwrap().retain_until_date().unwrap().secs();
    assert!((in_secs(1790).secs()..=in_secs(1800).secs()).contains(&until));
    // Governance may become compliance; compliance is for good.
    assert_eq!(
        set_retention(&c, "vault", "k", &v, r(&comp, 1800), false).await,
        "no error"
    );
    for (new, bypass) in [
        (r(&comp, 900), true),
        (r(&gov, 7200), true),
        (removed(), true),
    ] {
        assert_eq!(
            set_retention(&c, "vault", "k", &v, new, bypass).await,
            "AccessDenied"
        );
    }
    assert_eq!(
        delete_version(&c, "vault", "k", &v, true).await,
        "AccessDenied"
    );
    assert_eq!(
        set_retention(&c, "vault", "k", &v, r(&comp, 3600), false).await,
        "no error"
    );
    let got = get_retention(&c, "vault", "k", None).await.unwrap();
    assert_eq!(
        got.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Compliance)
    );

    // A governance retention removed with the bypass leaves none.
    let w = put_version(&c, "vault", "w", b"data").await;
    assert_eq!(
        set_retention(&c, "vault", "w", &w, r(&gov, 600), false).await,
        "no error"
    );
    assert_eq!(
        set_retention(&c, "vault", "w", &w, removed(), true).await,
        "no error"
    );
    let none = get_retention(&c, "vault", "w", None).await;
    assert_eq!(code(none), "NoSuchObjectLockConfiguration");
    assert_eq!(
        delete_version(&c, "vault", "w", &w, false).await,
        "no error"
    );

    // Dates in the past, missing objects.
    assert_eq!(
        set_retention(&c, "vault", "k", &v, r(&comp, -10), false).await,
        "InvalidArgument"
    );
    let missing = c
        .put_object_retention()
        .bucket("vault")
        .key("nothing")
        .retention(retention(gov.clone(), in_secs(60)))
        .send()
        .await;
    assert_eq!(code(missing), "NoSuchKey");
    let missing = get_retention(&c, "vault", "k", Some("no-such-version")).await;
    assert_eq!(code(missing), "NoSuchVersion");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_can_be_deleted_once_its_retention_ends() {
    let (_s, c) = setup().await;
    lock_bucket(&c, "short").await;
    let until = in_secs(3);
    let retain = Some((ObjectLockMode::Compliance, until));
    let v = stored(put_locked(&c, ("short", "k"), b"brief", retain, false)).await;
    assert_eq!(
        delete_version(&c, "short", "k", &v, true).await,
        "AccessDenied"
    );
    let wait = until.secs() - in_secs(0).secs() + 1;
    tokio::time::sleep(Duration::from_secs(u64::try_from(wait.max(1)).unwrap())).await;
    assert_eq!(
        delete_version(&c, "short", "k", &v, false).await,
        "no error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_holds_block_deletes_until_lifted() {
    let (_s, c) = setup().await;
    lock_bucket(&c, "held").await;
    let v = stored(put_locked(
        &c,
        ("held", "evidence"),
        b"exhibit a",
        None,
        true,
    ))
    .await;
    let hold = c
        .get_object_legal_hold()
        .bucket("held")
        .key("evidence")
        .send()
        .await
        .unwrap();
    assert_eq!(
        hold.legal_hold().unwrap().status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    let head = c
        .head_object()
        .bucket("held")
        .key("evidence")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert!(head.object_lock_mode().is_none());
    assert_eq!(
        delete_version(&c, "held", "evidence", &v, true).await,
        "AccessDenied"
    );
    let off = ObjectLockLegalHold::builder()
        .status(ObjectLockLegalHoldStatus::Off)
        .build();
    c.put_object_legal_hold()
        .bucket("held")
        .key("evidence")
        .version_id(&v)
        .legal_hold(off.clone())
        .send()
        .await
        .unwrap();
    let hold = c
        .get_object_legal_hold()
        .bucket("held")
        .key("evidence")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hold.legal_hold().unwrap().status(),
        Some(&ObjectLockLegalHoldStatus::Off)
    );
    // On again through PutObjectLegalHold, off, then the delete goes through.
    let on = ObjectLockLegalHold::builder()
        .status(ObjectLockLegalHoldStatus::On)
        .build();
    c.put_object_legal_hold()
        .bucket("held")
        .key("evidence")
        .legal_hold(on)
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_version(&c, "held", "evidence", &v, false).await,
        "AccessDenied"
    );
    c.put_object_legal_hold()
        .bucket("held")
        .key("evidence")
        .legal_hold(off.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_version(&c, "held", "evidence", &v, false).await,
        "no error"
    );

    // Errors: never set, missing object.
    let other = put_version(&c, "held", "other", b"x").await;
    let never = c
        .get_object_legal_hold()
        .bucket("held")
        .key("other")
        .version_id(&other)
        .send()
        .await;
    assert_eq!(code(never), "NoSuchObjectLockConfiguration");
    let missing = c
        .put_object_legal_hold()
        .bucket("held")
        .key("nothing")
        .legal_hold(off.clone())
        .send()
        .await;
    assert_eq!(code(missing), "NoSuchKey");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_headers_on_copy_and_multipart_writes() {
    let (_s, c) = setup().await;
    lock_bucket(&c, "dest").await;
    let v = put_version(&c, "dest", "src", b"source bytes").await;
    let until = in_secs(3600);
    let copied = c
        .copy_object()
        .bucket("dest")
        .key("copy")
        .copy_source(format!("dest/src?versionId={v}"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    let copy_id = copied.version_id().unwrap().to_owned();
    let head = c
        .head_object()
        .bucket("dest")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(
        head.object_lock_retain_until_date().unwrap().secs(),
        until.secs()
    );
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        delete_version(&c, "dest", "copy", &copy_id, false).await,
        "AccessDenied"
    );
    // The source was written without a lock and stays deletable.
    assert_eq!(
        delete_version(&c, "dest", "src", &v, false).await,
        "no error"
    );

    let created = c
        .create_multipart_upload()
        .bucket("dest")
        .key("big")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .send()
        .await
        .unwrap();
    let upload_id = created.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("dest")
        .key("big")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from(super::data(100_000, 3)))
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("dest")
        .key("big")
        .upload_id(upload_id)
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
    let big = done.version_id().unwrap().to_owned();
    let got = c
        .get_object()
        .bucket("dest")
        .key("big")
        .version_id(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(got.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        super::data(100_000, 3).as_slice()
    );
    assert_eq!(
        delete_version(&c, "dest", "big", &big, true).await,
        "AccessDenied"
    );

    // Header errors.
    let bad = ("dest", "bad");
    let mode_only =
        put_locked(&c, bad, b"x", None, false).object_lock_mode(ObjectLockMode::Governance);
    assert_eq!(code(mode_only.send().await), "InvalidArgument");
    let past = Some((ObjectLockMode::Governance, in_secs(-60)));
    let past = put_locked(&c, bad, b"x", past, false).send().await;
    assert_eq!(code(past), "InvalidArgument");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_with_lock_headers_needs_a_checksum() {
    let (server, _c) = setup().await;
    let creds = server.credentials();
    let config = common::config_builder(&server.s3_url(), &creds.access_key, &creds.secret_key)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    let c = Client::from_conf(config);
    lock_bucket(&c, "sums").await;
    let at = ("sums", "k");
    let bare = put_locked(&c, at, b"x", None, true).send().await;
    assert_eq!(code(bare), "InvalidRequest");
    // The MD5 of "x".
    let with_md5 = put_locked(&c, at, b"x", None, true).content_md5("ndTkYSaMgDT1yFZOFVxnpg==");
    assert_eq!(code(with_md5.send().await), "no error");
    // Without lock headers nothing is required.
    let plain = c
        .put_object()
        .bucket("sums")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(plain), "no error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_and_administrators_bypass_governance() {
    let (server, root) = setup().await;
    lock_bucket(&root, "team").await;
    let admin = server.server().admin_client();
    let key = admin
        .create_key(&KeyCreate {
            name: "writer".into(),
            allow_create_bucket: false,
            admin: false,
        })
        .await
        .unwrap();
    let mut grant = GrantSet {
        access_key: key.access_key.clone(),
        bucket: "team".into(),
        read: true,
        write: true,
        owner: false,
    };
    admin.set_grant(&grant).await.unwrap();
    let writer = common::client_for(&server.s3_url(), &key.access_key, &key.secret_key);
    let v = put_governed(&writer).await;
    // A read-write grant may set and extend a retention but not bypass it.
    assert_eq!(
        delete_version(&writer, "team", "k", &v, true).await,
        "AccessDenied"
    );
    let shorter = Some(retention(ObjectLockRetentionMode::Governance, in_secs(60)));
    assert_eq!(
        set_retention(&writer, "team", "k", &v, shorter.clone(), true).await,
        "AccessDenied"
    );
    // The writer may not change the bucket's lock configuration either.
    let reconfigure = writer
        .put_object_lock_configuration()
        .bucket("team")
        .object_lock_configuration(config(None))
        .send()
        .await;
    assert_eq!(code(reconfigure), "AccessDenied");
    // An owner grant may bypass.
    grant.owner = true;
    admin.set_grant(&grant).await.unwrap();
    assert_eq!(
        set_retention(&writer, "team", "k", &v, shorter, true).await,
        "no error"
    );
    assert_eq!(
        delete_version(&writer, "team", "k", &v, true).await,
        "no error"
    );
}

/// A version of `team/k` under a one-hour governance retention.
async fn put_governed(c: &Client) -> String {
    let retain = Some((ObjectLockMode::Governance, in_secs(3600)));
    stored(put_locked(c, ("team", "k"), b"governed", retain, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_leaves_a_locked_versions_shards() {
    let (server, c) = setup().await;
    let dir = server.data_dir().to_path_buf();
    lock_bucket(&c, "collect").await;
    let body = super::data(300_000, 9);
    let retain = Some((ObjectLockMode::Compliance, in_secs(3600)));
    let locked = stored(put_locked(&c, ("collect", "locked"), &body, retain, false)).await;
    let shards = common::shard_files(&dir);
    assert!(!shards.is_empty(), "the locked version has shards on disk");
    let free = put_version(&c, "collect", "free", &super::data(300_000, 10)).await;
    assert!(common::shard_files(&dir).len() > shards.len());

    assert_eq!(
        delete_version(&c, "collect", "locked", &locked, true).await,
        "AccessDenied"
    );
    c.delete_object()
        .bucket("collect")
        .key("locked")
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_version(&c, "collect", "free", &free, false).await,
        "no error"
    );
    // GC collects the free version's shards and leaves the locked one's.
    common::wait_for_shards(&dir, &shards).await;
    assert_eq!(common::shard_files(&dir), shards);
    assert_eq!(read_version(&c, "collect", "locked", &locked).await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_object_lock_refuses_lock_requests() {
    let (_s, c) = setup().await;
    c.create_bucket().bucket("plain").send().await.unwrap();
    super::put(&c, "plain", "k", b"x").await;
    let hold = || {
        ObjectLockLegalHold::builder()
            .status(ObjectLockLegalHoldStatus::On)
            .build()
    };
    let until = retention(ObjectLockRetentionMode::Governance, in_secs(60));
    let (b, k) = ("plain", "k");
    let refusals = [
        status(
            c.put_object_retention()
                .bucket(b)
                .key(k)
                .retention(until)
                .send()
                .await,
        ),
        status(c.get_object_retention().bucket(b).key(k).send().await),
        status(
            c.put_object_legal_hold()
                .bucket(b)
                .key(k)
                .legal_hold(hold())
                .send()
                .await,
        ),
        status(c.get_object_legal_hold().bucket(b).key(k).send().await),
    ];
    assert_eq!(refusals, [400; 4]);
    let codes = [
        code(c.get_object_retention().bucket(b).key(k).send().await),
        code(
            c.put_object_legal_hold()
                .bucket(b)
                .key(k)
                .legal_hold(hold())
                .send()
                .await,
        ),
        code(put_locked(&c, (b, "new"), b"x", None, true).send().await),
        code(
            c.create_multipart_upload()
                .bucket(b)
                .key("new")
                .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
                .send()
                .await,
        ),
    ];
    assert_eq!(codes, ["InvalidRequest"; 4]);
    let listed = c.list_object_versions().bucket(b).send().await.unwrap();
    assert_eq!(listed.versions().len(), 1, "nothing was written");
}
