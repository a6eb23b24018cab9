//! Storage nodes as real processes: three `tessera node`s (two disks each)
//! and a `tessera serve` gateway using them over mutual TLS, 4+2. Objects
//! written through the gateway land on the nodes' disks, read back equal,
//! and still do after one node is killed with SIGKILL. A client with a
//! certificate from another CA is refused by a node. Nodes scrub their own
//! disks; the gateway repairs what they find without reading shards back,
//! and `tessera admin repair status` follows the rebuilding of lost nodes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cluster::{
    admin, admin_result, start_gateway, start_gateway_listing, start_node, start_nodes,
    write_identity,
};
use common::process::{Process, kill, run_within};
use futures::StreamExt;
use std::sync::Arc;
use tessera_net::{ClusterCa, ClusterTls, RpcClient};
use tessera_storage::{ObjectId, Remote, ShardId, ShardStore};

/// The state column of node `id` in `tessera admin node list`'s node table.
fn node_state(listing: &str, id: &str) -> Option<String> {
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(4))
        .map(str::to_owned)
}

fn shard_files(root: &Path) -> Vec<PathBuf> {
    common::tree(root)
        .into_iter()
        .filter(|p| p.is_file() && p.components().any(|c| c.as_os_str() == "shards"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_stores_on_nodes_and_reads_through_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();

    let mut nodes = start_nodes(dir.path(), &ca, 3, 2).await;
    let (gateway, s3) = start_gateway(dir.path(), &ca, &nodes, "").await;

    s3.create_bucket().bucket("nodes").send().await.unwrap();
    let sizes = [0usize, 100, 5_000, 70_000, 1 << 20, 3 * (1 << 20) + 17];
    let mut objects = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let body: Vec<u8> = (0..*size).map(|j| (j * 31 + i * 7) as u8).collect();
        let key = format!("obj-{i}");
        common::put_bytes(&s3, "nodes", &key, body.clone()).await;
        objects.push((key, body));
    }
    for (key, body) in &objects {
        assert_eq!(&common::get_bytes(&s3, "nodes", key).await, body, "{key}");
    }
    // The shards are on the nodes' disks, each node holding some; the
    // gateway has no disks of its own.
    for (n, _, data, _) in &nodes {
        assert!(!shard_files(data).is_empty(), "node {n} holds shards");
    }
    assert!(shard_files(&dir.path().join("gateway-1")).is_empty());

    // A certificate from another CA gets no answer from a node.
    let stranger = ClusterCa::generate("stranger CA")
        .unwrap()
        .issue("node-9", &[])
        .unwrap();
    let stranger = ClusterTls {
        ca_pem: ca.cert_pem.clone(),
        ..stranger
    };
    let client = RpcClient::new(Some(tessera_net::tls::client_config(&stranger).unwrap()));
    assert!(
        Remote::list_stores(&client, 1, &nodes[0].1, Duration::from_secs(5))
            .await
            .is_err()
    );

    // A gateway whose node 1 is really node 2 (an address mixed up in its
    // config) refuses to start, at once, saying so.
    let config = format!(
        "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n{}[[nodes]]\nid = 1\naddr = \"{}\"\n",
        dir.path().join("gateway-2"),
        common::TEST_ACCESS_KEY,
        common::TEST_SECRET_KEY,
        write_identity(
            dir.path(),
            "gateway-2",
            &ca.issue("gateway-2", &[]).unwrap()
        ),
        nodes[1].1,
    );
    let config_path = dir.path().join("gateway-2.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = run_within(
        &["serve", "--config", config_path.to_str().unwrap()],
        Duration::from_secs(20),
    )
    .await
    .expect("refused at once, not served nor retried");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("storage node 1") && stderr.contains("refused"),
        "{stderr}"
    );

    // Node 2 dies (two shards of every segment, as many as the parity):
    // every object still reads back equal.
    kill(nodes.remove(1).3).await;
    for (key, body) in &objects {
        assert_eq!(
            &common::get_bytes(&s3, "nodes", key).await,
            body,
            "{key} after node 2 died"
        );
    }
    drop(gateway);
}

/// A node dies between two probes (an hour apart here): the PUT that
/// meets it first may fail, but the store that failed it is taken as down
/// at once, so the writes after it go to the stores that answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_a_write_gets_no_more_until_its_probe() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let mut nodes = start_nodes(dir.path(), &ca, 4, 1).await;
    // 2 + 1 over four single-disk nodes: a write needs all three of the
    // stores it draws, so one dead store among them fails it.
    let (_gateway, s3) = start_gateway(
        dir.path(),
        &ca,
        &nodes,
        "data_shards = 2\nparity_shards = 1\nprobe_interval_secs = 3600\n",
    )
    .await;
    // One attempt per PUT: the SDK's own retries would hide a failure.
    let s3 = aws_sdk_s3::Client::from_conf(
        s3.config()
            .to_builder()
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    s3.create_bucket().bucket("steer").send().await.unwrap();
    kill(nodes.remove(3).3).await;

    // Without the steering three PUTs in four would draw the dead store.
    let mut failed = Vec::new();
    let mut written = Vec::new();
    for i in 0..12u8 {
        let key = format!("k-{i}");
        let body = vec![i; 5_000];
        let put = s3
            .put_object()
            .bucket("steer")
            .key(&key)
            .body(body.clone().into())
            .send()
            .await;
        match put {
            Ok(_) => written.push((key, body)),
            Err(e) => failed.push((i, common::code(Err::<(), _>(e)))),
        }
    }
    assert!(failed.len() <= 1, "{failed:?}");
    assert!(
        failed.iter().all(|(_, code)| code == "ServiceUnavailable"),
        "{failed:?}"
    );
    for (key, body) in &written {
        assert_eq!(&common::get_bytes(&s3, "steer", key).await, body, "{key}");
    }
}

/// A bucket's storage policy decides the code of its new objects: 2 + 1
/// in one bucket beside the gateway's 4 + 2 in another; a policy the
/// stores cannot hold is refused; cleared, the defaults apply again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_storage_policy_sets_the_code_of_its_new_objects() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let nodes = start_nodes(dir.path(), &ca, 6, 1).await;
    let (gateway, s3) = start_gateway(dir.path(), &ca, &nodes, "").await;
    for b in ["narrow", "wide"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let shards = || all_shards(&nodes).len();
    let policy = |args: &[&str]| {
        let mut all = vec!["bucket", "policy", "narrow"];
        all.extend_from_slice(args);
        admin_result(&gateway, dir.path(), &all)
    };
    assert_eq!(policy(&[]).unwrap(), "narrow: the gateway's defaults\n");
    let set = policy(&["--data-shards", "2", "--parity-shards", "1"]).unwrap();
    assert_eq!(set, "narrow: 2+1, one copy spread over the sites\n");
    let refused = policy(&["--data-shards", "5", "--parity-shards", "2"]).unwrap_err();
    assert!(refused.contains("fewer than the 7 shards"), "{refused}");
    let refused = policy(&[
        "--data-shards",
        "2",
        "--parity-shards",
        "1",
        "--site-copies",
        "dc-a",
    ]);
    assert!(refused.unwrap_err().contains("two or more"));
    let missing = admin_result(&gateway, dir.path(), &["bucket", "policy", "nope"]).unwrap_err();
    assert!(missing.contains("no bucket nope"), "{missing}");

    let body: Vec<u8> = (0..100_000).map(|i| (i * 7) as u8).collect();
    let before = shards();
    common::put_bytes(&s3, "narrow", "a", body.clone()).await;
    assert_eq!(shards() - before, 3, "2 + 1 in the narrow bucket");
    let before = shards();
    common::put_bytes(&s3, "wide", "a", body.clone()).await;
    assert_eq!(shards() - before, 6, "4 + 2 (the defaults) in the other");
    assert_eq!(common::get_bytes(&s3, "narrow", "a").await, body);

    assert_eq!(
        policy(&["--clear"]).unwrap(),
        "narrow: the gateway's defaults\n"
    );
    let before = shards();
    common::put_bytes(&s3, "narrow", "b", body.clone()).await;
    assert_eq!(shards() - before, 6, "the defaults again");
    // The old object keeps its 2 + 1 and reads back.
    assert_eq!(common::get_bytes(&s3, "narrow", "a").await, body);
}

/// The metric `series` (written out in full, labels and all) that a
/// process announcing `listener` (`", metrics on "` for a node, `", admin
/// on "` for a gateway) serves on `/metrics`; 0 when it has none yet.
async fn metric(process: &Process, listener: &str, series: &str) -> f64 {
    let url = process.announced.split(listener).nth(1).unwrap();
    let (_, text) = common::http_get(&format!("{url}/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// `series` summed over `nodes`.
async fn nodes_metric(nodes: &[(u64, String, PathBuf, Process)], series: &str) -> f64 {
    let mut sum = 0.0;
    for (_, _, _, node) in nodes {
        sum += metric(node, ", metrics on ", series).await;
    }
    sum
}

/// What `tessera admin repair status --json` says.
fn repair_status(gateway: &Process, dir: &Path) -> tessera_server::admin::RepairStatus {
    serde_json::from_str(&admin(gateway, dir, &["repair", "status", "--json"])).unwrap()
}

/// The gateway's scrub job as `tessera admin jobs --json` shows it.
fn scrub_job(gateway: &Process, dir: &Path) -> tessera_server::admin::JobReport {
    let jobs: Vec<tessera_server::admin::JobReport> =
        serde_json::from_str(&admin(gateway, dir, &["jobs", "--json"])).unwrap();
    jobs.into_iter().find(|j| j.job == "scrub").unwrap()
}

/// Every shard file on `nodes`.
fn all_shards(nodes: &[(u64, String, PathBuf, Process)]) -> std::collections::BTreeSet<PathBuf> {
    nodes
        .iter()
        .flat_map(|(_, _, data, _)| shard_files(data))
        .collect()
}

/// An object as [`put_objects`] stored it: key, body, shard files.
type Stored = (String, Vec<u8>, std::collections::BTreeSet<PathBuf>);

/// PUTs `count` objects of `size(i)` bytes into bucket `nodes` (4+2 over
/// `nodes`), each with the shard files that appeared with it.
async fn put_objects(
    s3: &aws_sdk_s3::Client,
    nodes: &[(u64, String, PathBuf, Process)],
    count: usize,
    size: impl Fn(usize) -> usize,
) -> Vec<Stored> {
    let mut objects = Vec::new();
    for i in 0..count {
        let before = all_shards(nodes);
        let body: Vec<u8> = (0..size(i)).map(|j| (j * 7 + i) as u8).collect();
        let key = format!("obj-{i}");
        common::put_bytes(s3, "nodes", &key, body.clone()).await;
        let shards: std::collections::BTreeSet<PathBuf> =
            all_shards(nodes).difference(&before).cloned().collect();
        assert_eq!(shards.len(), 6, "{key}");
        objects.push((key, body, shards));
    }
    objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rot_on_a_node_is_repaired_and_gc_and_the_sweep_leave_exactly_the_live_shards() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let nodes = start_nodes(dir.path(), &ca, 6, 1).await;
    let (gateway, s3) = start_gateway(
        dir.path(),
        &ca,
        &nodes,
        "gc_grace_secs = 1\norphan_grace_secs = 1\n",
    )
    .await;
    s3.create_bucket().bucket("nodes").send().await.unwrap();
    let objects = put_objects(&s3, &nodes, 12, |i| 20_000 + i * 50_000).await;

    // Bit rot in a data shard on a node: reads never return it, and repair
    // rebuilds the file byte for byte.
    let rotten = objects[5]
        .2
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-0000"))
        .unwrap()
        .clone();
    let original = std::fs::read(&rotten).unwrap();
    let mut bad = original.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x20;
    std::fs::write(&rotten, &bad).unwrap();
    for _ in 0..3 {
        assert_eq!(
            common::get_bytes(&s3, "nodes", &objects[5].0).await,
            objects[5].1
        );
    }
    let healed = common::eventually(60, || async {
        std::fs::read(&rotten).is_ok_and(|now| now == original)
    })
    .await;
    assert!(healed, "the rotten shard was rebuilt on its node");

    // Half the objects deleted: the nodes end up holding exactly the
    // shards of the others.
    for (key, _, _) in objects.iter().step_by(2) {
        s3.delete_object()
            .bucket("nodes")
            .key(key)
            .send()
            .await
            .unwrap();
    }
    let kept: std::collections::BTreeSet<PathBuf> = objects
        .iter()
        .skip(1)
        .step_by(2)
        .flat_map(|(_, _, s)| s.clone())
        .collect();
    let collected = common::eventually(60, || async { all_shards(&nodes) == kept }).await;
    assert!(
        collected,
        "left: {:?}",
        all_shards(&nodes).difference(&kept).collect::<Vec<_>>()
    );
    for (key, body, _) in objects.iter().skip(1).step_by(2) {
        assert_eq!(&common::get_bytes(&s3, "nodes", key).await, body, "{key}");
    }

    // An orphan on a node (a shard no metadata names, as a gateway that
    // died mid-write leaves) is swept once past its grace; nothing else is.
    let identity = ca.issue("gateway-9", &[]).unwrap();
    let client = Arc::new(RpcClient::new(Some(
        tessera_net::tls::client_config(&identity).unwrap(),
    )));
    let (node, addr) = (nodes[2].0, nodes[2].1.clone());
    let store_id = Remote::list_stores(&client, node, &addr, Duration::from_secs(5))
        .await
        .unwrap()
        .remove(0);
    let store = Remote::new(store_id, node, addr, client, Duration::from_secs(5));
    let orphan = ShardId {
        object: ObjectId::random(),
        part: 1,
        index: 0,
    };
    let bytes = futures::stream::iter([Ok(bytes::Bytes::from_static(b"orphan"))]).boxed();
    store.put(orphan, bytes).await.unwrap();
    assert_eq!(all_shards(&nodes).len(), kept.len() + 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    admin(&gateway, dir.path(), &["job", "start", "sweep"]);
    let swept =
        common::eventually(30, || async { store.stat(orphan).await.unwrap().is_none() }).await;
    assert!(swept, "the orphan was swept");
    assert_eq!(all_shards(&nodes), kept);
    drop(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_scrub_their_own_disks_and_the_gateway_repairs_what_they_find() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let nodes = start_nodes(dir.path(), &ca, 6, 1).await;
    let (gateway, s3) = start_gateway(dir.path(), &ca, &nodes, "").await;
    s3.create_bucket().bucket("nodes").send().await.unwrap();
    let objects = put_objects(&s3, &nodes, 8, |i| 30_000 + i * 40_000).await;
    let verified = "tessera_job_done_total{worker=\"node-scrub\"}";
    let served = "tessera_node_bytes_served_total";

    // A scrub pass over healthy data: every node verifies each of its
    // shards on its own disk, and not one shard byte crosses the network.
    let served_before = nodes_metric(&nodes, served).await;
    let verified_before = nodes_metric(&nodes, verified).await;
    let segments_before = scrub_job(&gateway, dir.path()).done;
    admin(&gateway, dir.path(), &["scrub", "start"]);
    let scrubbed = common::eventually(30, || async {
        nodes_metric(&nodes, verified).await - verified_before >= 48.0
            && scrub_job(&gateway, dir.path()).done >= segments_before + 8
    })
    .await;
    assert!(
        scrubbed,
        "every node verified its shards, the gateway every segment"
    );
    assert_eq!(nodes_metric(&nodes, verified).await - verified_before, 48.0);
    assert_eq!(
        scrub_job(&gateway, dir.path()).bytes,
        0,
        "the gateway read no shard"
    );
    assert_eq!(nodes_metric(&nodes, served).await, served_before);
    let found = metric(&gateway, ", admin on ", "tessera_scrub_bad_shards_total").await;
    assert_eq!(
        found, 0.0,
        "every shard is where it belongs, with its length"
    );

    // Bit rot in a data and in a parity shard, and a shard file lost
    // entirely: nothing reads them, yet a scrub pass finds all three (the
    // nodes the rot, the gateway the missing file) and repair rebuilds
    // them byte for byte.
    let pick = |object: usize, suffix: &str| -> PathBuf {
        objects[object]
            .2
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap()
            .clone()
    };
    let damaged = [pick(3, "-0000"), pick(5, "-0005"), pick(6, "-0002")];
    let originals: Vec<Vec<u8>> = damaged.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (path, original) in damaged.iter().zip(&originals).take(2) {
        let mut bad = original.clone();
        let middle = bad.len() / 2;
        bad[middle] ^= 0x01;
        std::fs::write(path, &bad).unwrap();
    }
    std::fs::remove_file(&damaged[2]).unwrap();
    let bad_before = nodes_metric(&nodes, "tessera_node_scrub_bad_shards_total").await;
    admin(&gateway, dir.path(), &["scrub", "start"]);
    let healed = common::eventually(60, || async {
        damaged
            .iter()
            .zip(&originals)
            .all(|(path, original)| std::fs::read(path).is_ok_and(|now| &now == original))
    })
    .await;
    assert!(healed, "the damaged shards were rebuilt on their nodes");
    assert_eq!(
        nodes_metric(&nodes, "tessera_node_scrub_bad_shards_total").await - bad_before,
        2.0,
        "the nodes found the rot themselves"
    );
    let found = metric(&gateway, ", admin on ", "tessera_scrub_bad_shards_total").await;
    assert_eq!(
        found, 3.0,
        "the gateway queued the nodes' two findings and the lost file"
    );
    // The findings were acknowledged once queued: the nodes hold none.
    let acknowledged = common::eventually(10, || async {
        nodes.iter().all(|(_, _, data, _)| {
            // No file: the node never found anything.
            std::fs::read_to_string(data.join("scrub.findings"))
                .map_or(true, |text| text.lines().count() == 1)
        })
    })
    .await;
    assert!(acknowledged, "every finding acknowledged");
    assert_eq!(
        scrub_job(&gateway, dir.path()).bytes,
        0,
        "the gateway read no shard"
    );
    for (key, body, _) in &objects {
        assert_eq!(&common::get_bytes(&s3, "nodes", key).await, body, "{key}");
    }
    drop(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_of_killed_nodes_are_rebuilt_elsewhere_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let mut nodes = start_nodes(dir.path(), &ca, 8, 1).await;
    // Repair slowed down, so that it is seen under way.
    let (gateway, s3) = start_gateway(
        dir.path(),
        &ca,
        &nodes,
        "repair_grace_secs = 1\nrepair_rate_mib = 2\n",
    )
    .await;

    // Objects of one segment each, all past the inline threshold: six
    // shards apiece on six of the eight nodes.
    s3.create_bucket().bucket("nodes").send().await.unwrap();
    let mut objects = Vec::new();
    for i in 0..40usize {
        let size = 5_000 + i * 37_000;
        let body: Vec<u8> = (0..size).map(|j| (j * 13 + i) as u8).collect();
        let key = format!("obj-{i}");
        common::put_bytes(&s3, "nodes", &key, body.clone()).await;
        objects.push((key, body));
    }
    let shards_on = |nodes: &[(u64, String, PathBuf, Process)]| -> usize {
        nodes
            .iter()
            .map(|(_, _, data, _)| shard_files(data).len())
            .sum()
    };
    assert_eq!(shards_on(&nodes), 6 * objects.len());

    let status = repair_status(&gateway, dir.path());
    assert!(status.done && status.pending_shards == 0, "{status:?}");

    // Two nodes die. Past the grace their shards are rebuilt on the
    // others, until every object has six shards on live nodes again.
    let lost = shards_on(&nodes[..2]);
    for _ in 0..2 {
        kill(nodes.remove(0).3).await;
    }
    // Meanwhile the operator sees repair under way, and not done.
    let mut under_way = None;
    for _ in 0..300 {
        let status = repair_status(&gateway, dir.path());
        if status.pending_shards > 0 && status.done_shards > 0 {
            under_way = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = under_way.expect("repair seen under way");
    assert!(!status.done, "{status:?}");
    assert!(
        status
            .at_risk
            .iter()
            .all(|r| r.redundancy_left < 2 && r.segments > 0),
        "{status:?}"
    );
    let text = admin(&gateway, dir.path(), &["repair", "status"]);
    assert!(text.contains("in progress"), "{text}");
    let restored =
        common::eventually(90, || async { shards_on(&nodes) == 6 * objects.len() }).await;
    assert!(
        restored,
        "{} of {} shards on live nodes",
        shards_on(&nodes),
        6 * objects.len()
    );

    // The operator sees which stores are lost.
    let listing = admin(&gateway, dir.path(), &["node", "list"]);
    let state = |s: &str| {
        listing
            .lines()
            .filter(|l| l.trim_end().ends_with(s))
            .count()
    };
    assert_eq!((state(" up"), state(" lost")), (6, 2), "{listing}");
    // ... and, in the node table the metadata keeps, the nodes down.
    for (id, expected) in [("1", "down"), ("2", "down"), ("3", "up")] {
        assert_eq!(
            node_state(&listing, id).as_deref(),
            Some(expected),
            "{listing}"
        );
    }

    // Repair says it is done, having rebuilt (and verified) every shard
    // the dead nodes held; so does /metrics.
    let done = common::eventually(20, || async { repair_status(&gateway, dir.path()).done }).await;
    let status = repair_status(&gateway, dir.path());
    assert!(done, "{status:?}");
    assert_eq!(status.pending_shards, 0);
    assert!(
        status.done_shards >= lost as u64,
        "{status:?} after {lost} lost"
    );
    assert!(
        status.bytes_rebuilt > 0 && status.at_risk.is_empty(),
        "{status:?}"
    );
    let text = admin(&gateway, dir.path(), &["repair", "status"]);
    assert!(text.starts_with("repair:          done"), "{text}");
    let url = gateway.announced.split(", admin on ").nth(1).unwrap();
    let metrics = common::eventually(10, || async {
        let (_, metrics) = common::http_get(&format!("{url}/metrics")).await;
        ["tessera_repair_done 1", "tessera_repair_pending_shards 0"]
            .iter()
            .all(|series| metrics.lines().any(|l| l == *series))
    })
    .await;
    assert!(metrics, "/metrics says repair is done");

    // Proof: two *other* nodes die too, and every object still reads back.
    for _ in 0..2 {
        kill(nodes.remove(2).3).await;
    }
    for (key, body) in &objects {
        assert_eq!(&common::get_bytes(&s3, "nodes", key).await, body, "{key}");
    }
    drop(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_drained_under_load_can_be_removed_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let mut nodes = start_nodes(dir.path(), &ca, 7, 1).await;
    // Moving node 1's shards (about a megabyte) takes a second or two at
    // this rate: long enough to see removal refused while they remain.
    let (gateway, s3) = start_gateway(dir.path(), &ca, &nodes, "repair_rate_mib = 1\n").await;
    s3.create_bucket().bucket("nodes").send().await.unwrap();
    let object =
        |i: usize| -> Vec<u8> { (0..10_000 + i * 9_000).map(|j| (j * 3 + i) as u8).collect() };
    for i in 0..30 {
        let key = format!("obj-{i}");
        common::put_bytes(&s3, "nodes", &key, object(i)).await;
    }

    // Writes go on while node 1 drains.
    let writer = {
        let s3 = s3.clone();
        tokio::spawn(async move {
            for i in 30..60 {
                let key = format!("obj-{i}");
                common::put_bytes(&s3, "nodes", &key, object(i)).await;
            }
        })
    };
    let admin = |args: &[&str]| admin(&gateway, dir.path(), args);
    assert!(admin(&["node", "drain", "1"]).starts_with("node 1: draining st-"));
    assert!(
        admin(&["node", "list"])
            .lines()
            .any(|l| l.starts_with("1 ") && l.trim_end().ends_with("draining"))
    );
    // While it still holds shards, it cannot be removed.
    let early = admin_result(&gateway, dir.path(), &["node", "remove", "1"]);
    assert!(
        early.as_ref().is_err_and(|e| e.contains("still holds")),
        "{early:?}"
    );
    writer.await.unwrap();

    // Every shard moves to the other six nodes.
    let others = |nodes: &[(u64, String, PathBuf, Process)]| -> usize {
        nodes
            .iter()
            .filter(|(n, ..)| *n != 1)
            .map(|(_, _, data, _)| shard_files(data).len())
            .sum()
    };
    let drained = common::eventually(90, || async { others(&nodes) == 6 * 60 }).await;
    assert!(
        drained,
        "{} of {} shards on the other nodes",
        others(&nodes),
        6 * 60
    );

    // Node 1 is removed, and two more die: nothing is lost.
    let removed = common::eventually(30, || async {
        admin_result(&gateway, dir.path(), &["node", "remove", "1"]).is_ok()
    })
    .await;
    assert!(removed, "node 1 removable once drained");
    let listing = admin(&["node", "list"]);
    assert!(
        !listing
            .lines()
            .any(|l| l.split_whitespace().next() == Some("1")),
        "{listing}"
    );
    for index in [0, 1, 1] {
        kill(nodes.remove(index).3).await;
    }
    for i in 0..60 {
        assert_eq!(
            common::get_bytes(&s3, "nodes", &format!("obj-{i}")).await,
            object(i),
            "obj-{i}"
        );
    }
    drop(gateway);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_kept_in_the_metadata_added_at_run_time_and_a_dead_one_does_not_stop_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let mut nodes = start_nodes(dir.path(), &ca, 6, 1).await;
    let (gateway, s3) = start_gateway(dir.path(), &ca, &nodes, "").await;
    s3.create_bucket().bucket("nodes").send().await.unwrap();
    let object =
        |i: usize| -> Vec<u8> { (0..20_000 + i * 7_000).map(|j| (j * 5 + i) as u8).collect() };
    for i in 0..10 {
        common::put_bytes(&s3, "nodes", &format!("obj-{i}"), object(i)).await;
    }
    let listing = admin(&gateway, dir.path(), &["node", "list"]);
    for id in 1..=6 {
        assert_eq!(
            node_state(&listing, &id.to_string()).as_deref(),
            Some("up"),
            "{listing}"
        );
    }

    // The gateway restarts while node 3 is dead: it knows node 3's stores
    // from the metadata, starts at once without it, and reads around it.
    let listed: Vec<(u64, String)> = nodes
        .iter()
        .map(|(n, addr, ..)| (*n, addr.clone()))
        .collect();
    kill(gateway).await;
    kill(nodes.remove(2).3).await;
    let started = std::time::Instant::now();
    let (gateway, s3) = start_gateway_listing(dir.path(), &ca, &listed, "").await;
    // Well below the 30 s a gateway waits for a node it never heard of.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "started in {:?}",
        started.elapsed()
    );
    for i in 0..10 {
        assert_eq!(
            common::get_bytes(&s3, "nodes", &format!("obj-{i}")).await,
            object(i),
            "obj-{i}"
        );
    }
    let suspect = common::eventually(20, || async {
        node_state(&admin(&gateway, dir.path(), &["node", "list"]), "3").as_deref()
            == Some("suspect")
    })
    .await;
    assert!(
        suspect,
        "{}",
        admin(&gateway, dir.path(), &["node", "list"])
    );

    // A seventh node is added at run time; new segments use it.
    let seventh = start_node(dir.path(), &ca, 7, 1, "").await;
    let added = admin(
        &gateway,
        dir.path(),
        &["node", "add", "7", &seventh.1, "--zone", "z7"],
    );
    assert!(
        added.starts_with("node 7: added with stores st-"),
        "{added}"
    );
    for i in 10..30 {
        common::put_bytes(&s3, "nodes", &format!("obj-{i}"), object(i)).await;
    }
    assert!(!shard_files(&seventh.2).is_empty(), "node 7 takes shards");
    let listing = admin(&gateway, dir.path(), &["node", "list"]);
    assert_eq!(
        node_state(&listing, "7").as_deref(),
        Some("up"),
        "{listing}"
    );

    // An id in use at another address, and an address whose node is not
    // the id given, are refused with a clear error.
    let reused = admin_result(&gateway, dir.path(), &["node", "add", "7", &nodes[0].1]);
    assert!(
        reused.as_ref().is_err_and(|e| e.contains("already in use")),
        "{reused:?}"
    );
    let wrong = admin_result(&gateway, dir.path(), &["node", "add", "8", &seventh.1]);
    assert!(
        wrong
            .as_ref()
            .is_err_and(|e| e.contains("cannot use storage node 8")),
        "{wrong:?}"
    );

    // The added node is in the metadata: the gateway knows it after a
    // restart although its config does not list it.
    kill(gateway).await;
    let (gateway, s3) = start_gateway_listing(dir.path(), &ca, &listed, "").await;
    let listing = admin(&gateway, dir.path(), &["node", "list"]);
    assert_eq!(
        node_state(&listing, "7").as_deref(),
        Some("up"),
        "{listing}"
    );
    for i in 0..30 {
        assert_eq!(
            common::get_bytes(&s3, "nodes", &format!("obj-{i}")).await,
            object(i),
            "obj-{i}"
        );
    }
    drop((gateway, seventh));
}
