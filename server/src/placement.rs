//! The shard stores a gateway knows, and the choice of stores for new segments.
//!
//! A segment of an object is erasure coded into `k + m` shards, each written to
//! a different store. [`StoreSet`] keeps the stores by id, remembers which ones
//! are reported down, and hands out `k + m` distinct healthy stores per new
//! segment, rotating the starting point so load spreads evenly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tessera_storage::ShardStore;

/// Why no placement could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Fewer healthy stores than shards to place.
    #[error("need {needed} distinct healthy stores, only {available} available")]
    NotEnoughStores {
        /// Shards to place (k + m).
        needed: usize,
        /// Healthy stores known.
        available: usize,
    },
}

/// The known shard stores by id (cheap to clone: shared inside).
#[derive(Debug, Clone, Default)]
pub struct StoreSet {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stores: BTreeMap<String, Arc<dyn ShardStore>>,
    down: RwLock<BTreeSet<String>>,
    cursor: AtomicUsize,
}

impl StoreSet {
    /// A set of the given stores (ids must be distinct; a later duplicate replaces an earlier one).
    pub fn new(stores: impl IntoIterator<Item = Arc<dyn ShardStore>>) -> Self {
        let stores = stores.into_iter().map(|s| (s.id().to_owned(), s)).collect();
        Self {
            inner: Arc::new(Inner {
                stores,
                down: RwLock::default(),
                cursor: AtomicUsize::new(0),
            }),
        }
    }

    /// The store with this id.
    pub fn get(&self, id: &str) -> Option<Arc<dyn ShardStore>> {
        self.inner.stores.get(id).cloned()
    }

    /// Every store, ordered by id.
    pub fn all(&self) -> Vec<Arc<dyn ShardStore>> {
        self.inner.stores.values().cloned().collect()
    }

    /// Number of stores known.
    pub fn len(&self) -> usize {
        self.inner.stores.len()
    }

    /// Whether no store is known.
    pub fn is_empty(&self) -> bool {
        self.inner.stores.is_empty()
    }

    /// Mark a store down (skipped by placement and reads) or up again.
    pub fn set_down(&self, id: &str, down: bool) {
        let mut set = self.inner.down.write().unwrap_or_else(|e| e.into_inner());
        if down {
            set.insert(id.to_owned());
        } else {
            set.remove(id);
        }
    }

    /// Whether a store is currently reported down.
    pub fn is_down(&self, id: &str) -> bool {
        self.inner
            .down
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    /// Choose `count` distinct healthy stores for a new segment: shard `i`
    /// goes to element `i`. Successive calls start at successive stores.
    pub fn choose(&self, count: usize) -> Result<Vec<Arc<dyn ShardStore>>, PlacementError> {
        let healthy: Vec<&Arc<dyn ShardStore>> = {
            let down = self.inner.down.read().unwrap_or_else(|e| e.into_inner());
            self.inner
                .stores
                .iter()
                .filter(|(id, _)| !down.contains(*id))
                .map(|(_, s)| s)
                .collect()
        };
        if healthy.len() < count || count == 0 {
            return Err(PlacementError::NotEnoughStores {
                needed: count,
                available: healthy.len(),
            });
        }
        let start = self.inner.cursor.fetch_add(1, Ordering::Relaxed) % healthy.len();
        Ok((0..count)
            .map(|i| Arc::clone(healthy[(start + i) % healthy.len()]))
            .collect())
    }

    /// The stores holding shards `0..placement.len()` of a segment, `None`
    /// where the store is unknown or down.
    pub fn locate(&self, placement: &[String]) -> Vec<Option<Arc<dyn ShardStore>>> {
        placement
            .iter()
            .map(|id| self.get(id).filter(|_| !self.is_down(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_storage::Memory;

    fn set(n: usize) -> StoreSet {
        StoreSet::new((0..n).map(|i| Arc::new(Memory::new(format!("m{i}"))) as Arc<dyn ShardStore>))
    }

    #[test]
    fn choose_is_distinct_and_rotates() {
        let s = set(6);
        let a: Vec<String> = s
            .choose(6)
            .unwrap()
            .iter()
            .map(|x| x.id().to_owned())
            .collect();
        let b: Vec<String> = s
            .choose(6)
            .unwrap()
            .iter()
            .map(|x| x.id().to_owned())
            .collect();
        let uniq: BTreeSet<&String> = a.iter().collect();
        assert_eq!(uniq.len(), 6);
        assert_ne!(a[0], b[0]);
    }

    #[test]
    fn down_stores_are_skipped() {
        let s = set(7);
        s.set_down("m3", true);
        for _ in 0..10 {
            let c = s.choose(6).unwrap();
            assert!(c.iter().all(|x| x.id() != "m3"));
        }
        s.set_down("m4", true);
        assert_eq!(
            s.choose(6).unwrap_err(),
            PlacementError::NotEnoughStores {
                needed: 6,
                available: 5
            }
        );
        let loc = s.locate(&["m3".into(), "m0".into(), "zz".into()]);
        assert!(loc[0].is_none() && loc[1].is_some() && loc[2].is_none());
    }
}
