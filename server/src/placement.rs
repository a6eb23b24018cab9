//! The shard stores a gateway knows, and the choice of stores for new segments.
//!
//! A segment of an object is erasure coded into `k + m` shards, each written to
//! a different store. [`StoreSet`] keeps the stores by id with their failure
//! domain ([`Domain`]: site, zone, node), remembers which ones are reported
//! down and how much free space each has, and hands out `k + m` distinct
//! healthy stores per new segment, spread over failure domains: one store
//! per site in turn, within a site one zone after another, within a zone
//! one node after another. Sites and zones thus hold as even a share of a
//! segment as their stores allow: with at least `(k + m) / m` zones of `m`
//! stores or more, no zone holds more than `m` shards, so losing a whole
//! zone loses no data; and with two sites each holds half of a segment, so
//! with `k ≤ m` (3+3, 4+4: twice the raw size) either site alone holds `k`
//! shards of every segment and serves every object.
//!
//! Which zone comes first, which node of a zone and which store of a node
//! is a rendezvous draw seeded by the segment's id and weighted by free
//! space (highest random weight: each candidate scores
//! `free / -ln(hash(segment, candidate))`). So placement is deterministic
//! for a given state, emptier stores take proportionally more new
//! segments, and a store added to the cluster changes the choice only of
//! the segments that now pick it, one shard each: the least movement any
//! placement can have. (Placements are recorded per segment, so nothing
//! moves when a node joins; the new node fills from new writes.)

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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
    /// A site that is to keep a copy has too few stores for one.
    #[error("site {site} is to keep a copy of {needed} shards and has {available} stores")]
    SiteTooSmall {
        /// The site.
        site: String,
        /// Shards of a copy (k + m).
        needed: usize,
        /// Stores of the site that may take shards, up or down.
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

impl WritePlacement {
    /// One placement of `copies`, each of `count` shards: copy `c` at
    /// positions `c·count ..`.
    fn concat(copies: Vec<WritePlacement>, count: usize) -> WritePlacement {
        let mut out = WritePlacement {
            stores: Vec::with_capacity(copies.len() * count),
            skipped: Vec::new(),
        };
        for (copy, chosen) in copies.into_iter().enumerate() {
            let offset = copy * count;
            out.skipped.extend(
                chosen
                    .skipped
                    .iter()
                    .map(|&i| (offset + usize::from(i)) as u16),
            );
            out.stores.extend(chosen.stores);
        }
        out
    }
}

/// Where a store stands: what fails together with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain {
    /// The site (datacenter); `None` for a single-site cluster.
    pub site: Option<String>,
    /// The zone inside the site; `None`: the node is its own zone.
    pub zone: Option<String>,
    /// The storage node (0: this gateway's own disks).
    pub node: u64,
}

impl Domain {
    /// The zone shards are spread over: the configured one, else the node.
    fn zone_key(&self) -> (Option<&str>, Result<&str, u64>) {
        let zone = self.zone.as_deref().ok_or(self.node);
        (self.site.as_deref(), zone)
    }
}

/// The domain of a store with none given: this gateway's own disks.
static LOCAL: Domain = Domain {
    site: None,
    zone: None,
    node: 0,
};

/// The known shard stores by id (cheap to clone: shared inside).
#[derive(Debug, Clone, Default)]
pub struct StoreSet {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    members: RwLock<Members>,
    /// Stores reported down, with when they went down.
    down: RwLock<BTreeMap<String, Instant>>,
    /// Stores down past the repair grace: their shards are rebuilt elsewhere.
    lost: RwLock<BTreeSet<String>>,
    /// Stores being drained by the operator: read from, never written to,
    /// their shards moved elsewhere.
    draining: RwLock<BTreeSet<String>>,
    /// Free bytes of each store, as its last health probe said.
    free: RwLock<BTreeMap<String, u64>>,
    /// The site of the gateway using this set: reads prefer its copies.
    home_site: RwLock<Option<String>>,
    cursor: AtomicUsize,
    changes: AtomicUsize,
}

/// The stores themselves, by id, with their failure domains.
#[derive(Debug, Default)]
struct Members {
    stores: BTreeMap<String, Arc<dyn ShardStore>>,
    domains: BTreeMap<String, Domain>,
}

impl Members {
    fn domain(&self, id: &str) -> &Domain {
        self.domains.get(id).unwrap_or(&LOCAL)
    }
}

impl StoreSet {
    /// A set of the given stores, all on this gateway's own disks (ids must
    /// be distinct; a later duplicate replaces an earlier one).
    pub fn new(stores: impl IntoIterator<Item = Arc<dyn ShardStore>>) -> Self {
        Self::with_domains(stores.into_iter().map(|s| (s, Domain::default())))
    }

    /// A set of the given stores, each in its failure domain.
    pub fn with_domains(stores: impl IntoIterator<Item = (Arc<dyn ShardStore>, Domain)>) -> Self {
        let (mut by_id, mut domains) = (BTreeMap::new(), BTreeMap::new());
        for (store, domain) in stores {
            domains.insert(store.id().to_owned(), domain);
            by_id.insert(store.id().to_owned(), store);
        }
        Self {
            inner: Arc::new(Inner {
                members: RwLock::new(Members {
                    stores: by_id,
                    domains,
                }),
                ..Inner::default()
            }),
        }
    }

    fn members(&self) -> std::sync::RwLockReadGuard<'_, Members> {
        self.inner.members.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a store (a storage node's store that appeared), or replaces
    /// the one with its id (its node moved).
    pub fn insert(&self, store: Arc<dyn ShardStore>, domain: Domain) {
        let mut members = self
            .inner
            .members
            .write()
            .unwrap_or_else(|e| e.into_inner());
        members.domains.insert(store.id().to_owned(), domain);
        members.stores.insert(store.id().to_owned(), store);
        self.inner.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets a store (its node was removed): returns whether it was known.
    pub fn remove(&self, id: &str) -> bool {
        let mut members = self
            .inner
            .members
            .write()
            .unwrap_or_else(|e| e.into_inner());
        members.domains.remove(id);
        let known = members.stores.remove(id).is_some();
        drop(members);
        self.set_down(id, false);
        self.inner
            .free
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if known {
            self.inner.changes.fetch_add(1, Ordering::Relaxed);
        }
        known
    }

    /// The store with this id.
    pub fn get(&self, id: &str) -> Option<Arc<dyn ShardStore>> {
        self.members().stores.get(id).cloned()
    }

    /// Every store, ordered by id.
    pub fn all(&self) -> Vec<Arc<dyn ShardStore>> {
        self.members().stores.values().cloned().collect()
    }

    /// Number of stores known.
    pub fn len(&self) -> usize {
        self.members().stores.len()
    }

    /// Whether no store is known.
    pub fn is_empty(&self) -> bool {
        self.members().stores.is_empty()
    }

    /// Mark a store down (skipped by placement and reads) or up again (no
    /// longer lost either).
    pub fn set_down(&self, id: &str, down: bool) {
        self.set_down_for(id, down.then_some(Duration::ZERO));
    }

    /// Takes a storage node's store as down until its next probe (a read
    /// outran it, a write lost it), so requests meanwhile go elsewhere; the
    /// probe marks it up again if it answers. A gateway's own disks are
    /// left to their probe. Returns whether the store was newly marked.
    pub fn suspect(&self, id: &str) -> bool {
        if self.domain(id).node == 0 || self.is_down(id) {
            return false;
        }
        self.set_down(id, true);
        true
    }

    /// Marks a store down since `for_` ago (when the metadata says its node
    /// was last heard of then; the repair grace counts from there), or up
    /// again with `None`. A store already down keeps its time.
    pub fn set_down_for(&self, id: &str, for_: Option<Duration>) {
        let mut set = self.inner.down.write().unwrap_or_else(|e| e.into_inner());
        let down = for_.is_some();
        let changed = if let Some(ago) = for_ {
            let since = Instant::now().checked_sub(ago).unwrap_or_else(Instant::now);
            !set.contains_key(id) && set.insert(id.to_owned(), since).is_none()
        } else {
            set.remove(id).is_some()
        };
        if !down {
            self.inner
                .lost
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
        }
        if changed {
            self.inner.changes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Declares lost the stores down for longer than `grace`: repair then
    /// rebuilds their shards on other stores instead of waiting for them.
    /// Returns the stores lost by this call.
    pub fn declare_lost(&self, grace: Duration) -> Vec<String> {
        let overdue: Vec<String> = self
            .inner
            .down
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, since)| since.elapsed() >= grace)
            .map(|(id, _)| id.clone())
            .collect();
        let mut lost = self.inner.lost.write().unwrap_or_else(|e| e.into_inner());
        let newly: Vec<String> = overdue
            .into_iter()
            .filter(|id| lost.insert(id.clone()))
            .collect();
        if !newly.is_empty() {
            self.inner.changes.fetch_add(1, Ordering::Relaxed);
        }
        newly
    }

    /// Records a store's free space (placement weighs stores by it).
    pub fn set_free(&self, id: &str, free: u64) {
        self.inner
            .free
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), free);
    }

    /// Whether a store is lost (down past the repair grace).
    pub fn is_lost(&self, id: &str) -> bool {
        self.inner
            .lost
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    /// Sets the stores being drained (as the metadata's node records say).
    pub fn set_draining(&self, ids: BTreeSet<String>) {
        let mut draining = self
            .inner
            .draining
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if *draining != ids {
            *draining = ids;
            self.inner.changes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether a store is being drained.
    pub fn is_draining(&self, id: &str) -> bool {
        self.inner
            .draining
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    /// The stores being drained now.
    pub fn draining(&self) -> BTreeSet<String> {
        self.inner
            .draining
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The stores lost now.
    pub fn lost(&self) -> BTreeSet<String> {
        self.inner
            .lost
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times a store went down, came back up or was declared
    /// lost: work that waited for a store may try again when this moves.
    pub fn changes(&self) -> usize {
        self.inner.changes.load(Ordering::Relaxed)
    }

    /// Whether a store is currently reported down.
    pub fn is_down(&self, id: &str) -> bool {
        self.inner
            .down
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id)
    }

    /// The failure domain of a store (the default for an unknown one).
    pub fn domain(&self, id: &str) -> Domain {
        self.members().domain(id).clone()
    }

    /// The stores of storage node `node`, ordered by id.
    pub fn of_node(&self, node: u64) -> Vec<String> {
        let members = self.members();
        members
            .stores
            .keys()
            .filter(|id| members.domain(id).node == node)
            .cloned()
            .collect()
    }

    /// The sites the stores stand in.
    pub fn sites(&self) -> BTreeSet<String> {
        self.members()
            .domains
            .values()
            .filter_map(|d| d.site.clone())
            .collect()
    }

    /// The site of the gateway using this set, if it is in one: reads take
    /// a segment's copy on that site first.
    pub fn home_site(&self) -> Option<String> {
        self.inner
            .home_site
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the site of the gateway using this set (see [`StoreSet::home_site`]).
    pub fn set_home_site(&self, site: Option<String>) {
        *self
            .inner
            .home_site
            .write()
            .unwrap_or_else(|e| e.into_inner()) = site;
    }

    /// The stores (of `site`, when given) that may take new shards (not
    /// being drained), split into those up and those down.
    fn writable<'a>(
        &self,
        members: &'a Members,
        site: Option<&str>,
    ) -> (Vec<&'a String>, Vec<&'a String>) {
        let down = self.inner.down.read().unwrap_or_else(|e| e.into_inner());
        let draining = self
            .inner
            .draining
            .read()
            .unwrap_or_else(|e| e.into_inner());
        members
            .stores
            .keys()
            .filter(|id| !draining.contains(*id))
            .filter(|id| site.is_none_or(|site| members.domain(id).site.as_deref() == Some(site)))
            .partition(|id| !down.contains_key(*id))
    }

    /// Choose `count` distinct healthy stores for segment `seed` (its id),
    /// spread over zones and nodes and weighted by free space (see the
    /// module docs): shard `i` goes to element `i`.
    pub fn choose(
        &self,
        count: usize,
        seed: &[u8],
    ) -> Result<Vec<Arc<dyn ShardStore>>, PlacementError> {
        let members = self.members();
        let (healthy, _) = self.writable(&members, None);
        if healthy.len() < count || count == 0 {
            return Err(PlacementError::NotEnoughStores {
                needed: count,
                available: healthy.len(),
            });
        }
        Ok(self
            .spread(&members, &healthy, count, seed)
            .into_iter()
            .filter_map(|id| members.stores.get(id).cloned())
            .collect())
    }

    /// `count` of `ids` (at least that many), one zone after another,
    /// inside a zone one node after another, every order a rendezvous draw
    /// for `seed` weighted by free space.
    fn spread<'a>(
        &self,
        members: &'a Members,
        ids: &[&'a String],
        count: usize,
        seed: &[u8],
    ) -> Vec<&'a String> {
        let free = self.inner.free.read().unwrap_or_else(|e| e.into_inner());
        // A store not probed yet weighs as much as the emptiest one.
        let unknown = free.values().copied().max().unwrap_or(1);
        let weight = |id: &str| free.get(id).copied().unwrap_or(unknown).max(1);
        let seed = xxhash_rust::xxh3::xxh3_64(seed);
        // site -> zone -> node -> stores.
        type Nodes<'a> = BTreeMap<u64, Vec<&'a String>>;
        let mut sites: BTreeMap<_, BTreeMap<_, Nodes<'a>>> = BTreeMap::new();
        for &id in ids {
            let domain = members.domain(id);
            sites
                .entry(domain.site.as_deref())
                .or_default()
                .entry(domain.zone_key())
                .or_default()
                .entry(domain.node)
                .or_default()
                .push(id);
        }
        // A queue of stores per zone (its nodes interleaved), per site (its
        // zones interleaved in their drawn order), and the sites
        // interleaved in theirs: shards go round the sites, in each round
        // the sites' zones, in each zone its nodes.
        // Free space summed without overflowing (a bucket store counts as
        // all but unlimited).
        let total_weight = |ids: &mut dyn Iterator<Item = &'a String>| {
            ids.map(|id| weight(id)).fold(0u64, u64::saturating_add)
        };
        let drawn = |label: &[u8], queue: VecDeque<&'a String>| {
            let total = total_weight(&mut queue.iter().copied());
            (score(seed, label, total), queue)
        };
        let mut site_queues: Vec<(f64, VecDeque<&'a String>)> = sites
            .into_iter()
            .map(|(site, zones)| {
                let mut zone_queues: Vec<(f64, VecDeque<&'a String>)> = zones
                    .into_iter()
                    .map(|(zone, nodes)| {
                        let mut nodes: Vec<(f64, Vec<&'a String>)> = nodes
                            .into_iter()
                            .map(|(node, mut stores)| {
                                stores.sort_by_cached_key(|id| {
                                    Draw(score(seed, id.as_bytes(), weight(id)))
                                });
                                let total = total_weight(&mut stores.iter().copied());
                                (score(seed, &node.to_be_bytes(), total), stores)
                            })
                            .collect();
                        nodes.sort_by_key(|(s, _)| Draw(*s));
                        let queue =
                            interleave(nodes.into_iter().map(|(_, stores)| stores).collect());
                        drawn(format!("{zone:?}").as_bytes(), queue)
                    })
                    .collect();
                zone_queues.sort_by_key(|(s, _)| Draw(*s));
                let queue =
                    interleave(zone_queues.into_iter().map(|(_, q)| Vec::from(q)).collect());
                drawn(format!("site {site:?}").as_bytes(), queue)
            })
            .collect();
        site_queues.sort_by_key(|(s, _)| Draw(*s));
        interleave(site_queues.into_iter().map(|(_, q)| Vec::from(q)).collect())
            .into_iter()
            .take(count)
            .collect()
    }
}

/// A candidate's rendezvous score for the segment hashed to `seed`:
/// `weight / -ln(u)`, `u` uniform in (0, 1) from the hash of both.
fn score(seed: u64, candidate: &[u8], weight: u64) -> f64 {
    let hash = xxhash_rust::xxh3::xxh3_64_with_seed(candidate, seed);
    let u = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    weight as f64 / -u.ln()
}

/// Orders scores highest first (scores are finite and positive).
struct Draw(f64);

impl PartialEq for Draw {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Draw {}

impl PartialOrd for Draw {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Draw {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.total_cmp(&self.0)
    }
}

impl StoreSet {
    /// Choose `count` distinct stores for a new segment that tolerates
    /// stores being down: healthy stores as [`StoreSet::choose`] picks
    /// them, and when there are too few, down stores for the last shards
    /// (returned as the indexes not to write: they go to repair once their
    /// store is back) as long as at least `quorum` shards can be written.
    pub fn choose_for_write(
        &self,
        count: usize,
        quorum: usize,
        seed: &[u8],
    ) -> Result<WritePlacement, PlacementError> {
        if let Ok(stores) = self.choose(count, seed) {
            return Ok(WritePlacement {
                stores,
                skipped: Vec::new(),
            });
        }
        self.choose_in(None, count, quorum, seed)
    }

    /// Choose a whole copy of `count` shards on each of `sites` (see
    /// `data::location`): copy `c` at positions `c·count ..`, each inside
    /// its site as [`StoreSet::choose_for_write`] would choose. A copy
    /// whose site has no store up (the site is down) goes on down stores
    /// of its site, every shard skipped: repair writes it once the site is
    /// back. At least one copy must be written.
    pub fn choose_copies(
        &self,
        sites: &[String],
        count: usize,
        quorum: usize,
        seed: &[u8],
    ) -> Result<WritePlacement, PlacementError> {
        let mut copies = Vec::with_capacity(sites.len());
        let mut written = 0;
        for site in sites {
            let chosen = match self.choose_in(Some(site), count, quorum, seed) {
                Ok(chosen) => {
                    written += 1;
                    chosen
                }
                Err(e) => self.deferred_copy(site, count, seed, true).ok_or(e)?,
            };
            copies.push(chosen);
        }
        if written == 0 {
            let members = self.members();
            let (healthy, _) = self.writable(&members, None);
            return Err(PlacementError::NotEnoughStores {
                needed: quorum.max(1),
                available: healthy.len(),
            });
        }
        Ok(WritePlacement::concat(copies, count))
    }

    /// [`StoreSet::choose_copies`] writing one copy now: `home`'s (or,
    /// when `home` cannot take it, the first site's that can); every other
    /// copy is placed on its site's stores, healthy ones first, with each
    /// of its shards skipped, for the site replicator to write.
    pub fn choose_one_copy(
        &self,
        sites: &[String],
        home: Option<&str>,
        count: usize,
        quorum: usize,
        seed: &[u8],
    ) -> Result<WritePlacement, PlacementError> {
        let mut order: Vec<usize> = (0..sites.len()).collect();
        order.sort_by_key(|&i| Some(sites[i].as_str()) != home);
        let mut written = None;
        let mut last_error = None;
        for &i in &order {
            match self.choose_in(Some(&sites[i]), count, quorum, seed) {
                Ok(chosen) => {
                    written = Some((i, chosen));
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        let Some((written_copy, chosen)) = written else {
            return Err(last_error.unwrap_or(PlacementError::NotEnoughStores {
                needed: quorum.max(1),
                available: 0,
            }));
        };
        let mut chosen = Some(chosen);
        let mut copies = Vec::with_capacity(sites.len());
        for (i, site) in sites.iter().enumerate() {
            if let Some(chosen) = chosen.take_if(|_| i == written_copy) {
                copies.push(chosen);
                continue;
            }
            let deferred = self
                .deferred_copy(site, count, seed, false)
                .ok_or_else(|| {
                    let members = self.members();
                    let (up, down) = self.writable(&members, Some(site));
                    PlacementError::SiteTooSmall {
                        site: site.clone(),
                        needed: count,
                        available: up.len() + down.len(),
                    }
                })?;
            copies.push(deferred);
        }
        Ok(WritePlacement::concat(copies, count))
    }

    /// A copy for `site` whose every shard is skipped: `count` of its
    /// stores, healthy ones first; `None` when it has fewer, or (with
    /// `only_when_down`) when any of its stores is up.
    fn deferred_copy(
        &self,
        site: &str,
        count: usize,
        seed: &[u8],
        only_when_down: bool,
    ) -> Option<WritePlacement> {
        let members = self.members();
        let (healthy, down) = self.writable(&members, Some(site));
        if (only_when_down && !healthy.is_empty()) || healthy.len() + down.len() < count {
            return None;
        }
        let up = healthy.len().min(count);
        let stores: Vec<Arc<dyn ShardStore>> = self
            .spread(&members, &healthy, up, seed)
            .into_iter()
            .chain(self.spread(&members, &down, count - up, seed))
            .filter_map(|id| members.stores.get(id).cloned())
            .collect();
        Some(WritePlacement {
            skipped: (0..stores.len()).map(|i| i as u16).collect(),
            stores,
        })
    }

    /// [`StoreSet::choose_for_write`] among the stores of `site` (all
    /// stores with `None`).
    fn choose_in(
        &self,
        site: Option<&str>,
        count: usize,
        quorum: usize,
        seed: &[u8],
    ) -> Result<WritePlacement, PlacementError> {
        let members = self.members();
        let (healthy, unhealthy) = self.writable(&members, site);
        if let Some(site) = site
            && healthy.len() + unhealthy.len() < count
        {
            return Err(PlacementError::SiteTooSmall {
                site: site.to_owned(),
                needed: count,
                available: healthy.len() + unhealthy.len(),
            });
        }
        if healthy.len() < quorum.max(1) || healthy.len() + unhealthy.len() < count {
            return Err(PlacementError::NotEnoughStores {
                needed: quorum.max(1),
                available: healthy.len(),
            });
        }
        let written = healthy.len().min(count);
        let chosen: Vec<Arc<dyn ShardStore>> = self
            .spread(&members, &healthy, written, seed)
            .into_iter()
            .chain(unhealthy.into_iter().take(count - written))
            .filter_map(|id| members.stores.get(id).cloned())
            .collect();
        let skipped = (written..count).map(|i| i as u16).collect();
        Ok(WritePlacement {
            stores: chosen,
            skipped,
        })
    }

    /// Where to rebuild shard `index` of a segment placed on `placement`:
    /// its own store when that is up (and not being drained); nowhere yet
    /// when it is down but not lost (it may come back within the grace);
    /// otherwise (lost, drained, or unknown) a healthy store, not being
    /// drained, holding no other shard of the segment, preferring zones
    /// holding the fewest of its shards; inside `site` when given (a copy
    /// kept per site stays on its site).
    pub fn repair_target(
        &self,
        placement: &[String],
        index: usize,
        site: Option<&str>,
    ) -> Option<Arc<dyn ShardStore>> {
        if let Some(own) = placement.get(index).and_then(|id| self.get(id))
            && !self.is_draining(own.id())
        {
            if !self.is_down(own.id()) {
                return Some(own);
            }
            if !self.is_lost(own.id()) {
                return None;
            }
        }
        let members = self.members();
        let zone_load = |id: &String| {
            let zone = members.domain(id).zone_key();
            placement
                .iter()
                .enumerate()
                .filter(|(i, other)| *i != index && members.domain(other).zone_key() == zone)
                .count()
        };
        let candidates: Vec<&String> = members
            .stores
            .keys()
            .filter(|id| !placement.contains(id) && !self.is_down(id) && !self.is_draining(id))
            .filter(|id| site.is_none_or(|site| members.domain(id).site.as_deref() == Some(site)))
            .collect();
        let least = candidates.iter().map(|id| zone_load(id)).min()?;
        let best: Vec<&String> = candidates
            .into_iter()
            .filter(|id| zone_load(id) == least)
            .collect();
        let start = self.inner.cursor.fetch_add(1, Ordering::Relaxed) % best.len();
        members.stores.get(best[start]).cloned()
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

/// One queue of the stores of several nodes: the first store of each node,
/// then the second of each, and so on.
fn interleave<T>(nodes: Vec<Vec<T>>) -> VecDeque<T> {
    let mut iters: Vec<_> = nodes.into_iter().map(Vec::into_iter).collect();
    let mut out = VecDeque::new();
    loop {
        let before = out.len();
        out.extend(iters.iter_mut().filter_map(Iterator::next));
        if out.len() == before {
            return out;
        }
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
    fn choose_is_distinct_deterministic_and_varies_by_segment() {
        let s = set(6);
        let a = ids(&s.choose(6, b"segment-a").unwrap());
        let uniq: BTreeSet<&String> = a.iter().collect();
        assert_eq!(uniq.len(), 6);
        assert_eq!(a, ids(&s.choose(6, b"segment-a").unwrap()));
        let firsts: BTreeSet<String> = (0..64u32)
            .map(|i| ids(&s.choose(6, &i.to_be_bytes()).unwrap())[0].clone())
            .collect();
        assert_eq!(firsts.len(), 6, "every store leads some segments");
    }

    #[test]
    fn down_stores_are_skipped() {
        let s = set(7);
        s.set_down("m3", true);
        for _ in 0..10 {
            let c = s.choose(6, b"seg").unwrap();
            assert!(c.iter().all(|x| x.id() != "m3"));
        }
        s.set_down("m4", true);
        assert_eq!(
            s.choose(6, b"seg").unwrap_err(),
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
        let all = s.choose_for_write(6, 5, b"seg").unwrap();
        assert_eq!((all.stores.len(), all.skipped.len()), (6, 0));
        s.set_down("m2", true);
        for _ in 0..6 {
            let chosen = s.choose_for_write(6, 5, b"seg").unwrap();
            let names = ids(&chosen.stores);
            assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), 6);
            assert_eq!(names[5], "m2");
            assert_eq!(chosen.skipped, vec![5]);
        }
        s.set_down("m4", true);
        let chosen = s.choose_for_write(6, 4, b"seg").unwrap();
        assert_eq!(chosen.skipped, vec![4, 5]);
        assert_eq!(ids(&chosen.stores[4..]), vec!["m2", "m4"]);
        assert_eq!(
            s.choose_for_write(6, 5, b"seg").unwrap_err(),
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
        assert_eq!(s.repair_target(&placement, 3, None).unwrap().id(), "m3");
        s.set_down("m3", true);
        // Down within the grace: wait for it.
        assert!(s.repair_target(&placement, 3, None).is_none());
        assert!(s.declare_lost(Duration::from_secs(60)).is_empty());
        assert_eq!(s.declare_lost(Duration::ZERO), vec!["m3".to_owned()]);
        assert!(s.declare_lost(Duration::ZERO).is_empty());
        for _ in 0..4 {
            let t = s.repair_target(&placement, 3, None).unwrap();
            assert!(["m6", "m7"].contains(&t.id()), "{}", t.id());
        }
        s.set_down("m6", true);
        s.set_down("m7", true);
        assert!(s.repair_target(&placement, 3, None).is_none());
        // Back up: neither down nor lost, and home again.
        s.set_down("m3", false);
        assert!(!s.is_lost("m3"));
        assert_eq!(s.repair_target(&placement, 3, None).unwrap().id(), "m3");
    }

    /// Two sites of `per_site` nodes of one store each: `dc-a-N`, `dc-b-N`.
    fn two_sites(per_site: u64) -> StoreSet {
        StoreSet::with_domains(["dc-a", "dc-b"].iter().flat_map(|site| {
            (0..per_site).map(move |n| {
                let domain = Domain {
                    site: Some((*site).to_owned()),
                    zone: None,
                    node: if *site == "dc-a" { n + 1 } else { 100 + n },
                };
                let store = Arc::new(Memory::new(format!("{site}-{n}"))) as Arc<dyn ShardStore>;
                (store, domain)
            })
        }))
    }

    #[test]
    fn a_copy_per_site_stays_inside_its_site_and_a_lost_site_is_left_for_repair() {
        let s = two_sites(4);
        let sites = ["dc-a".to_owned(), "dc-b".to_owned()];
        let site_of = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .map(|id| s.domain(id).site.unwrap_or_default())
                .collect()
        };
        let chosen = s.choose_copies(&sites, 3, 3, b"seg").unwrap();
        let names = ids(&chosen.stores);
        assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), 6);
        assert_eq!(
            site_of(&names),
            ["dc-a", "dc-a", "dc-a", "dc-b", "dc-b", "dc-b"]
        );
        assert!(chosen.skipped.is_empty());
        // Repair of a copy stays on its site.
        s.set_down(&names[4], true);
        s.declare_lost(Duration::ZERO);
        let target = s.repair_target(&names, 4, Some("dc-b")).unwrap();
        assert_eq!(s.domain(target.id()).site.as_deref(), Some("dc-b"));
        assert!(!names.contains(&target.id().to_owned()));
        // dc-b down whole: its copy goes on its own (down) stores, all
        // skipped, and dc-a's is written.
        for n in 0..4 {
            s.set_down(&format!("dc-b-{n}"), true);
        }
        let chosen = s.choose_copies(&sites, 3, 3, b"seg").unwrap();
        assert_eq!(
            site_of(&ids(&chosen.stores)),
            ["dc-a", "dc-a", "dc-a", "dc-b", "dc-b", "dc-b"]
        );
        assert_eq!(chosen.skipped, vec![3, 4, 5]);
        // Both down: refused; a site too small for a copy: refused by name.
        for n in 0..4 {
            s.set_down(&format!("dc-a-{n}"), true);
        }
        assert!(s.choose_copies(&sites, 3, 3, b"seg").is_err());
        let small = two_sites(2);
        assert_eq!(
            small.choose_copies(&sites, 3, 3, b"seg").unwrap_err(),
            PlacementError::SiteTooSmall {
                site: "dc-a".into(),
                needed: 3,
                available: 2
            }
        );
    }

    /// A set of stores given as (zone, node) per store; zone `None`: the
    /// node is its own zone.
    fn domains(layout: &[(Option<u8>, u64)]) -> StoreSet {
        StoreSet::with_domains(layout.iter().enumerate().map(|(i, (zone, node))| {
            let store = Arc::new(Memory::new(format!("s{i:03}"))) as Arc<dyn ShardStore>;
            let domain = Domain {
                site: None,
                zone: zone.map(|z| format!("z{z}")),
                node: *node,
            };
            (store, domain)
        }))
    }

    /// The most shards any zone must hold when `count` shards are spread
    /// as evenly as zones of these sizes allow (water filling).
    fn best_max_per_zone(sizes: &[usize], count: usize) -> usize {
        (1..=count)
            .find(|cap| sizes.iter().map(|s| (*s).min(*cap)).sum::<usize>() >= count)
            .unwrap_or(count)
    }

    fn per<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, usize> {
        let mut out = BTreeMap::new();
        for k in keys {
            *out.entry(k).or_default() += 1;
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn segments_spread_over_zones_and_nodes_as_evenly_as_possible(
            layout in proptest::collection::vec((proptest::option::of(0u8..5), 0u64..8), 6..30),
            k in 1usize..8,
            m in 0usize..4,
            seed in proptest::prelude::any::<u64>(),
            free in proptest::collection::vec(1u64..1000, 30),
        ) {
            let count = k + m;
            proptest::prop_assume!(layout.len() >= count);
            let set = domains(&layout);
            for (store, free) in set.all().iter().zip(free) {
                set.set_free(store.id(), free);
            }
            let chosen = ids(&set.choose(count, &seed.to_be_bytes()).unwrap());
            proptest::prop_assert_eq!(chosen.iter().collect::<BTreeSet<_>>().len(), count);
            let zone_of = |id: &String| {
                let d = set.domain(id);
                (d.zone.is_none().then_some(d.node), d.zone)
            };
            let sizes = per(set.all().iter().map(|s| zone_of(&s.id().to_owned())));
            let used = per(chosen.iter().map(zone_of));
            let best = best_max_per_zone(&sizes.values().copied().collect::<Vec<_>>(), count);
            // No zone holds more than the most even spread needs ...
            proptest::prop_assert!(used.values().all(|n| *n <= best), "{used:?} best {best}");
            // ... so with enough zones, none holds more than m: losing a
            // zone loses no data.
            if m > 0 && sizes.len() * m >= count && sizes.values().all(|s| *s >= m) {
                proptest::prop_assert!(used.values().all(|n| *n <= m), "{used:?} m {m}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn two_sites_hold_half_a_segment_each_so_either_alone_can_read_it(
            a_zones in 1u8..5,
            b_zones in 1u8..5,
            nodes_a in 3u64..8,
            nodes_b in 3u64..8,
            k in 1usize..4,
            seed in proptest::prelude::any::<u64>(),
        ) {
            // Two sites of uneven zones and nodes; k + k shards (k ≤ m).
            let store = |i: u64, site: &str, zone: u8, node: u64| {
                let id = format!("{site}-{i:03}");
                let domain = Domain {
                    site: Some(site.to_owned()),
                    zone: Some(format!("{site}-z{zone}")),
                    node,
                };
                (Arc::new(Memory::new(id)) as Arc<dyn ShardStore>, domain)
            };
            let set = StoreSet::with_domains(
                (0..nodes_a)
                    .map(|n| store(n, "dc-a", (n % u64::from(a_zones)) as u8, n))
                    .chain((0..nodes_b).map(|n| store(n, "dc-b", (n % u64::from(b_zones)) as u8, 100 + n))),
            );
            let chosen = ids(&set.choose(2 * k, &seed.to_be_bytes()).unwrap());
            let sites = per(chosen.iter().map(|id| set.domain(id).site));
            proptest::prop_assert_eq!(sites.len(), 2);
            proptest::prop_assert!(sites.values().all(|n| *n == k), "{sites:?}");
        }
    }

    #[test]
    fn free_space_beyond_counting_does_not_overflow() {
        // Bucket stores report all but unlimited space: sums saturate.
        let set = domains(&[(None, 1), (None, 1), (None, 2), (None, 3)]);
        for store in set.all() {
            set.set_free(store.id(), u64::MAX);
        }
        assert_eq!(set.choose(4, b"segment").unwrap().len(), 4);
    }

    #[test]
    fn four_zones_of_two_nodes_hold_at_most_two_shards_each() {
        // 8 nodes of 2 disks in 4 zones, 4+2: every zone gets one or two
        // shards, never two on one node while another node of it is free.
        let layout: Vec<(Option<u8>, u64)> = (0..16)
            .map(|i| (Some((i / 4) as u8), (i / 2) as u64))
            .collect();
        let set = domains(&layout);
        let mut first_zones = BTreeSet::new();
        for seed in 0..32u32 {
            let chosen = ids(&set.choose(6, &seed.to_be_bytes()).unwrap());
            let zones = per(chosen.iter().map(|id| set.domain(id).zone));
            assert!(zones.values().all(|n| (1..=2).contains(n)), "{zones:?}");
            let nodes = per(chosen.iter().map(|id| set.domain(id).node));
            assert!(nodes.values().all(|n| *n == 1), "{nodes:?}");
            first_zones.insert(set.domain(&chosen[0]).zone);
        }
        assert_eq!(
            first_zones.len(),
            4,
            "the first shard moves from zone to zone"
        );
    }

    #[test]
    fn emptier_stores_take_more_new_segments() {
        // Eight nodes of one disk, each its own zone; node 0 has ten times
        // the free space of the others.
        let set = domains(&(0..8).map(|n| (None, n)).collect::<Vec<_>>());
        for (i, store) in set.all().iter().enumerate() {
            set.set_free(store.id(), if i == 0 { 10_000 } else { 1_000 });
        }
        let mut picked = BTreeMap::new();
        for seed in 0..2_000u32 {
            for id in ids(&set.choose(3, &seed.to_be_bytes()).unwrap()) {
                *picked.entry(id).or_insert(0u32) += 1;
            }
        }
        let emptiest = picked["s000"];
        let others = picked.values().sum::<u32>() - emptiest;
        assert!(
            f64::from(emptiest) > 2.0 * f64::from(others) / 7.0,
            "{picked:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn a_new_store_changes_a_segments_choice_by_at_most_itself(
            nodes in 6u64..20,
            count in 1usize..6,
            seed in proptest::prelude::any::<u64>(),
        ) {
            // Each node its own zone; then node `nodes` joins.
            let before = domains(&(0..nodes).map(|n| (None, n)).collect::<Vec<_>>());
            let after = domains(&(0..=nodes).map(|n| (None, n)).collect::<Vec<_>>());
            let newcomer = format!("s{nodes:03}");
            let old: BTreeSet<String> =
                ids(&before.choose(count, &seed.to_be_bytes()).unwrap()).into_iter().collect();
            let new: BTreeSet<String> =
                ids(&after.choose(count, &seed.to_be_bytes()).unwrap()).into_iter().collect();
            // Either nothing changes, or the newcomer takes one shard's place.
            let gone: Vec<&String> = old.difference(&new).collect();
            let came: Vec<&String> = new.difference(&old).collect();
            proptest::prop_assert!(
                gone.is_empty() && came.is_empty()
                    || gone.len() == 1 && came == vec![&newcomer],
                "gone {gone:?} came {came:?}"
            );
        }
    }

    #[test]
    fn draining_stores_take_no_new_shards_and_give_theirs_away() {
        let s = set(8);
        s.set_draining(BTreeSet::from(["m1".to_owned()]));
        for _ in 0..8 {
            assert!(
                ids(&s.choose(6, b"seg").unwrap())
                    .iter()
                    .all(|id| id != "m1")
            );
            let write = s.choose_for_write(6, 5, b"seg").unwrap();
            assert!(ids(&write.stores).iter().all(|id| id != "m1"));
        }
        let placement: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
        let target = s.repair_target(&placement, 1, None).unwrap();
        assert!(["m6", "m7"].contains(&target.id()), "{}", target.id());
        // Reads still find it.
        assert!(s.locate(&placement)[1].is_some());
        s.set_draining(BTreeSet::new());
        assert_eq!(s.repair_target(&placement, 1, None).unwrap().id(), "m1");
    }
}
