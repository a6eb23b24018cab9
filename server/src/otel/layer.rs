//! [`SpanLayer`]: the `tracing` layer that gives the spans of
//! [`TARGET`](tessera_net::trace::TARGET) a place in a trace and queues
//! them, once closed, for the exporter.
//!
//! A trace starts at a span of kind `server` that has no traced parent
//! (an S3 request), or at one whose [`REMOTE_PARENT`] field names a span
//! of another process (a node's shard span). Other spans join the trace
//! of their nearest traced ancestor, and are left out without one (a
//! background job's shard reads start no trace of their own).
//!
//! Fields the layer reads besides the span's attributes: `otel.name` (the
//! name exported, e.g. `PutObject`), `otel.kind` (`server`, `client`,
//! `internal`), `traceparent` and `error` (the span failed, and why).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tessera_net::trace::{REMOTE_PARENT, TraceContext};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, debug};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// What a span did (OTLP's `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SpanKind {
    /// Work inside the process.
    #[default]
    Internal,
    /// Answering a request from outside.
    Server,
    /// A request to another process.
    Client,
}

impl SpanKind {
    /// OTLP's number for the kind.
    pub fn otlp(self) -> u8 {
        match self {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
        }
    }
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(String),
    /// A whole number.
    Int(i64),
    /// A yes or no.
    Bool(bool),
    /// A number.
    Double(f64),
}

/// A span that ended, ready to export.
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    /// Its trace and id.
    pub context: TraceContext,
    /// Its parent's id (`None` for the root of a trace).
    pub parent: Option<[u8; 8]>,
    /// The name exported.
    pub name: String,
    /// Its kind.
    pub kind: SpanKind,
    /// When it began.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its recorded fields, but those the layer itself reads.
    pub attributes: Vec<(&'static str, Value)>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Finished spans waiting for the exporter, at most `capacity`: a span
/// that finds the queue full is dropped and counted
/// (`tessera_trace_spans_dropped_total`).
#[derive(Debug)]
pub struct Queue {
    spans: Mutex<VecDeque<FinishedSpan>>,
    capacity: usize,
    /// Woken when a batch is ready.
    pub(super) ready: tokio::sync::Notify,
    batch: usize,
}

impl Queue {
    /// A queue of at most `capacity` spans, waking the exporter at `batch`.
    pub fn new(capacity: usize, batch: usize) -> Arc<Queue> {
        metrics::counter!("tessera_trace_spans_dropped_total").increment(0);
        Arc::new(Queue {
            spans: Mutex::new(VecDeque::new()),
            capacity,
            ready: tokio::sync::Notify::new(),
            batch,
        })
    }

    fn push(&self, span: FinishedSpan) {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if spans.len() >= self.capacity {
            drop(spans);
            metrics::counter!("tessera_trace_spans_dropped_total").increment(1);
            return;
        }
        spans.push_back(span);
        if spans.len() >= self.batch {
            self.ready.notify_one();
        }
    }

    /// Takes up to `n` spans, oldest first.
    pub fn take(&self, n: usize) -> Vec<FinishedSpan> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        let n = n.min(spans.len());
        spans.drain(..n).collect()
    }
}

/// The layer (see the module's documentation).
#[derive(Debug, Clone)]
pub struct SpanLayer {
    queue: Arc<Queue>,
}

impl SpanLayer {
    /// A layer queueing finished spans on `queue`.
    pub fn new(queue: Arc<Queue>) -> SpanLayer {
        SpanLayer { queue }
    }
}

/// A traced span while it runs (kept in its extensions, beside its
/// [`TraceContext`]).
#[derive(Debug)]
struct Recording {
    parent: Option<[u8; 8]>,
    start: SystemTime,
    fields: Fields,
}

/// The fields of a span, as recorded so far.
#[derive(Debug, Default)]
struct Fields {
    name: Option<String>,
    kind: SpanKind,
    remote_parent: Option<TraceContext>,
    error: Option<String>,
    attributes: Vec<(&'static str, Value)>,
}

impl Fields {
    fn set(&mut self, field: &Field, value: Value) {
        let name = field.name();
        match (name, value) {
            ("otel.name", Value::Str(s)) => self.name = Some(s),
            ("otel.kind", Value::Str(s)) => {
                self.kind = match s.as_str() {
                    "server" => SpanKind::Server,
                    "client" => SpanKind::Client,
                    _ => SpanKind::Internal,
                }
            }
            (REMOTE_PARENT, Value::Str(s)) => self.remote_parent = TraceContext::parse(&s),
            ("error", Value::Str(s)) => self.error = Some(s),
            (_, value) => match self.attributes.iter_mut().find(|(k, _)| *k == name) {
                Some((_, old)) => *old = value,
                None => self.attributes.push((name, value)),
            },
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field, Value::Str(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, Value::Str(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field, Value::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let value = i64::try_from(value).map_or_else(|_| Value::Str(value.to_string()), Value::Int);
        self.set(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field, Value::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field, Value::Double(value));
    }
}

/// A fresh id of `N` random bytes, never all zero.
fn random_id<const N: usize>() -> [u8; N] {
    loop {
        let id: [u8; N] = rand::random();
        if id != [0; N] {
            return id;
        }
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let inherited = span
            .parent()
            .and_then(|p| p.extensions().get::<TraceContext>().copied());
        let (trace_id, parent) = match (fields.remote_parent, inherited) {
            (Some(remote), _) => (remote.trace_id, Some(remote.span_id)),
            (None, Some(local)) => (local.trace_id, Some(local.span_id)),
            (None, None) if fields.kind == SpanKind::Server => (random_id(), None),
            (None, None) => return,
        };
        let mut extensions = span.extensions_mut();
        extensions.insert(TraceContext {
            trace_id,
            span_id: random_id(),
        });
        extensions.insert(Recording {
            parent,
            start: SystemTime::now(),
            fields,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(recording) = span.extensions_mut().get_mut::<Recording>()
        {
            values.record(&mut recording.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(context) = span.extensions().get::<TraceContext>().copied() else {
            return;
        };
        let Some(recording) = span.extensions_mut().remove::<Recording>() else {
            return;
        };
        let fields = recording.fields;
        let finished = FinishedSpan {
            context,
            parent: recording.parent,
            name: fields.name.unwrap_or_else(|| span.name().to_owned()),
            kind: fields.kind,
            start: recording.start,
            end: SystemTime::now(),
            attributes: fields.attributes,
            error: fields.error,
        };
        debug!(target: "tessera::otel", name = %finished.name, "span finished");
        self.queue.push(finished);
    }
}

#[cfg(test)]
mod tests {
    use tessera_net::trace::TARGET;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, Registry, filter};

    use super::*;

    /// Runs `f` under a subscriber with the layer alone; the spans it queued.
    fn spans_of(capacity: usize, f: impl FnOnce()) -> (Vec<FinishedSpan>, Arc<Queue>) {
        let queue = Queue::new(capacity, usize::MAX);
        let layer = SpanLayer::new(queue.clone())
            .with_filter(filter::filter_fn(|meta| meta.target() == TARGET));
        let subscriber = Registry::default().with(layer);
        tracing::subscriber::with_default(subscriber, f);
        (queue.take(usize::MAX), queue)
    }

    #[test]
    fn a_trace_starts_at_a_server_span_and_children_join_it() {
        let (spans, _) = spans_of(16, || {
            // No traced parent and not a server span: left out.
            tracing::info_span!(target: TARGET, "orphan").in_scope(|| {});
            let root = tracing::info_span!(target: TARGET, "s3.request", otel.kind = "server", otel.name = tracing::field::Empty);
            root.in_scope(|| {
                // A span of another target between them is skipped over.
                tracing::info_span!(target: "elsewhere", "middle").in_scope(|| {
                    tracing::info_span!(target: TARGET, "child", n = 7u64, error = "broken")
                        .in_scope(|| {});
                });
            });
            root.record("otel.name", "PutObject");
        });
        assert_eq!(spans.len(), 2, "{spans:?}");
        let (child, root) = (&spans[0], &spans[1]);
        assert_eq!(root.name, "PutObject");
        assert_eq!(root.kind, SpanKind::Server);
        assert_eq!(root.parent, None);
        assert_eq!(child.name, "child");
        assert_eq!(child.context.trace_id, root.context.trace_id);
        assert_eq!(child.parent, Some(root.context.span_id));
        assert_eq!(child.attributes, vec![("n", Value::Int(7))]);
        assert_eq!(child.error.as_deref(), Some("broken"));
        assert!(child.start >= root.start && child.end <= root.end);
    }

    #[test]
    fn a_remote_parent_continues_the_callers_trace() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (spans, _) = spans_of(16, || {
            tracing::info_span!(target: TARGET, "node.shard.write", otel.kind = "server", traceparent = header).in_scope(|| {});
        });
        let parent = TraceContext::parse(header).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].context.trace_id, parent.trace_id);
        assert_eq!(spans[0].parent, Some(parent.span_id));
        assert!(spans[0].attributes.is_empty());
    }

    #[test]
    fn a_full_queue_drops_spans() {
        let (spans, queue) = spans_of(2, || {
            for _ in 0..5 {
                tracing::info_span!(target: TARGET, "s3.request", otel.kind = "server")
                    .in_scope(|| {});
            }
        });
        assert_eq!(spans.len(), 2);
        assert!(queue.take(10).is_empty());
    }
}
