//! The background queues of the metadata model: the segment index, the
//! repair queue and the deletion queue, applied to redb without raft.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model_support;

use model_support::*;
use redb::ReadableTable;
use tessera_raft::command::{ApplyError, Command};
use tessera_raft::model::{RepairItem, SegmentOwner, Versioning, WorkItem};
use tessera_raft::tables;

fn owner(bucket: &str, key: &str, version_id: &str) -> SegmentOwner {
    SegmentOwner::Version {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.into(),
    }
}

fn repair(seed: u64, shards: Vec<u16>) -> Command {
    Command::EnqueueWork {
        item: WorkItem::Repair {
            bucket: "ignored".into(),
            key: "ignored".into(),
            version_id: "ignored".into(),
            object_id: segment(seed).object_id,
            part: 1,
            shards,
        },
    }
}

fn repairs(meta: &Meta) -> Vec<(u64, Vec<u16>)> {
    meta.view()
        .repairs(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r: RepairItem| {
            (
                u64::from_be_bytes(r.object_id[..8].try_into().unwrap()),
                r.shards,
            )
        })
        .collect()
}

#[test]
fn versions_index_their_segments_and_queue_what_they_lack() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    let mut degraded = version("b", "k", "v1", 7);
    if let tessera_raft::model::ObjectData::Parts(parts) = &mut degraded.data {
        parts[0].segment.missing = vec![5, 2];
    }
    meta.ok(Command::PutObject {
        version: degraded,
        precondition: None,
    });
    let seg = segment(7);
    let record = meta.view().segment(&seg.object_id, 1).unwrap().unwrap();
    assert_eq!(record.owner, owner("b", "k", "v1"));
    assert_eq!(record.segment.missing, vec![5, 2]);
    assert_eq!(record.wrapped_key, vec![1, 2, 3]);
    assert_eq!(repairs(&meta), vec![(7, vec![2, 5])]);

    // Reports of the same segment merge; reports of unknown segments are dropped.
    meta.ok(repair(7, vec![4, 2]));
    meta.ok(repair(99, vec![1]));
    assert_eq!(repairs(&meta), vec![(7, vec![2, 4, 5])]);
    assert_eq!(meta.view().queue_lengths().unwrap().repairs, 1);

    // Shard 2 rebuilt elsewhere, shard 5 found sound; shard 4 stays queued.
    meta.ok(Command::CompleteRepair {
        object_id: seg.object_id,
        part: 1,
        rebuilt: vec![(2, "disk-9".into())],
        sound: vec![5],
    });
    let v = meta.view().object("b", "k", Some("v1")).unwrap().unwrap();
    assert_eq!(v.segments()[0].placement[2], "disk-9");
    assert!(v.segments()[0].missing.is_empty());
    assert_eq!(repairs(&meta), vec![(7, vec![4])]);
    assert!(matches!(
        meta.apply(Command::CompleteRepair {
            object_id: seg.object_id,
            part: 1,
            rebuilt: vec![(6, "disk-9".into())],
            sound: vec![],
        }),
        Err(ApplyError::InvalidRequest(_))
    ));

    // A report naming no real shard is taken off the queue as sound, as
    // the repair worker does, without refusing the rest.
    meta.ok(repair(7, vec![9]));
    assert_eq!(repairs(&meta), vec![(7, vec![4, 9])]);
    meta.ok(Command::CompleteRepair {
        object_id: seg.object_id,
        part: 1,
        rebuilt: vec![],
        sound: vec![9],
    });
    assert_eq!(repairs(&meta), vec![(7, vec![4])]);

    // Deleting the version forgets the segment and its repair, and queues
    // the deletion.
    meta.ok(delete("b", "k", Some("v1"), "m"));
    assert!(meta.view().segment(&seg.object_id, 1).unwrap().is_none());
    assert!(repairs(&meta).is_empty());
    let deletions = meta.view().deletions(10).unwrap();
    assert_eq!(deletions.len(), 1);
    assert_eq!(deletions[0].1[0].object_id, seg.object_id);
    // A repair finishing after the delete only clears what is left.
    meta.ok(Command::CompleteRepair {
        object_id: seg.object_id,
        part: 1,
        rebuilt: vec![(4, "disk-9".into())],
        sound: vec![],
    });
    assert!(meta.view().segment(&seg.object_id, 1).unwrap().is_none());
}

#[test]
fn overwrites_move_the_index_to_the_new_data() {
    let mut meta = Meta::with_bucket("b", Versioning::Unversioned);
    meta.ok(put("b", "k", "x", 1));
    meta.ok(repair(1, vec![0]));
    meta.ok(put("b", "k", "x", 2));
    assert!(
        meta.view()
            .segment(&segment(1).object_id, 1)
            .unwrap()
            .is_none()
    );
    assert!(
        repairs(&meta).is_empty(),
        "the replaced data needs no repair"
    );
    let record = meta
        .view()
        .segment(&segment(2).object_id, 1)
        .unwrap()
        .unwrap();
    assert_eq!(record.owner, owner("b", "k", "null"));
}

#[test]
fn parts_are_indexed_by_upload_then_by_version() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(create_upload("b", "k", "u1"));
    let mut p1 = part(1, 5 << 20, 11);
    p1.segment.missing = vec![3];
    meta.ok(put_part("b", "k", "u1", p1));
    meta.ok(put_part("b", "k", "u1", part(2, 10, 12)));
    meta.ok(put_part("b", "k", "u1", part(3, 10, 13)));
    let seg = segment(11);
    let record = meta.view().segment(&seg.object_id, 1).unwrap().unwrap();
    assert_eq!(
        record.owner,
        SegmentOwner::Upload {
            bucket: "b".into(),
            key: "k".into(),
            upload_id: "u1".into(),
            number: 1,
        }
    );
    assert_eq!(repairs(&meta), vec![(11, vec![3])]);
    meta.ok(Command::CompleteRepair {
        object_id: seg.object_id,
        part: 1,
        rebuilt: vec![(3, "disk-7".into())],
        sound: vec![],
    });
    let parts = meta.view().list_parts("b", "k", "u1", 0, 10).unwrap().parts;
    assert_eq!(parts[0].segment.placement[3], "disk-7");
    assert!(parts[0].segment.missing.is_empty());
    assert!(repairs(&meta).is_empty());

    meta.ok(complete(
        "b",
        "k",
        "u1",
        vec![(1, etag_of(11)), (2, etag_of(12))],
        "v9",
        5 << 20,
    ));
    let record = meta.view().segment(&seg.object_id, 1).unwrap().unwrap();
    assert_eq!(record.owner, owner("b", "k", "v9"));
    assert_eq!(record.segment.placement[3], "disk-7");
    assert!(
        meta.view()
            .segment(&segment(13).object_id, 1)
            .unwrap()
            .is_none()
    );
}

#[test]
fn upgrade_indexes_old_state_and_moves_old_repair_reports() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k1", "v1", 1));
    meta.ok(put("b", "k2", "v2", 2));
    meta.ok(create_upload("b", "k3", "u1"));
    meta.ok(put_part("b", "k3", "u1", part(1, 10, 3)));
    meta.ok(Command::EnqueueWork {
        item: WorkItem::DeleteSegments {
            segments: vec![segment(50)],
        },
    });
    // Make it look like state an earlier release wrote: no index, repair
    // reports in the deletion queue.
    let txn = meta.db.begin_write().unwrap();
    {
        let mut segments = txn.open_table(tables::SEGMENTS).unwrap();
        let keys: Vec<Vec<u8>> = segments
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().to_vec())
            .collect();
        assert_eq!(keys.len(), 3);
        for k in keys {
            segments.remove(k.as_slice()).unwrap();
        }
        let mut work = txn.open_table(tables::WORK).unwrap();
        for (id, seed) in [(100u64, 2u64), (101, 77)] {
            let item = WorkItem::Repair {
                bucket: "b".into(),
                key: "k2".into(),
                version_id: "v2".into(),
                object_id: segment(seed).object_id,
                part: 1,
                shards: vec![1],
            };
            work.insert(
                id.to_be_bytes().as_slice(),
                postcard::to_allocvec(&item).unwrap().as_slice(),
            )
            .unwrap();
        }
    }
    txn.commit().unwrap();

    let txn = meta.db.begin_write().unwrap();
    tessera_raft::upgrade::upgrade(&txn).unwrap();
    txn.commit().unwrap();
    for (seed, want) in [
        (1, owner("b", "k1", "v1")),
        (2, owner("b", "k2", "v2")),
        (
            3,
            SegmentOwner::Upload {
                bucket: "b".into(),
                key: "k3".into(),
                upload_id: "u1".into(),
                number: 1,
            },
        ),
    ] {
        let record = meta.view().segment(&segment(seed).object_id, 1).unwrap();
        assert_eq!(record.unwrap().owner, want, "segment {seed}");
    }
    assert_eq!(repairs(&meta), vec![(2, vec![1])]);
    let deletions = meta.view().deletions(10).unwrap();
    assert_eq!(deletions.len(), 1, "only the deletion stays in its queue");
    assert_eq!(meta.view().queue_lengths().unwrap().deletions, 1);

    // Running it again changes nothing.
    let before = meta.dump();
    let txn = meta.db.begin_write().unwrap();
    tessera_raft::upgrade::upgrade(&txn).unwrap();
    txn.commit().unwrap();
    assert_eq!(meta.dump(), before);
}
