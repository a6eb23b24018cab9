//! Bucket lifecycle: the configuration (Get/Put/DeleteBucketLifecycle-
//! Configuration) with S3's refusals, the `x-amz-expiration` header, and
//! the lifecycle worker, driven through the admin API with `days_ahead`
//! so rules of days act at once.

use std::collections::BTreeSet;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, ExpirationStatus,
    LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator, LifecycleRuleFilter,
    NoncurrentVersionExpiration, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode,
    Tag, Transition, TransitionStorageClass,
};
use tessera_server::admin::{LifecycleStatus, RunRequest};
use tessera_server::testing::TestServer;

use super::{code, common, put, put_version, setup, status, with_bucket};

const DAY_SECS: i64 = 86_400;

fn prefix(p: &str) -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix(p).build()
}

fn rule(
    id: &str,
    filter: LifecycleRuleFilter,
) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
        .filter(filter)
}

fn expire_days(days: i32) -> LifecycleExpiration {
    LifecycleExpiration::builder().days(days).build()
}

fn noncurrent(days: i32, keep: Option<i32>) -> NoncurrentVersionExpiration {
    NoncurrentVersionExpiration::builder()
        .noncurrent_days(days)
        .set_newer_noncurrent_versions(keep)
        .build()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

/// Sends a PutBucketLifecycleConfiguration of `rules`.
async fn put_rules(
    c: &Client,
    bucket: &str,
    rules: Vec<LifecycleRule>,
) -> Result<
    aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
>{
    let config = BucketLifecycleConfiguration::builder()
        .set_rules(Some(rules))
        .build()
        .unwrap();
    c.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(config)
        .send()
        .await
}

/// Asks for a lifecycle run judged `days_ahead` days from now and waits
/// until it has finished; returns the status after it.
async fn run_lifecycle(server: &TestServer, days_ahead: u32) -> LifecycleStatus {
    let admin = server.server().admin_client();
    let before = admin.lifecycle_status().await.unwrap().runs;
    admin
        .run_lifecycle(&RunRequest { days_ahead })
        .await
        .unwrap();
    for _ in 0..300 {
        let status = admin.lifecycle_status().await.unwrap();
        if status.runs > before && !status.running && !status.pending {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the lifecycle run did not finish");
}

/// Every `(key, version id, is delete marker)` of the bucket.
async fn versions(c: &Client, bucket: &str) -> BTreeSet<(String, String, bool)> {
    let out = c
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut all = BTreeSet::new();
    for v in out.versions() {
        all.insert((
            v.key().unwrap().to_owned(),
            v.version_id().unwrap().to_owned(),
            false,
        ));
    }
    for m in out.delete_markers() {
        all.insert((
            m.key().unwrap().to_owned(),
            m.version_id().unwrap().to_owned(),
            true,
        ));
    }
    all
}

/// Keys of the current objects.
async fn keys(c: &Client, bucket: &str) -> Vec<String> {
    let out = c.list_objects_v2().bucket(bucket).send().await.unwrap();
    out.contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_round_trips_and_deletes() {
    let (_server, c) = with_bucket("rules").await;
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await;
    assert_eq!(status(got), 404);
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await;
    assert_eq!(code(got), "NoSuchLifecycleConfiguration");

    let midnight = DateTime::from_secs(1_900_000_000 / DAY_SECS * DAY_SECS);
    let rules = vec![
        rule("by-days", prefix("logs/"))
            .expiration(expire_days(30))
            .build()
            .unwrap(),
        rule(
            "by-date",
            LifecycleRuleFilter::builder()
                .tag(tag("tmp", "yes"))
                .build(),
        )
        .expiration(LifecycleExpiration::builder().date(midnight).build())
        .build()
        .unwrap(),
        rule(
            "versions",
            LifecycleRuleFilter::builder()
                .and(
                    LifecycleRuleAndOperator::builder()
                        .prefix("data/")
                        .tags(tag("class", "cold"))
                        .object_size_greater_than(10)
                        .object_size_less_than(1000)
                        .build(),
                )
                .build(),
        )
        .noncurrent_version_expiration(noncurrent(7, Some(2)))
        .status(ExpirationStatus::Disabled)
        .build()
        .unwrap(),
        rule("uploads", prefix(""))
            .expiration(
                LifecycleExpiration::builder()
                    .expired_object_delete_marker(true)
                    .build(),
            )
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(3)
                    .build(),
            )
            .build()
            .unwrap(),
    ];
    put_rules(&c, "rules", rules.clone()).await.unwrap();
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await
        .unwrap();
    assert_eq!(got.rules(), rules.as_slice());

    c.delete_bucket_lifecycle()
        .bucket("rules")
        .send()
        .await
        .unwrap();
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await;
    assert_eq!(code(got), "NoSuchLifecycleConfiguration");
    let missing = put_rules(
        &c,
        "no-such-bucket",
        vec![
            rule("r", prefix(""))
                .expiration(expire_days(1))
                .build()
                .unwrap(),
        ],
    )
    .await;
    assert_eq!(code(missing), "NoSuchBucket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configurations_are_refused_as_s3_does() {
    let (_server, c) = with_bucket("rules").await;
    let days = |d| {
        rule("r", prefix(""))
            .expiration(expire_days(d))
            .build()
            .unwrap()
    };
    let refused = |rules: Vec<LifecycleRule>| {
        let c = c.clone();
        async move { code(put_rules(&c, "rules", rules).await) }
    };
    assert_eq!(refused(vec![days(0)]).await, "InvalidArgument");
    assert_eq!(refused(vec![days(-1)]).await, "InvalidArgument");
    let both = LifecycleExpiration::builder()
        .days(1)
        .date(DateTime::from_secs(1_900_000_000 / DAY_SECS * DAY_SECS))
        .build();
    assert_eq!(
        refused(vec![
            rule("r", prefix("")).expiration(both).build().unwrap()
        ])
        .await,
        "MalformedXML"
    );
    let noon = LifecycleExpiration::builder()
        .date(DateTime::from_secs(
            1_900_000_000 / DAY_SECS * DAY_SECS + DAY_SECS / 2,
        ))
        .build();
    assert_eq!(
        refused(vec![
            rule("r", prefix("")).expiration(noon).build().unwrap()
        ])
        .await,
        "InvalidArgument"
    );
    let marker_and_days = LifecycleExpiration::builder()
        .days(1)
        .expired_object_delete_marker(true)
        .build();
    assert_eq!(
        refused(vec![
            rule("r", prefix(""))
                .expiration(marker_and_days)
                .build()
                .unwrap()
        ])
        .await,
        "MalformedXML"
    );
    assert_eq!(refused(vec![days(1), days(2)]).await, "InvalidArgument");
    let many: Vec<LifecycleRule> = (0..1001)
        .map(|i| {
            rule(&format!("r{i}"), prefix(&format!("p{i}/")))
                .expiration(expire_days(1))
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(refused(many).await, "MalformedXML");
    let long_id = rule(&"x".repeat(256), prefix(""))
        .expiration(expire_days(1))
        .build()
        .unwrap();
    assert_eq!(refused(vec![long_id]).await, "InvalidArgument");
    let no_action = rule("r", prefix("")).build().unwrap();
    assert_eq!(refused(vec![no_action]).await, "InvalidRequest");
    let bad_status = rule("r", prefix(""))
        .status(ExpirationStatus::from("Sometimes"))
        .expiration(expire_days(1))
        .build()
        .unwrap();
    assert_eq!(refused(vec![bad_status]).await, "MalformedXML");
    let two_conditions = LifecycleRuleFilter::builder()
        .prefix("a/")
        .tag(tag("k", "v"))
        .build();
    assert_eq!(
        refused(vec![
            rule("r", two_conditions)
                .expiration(expire_days(1))
                .build()
                .unwrap()
        ])
        .await,
        "MalformedXML"
    );
    let sizes = LifecycleRuleFilter::builder()
        .and(
            LifecycleRuleAndOperator::builder()
                .object_size_greater_than(100)
                .object_size_less_than(100)
                .build(),
        )
        .build();
    assert_eq!(
        refused(vec![
            rule("r", sizes).expiration(expire_days(1)).build().unwrap()
        ])
        .await,
        "InvalidArgument"
    );
    let zero_noncurrent = rule("r", prefix(""))
        .noncurrent_version_expiration(noncurrent(0, None))
        .build()
        .unwrap();
    assert_eq!(refused(vec![zero_noncurrent]).await, "InvalidArgument");
    let zero_abort = rule("r", prefix(""))
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(0)
                .build(),
        )
        .build()
        .unwrap();
    assert_eq!(refused(vec![zero_abort]).await, "InvalidArgument");
    let transition = rule("r", prefix(""))
        .transitions(
            Transition::builder()
                .days(30)
                .storage_class(TransitionStorageClass::Glacier)
                .build(),
        )
        .build()
        .unwrap();
    let answer = put_rules(&c, "rules", vec![transition]).await;
    assert_eq!(status(answer), 501);
    // Nothing refused was stored.
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await;
    assert_eq!(code(got), "NoSuchLifecycleConfiguration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_sets_lifecycle() {
    let (server, c) = with_bucket("owned").await;
    let admin = server.server().admin_client();
    let key = admin
        .create_key(&tessera_server::admin::KeyCreate {
            name: "writer".into(),
            allow_create_bucket: false,
            admin: false,
        })
        .await
        .unwrap();
    admin
        .set_grant(&tessera_server::admin::GrantSet {
            access_key: key.access_key.clone(),
            bucket: "owned".into(),
            read: true,
            write: true,
            owner: false,
        })
        .await
        .unwrap();
    let writer = common::client_for(&server.s3_url(), &key.access_key, &key.secret_key);
    let rules = vec![
        rule("r", prefix(""))
            .expiration(expire_days(1))
            .build()
            .unwrap(),
    ];
    assert_eq!(
        code(put_rules(&writer, "owned", rules.clone()).await),
        "AccessDenied"
    );
    put_rules(&c, "owned", rules).await.unwrap();
    let deleted = writer
        .delete_bucket_lifecycle()
        .bucket("owned")
        .send()
        .await;
    assert_eq!(code(deleted), "AccessDenied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_a_rule_expires_carry_x_amz_expiration() {
    let (_server, c) = with_bucket("exp").await;
    put_rules(
        &c,
        "exp",
        vec![
            rule("short", prefix("logs/"))
                .expiration(expire_days(3))
                .build()
                .unwrap(),
            rule("long", prefix(""))
                .expiration(expire_days(10))
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let out = c
        .put_object()
        .bucket("exp")
        .key("logs/a")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let header = out.expiration().unwrap().to_owned();
    assert!(header.ends_with("GMT\", rule-id=\"short\""), "{header}");
    // The first midnight UTC at least 3 days after the write.
    let modified = c
        .head_object()
        .bucket("exp")
        .key("logs/a")
        .send()
        .await
        .unwrap();
    let written = modified.last_modified().unwrap().secs();
    let expiry = ((written + 3 * DAY_SECS) / DAY_SECS + 1) * DAY_SECS;
    let date = DateTime::from_secs(expiry)
        .fmt(aws_sdk_s3::primitives::DateTimeFormat::HttpDate)
        .unwrap();
    assert_eq!(header, format!("expiry-date=\"{date}\", rule-id=\"short\""));
    assert_eq!(modified.expiration(), Some(header.as_str()));
    let got = c
        .get_object()
        .bucket("exp")
        .key("logs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(got.expiration(), Some(header.as_str()));
    // A copy and a completed upload are new objects the rules judge too.
    let copied = c
        .copy_object()
        .bucket("exp")
        .key("logs/copy")
        .copy_source("exp/logs/a")
        .send()
        .await
        .unwrap();
    assert!(copied.expiration().unwrap().contains("rule-id=\"short\""));
    let upload = c
        .create_multipart_upload()
        .bucket("exp")
        .key("logs/mpu")
        .send()
        .await
        .unwrap();
    let id = upload.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("exp")
        .key("logs/mpu")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("exp")
        .key("logs/mpu")
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(done.expiration().unwrap().contains("rule-id=\"short\""));
    put(&c, "exp", "other", b"y").await;
    let other = c
        .head_object()
        .bucket("exp")
        .key("other")
        .send()
        .await
        .unwrap();
    assert!(other.expiration().unwrap().contains("rule-id=\"long\""));

    c.delete_bucket_lifecycle()
        .bucket("exp")
        .send()
        .await
        .unwrap();
    let plain = c
        .head_object()
        .bucket("exp")
        .key("logs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.expiration(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_objects_are_deleted_and_their_data_freed() {
    let (server, c) = with_bucket("expire").await;
    let dir = server.data_dir().to_path_buf();
    put(&c, "expire", "keep/a", &super::data(200_000, 1)).await;
    put(&c, "expire", "off/b", &super::data(200_000, 2)).await;
    put(&c, "expire", "sized/small", b"small").await;
    let kept = common::shard_files(&dir);
    put(&c, "expire", "logs/a", &super::data(200_000, 3)).await;
    put(&c, "expire", "logs/b", &super::data(200_000, 4)).await;
    put(&c, "expire", "sized/big", &super::data(2000, 5)).await;
    assert!(common::shard_files(&dir).len() > kept.len());
    put_rules(
        &c,
        "expire",
        vec![
            rule("logs", prefix("logs/"))
                .expiration(expire_days(2))
                .build()
                .unwrap(),
            rule("off", prefix("off/"))
                .expiration(expire_days(1))
                .status(ExpirationStatus::Disabled)
                .build()
                .unwrap(),
            rule(
                "sized",
                LifecycleRuleFilter::builder()
                    .and(
                        LifecycleRuleAndOperator::builder()
                            .prefix("sized/")
                            .object_size_greater_than(1000)
                            .build(),
                    )
                    .build(),
            )
            .expiration(expire_days(1))
            .build()
            .unwrap(),
        ],
    )
    .await
    .unwrap();

    // Not yet due.
    let status = run_lifecycle(&server, 0).await;
    assert_eq!(status.counts.objects_expired, 0);
    assert_eq!(keys(&c, "expire").await.len(), 6);

    let status = run_lifecycle(&server, 3).await;
    assert_eq!(status.counts.objects_expired, 3, "{status:?}");
    assert_eq!(keys(&c, "expire").await, ["keep/a", "off/b", "sized/small"]);
    // Unversioned: the versions are gone, not hidden.
    let left: Vec<String> = versions(&c, "expire")
        .await
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(left, ["keep/a", "off/b", "sized/small"]);
    // The expired objects' shards leave the disks.
    common::wait_for_shards(&dir, &kept).await;
    assert!(
        common::metric(&server, "tessera_lifecycle_objects_expired_total")
            .await
            .is_some_and(|n| n >= 3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_buckets_get_markers_lose_old_versions_and_lone_markers() {
    let (server, c) = setup().await;
    c.create_bucket().bucket("ver").send().await.unwrap();
    common::enable_versioning(&c, "ver").await;
    let current = put_version(&c, "ver", "cur/a", b"a1").await;
    let h1 = put_version(&c, "ver", "hist/k", b"k1").await;
    let h2 = put_version(&c, "ver", "hist/k", b"k2").await;
    let h3 = put_version(&c, "ver", "hist/k", b"k3").await;
    put_version(&c, "ver", "gone/x", b"x1").await;
    c.delete_object()
        .bucket("ver")
        .key("gone/x")
        .send()
        .await
        .unwrap();
    put_rules(
        &c,
        "ver",
        vec![
            rule("expire", prefix("cur/"))
                .expiration(expire_days(1))
                .build()
                .unwrap(),
            rule("history", prefix("hist/"))
                .noncurrent_version_expiration(noncurrent(1, Some(1)))
                .build()
                .unwrap(),
            rule("markers", prefix("gone/"))
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .noncurrent_version_expiration(noncurrent(1, None))
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();

    let status = run_lifecycle(&server, 2).await;
    assert_eq!(status.counts.objects_expired, 1, "{status:?}");
    assert_eq!(status.counts.versions_removed, 2, "{status:?}");
    assert_eq!(status.counts.markers_removed, 1, "{status:?}");
    // Nothing was proposed that the state machine had to refuse.
    assert_eq!(status.counts.skipped_changed, 0, "{status:?}");
    let all = versions(&c, "ver").await;
    let markers: Vec<&(String, String, bool)> = all.iter().filter(|v| v.2).collect();
    assert_eq!(markers.len(), 1);
    assert_eq!(markers[0].0, "cur/a");
    let plain: BTreeSet<(String, String, bool)> = all.iter().filter(|v| !v.2).cloned().collect();
    let expected: BTreeSet<(String, String, bool)> =
        [("cur/a", &current), ("hist/k", &h2), ("hist/k", &h3)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.clone(), false))
            .collect();
    assert_eq!(plain, expected);
    assert_eq!(keys(&c, "ver").await, ["hist/k"]);
    let got = c
        .get_object()
        .bucket("ver")
        .key("cur/a")
        .version_id(&current)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"a1"
    );
    assert!(!all.iter().any(|v| v.1 == h1));
}

/// GET and HEAD naming a version id: the current version carries
/// `x-amz-expiration` as it does without one; a noncurrent version (which
/// `Expiration` no longer concerns) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_amz_expiration_for_a_version_id_of_the_current_version() {
    let (_server, c) = with_bucket("vexp").await;
    common::enable_versioning(&c, "vexp").await;
    put_rules(
        &c,
        "vexp",
        vec![
            rule("all", prefix(""))
                .expiration(expire_days(3))
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let old = put_version(&c, "vexp", "k", b"1").await;
    let new = put_version(&c, "vexp", "k", b"2").await;
    let header = c
        .head_object()
        .bucket("vexp")
        .key("k")
        .send()
        .await
        .unwrap()
        .expiration()
        .unwrap()
        .to_owned();
    assert!(header.ends_with("rule-id=\"all\""), "{header}");
    let head = |v: &str| c.head_object().bucket("vexp").key("k").version_id(v).send();
    let get = |v: &str| c.get_object().bucket("vexp").key("k").version_id(v).send();
    assert_eq!(
        head(&new).await.unwrap().expiration(),
        Some(header.as_str())
    );
    assert_eq!(get(&new).await.unwrap().expiration(), Some(header.as_str()));
    assert_eq!(head(&old).await.unwrap().expiration(), None);
    assert_eq!(get(&old).await.unwrap().expiration(), None);
}

/// A `Date` rule, like a `Days` one, also removes delete markers left
/// without any other version once its date has come (S3: a configuration
/// that expires current versions removes expired object delete markers);
/// a marker with versions behind it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_rules_remove_lone_markers_once_the_date_has_come() {
    let (server, c) = setup().await;
    c.create_bucket().bucket("dated").send().await.unwrap();
    common::enable_versioning(&c, "dated").await;
    let current = put_version(&c, "dated", "cur/a", b"a1").await;
    let gone = put_version(&c, "dated", "gone/x", b"x1").await;
    c.delete_object()
        .bucket("dated")
        .key("gone/x")
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket("dated")
        .key("gone/x")
        .version_id(&gone)
        .send()
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tomorrow = (now / 86_400 + 1) * 86_400;
    let date = LifecycleExpiration::builder()
        .date(DateTime::from_secs(i64::try_from(tomorrow).unwrap()))
        .build();
    put_rules(
        &c,
        "dated",
        vec![rule("dated", prefix("")).expiration(date).build().unwrap()],
    )
    .await
    .unwrap();

    let status = run_lifecycle(&server, 0).await;
    assert_eq!(status.counts.markers_removed, 0, "{status:?}");
    assert_eq!(versions(&c, "dated").await.len(), 2);

    let status = run_lifecycle(&server, 2).await;
    assert_eq!(status.counts.objects_expired, 1, "{status:?}");
    assert_eq!(status.counts.markers_removed, 1, "{status:?}");
    // cur/a is hidden behind a new marker (which has a version behind it:
    // it stays); gone/x's lone marker is gone.
    let all = versions(&c, "dated").await;
    let left: BTreeSet<(&str, bool)> = all.iter().map(|(k, _, m)| (k.as_str(), *m)).collect();
    assert_eq!(
        left,
        BTreeSet::from([("cur/a", false), ("cur/a", true)]),
        "{all:?}"
    );
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|(_, v, _)| *v == current));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_versions_are_kept_and_counted() {
    let (server, c) = setup().await;
    c.create_bucket()
        .bucket("locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let held = c
        .put_object()
        .bucket("locked")
        .key("k")
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .body(ByteStream::from_static(b"held"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    // Retained for one more day: a run judged five days ahead still keeps
    // it, since object locks are judged at the real time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let retained = c
        .put_object()
        .bucket("locked")
        .key("k")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(DateTime::from_secs(i64::try_from(now).unwrap() + DAY_SECS))
        .body(ByteStream::from_static(b"retained"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let free = put_version(&c, "locked", "k", b"free").await;
    let latest = put_version(&c, "locked", "k", b"latest").await;
    put_rules(
        &c,
        "locked",
        vec![
            rule("old", prefix(""))
                .noncurrent_version_expiration(noncurrent(1, None))
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();

    let status = run_lifecycle(&server, 5).await;
    assert_eq!(status.counts.versions_removed, 1, "{status:?}");
    assert_eq!(status.counts.skipped_locked, 2, "{status:?}");
    let ids: BTreeSet<String> = versions(&c, "locked")
        .await
        .into_iter()
        .map(|v| v.1)
        .collect();
    assert_eq!(
        ids,
        BTreeSet::from([held.clone(), retained.clone(), latest.clone()])
    );
    assert!(!ids.contains(&free));

    // Lifting the hold lets the next run remove it.
    c.put_object_legal_hold()
        .bucket("locked")
        .key("k")
        .version_id(&held)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let status = run_lifecycle(&server, 5).await;
    assert_eq!(status.counts.versions_removed, 1, "{status:?}");
    assert_eq!(status.counts.skipped_locked, 1, "{status:?}");
    let ids: BTreeSet<String> = versions(&c, "locked")
        .await
        .into_iter()
        .map(|v| v.1)
        .collect();
    assert_eq!(ids, BTreeSet::from([retained, latest]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_uploads_are_aborted_and_their_parts_freed() {
    let (server, c) = with_bucket("mpu").await;
    let dir = server.data_dir().to_path_buf();
    let kept_upload = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("keep/big")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let before = common::shard_files(&dir);
    let doomed = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("tmp/big")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    c.upload_part()
        .bucket("mpu")
        .key("tmp/big")
        .upload_id(&doomed)
        .part_number(1)
        .body(ByteStream::from(super::data(300_000, 9)))
        .send()
        .await
        .unwrap();
    assert!(common::shard_files(&dir).len() > before.len());
    put_rules(
        &c,
        "mpu",
        vec![
            rule("uploads", prefix("tmp/"))
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(1)
                        .build(),
                )
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let status = run_lifecycle(&server, 0).await;
    assert_eq!(status.counts.uploads_aborted, 0);
    let status = run_lifecycle(&server, 2).await;
    assert_eq!(status.counts.uploads_aborted, 1, "{status:?}");
    let uploads = c
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = uploads
        .uploads()
        .iter()
        .map(|u| u.upload_id().unwrap())
        .collect();
    assert_eq!(ids, [kept_upload.as_str()]);
    common::wait_for_shards(&dir, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_keep_to_their_rate() {
    let (server, c) = super::setup_with(|config| config.lifecycle_rate = 4).await;
    c.create_bucket().bucket("slow").send().await.unwrap();
    for i in 0..9 {
        put(&c, "slow", &format!("k{i}"), b"x").await;
    }
    put_rules(
        &c,
        "slow",
        vec![
            rule("all", prefix(""))
                .expiration(expire_days(1))
                .build()
                .unwrap(),
        ],
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let status = run_lifecycle(&server, 2).await;
    assert_eq!(status.counts.objects_expired, 9, "{status:?}");
    // Nine changes at four a second: the last waits two seconds.
    assert!(started.elapsed() >= std::time::Duration::from_millis(1900));
    assert!(keys(&c, "slow").await.is_empty());
}
