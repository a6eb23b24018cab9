//! A probe round over the storage nodes: who answers, the health of their
//! stores, and the state each node is judged in.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use tessera_raft::MetaError;
use tessera_raft::command::Command;
use tessera_raft::model::{NodeRecord, NodeReport, NodeState};
use tessera_storage::StoreHealth;

use super::{Nodes, entry_of, state_name};
use crate::auth::now_millis;
use crate::metrics;
use crate::workers::health::{probe_store, record_store};

/// What one probe of a node found.
struct Probe {
    /// Whether it answered.
    reached: bool,
    /// Health of each of its stores that answered.
    health: BTreeMap<String, StoreHealth>,
}

impl Nodes {
    /// One probe round: registers nodes of the static list that answer at
    /// last, follows the node records, asks every node for its stores and
    /// their health, marks stores up or down, and writes the round's
    /// findings (heartbeats, figures, up/suspect/down) to the metadata.
    ///
    /// Without a metadata quorum it judges the nodes of the records it
    /// last read, for this gateway's own placement and reads only.
    pub async fn probe(&self) {
        let fresh = if self.meta.status().has_quorum {
            self.retry_unregistered().await;
            self.records().await
        } else {
            Err(MetaError::NoQuorum)
        };
        let read = fresh.is_ok();
        let records = match fresh {
            Ok(records) => {
                self.follow_records(&records);
                records
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the node records failed; probing the nodes last known");
                self.known.lock().unwrap_or_else(|e| e.into_inner()).clone()
            }
        };
        let found = join_all(records.iter().map(|r| self.probe_node(r))).await;
        let now = now_millis();
        let reports: Vec<NodeReport> = records
            .iter()
            .zip(found)
            .map(|(record, probe)| self.judge(record, &probe, now))
            .collect();
        // Every gateway probes (its reads avoid what it cannot reach); the
        // leader alone writes the verdicts, so one clock judges silences.
        if reports.is_empty() || !read || !self.meta.leads() {
            return;
        }
        if let Err(e) = self.meta.write(Command::ReportNodes { reports, now }).await {
            tracing::warn!(error = %e, "recording the node probes failed");
        }
    }

    async fn retry_unregistered(&self) {
        let pending = std::mem::take(&mut *self.lock_unregistered());
        for entry in pending {
            match self.list_stores(&entry, Duration::ZERO).await {
                Ok(ids) => match self.register(&entry, None, &ids).await {
                    Ok(()) => {
                        tracing::info!(node = entry.id, addr = %entry.addr, stores = ?ids, "storage node joined");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(node = entry.id, error = %e, "registering storage node failed")
                    }
                },
                Err(e) => {
                    tracing::debug!(node = entry.id, error = %e, "storage node still not answering")
                }
            }
            self.lock_unregistered().push(entry);
        }
    }

    async fn probe_node(&self, record: &NodeRecord) -> Probe {
        let entry = entry_of(record);
        let stores = match self.list_stores(&entry, Duration::ZERO).await {
            Ok(ids) => ids,
            Err(e) => {
                if record.state == NodeState::Up {
                    tracing::warn!(node = record.id, addr = %record.address, error = %e, "storage node probe failed");
                }
                return Probe {
                    reached: false,
                    health: BTreeMap::new(),
                };
            }
        };
        if stores.iter().any(|id| !record.stores.contains(id))
            && let Err(e) = self.register(&entry, Some(record), &stores).await
        {
            tracing::warn!(node = record.id, error = %e, "recording the node's new stores failed");
        }
        let found: Vec<_> = stores.iter().filter_map(|id| self.stores.get(id)).collect();
        let checks = found.into_iter().map(|store| async move {
            let health = probe_store(store.as_ref()).await;
            (store.id().to_owned(), health)
        });
        Probe {
            reached: true,
            health: join_all(checks)
                .await
                .into_iter()
                .filter_map(|(id, health)| Some((id, health?)))
                .collect(),
        }
    }

    /// Marks `record`'s stores as `probe` found them and judges the node.
    fn judge(&self, record: &NodeRecord, probe: &Probe, now: i64) -> NodeReport {
        let reached = probe.reached;
        let silent_for = silence(record, now);
        for id in &record.stores {
            let health = probe.health.get(id);
            let down_for = match (health.is_some_and(|h| h.ok), reached) {
                (true, _) => None,
                (false, true) => Some(Duration::ZERO),
                (false, false) => Some(silent_for),
            };
            record_store(&self.stores, id, down_for, health);
        }
        let state = if reached {
            NodeState::Up
        } else if silent_for >= self.grace {
            NodeState::Down
        } else {
            NodeState::Suspect
        };
        if record.state == NodeState::Draining {
            metrics::set_node_state(record.id, "draining");
        } else {
            if state != record.state {
                tracing::info!(node = record.id, from = ?record.state, to = ?state, "storage node state changed");
            }
            metrics::set_node_state(record.id, state_name(state));
        }
        let (capacity, free) = probe.health.values().fold((0u64, 0u64), |(c, f), h| {
            (c.saturating_add(h.capacity), f.saturating_add(h.free))
        });
        NodeReport {
            id: record.id,
            reached,
            state,
            capacity,
            used: capacity.saturating_sub(free),
        }
    }
}

/// How long `record`'s node has not been heard of at `now`.
pub(super) fn silence(record: &NodeRecord, now: i64) -> Duration {
    Duration::from_millis(u64::try_from(now - record.heartbeat).unwrap_or(0))
}
