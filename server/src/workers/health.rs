//! Store and raft health: probes every shard store on a schedule (those on
//! storage nodes through [`Nodes::probe`], which also keeps the node
//! records), marks the ones that fail down in the [`StoreSet`] (placement
//! then skips them and `/health/ready` counts them), takes the stores being
//! drained from the metadata, and publishes store and raft gauges; every
//! [`STATS_EVERY`] probes it also counts the stored objects and their bytes.

use std::time::Duration;

use futures::future::join_all;
use tessera_raft::node::MetaNode;
use tessera_raft::{ListObjectsQuery, MetaError};
use tessera_storage::{ShardStore, StoreHealth};
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::nodes::{self, Nodes};
use crate::placement::StoreSet;

/// Probes between two counts of the stored objects (a full listing).
pub const STATS_EVERY: u32 = 12;
/// Keys read per listing page while counting.
const STATS_PAGE: usize = 1000;

/// How long one store (or node) gets to answer a probe.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The health worker.
#[derive(Clone)]
pub struct HealthWorker {
    meta: MetaNode,
    stores: StoreSet,
    nodes: Option<Nodes>,
    interval: Duration,
}

impl HealthWorker {
    /// A worker probing `stores` (those on storage nodes through `nodes`)
    /// every `interval`.
    pub fn new(meta: MetaNode, stores: StoreSet, nodes: Option<Nodes>, interval: Duration) -> Self {
        HealthWorker {
            meta,
            stores,
            nodes,
            interval,
        }
    }

    /// Probes until `stop` is cancelled (the first probe runs at once).
    pub async fn run(self, stop: CancellationToken) {
        for round in 0u32.. {
            self.probe().await;
            if round % STATS_EVERY == 0 {
                match self.count_stored().await {
                    Ok((objects, bytes)) => metrics::set_stored(objects, bytes),
                    Err(e) => tracing::warn!(error = %e, "counting stored objects failed"),
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Probes every store once and publishes the results.
    pub async fn probe(&self) {
        metrics::set_raft(&self.meta.status());
        nodes::sync_draining(&self.meta, &self.stores).await;
        if let Some(nodes) = &self.nodes {
            nodes.probe().await;
        }
        let stores: Vec<_> = self
            .stores
            .all()
            .into_iter()
            .filter(|s| !self.nodes.as_ref().is_some_and(|n| n.manages(s.id())))
            .collect();
        let probes = stores.iter().map(|store| async move {
            let health = probe_store(store.as_ref()).await;
            (store.id().to_owned(), health)
        });
        for (id, health) in join_all(probes).await {
            let up = health.as_ref().is_some_and(|h| h.ok);
            record_store(
                &self.stores,
                &id,
                (!up).then_some(Duration::ZERO),
                health.as_ref(),
            );
        }
    }
}

/// Asks `store` for its health, [`PROBE_TIMEOUT`] at most: `None` (logged)
/// when it fails or does not answer in time.
pub(crate) async fn probe_store(store: &dyn ShardStore) -> Option<StoreHealth> {
    match tokio::time::timeout(PROBE_TIMEOUT, store.health()).await {
        Ok(Ok(health)) => Some(health),
        Ok(Err(e)) => {
            tracing::warn!(store = store.id(), error = %e, "store health probe failed");
            None
        }
        Err(_) => {
            tracing::warn!(store = store.id(), "store health probe timed out");
            None
        }
    }
}

/// Records what a probe found of store `id` in `stores` and the metrics:
/// down for `down_for` (the time since it was last heard of), or up with
/// `None`; its size and free space when it answered (`health`).
pub(crate) fn record_store(
    stores: &StoreSet,
    id: &str,
    down_for: Option<Duration>,
    health: Option<&StoreHealth>,
) {
    let up = down_for.is_none();
    if up == stores.is_down(id) {
        tracing::info!(store = %id, up, "store state changed");
    }
    if !up {
        metrics::backend_error(id);
    }
    stores.set_down_for(id, down_for);
    if let Some(health) = health {
        stores.set_free(id, health.free);
        metrics::set_store_space(id, health.capacity, health.free);
    }
    metrics::set_store_up(id, up);
}

impl HealthWorker {
    /// Current objects (latest versions, not delete markers) and their bytes,
    /// over every bucket, read page by page from this member's state.
    pub async fn count_stored(&self) -> Result<(u64, u64), MetaError> {
        let buckets = self.meta.read_local(|view| view.buckets()).await?;
        let (mut objects, mut bytes) = (0u64, 0u64);
        for bucket in buckets {
            let mut start_after = None;
            loop {
                let query = ListObjectsQuery {
                    prefix: String::new(),
                    delimiter: None,
                    start_after: start_after.take(),
                    max_keys: STATS_PAGE,
                };
                let name = bucket.name.clone();
                let page = self
                    .meta
                    .read_local(move |view| view.list_objects(&name, &query))
                    .await?;
                objects += page.objects.len() as u64;
                bytes += page.objects.iter().map(|o| o.size).sum::<u64>();
                if !page.is_truncated || page.next_marker.is_none() {
                    break;
                }
                start_after = page.next_marker;
            }
        }
        Ok((objects, bytes))
    }
}
