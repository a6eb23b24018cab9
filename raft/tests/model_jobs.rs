//! The background queues of the metadata model: the segment index, the
//! repair queue and the deletion queue, and the renaming of the stores
//! they and the placements name, applied to redb without raft.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model_support;

use model_support::*;
use redb::ReadableTable;
use tessera_raft::command::{ApplyError, Command};
use tessera_raft::model::{
    NodeState, ObjectData, RepairItem, SegmentOwner, StorageNode, Versioning, WorkItem,
};
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

/// Every store id the metadata names: in versions, uploaded parts, the
/// segment index's view of them, queued deletions and node records.
fn named_stores(meta: &Meta) -> std::collections::BTreeSet<String> {
    let view = meta.view();
    let mut names = std::collections::BTreeSet::new();
    for (_, record) in view.segments_after(None, usize::MAX).unwrap() {
        names.extend(record.segment.placement);
    }
    for (_, segments) in view.deletions(usize::MAX).unwrap() {
        names.extend(segments.into_iter().flat_map(|s| s.placement));
    }
    names.extend(view.store_records().unwrap().into_iter().map(|n| n.id));
    names
}

fn legacy_to_new() -> Vec<(String, String)> {
    (0..6)
        .map(|i| (format!("disk-{i}"), format!("st-{i:016x}")))
        .collect()
}

#[test]
fn renaming_stores_rewrites_every_placement_and_replays_as_a_no_op() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    // A version of two parts, one missing a shard (queued for repair).
    let mut two_parts = version("b", "big", "v1", 1);
    let mut p1 = part(1, 5 << 20, 1);
    p1.segment.missing = vec![2];
    two_parts.data = ObjectData::Parts(vec![p1, part(2, 10, 2)]);
    meta.ok(Command::PutObject {
        version: two_parts,
        precondition: None,
    });
    // An inline version, a delete marker, an upload in progress.
    let mut inline = version("b", "small", "v2", 3);
    inline.data = ObjectData::Inline(vec![7; 100]);
    meta.ok(Command::PutObject {
        version: inline,
        precondition: None,
    });
    meta.ok(delete("b", "small", None, "m1"));
    meta.ok(create_upload("b", "mp", "u1"));
    meta.ok(put_part("b", "mp", "u1", part(1, 10, 4)));
    // A deletion queued: its shards are still on the named stores.
    meta.ok(put("b", "gone", "v3", 5));
    meta.ok(delete("b", "gone", Some("v3"), "m2"));
    meta.ok(Command::PutNode {
        node: StorageNode {
            id: "disk-1".into(),
            site: "dc-a".into(),
            zone: "z".into(),
            address: "/data/disks/disk-1".into(),
            capacity: 1,
            state: NodeState::Up,
            since: 0,
        },
    });
    let olds: Vec<String> = (0..6).map(|i| format!("disk-{i}")).collect();
    assert_eq!(named_stores(&meta), olds.iter().cloned().collect());
    let repairs_before = repairs(&meta);
    assert_eq!(repairs_before, vec![(1, vec![2])]);

    let mut renames = legacy_to_new();
    renames.push(("disk-77".into(), "st-00000000000000ff".into()));
    let rename = Command::RenameStores { renames };
    meta.ok(rename.clone());

    let news: std::collections::BTreeSet<String> =
        legacy_to_new().into_iter().map(|(_, new)| new).collect();
    assert_eq!(named_stores(&meta), news);
    let v = meta.view().object("b", "big", Some("v1")).unwrap().unwrap();
    for segment in v.segments() {
        assert_eq!(
            segment.placement,
            (0..6).map(|i| format!("st-{i:016x}")).collect::<Vec<_>>(),
            "shard order is kept"
        );
    }
    assert_eq!(v.segments()[0].missing, vec![2]);
    let parts = meta
        .view()
        .list_parts("b", "mp", "u1", 0, 10)
        .unwrap()
        .parts;
    assert_eq!(parts[0].segment.placement[3], "st-0000000000000003");
    let deletions = meta.view().deletions(10).unwrap();
    assert_eq!(deletions[0].1[0].placement[5], "st-0000000000000005");
    let nodes = meta.view().store_records().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].id, "st-0000000000000001");
    assert_eq!(nodes[0].address, "/data/disks/disk-1");
    assert_eq!(
        repairs(&meta),
        repairs_before,
        "repairs name shard indexes only"
    );
    let inline = meta
        .view()
        .object("b", "small", Some("v2"))
        .unwrap()
        .unwrap();
    assert_eq!(inline.data, ObjectData::Inline(vec![7; 100]));

    // Replayed (a log entry applied again, or proposed again after a crash
    // before the stores were marked renamed): nothing changes.
    meta.ok_unchanged(rename);

    // Work after the rename names the new ids, and later commands work.
    meta.ok(Command::CompleteRepair {
        object_id: segment(1).object_id,
        part: 1,
        rebuilt: vec![(2, "st-0000000000000004".into())],
        sound: vec![],
    });
    assert!(repairs(&meta).is_empty());
}

#[test]
fn renames_apply_at_once_and_an_old_id_may_not_repeat() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(put("b", "k", "v1", 1));
    meta.ok(Command::RenameStores {
        renames: vec![
            ("disk-0".into(), "disk-1".into()),
            ("disk-1".into(), "disk-0".into()),
        ],
    });
    let v = meta.view().object("b", "k", Some("v1")).unwrap().unwrap();
    assert_eq!(
        v.segments()[0].placement,
        ["disk-1", "disk-0", "disk-2", "disk-3", "disk-4", "disk-5"]
    );

    let before = meta.dump();
    assert!(matches!(
        meta.apply(Command::RenameStores {
            renames: vec![
                ("disk-2".into(), "st-0000000000000001".into()),
                ("disk-2".into(), "st-0000000000000002".into()),
            ],
        }),
        Err(ApplyError::InvalidRequest(_))
    ));
    assert_eq!(meta.dump(), before);
}

#[test]
fn renaming_covers_more_records_than_one_scan_batch() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    for seed in 0..1200 {
        meta.ok(put("b", &format!("k{seed:05}"), "v", seed));
    }
    meta.ok(Command::RenameStores {
        renames: legacy_to_new(),
    });
    let news: std::collections::BTreeSet<String> =
        legacy_to_new().into_iter().map(|(_, new)| new).collect();
    assert_eq!(named_stores(&meta), news);
    assert_eq!(meta.view().segment_count().unwrap(), 1200);
}

/// Commands are kept in the raft log, postcard-encoded with the variant's
/// position: the rename is appended after every earlier command.
#[test]
fn the_rename_command_is_appended_to_the_command_numbering() {
    let encoded = postcard::to_allocvec(&Command::RenameStores {
        renames: vec![("a".into(), "b".into())],
    })
    .unwrap();
    assert_eq!(encoded, [19, 1, 1, b'a', 1, b'b']);
    let complete = postcard::to_allocvec(&Command::CompleteWork { ids: vec![] }).unwrap();
    assert_eq!(complete, [17, 0]);
}

/// A node of `site` serving the stores `disk-{first}..disk-{first+6}`.
fn node_of(id: u64, site: &str, first: usize) -> Command {
    Command::RegisterNode {
        node: tessera_raft::model::NodeRecord {
            id,
            address: format!("127.0.0.1:{id}"),
            site: Some(site.into()),
            zone: None,
            stores: (first..first + 6).map(|i| format!("disk-{i}")).collect(),
            capacity: 0,
            used: 0,
            state: NodeState::Up,
            since: 0,
            heartbeat: 0,
        },
    }
}

/// A 4+2 segment kept as a copy on each of two sites (disk-0..6 on dc-a,
/// disk-6..12 on dc-b), written at `seed` lacking `missing`.
fn copied(seed: u64, missing: Vec<u16>) -> tessera_raft::model::ObjectVersion {
    let mut v = version("b", &format!("k{seed}"), &format!("v{seed}"), seed);
    if let ObjectData::Parts(parts) = &mut v.data {
        parts[0].segment.placement = (0..12).map(|i| format!("disk-{i}")).collect();
        parts[0].segment.missing = missing;
    }
    v
}

fn pending(meta: &Meta, site: &str) -> Vec<(u64, u16, i64)> {
    meta.view()
        .site_copies(site, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|c| {
            (
                u64::from_be_bytes(c.object_id[..8].try_into().unwrap()),
                c.copy,
                c.queued,
            )
        })
        .collect()
}

/// What each site lacks: (site, segments, shards, bytes).
fn site_totals(meta: &Meta) -> Vec<(String, u64, u64, u64)> {
    meta.view()
        .site_copy_totals()
        .unwrap()
        .into_iter()
        .map(|(s, t)| (s, t.segments, t.shards, t.bytes))
        .collect()
}

#[test]
fn copies_a_site_lacks_queue_per_site_oldest_first_until_written() {
    let mut meta = Meta::with_bucket("b", Versioning::Enabled);
    meta.ok(node_of(1, "dc-a", 0));
    meta.ok(node_of(2, "dc-b", 6));
    // Written at 30 without dc-b's copy, at 20 without dc-a's, at 10 without
    // dc-b's; at 40 with dc-b's copy short of only two shards (m = 2): that
    // copy is readable there, so those shards are the repair queue's.
    for (seed, missing) in [
        (30, (6..12).collect()),
        (20, (0..6).collect()),
        (10, vec![6, 7, 8]),
        (40, vec![7, 9]),
    ] {
        meta.ok(Command::PutObject {
            version: copied(seed, missing),
            precondition: None,
        });
    }
    assert_eq!(pending(&meta, "dc-b"), vec![(10, 1, 10), (30, 1, 30)]);
    assert_eq!(pending(&meta, "dc-a"), vec![(20, 0, 20)]);
    assert_eq!(
        site_totals(&meta),
        vec![("dc-a".into(), 1, 6, 20), ("dc-b".into(), 2, 12, 40)]
    );
    assert_eq!(repairs(&meta), vec![(40, vec![7, 9])]);
    // A report of a bad shard in a queued copy is that queue's.
    meta.ok(repair(30, vec![2, 7]));
    assert_eq!(repairs(&meta), vec![(30, vec![2]), (40, vec![7, 9])]);

    // Three of the six shards of segment 30's dc-b copy written: still more
    // than m short, still queued.
    let seg30 = segment(30);
    let write = |rebuilt: std::ops::Range<u16>| Command::CompleteRepair {
        object_id: seg30.object_id,
        part: 1,
        rebuilt: rebuilt.map(|i| (i, format!("disk-{i}"))).collect(),
        sound: Vec::new(),
    };
    meta.ok(write(6..9));
    assert_eq!(pending(&meta, "dc-b"), vec![(10, 1, 10), (30, 1, 30)]);
    // Two more: the copy can be read on dc-b; it leaves the queue and its
    // last missing shard goes to repair.
    meta.ok(write(9..11));
    assert_eq!(pending(&meta, "dc-b"), vec![(10, 1, 10)]);
    assert_eq!(repairs(&meta), vec![(30, vec![2, 11]), (40, vec![7, 9])]);
    let record = meta.view().segment(&seg30.object_id, 1).unwrap().unwrap();
    assert_eq!(record.segment.missing, vec![11]);

    // Deleting a version for good takes its copies off the queue with it.
    meta.ok(Command::DeleteObject {
        bucket: "b".into(),
        key: "k20".into(),
        version_id: Some("v20".into()),
        marker_version_id: String::new(),
        now: 50,
        owner: "TKowner".into(),
        precondition: None,
    });
    assert_eq!(pending(&meta, "dc-a"), vec![]);
    assert_eq!(site_totals(&meta), vec![("dc-b".into(), 1, 6, 10)]);
}
