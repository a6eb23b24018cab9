//! The `tessera admin` CLI for scripts and for the person on call, run as
//! a process against a gateway over three `tessera node`s (two disks each,
//! 4+2): `--json` on every kind of subcommand parses as what the admin API
//! answers; `status` is the cluster's health on one screen, and shows a
//! node killed with SIGKILL as down, critical; `--watch` on a job that is
//! done prints its progress line and `done`, and exits 0 at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleFilter,
};
use common::cluster::{admin, admin_args, start_gateway, start_nodes};
use common::process::{Process, kill, run_within};
use tessera_net::ClusterCa;
use tessera_raft::model::NodeState;
use tessera_server::admin::summary::{Severity, Summary};
use tessera_server::admin::{
    GrantSet, JobReport, KeyCreated, KeyInfo, LifecycleStatus, RepairStatus,
};
use tessera_server::members::admin::MemberList;

/// `tessera admin ARGS --json`, parsed.
fn admin_json<T: serde::de::DeserializeOwned>(gateway: &Process, dir: &Path, args: &[&str]) -> T {
    let mut all = args.to_vec();
    all.push("--json");
    let out = admin(gateway, dir, &all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

/// `tessera admin ARGS`, which must exit 0 within 20 s: its stdout.
async fn admin_within(gateway: &Process, dir: &Path, args: &[&str]) -> String {
    let all = admin_args(gateway, dir, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = run_within(&all, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("{args:?} still ran after 20 s"));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Whether `summary` finds no problem but what the test cannot help: the
/// free space of the disk the test's nodes share.
fn machine_problems_only(summary: &Summary) -> bool {
    summary
        .problems
        .iter()
        .all(|p| p.alert == "TesseraStoreSpaceLow")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_for_scripts_status_for_people_and_watch_until_done() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let mut nodes = start_nodes(d, &ca, 3, 2).await;
    let (gateway, s3) = start_gateway(
        d,
        &ca,
        &nodes,
        "repair_grace_secs = 1\nlifecycle_rate = 100\n",
    )
    .await;
    s3.create_bucket().bucket("cli").send().await.unwrap();
    for i in 0..3 {
        common::put_bytes(&s3, "cli", &format!("o{i}"), vec![i as u8; 50_000]).await;
    }

    // A healthy cluster, for scripts and for people. The gateway's first
    // probe of the nodes may still be under way. The nodes' disks are this
    // machine's: the only problem allowed is its free space.
    let healthy = common::eventually(20, || async {
        let s: Summary = admin_json(&gateway, d, &["status"]);
        s.nodes.iter().all(|n| n.state == NodeState::Up) && machine_problems_only(&s)
    })
    .await;
    let summary: Summary = admin_json(&gateway, d, &["status"]);
    assert!(healthy, "{summary:#?}");
    let space_low = !summary.problems.is_empty();
    assert_eq!(summary.health == Severity::Ok, !space_low);
    assert_eq!(summary.nodes.len(), 3);
    assert_eq!(summary.status.stores.iter().filter(|s| s.up).count(), 6);
    assert_eq!(summary.members.leader, Some(summary.members.this));
    assert!(summary.repair.as_ref().unwrap().done);
    let screen = admin(&gateway, d, &["status"]);
    assert!(
        screen.starts_with("TESSERA  OK") || space_low && screen.contains("[TesseraStoreSpaceLow]"),
        "{screen}"
    );
    assert!(
        screen.contains("NODES     3 up, 0 suspect, 0 down, 0 draining"),
        "{screen}"
    );
    assert!(screen.contains("STORES    6 of 6 up"), "{screen}");
    assert!(!screen.contains('\x1b'), "no colours without a terminal");

    // --json on the other subcommands: what the admin API answers.
    let jobs: Vec<JobReport> = admin_json(&gateway, d, &["jobs"]);
    assert!(jobs.iter().any(|j| j.job == "repair"), "{jobs:?}");
    let members: MemberList = admin_json(&gateway, d, &["member", "list"]);
    assert_eq!(members.members.len(), 1);
    let listing: serde_json::Value = admin_json(&gateway, d, &["node", "list"]);
    assert_eq!(listing["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(listing["stores"].as_array().unwrap().len(), 6);
    let repair: RepairStatus = admin_json(&gateway, d, &["repair", "status"]);
    assert_eq!(repair.pending_shards, 0);
    let created: KeyCreated = admin_json(&gateway, d, &["key", "create", "--name", "ci"]);
    let grant: GrantSet = admin_json(
        &gateway,
        d,
        &["bucket", "allow", &created.access_key, "cli", "--read"],
    );
    assert!(grant.read && !grant.write && !grant.owner);
    let keys: Vec<KeyInfo> = admin_json(&gateway, d, &["key", "list"]);
    let key = keys
        .iter()
        .find(|k| k.access_key == created.access_key)
        .unwrap();
    assert_eq!(key.name, "ci");
    assert_eq!(key.grants, vec![grant]);
    let started: serde_json::Value = admin_json(&gateway, d, &["job", "start", "gc"]);
    assert_eq!(started, serde_json::json!({"job": "gc", "started": true}));

    // A lifecycle run on demand, its rules judged two days ahead.
    common::put_bytes(&s3, "cli", "expire/me", vec![7; 1000]).await;
    let rule = LifecycleRule::builder()
        .id("cli")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("expire/").build())
        .expiration(LifecycleExpiration::builder().days(1).build())
        .build()
        .unwrap();
    s3.put_bucket_lifecycle_configuration()
        .bucket("cli")
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ran = admin_within(
        &gateway,
        d,
        &["lifecycle", "run", "--days-ahead", "2", "--wait", "--json"],
    )
    .await;
    let ran: LifecycleStatus = serde_json::from_str(&ran).unwrap();
    assert_eq!(ran.counts.objects_expired, 1, "{ran:?}");
    let gone = s3.head_object().bucket("cli").key("expire/me").send().await;
    assert!(gone.is_err());
    let shown = admin(&gateway, d, &["lifecycle", "status"]);
    assert!(shown.contains("expired 1,"), "{shown}");

    // --watch on jobs with nothing to do: their line, then done, at once.
    let watched = admin_within(&gateway, d, &["repair", "status", "--watch"]).await;
    let lines: Vec<&str> = watched.lines().collect();
    assert_eq!(lines.len(), 2, "{watched}");
    assert!(
        lines[0].starts_with("repair   [########################] 100%"),
        "{watched}"
    );
    assert_eq!(lines[1], "repair: done");
    let watched = admin_within(&gateway, d, &["scrub", "status", "--watch"]).await;
    assert!(watched.ends_with("scrub: done\n"), "{watched}");
    let watched = admin_within(&gateway, d, &["repair", "status", "--watch", "--json"]).await;
    let last: RepairStatus = serde_json::from_str(watched.lines().last().unwrap()).unwrap();
    assert!(last.done, "{watched}");

    // Node 2 dies: status says so, critical, on the screen and to scripts.
    kill(nodes.remove(1).3).await;
    let seen_down = common::eventually(60, || async {
        let s: Summary = admin_json(&gateway, d, &["status"]);
        s.nodes
            .iter()
            .any(|n| n.id == 2 && n.state == NodeState::Down)
    })
    .await;
    let summary: Summary = admin_json(&gateway, d, &["status"]);
    assert!(seen_down, "{summary:#?}");
    assert_eq!(summary.health, Severity::Critical);
    let problem = summary
        .problems
        .iter()
        .find(|p| p.alert == "TesseraNodeDown")
        .unwrap_or_else(|| panic!("{:?}", summary.problems));
    assert_eq!(problem.severity, Severity::Critical);
    assert!(problem.message.contains("node 2 "), "{}", problem.message);
    let screen = admin(&gateway, d, &["status"]);
    assert!(screen.starts_with("TESSERA  CRITICAL"), "{screen}");
    assert!(
        screen.contains("storage node 2 is down") && screen.contains("[TesseraNodeDown]"),
        "{screen}"
    );
    assert!(
        screen.contains("NODES     2 up, 0 suspect, 1 down, 0 draining"),
        "{screen}"
    );
    assert!(screen.contains("STORES    4 of 6 up"), "{screen}");
    drop(gateway);
}
