//! Deleting a segment's shards: at once for data that will never be
//! committed ([`DataPlane::discard`]), and for the GC once a deletion is due.
//!
//! Deleting is idempotent (an absent shard counts as deleted), so a caller
//! may simply try again when a store failed.

use futures::future::join_all;
use tessera_raft::model::Segment;

use super::DataPlane;
use super::location::{self, LocationError};
use crate::metrics;

/// What deleting one segment's shards did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deletion {
    /// Shard files that were there and are gone.
    pub(crate) removed: usize,
    /// Shards whose store failed to delete them (a later try may succeed).
    pub(crate) failed: usize,
}

impl DataPlane {
    /// Deletes the shards of segments that will never be committed (best
    /// effort, in the background; the orphan sweep removes what this misses).
    pub(crate) fn discard(&self, segments: Vec<Segment>) {
        let data = self.clone();
        tokio::spawn(async move {
            for segment in &segments {
                if let Err(e) = data.delete_segment(segment).await {
                    tracing::error!(error = %e, "discarding an unusable segment record");
                }
            }
        });
    }

    /// Deletes every shard of `segment` from the store its placement names,
    /// all at once. A store that fails is logged and counted; a shard on a
    /// store this server does not know is logged and left behind (no retry
    /// could reach it; the orphan sweep of its store removes it).
    pub(crate) async fn delete_segment(
        &self,
        segment: &Segment,
    ) -> Result<Deletion, LocationError> {
        let deletes = location::shards(segment)?.map(|(_, shard, store_id)| async move {
            let Some(store) = self.stores.get(store_id) else {
                tracing::warn!(store = %store_id, %shard, "unknown store; shard left behind");
                return Ok(false);
            };
            store.delete(shard).await.map_err(|e| {
                tracing::warn!(store = %store_id, %shard, error = %e, "deleting a shard failed");
                metrics::backend_error(store_id);
            })
        });
        let results = join_all(deletes).await;
        Ok(Deletion {
            removed: results.iter().filter(|r| matches!(r, Ok(true))).count(),
            failed: results.iter().filter(|r| r.is_err()).count(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_raft::node::{MetaConfig, MetaNode};
    use tessera_storage::{MasterKey, Memory, ShardStore};

    use super::*;
    use crate::data::{DataDeps, DataSettings};
    use crate::leases::ReadLeases;
    use crate::placement::StoreSet;

    #[tokio::test]
    async fn deleting_removes_every_known_shard_and_leaves_unknown_stores() {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaNode::start(MetaConfig::new(1, dir.path()))
            .await
            .unwrap();
        let stores = StoreSet::new(
            (0..2).map(|i| Arc::new(Memory::new(format!("s{i}"))) as Arc<dyn ShardStore>),
        );
        let segment = Segment {
            object_id: [9; 16],
            part: 1,
            size: 10,
            data_shards: 2,
            parity_shards: 1,
            block_size: 1 << 20,
            placement: vec!["s0".into(), "s1".into(), "elsewhere".into()],
            missing: Vec::new(),
        };
        for (_, id, store) in location::shards(&segment).unwrap() {
            if let Some(store) = stores.get(store) {
                let bytes = futures::stream::once(async { Ok(bytes::Bytes::from_static(b"x")) });
                store.put(id, Box::pin(bytes)).await.unwrap();
            }
        }
        let data = DataPlane::new(DataDeps {
            meta: meta.clone(),
            stores,
            master_key: Arc::new(MasterKey::generate()),
            settings: DataSettings::default(),
            leases: ReadLeases::new(),
        });
        let done = data.delete_segment(&segment).await.unwrap();
        assert_eq!(
            done,
            Deletion {
                removed: 2,
                failed: 0
            }
        );
        let again = data.delete_segment(&segment).await.unwrap();
        assert_eq!(again, Deletion::default());
        meta.shutdown().await.unwrap();
    }
}
