//! Clusters of real processes: `tessera node`s over mutual TLS and a
//! `tessera serve` gateway using them, and `tessera admin` against it.

use std::path::{Path, PathBuf};

use tessera_net::{ClusterCa, ClusterTls};

use super::process::{Process, run, spawn};

/// Writes an identity's PEM files under `dir` as `name.{pem,key}`, the CA as `ca.pem`.
pub fn write_identity(dir: &Path, name: &str, tls: &ClusterTls) -> String {
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

/// Runs `tessera admin ARGS` against `gateway` (its token from its data
/// dir under `dir`) and returns what it printed.
pub fn admin(gateway: &Process, dir: &Path, args: &[&str]) -> String {
    admin_result(gateway, dir, args).unwrap_or_else(|stderr| panic!("{args:?}: {stderr}"))
}

/// The arguments of `tessera admin ARGS` against `gateway` (its token
/// from its data dir under `dir`).
pub fn admin_args(gateway: &Process, dir: &Path, args: &[&str]) -> Vec<String> {
    let url = gateway.announced.split(", admin on ").nth(1).unwrap();
    let data_dir = dir.join("gateway-1");
    let mut all: Vec<String> = vec![
        "admin".into(),
        "--url".into(),
        url.into(),
        "--data-dir".into(),
        data_dir.to_str().unwrap().into(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all
}

/// Runs `tessera admin ARGS`: what it printed, or its error output.
pub fn admin_result(gateway: &Process, dir: &Path, args: &[&str]) -> Result<String, String> {
    let all = admin_args(gateway, dir, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = run(&all);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Starts `count` nodes of `disks` disks each, each node its own zone.
pub async fn start_nodes(
    dir: &Path,
    ca: &ClusterCa,
    count: u64,
    disks: usize,
) -> Vec<(u64, String, PathBuf, Process)> {
    start_nodes_with(dir, ca, count, disks, "").await
}

/// [`start_nodes`], with `extra` settings in each node's config file.
pub async fn start_nodes_with(
    dir: &Path,
    ca: &ClusterCa,
    count: u64,
    disks: usize,
    extra: &str,
) -> Vec<(u64, String, PathBuf, Process)> {
    let mut nodes = Vec::new();
    for n in 1..=count {
        nodes.push(start_node(dir, ca, n, disks, extra).await);
    }
    nodes
}

/// Starts node `n` of `disks` disks, `extra` settings in its config
/// file: its id, address, data dir and process.
pub async fn start_node(
    dir: &Path,
    ca: &ClusterCa,
    n: u64,
    disks: usize,
    extra: &str,
) -> (u64, String, PathBuf, Process) {
    let tls = write_identity(
        dir,
        &format!("node-{n}"),
        &ca.issue(&format!("node-{n}"), &[]).unwrap(),
    );
    let config = dir.join(format!("node-{n}.toml"));
    let data = dir.join(format!("node-{n}"));
    std::fs::write(
        &config,
        format!(
            "id = {n}\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\ndisks = {disks}\n{extra}{tls}"
        ),
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
    (n, addr, data, node)
}

/// Starts a gateway over `nodes` with `extra` settings in its config file.
pub async fn start_gateway(
    dir: &Path,
    ca: &ClusterCa,
    nodes: &[(u64, String, PathBuf, Process)],
    extra: &str,
) -> (Process, aws_sdk_s3::Client) {
    let listed: Vec<(u64, String)> = nodes
        .iter()
        .map(|(n, addr, ..)| (*n, addr.clone()))
        .collect();
    start_gateway_listing(dir, ca, &listed, extra).await
}

/// Starts a gateway whose `[[nodes]]` list the `(id, address)` pairs given.
pub async fn start_gateway_listing(
    dir: &Path,
    ca: &ClusterCa,
    nodes: &[(u64, String)],
    extra: &str,
) -> (Process, aws_sdk_s3::Client) {
    let gateway_tls = write_identity(dir, "gateway-1", &ca.issue("gateway-1", &[]).unwrap());
    let mut config = format!(
        "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n{extra}{gateway_tls}",
        dir.join("gateway-1"),
        super::TEST_ACCESS_KEY,
        super::TEST_SECRET_KEY,
    );
    for (n, addr) in nodes {
        config.push_str(&format!("[[nodes]]\nid = {n}\naddr = \"{addr}\"\n"));
    }
    let config_path = dir.join("gateway-1.toml");
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
    let s3 = super::client_for(&url, super::TEST_ACCESS_KEY, super::TEST_SECRET_KEY);
    (gateway, s3)
}
