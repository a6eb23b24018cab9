//! The storage nodes a gateway uses: the stores each serves, reached as
//! [`Remote`] stores over the cluster network, and the S3 buckets it uses
//! as nodes ([`S3Bucket`] stores, one per bucket node).
//!
//! The node list comes from the configuration; at start the gateway asks
//! every node which stores it serves (waiting up to [`CONNECT_WAIT`] for
//! nodes still starting). Node N must show a certificate issued to
//! `node-N`: an address that leads to another node, or out of the cluster,
//! is refused at once. A bucket node must answer within the same wait.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tessera_net::RpcClient;
use tessera_storage::{Remote, S3Bucket};

use crate::config::{BucketNode, ClusterTlsFiles, NodeEntry};
use crate::placement::Domain;

/// How long a gateway waits at start for a node to answer.
pub const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// How long a node has to answer one request (an upload: once its body is in).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The stores of `nodes`, reached with the identity in `tls`, each with
/// its node's failure domain.
pub async fn connect(tls: &ClusterTlsFiles, nodes: &[NodeEntry]) -> Result<Vec<(Remote, Domain)>> {
    let identity = tls.load()?;
    let client_tls = tessera_net::tls::client_config(&identity).context("cluster tls")?;
    let client = Arc::new(RpcClient::new(Some(client_tls)).expecting_names("node"));
    let mut stores = Vec::new();
    for node in nodes {
        let ids = list_stores(&client, node).await?;
        tracing::info!(node = node.id, addr = %node.addr, stores = ?ids, "storage node connected");
        let domain = Domain {
            site: node.site.clone(),
            zone: node.zone.clone(),
            node: node.id,
        };
        stores.extend(ids.into_iter().map(|id| {
            let remote = Remote::new(id, node.id, &node.addr, Arc::clone(&client), CALL_TIMEOUT);
            (remote, domain.clone())
        }));
    }
    Ok(stores)
}

async fn list_stores(client: &RpcClient, node: &NodeEntry) -> Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
    loop {
        match Remote::list_stores(client, node.id, &node.addr, CALL_TIMEOUT).await {
            Ok(ids) => return Ok(ids),
            Err(e) if !e.is_refused() && tokio::time::Instant::now() < deadline => {
                tracing::debug!(node = node.id, error = %e, "storage node not answering yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot use storage node {} at {}", node.id, node.addr)
                });
            }
        }
    }
}

/// The stores of `buckets`, each a failure domain of its own unless its
/// entry names a zone. Waits up to [`CONNECT_WAIT`] for each bucket to answer.
pub async fn open_buckets(buckets: &[BucketNode]) -> Result<Vec<(S3Bucket, Domain)>> {
    let mut stores = Vec::new();
    for entry in buckets {
        let config = &entry.store;
        let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
        let store = loop {
            match S3Bucket::open(config).await {
                Ok(store) => break store,
                Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(node = entry.id, error = %e, "bucket node not answering yet");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot use bucket node {} ({} at {})",
                            entry.id, config.bucket, config.endpoint
                        )
                    });
                }
            }
        };
        tracing::info!(node = entry.id, endpoint = %config.endpoint, bucket = %config.bucket, store = %tessera_storage::ShardStore::id(&store), "bucket node connected");
        let domain = Domain {
            site: entry.site.clone(),
            zone: entry.zone.clone(),
            node: entry.id,
        };
        stores.push((store, domain));
    }
    Ok(stores)
}
