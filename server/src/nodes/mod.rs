//! The storage nodes a gateway uses: their records in the metadata, the
//! stores each serves (reached as [`Remote`] stores over the cluster
//! network), and their health.
//!
//! Nodes come from the configuration's static list and from `tessera admin
//! node add`; either way the metadata keeps a [`NodeRecord`] per node (its
//! address, zone, stores, state and last heartbeat), so every gateway, and
//! a gateway after a restart, knows the same nodes. At start the gateway
//! asks every node which stores it serves; a known node that does not
//! answer is taken with the stores its record names, marked down since its
//! last heartbeat (so the repair grace runs on across gateway restarts); a
//! node of the static list never heard of is waited for up to
//! [`CONNECT_WAIT`] and then left to the health probe. Node N must show a
//! certificate issued to `node-N`: an address that leads to another node,
//! or out of the cluster, is refused at once.
//!
//! S3 buckets can stand in for nodes ([`open_buckets`]): fixed stores of
//! the configuration, drained like nodes but not kept in node records.
//!
//! Each probe round ([`Nodes::probe`]) asks every node for its stores and
//! their health, judges it up (answered), suspect (silent for less than
//! the repair grace) or down (silent for longer: its shards are rebuilt
//! elsewhere), and writes what it found in one [`Command::ReportNodes`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::future::join_all;
use tessera_net::RpcClient;
use tessera_raft::command::Command;
use tessera_raft::model::{NodeRecord, NodeState};
use tessera_raft::node::MetaNode;
use tessera_storage::{NodeQueryError, Remote};

use crate::auth::now_millis;
use crate::config::{ClusterTlsFiles, NodeEntry};
use crate::placement::{Domain, StoreSet};
use crate::workers::health::PROBE_TIMEOUT;

mod admin;
mod buckets;
mod probe;

pub use admin::{NodeAdminError, drain};
pub use buckets::open_buckets;

/// How long a gateway waits at start for a node it never heard of.
pub const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// How long a gateway waits at start for a node it knows.
const KNOWN_WAIT: Duration = Duration::from_secs(3);
/// How long a node has to answer one request (an upload: once its body is in).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The storage nodes of a gateway (cheap to clone: shared inside).
#[derive(Clone)]
pub struct Nodes {
    client: Arc<RpcClient>,
    meta: MetaNode,
    stores: StoreSet,
    /// How long a node may stay silent before it is judged down.
    grace: Duration,
    /// Nodes of the static list that did not answer at start and have no
    /// record yet: registered once they answer.
    unregistered: Arc<Mutex<Vec<NodeEntry>>>,
    /// The stores this gateway reaches on nodes: store id → (node, address).
    placed: Arc<Mutex<BTreeMap<String, (u64, String)>>>,
    /// The node records last followed: probes judge by them while the
    /// metadata has no quorum (so a site's loss is seen before the
    /// metadata fails over, and the first writes after it avoid the site).
    known: Arc<Mutex<Vec<NodeRecord>>>,
}

impl Nodes {
    /// Connects to the nodes of the static list and of the metadata, with
    /// the cluster identity in `tls`; their stores join `stores`. Fails on
    /// a node that refuses this gateway or is not who its id says.
    pub async fn start(
        tls: &ClusterTlsFiles,
        static_list: &[NodeEntry],
        meta: MetaNode,
        stores: StoreSet,
        grace: Duration,
    ) -> Result<Nodes> {
        let identity = tls.load()?;
        let client_tls = tessera_net::tls::client_config(&identity).context("cluster tls")?;
        let client = Arc::new(RpcClient::new(Some(client_tls)).expecting_names("node"));
        let nodes = Nodes {
            client,
            meta,
            stores,
            grace,
            unregistered: Arc::default(),
            placed: Arc::default(),
            known: Arc::default(),
        };
        let records: BTreeMap<u64, NodeRecord> = nodes
            .records()
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        // The static list says where nodes are; the metadata knows the rest.
        let mut wanted: BTreeMap<u64, (NodeEntry, Option<&NodeRecord>)> = records
            .values()
            .map(|r| (r.id, (entry_of(r), Some(r))))
            .collect();
        for entry in static_list {
            let record = records.get(&entry.id);
            wanted.insert(entry.id, (entry.clone(), record));
        }
        let this = &nodes;
        let attempts = wanted.values().map(|(entry, record)| {
            let wait = if record.is_some() {
                KNOWN_WAIT
            } else {
                CONNECT_WAIT
            };
            async move { (entry, *record, this.list_stores(entry, wait).await) }
        });
        let mut silent = Vec::new();
        for (entry, record, answer) in join_all(attempts).await {
            match (answer, record) {
                (Ok(ids), _) => {
                    tracing::info!(node = entry.id, addr = %entry.addr, stores = ?ids, "storage node connected");
                    nodes.register(entry, record, &ids).await?;
                }
                (Err(e), _) if e.is_refused() => {
                    return Err(e).with_context(|| {
                        format!("cannot use storage node {} at {}", entry.id, entry.addr)
                    });
                }
                (Err(e), Some(record)) => {
                    tracing::warn!(node = entry.id, addr = %entry.addr, error = %e, "storage node not answering: its stores start down");
                    nodes.register(entry, Some(record), &[]).await?;
                    silent.push(record);
                }
                (Err(e), None) => {
                    tracing::warn!(node = entry.id, addr = %entry.addr, error = %e, "storage node not answering: it joins once it answers");
                    nodes.lock_unregistered().push(entry.clone());
                }
            }
        }
        nodes.follow_records(&nodes.records().await?);
        let now = now_millis();
        for record in silent {
            for id in &record.stores {
                nodes
                    .stores
                    .set_down_for(id, Some(probe::silence(record, now)));
            }
        }
        Ok(nodes)
    }

    /// Whether store `id` is on a storage node (probed by [`Nodes::probe`]).
    pub fn manages(&self, id: &str) -> bool {
        self.lock_placed().contains_key(id)
    }

    fn lock_unregistered(&self) -> std::sync::MutexGuard<'_, Vec<NodeEntry>> {
        self.unregistered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every node record, by id, as of the latest committed change (a
    /// restarted gateway sees every record it wrote before).
    pub async fn records(&self) -> Result<Vec<NodeRecord>, tessera_raft::MetaError> {
        self.meta.read(|view| view.nodes()).await
    }

    /// The stores `entry` serves, asking until `wait` is over unless it
    /// refuses.
    async fn list_stores(
        &self,
        entry: &NodeEntry,
        wait: Duration,
    ) -> Result<Vec<String>, NodeQueryError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match Remote::list_stores(&self.client, entry.id, &entry.addr, PROBE_TIMEOUT).await {
                Err(e) if !e.is_refused() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(node = entry.id, error = %e, "storage node not answering yet");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                answer => return answer,
            }
        }
    }

    /// Writes `entry`'s record when it is new or changed: where it is and
    /// every store it ever served (`ids` are the ones it serves now; a
    /// store it no longer serves stays, down, until repair has rebuilt
    /// its shards).
    async fn register(
        &self,
        entry: &NodeEntry,
        known: Option<&NodeRecord>,
        ids: &[String],
    ) -> Result<(), tessera_raft::MetaError> {
        let mut stores: BTreeSet<String> = ids.iter().cloned().collect();
        if let Some(known) = known {
            stores.extend(known.stores.iter().cloned());
        }
        let now = now_millis();
        let node = NodeRecord {
            id: entry.id,
            address: entry.addr.clone(),
            site: entry.site.clone(),
            zone: entry.zone.clone(),
            stores: stores.into_iter().collect(),
            capacity: 0,
            used: 0,
            state: NodeState::Up,
            since: now,
            heartbeat: now,
        };
        let unchanged = known.is_some_and(|k| {
            (&k.address, &k.site, &k.zone, &k.stores)
                == (&node.address, &node.site, &node.zone, &node.stores)
        });
        if !unchanged {
            self.meta.write(Command::RegisterNode { node }).await?;
        }
        Ok(())
    }

    /// Makes the store set match the node records: the stores of every
    /// node, at its address, in its domain; none of a node no longer
    /// registered.
    fn follow_records(&self, records: &[NodeRecord]) {
        records.clone_into(&mut self.known.lock().unwrap_or_else(|e| e.into_inner()));
        let wanted: BTreeMap<&String, &NodeRecord> = records
            .iter()
            .flat_map(|r| r.stores.iter().map(move |id| (id, r)))
            .collect();
        let mut placed = self.lock_placed();
        placed.retain(|id, (node, _)| {
            let keep = wanted.contains_key(id);
            if !keep {
                tracing::info!(node = *node, store = %id, "storage node removed: forgetting its store");
                self.stores.remove(id);
            }
            keep
        });
        for (id, record) in wanted {
            let place = (record.id, record.address.clone());
            let domain = Domain {
                site: record.site.clone(),
                zone: record.zone.clone(),
                node: record.id,
            };
            if placed.get(id) == Some(&place) && self.stores.domain(id) == domain {
                continue;
            }
            let remote = Remote::new(
                id.clone(),
                record.id,
                &record.address,
                Arc::clone(&self.client),
                CALL_TIMEOUT,
            );
            self.stores.insert(Arc::new(remote), domain);
            placed.insert(id.clone(), place);
        }
    }

    fn lock_placed(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (u64, String)>> {
        self.placed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes which stores are being drained from the node records (and the
/// first release's per-store records) into `stores`, so every gateway
/// drains the same ones. Without a metadata quorum it keeps what it has.
pub async fn sync_draining(meta: &MetaNode, stores: &StoreSet) {
    if !meta.status().has_quorum {
        return;
    }
    let read = meta
        .read(|view| {
            let nodes = view
                .nodes()?
                .into_iter()
                .filter(|n| n.state == NodeState::Draining);
            let legacy = view
                .store_records()?
                .into_iter()
                .filter(|s| s.state == NodeState::Draining);
            Ok(nodes
                .flat_map(|n| n.stores)
                .chain(legacy.map(|s| s.id))
                .collect())
        })
        .await;
    match read {
        Ok(draining) => stores.set_draining(draining),
        Err(e) => tracing::warn!(error = %e, "reading the node records failed"),
    }
}

/// The lowercase name of a node state, as metrics and listings show it.
pub fn state_name(state: NodeState) -> &'static str {
    match state {
        NodeState::Up => "up",
        NodeState::Suspect => "suspect",
        NodeState::Down => "down",
        NodeState::Draining => "draining",
    }
}

/// The static-list entry a record amounts to.
fn entry_of(record: &NodeRecord) -> NodeEntry {
    NodeEntry {
        id: record.id,
        addr: record.address.clone(),
        site: record.site.clone(),
        zone: record.zone.clone(),
    }
}
