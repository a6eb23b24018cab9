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

/// Where a new segment's shards go ([`StoreSet::choose_for_write`]).
#[derive(Debug)]
pub struct WritePlacement {
    /// The store of each shard, in shard order.
    pub stores: Vec<Arc<dyn ShardStore>>,
    /// Shards whose store is down: not written now, repaired later.
    pub skipped: Vec<u16>,
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
    changes: AtomicUsize,
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
                changes: AtomicUsize::new(0),
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
        let changed = if down {
            set.insert(id.to_owned())
        } else {
            set.remove(id)
        };
        if changed {
            self.inner.changes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many times a store went down or came back up: work that waited
    /// for a store may try again when this moves.
    pub fn changes(&self) -> usize {
        self.inner.changes.load(Ordering::Relaxed)
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

    /// Choose `count` distinct stores for a new segment that tolerates
    /// stores being down: healthy stores as [`StoreSet::choose`] picks
    /// them, and when there are too few, down stores for the last shards
    /// (returned as the indexes not to write: they go to repair once their
    /// store is back) as long as at least `quorum` shards can be written.
    pub fn choose_for_write(
        &self,
        count: usize,
        quorum: usize,
    ) -> Result<WritePlacement, PlacementError> {
        if let Ok(stores) = self.choose(count) {
            return Ok(WritePlacement {
                stores,
                skipped: Vec::new(),
            });
        }
        let down = self.inner.down.read().unwrap_or_else(|e| e.into_inner());
        let (mut healthy, unhealthy): (Vec<_>, Vec<_>) = self
            .inner
            .stores
            .iter()
            .partition(|(id, _)| !down.contains(*id));
        if healthy.len() < quorum.max(1) || self.inner.stores.len() < count {
            return Err(PlacementError::NotEnoughStores {
                needed: quorum.max(1),
                available: healthy.len(),
            });
        }
        let start = self.inner.cursor.fetch_add(1, Ordering::Relaxed) % healthy.len();
        healthy.rotate_left(start);
        let written = healthy.len().min(count);
        let chosen: Vec<Arc<dyn ShardStore>> = healthy
            .into_iter()
            .take(written)
            .chain(unhealthy.into_iter().take(count - written))
            .map(|(_, s)| Arc::clone(s))
            .collect();
        let skipped = (written..count).map(|i| i as u16).collect();
        Ok(WritePlacement {
            stores: chosen,
            skipped,
        })
    }

    /// Where to rebuild shard `index` of a segment placed on `placement`:
    /// its own store when that is known and up, otherwise a healthy store
    /// holding no other shard of the segment (rotating among them).
    pub fn repair_target(&self, placement: &[String], index: usize) -> Option<Arc<dyn ShardStore>> {
        if let Some(own) = placement.get(index).and_then(|id| self.get(id))
            && !self.is_down(own.id())
        {
            return Some(own);
        }
        let candidates: Vec<Arc<dyn ShardStore>> = self
            .inner
            .stores
            .iter()
            .filter(|(id, _)| !placement.contains(id) && !self.is_down(id))
            .map(|(_, s)| Arc::clone(s))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let start = self.inner.cursor.fetch_add(1, Ordering::Relaxed) % candidates.len();
        candidates.into_iter().nth(start)
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

    fn ids(stores: &[Arc<dyn ShardStore>]) -> Vec<String> {
        stores.iter().map(|x| x.id().to_owned()).collect()
    }

    #[test]
    fn writes_place_down_stores_last_and_skip_them() {
        let s = set(6);
        let all = s.choose_for_write(6, 5).unwrap();
        assert_eq!((all.stores.len(), all.skipped.len()), (6, 0));
        s.set_down("m2", true);
        for _ in 0..6 {
            let chosen = s.choose_for_write(6, 5).unwrap();
            let names = ids(&chosen.stores);
            assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), 6);
            assert_eq!(names[5], "m2");
            assert_eq!(chosen.skipped, vec![5]);
        }
        s.set_down("m4", true);
        let chosen = s.choose_for_write(6, 4).unwrap();
        assert_eq!(chosen.skipped, vec![4, 5]);
        assert_eq!(ids(&chosen.stores[4..]), vec!["m2", "m4"]);
        assert_eq!(
            s.choose_for_write(6, 5).unwrap_err(),
            PlacementError::NotEnoughStores {
                needed: 5,
                available: 4
            }
        );
    }

    #[test]
    fn repairs_go_home_when_home_is_up_and_elsewhere_when_not() {
        let s = set(8);
        let placement: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
        assert_eq!(s.repair_target(&placement, 3).unwrap().id(), "m3");
        s.set_down("m3", true);
        for _ in 0..4 {
            let t = s.repair_target(&placement, 3).unwrap();
            assert!(["m6", "m7"].contains(&t.id()), "{}", t.id());
        }
        s.set_down("m6", true);
        s.set_down("m7", true);
        assert!(s.repair_target(&placement, 3).is_none());
    }
}
