//! Helpers shared by the raft integration tests: cluster TLS, fast timing,
//! commands, and state comparison.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tessera_raft::ClusterCa;
use tessera_raft::command::Command;
use tessera_raft::model::{Bucket, ObjectData, ObjectVersion, SystemMetadata, Versioning};
use tessera_raft::node::{MetaConfig, MetaNode, RaftTiming};
use tessera_raft::snapshot_data::{SnapshotRecord, export};

/// Short timeouts so elections and failovers take a second or two (openraft
/// also bounds each AppendEntries RPC by the heartbeat interval: keep it
/// above a loaded machine's fsync time).
pub fn fast_timing() -> RaftTiming {
    RaftTiming {
        heartbeat: Duration::from_millis(200),
        election_timeout_min: Duration::from_millis(800),
        election_timeout_max: Duration::from_millis(1600),
        // Generous: only failing paths wait this long, and CI machines are busy.
        request_timeout: Duration::from_secs(15),
        snapshot_every: 100_000,
        logs_kept_after_snapshot: 1_000,
    }
}

/// A member config with cluster TLS from `ca`, RPC on a free loopback port.
pub fn member_config(ca: &ClusterCa, id: u64, dir: &Path) -> MetaConfig {
    let mut cfg = MetaConfig::new(id, dir.join(format!("member-{id}")));
    cfg.rpc_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.tls = Some(ca.issue(&format!("member-{id}"), &[]).unwrap());
    cfg.timing = fast_timing();
    cfg
}

/// `CreateBucket` with versioning enabled.
pub fn create_bucket(name: &str) -> Command {
    Command::CreateBucket {
        bucket: Bucket {
            name: name.into(),
            owner: "TKOWNER".into(),
            created: 1,
            versioning: Versioning::Enabled,
            tags: None,
            cors: None,
            settings: BTreeMap::new(),
        },
    }
}

/// `PutObject` of a small inline version.
pub fn put(bucket: &str, key: &str, version_id: &str) -> Command {
    Command::PutObject {
        version: ObjectVersion {
            bucket: bucket.into(),
            key: key.into(),
            version_id: version_id.into(),
            last_modified: 1_700_000_000_000,
            size: 5,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            checksums: Vec::new(),
            system: SystemMetadata::default(),
            user: BTreeMap::new(),
            tags: Vec::new(),
            owner: "TKOWNER".into(),
            wrapped_key: vec![7; 40],
            data: ObjectData::Inline(b"hello".to_vec()),
        },
        precondition: None,
    }
}

/// Every record of a member's applied state (exact state comparison).
pub async fn dump(node: &MetaNode) -> Vec<SnapshotRecord> {
    node.read_local(|view| export(view.transaction())?.collect())
        .await
        .unwrap()
}

/// Version ids stored under `bucket`/`key`, newest first.
pub async fn version_ids(node: &MetaNode, bucket: &str, key: &str) -> Vec<String> {
    let q = tessera_raft::ListVersionsQuery {
        prefix: key.into(),
        delimiter: None,
        key_marker: None,
        version_id_marker: None,
        max_keys: 1_000_000,
    };
    node.read_local(|view| view.list_versions(bucket, &q))
        .await
        .unwrap()
        .versions
        .into_iter()
        .filter(|(v, _)| v.key == key)
        .map(|(v, _)| v.version_id)
        .collect()
}

/// What a member says of the leadership: (its id, the leader it knows,
/// whether it is the leader itself).
pub type LeaderView = (u64, Option<u64>, bool);

/// The leader every member in `views` names, if it is one of them and says
/// it leads.
pub fn agreed_leader(views: &[LeaderView]) -> Option<u64> {
    let leader = views.first()?.1?;
    let all_agree = views.iter().all(|(_, l, _)| *l == Some(leader));
    let leads = views.iter().any(|(id, _, leads)| *id == leader && *leads);
    (all_agree && leads).then_some(leader)
}

/// In-process members on loopback, with mutual TLS from one cluster CA.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub ca: ClusterCa,
    pub nodes: BTreeMap<u64, MetaNode>,
    pub configs: BTreeMap<u64, MetaConfig>,
}

impl Cluster {
    /// Starts members `1..=n`: 1 bootstraps, the others join as learners and are promoted.
    pub async fn start(n: u64, tweak: impl Fn(&mut MetaConfig)) -> Cluster {
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            ca: ClusterCa::generate("test cluster CA").unwrap(),
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
        };
        for id in 1..=n {
            cluster.start_member(id, &tweak).await;
        }
        cluster.nodes[&1].bootstrap_single().await.unwrap();
        for id in 2..=n {
            let addr = cluster.nodes[&id].advertise().to_owned();
            cluster.nodes[&1].add_learner(id, addr).await.unwrap();
        }
        if n > 1 {
            cluster.nodes[&1].promote(2..=n).await.unwrap();
        }
        cluster
    }

    /// Starts a fresh member `id` (not yet part of the cluster).
    pub async fn start_member(&mut self, id: u64, tweak: impl Fn(&mut MetaConfig)) -> MetaNode {
        let mut cfg = member_config(&self.ca, id, self.dir.path());
        tweak(&mut cfg);
        let node = MetaNode::start(cfg.clone()).await.unwrap();
        // Restarts reuse the port: the cluster knows this address.
        cfg.rpc_listen = node.rpc_addr();
        self.configs.insert(id, cfg);
        self.nodes.insert(id, node.clone());
        node
    }

    /// Stops member `id` (its files stay).
    pub async fn stop(&mut self, id: u64) {
        let node = self.nodes.remove(&id).unwrap();
        node.shutdown().await.unwrap();
    }

    /// Starts member `id` again on its files and address.
    pub async fn restart(&mut self, id: u64) -> MetaNode {
        let node = MetaNode::start(self.configs[&id].clone()).await.unwrap();
        self.nodes.insert(id, node.clone());
        node
    }

    /// The leader all running members agree on.
    pub async fn leader(&self) -> u64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let views: Vec<LeaderView> = self
                .nodes
                .values()
                .map(|n| {
                    let s = n.status();
                    (s.id, s.leader, s.role == "leader")
                })
                .collect();
            if let Some(l) = agreed_leader(&views) {
                return l;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no agreed leader: {views:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every running member applied the leader's last entry,
    /// then asserts they all hold exactly the same state; returns it.
    pub async fn converged(&self) -> Vec<SnapshotRecord> {
        let leader = self.leader().await;
        let target = self.nodes[&leader].status().last_log_index;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        for node in self.nodes.values() {
            while node.status().last_applied < target {
                assert!(
                    std::time::Instant::now() < deadline,
                    "member {} stuck at {} < {target}",
                    node.id(),
                    node.status().last_applied
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let reference = dump(&self.nodes[&leader]).await;
        for node in self.nodes.values() {
            assert!(
                dump(node).await == reference,
                "member {} diverged",
                node.id()
            );
        }
        reference
    }

    /// Shuts every member down.
    pub async fn shutdown(mut self) {
        for (_, node) in std::mem::take(&mut self.nodes) {
            node.shutdown().await.unwrap();
        }
    }
}

/// A background writer: `put(bucket, key, "{tag}-{i}")` one after the other
/// until stopped, counting acknowledgements.
pub struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    acked: tokio::sync::watch::Sender<usize>,
    task: tokio::task::JoinHandle<(Vec<String>, Vec<String>)>,
}

impl Writer {
    /// Writes through the in-process member `node`.
    pub fn spawn(
        node: MetaNode,
        bucket: &'static str,
        key: &'static str,
        tag: &'static str,
    ) -> Writer {
        Writer::spawn_with(
            move |cmd| {
                let node = node.clone();
                async move { node.write(cmd).await.map(|_| ()) }
            },
            bucket,
            key,
            tag,
        )
    }

    /// Writes through `write` (an error means "outcome unknown").
    pub fn spawn_with<F, Fut, E>(
        write: F,
        bucket: &'static str,
        key: &'static str,
        tag: &'static str,
    ) -> Writer
    where
        F: Fn(Command) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send,
    {
        use std::sync::atomic::Ordering::Relaxed;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let acked = tokio::sync::watch::Sender::new(0);
        let (stop2, count) = (stop.clone(), acked.clone());
        let task = tokio::spawn(async move {
            let (mut acked, mut unknown) = (Vec::new(), Vec::new());
            let mut i = 0u64;
            while !stop2.load(Relaxed) {
                let id = format!("{tag}-{i:06}");
                i += 1;
                if write(put(bucket, key, &id)).await.is_ok() {
                    acked.push(id);
                    count.send_modify(|n| *n += 1);
                } else {
                    unknown.push(id);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (acked, unknown)
        });
        Writer { stop, acked, task }
    }

    /// Waits until `n` more writes were acknowledged; returns as soon as the
    /// last of them is.
    pub async fn progress(&self, n: usize) {
        let mut count = self.acked.subscribe();
        let target = *count.borrow_and_update() + n;
        tokio::time::timeout(Duration::from_secs(60), count.wait_for(|c| *c >= target))
            .await
            .expect("writes stalled")
            .unwrap();
    }

    /// Stops; returns (acknowledged ids, ids whose outcome is unknown).
    pub async fn finish(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Asserts the stored versions of bucket/key are exactly the acknowledged
/// ids plus possibly some unknown-outcome ones, each once.
pub async fn assert_history(
    node: &MetaNode,
    bucket: &str,
    key: &str,
    acked: &[String],
    unknown: &[String],
) {
    assert_ids(&version_ids(node, bucket, key).await, acked, unknown);
}

/// Asserts `stored` (version ids) holds every acknowledged id, nothing but
/// acknowledged and unknown-outcome ids, and each once.
pub fn assert_ids(stored: &[String], acked: &[String], unknown: &[String]) {
    let set: std::collections::BTreeSet<&String> = stored.iter().collect();
    assert_eq!(set.len(), stored.len(), "a version was applied twice");
    for id in acked {
        assert!(set.contains(id), "acknowledged write {id} lost");
    }
    let allowed: std::collections::BTreeSet<&String> = acked.iter().chain(unknown).collect();
    for id in stored {
        assert!(allowed.contains(id), "unexpected version {id}");
    }
}
