//! What `tessera admin node add|drain|remove` does on the gateway.

use std::collections::BTreeSet;
use std::time::Duration;

use tessera_raft::command::Command;
use tessera_raft::model::{NodeRecord, NodeState, StorageNode};
use tessera_raft::node::MetaNode;

use super::{Nodes, sync_draining};
use crate::auth::now_millis;
use crate::config::NodeEntry;
use crate::placement::StoreSet;

/// Segments read per page when counting a node's referenced shards.
const REFERENCE_PAGE: usize = 1000;

/// Why `tessera admin node add` or `remove` refused.
#[derive(Debug, thiserror::Error)]
pub enum NodeAdminError {
    /// The id is taken by a node at another address.
    #[error(
        "node id {id} is already in use by the node at {address}: give the new node another id, or remove node {id} first"
    )]
    IdInUse {
        /// The id asked for.
        id: u64,
        /// Where the registered node is.
        address: String,
    },
    /// The node could not be reached or is not who it should be.
    #[error("cannot use storage node {id} at {address}: {reason}")]
    Unreachable {
        /// The node's id.
        id: u64,
        /// The address tried.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// No node has this id.
    #[error("no storage node {0}")]
    NoSuchNode(u64),
    /// Its stores still hold shards something references.
    #[error(
        "node {id} still holds {shards} referenced shards: drain it (`tessera admin node drain {id}`) and wait until repair is done"
    )]
    StillHoldsData {
        /// The node's id.
        id: u64,
        /// Referenced shards on its stores.
        shards: u64,
    },
    /// Reading or writing the metadata failed.
    #[error(transparent)]
    Meta(#[from] tessera_raft::MetaError),
}

impl Nodes {
    /// Adds storage node `entry` (`tessera admin node add`) once it
    /// answers as `node-<id>`; returns the stores it serves. Adding a node
    /// registered at the same address again only refreshes its record.
    pub async fn add(&self, entry: &NodeEntry) -> Result<Vec<String>, NodeAdminError> {
        let records = self.records().await?;
        let known = records.iter().find(|r| r.id == entry.id);
        if let Some(known) = known
            && known.address != entry.addr
        {
            return Err(NodeAdminError::IdInUse {
                id: entry.id,
                address: known.address.clone(),
            });
        }
        let ids = self.list_stores(entry, Duration::ZERO).await.map_err(|e| {
            NodeAdminError::Unreachable {
                id: entry.id,
                address: entry.addr.clone(),
                reason: e.to_string(),
            }
        })?;
        self.register(entry, known, &ids).await?;
        self.follow_records(&self.records().await?);
        Ok(ids)
    }

    /// Forgets node `id` (`tessera admin node remove`), refusing while its
    /// stores hold any shard a stored object or upload references.
    pub async fn remove(&self, id: u64) -> Result<(), NodeAdminError> {
        let record = self.record(id).await?;
        let stores: BTreeSet<String> = record.stores.into_iter().collect();
        let shards = self.referenced_shards(&stores).await?;
        if shards > 0 {
            return Err(NodeAdminError::StillHoldsData { id, shards });
        }
        self.meta.write(Command::RemoveNode { id }).await?;
        self.lock_unregistered().retain(|e| e.id != id);
        self.follow_records(&self.records().await?);
        Ok(())
    }

    async fn record(&self, id: u64) -> Result<NodeRecord, NodeAdminError> {
        self.records()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or(NodeAdminError::NoSuchNode(id))
    }

    /// Shards on `stores` that the segment index references, read a page
    /// at a time.
    async fn referenced_shards(&self, stores: &BTreeSet<String>) -> Result<u64, NodeAdminError> {
        let (mut count, mut cursor) = (0u64, None);
        loop {
            let after = cursor.take();
            let page = self
                .meta
                .read(move |view| view.segments_after(after, REFERENCE_PAGE))
                .await?;
            count += page
                .iter()
                .flat_map(|(_, r)| r.segment.placement.iter())
                .filter(|id| stores.contains(*id))
                .count() as u64;
            match page.last() {
                Some((key, _)) if page.len() == REFERENCE_PAGE => cursor = Some(*key),
                _ => return Ok(count),
            }
        }
    }
}

/// Starts draining node `id` (`tessera admin node drain`); returns its
/// stores. A storage node's record says so; a bucket node, which has no
/// record, gets a per-store state record for each of its stores.
pub async fn drain(
    meta: &MetaNode,
    stores: &StoreSet,
    id: u64,
) -> Result<Vec<String>, NodeAdminError> {
    let now = now_millis();
    let record = meta
        .read(move |view| Ok(view.nodes()?.into_iter().find(|r| r.id == id)))
        .await?;
    let drained = match record {
        Some(record) => {
            meta.write(Command::SetNodeDraining {
                id,
                draining: true,
                now,
            })
            .await?;
            record.stores
        }
        None => {
            let ids = stores.of_node(id);
            if id == 0 || ids.is_empty() {
                return Err(NodeAdminError::NoSuchNode(id));
            }
            for store in &ids {
                let domain = stores.domain(store);
                let record = StorageNode {
                    id: store.clone(),
                    site: domain.site.unwrap_or_default(),
                    zone: domain.zone.unwrap_or_default(),
                    address: format!("node {id}"),
                    capacity: 0,
                    state: NodeState::Draining,
                    since: now,
                };
                meta.write(Command::PutNode { node: record }).await?;
            }
            ids
        }
    };
    sync_draining(meta, stores).await;
    Ok(drained)
}
