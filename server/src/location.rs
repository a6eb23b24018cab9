//! Between the metadata's [`Segment`] and the storage layer's locations:
//! the one place where a segment's placement becomes shard ids and stores.

use tessera_raft::model::Segment;
use tessera_storage::{Geometry, ObjectId, ObjectLocation, ShardId};

use crate::placement::StoreSet;

/// The erasure code and block size a segment was written with.
pub fn geometry(segment: &Segment) -> Geometry {
    Geometry {
        data_shards: segment.data_shards,
        parity_shards: segment.parity_shards,
        block_size: segment.block_size,
    }
}

/// The id of shard `index` of a segment.
pub fn shard_id(segment: &Segment, index: u16) -> ShardId {
    ShardId {
        object: ObjectId(segment.object_id),
        part: segment.part,
        index,
    }
}

/// Every shard of a segment with the id of the store its placement names.
pub fn shards(segment: &Segment) -> impl Iterator<Item = (ShardId, &str)> {
    segment
        .placement
        .iter()
        .zip(0u16..)
        .map(|(store, index)| (shard_id(segment, index), store.as_str()))
}

/// Where to read a segment from: the stores of its placement that are
/// known and up, leaving out its missing shards and those `skip` names.
pub fn location(segment: &Segment, stores: &StoreSet, skip: &[u16]) -> ObjectLocation {
    ObjectLocation {
        object: ObjectId(segment.object_id),
        part: segment.part,
        size: segment.size,
        geometry: geometry(segment),
        stores: stores
            .locate(&segment.placement)
            .into_iter()
            .zip(0u16..)
            .map(|(store, index)| {
                store.filter(|_| !segment.missing.contains(&index) && !skip.contains(&index))
            })
            .collect(),
    }
}
