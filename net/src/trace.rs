//! Trace context across the cluster network: the W3C `traceparent` header
//! (<https://www.w3.org/TR/trace-context/>) that carries a span's identity
//! from a gateway to the node it calls, so the node's spans join the
//! gateway's trace.
//!
//! Spans that are exported are `tracing` spans of target [`TARGET`]; the
//! process that exports them (`tessera_server::otel`) gives each a
//! [`TraceContext`], kept in the span's extensions, and calls [`enable`].
//! [`RpcClient`](crate::RpcClient) then sends the context of the span it is
//! called in as a `traceparent` header, and a server hands the header it
//! received to its span as the field [`REMOTE_PARENT`]. With tracing off
//! (nothing enabled) none of this costs more than one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};

use http::HeaderMap;
use http::header::HeaderValue;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

/// The `tracing` target of the spans that are exported.
pub const TARGET: &str = "tessera_trace";

/// The header carrying the caller's span (W3C Trace Context).
pub const TRACEPARENT: &str = "traceparent";

/// The span field naming a remote parent: a `traceparent` header's text.
pub const REMOTE_PARENT: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns trace context on in this process: spans get contexts and calls
/// carry them. Called once by the process that exports spans.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether spans are exported from this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Where a span stands in its trace: the trace it belongs to and its own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace (16 bytes, never all zero).
    pub trace_id: [u8; 16],
    /// The span (8 bytes, never all zero).
    pub span_id: [u8; 8],
}

impl TraceContext {
    /// The `traceparent` header naming this span as the parent (version
    /// 00, sampled: every span of a trace that reaches here is exported).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-01",
            hex::encode(self.trace_id),
            hex::encode(self.span_id)
        )
    }

    /// Reads a `traceparent` header: `None` unless it is well formed, of a
    /// version this understands, with ids that are not all zero.
    pub fn parse(header: &str) -> Option<TraceContext> {
        let mut parts = header.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        // Version 00 has exactly four parts; a later version may add more.
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        unhex::<1>(version)?;
        unhex::<1>(flags)?;
        let trace_id = unhex::<16>(trace)?;
        let span_id = unhex::<8>(span)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceContext { trace_id, span_id })
    }
}

/// `N` bytes from exactly `2 * N` lower-case hex digits.
fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N
        || !text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The context of the innermost exported span the caller runs in, if
/// tracing is on and there is one.
pub fn current() -> Option<TraceContext> {
    if !enabled() {
        return None;
    }
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let span = registry.span(id)?;
            span.scope()
                .find_map(|s| s.extensions().get::<TraceContext>().copied())
        })
        .flatten()
}

/// Adds the `traceparent` of the current span (see [`current`]) to `headers`.
pub fn inject(headers: &mut HeaderMap) {
    if let Some(context) = current()
        && let Ok(value) = HeaderValue::from_str(&context.traceparent())
    {
        headers.insert(TRACEPARENT, value);
    }
}

/// The `traceparent` a request came with, when tracing is on here and it
/// is well formed: the value of a server span's [`REMOTE_PARENT`] field.
pub fn remote_parent(headers: &HeaderMap) -> Option<&str> {
    if !enabled() {
        return None;
    }
    let text = headers.get(TRACEPARENT)?.to_str().ok()?;
    TraceContext::parse(text).map(|_| text)
}

#[cfg(test)]
mod tests {
    use super::TraceContext;

    #[test]
    fn traceparent_round_trips_and_refuses_what_is_malformed() {
        let context = TraceContext {
            trace_id: [0x4b; 16],
            span_id: [0x0a, 1, 2, 3, 4, 5, 6, 7],
        };
        let header = context.traceparent();
        assert_eq!(
            header,
            "00-4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b-0a01020304050607-01"
        );
        assert_eq!(TraceContext::parse(&header), Some(context));
        // The specification's own example.
        let example = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(TraceContext::parse(example).unwrap().traceparent(), example);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more after the flags.
        assert!(
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
                .is_some()
        );
    }
}
