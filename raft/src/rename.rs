//! [`Command::RenameStores`](crate::command::Command::RenameStores): stores
//! change ids everywhere the metadata names them.
//!
//! Store ids live in segment placements (of stored versions, of uploaded
//! parts, and of the segments queued for deletion, whose shards GC still
//! has to remove from the named stores) and in storage node records. The
//! repair queue names shard indexes only, which do not change. Each table
//! is scanned in key order a batch at a time, so a large metadata set is
//! renamed without holding it all in memory; records that name no old id
//! are left as they are, which makes a repeated rename change nothing.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::apply::RawTableMut;
use crate::command::ApplyError;
use crate::error::MetaError;
use crate::model::{ObjectData, ObjectVersion, PartData, Segment, StorageNode, WorkItem};
use crate::tables::{decode, encode};

/// Records read per batch of a table scan.
const BATCH: usize = 512;

/// Old id → new id, checked.
pub(crate) struct Renames(BTreeMap<String, String>);

impl Renames {
    /// The renames of a command; refused when an old id repeats.
    pub(crate) fn new(pairs: &[(String, String)]) -> Result<Renames, ApplyError> {
        let mut map = BTreeMap::new();
        for (old, new) in pairs {
            if map.insert(old.clone(), new.clone()).is_some() {
                return Err(ApplyError::InvalidRequest(format!(
                    "store {old} is renamed twice"
                )));
            }
        }
        Ok(Renames(map))
    }

    /// Renames the stores of a segment's placement; true if any changed.
    fn segment(&self, segment: &mut Segment) -> bool {
        let mut changed = false;
        for store in &mut segment.placement {
            if let Some(new) = self.0.get(store) {
                store.clone_from(new);
                changed = true;
            }
        }
        changed
    }

    /// Renames the stores of every segment in `segments`; true if any changed.
    fn segments<'a>(&self, segments: impl Iterator<Item = &'a mut Segment>) -> bool {
        segments.fold(false, |changed, s| self.segment(s) | changed)
    }
}

/// The tables that name stores.
pub(crate) struct Tables<'a, 'txn> {
    /// Object versions.
    pub versions: &'a mut RawTableMut<'txn>,
    /// Parts of uploads in progress.
    pub parts: &'a mut RawTableMut<'txn>,
    /// The deletion queue.
    pub work: &'a mut RawTableMut<'txn>,
    /// Storage nodes, keyed by id.
    pub nodes: &'a mut RawTableMut<'txn>,
}

impl Tables<'_, '_> {
    /// Applies `renames` to every table.
    pub(crate) fn rename(self, renames: &Renames) -> Result<(), MetaError> {
        let mut changed = rewrite(self.versions, |v: &mut ObjectVersion| match &mut v.data {
            ObjectData::Parts(parts) => renames.segments(parts.iter_mut().map(|p| &mut p.segment)),
            ObjectData::Inline(_) | ObjectData::DeleteMarker => false,
        })?;
        changed += rewrite(self.parts, |p: &mut PartData| {
            renames.segment(&mut p.segment)
        })?;
        changed += rewrite(self.work, |item: &mut WorkItem| match item {
            WorkItem::DeleteSegments { segments } => renames.segments(segments.iter_mut()),
            WorkItem::Repair { .. } => false,
        })?;
        changed += rename_nodes(self.nodes, renames)?;
        if changed > 0 {
            tracing::info!(
                records = changed,
                stores = renames.0.len(),
                "renamed stores in the metadata"
            );
        }
        Ok(())
    }
}

/// Re-encodes every record of `table` that `change` changes (it returns
/// true when it changed the record); returns how many it changed.
fn rewrite<T: Serialize + DeserializeOwned>(
    table: &mut RawTableMut<'_>,
    mut change: impl FnMut(&mut T) -> bool,
) -> Result<u64, MetaError> {
    let mut after: Option<Vec<u8>> = None;
    let mut count = 0;
    loop {
        let mut changed = Vec::new();
        let mut last = None;
        {
            let start = match &after {
                Some(key) => Bound::Excluded(key.as_slice()),
                None => Bound::Unbounded,
            };
            for entry in table.range::<&[u8]>((start, Bound::Unbounded))?.take(BATCH) {
                let (key, value) = entry?;
                let mut record: T = decode(value.value())?;
                if change(&mut record) {
                    changed.push((key.value().to_vec(), encode(&record)?));
                }
                last = Some(key.value().to_vec());
            }
        }
        for (key, value) in &changed {
            table.insert(key.as_slice(), value.as_slice())?;
        }
        count += changed.len() as u64;
        match last {
            Some(key) => after = Some(key),
            None => return Ok(count),
        }
    }
}

/// Moves node records to their new ids (a record already at the new id is replaced).
fn rename_nodes(nodes: &mut RawTableMut<'_>, renames: &Renames) -> Result<u64, MetaError> {
    let mut moved = Vec::new();
    for (old, new) in &renames.0 {
        if let Some(bytes) = nodes.get(old.as_bytes())? {
            let mut node: StorageNode = decode(bytes.value())?;
            node.id.clone_from(new);
            moved.push((old, node));
        }
    }
    // Removed first, then inserted: a swap of two ids keeps both records.
    for (old, _) in &moved {
        nodes.remove(old.as_bytes())?;
    }
    for (_, node) in &moved {
        nodes.insert(node.id.as_bytes(), encode(node)?.as_slice())?;
    }
    Ok(moved.len() as u64)
}
