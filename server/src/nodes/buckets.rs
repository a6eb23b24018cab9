//! S3 buckets used as nodes (`[[bucket_nodes]]`): one [`S3Bucket`] store
//! each, opened at start.

use std::time::Duration;

use anyhow::{Context, Result};
use tessera_storage::S3Bucket;

use super::CONNECT_WAIT;
use crate::config::BucketNode;
use crate::placement::Domain;

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
