//! Between the metadata's [`Segment`] and the storage layer's locations:
//! the one place where a segment's placement becomes shard ids and stores.
//!
//! A segment record is checked before it is used ([`check`]): its placement
//! names exactly one store per shard of its code, every shard index fits a
//! [`ShardId`], and its missing shards are shards it has. A record that
//! fails is refused with a [`LocationError`], never clamped or cut short.

use tessera_raft::model::Segment;
use tessera_storage::{Geometry, ObjectId, ObjectLocation, ShardId};

use crate::placement::StoreSet;

/// Why a segment record cannot be turned into storage locations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// The code has no data shards.
    #[error("segment has no data shards")]
    NoDataShards,
    /// The placement does not name one store per shard.
    #[error("segment places {placed} shards, its {data}+{parity} code has {expected}")]
    PlacementLength {
        /// Stores named.
        placed: usize,
        /// Shards of the code.
        expected: usize,
        /// Data shards.
        data: u16,
        /// Parity shards.
        parity: u16,
    },
    /// More shards than a shard index can name.
    #[error("segment has {0} shards; shard indexes go up to 65535")]
    TooManyShards(usize),
    /// A missing shard the segment does not have.
    #[error("segment lists shard {index} as missing, of {shards}")]
    MissingOutOfRange {
        /// The index listed.
        index: u16,
        /// Shards of the segment.
        shards: usize,
    },
}

/// The erasure code and block size a segment was written with.
pub fn geometry(segment: &Segment) -> Geometry {
    Geometry {
        data_shards: segment.data_shards,
        parity_shards: segment.parity_shards,
        block_size: segment.block_size,
    }
}

/// Checks a segment record: see the module docs.
pub fn check(segment: &Segment) -> Result<(), LocationError> {
    if segment.data_shards == 0 {
        return Err(LocationError::NoDataShards);
    }
    let expected = usize::from(segment.data_shards) + usize::from(segment.parity_shards);
    if segment.placement.len() != expected {
        return Err(LocationError::PlacementLength {
            placed: segment.placement.len(),
            expected,
            data: segment.data_shards,
            parity: segment.parity_shards,
        });
    }
    if expected > usize::from(u16::MAX) + 1 {
        return Err(LocationError::TooManyShards(expected));
    }
    if let Some(&index) = segment
        .missing
        .iter()
        .find(|&&m| usize::from(m) >= expected)
    {
        return Err(LocationError::MissingOutOfRange {
            index,
            shards: expected,
        });
    }
    Ok(())
}

/// The id of shard `index` of a segment.
pub fn shard_id(segment: &Segment, index: u16) -> ShardId {
    ShardId {
        object: ObjectId(segment.object_id),
        part: segment.part,
        index,
    }
}

/// Every shard of a checked segment with the id of the store its placement
/// names.
pub fn shards(segment: &Segment) -> Result<impl Iterator<Item = (ShardId, &str)>, LocationError> {
    check(segment)?;
    Ok(segment
        .placement
        .iter()
        .zip(0u16..=u16::MAX)
        .map(|(store, index)| (shard_id(segment, index), store.as_str())))
}

/// Where to read a checked segment from: the stores of its placement that
/// are known and up, leaving out its missing shards and those `skip` names.
pub fn location(
    segment: &Segment,
    stores: &StoreSet,
    skip: &[u16],
) -> Result<ObjectLocation, LocationError> {
    check(segment)?;
    Ok(ObjectLocation {
        object: ObjectId(segment.object_id),
        part: segment.part,
        size: segment.size,
        geometry: geometry(segment),
        stores: stores
            .locate(&segment.placement)
            .into_iter()
            .zip(0u16..=u16::MAX)
            .map(|(store, index)| {
                store.filter(|_| !segment.missing.contains(&index) && !skip.contains(&index))
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tessera_storage::{Memory, ShardStore};

    use super::*;

    fn segment(data: u16, parity: u16, placed: usize) -> Segment {
        Segment {
            object_id: [7; 16],
            part: 3,
            size: 1000,
            data_shards: data,
            parity_shards: parity,
            block_size: 1 << 20,
            placement: (0..placed).map(|i| format!("s{i}")).collect(),
            missing: Vec::new(),
        }
    }

    #[test]
    fn a_sound_segment_maps_every_shard_exactly() {
        let seg = segment(4, 2, 6);
        let ids: Vec<(u16, String)> = shards(&seg)
            .unwrap()
            .map(|(id, store)| (id.index, store.to_owned()))
            .collect();
        assert_eq!(ids.len(), 6);
        for (i, (index, store)) in ids.iter().enumerate() {
            assert_eq!(
                (usize::from(*index), store.as_str()),
                (i, format!("s{i}").as_str())
            );
        }
        let id = shards(&seg).unwrap().nth(5).unwrap().0;
        assert_eq!((id.object, id.part), (ObjectId([7; 16]), 3));
    }

    #[test]
    fn placements_of_the_wrong_length_are_refused() {
        for placed in [0, 5, 7] {
            assert_eq!(
                check(&segment(4, 2, placed)),
                Err(LocationError::PlacementLength {
                    placed,
                    expected: 6,
                    data: 4,
                    parity: 2
                })
            );
        }
        assert_eq!(check(&segment(0, 2, 2)), Err(LocationError::NoDataShards));
    }

    #[test]
    fn more_shards_than_indexes_are_refused_not_cut_short() {
        // 65,536 shards still have an index each; one more has not.
        assert!(check(&segment(u16::MAX, 1, 65_536)).is_ok());
        let count = shards(&segment(u16::MAX, 1, 65_536)).unwrap().count();
        assert_eq!(count, 65_536);
        assert_eq!(
            check(&segment(u16::MAX, 2, 65_537)),
            Err(LocationError::TooManyShards(65_537))
        );
        assert!(shards(&segment(u16::MAX, 2, 65_537)).is_err());
    }

    #[test]
    fn missing_shards_must_be_shards_of_the_segment() {
        let mut seg = segment(4, 2, 6);
        seg.missing = vec![5];
        assert!(check(&seg).is_ok());
        seg.missing = vec![1, 6];
        assert_eq!(
            check(&seg),
            Err(LocationError::MissingOutOfRange {
                index: 6,
                shards: 6
            })
        );
    }

    #[test]
    fn locations_leave_out_missing_skipped_unknown_and_down_stores() {
        let stores = StoreSet::new(
            (0..6).map(|i| Arc::new(Memory::new(format!("s{i}"))) as Arc<dyn ShardStore>),
        );
        let mut seg = segment(4, 2, 6);
        seg.placement[4] = "elsewhere".into();
        seg.missing = vec![1];
        stores.set_down("s3", true);
        let loc = location(&seg, &stores, &[2]).unwrap();
        let present: Vec<bool> = loc.stores.iter().map(Option::is_some).collect();
        assert_eq!(present, vec![true, false, false, false, false, true]);
        assert_eq!((loc.size, loc.part), (1000, 3));
        seg.placement.pop();
        assert!(location(&seg, &stores, &[]).is_err());
    }
}
