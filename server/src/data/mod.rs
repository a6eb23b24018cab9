//! The data layer: storing object data, reading it back, finding and
//! committing versions, deleting shards. It knows metadata (tessera-raft)
//! and shards (tessera-storage) and nothing of S3: the S3 handlers
//! ([`crate::s3`]) and the background workers ([`crate::workers`]) share it
//! through one [`DataPlane`].
//!
//! One file per concept:
//! - `ingest`: a body into stored, verified data (inline or shards), and copies;
//! - `read`: stored data back out as a stream, under a read lease;
//! - `lookup`: the version a read addresses;
//! - `commit`: new versions, parts and completions through raft;
//! - `discard`: deleting a segment's shards (failed writes, the GC);
//! - `integrity`: the MD5 and checksum claims a body is checked against;
//! - `data_key`: per-object data-encryption keys and their envelope;
//! - [`location`]: segment records into shard ids and stores;
//! - `ids`: version and upload ids, and the clock they are stamped with;
//! - `error`: [`DataError`].

mod commit;
mod data_key;
mod discard;
mod error;
pub(crate) mod ids;
mod ingest;
mod integrity;
pub mod location;
mod lookup;
pub mod policy;
mod read;

use std::sync::Arc;
use std::time::Duration;

use tessera_raft::command::Command;
use tessera_raft::model::{Segment, WorkItem};
use tessera_raft::node::MetaNode;
use tessera_storage::{Geometry, MasterKey, MemoryBudget, ObjectLocation};

use crate::leases::ReadLeases;
use crate::placement::StoreSet;

pub(crate) use commit::VersionMeta;
pub(crate) use data_key::ObjectDataKey;
pub use error::{DataError, MarkerAddressed};
pub(crate) use ingest::{Body, Destination, IngestOptions, body_stream};
pub(crate) use integrity::{Integrity, Trailers};
pub(crate) use location::LocationError;
pub(crate) use lookup::VersionRef;
pub(crate) use read::DataStream;

/// Tunables of the data path.
#[derive(Debug, Clone)]
pub struct DataSettings {
    /// Erasure code and block size of new segments.
    pub geometry: Geometry,
    /// Objects up to this many bytes are sealed into the metadata instead of sharded.
    pub inline_threshold: usize,
    /// Stripes encoded ahead of the slowest shard write (memory bound per upload).
    pub stripes_in_flight: usize,
    /// How long a read waits for one shard before using parity instead, and
    /// a write for a stalled shard store before writing on without it.
    pub shard_timeout: Duration,
    /// How long a read waits for a shard's block before reading parity
    /// beside it (a hedged read); a storage node outrun this way is taken
    /// as down until its next probe.
    pub hedge_after: Duration,
    /// Memory shared by all uploads' stripes in flight.
    pub write_budget: MemoryBudget,
    /// Memory shared by all reads' stripes, from the stores until the
    /// client has been sent them.
    pub read_budget: MemoryBudget,
    /// A body that sends no bytes for this long fails (and gives back its
    /// share of the write budget).
    pub body_idle_timeout: Duration,
    /// Shards of a segment that must be durable before a write succeeds
    /// (`None`: k + 1, or k + m when there is no parity); the rest are
    /// queued for repair.
    pub write_quorum: Option<usize>,
    /// Sites that each keep a whole copy of every new segment (see
    /// [`location`]); empty: one copy spread over the sites.
    pub site_copies: Vec<String>,
    /// How the site copies are written (see [`policy::SiteReplication`]).
    pub site_replication: policy::SiteReplication,
}

impl DataSettings {
    /// Shards of a `geometry` segment that must be durable for a write:
    /// the configured quorum when it fits the code, else k + 1 (k + m
    /// without parity).
    pub fn write_quorum_for(&self, geometry: Geometry) -> usize {
        let width = geometry.total_shards();
        self.write_quorum
            .filter(|q| (geometry.k()..=width).contains(q))
            .unwrap_or(width.min(geometry.k() + 1))
    }
}

impl Default for DataSettings {
    fn default() -> Self {
        Self {
            geometry: Geometry::default(),
            inline_threshold: tessera_storage::DEFAULT_INLINE_THRESHOLD,
            stripes_in_flight: 2,
            shard_timeout: Duration::from_secs(10),
            hedge_after: Duration::from_millis(300),
            write_budget: MemoryBudget::new(crate::config::DEFAULT_WRITE_BUFFER),
            read_budget: MemoryBudget::new(crate::config::DEFAULT_READ_BUFFER),
            body_idle_timeout: Duration::from_secs(30),
            write_quorum: None,
            site_copies: Vec::new(),
            site_replication: policy::SiteReplication::Sync,
        }
    }
}

/// Everything a [`DataPlane`] needs.
pub struct DataDeps {
    /// The metadata member.
    pub meta: MetaNode,
    /// The shard stores.
    pub stores: StoreSet,
    /// The cluster master key that wraps every object's data key.
    pub master_key: Arc<MasterKey>,
    /// Tunables.
    pub settings: DataSettings,
    /// Leases of the reads in flight (GC spares their segments).
    pub leases: ReadLeases,
}

/// Object data over the metadata and the shard stores: what the S3
/// handlers and the workers store, read, commit and delete through. Cheap
/// to clone: clones share everything.
#[derive(Clone)]
pub struct DataPlane {
    meta: MetaNode,
    stores: StoreSet,
    master_key: Arc<MasterKey>,
    settings: DataSettings,
    leases: ReadLeases,
}

impl DataPlane {
    /// A data plane over these parts.
    pub fn new(deps: DataDeps) -> Self {
        Self {
            meta: deps.meta,
            stores: deps.stores,
            master_key: deps.master_key,
            settings: deps.settings,
            leases: deps.leases,
        }
    }

    /// The erasure code and block size of new segments.
    pub fn geometry(&self) -> Geometry {
        self.settings.geometry
    }

    /// The metadata member.
    pub fn meta(&self) -> &MetaNode {
        &self.meta
    }

    /// The shard stores.
    pub fn stores(&self) -> &StoreSet {
        &self.stores
    }

    /// The leases of the reads in flight.
    pub fn leases(&self) -> &ReadLeases {
        &self.leases
    }

    /// `key`'s envelope, wrapped by the master key, to keep in metadata.
    pub(crate) fn wrap_key(&self, key: &ObjectDataKey) -> Vec<u8> {
        key.wrap(&self.master_key)
    }

    /// Opens a data-key envelope kept in metadata.
    pub(crate) fn open_key(&self, envelope: &[u8]) -> Result<ObjectDataKey, DataError> {
        ObjectDataKey::open(&self.master_key, envelope)
            .map_err(DataError::storage("unwrapping an object's data key"))
    }

    /// Where to read `segment` from, leaving out the shards `skip` names
    /// (see [`location::location`]).
    pub(crate) fn locate(
        &self,
        segment: &Segment,
        skip: &[u16],
    ) -> Result<ObjectLocation, LocationError> {
        location::location(segment, &self.stores, skip)
    }

    /// Queues shards `shards` of `segment` for repair (a finding of a job,
    /// not of a read: no version names it).
    pub(crate) async fn queue_repair(
        &self,
        segment: &Segment,
        shards: Vec<u16>,
    ) -> Result<(), tessera_raft::MetaError> {
        let item = WorkItem::Repair {
            bucket: String::new(),
            key: String::new(),
            version_id: String::new(),
            object_id: segment.object_id,
            part: segment.part,
            shards,
        };
        self.meta.write(Command::EnqueueWork { item }).await?;
        Ok(())
    }
}
