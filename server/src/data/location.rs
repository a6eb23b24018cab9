//! Between the metadata's [`Segment`] and the storage layer's locations:
//! the one place where a segment's placement becomes shard ids and stores.
//!
//! A segment keeps one or more whole copies of its stripe (with two sites
//! keeping a copy each, a site alone serves every object with its full
//! redundancy). Its placement names `copies × (k + m)` stores: copy `c`
//! at positions `c·(k+m) .. (c+1)·(k+m)`, position `p` holding stripe
//! shard `p mod (k+m)`. The copies are the same sealed bytes under the
//! same shard ids, on distinct stores. Repair, scrub and the missing list
//! speak of positions; the storage layer of stripe shards.
//!
//! A segment record is checked before it is used ([`check`]): its placement
//! names a whole number of copies, every position fits a shard index, and
//! its missing shards are positions it has. A record that fails is refused
//! with a [`LocationError`], never clamped or cut short.

use tessera_raft::model::Segment;
use tessera_storage::{Geometry, ObjectId, ObjectLocation, ShardId};

use crate::placement::StoreSet;

/// Why a segment record cannot be turned into storage locations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// The code has no data shards.
    #[error("segment has no data shards")]
    NoDataShards,
    /// The placement does not name one store per shard of every copy.
    #[error(
        "segment places {placed} shards, not a whole number of copies of its {data}+{parity} code ({expected} shards each)"
    )]
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

/// Shards of one copy of the segment's stripe (k + m).
pub fn width(segment: &Segment) -> usize {
    usize::from(segment.data_shards) + usize::from(segment.parity_shards)
}

/// Checks a segment record: see the module docs.
pub fn check(segment: &Segment) -> Result<(), LocationError> {
    if segment.data_shards == 0 {
        return Err(LocationError::NoDataShards);
    }
    let expected = width(segment);
    let placed = segment.placement.len();
    if placed == 0 || !placed.is_multiple_of(expected) {
        return Err(LocationError::PlacementLength {
            placed,
            expected,
            data: segment.data_shards,
            parity: segment.parity_shards,
        });
    }
    if placed > usize::from(u16::MAX) + 1 {
        return Err(LocationError::TooManyShards(placed));
    }
    if let Some(&index) = segment.missing.iter().find(|&&m| usize::from(m) >= placed) {
        return Err(LocationError::MissingOutOfRange {
            index,
            shards: placed,
        });
    }
    Ok(())
}

/// The stripe shard kept at `position` of a checked segment's placement.
pub fn stripe_index(segment: &Segment, position: u16) -> u16 {
    // A width past u16 (65,536 shards) leaves room for one copy only.
    match u16::try_from(width(segment)) {
        Ok(width) if width > 0 => position % width,
        _ => position,
    }
}

/// The id of the shard kept at `position` of a segment.
pub fn shard_id(segment: &Segment, position: u16) -> ShardId {
    ShardId {
        object: ObjectId(segment.object_id),
        part: segment.part,
        index: stripe_index(segment, position),
    }
}

/// The positions keeping stripe shard `index`, one per copy.
pub fn positions(segment: &Segment, index: u16) -> Vec<u16> {
    let width = width(segment).max(1);
    // An index past the stripe (from a node's report) is no shard of it.
    if usize::from(index) >= width {
        return Vec::new();
    }
    (0..segment.placement.len())
        .step_by(width)
        .filter_map(|start| u16::try_from(start + usize::from(index)).ok())
        .filter(|&p| usize::from(p) < segment.placement.len())
        .collect()
}

/// The position at which `store` keeps stripe shard `index`, if it does.
pub fn position_on(segment: &Segment, index: u16, store: &str) -> Option<u16> {
    positions(segment, index)
        .into_iter()
        .find(|&p| segment.placement[usize::from(p)] == store)
}

/// The site of the copy `position` belongs to, for a segment kept as a
/// copy per site: the site of the other stores of that copy that `stores`
/// knows. `None` for a segment kept as one copy.
pub fn copy_site(segment: &Segment, position: u16, stores: &StoreSet) -> Option<String> {
    let width = width(segment).max(1);
    if segment.placement.len() <= width {
        return None;
    }
    let start = usize::from(position) / width * width;
    segment
        .placement
        .iter()
        .skip(start)
        .take(width)
        .find_map(|store| stores.domain(store).site)
}

/// How many more shards a segment lacking the shards at positions
/// `lacking` can lose, at worst, before it cannot be read; below 0 when it
/// cannot be read now (by how many stripe shards it is short). With one
/// copy that is `m - lacking`; with copies, a stripe shard is gone only
/// with its every copy.
pub fn redundancy_left(segment: &Segment, lacking: &[u16]) -> i64 {
    let width = width(segment);
    let k = usize::from(segment.data_shards);
    let mut held: Vec<usize> = (0..=u16::MAX)
        .take(width)
        .map(|i| {
            positions(segment, i)
                .iter()
                .filter(|p| !lacking.contains(p))
                .count()
        })
        .filter(|&copies| copies > 0)
        .collect();
    let readable = held.len();
    if readable < k {
        return readable as i64 - k as i64;
    }
    // Losing the fewest-held stripe shards first, this many go before the
    // segment is short of k.
    held.sort_unstable();
    let to_lose: usize = held.iter().take(readable - k + 1).sum();
    i64::try_from(to_lose).unwrap_or(i64::MAX) - 1
}

/// Every position of a checked segment with the id of the shard it keeps
/// and the store its placement names.
pub fn shards(
    segment: &Segment,
) -> Result<impl Iterator<Item = (u16, ShardId, &str)>, LocationError> {
    check(segment)?;
    Ok(segment
        .placement
        .iter()
        .zip(0u16..=u16::MAX)
        .map(|(store, position)| (position, shard_id(segment, position), store.as_str())))
}

/// Where to read a checked segment from: for each stripe shard, a copy on
/// a store that is known and up, leaving out its missing positions and
/// those `skip` names; a copy on the gateway's own site first (see
/// [`StoreSet::home_site`]).
pub fn location(
    segment: &Segment,
    stores: &StoreSet,
    skip: &[u16],
) -> Result<ObjectLocation, LocationError> {
    check(segment)?;
    let found = stores.locate(&segment.placement);
    let home = stores.home_site();
    let usable = |p: &u16| {
        !segment.missing.contains(p) && !skip.contains(p) && found[usize::from(*p)].is_some()
    };
    let pick = |index: u16| {
        let mut copies: Vec<u16> = positions(segment, index)
            .into_iter()
            .filter(usable)
            .collect();
        if let Some(home) = home.as_deref() {
            copies.sort_by_key(|&p| {
                stores
                    .domain(&segment.placement[usize::from(p)])
                    .site
                    .as_deref()
                    != Some(home)
            });
        }
        copies.first().and_then(|&p| found[usize::from(p)].clone())
    };
    Ok(ObjectLocation {
        object: ObjectId(segment.object_id),
        part: segment.part,
        size: segment.size,
        geometry: geometry(segment),
        stores: (0..=u16::MAX).take(width(segment)).map(pick).collect(),
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
            .map(|(_, id, store)| (id.index, store.to_owned()))
            .collect();
        assert_eq!(ids.len(), 6);
        for (i, (index, store)) in ids.iter().enumerate() {
            assert_eq!(
                (usize::from(*index), store.as_str()),
                (i, format!("s{i}").as_str())
            );
        }
        let id = shards(&seg).unwrap().nth(5).unwrap().1;
        assert_eq!((id.object, id.part), (ObjectId([7; 16]), 3));
    }

    #[test]
    fn placements_of_the_wrong_length_are_refused() {
        for placed in [0, 5, 7, 13] {
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

    fn two_site_stores() -> StoreSet {
        StoreSet::with_domains((0..6u64).map(|i| {
            let store = Arc::new(Memory::new(format!("s{i}"))) as Arc<dyn ShardStore>;
            let site = if i < 3 { "dc-a" } else { "dc-b" };
            let domain = crate::placement::Domain {
                site: Some(site.into()),
                zone: None,
                node: i + 1,
            };
            (store, domain)
        }))
    }

    #[test]
    fn copies_share_shard_ids_and_map_positions_both_ways() {
        // 2+1 kept twice: s0 s1 s2 in one copy, s3 s4 s5 in the other.
        let seg = segment(2, 1, 6);
        assert!(check(&seg).is_ok());
        let ids: Vec<(u16, u16, String)> = shards(&seg)
            .unwrap()
            .map(|(p, id, store)| (p, id.index, store.to_owned()))
            .collect();
        let want: Vec<(u16, u16, String)> = (0..6).map(|p| (p, p % 3, format!("s{p}"))).collect();
        assert_eq!(ids, want);
        assert_eq!(positions(&seg, 1), vec![1, 4]);
        assert_eq!(position_on(&seg, 1, "s4"), Some(4));
        assert_eq!(position_on(&seg, 1, "s1"), Some(1));
        assert_eq!(position_on(&seg, 1, "s3"), None);
        // No index past the stripe names a shard of another copy.
        assert!(positions(&seg, 3).is_empty());
        assert_eq!(position_on(&seg, 3, "s3"), None);
        assert_eq!(stripe_index(&seg, 5), 2);
    }

    #[test]
    fn a_copy_on_the_home_site_is_read_first_and_the_other_stands_in() {
        let stores = two_site_stores();
        let mut seg = segment(2, 1, 6);
        let chosen = |loc: &ObjectLocation| -> Vec<Option<String>> {
            loc.stores
                .iter()
                .map(|s| s.as_ref().map(|s| s.id().to_owned()))
                .collect()
        };
        let some = |ids: [&str; 3]| ids.map(|s| Some(s.to_owned())).to_vec();
        stores.set_home_site(Some("dc-b".into()));
        assert_eq!(
            chosen(&location(&seg, &stores, &[]).unwrap()),
            some(["s3", "s4", "s5"])
        );
        stores.set_home_site(Some("dc-a".into()));
        assert_eq!(
            chosen(&location(&seg, &stores, &[]).unwrap()),
            some(["s0", "s1", "s2"])
        );
        // A missing, down or skipped home shard: its twin stands in.
        seg.missing = vec![0];
        stores.set_down("s1", true);
        assert_eq!(
            chosen(&location(&seg, &stores, &[2]).unwrap()),
            some(["s3", "s4", "s5"])
        );
        // Both copies of a shard gone: none.
        seg.missing = vec![0, 3];
        let loc = location(&seg, &stores, &[]).unwrap();
        assert_eq!(chosen(&loc)[0], None);
    }

    #[test]
    fn redundancy_left_counts_every_copy_of_a_shard() {
        // One copy: m minus what is lacking.
        let single = segment(4, 2, 6);
        assert_eq!(redundancy_left(&single, &[]), 2);
        assert_eq!(redundancy_left(&single, &[1]), 1);
        assert_eq!(redundancy_left(&single, &[0, 1, 5]), -1);
        // 2+1 kept twice: three losses are survived (four can take both
        // copies of two shards), a whole copy lost leaves the other's m.
        let twice = segment(2, 1, 6);
        assert_eq!(redundancy_left(&twice, &[]), 3);
        assert_eq!(redundancy_left(&twice, &[3, 4, 5]), 1);
        assert_eq!(redundancy_left(&twice, &[0, 3]), 1);
        assert_eq!(redundancy_left(&twice, &[0, 3, 1, 4]), -1);
    }
}
