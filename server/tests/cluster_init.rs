//! `tessera init` as the operator runs it: a cluster written into a
//! directory and started with exactly the commands init printed (three
//! nodes and a gateway, real processes on loopback ports) serves objects;
//! impossible layouts are refused, with what to change, before anything
//! is written; secrets are owner-only; a node refuses another node's or
//! another cluster's certificate, and starts with one `tessera cert issue`
//! adds later.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::process::{TESSERA, run, spawn};

/// `tessera init --out OUT FLAGS`, which must succeed: its output.
fn init(out: &Path, flags: &[&str]) -> String {
    let mut args = vec!["init", "--out", out.to_str().unwrap()];
    args.extend_from_slice(flags);
    let output = run(&args);
    assert!(
        output.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The value after `label` on its line of `text`.
fn printed<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        .trim()
}

/// The commands init printed for `subcommand`, without the binary.
fn commands(text: &str, subcommand: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|line| line.strip_prefix(TESSERA))
        .map(|line| {
            let command = line.split('#').next().unwrap();
            command
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|words| words[0] == subcommand)
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_started_as_init_printed_serves_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cluster");
    let base = common::free_ports(5).to_string();
    let printed_text = init(
        &out,
        &[
            "--nodes",
            "3",
            "--disks",
            "2",
            "--zones",
            "3",
            "--base-port",
            &base,
        ],
    );
    let access_key = printed(&printed_text, "Access key:");
    let secret_key = printed(&printed_text, "Secret key:");

    let node_commands = commands(&printed_text, "node");
    assert_eq!(node_commands.len(), 3, "{printed_text}");
    let mut nodes = Vec::new();
    for command in &node_commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        nodes.push(spawn(&args, "Tessera storage node").await);
    }
    let gateway_commands = commands(&printed_text, "serve");
    assert_eq!(gateway_commands.len(), 1, "{printed_text}");
    let args: Vec<&str> = gateway_commands[0].iter().map(String::as_str).collect();
    let gateway = spawn(&args, "Tessera S3 API on ").await;
    let url = gateway.announced["Tessera S3 API on ".len()..]
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(url, format!("http://127.0.0.1:{base}"));

    let s3 = common::client_for(&url, access_key, secret_key);
    s3.create_bucket().bucket("init").send().await.unwrap();
    let mut objects = Vec::new();
    for (i, size) in [0usize, 4_000, 1 << 20, 2 * (1 << 20) + 5]
        .into_iter()
        .enumerate()
    {
        let body: Vec<u8> = (0..size).map(|j| (j * 13 + i) as u8).collect();
        let key = format!("obj-{i}");
        common::put_bytes(&s3, "init", &key, body.clone()).await;
        objects.push((key, body));
    }
    for (key, body) in &objects {
        assert_eq!(&common::get_bytes(&s3, "init", key).await, body, "{key}");
    }
    for n in 1..=3 {
        let data = out.join(format!("data/node-{n}"));
        assert!(
            !common::shard_files(&data).is_empty(),
            "node {n} holds shards"
        );
    }
    drop(gateway);
    drop(nodes);
}

#[test]
fn init_refuses_impossible_layouts_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cluster");
    let cases: [(&[&str], &str); 5] = [
        (&["--nodes", "0"], "use --nodes 1 or more"),
        (
            &["--nodes", "2", "--disks", "2"],
            "2 nodes × 2 disks = 4 stores cannot hold the 6 shards of a 4+2 segment on \
             distinct stores: use --nodes 3 or more, --disks 3 or more",
        ),
        (
            &["--nodes", "6", "--zones", "2"],
            "4+2 over 2 zones puts 3 shards of a segment in one zone, more than its 2 parity \
             shards: losing that zone would lose data. Use --zones 3 or more",
        ),
        (
            &["--nodes", "6", "--base-port", "65530"],
            "8 ports from --base-port 65530 do not fit below 65536: use --base-port between 1 \
             and 65528",
        ),
        (
            &["--nodes", "6", "--gateways", "2"],
            "2 voting gateways and no witness: losing one of them stops every write",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["init", "--out", out.to_str().unwrap()];
        args.extend_from_slice(flags);
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
        assert!(!out.exists(), "{flags:?} wrote nothing");
    }

    // A directory in use is never written into.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("ca.key"), "precious").unwrap();
    let output = run(&["init", "--out", out.to_str().unwrap(), "--nodes", "6"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(out.join("ca.key")).unwrap(),
        "precious"
    );
    assert_eq!(common::tree(&out).len(), 1);
}

#[test]
fn init_keeps_secrets_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cluster");
    init(&out, &["--nodes", "6"]);
    assert_eq!(mode(&out), 0o700);
    assert_eq!(mode(&out.join("ca.key")), 0o600);
    assert_eq!(mode(&out.join("ca.pem")), 0o644);
    for member in ["gateway-1", "node-1", "node-6"] {
        assert_eq!(mode(&out.join(format!("{member}.key"))), 0o600, "{member}");
        assert_eq!(mode(&out.join(format!("data/{member}"))), 0o700, "{member}");
    }
    for secret in ["master.key", "credentials"] {
        assert_eq!(
            mode(&out.join("data/gateway-1").join(secret)),
            0o600,
            "{secret}"
        );
    }
}

/// `out/node-1.toml` with `changes` (key, TOML value) applied, written as `out/NAME.toml`.
fn node_config(out: &Path, name: &str, changes: &[(&str, toml::Value)]) -> String {
    let text = std::fs::read_to_string(out.join("node-1.toml")).unwrap();
    let mut config: toml::Table = toml::from_str(&text).unwrap();
    for (key, value) in changes {
        config.insert((*key).to_owned(), value.clone());
    }
    let path = out.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn path_value(path: &Path) -> toml::Value {
    toml::Value::String(path.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_only_with_its_own_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    init(&ours, &["--nodes", "6"]);
    init(&theirs, &["--nodes", "6"]);

    // (config name, whose certificate: cluster and member, why refused)
    let refusals = [
        (
            "node-1-with-node-2-cert",
            (&ours, "node-2"),
            "the certificate was issued to node-2, not to node-1",
        ),
        (
            "node-1-with-their-cert",
            (&theirs, "node-1"),
            "not signed by the cluster CA",
        ),
    ];
    for (name, (cluster, member), reason) in refusals {
        let config = node_config(
            &ours,
            name,
            &[
                (
                    "cluster_cert",
                    path_value(&cluster.join(format!("{member}.pem"))),
                ),
                (
                    "cluster_key",
                    path_value(&cluster.join(format!("{member}.key"))),
                ),
            ],
        );
        let output = run(&["node", "--config", &config]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("node 1 refuses the certificate"),
            "{name}: {stderr}"
        );
        assert!(stderr.contains(reason), "{name}: {stderr}");
    }

    // A seventh node's certificate, issued later, starts node 7.
    let extra = tmp.path().join("extra");
    let output = run(&[
        "cert",
        "issue",
        "--ca-dir",
        ours.to_str().unwrap(),
        "--name",
        "node-7",
        "--out",
        extra.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(mode(&extra.join("node-7.key")), 0o600);
    let config = node_config(
        &ours,
        "node-7",
        &[
            ("id", toml::Value::Integer(7)),
            ("listen", toml::Value::String("127.0.0.1:0".into())),
            ("data_dir", path_value(&tmp.path().join("node-7-data"))),
            ("cluster_cert", path_value(&extra.join("node-7.pem"))),
            ("cluster_key", path_value(&extra.join("node-7.key"))),
        ],
    );
    let node = spawn(&["node", "--config", &config], "Tessera storage node").await;
    assert!(
        node.announced
            .starts_with("Tessera storage node 7 on 127.0.0.1:"),
        "{}",
        node.announced
    );
}
