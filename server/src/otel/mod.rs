//! Logging and OpenTelemetry tracing of a `tessera` process.
//!
//! Logs go to stderr (`RUST_LOG` filters them). With `otlp_endpoint` set
//! (off by default), spans are also exported over OTLP/HTTP as JSON to
//! `{otlp_endpoint}/v1/traces` ([`export`]): a span per S3 request (the
//! root, named after the operation), the raft commit of its writes, each
//! shard read or write on a storage node as the gateway sees it, and the
//! node's own span of it, joined across the cluster network by the
//! `traceparent` header ([`tessera_net::trace`]).
//!
//! Only spans of target [`TARGET`] are traced ([`layer`]); they are off
//! for the log output. Finished spans wait in a queue of at most
//! `otlp_queue_spans` (memory stays bounded when the collector is slow or
//! away: spans beyond it are dropped and counted in
//! `tessera_trace_spans_dropped_total`). With tracing off the layer is
//! not installed and the spans are disabled at their call sites.

pub mod export;
pub mod layer;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tessera_net::trace::{self, TARGET};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Span;
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

pub use export::Resource;

/// Default of [`OtlpSettings::queue_spans`].
pub const DEFAULT_QUEUE_SPANS: usize = 4096;

/// How long shutdown waits for the last spans to be sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP base URL (`http://host:4318`); spans go to
    /// `{endpoint}/v1/traces`.
    pub endpoint: String,
    /// Most finished spans kept waiting for the collector.
    pub queue_spans: usize,
}

impl OtlpSettings {
    /// Settings from the configured values: `None` without an endpoint.
    pub fn resolve(endpoint: Option<String>, queue_spans: Option<usize>) -> Result<Option<Self>> {
        let Some(endpoint) = endpoint.filter(|e| !e.trim().is_empty()) else {
            return Ok(None);
        };
        let settings = OtlpSettings {
            endpoint,
            queue_spans: queue_spans.unwrap_or(DEFAULT_QUEUE_SPANS),
        };
        if settings.queue_spans == 0 {
            bail!("otlp_queue_spans must be at least 1");
        }
        settings.traces_url()?;
        Ok(Some(settings))
    }

    /// `{endpoint}/v1/traces`, checked.
    pub fn traces_url(&self) -> Result<http::Uri> {
        let url = format!("{}/v1/traces", self.endpoint.trim_end_matches('/'));
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("otlp_endpoint {:?} is not a URL", self.endpoint))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            bail!(
                "otlp_endpoint {:?}: give http://host:port of an OTLP/HTTP collector \
                 (https is not supported: run the collector beside the server)",
                self.endpoint
            );
        }
        Ok(uri)
    }
}

/// The running span exporter; [`Tracing::shutdown`] sends what is left.
#[derive(Debug)]
pub struct Tracing {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Tracing {
    /// Sends the spans still queued (for at most five seconds) and stops.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if tokio::time::timeout(FLUSH_TIMEOUT, self.task)
            .await
            .is_err()
        {
            tracing::warn!("span export did not finish in time; the last spans are lost");
        }
    }
}

/// The log filter: `RUST_LOG`, or the default below; never the traced
/// spans (they are for the exporter).
fn log_filter() -> EnvFilter {
    // s3s logs nothing at info, but opens an info span around every
    // signature check: at warn it costs nothing per request. It also logs
    // every refused request at ERROR, twice (s3s::ops), and malformed XML
    // with the body (s3s::http): anyone can send those, and they are the
    // client's doing, so both are off. Server-side failures are logged
    // where they happen (s3::errors), and s3s::service reports 5xx answers.
    // openraft's replication logs a member that cannot be reached twice a
    // second (warn and error) for as long as it is down: `tessera admin
    // member list` and the raft metrics say it once and better.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,openraft=warn,openraft::replication=off,\
             openraft::engine::handler::replication_handler=off,\
             s3s=warn,s3s::ops=off,s3s::http=off",
        )
    });
    match format!("{TARGET}=off").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Installs this process's logging and, with `otlp`, its span export as
/// `resource` (spawned on the current runtime). Once per process; later
/// calls (tests starting several servers) change nothing.
pub fn init(otlp: Option<&OtlpSettings>, resource: Resource) -> Result<Option<Tracing>> {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(log_filter());
    let registry = tracing_subscriber::registry().with(logs);
    let Some(otlp) = otlp else {
        let _ = registry.try_init();
        return Ok(None);
    };
    let url = otlp.traces_url()?;
    // Before the queue publishes its counters, so they are not lost.
    crate::metrics::install();
    let queue = layer::Queue::new(otlp.queue_spans, export::BATCH);
    let spans = layer::SpanLayer::new(Arc::clone(&queue))
        .with_filter(filter::filter_fn(|meta| meta.target() == TARGET));
    if registry.with(spans).try_init().is_err() {
        return Ok(None);
    }
    trace::enable();
    tracing::info!(%url, service = resource.service, instance = %resource.instance, "exporting spans over OTLP");
    let stop = CancellationToken::new();
    let task = tokio::spawn(export::run(queue, url, resource, stop.clone()));
    Ok(Some(Tracing { stop, task }))
}

/// The span of one S3 request (the root of its trace), named after its
/// operation once known (see [`finish_request`]).
pub(crate) fn request_span(method: &http::Method) -> Span {
    tracing::info_span!(
        target: TARGET,
        "s3.request",
        otel.kind = "server",
        otel.name = Empty,
        http.request.method = %method,
        s3.operation = Empty,
        s3.bucket = Empty,
        http.response.status_code = Empty,
        error = Empty,
    )
}

/// Names the request of `span` after its S3 operation and bucket (the
/// access check knows them).
pub(crate) fn name_request(span: &Span, op: &str, bucket: Option<&str>) {
    span.record("otel.name", op);
    span.record("s3.operation", op);
    if let Some(bucket) = bucket {
        span.record("s3.bucket", bucket);
    }
}

/// Records the status the request of `span` was answered with: a 5xx
/// marks it failed.
pub(crate) fn finish_request(span: &Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("error", format!("HTTP {status}"));
    }
}
