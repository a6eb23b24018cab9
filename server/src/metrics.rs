//! Metrics: one Prometheus recorder per process, rendered on the admin
//! listener's `/metrics`, and the small helpers the rest of the server calls.
//!
//! Every metric name lives here, so dashboards have one place to look.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `tessera_s3_requests_total` | counter | `op`, `status` |
//! | `tessera_s3_request_duration_seconds` | histogram | `op` |
//! | `tessera_s3_bytes_in_total` / `tessera_s3_bytes_out_total` | counter | |
//! | `tessera_open_connections` / `tessera_connection_limit` (connections open now, and the most a listener allows) | gauge | `listener` (`s3`, `admin`) |
//! | `tessera_objects_stored` / `tessera_bytes_stored` | gauge | |
//! | `tessera_backend_errors_total` | counter | `store` |
//! | `tessera_store_up` | gauge | `store` |
//! | `tessera_store_capacity_bytes` / `tessera_store_free_bytes` (as the store's last answered probe said) | gauge | `store` |
//! | `tessera_node_state` | gauge | `node`, `state` |
//! | `tessera_raft_is_leader` / `tessera_raft_has_leader` / `tessera_raft_has_quorum` (1 or 0) | gauge | |
//! | `tessera_raft_term` / `tessera_raft_last_applied` / `tessera_raft_last_log_index` / `tessera_raft_voters` | gauge | |
//! | `tessera_raft_member_lag_entries` (on the leader: log entries each member, the leader included, has still to receive; 0 on the other members) | gauge | `member` |
//! | `tessera_raft_write_seconds` (a write's commit latency) / `tessera_raft_proposal_commands` / `tessera_raft_apply_batch` / `tessera_raft_log_batch_ops` | histogram | |
//! | `tessera_raft_log_commit_seconds` (one fsync'd commit of this member's raft log; an append is answered only after it, so it must stay well under the heartbeat interval) | histogram | |
//! | `tessera_raft_forced_failovers_total` | counter | |
//! | `tessera_raft_read_index_retries_total` (rounds of heartbeats the leader tried again to confirm a read: a follower answered late) | counter | |
//! | `tessera_gc_*` | counter / gauge | |
//! | `tessera_job_queued` | gauge | `worker` (`gc`, `repair`, `scrub`, `sweep`, `lifecycle`, `evacuate`) |
//! | `tessera_job_done_total` / `tessera_job_failed_total` / `tessera_job_bytes_total` / `tessera_job_failed_passes_total` | counter | `worker` |
//! | `tessera_repair_pending_shards` | gauge | |
//! | `tessera_repair_done` (1: nothing queued, no lost or draining store left to queue) / `tessera_repair_bytes_per_second` / `tessera_repair_eta_seconds` (0 when unknown) | gauge | |
//! | `tessera_segments_degraded` | gauge | `missing` |
//! | `tessera_segments_at_risk` (queued segments by how many more shards each can lose: `0`, one more loss makes them unreadable; below 0, unreadable until a store returns) | gauge | `redundancy_left` |
//! | `tessera_erasure_data_shards` / `tessera_erasure_parity_shards` (the code of new segments) | gauge | |
//! | `tessera_scrub_bad_shards_total` / `tessera_sweep_orphans_removed_total` | counter | |
//! | `tessera_lifecycle_objects_expired_total` / `tessera_lifecycle_versions_removed_total` / `tessera_lifecycle_delete_markers_removed_total` / `tessera_lifecycle_uploads_aborted_total` / `tessera_lifecycle_skipped_locked_total` (versions object lock kept) | counter | |
//! | `tessera_memory_budget_capacity_bytes` / `tessera_memory_budget_reserved_bytes` | gauge | `budget` (`write`, `read`) |
//! | `tessera_memory_budget_waits_total` | counter | `budget` |
//! | `tessera_certificate_expiry_timestamp_seconds` (Unix time the certificate, or the earliest of its chain, expires) | gauge | `certificate` (`s3`, `cluster`, `cluster-ca`) |
//! | `tessera_trace_spans_exported_total` / `tessera_trace_spans_dropped_total` (the queue was full) / `tessera_trace_export_failures_total` (batches the collector did not take), with `otlp_endpoint` set (gateways and nodes) | counter | |
//!
//! Counters an alert watches for a first increase (bad shards, failures,
//! waits) are published at 0 from the start, so `increase()` sees the
//! first one.
//!
//! A witness (`tessera serve --role witness`) serves the raft gauges, its
//! admin listener's connections and its certificates' expiry. The raft
//! gauges are refreshed at every scrape of the admin listener's `/metrics`.
//!
//! Background jobs are told apart by `worker`, not `job`: Prometheus gives
//! every scraped series the target's `job` label (and would rename this one
//! `exported_job`).
//!
//! A storage node (`tessera node`, with `metrics_listen`) serves its own:
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `tessera_job_done_total` / `tessera_job_bytes_total` (`worker="node-scrub"`: shards verified, their bytes) | counter | `worker` |
//! | `tessera_node_scrub_bad_shards_total` / `tessera_node_scrub_passes_total` | counter | |
//! | `tessera_node_bytes_served_total` (shard bytes sent to gateways) | counter | |
//! | `tessera_open_connections` / `tessera_connection_limit` | gauge | `listener` (`metrics`) |
//! | `tessera_certificate_expiry_timestamp_seconds` | gauge | `certificate` (`cluster`, `cluster-ca`) |

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use tracing::Instrument;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tessera_raft::node::MetaStatus;

/// Latency buckets in seconds: 1 ms to 2 min.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls are no-ops).
///
/// Returns `None` when another recorder was installed first (for example by
/// an embedding application): metrics then go there and `/metrics` is empty.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Renders every metric in the Prometheus text format.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

fn describe() {
    describe_counter!(
        "tessera_s3_requests_total",
        "S3 requests by operation and HTTP status"
    );
    describe_histogram!(
        "tessera_s3_request_duration_seconds",
        metrics::Unit::Seconds,
        "S3 request latency by operation"
    );
    describe_counter!(
        "tessera_s3_bytes_in_total",
        metrics::Unit::Bytes,
        "Object bytes received"
    );
    describe_counter!(
        "tessera_s3_bytes_out_total",
        metrics::Unit::Bytes,
        "Object bytes sent"
    );
    describe_gauge!("tessera_objects_stored", "Object versions stored");
    describe_gauge!(
        "tessera_bytes_stored",
        metrics::Unit::Bytes,
        "Bytes stored (logical)"
    );
    describe_counter!(
        "tessera_backend_errors_total",
        "Shard store errors by store"
    );
    describe_gauge!(
        "tessera_store_up",
        "1 when a shard store answered its last health probe"
    );
    describe_gauge!(
        "tessera_store_capacity_bytes",
        metrics::Unit::Bytes,
        "Size of a shard store's device, as its last answered health probe said"
    );
    describe_gauge!(
        "tessera_store_free_bytes",
        metrics::Unit::Bytes,
        "Bytes a shard store still has for new shards, as its last answered health probe said"
    );
    describe_gauge!("tessera_open_connections", "Connections open on a listener");
    describe_gauge!(
        "tessera_connection_limit",
        "Most connections a listener keeps open at once (more clients wait to be accepted)"
    );
    describe_gauge!(
        "tessera_certificate_expiry_timestamp_seconds",
        metrics::Unit::Seconds,
        "Unix time a certificate in use expires (the earliest of its chain)"
    );
    describe_gauge!(
        "tessera_node_state",
        "1 for the state (up, suspect, down, draining) a storage node is in, 0 for the others"
    );
    describe_gauge!(
        "tessera_raft_is_leader",
        "1 when this member is the raft leader"
    );
    describe_gauge!(
        "tessera_raft_has_leader",
        "1 when this member knows a leader"
    );
    describe_gauge!(
        "tessera_raft_has_quorum",
        "1 when this member sees a working quorum (a leader that heard from one, or a member that heard from its leader lately)"
    );
    describe_gauge!("tessera_raft_term", "Current raft term");
    describe_gauge!(
        "tessera_raft_last_log_index",
        "Index of the last entry in this member's raft log"
    );
    describe_gauge!(
        "tessera_raft_voters",
        "Voting members of the raft membership this member knows"
    );
    describe_gauge!(
        "tessera_raft_member_lag_entries",
        "On the leader: log entries a member has still to receive (0 on the other members)"
    );
    describe_gauge!(
        "tessera_raft_last_applied",
        "Log index last applied to the state machine"
    );
    describe_counter!(
        "tessera_gc_segments_deleted_total",
        "Segments whose shards GC removed"
    );
    describe_counter!("tessera_gc_shards_deleted_total", "Shard files GC removed");
    describe_counter!(
        "tessera_gc_errors_total",
        "GC attempts that failed and will be retried"
    );
    describe_gauge!(
        "tessera_gc_queue_length",
        "Deletions GC saw queued at its last pass"
    );
    describe_gauge!(
        "tessera_job_queued",
        "Items a background job (gc, repair, scrub, sweep) has waiting"
    );
    describe_counter!("tessera_job_done_total", "Items a background job finished");
    describe_counter!(
        "tessera_job_failed_total",
        "Item attempts of a background job that failed (retried later)"
    );
    describe_counter!(
        "tessera_job_failed_passes_total",
        "Passes of a background job that failed as a whole (retried after a backoff)"
    );
    describe_counter!(
        "tessera_job_bytes_total",
        metrics::Unit::Bytes,
        "Bytes a background job rebuilt, verified or removed"
    );
    describe_gauge!(
        "tessera_repair_pending_shards",
        "Shards waiting to be checked and rebuilt"
    );
    describe_gauge!(
        "tessera_segments_degraded",
        "Segments with shards missing or bad, by how many"
    );
    describe_gauge!(
        "tessera_segments_at_risk",
        "Queued segments by how many more shards each can lose (0: one more loss makes them unreadable; below 0: unreadable until a store returns)"
    );
    describe_gauge!("tessera_erasure_data_shards", "Data shards of new segments");
    describe_gauge!(
        "tessera_erasure_parity_shards",
        "Parity shards of new segments"
    );
    describe_gauge!(
        "tessera_repair_done",
        "1 when repair is done: nothing queued and no lost or draining store with shards left to queue"
    );
    describe_gauge!(
        "tessera_repair_bytes_per_second",
        "Bytes repair rebuilt per second over the last minute or so"
    );
    describe_gauge!(
        "tessera_repair_eta_seconds",
        metrics::Unit::Seconds,
        "Seconds until the repair queue is empty at the current rate (0 when unknown or idle)"
    );
    describe_counter!(
        "tessera_node_scrub_bad_shards_total",
        "Shards a storage node's scrub found bad on its own disks"
    );
    describe_counter!(
        "tessera_node_scrub_passes_total",
        "Full scrub passes a storage node finished over its disks"
    );
    describe_counter!(
        "tessera_node_bytes_served_total",
        metrics::Unit::Bytes,
        "Shard bytes a storage node sent to gateways"
    );
    describe_counter!(
        "tessera_scrub_bad_shards_total",
        "Shards scrub found missing or corrupt"
    );
    describe_counter!(
        "tessera_sweep_orphans_removed_total",
        "Shard files the orphan sweep removed"
    );
    describe_gauge!(
        "tessera_memory_budget_capacity_bytes",
        metrics::Unit::Bytes,
        "Size of a memory budget (write_buffer_mib, read_buffer_mib)"
    );
    describe_gauge!(
        "tessera_memory_budget_reserved_bytes",
        metrics::Unit::Bytes,
        "Bytes of a memory budget held by stripes being written or read"
    );
    describe_counter!(
        "tessera_memory_budget_waits_total",
        "Stripes that waited for their memory budget (uploads or downloads held back)"
    );
    describe_counter!(
        "tessera_trace_spans_exported_total",
        "Spans sent to the OTLP collector"
    );
    describe_counter!(
        "tessera_trace_spans_dropped_total",
        "Spans dropped because the export queue was full (otlp_queue_spans)"
    );
    describe_counter!(
        "tessera_trace_export_failures_total",
        "Batches of spans the OTLP collector did not take (dropped, not retried)"
    );
    describe_counter!(
        "tessera_md5_lane_rounds_total",
        "Rounds of the shared MD5 worker, by kernel (scalar, interleaved, avx2, avx512)"
    );
    describe_counter!(
        "tessera_md5_lane_streams_total",
        "Uploads advanced by the shared MD5 worker's rounds (over the rounds: how full its lanes run)"
    );
}

/// The request being served on a task: its S3 operation and span.
struct CurrentRequest {
    op: String,
    span: tracing::Span,
}

tokio::task_local! {
    /// The request being served on this task.
    static CURRENT: RefCell<CurrentRequest>;
}

/// Names the S3 operation of the request being served, and its bucket
/// (called by the access check, which is where s3s tells them);
/// [`Measured`] labels the request's metrics and span with them. Outside
/// a measured request it does nothing.
pub(crate) fn set_current_op(op: &str, bucket: Option<&str>) {
    let _ = CURRENT.try_with(|current| {
        let mut current = current.borrow_mut();
        op.clone_into(&mut current.op);
        crate::otel::name_request(&current.span, op, bucket);
    });
}

/// A hyper service wrapper recording every request's operation, status and
/// latency (to the response head) — including requests refused before they
/// reach the gateway. Operations are labelled `unknown` until named. Each
/// request is a span too, when tracing is on (see [`crate::otel`]).
#[derive(Debug, Clone)]
pub(crate) struct Measured<S>(pub S);

impl<S, B> hyper::service::Service<Request<Incoming>> for Measured<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<B>, S::Error>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let span = crate::otel::request_span(req.method());
        let inner = span.in_scope(|| self.0.call(req));
        let current = CurrentRequest {
            op: "unknown".to_owned(),
            span: span.clone(),
        };
        let serving = span.clone();
        Box::pin(
            CURRENT
                .scope(RefCell::new(current), async move {
                    let start = Instant::now();
                    let result = inner.await;
                    let op = CURRENT.with(|current| std::mem::take(&mut current.borrow_mut().op));
                    let status = result.as_ref().map_or(500, |resp| resp.status().as_u16());
                    if (400..500).contains(&status) {
                        tracing::debug!(op = %op, status, "request refused");
                    }
                    crate::otel::finish_request(&span, status);
                    record_request(op, status, start.elapsed());
                    result
                })
                .instrument(serving),
        )
    }
}

/// Records one finished S3 request: `op` is the S3 operation name
/// (`"PutObject"`), `status` the HTTP status code sent. The S3 listener
/// calls it for every request (see [`Measured`]).
fn record_request(op: String, status: u16, duration: Duration) {
    counter!("tessera_s3_requests_total", "op" => op.clone(), "status" => status.to_string())
        .increment(1);
    histogram!("tessera_s3_request_duration_seconds", "op" => op).record(duration.as_secs_f64());
}

/// Counts object bytes received from clients.
pub fn bytes_in(n: u64) {
    counter!("tessera_s3_bytes_in_total").increment(n);
}

/// Counts object bytes sent to clients.
pub fn bytes_out(n: u64) {
    counter!("tessera_s3_bytes_out_total").increment(n);
}

/// Counts one error from the shard store `store`.
pub fn backend_error(store: &str) {
    counter!("tessera_backend_errors_total", "store" => store.to_owned()).increment(1);
}

/// Sets the stored-object totals (objects and logical bytes).
pub fn set_stored(objects: u64, bytes: u64) {
    gauge!("tessera_objects_stored").set(objects as f64);
    gauge!("tessera_bytes_stored").set(bytes as f64);
}

/// Records whether store `store` answered its last health probe (and
/// publishes its error counter, at 0 until its first error).
pub fn set_store_up(store: &str, up: bool) {
    gauge!("tessera_store_up", "store" => store.to_owned()).set(flag(up));
    counter!("tessera_backend_errors_total", "store" => store.to_owned()).increment(0);
}

/// Publishes the state a storage node is in (one series per state, 1 for
/// the current one, so alerts can match `state="down"`).
pub fn set_node_state(node: u64, state: &str) {
    for each in ["up", "suspect", "down", "draining"] {
        let value = if each == state { 1.0 } else { 0.0 };
        gauge!("tessera_node_state", "node" => node.to_string(), "state" => each).set(value);
    }
}

/// Publishes the raft member's state: on the leader, how far behind each
/// member is; elsewhere 0 for every member (a member this one leads no more,
/// or that left, is set back to 0 rather than kept at its last lag).
pub(crate) fn set_raft(status: &MetaStatus) {
    let is_leader = status.leader == Some(status.id);
    gauge!("tessera_raft_is_leader").set(flag(is_leader));
    gauge!("tessera_raft_has_leader").set(flag(status.leader.is_some()));
    gauge!("tessera_raft_has_quorum").set(flag(status.has_quorum));
    gauge!("tessera_raft_term").set(status.term as f64);
    gauge!("tessera_raft_last_applied").set(status.last_applied as f64);
    gauge!("tessera_raft_last_log_index").set(status.last_log_index as f64);
    gauge!("tessera_raft_voters").set(status.voters.len() as f64);
    static PUBLISHED: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());
    let mut published = PUBLISHED.lock().unwrap_or_else(PoisonError::into_inner);
    let members: BTreeSet<u64> = status
        .voters
        .iter()
        .chain(&status.learners)
        .copied()
        .collect();
    let leader_view = is_leader.then_some((status.last_log_index, &status.matched));
    for (member, lag) in member_lags(&members, leader_view, &published) {
        gauge!("tessera_raft_member_lag_entries", "member" => member.to_string()).set(lag as f64);
    }
    published.extend(members);
}

/// The lag to publish for each member: on the leader (`leader_view`: its
/// last log index and what it has replicated to whom), how many entries
/// each of `members` has still to receive (all of them when the leader
/// knows of none); 0 for every member elsewhere, and for those `published`
/// before that are members no more.
fn member_lags(
    members: &BTreeSet<u64>,
    leader_view: Option<(u64, &BTreeMap<u64, u64>)>,
    published: &BTreeSet<u64>,
) -> BTreeMap<u64, u64> {
    members
        .union(published)
        .map(|&member| {
            let lag = match leader_view {
                Some((last, replicated)) if members.contains(&member) => {
                    last.saturating_sub(replicated.get(&member).copied().unwrap_or(0))
                }
                _ => 0,
            };
            (member, lag)
        })
        .collect()
}

/// A gauge's value for a yes/no state.
fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// Publishes a store's size and free space, as its health probe said.
pub(crate) fn set_store_space(store: &str, capacity: u64, free: u64) {
    gauge!("tessera_store_capacity_bytes", "store" => store.to_owned()).set(capacity as f64);
    gauge!("tessera_store_free_bytes", "store" => store.to_owned()).set(free as f64);
}

/// Publishes the erasure code of new segments.
pub(crate) fn set_geometry(data_shards: u16, parity_shards: u16) {
    gauge!("tessera_erasure_data_shards").set(f64::from(data_shards));
    gauge!("tessera_erasure_parity_shards").set(f64::from(parity_shards));
}

/// Publishes a listener's connection limit (when it starts listening).
pub(crate) fn set_connection_limit(listener: &'static str, limit: usize) {
    gauge!("tessera_connection_limit", "listener" => listener).set(limit as f64);
    gauge!("tessera_open_connections", "listener" => listener).increment(0.0);
}

/// Counts a connection open on `listener` until the returned guard is dropped.
pub(crate) fn connection_opened(listener: &'static str) -> OpenConnection {
    gauge!("tessera_open_connections", "listener" => listener).increment(1.0);
    OpenConnection(listener)
}

/// One connection counted in `tessera_open_connections` (see [`connection_opened`]).
#[derive(Debug)]
pub(crate) struct OpenConnection(&'static str);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!("tessera_open_connections", "listener" => self.0).decrement(1.0);
    }
}

/// Publishes when the certificate chain in the PEM file `path` expires, as
/// `certificate="<name>"` (`s3`, `cluster`, `cluster-ca`). A file that
/// cannot be read is left out: whoever loads it fails and says why.
pub fn publish_certificate_file(name: &'static str, path: &Path) {
    match std::fs::read_to_string(path) {
        Ok(pem) => publish_certificate(name, &pem),
        Err(e) => {
            tracing::debug!(certificate = name, path = %path.display(), error = %e, "certificate not read for its expiry metric");
        }
    }
}

/// Publishes when the certificate chain `pem` expires, as
/// `certificate="<name>"`; logs a chain it cannot read.
pub fn publish_certificate(name: &'static str, pem: &str) {
    match crate::tls::earliest_expiry(pem) {
        Some(at) => {
            gauge!("tessera_certificate_expiry_timestamp_seconds", "certificate" => name)
                .set(at as f64);
        }
        None => tracing::warn!(certificate = name, "certificate expiry not readable"),
    }
}

/// Publishes the expiry of every certificate `config` names: the S3
/// listener's and the cluster's (this process's and the CA's).
pub fn publish_certificates(config: &crate::Config) {
    if let Some(tls) = &config.tls {
        publish_certificate_file("s3", &tls.cert);
    }
    if let Some(cluster) = &config.cluster_tls {
        publish_certificate_file("cluster", &cluster.cert);
        publish_certificate_file("cluster-ca", &cluster.ca);
    }
}

/// GC's metrics, at 0 until it works (called when it starts).
pub(crate) fn gc_started() {
    counter!("tessera_gc_segments_deleted_total").increment(0);
    counter!("tessera_gc_shards_deleted_total").increment(0);
    counter!("tessera_gc_errors_total").increment(0);
    gauge!("tessera_gc_queue_length").set(0.0);
}

/// GC progress: one segment's shards removed (`shards` files actually deleted).
pub(crate) fn gc_segment_deleted(shards: u64) {
    counter!("tessera_gc_segments_deleted_total").increment(1);
    counter!("tessera_gc_shards_deleted_total").increment(shards);
}

/// GC progress: an attempt failed and will be retried.
pub(crate) fn gc_error() {
    counter!("tessera_gc_errors_total").increment(1);
}

/// GC progress: how many items the last pass found queued.
pub(crate) fn gc_queue_length(n: u64) {
    gauge!("tessera_gc_queue_length").set(n as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_publishes_how_far_behind_each_member_is() {
        let members = BTreeSet::from([1, 2, 3]);
        let replicated = BTreeMap::from([(1, 100), (2, 90)]);
        // Member 4 left: set back to 0, not kept at its last lag.
        let published = BTreeSet::from([1, 2, 3, 4]);
        assert_eq!(
            member_lags(&members, Some((100, &replicated)), &published),
            BTreeMap::from([(1, 0), (2, 10), (3, 100), (4, 0)])
        );
        // A member that leads no more says 0 for everyone.
        assert_eq!(
            member_lags(&members, None, &published),
            BTreeMap::from([(1, 0), (2, 0), (3, 0), (4, 0)])
        );
    }
}
