//! Commit benchmark: put-object-version commits per second with 64
//! concurrent writers (group commit), and commit latency at light load, on a
//! single member and on three members over mutual-TLS loopback.
//!
//! `cargo run --release -p tessera-raft --example commit_bench [-- SECONDS [DIR]]`
//! DIR must be on a real disk (fsync is what is measured); default: a
//! temporary directory under `target/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tessera_raft::ClusterCa;
use tessera_raft::command::Command;
use tessera_raft::model::{Bucket, ObjectData, ObjectVersion, SystemMetadata, Versioning};
use tessera_raft::node::{MetaConfig, MetaNode, RaftTiming};

const WRITERS: usize = 64;

fn put(writer: usize, i: u64) -> Command {
    Command::PutObject {
        version: ObjectVersion {
            bucket: "bench".into(),
            key: format!("dir-{:02}/object-{writer:02}-{i:08}", i % 16),
            version_id: format!("{writer:02}-{i:08}"),
            last_modified: 1_700_000_000_000,
            size: 1 << 20,
            etag: "0123456789abcdef0123456789abcdef".into(),
            checksums: Vec::new(),
            system: SystemMetadata {
                content_type: Some("application/octet-stream".into()),
                ..SystemMetadata::default()
            },
            user: BTreeMap::new(),
            tags: Vec::new(),
            owner: "TKBENCH".into(),
            wrapped_key: vec![9; 60],
            data: ObjectData::Inline(vec![1; 200]),
        },
        precondition: None,
    }
}

fn create_bucket() -> Command {
    Command::CreateBucket {
        bucket: Bucket {
            name: "bench".into(),
            owner: "TKBENCH".into(),
            created: 1,
            versioning: Versioning::Enabled,
            tags: None,
            cors: None,
            settings: BTreeMap::new(),
        },
    }
}

/// 64 writers for `secs`: commits per second.
async fn throughput(node: &MetaNode, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (node, stop, done) = (node.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                node.write(put(w, i)).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// One writer, one commit at a time: (p50, p99).
async fn latency(node: &MetaNode, n: u64) -> (Duration, Duration) {
    let mut samples = Vec::new();
    for i in 0..n {
        let t = Instant::now();
        node.write(put(99, i)).await.unwrap();
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99))
}

fn report(name: &str, rate: f64, (p50, p99): (Duration, Duration)) {
    println!(
        "{name}: {rate:.0} commits/s with {WRITERS} writers; light load p50 {:.2} ms, p99 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).map_or(5, |s| s.parse().unwrap());
    let base = args.get(2).map_or_else(
        || std::path::PathBuf::from("target"),
        std::path::PathBuf::from,
    );
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();

    // Single member, no RPC: the embedded default.
    let single = MetaNode::start(MetaConfig::new(1, dir.path().join("single")))
        .await
        .unwrap();
    single.bootstrap_single().await.unwrap();
    single.write(create_bucket()).await.unwrap();
    let lat = latency(&single, 300).await;
    let rate = throughput(&single, secs).await;
    report("single member", rate, lat);
    single.shutdown().await.unwrap();

    // Three members over mutual TLS on loopback.
    let ca = ClusterCa::generate("bench CA").unwrap();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let mut cfg = MetaConfig::new(id, dir.path().join(format!("member-{id}")));
        cfg.rpc_listen = Some("127.0.0.1:0".parse().unwrap());
        cfg.tls = Some(ca.issue(&format!("member-{id}"), &[]).unwrap());
        cfg.timing = RaftTiming::default();
        nodes.push(MetaNode::start(cfg).await.unwrap());
    }
    nodes[0].bootstrap_single().await.unwrap();
    for n in &nodes[1..] {
        nodes[0].add_learner(n.id(), n.advertise()).await.unwrap();
    }
    nodes[0].promote([2, 3]).await.unwrap();
    nodes[0].write(create_bucket()).await.unwrap();
    let lat = latency(&nodes[0], 300).await;
    let rate = throughput(&nodes[0], secs).await;
    report("three members (writes at the leader)", rate, lat);
    for n in nodes {
        n.shutdown().await.unwrap();
    }
}
