//! Brings state written by an earlier release up to date, inside one write
//! transaction, when the state file opens and after a snapshot is
//! installed. Each step is a pure function of the stored state, so every
//! member reaches the same result, and each runs once.
//!
//! - The [`SEGMENTS`](tables::SEGMENTS) index did not exist: every segment
//!   of a stored version or uploaded part is indexed, and the shards each
//!   was written without are queued for repair.
//! - Repair reports were kept in the deletion queue: they move to the
//!   [`REPAIRS`](tables::REPAIRS) queue (those of segments nobody
//!   references any more are dropped).

use redb::{ReadableTable, WriteTransaction};

use crate::apply::{RawTableMut, merge_repair};
use crate::error::MetaError;
use crate::model::{MultipartUpload, ObjectVersion, PartData, Segment, SegmentOwner, WorkItem};
use crate::tables::{self, decode, encode};

/// Counter set once every version and part is in the segment index.
const SEGMENTS_INDEXED: &[u8] = b"segments_indexed";

/// Runs every upgrade step that has not run yet.
pub fn upgrade(txn: &WriteTransaction) -> Result<(), MetaError> {
    let mut counters = txn.open_table(tables::COUNTERS)?;
    let mut segments = txn.open_table(tables::SEGMENTS)?;
    let mut repairs = txn.open_table(tables::REPAIRS)?;
    if counters.get(SEGMENTS_INDEXED)?.is_none() {
        let indexed = index_segments(txn, &mut segments, &mut repairs)?;
        counters.insert(SEGMENTS_INDEXED, 1u64.to_be_bytes().as_slice())?;
        if indexed > 0 {
            tracing::info!(segments = indexed, "indexed the segments of existing data");
        }
    }
    let moved = move_repairs(txn, &segments, &mut repairs)?;
    if moved > 0 {
        tracing::info!(items = moved, "moved repair reports to the repair queue");
    }
    Ok(())
}

/// Indexes every segment of every version and uploaded part.
fn index_segments(
    txn: &WriteTransaction,
    segments: &mut RawTableMut<'_>,
    repairs: &mut RawTableMut<'_>,
) -> Result<u64, MetaError> {
    let mut count = 0;
    let mut index = |segs: &[Segment], owner: &SegmentOwner| -> Result<(), MetaError> {
        let value = encode(owner)?;
        for seg in segs {
            let key = tables::segment_key(&seg.object_id, seg.part);
            segments.insert(key.as_slice(), value.as_slice())?;
            merge_repair(repairs, &seg.object_id, seg.part, &seg.missing)?;
            count += 1;
        }
        Ok(())
    };
    let versions = txn.open_table(tables::VERSIONS)?;
    for entry in versions.iter()? {
        let (_, value) = entry?;
        let v: ObjectVersion = decode(value.value())?;
        let owner = SegmentOwner::Version {
            bucket: v.bucket.clone(),
            key: v.key.clone(),
            version_id: v.version_id.clone(),
        };
        index(&v.segments(), &owner)?;
    }
    let uploads = txn.open_table(tables::UPLOADS)?;
    let parts = txn.open_table(tables::PARTS)?;
    for entry in uploads.iter()? {
        let (key, value) = entry?;
        let upload: MultipartUpload = decode(value.value())?;
        let end = tables::after_component(key.value().to_vec());
        for part in parts.range::<&[u8]>(key.value()..end.as_slice())? {
            let (_, value) = part?;
            let part: PartData = decode(value.value())?;
            let owner = SegmentOwner::Upload {
                bucket: upload.bucket.clone(),
                key: upload.key.clone(),
                upload_id: upload.upload_id.clone(),
                number: part.number,
            };
            index(std::slice::from_ref(&part.segment), &owner)?;
        }
    }
    Ok(count)
}

/// Moves repair reports out of the deletion queue.
fn move_repairs(
    txn: &WriteTransaction,
    segments: &RawTableMut<'_>,
    repairs: &mut RawTableMut<'_>,
) -> Result<u64, MetaError> {
    let mut work = txn.open_table(tables::WORK)?;
    let mut found = Vec::new();
    for entry in work.iter()? {
        let (key, value) = entry?;
        if let WorkItem::Repair {
            object_id,
            part,
            shards,
            ..
        } = decode(value.value())?
        {
            found.push((key.value().to_vec(), object_id, part, shards));
        }
    }
    for (queue_key, object_id, part, shards) in &found {
        let segment = tables::segment_key(object_id, *part);
        if segments.get(segment.as_slice())?.is_some() {
            merge_repair(repairs, object_id, *part, shards)?;
        }
        work.remove(queue_key.as_slice())?;
    }
    Ok(found.len() as u64)
}
