//! Gateways as members of one metadata cluster, as real processes on
//! loopback, laid out by `tessera init`: two gateways in two sites and a
//! witness (three voters), six storage nodes of two disks, three per site,
//! 3+3 (each site holds three shards of every segment). A writer goes on
//! through the gateway that leads while its whole site (gateway and nodes)
//! is killed with SIGKILL; the other gateway and the witness elect a
//! leader, the surviving site serves every acknowledged object, byte for
//! byte, and takes new writes; the lost gateway comes back and serves what
//! was written without it. With the witness gone too, the gateway left
//! alone answers 503 within two seconds and says it is not ready.
//! Configs that disagree with the cluster fail at start, saying why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::process::{Process, kill, run, run_within, spawn};
use futures::future::join_all;

/// A cluster `tessera init` wrote, and its root key.
struct Layout {
    dir: PathBuf,
    access_key: String,
    secret_key: String,
}

impl Layout {
    /// `tessera init --out DIR ARGS`, on free ports.
    fn init(root: &Path, args: &[&str], ports: u16) -> Layout {
        let dir = root.join("cluster");
        let base = common::free_ports(ports).to_string();
        let mut all = vec![
            "init",
            "--out",
            dir.to_str().unwrap(),
            "--base-port",
            base.as_str(),
        ];
        all.extend_from_slice(args);
        let out = run(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap()
                .trim()
                .to_owned()
        };
        Layout {
            access_key: field("Access key:"),
            secret_key: field("Secret key:"),
            dir,
        }
    }

    fn config(&self, name: &str) -> String {
        self.dir
            .join(format!("{name}.toml"))
            .to_str()
            .unwrap()
            .to_owned()
    }

    async fn node(&self, name: &str) -> Process {
        spawn(
            &["node", "--config", &self.config(name)],
            "Tessera storage node",
        )
        .await
    }

    async fn gateway(&self, name: &str) -> Process {
        spawn(
            &["serve", "--config", &self.config(name)],
            "Tessera S3 API on",
        )
        .await
    }

    async fn witness(&self) -> Process {
        spawn(
            &["serve", "--config", &self.config("witness")],
            "Tessera witness",
        )
        .await
    }

    fn s3(&self, gateway: &Process) -> aws_sdk_s3::Client {
        let url = gateway
            .announced
            .strip_prefix("Tessera S3 API on ")
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let config = common::config_builder(url, &self.access_key, &self.secret_key)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(10))
                    .build(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// The admin URL a gateway or witness announced.
fn admin_url(process: &Process) -> String {
    process
        .announced
        .rsplit("admin on ")
        .next()
        .unwrap()
        .to_owned()
}

/// Two sites of three nodes with two disks each, two gateways, 3+3: each
/// site holds three shards (k) of every segment.
const TWO_SITES: &[&str] = &[
    "--nodes",
    "6",
    "--disks",
    "2",
    "--data-shards",
    "3",
    "--parity-shards",
    "3",
    "--gateways",
    "2",
    "--sites",
    "dc-a,dc-b",
];

/// `tessera admin member list` asked of `gateway` (data dir `name`).
fn member_list(layout: &Layout, gateway: &Process, name: &str) -> String {
    let (ok, listing) = admin(layout, gateway, name, &["member", "list"]);
    assert!(ok, "{listing}");
    listing
}

/// The leader a member list names (0: none).
fn leader_of(listing: &str) -> u64 {
    listing
        .split("leader ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or(0)
}

/// `GET /health/ready`: its status code.
async fn ready(process: &Process) -> u16 {
    common::http_get(&format!("{}/health/ready", admin_url(process)))
        .await
        .0
}

fn body(i: usize) -> Vec<u8> {
    let len = [10, 0, 4_000, 70_000, 300_000][i % 5];
    (0..len).map(|j| (j * 13 + i * 7) as u8).collect()
}

/// One whole cluster at a time: each test runs nine or more processes, and
/// four clusters at once on a small machine starve their probes and
/// elections into failures no real cluster would see.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts every process of the cluster at once (gateways wait for a quorum).
async fn start_all(
    layout: &Layout,
    nodes: &[&str],
    gateways: &[&str],
) -> (Vec<Process>, Vec<Process>, Process) {
    let nodes = join_all(nodes.iter().map(|n| layout.node(n))).await;
    let (gateways, witness) = tokio::join!(
        join_all(gateways.iter().map(|g| layout.gateway(g))),
        layout.witness()
    );
    (nodes, gateways, witness)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_lost_with_a_witness_keeps_every_acknowledged_object() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let root = tempfile::tempdir().unwrap();
    let layout = Layout::init(root.path(), &[TWO_SITES, &["--witness"]].concat(), 14);
    let node_names: Vec<String> = (1..=6).map(|n| format!("node-{n}")).collect();
    let node_names: Vec<&str> = node_names.iter().map(String::as_str).collect();
    let (nodes, mut gateways, witness) =
        start_all(&layout, &node_names, &["gateway-1", "gateway-2"]).await;

    // Both gateways see the same cluster: three voters, one leader.
    let listing = member_list(&layout, &gateways[1], "gateway-2");
    assert_eq!(
        listing
            .lines()
            .skip(2)
            .filter(|l| matches!(l.split_whitespace().nth(1), Some("voter" | "leader")))
            .count(),
        3,
        "{listing}"
    );

    // The site that dies is the one the leader is in; the witness votes
    // but never leads (the leader runs the jobs, which need stores).
    assert_ne!(
        leader_of(&member_list(&layout, &gateways[1], "gateway-2")),
        3,
        "the witness leads"
    );
    let leader = leader_of(&member_list(&layout, &gateways[1], "gateway-2"));
    let (dc_a, dc_b) = if leader == 1 {
        let dc_b = gateways.pop().unwrap();
        (gateways.pop().unwrap(), dc_b)
    } else {
        (gateways.pop().unwrap(), gateways.pop().unwrap())
    };
    let dc_a_name = format!("gateway-{leader}");
    // Nodes go round the sites: gateway 1's site has the odd ones.
    let (dc_a_nodes, _dc_b_nodes): (Vec<_>, Vec<_>) = nodes
        .into_iter()
        .enumerate()
        .partition(|(i, _)| (i % 2 == 0) == (leader == 1));
    let (s3_a, s3_b) = (layout.s3(&dc_a), layout.s3(&dc_b));

    s3_a.create_bucket().bucket("site").send().await.unwrap();
    // A bucket made through dc-a is there through dc-b at once (reads are linearizable).
    s3_b.head_bucket().bucket("site").send().await.unwrap();

    // Writes go on through dc-a while it dies; every acknowledged one is kept.
    let writer = {
        let s3 = s3_a.clone();
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let put = s3
                    .put_object()
                    .bucket("site")
                    .key(format!("before-{i}"))
                    .body(body(i).into())
                    .send()
                    .await;
                match put {
                    Ok(_) => acked.push(i),
                    Err(_) => return acked,
                }
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = Instant::now();
    kill(dc_a).await;
    for (_, node) in dc_a_nodes {
        kill(node).await;
    }
    let acked = writer.await.unwrap();
    assert!(acked.len() >= 5, "the writer got going: {}", acked.len());

    // dc-b takes writes again within seconds: its three nodes hold three
    // shards (k) of every 3+3 segment, and take all six of new ones.
    let mut recovered = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let put = s3_b
            .put_object()
            .bucket("site")
            .key("after-0")
            .body(body(0).into())
            .send()
            .await;
        if put.is_ok() {
            recovered = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rto = recovered.expect("dc-b took a write after dc-a died");
    println!("RTO after losing the leader's site (gateway and nodes): {rto:?}");
    assert!(rto < Duration::from_secs(10), "{rto:?}");
    assert_eq!(ready(&dc_b).await, 200);
    for i in &acked {
        assert_eq!(
            common::get_bytes(&s3_b, "site", &format!("before-{i}")).await,
            body(*i),
            "before-{i}"
        );
    }
    for i in 1..20 {
        common::put_bytes(&s3_b, "site", &format!("after-{i}"), body(i)).await;
    }

    // dc-a comes back, catches up and serves what was written without it.
    let dc_a = layout.gateway(&dc_a_name).await;
    let s3_a = layout.s3(&dc_a);
    for i in 0..20 {
        assert_eq!(
            common::get_bytes(&s3_a, "site", &format!("after-{i}")).await,
            body(i),
            "after-{i}"
        );
    }

    // Left alone (dc-a and the witness gone), a gateway has no quorum: it
    // says so at once, and refuses writes within two seconds.
    kill(dc_a).await;
    kill(witness).await;
    assert!(
        common::eventually(10, || async { ready(&dc_b).await == 503 }).await,
        "dc-b alone is not ready"
    );
    let started = Instant::now();
    let refused = s3_b
        .put_object()
        .bucket("site")
        .key("alone")
        .body(body(1).into())
        .send()
        .await;
    let took = started.elapsed();
    assert_eq!(common::code(refused), "ServiceUnavailable");
    assert!(took < Duration::from_secs(2), "refused after {took:?}");
    let started = Instant::now();
    let refused = s3_b.get_object().bucket("site").key("after-1").send().await;
    assert_eq!(common::code(refused), "ServiceUnavailable");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_that_disagree_with_the_cluster_fail_at_start() {
    let root = tempfile::tempdir().unwrap();
    let layout = Layout::init(root.path(), &["--nodes", "6", "--gateways", "3"], 15);
    let serve = |config: String| async move {
        let out = run_within(&["serve", "--config", &config], Duration::from_secs(20))
            .await
            .expect("a refused start ends at once");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // gateway-2's certificate is member-2's: as member 3 it is refused.
    let text = std::fs::read_to_string(layout.config("gateway-2")).unwrap();
    let wrong_id = root.path().join("wrong-id.toml");
    std::fs::write(&wrong_id, text.replace("member_id = 2", "member_id = 3")).unwrap();
    let err = serve(wrong_id.to_str().unwrap().to_owned()).await;
    assert!(err.contains("cannot serve as metadata member 3"), "{err}");

    // A member id not in [[members]].
    std::fs::write(&wrong_id, text.replace("member_id = 2", "member_id = 7")).unwrap();
    let err = serve(wrong_id.to_str().unwrap().to_owned()).await;
    assert!(err.contains("member_id 7 is not in [[members]]"), "{err}");

    // gateway-3 pointed at gateway-1's data dir (which it once ran in as
    // member 1) is refused: the data dir says whose it is.
    let text3 = std::fs::read_to_string(layout.config("gateway-3")).unwrap();
    let data1 = layout.dir.join("data/gateway-1");
    std::fs::write(data1.join("member.toml"), "id = 1\nca_sha256 = \"\"\n").unwrap();
    let stolen = root.path().join("stolen.toml");
    std::fs::write(
        &stolen,
        text3.replace(
            layout.dir.join("data/gateway-3").to_str().unwrap(),
            data1.to_str().unwrap(),
        ),
    )
    .unwrap();
    let err = serve(stolen.to_str().unwrap().to_owned()).await;
    assert!(err.contains("belongs to metadata member 1"), "{err}");

    // A gateway of a cluster never makes up a master key of its own.
    std::fs::remove_file(layout.dir.join("data/gateway-2/master.key")).unwrap();
    let err = serve(layout.config("gateway-2")).await;
    assert!(err.contains("master.key is missing"), "{err}");
}

/// `tessera admin ARGS` asked of `gateway` (data dir `name`): success and output.
fn admin(layout: &Layout, gateway: &Process, name: &str, args: &[&str]) -> (bool, String) {
    let url = admin_url(gateway);
    let data = layout.dir.join("data").join(name);
    let mut all = vec!["admin", "--url", &url, "--data-dir", data.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(&all);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_without_a_witness_fail_over_when_the_operator_says_so() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    let root = tempfile::tempdir().unwrap();
    let layout = Layout::init(root.path(), TWO_SITES, 12);
    let node_names: Vec<String> = (1..=6).map(|n| format!("node-{n}")).collect();
    let mut nodes = join_all(node_names.iter().map(|n| layout.node(n))).await;
    // dc-a's gateway votes alone; dc-b's is a learner.
    let (dc_a, dc_b) = tokio::join!(layout.gateway("gateway-1"), layout.gateway("gateway-2"));
    let (s3_a, s3_b) = (layout.s3(&dc_a), layout.s3(&dc_b));
    // The metadata port answers members only: a storage node's
    // certificate, from the same CA, is refused; a member's is answered.
    let identity = |name: &str| {
        let read = |file: String| std::fs::read_to_string(layout.dir.join(file)).unwrap();
        tessera_net::ClusterTls {
            ca_pem: read("ca.pem".into()),
            cert_pem: read(format!("{name}.pem")),
            key_pem: read(format!("{name}.key")),
        }
    };
    let raft_addr =
        tessera_server::config::ConfigLayer::from_file(&layout.dir.join("gateway-2.toml"))
            .unwrap()
            .cluster_listen
            .unwrap()
            .to_string();
    let log_state = |name: &str| {
        let client = tessera_net::RpcClient::new(Some(
            tessera_net::tls::client_config(&identity(name)).unwrap(),
        ));
        let addr = raft_addr.clone();
        async move {
            client
                .call::<(), Option<tessera_raft::types::LogId>>(
                    2,
                    &addr,
                    "/meta/log-state",
                    &(),
                    Duration::from_secs(5),
                )
                .await
        }
    };
    assert!(log_state("node-1").await.is_err(), "a node is no member");
    assert!(log_state("gateway-1").await.is_ok(), "a member is answered");

    s3_a.create_bucket().bucket("two").send().await.unwrap();
    for i in 0..10 {
        common::put_bytes(&s3_a, "two", &format!("kept-{i}"), body(i)).await;
    }
    // A bucket kept as a copy per site, written asynchronously, while
    // dc-b's nodes hang (SIGSTOP): dc-b's member has these objects'
    // metadata but its site has not their data.
    s3_a.create_bucket().bucket("lazy").send().await.unwrap();
    let (ok, text) = admin(&layout, &dc_a, "gateway-1", LAZY_POLICY);
    assert!(ok, "{text}");
    // Nodes go round the sites: dc-a has the odd ones, dc-b the even.
    let dc_b_nodes: Vec<&Process> = nodes.iter().skip(1).step_by(2).collect();
    signal(dc_b_nodes.iter().copied(), "-STOP");
    for i in 0..3 {
        common::put_bytes(&s3_a, "lazy", &format!("lazy-{i}"), body(4)).await;
    }
    // While dc-a stands, failover is refused.
    let (ok, text) = admin(
        &layout,
        &dc_b,
        "gateway-2",
        &["failover", "--to", "dc-b", "--yes"],
    );
    assert!(!ok && text.contains("quorum now: yes"), "{text}");
    assert!(
        common::eventually(10, || async {
            member_list(&layout, &dc_a, "gateway-1")
                .lines()
                .any(|l| l.starts_with("2 ") && l.trim_end().ends_with(" 0"))
        })
        .await,
        "the learner caught up"
    );

    // dc-b's gateway stops hearing anything (SIGSTOP) while dc-a goes on
    // acknowledging writes: the learner does not have them.
    let stopped = dc_b.child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &stopped])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // (Into the bucket written asynchronously: dc-b's nodes still hang.)
    for i in 0..5 {
        common::put_bytes(&s3_a, "lazy", &format!("unseen-{i}"), body(i)).await;
    }
    // dc-a is lost: its gateway and its nodes (the odd ones).
    kill(dc_a).await;
    signal(dc_b_nodes, "-CONT");
    for i in [4, 2, 0] {
        kill(nodes.remove(i)).await;
    }
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &stopped])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        common::eventually(10, || async { ready(&dc_b).await == 503 }).await,
        "a learner alone has no quorum"
    );
    // Failover waits longer than readiness: while the lost leader may still
    // be alive (heard within two election timeouts) it is refused.
    assert!(
        common::eventually(10, || async {
            let plan = admin(&layout, &dc_b, "gateway-2", &["failover", "--to", "dc-b"]).1;
            !plan.contains("has a quorum")
        })
        .await,
        "failover still refused with a quorum"
    );

    // The plan: dc-b's member would vote; the lost leader was last heard
    // before the unseen writes, so they fall in the window it names.
    let (ok, text) = admin(&layout, &dc_b, "gateway-2", &["failover", "--to", "dc-b"]);
    assert!(!ok && text.contains("nothing done"), "{text}");
    assert!(text.contains("members [2] become the voters"), "{text}");
    assert!(text.contains("surely lost: 0 committed entries"), "{text}");
    // ... and the data dc-b lacks: the three asynchronous objects.
    assert!(
        text.contains("object data lost with the other site: 3 segments"),
        "{text}"
    );
    for i in 0..3 {
        assert!(text.contains(&format!("lazy/lazy-{i} (")), "{text}");
    }
    let heard: f64 = text
        .split("last heard ")
        .nth(1)
        .and_then(|t| t.split(" s ago").next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(heard >= 1.0, "{text}");
    let (ok, text) = admin(
        &layout,
        &dc_b,
        "gateway-2",
        &["failover", "--to", "dc-c", "--yes"],
    );
    assert!(
        !ok && text.contains("no member of this cluster stands in site \"dc-c\""),
        "{text}"
    );
    let (ok, text) = admin(
        &layout,
        &dc_b,
        "gateway-2",
        &["failover", "--to", "dc-a", "--yes"],
    );
    assert!(!ok && text.contains("ask a gateway of site dc-a"), "{text}");

    let (ok, text) = admin(
        &layout,
        &dc_b,
        "gateway-2",
        &["failover", "--to", "dc-b", "--yes"],
    );
    assert!(ok, "{text}");
    assert!(
        common::eventually(15, || async { ready(&dc_b).await == 200 }).await,
        "dc-b leads after the failover"
    );
    // Everything dc-b had is there; what was written while it heard
    // nothing (inside the window the plan named) is what was lost.
    for i in 0..10 {
        assert_eq!(
            common::get_bytes(&s3_b, "two", &format!("kept-{i}")).await,
            body(i)
        );
    }
    for i in 0..5 {
        let gone = s3_b
            .get_object()
            .bucket("lazy")
            .key(format!("unseen-{i}"))
            .send()
            .await;
        assert_eq!(common::code(gone), "NoSuchKey");
    }
    // The objects the plan named as lacking cannot be read: their only
    // copy was on dc-a.
    for i in 0..3 {
        let read = s3_b
            .get_object()
            .bucket("lazy")
            .key(format!("lazy-{i}"))
            .send()
            .await;
        let bytes = match read {
            Ok(out) => out.body.collect().await.map(|b| b.to_vec()).ok(),
            Err(_) => None,
        };
        assert!(bytes.is_none(), "lazy-{i} read back without its data");
    }
    // New writes go to dc-b's stores once its probes have seen dc-a's
    // nodes gone (until then a write may meet one and get a 503).
    let s3 = &s3_b;
    assert!(
        common::eventually(15, || async move {
            s3.put_object()
                .bucket("two")
                .key("after")
                .body(body(3).into())
                .send()
                .await
                .is_ok()
        })
        .await
    );
    assert_eq!(common::get_bytes(&s3_b, "two", "after").await, body(3));
}

/// `tessera admin repair status --json`, asked of `gateway`.
fn repair_done(layout: &Layout, gateway: &Process, name: &str) -> bool {
    let (ok, text) = admin(layout, gateway, name, &["repair", "status", "--json"]);
    ok && serde_json::from_str::<tessera_server::admin::RepairStatus>(&text).is_ok_and(|s| s.done)
}

/// `tessera admin replication status --json`, asked of `gateway`.
fn replication(
    layout: &Layout,
    gateway: &Process,
    name: &str,
) -> tessera_server::admin::ReplicationStatus {
    let (ok, text) = admin(layout, gateway, name, &["replication", "status", "--json"]);
    assert!(ok, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `tessera admin` arguments giving bucket `lazy` a 2+1 copy on each
/// site, the second written by the site replicator.
const LAZY_POLICY: &[&str] = &[
    "bucket",
    "policy",
    "lazy",
    "--data-shards",
    "2",
    "--parity-shards",
    "1",
    "--site-copies",
    "dc-a,dc-b",
    "--replication",
    "async",
];

/// Sends `signal` (`-STOP`, `-CONT`) to every process of `processes`.
fn signal<'a>(processes: impl IntoIterator<Item = &'a Process>, signal: &str) {
    for p in processes {
        let pid = p.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

/// Reads every `bucket/key → body(i)` back through `s3`, byte for byte,
/// once its gateway answers (a leader may be being elected).
async fn all_read_back(s3: &aws_sdk_s3::Client, keys: &[(&str, String, usize)]) {
    let (bucket, first, _) = &keys[0];
    assert!(
        common::eventually(30, || async {
            s3.head_object()
                .bucket(*bucket)
                .key(first)
                .send()
                .await
                .is_ok()
        })
        .await,
        "{first} not served within 30 s"
    );
    for (bucket, key, i) in keys {
        assert_eq!(
            common::get_bytes(s3, bucket, key).await,
            body(*i),
            "{bucket}/{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_copy_per_site_either_site_alone_serves_everything_with_full_redundancy() {
    let _one = ONE_CLUSTER_AT_A_TIME.lock().await;
    // 2+1 kept whole on each site: three nodes a site, one disk each.
    let root = tempfile::tempdir().unwrap();
    let args = [
        "--nodes",
        "6",
        "--data-shards",
        "2",
        "--parity-shards",
        "1",
        "--gateways",
        "2",
        "--sites",
        "dc-a,dc-b",
        "--witness",
        "--site-copies",
    ];
    let layout = Layout::init(root.path(), &args, 14);
    let node_names: Vec<String> = (1..=6).map(|n| format!("node-{n}")).collect();
    let node_names: Vec<&str> = node_names.iter().map(String::as_str).collect();
    let (mut nodes, mut gateways, _witness) =
        start_all(&layout, &node_names, &["gateway-1", "gateway-2"]).await;
    let gw_b = gateways.pop().unwrap();
    let gw_a = gateways.pop().unwrap();
    // Nodes go round the sites: dc-a has the odd ones, dc-b the even.
    let mut dc_b_nodes: Vec<Process> = (0..3).map(|i| nodes.remove(i + 1)).collect();
    let mut dc_a_nodes = nodes;
    let s3_a = layout.s3(&gw_a);
    s3_a.create_bucket().bucket("copies").send().await.unwrap();
    let mut keys: Vec<(&str, String, usize)> = Vec::new();
    for i in 0..20 {
        let key = format!("both-{i}");
        common::put_bytes(&s3_a, "copies", &key, body(i)).await;
        keys.push(("copies", key, i));
    }

    // A bucket whose dc-b copies the site replicator writes: its PUTs wait
    // for dc-a's copy only, so they go on while dc-b's nodes hang
    // (SIGSTOP), and the replicator says what dc-b lacks until they wake.
    s3_a.create_bucket().bucket("lazy").send().await.unwrap();
    let (ok, text) = admin(&layout, &gw_a, "gateway-1", LAZY_POLICY);
    assert!(ok && text.contains("written async"), "{text}");
    signal(&dc_b_nodes, "-STOP");
    let lazy: Vec<(&str, String, usize)> = (0..6)
        .map(|i| ("lazy", format!("lazy-{i}"), 3 + i % 2))
        .collect();
    for (bucket, key, i) in &lazy {
        common::put_bytes(&s3_a, bucket, key, body(*i)).await;
    }
    let behind = replication(&layout, &gw_a, "gateway-1");
    assert!(!behind.done, "{behind:?}");
    let dc_b = behind.sites.iter().find(|s| s.site == "dc-b").unwrap();
    assert_eq!((dc_b.segments, dc_b.shards), (6, 18), "{behind:?}");
    let mut named: Vec<&str> = behind.one_copy.iter().map(|o| o.key.as_str()).collect();
    named.sort_unstable();
    assert_eq!(
        named,
        lazy.iter().map(|(_, k, _)| k.as_str()).collect::<Vec<_>>()
    );
    assert!(
        behind
            .one_copy
            .iter()
            .all(|o| o.site == "dc-b" && o.bucket == "lazy")
    );
    // Published every second by each gateway: the lag grows while dc-b hangs.
    let lag = || async {
        let metrics = common::http_get(&format!("{}/metrics", admin_url(&gw_a)))
            .await
            .1;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("tessera_site_replication_lag_seconds{site=\"dc-b\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        common::eventually(5, || async { lag().await > 0.5 }).await,
        "no lag for dc-b"
    );
    signal(&dc_b_nodes, "-CONT");
    assert!(
        common::eventually(60, || async {
            replication(&layout, &gw_a, "gateway-1").done
        })
        .await,
        "the replicator did not catch up: {:?}",
        replication(&layout, &gw_a, "gateway-1")
    );
    keys.extend(lazy);

    // A node down in each site: four stores up, but no site has the three
    // its copy needs, so no write can succeed and the gateway says so.
    kill(dc_a_nodes.remove(0)).await;
    kill(dc_b_nodes.remove(0)).await;
    assert!(
        common::eventually(20, || async { ready(&gw_a).await == 503 }).await,
        "ready without a site able to take a copy"
    );
    dc_a_nodes.insert(0, layout.node("node-1").await);
    dc_b_nodes.insert(0, layout.node("node-2").await);
    assert!(common::eventually(20, || async { ready(&gw_a).await == 200 }).await);

    // dc-b dies whole; dc-a alone serves everything, and still does with
    // one more of its own nodes gone: its copy has all its parity.
    kill(gw_b).await;
    for node in dc_b_nodes.drain(..) {
        kill(node).await;
    }
    all_read_back(&s3_a, &keys).await;
    let node_1 = dc_a_nodes.remove(0);
    kill(node_1).await;
    all_read_back(&s3_a, &keys).await;
    dc_a_nodes.insert(0, layout.node("node-1").await);

    // Writes go on with dc-b away: its copy is left for the site replicator.
    let mut written = false;
    for _ in 0..100 {
        let put = s3_a
            .put_object()
            .bucket("copies")
            .key("outage-0")
            .body(body(3).into())
            .send()
            .await;
        if put.is_ok() {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(written, "dc-a took no write while dc-b was away");
    keys.push(("copies", "outage-0".into(), 3));
    for i in 1..10 {
        let key = format!("outage-{i}");
        common::put_bytes(&s3_a, "copies", &key, body(i)).await;
        keys.push(("copies", key, i));
    }
    // The sharded ones (not the small ones kept in the metadata) have only
    // dc-a's copy, and the replicator says so.
    let outage = replication(&layout, &gw_a, "gateway-1");
    let mut named: Vec<&str> = outage.one_copy.iter().map(|o| o.key.as_str()).collect();
    named.sort_unstable();
    assert_eq!(
        named,
        ["outage-0", "outage-3", "outage-4", "outage-8", "outage-9"],
        "{outage:?}"
    );

    // dc-b comes back; the replicator writes its copy of the outage's objects.
    let dc_b_nodes = join_all(["node-2", "node-4", "node-6"].map(|n| layout.node(n))).await;
    let gw_b = layout.gateway("gateway-2").await;
    assert!(
        common::eventually(90, || async {
            replication(&layout, &gw_a, "gateway-1").done
                && repair_done(&layout, &gw_a, "gateway-1")
        })
        .await,
        "dc-b's copies were not all written after it came back: {}\n{}\n{}",
        admin(&layout, &gw_a, "gateway-1", &["replication", "status"]).1,
        admin(&layout, &gw_a, "gateway-1", &["repair", "status"]).1,
        member_list(&layout, &gw_a, "gateway-1")
    );

    // Now dc-a dies whole: dc-b alone serves every object, those written
    // without it included.
    kill(gw_a).await;
    for node in dc_a_nodes {
        kill(node).await;
    }
    all_read_back(&layout.s3(&gw_b), &keys).await;
    drop(dc_b_nodes);
}
