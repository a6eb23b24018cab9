//! An in-memory [`ShardStore`] for tests and benchmarks.

use std::collections::BTreeMap;
use std::ops::{Bound, Range};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::{ByteStream, ShardId, ShardStat, ShardStore, StoreHealth};
use crate::error::StorageError;

/// Shards kept in a map in memory. Cloning shares the same map.
#[derive(Clone, Debug)]
pub struct Memory {
    id: String,
    shards: Arc<Mutex<BTreeMap<ShardId, (Bytes, SystemTime)>>>,
}

impl Memory {
    /// An empty store named `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Memory {
            id: id.into(),
            shards: Arc::default(),
        }
    }

    fn shards(&self) -> MutexGuard<'_, BTreeMap<ShardId, (Bytes, SystemTime)>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.shards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Total bytes held (for tests and memory accounting).
    pub fn stored_bytes(&self) -> u64 {
        self.shards().values().map(|(b, _)| b.len() as u64).sum()
    }
}

#[async_trait::async_trait]
impl ShardStore for Memory {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put(&self, id: ShardId, mut data: ByteStream) -> Result<u64, StorageError> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = data.next().await {
            buf.extend_from_slice(&chunk?);
        }
        let len = buf.len() as u64;
        self.shards().insert(id, (buf.freeze(), SystemTime::now()));
        Ok(len)
    }

    async fn get(&self, id: ShardId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let data = self
            .shards()
            .get(&id)
            .map(|(b, _)| b.clone())
            .ok_or(StorageError::NotFound(id))?;
        let len = data.len() as u64;
        let start = range.start.min(len);
        let end = range.end.min(len).max(start);
        let slice = data.slice(start as usize..end as usize);
        Ok(futures::stream::once(async move { Ok(slice) }).boxed())
    }

    async fn stat(&self, id: ShardId) -> Result<Option<ShardStat>, StorageError> {
        Ok(self.shards().get(&id).map(|(b, modified)| ShardStat {
            size: b.len() as u64,
            modified: *modified,
        }))
    }

    async fn delete(&self, id: ShardId) -> Result<bool, StorageError> {
        Ok(self.shards().remove(&id).is_some())
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .shards()
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(id, _)| *id)
            .collect())
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        Ok(StoreHealth {
            capacity: u64::MAX,
            free: u64::MAX - self.stored_bytes(),
            ok: true,
        })
    }
}
