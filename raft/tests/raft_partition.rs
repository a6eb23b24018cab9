//! A network partition: the minority side cannot commit and says so quickly
//! (`NoQuorum`); the majority elects a leader and goes on; after healing
//! there is one history and nothing the minority was refused shows up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod raft_common;

use std::time::{Duration, Instant};

use raft_common::{Cluster, assert_history, create_bucket, put, version_ids};
use tessera_raft::MetaError;
use tessera_raft::node::MetaNode;

/// Cuts `side` off from every other member, both directions (`heal`: reconnect).
fn partition(cluster: &Cluster, side: &[u64], heal: bool) {
    for (id, node) in &cluster.nodes {
        let cut: Vec<u64> = if heal {
            Vec::new()
        } else if side.contains(id) {
            cluster
                .nodes
                .keys()
                .copied()
                .filter(|o| !side.contains(o))
                .collect()
        } else {
            side.to_vec()
        };
        node.set_partitioned(cut);
    }
}

async fn wait_leader_among(nodes: &[MetaNode]) -> MetaNode {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(n) = nodes.iter().find(|n| n.status().role == "leader") {
            return n.clone();
        }
        assert!(Instant::now() < deadline, "majority elected no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minority_answers_no_quorum_and_heals_to_one_history() {
    let cluster = Cluster::start(5, |_| {}).await;
    let old_leader = cluster.leader().await;
    let writer = cluster.nodes[&old_leader].clone();
    writer.write(create_bucket("b")).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..10 {
        let id = format!("before-{i}");
        writer.write(put("b", "k", &id)).await.unwrap();
        acked.push(id);
    }

    // The old leader plus one follower form the minority.
    let follower = *cluster.nodes.keys().find(|id| **id != old_leader).unwrap();
    let minority = [old_leader, follower];
    partition(&cluster, &minority, false);

    // Minority: writes and linearizable reads fail with NoQuorum, quickly.
    for id in minority {
        let node = &cluster.nodes[&id];
        let started = Instant::now();
        let refused = node.write(put("b", "k", &format!("minority-{id}"))).await;
        assert!(matches!(refused, Err(MetaError::NoQuorum)), "{refused:?}");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "took {:?}",
            started.elapsed()
        );
        let read = node.read(|v| v.object("b", "k", None)).await;
        assert!(matches!(read, Err(MetaError::NoQuorum)), "{read:?}");
        if id == old_leader {
            assert!(!node.status().has_quorum);
        }
        // Local reads still answer from the applied state.
        assert_eq!(version_ids(node, "b", "k").await.len(), 10);
    }

    // Majority: a new leader, writes continue through any of its members.
    let majority: Vec<MetaNode> = cluster
        .nodes
        .iter()
        .filter(|(id, _)| !minority.contains(id))
        .map(|(_, n)| n.clone())
        .collect();
    let new_leader = wait_leader_among(&majority).await;
    assert!(!minority.contains(&new_leader.id()));
    for (i, node) in majority.iter().enumerate() {
        let id = format!("majority-{i}");
        node.write(put("b", "k", &id)).await.unwrap();
        acked.push(id);
    }

    // Heal: one leader, one history, the refused writes absent.
    partition(&cluster, &minority, true);
    cluster.converged().await;
    for node in cluster.nodes.values() {
        assert_history(node, "b", "k", &acked, &[]).await;
    }
    let leader = cluster.leader().await;
    cluster.nodes[&leader]
        .write(put("b", "k", "after-heal"))
        .await
        .unwrap();
    cluster.converged().await;
    cluster.shutdown().await;
}
