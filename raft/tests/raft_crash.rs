//! A real crash of the leader. Three members run as processes of their own
//! (the `tessera-raft-member` binary) over mutual TLS on loopback, and the
//! leader is SIGKILLed in the middle of a stream of writes, the moment it
//! acknowledged one: no graceful shutdown, no final flush of its state file
//! (applied batches commit without fsync between durable commits, so the
//! file lags the fsync'd log), no leadership transfer, its sockets gone at
//! once. The survivors must elect a new leader that holds every
//! acknowledged write and take writes again; the killed member, restarted
//! on its files as the kill left them, must replay its log and catch up to
//! exactly the survivors' state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod raft_common;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::storage::{RaftLogStorage, RaftStateMachine};
use raft_common::{LeaderView, Writer, agreed_leader, assert_ids, create_bucket, fast_timing};
use tessera_raft::ClusterCa;
use tessera_raft::command::Command;
use tessera_raft::log_store::LogStore;
use tessera_raft::node::DEFAULT_STATE_CACHE_BYTES;
use tessera_raft::snapshot_data::SnapshotRecord;
use tessera_raft::state_machine::StateMachineStore;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::oneshot;

/// Answers awaited from a member process, by request tag.
type Waiters = HashMap<u64, oneshot::Sender<Result<String, String>>>;

/// Talks to one member process: requests on its stdin, answers matched by
/// tag as they come on its stdout. Cheap to clone.
#[derive(Clone)]
struct Client {
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    /// `None` once the process' stdout closed (it died or exited).
    waiters: Arc<Mutex<Option<Waiters>>>,
    next_tag: Arc<AtomicU64>,
}

impl Client {
    fn new(stdin: ChildStdin, mut stdout: Lines<BufReader<ChildStdout>>) -> Client {
        let waiters = Arc::new(Mutex::new(Some(Waiters::new())));
        let answers = waiters.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let mut parts = line.splitn(3, ' ');
                let (Some(tag), Some(outcome)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let rest = parts.next().unwrap_or("").to_owned();
                let waiter = tag
                    .parse()
                    .ok()
                    .and_then(|tag| answers.lock().unwrap().as_mut()?.remove(&tag));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(if outcome == "ok" { Ok(rest) } else { Err(rest) });
                }
            }
            // The process is gone: what is still waiting has an unknown outcome.
            answers.lock().unwrap().take();
        });
        Client {
            stdin: Arc::new(tokio::sync::Mutex::new(stdin)),
            waiters,
            next_tag: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sends `request`; its answer, or `Err` if the member refused it or is gone.
    async fn call(&self, request: &str) -> Result<String, String> {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap()
            .as_mut()
            .ok_or("member gone")?
            .insert(tag, tx);
        let line = format!("{tag} {request}\n");
        self.stdin
            .lock()
            .await
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("member gone: {e}"))?;
        rx.await.map_err(|_| "member gone".to_owned())?
    }

    async fn write(&self, command: &Command) -> Result<(), String> {
        let json = serde_json::to_string(command).unwrap();
        self.call(&format!("write {json}")).await.map(|_| ())
    }

    /// `status` as name → value.
    async fn status(&self) -> HashMap<String, String> {
        let answer = self.call("status").await.unwrap();
        answer
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    async fn status_number(&self, name: &str) -> u64 {
        self.status().await[name].parse().unwrap()
    }

    /// Version ids of bucket/key, from a linearizable read on this member.
    async fn versions(&self, bucket: &str, key: &str) -> Vec<String> {
        let answer = self
            .call(&format!("versions {bucket} {key}"))
            .await
            .unwrap();
        answer.split_whitespace().map(str::to_owned).collect()
    }
}

/// A running member process.
struct Member {
    child: Child,
    client: Client,
}

/// Member processes `1..=n` on loopback, with their files and cluster TLS
/// in one temporary directory.
struct ProcessCluster {
    dir: tempfile::TempDir,
    members: BTreeMap<u64, Member>,
    /// Each member's advertised RPC address (a restart binds it again).
    addrs: BTreeMap<u64, String>,
}

impl ProcessCluster {
    /// Starts `n` member processes: 1 bootstraps, adds the others as
    /// learners and promotes them.
    async fn start(n: u64) -> ProcessCluster {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::generate("crash test cluster CA").unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), &ca.cert_pem).unwrap();
        for id in 1..=n {
            let member = ca.issue(&format!("member-{id}"), &[]).unwrap();
            std::fs::write(tls.join(format!("member-{id}.pem")), member.cert_pem).unwrap();
            std::fs::write(tls.join(format!("member-{id}.key")), member.key_pem).unwrap();
        }
        let mut cluster = ProcessCluster {
            dir,
            members: BTreeMap::new(),
            addrs: BTreeMap::new(),
        };
        for id in 1..=n {
            cluster.spawn(id, "127.0.0.1:0").await;
        }
        let first = cluster.client(1);
        first.call("bootstrap").await.unwrap();
        for id in 2..=n {
            let addr = &cluster.addrs[&id];
            first
                .call(&format!("add-learner {id} {addr}"))
                .await
                .unwrap();
        }
        let others: Vec<String> = (2..=n).map(|id| id.to_string()).collect();
        first
            .call(&format!("promote {}", others.join(" ")))
            .await
            .unwrap();
        cluster
    }

    /// Runs member `id` on its data dir, its RPC on `listen`.
    async fn spawn(&mut self, id: u64, listen: &str) {
        let t = fast_timing();
        let path = |name: String| self.dir.path().join(name);
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera-raft-member"))
            .arg("--id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(path(format!("member-{id}")))
            .args(["--listen", listen])
            .arg("--ca")
            .arg(path("tls/ca.pem".into()))
            .arg("--cert")
            .arg(path(format!("tls/member-{id}.pem")))
            .arg("--key")
            .arg(path(format!("tls/member-{id}.key")))
            .args(["--heartbeat-ms", &t.heartbeat.as_millis().to_string()])
            .args([
                "--election-min-ms",
                &t.election_timeout_min.as_millis().to_string(),
            ])
            .args([
                "--election-max-ms",
                &t.election_timeout_max.as_millis().to_string(),
            ])
            .args([
                "--request-timeout-ms",
                &t.request_timeout.as_millis().to_string(),
            ])
            .args(["--snapshot-every", &t.snapshot_every.to_string()])
            .args(["--logs-kept", &t.logs_kept_after_snapshot.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
            .await
            .expect("member started in time")
            .unwrap()
            .expect("member printed its ready line");
        let addr = ready.strip_prefix("ready ").expect("ready line").to_owned();
        self.addrs.insert(id, addr);
        let client = Client::new(child.stdin.take().unwrap(), stdout);
        self.members.insert(id, Member { child, client });
    }

    fn client(&self, id: u64) -> Client {
        self.members[&id].client.clone()
    }

    /// SIGKILLs member `id` and reaps it; its files stay as they are.
    async fn kill(&mut self, id: u64) {
        let mut member = self.members.remove(&id).unwrap();
        member.child.start_kill().unwrap();
        let status = member.child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(9), "member {id} died of SIGKILL");
    }

    /// Starts member `id` again on its files and address.
    async fn restart(&mut self, id: u64) {
        let addr = self.addrs[&id].clone();
        self.spawn(id, &addr).await
    }

    /// The leader all running members agree on.
    async fn leader(&self) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut views: Vec<LeaderView> = Vec::new();
            for (id, member) in &self.members {
                let s = member.client.status().await;
                views.push((*id, s["leader"].parse().ok(), s["role"] == "leader"));
            }
            if let Some(leader) = agreed_leader(&views) {
                return leader;
            }
            assert!(Instant::now() < deadline, "no agreed leader: {views:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A writer of `put(b, k, "{tag}-{i}")` through member `id`.
    fn writer(&self, id: u64, tag: &'static str) -> Writer {
        let client = self.client(id);
        Writer::spawn_with(
            move |cmd| {
                let client = client.clone();
                async move { client.write(&cmd).await }
            },
            "b",
            "k",
            tag,
        )
    }

    /// Waits until every running member applied the leader's last entry,
    /// then asserts their model tables are exactly the same; returns them.
    async fn converged(&self) -> Vec<SnapshotRecord> {
        let leader = self.leader().await;
        let target = self.client(leader).status_number("log").await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut dumps = BTreeMap::new();
        for (id, member) in &self.members {
            loop {
                let applied = member.client.status_number("applied").await;
                if applied >= target {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "member {id} stuck at {applied} < {target}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let file = self.dir.path().join(format!("dump-{id}"));
            member
                .client
                .call(&format!("dump {}", file.display()))
                .await
                .unwrap();
            dumps.insert(*id, read_records(&file));
        }
        let reference = dumps.remove(&leader).unwrap();
        for (id, dump) in dumps {
            assert!(dump == reference, "member {id} diverged from the leader");
        }
        reference
    }

    /// Closes every member's stdin (a graceful shutdown) and checks each exits 0.
    async fn shutdown(mut self) {
        for (id, Member { mut child, client }) in std::mem::take(&mut self.members) {
            drop(client);
            let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .expect("member exited in time")
                .unwrap();
            assert!(status.success(), "member {id} exited with {status}");
        }
    }
}

/// What a member's files hold: (index of the last entry applied in its
/// state file, index of the last entry in its log). Read from copies, so
/// that the member later starts on its files exactly as they were.
async fn stored_indexes(data_dir: &Path, scratch: &Path) -> (u64, u64) {
    std::fs::create_dir_all(scratch).unwrap();
    for name in ["raft-log.redb", "state.redb"] {
        std::fs::copy(data_dir.join(name), scratch.join(name)).unwrap();
    }
    let mut log = LogStore::open(&scratch.join("raft-log.redb")).unwrap();
    let mut state = StateMachineStore::open(
        &scratch.join("state.redb"),
        &scratch.join("snapshots"),
        DEFAULT_STATE_CACHE_BYTES,
    )
    .unwrap();
    let applied = state.applied_state().await.unwrap().0;
    let logged = log.get_log_state().await.unwrap().last_log_id;
    (
        applied.map_or(0, |l| l.index),
        logged.map_or(0, |l| l.index),
    )
}

/// The records of a `dump` file.
fn read_records(file: &Path) -> Vec<SnapshotRecord> {
    let mut r = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    std::iter::from_fn(|| SnapshotRecord::read_from(&mut r).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_processes_survive_sigkill_of_the_leader() {
    let mut cluster = ProcessCluster::start(3).await;
    let leader = cluster.leader().await;
    cluster
        .client(leader)
        .write(&create_bucket("b"))
        .await
        .unwrap();
    let follower = *cluster.members.keys().find(|id| **id != leader).unwrap();
    // Membership and bucket, acknowledged before any of the stream below:
    // long flushed to the leader's log by the time it is killed.
    let settled = cluster.client(leader).status_number("log").await;

    // Two writers through the leader (while one reads its answer, the
    // other's write is in flight) and one through a follower.
    let writers = [
        cluster.writer(leader, "l1"),
        cluster.writer(leader, "l2"),
        cluster.writer(follower, "f1"),
    ];
    writers[2].progress(20).await;
    writers[1].progress(20).await;
    writers[0].progress(30).await;
    // SIGKILL the moment the leader acknowledged a write.
    cluster.kill(leader).await;
    let dir = cluster.dir.path();
    let (applied, logged) =
        stored_indexes(&dir.join(format!("member-{leader}")), &dir.join("inspect")).await;
    eprintln!("killed member {leader}: state file applied up to {applied}, log up to {logged}");
    assert!(
        logged >= settled,
        "the killed leader's log lost entries it had long acknowledged: \
         it holds up to {logged}, it had {settled} before the writes began"
    );

    let (mut acked, mut unknown) = (Vec::new(), Vec::new());
    for writer in writers {
        let (a, u) = writer.finish().await;
        acked.extend(a);
        unknown.extend(u);
    }
    assert!(acked.len() >= 70, "{} writes acknowledged", acked.len());

    // A new leader, and every write acknowledged before the kill on both
    // survivors: fresh linearizable reads.
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    for id in cluster.members.keys() {
        let stored = cluster.client(*id).versions("b", "k").await;
        assert_ids(&stored, &acked, &unknown);
    }

    // Writes go on; the killed member restarts on its files meanwhile.
    let writer = cluster.writer(follower, "f2");
    writer.progress(20).await;
    cluster.restart(leader).await;
    writer.progress(20).await;
    let (a, u) = writer.finish().await;
    acked.extend(a);
    unknown.extend(u);

    // The restarted member holds exactly the survivors' model tables, and
    // they hold every acknowledged write, each once.
    let state = cluster.converged().await;
    assert!(state.len() > acked.len());
    for id in cluster.members.keys() {
        let stored = cluster.client(*id).versions("b", "k").await;
        assert_ids(&stored, &acked, &unknown);
    }
    cluster.shutdown().await;
}
