//! Storage nodes as real processes: three `tessera node`s (two disks each)
//! and a `tessera serve` gateway using them over mutual TLS, 4+2. Objects
//! written through the gateway land on the nodes' disks, read back equal,
//! and still do after one node is killed with SIGKILL. A client with a
//! certificate from another CA is refused by a node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::process::spawn;
use tessera_net::{ClusterCa, ClusterTls, RpcClient};
use tessera_storage::Remote;

/// Writes an identity's PEM files under `dir` as `name.{pem,key}`, the CA as `ca.pem`.
fn write_identity(dir: &Path, name: &str, tls: &ClusterTls) -> String {
    std::fs::write(dir.join("ca.pem"), &tls.ca_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), &tls.cert_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), &tls.key_pem).unwrap();
    format!(
        "cluster_ca = {:?}\ncluster_cert = {:?}\ncluster_key = {:?}\n",
        dir.join("ca.pem"),
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key"))
    )
}

fn shard_files(root: &Path) -> Vec<PathBuf> {
    common::tree(root)
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "shards"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_stores_on_nodes_and_reads_through_a_killed_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();

    let mut nodes = Vec::new();
    for n in 1..=3u64 {
        let tls = write_identity(
            dir.path(),
            &format!("node-{n}"),
            &ca.issue(&format!("node-{n}"), &[]).unwrap(),
        );
        let config = dir.path().join(format!("node-{n}.toml"));
        let data = dir.path().join(format!("node-{n}"));
        std::fs::write(
            &config,
            format!("id = {n}\nlisten = \"127.0.0.1:0\"\ndata_dir = {data:?}\ndisks = 2\nzone = \"z{n}\"\n{tls}"),
        )
        .unwrap();
        let node = spawn(
            &["node", "--config", config.to_str().unwrap()],
            "Tessera storage node",
        )
        .await;
        let addr = node
            .announced
            .split(" on ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        nodes.push((n, addr, data, node));
    }

    let gateway_tls = write_identity(
        dir.path(),
        "gateway-1",
        &ca.issue("gateway-1", &[]).unwrap(),
    );
    let mut config = format!(
        "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n{gateway_tls}",
        dir.path().join("gateway-1"),
        common::TEST_ACCESS_KEY,
        common::TEST_SECRET_KEY,
    );
    for (n, addr, _, _) in &nodes {
        config.push_str(&format!(
            "[[nodes]]\nid = {n}\naddr = \"{addr}\"\nzone = \"z{n}\"\n"
        ));
    }
    let config_path = dir.path().join("gateway-1.toml");
    std::fs::write(&config_path, config).unwrap();
    let gateway = spawn(
        &["serve", "--config", config_path.to_str().unwrap()],
        "Tessera S3 API on ",
    )
    .await;
    let url = gateway.announced["Tessera S3 API on ".len()..]
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let s3 = common::client_for(&url, common::TEST_ACCESS_KEY, common::TEST_SECRET_KEY);

    s3.create_bucket().bucket("nodes").send().await.unwrap();
    let sizes = [0usize, 100, 5_000, 70_000, 1 << 20, 3 * (1 << 20) + 17];
    let mut objects = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let body: Vec<u8> = (0..*size).map(|j| (j * 31 + i * 7) as u8).collect();
        let key = format!("obj-{i}");
        s3.put_object()
            .bucket("nodes")
            .key(&key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
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

    // Node 2 dies (two shards of every segment, as many as the parity):
    // every object still reads back equal.
    let (_, _, _, mut killed) = nodes.remove(1);
    killed.child.start_kill().unwrap();
    killed.child.wait().await.unwrap();
    for (key, body) in &objects {
        assert_eq!(
            &common::get_bytes(&s3, "nodes", key).await,
            body,
            "{key} after node 2 died"
        );
    }
    drop(gateway);
}
