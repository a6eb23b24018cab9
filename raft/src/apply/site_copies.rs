//! The `site_copies` queue: copies of segments that their site does not
//! hold yet.
//!
//! A segment kept as a copy per site is written with every copy, or with
//! some left for later: the copy of a site that was down, or every copy
//! but the writer's own with asynchronous site replication. Such a copy
//! lacks more than `m` of its shards ([`Segment::absent_copies`]); instead
//! of the repair queue it goes to this one, which the site replicator
//! drains oldest first, site by site. Per site the queue keeps its order
//! (`site_copy_order`) and its totals (`site_copy_totals`), so the lag and
//! the bytes behind are read without a scan. A copy leaves the queue once
//! it can be read on its site (its shards that are still missing then go
//! to the repair queue), or with its segment.

use redb::ReadableTable;

use super::{Applier, Step};
use crate::model::{Millis, NodeRecord, PendingCopy, Segment, SiteCopyTotals};
use crate::tables::{self, decode, encode};

impl Applier<'_> {
    /// Queues the copies of `segment` its sites lack that are not queued
    /// yet, as of `now`; returns the positions of every absent copy (they
    /// are this queue's, not the repair queue's).
    pub(super) fn queue_site_copies(&mut self, segment: &Segment, now: Millis) -> Step<Vec<u16>> {
        let mut deferred = Vec::new();
        for copy in segment.absent_copies() {
            deferred.extend(segment.copy_positions(copy));
            let key = tables::site_copy_key(&segment.object_id, segment.part, copy);
            if self.site_copies.get(key.as_slice())?.is_some() {
                continue;
            }
            let pending = PendingCopy {
                object_id: segment.object_id,
                part: segment.part,
                copy,
                width: segment.copy_width(),
                site: self.site_of(segment, copy)?,
                bytes: segment.size,
                queued: now,
            };
            self.site_copies
                .insert(key.as_slice(), encode(&pending)?.as_slice())?;
            self.site_copy_order
                .insert(tables::site_order_key(&pending).as_slice(), [].as_slice())?;
            self.add_to_totals(&pending, 1)?;
        }
        Ok(deferred)
    }

    /// After `segment`'s missing shards changed: its queued copies that can
    /// now be read on their site leave the queue, their shards still
    /// missing going to the repair queue.
    pub(super) fn settle_site_copies(&mut self, segment: &Segment) -> Step<()> {
        let absent = segment.absent_copies();
        for pending in self.queued_copies(&segment.object_id, segment.part)? {
            if absent.contains(&pending.copy) {
                continue;
            }
            self.unqueue_copy(&pending)?;
            let positions = segment.copy_positions(pending.copy);
            let left: Vec<u16> = segment
                .missing
                .iter()
                .copied()
                .filter(|p| positions.contains(p))
                .collect();
            self.queue_repair(&segment.object_id, segment.part, &left)?;
        }
        Ok(())
    }

    /// Forgets every queued copy of a segment (its data is going away).
    pub(super) fn forget_site_copies(&mut self, object_id: &[u8; 16], part: u32) -> Step<()> {
        for pending in self.queued_copies(object_id, part)? {
            self.unqueue_copy(&pending)?;
        }
        Ok(())
    }

    /// `shards` of a segment without those of its queued copies.
    pub(super) fn outside_queued_copies(
        &self,
        object_id: &[u8; 16],
        part: u32,
        shards: &[u16],
    ) -> Step<Vec<u16>> {
        let queued = self.queued_copies(object_id, part)?;
        Ok(shards
            .iter()
            .copied()
            .filter(|&s| !queued.iter().any(|c| c.positions().contains(&s)))
            .collect())
    }

    /// The queued copies of one segment.
    fn queued_copies(&self, object_id: &[u8; 16], part: u32) -> Step<Vec<PendingCopy>> {
        let start = tables::site_copy_key(object_id, part, 0);
        let end = tables::site_copy_key(object_id, part, u16::MAX);
        let mut out = Vec::new();
        for entry in self
            .site_copies
            .range::<&[u8]>(start.as_slice()..=end.as_slice())?
        {
            out.push(decode::<PendingCopy>(entry?.1.value())?);
        }
        Ok(out)
    }

    /// Takes one copy off the queue, its order and its site's totals.
    fn unqueue_copy(&mut self, pending: &PendingCopy) -> Step<()> {
        let key = tables::site_copy_key(&pending.object_id, pending.part, pending.copy);
        self.site_copies.remove(key.as_slice())?;
        self.site_copy_order
            .remove(tables::site_order_key(pending).as_slice())?;
        self.add_to_totals(pending, -1)
    }

    /// Adds `pending` to (`sign` 1) or takes it from (-1) what its site
    /// lacks; a site that lacks nothing leaves the table.
    fn add_to_totals(&mut self, pending: &PendingCopy, sign: i128) -> Step<()> {
        let site = pending.site.as_bytes();
        let mut totals = match self.site_copy_totals.get(site)? {
            Some(v) => decode::<SiteCopyTotals>(v.value())?,
            None => SiteCopyTotals::default(),
        };
        let add = |n: u64, d: u64| {
            (i128::from(n) + sign * i128::from(d)).clamp(0, i128::from(u64::MAX)) as u64
        };
        totals.segments = add(totals.segments, 1);
        totals.shards = add(totals.shards, u64::from(pending.width));
        totals.bytes = add(totals.bytes, pending.bytes);
        if totals.segments == 0 {
            self.site_copy_totals.remove(site)?;
        } else {
            self.site_copy_totals
                .insert(site, encode(&totals)?.as_slice())?;
        }
        Ok(())
    }

    /// The site of the storage node serving any store of copy `copy` of
    /// `segment` (empty when no node record names one).
    fn site_of(&self, segment: &Segment, copy: u16) -> Step<String> {
        let positions = segment.copy_positions(copy);
        let stores: Vec<&String> = segment
            .placement
            .iter()
            .enumerate()
            .filter(|(i, _)| u16::try_from(*i).is_ok_and(|i| positions.contains(&i)))
            .map(|(_, s)| s)
            .collect();
        for entry in self.storage_nodes.iter()? {
            let node = decode::<NodeRecord>(entry?.1.value())?;
            if node.stores.iter().any(|s| stores.contains(&s)) {
                return Ok(node.site.unwrap_or_default());
            }
        }
        Ok(String::new())
    }
}
