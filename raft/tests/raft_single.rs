//! A single member (the embedded default): bootstrap, writes, reads,
//! refusals, restart recovery, snapshots with log purge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod raft_common;

use raft_common::{create_bucket, dump, fast_timing, put, version_ids};
use tessera_raft::MetaError;
use tessera_raft::command::ApplyError;
use tessera_raft::node::{MetaConfig, MetaNode};

fn config(dir: &std::path::Path) -> MetaConfig {
    let mut cfg = MetaConfig::new(1, dir);
    cfg.timing = fast_timing();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_member_writes_reads_and_recovers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = MetaNode::start(config(dir.path())).await.unwrap();
    node.bootstrap_single().await.unwrap();
    node.bootstrap_single().await.unwrap(); // idempotent

    node.write(create_bucket("b")).await.unwrap();
    let again = node.write(create_bucket("b")).await;
    assert!(
        matches!(
            again,
            Err(MetaError::Apply(ApplyError::BucketExists { .. }))
        ),
        "{again:?}"
    );

    // 64 concurrent writers on one key: every acknowledged version once.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            node.write(put("b", "k", &format!("v{i:03}"))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut ids = version_ids(&node, "b", "k").await;
    ids.sort();
    assert_eq!(ids, (0..64).map(|i| format!("v{i:03}")).collect::<Vec<_>>());

    let latest = node
        .read(|v| v.object("b", "k", None))
        .await
        .unwrap()
        .expect("latest version");
    let status = node.status();
    assert_eq!(status.leader, Some(1));
    assert_eq!(status.role, "leader");
    assert_eq!(status.voters, vec![1]);
    assert!(status.has_quorum);
    let before = dump(&node).await;
    node.shutdown().await.unwrap();
    assert!(matches!(
        node.read_local(|v| v.buckets()).await,
        Err(MetaError::Shutdown)
    ));

    // Restart on the same directory: everything is back, writes continue.
    let node = MetaNode::start(config(dir.path())).await.unwrap();
    node.bootstrap_single().await.unwrap();
    assert_eq!(dump(&node).await, before);
    let read_back = node.read(|v| v.object("b", "k", None)).await.unwrap();
    assert_eq!(read_back, Some(latest));
    node.write(put("b", "k", "after-restart")).await.unwrap();
    let ids = version_ids(&node, "b", "k").await;
    assert_eq!(ids.len(), 65);
    assert_eq!(ids[0], "after-restart", "newest first by log index");
    node.shutdown().await.unwrap();
}

/// The lone leader answers linearizable reads from its own state, without a
/// read-index round: every write is visible to a read that starts after the
/// write was acknowledged, also while other writes are in flight, and right
/// after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_leader_reads_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let node = MetaNode::start(config(dir.path())).await.unwrap();
    node.bootstrap_single().await.unwrap();
    node.write(create_bucket("b")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..8 {
                let key = format!("k{i}");
                let version = format!("v{round}");
                node.write(put("b", &key, &version)).await.unwrap();
                let seen = node
                    .read(|v| v.object("b", &key, None))
                    .await
                    .unwrap()
                    .expect("an acknowledged write is read back");
                assert_eq!(seen.version_id, version);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    node.shutdown().await.unwrap();

    let node = MetaNode::start(config(dir.path())).await.unwrap();
    node.bootstrap_single().await.unwrap();
    for i in 0..32 {
        let key = format!("k{i}");
        let seen = node
            .read(|v| v.object("b", &key, None))
            .await
            .unwrap()
            .expect("read back after restart");
        assert_eq!(seen.version_id, "v7");
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_purge_the_log_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.timing.snapshot_every = 50;
    cfg.timing.logs_kept_after_snapshot = 10;
    let node = MetaNode::start(cfg.clone()).await.unwrap();
    node.bootstrap_single().await.unwrap();
    node.write(create_bucket("b")).await.unwrap();
    for i in 0..300 {
        node.write(put("b", &format!("key-{i:04}"), "v"))
            .await
            .unwrap();
    }
    // A snapshot was built and the log behind it purged.
    let snap = dir.path().join("snapshots").join("current.snap");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !snap.exists() || node.status().purged_index == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot built or log not purged: {:?}",
            node.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = dump(&node).await;
    node.shutdown().await.unwrap();

    let node = MetaNode::start(cfg).await.unwrap();
    node.bootstrap_single().await.unwrap();
    assert_eq!(dump(&node).await, before);
    node.write(put("b", "key-after", "v")).await.unwrap();
    assert_eq!(
        version_ids(&node, "b", "key-after").await,
        vec!["v".to_string()]
    );
    node.shutdown().await.unwrap();
}

/// Writes go on while tokio's blocking pool is full (every thread stuck,
/// as when a dead peer's name takes seconds to look up): batches are
/// applied on a thread of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_apply_while_the_blocking_pool_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let node = MetaNode::start(config(dir.path())).await.unwrap();
    node.bootstrap_single().await.unwrap();
    node.write(create_bucket("b")).await.unwrap();

    // tokio's default pool has 512 threads: take them all for 20 s.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Arc::new(std::sync::Mutex::new(held));
    for _ in 0..520 {
        let held = held.clone();
        tokio::task::spawn_blocking(move || {
            let _ = held
                .lock()
                .unwrap()
                .recv_timeout(std::time::Duration::from_secs(20));
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    for i in 0..5 {
        node.write(put("b", &format!("k{i}"), "v")).await.unwrap();
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(release);
    node.shutdown().await.unwrap();
}
