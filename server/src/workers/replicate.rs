//! The site replicator: writes the copies that sites lack of the segments
//! kept as a copy per site, from the metadata's `site_copies` queue.
//!
//! A copy is queued when a segment is written without it: with
//! asynchronous site replication every copy but the writing gateway's own
//! site's, and with synchronous replication the copy of a site that was
//! down. Each pass (on the metadata leader) takes the oldest copies of
//! every site in turn and puts their shards back as `rebuild` does: copied
//! as they are from the copy that exists, onto the site's stores, each
//! verified there (by its node, so it crosses the link once), then one
//! `CompleteRepair` per segment.
//! The queue lives in raft, so a restart or a new leader picks it up where
//! it stood; the rate limit (`replication_rate_mib`) keeps the link and
//! the disks for clients.
//!
//! Every member publishes what each site lacks (copies, bytes, and the
//! seconds the oldest has waited: `tessera_site_replication_*`), and
//! `GET /admin/v1/replication` names the objects that have only one
//! site's copy.

use std::collections::BTreeSet;
use std::time::Instant;

use metrics::gauge;
use tessera_raft::model::{PendingCopy, SegmentOwner, SiteCopyTotals};
use tessera_raft::node::MetaNode;
use tessera_raft::{MetaError, SegmentRecord};

use super::job::{Job, JobError, JobReport, Pass, Progress};
use super::rebuild::{Rebuilder, Retries};
use crate::admin::{OneCopyObject, ReplicationStatus, SiteBacklog};
use crate::auth::now_millis;
use crate::data::DataPlane;

/// Copies read per site and pass.
const BATCH: usize = 16;
/// Segments written at once.
const PARALLEL: usize = 2;
/// How often the lag is published while a pass copies.
const LAG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The site replication job.
pub struct ReplicateJob {
    rebuilder: Rebuilder,
    retries: Retries,
    /// Sites whose gauges were published (kept at 0 while they lack nothing).
    published: BTreeSet<String>,
}

/// What the queue holds of one site: its totals and its oldest copies,
/// each with its segment (`None` when nothing references it any more).
struct SiteQueue {
    site: String,
    totals: SiteCopyTotals,
    copies: Vec<(PendingCopy, Option<SegmentRecord>)>,
}

/// What the queue holds, site by site.
struct Queue {
    sites: Vec<SiteQueue>,
}

impl ReplicateJob {
    /// Replication over the data plane's stores, writing at most
    /// `bytes_per_sec` (0: no limit).
    pub fn new(data: DataPlane, bytes_per_sec: u64) -> Self {
        ReplicateJob {
            rebuilder: Rebuilder::new(data, bytes_per_sec),
            retries: Retries::default(),
            published: BTreeSet::new(),
        }
    }

    /// Publishes what each site lacks.
    fn publish(&mut self, queue: &Queue, progress: &Progress) {
        let now = now_millis();
        let mut pending = 0;
        for SiteQueue {
            site,
            totals,
            copies,
        } in &queue.sites
        {
            let oldest = copies.first().map_or(now, |(c, _)| c.queued);
            publish_lag(&[(site.clone(), oldest)]);
            gauge!("tessera_site_replication_pending_bytes", "site" => site.clone())
                .set(totals.bytes as f64);
            gauge!("tessera_site_replication_pending_segments", "site" => site.clone())
                .set(totals.segments as f64);
            self.published.insert(site.clone());
            pending += totals.shards;
        }
        // Every site the stores stand in shows, at 0 while it lacks nothing.
        self.published
            .extend(self.rebuilder.data().stores().sites());
        for site in &self.published {
            if !queue.sites.iter().any(|q| &q.site == site) {
                for name in [
                    "tessera_site_replication_lag_seconds",
                    "tessera_site_replication_pending_bytes",
                    "tessera_site_replication_pending_segments",
                ] {
                    gauge!(name, "site" => site.clone()).set(0.0);
                }
            }
        }
        progress.set_queued(pending);
    }
}

#[async_trait::async_trait]
impl Job for ReplicateJob {
    async fn pass(&mut self, progress: &Progress) -> Result<Pass, JobError> {
        let meta = self.rebuilder.data().meta().clone();
        // A member that does not lead only publishes: each site's oldest
        // copy is all the lag needs.
        let leads = meta.leads();
        let queue = read_queue(&meta, if leads { BATCH } else { 1 }).await?;
        self.publish(&queue, progress);
        if !leads {
            return Ok(Pass::Idle);
        }
        let queued = |seg: &([u8; 16], u32)| {
            queue
                .sites
                .iter()
                .any(|q| q.copies.iter().any(|(c, _)| (c.object_id, c.part) == *seg))
        };
        self.retries.refresh(self.rebuilder.data().stores(), queued);
        // The sites' oldest copies in turn: one site's backlog never holds
        // another's back.
        let now = Instant::now();
        let mut chosen: Vec<(&PendingCopy, Option<&SegmentRecord>)> = Vec::new();
        let longest = queue
            .sites
            .iter()
            .map(|q| q.copies.len())
            .max()
            .unwrap_or(0);
        for i in 0..longest {
            for q in &queue.sites {
                if let Some((copy, record)) = q.copies.get(i)
                    && self.retries.ready(&(copy.object_id, copy.part), now)
                    && !chosen
                        .iter()
                        .any(|(c, _)| (c.object_id, c.part) == (copy.object_id, copy.part))
                {
                    chosen.push((copy, record.as_ref()));
                }
            }
        }
        chosen.truncate(BATCH);
        let worked = chosen.len();
        // Copies onto a site that hangs may take their whole timeouts: the
        // lag goes on being published meanwhile, from the oldest copies
        // this pass read (at most a pass's length high once they are done).
        let oldest: Vec<(String, i64)> = queue
            .sites
            .iter()
            .filter_map(|q| Some((q.site.clone(), q.copies.first()?.0.queued)))
            .collect();
        let copying = async {
            for group in chosen.chunks(PARALLEL) {
                let outcomes =
                    futures::future::join_all(group.iter().map(|(copy, record)| async {
                        match record {
                            Some(record) => {
                                let lacking: Vec<u16> = copy
                                    .positions()
                                    .filter(|p| record.segment.missing.contains(p))
                                    .collect();
                                self.rebuilder.rebuild(&lacking, record).await
                            }
                            None => Default::default(),
                        }
                    }))
                    .await;
                for ((copy, record), outcome) in group.iter().zip(outcomes) {
                    self.rebuilder
                        .settle(
                            (copy.object_id, copy.part),
                            record.is_some(),
                            outcome,
                            progress,
                            &mut self.retries,
                        )
                        .await?;
                }
            }
            Ok::<_, JobError>(())
        };
        tokio::pin!(copying);
        let mut tick = tokio::time::interval(LAG_EVERY);
        loop {
            tokio::select! {
                done = &mut copying => break done?,
                _ = tick.tick() => publish_lag(&oldest),
            }
        }
        Ok(if worked == BATCH {
            Pass::More
        } else {
            Pass::Idle
        })
    }
}

/// Sets each site's lag from the time (ms) its oldest copy was queued.
fn publish_lag(oldest: &[(String, i64)]) {
    let now = now_millis();
    for (site, queued) in oldest {
        gauge!("tessera_site_replication_lag_seconds", "site" => site.clone())
            .set(lag_secs(now, *queued));
    }
}

/// Seconds between a copy queued at `queued` and `now` (ms), 0 when the
/// clocks disagree the other way.
fn lag_secs(now: i64, queued: i64) -> f64 {
    now.saturating_sub(queued).max(0) as f64 / 1000.0
}

/// Reads the queue: every site's totals and its `per_site` oldest copies.
async fn read_queue(meta: &MetaNode, per_site: usize) -> Result<Queue, MetaError> {
    meta.read_local(move |view| {
        let mut sites = Vec::new();
        for (site, totals) in view.site_copy_totals()? {
            let copies = view
                .site_copies(&site, per_site)?
                .into_iter()
                .map(|c| {
                    let record = view.segment(&c.object_id, c.part)?;
                    Ok((c, record))
                })
                .collect::<Result<Vec<_>, MetaError>>()?;
            sites.push(SiteQueue {
                site,
                totals,
                copies,
            });
        }
        Ok(Queue { sites })
    })
    .await
}

/// What the sites lack as the metadata here says: each site's backlog
/// (only `site`'s when given) and up to `limit` of the objects each
/// lacks, oldest first.
pub(crate) async fn backlog(
    meta: &MetaNode,
    site: Option<&str>,
    limit: usize,
) -> Result<(Vec<SiteBacklog>, Vec<OneCopyObject>), MetaError> {
    let queue = read_queue(meta, limit).await?;
    let now = now_millis();
    let mut sites = Vec::new();
    let mut objects = Vec::new();
    for SiteQueue {
        site: name,
        totals,
        copies,
    } in queue.sites
    {
        if site.is_some_and(|s| s != name) {
            continue;
        }
        let oldest = copies.first().map_or(now, |(c, _)| c.queued);
        sites.push(SiteBacklog {
            site: name.clone(),
            segments: totals.segments,
            shards: totals.shards,
            bytes: totals.bytes,
            lag_secs: lag_secs(now, oldest),
        });
        objects.extend(
            copies
                .into_iter()
                .filter_map(|(copy, record)| Some(one_copy_object(&name, &copy, record?.owner))),
        );
    }
    objects.sort_by_key(|o| o.written_ms);
    Ok((sites, objects))
}

/// The object (or upload part) `owner` names, as lacked by `site`.
fn one_copy_object(site: &str, copy: &PendingCopy, owner: SegmentOwner) -> OneCopyObject {
    let (bucket, key, version) = match owner {
        SegmentOwner::Version {
            bucket,
            key,
            version_id,
        } => (bucket, key, version_id),
        SegmentOwner::Upload {
            bucket,
            key,
            upload_id,
            number,
        } => (bucket, key, format!("upload {upload_id} part {number}")),
    };
    OneCopyObject {
        site: site.to_owned(),
        bucket,
        key,
        version,
        bytes: copy.bytes,
        written_ms: copy.queued,
    }
}

impl ReplicationStatus {
    /// The status as the admin API reports it now: the queue read afresh
    /// from `meta` (naming up to `limit` objects per site), progress from
    /// `report`.
    pub(crate) async fn read(
        meta: &MetaNode,
        report: &JobReport,
        limit: usize,
    ) -> Result<Self, MetaError> {
        let (sites, one_copy) = backlog(meta, None, limit).await?;
        let pending: u64 = sites.iter().map(|s| s.shards).sum();
        Ok(ReplicationStatus {
            done: sites.is_empty(),
            pending_shards: pending,
            eta_secs: (pending > 0 && report.items_per_sec > 0.0)
                .then(|| pending as f64 / report.items_per_sec),
            shards_per_sec: report.items_per_sec,
            sites,
            done_shards: report.done,
            bytes_copied: report.bytes,
            bytes_per_sec: report.bytes_per_sec,
            one_copy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_never_negative() {
        assert_eq!(lag_secs(10_500, 500), 10.0);
        assert_eq!(lag_secs(500, 10_500), 0.0);
    }
}
