//! Sending finished spans to an OTLP/HTTP collector: batches POSTed as
//! JSON (the protobuf JSON mapping of `ExportTraceServiceRequest`: ids in
//! hex, 64-bit numbers as strings) to `{endpoint}/v1/traces`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::layer::{FinishedSpan, Queue, Value};

/// Most spans in one export request.
pub const BATCH: usize = 512;
/// How often spans are sent when fewer than a batch wait.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Who exports: the OTLP resource's attributes.
#[derive(Debug, Clone)]
pub struct Resource {
    /// `service.name`: `tessera-gateway` or `tessera-node`.
    pub service: &'static str,
    /// `service.instance.id`: which one (`node-3`, a gateway's address).
    pub instance: String,
}

/// `ExportTraceServiceRequest` in the JSON mapping.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportRequest<'a> {
    resource_spans: [ResourceSpans<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: JsonResource,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct JsonResource {
    attributes: Vec<KeyValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScopeSpans<'a> {
    scope: Scope,
    spans: Vec<JsonSpan<'a>>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan<'a> {
    trace_id: String,
    span_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_span_id: Option<String>,
    name: &'a str,
    kind: u8,
    start_time_unix_nano: String,
    end_time_unix_nano: String,
    attributes: Vec<KeyValue>,
    status: Status<'a>,
}

#[derive(Serialize)]
struct Status<'a> {
    /// 0 unset, 2 error.
    code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct KeyValue {
    key: String,
    value: AnyValue,
}

/// `AnyValue`: one of its fields, named as OTLP names them.
#[derive(Serialize)]
enum AnyValue {
    #[serde(rename = "stringValue")]
    Str(String),
    /// int64: a string in the JSON mapping.
    #[serde(rename = "intValue")]
    Int(String),
    #[serde(rename = "boolValue")]
    Bool(bool),
    #[serde(rename = "doubleValue")]
    Double(f64),
}

impl From<&Value> for AnyValue {
    fn from(value: &Value) -> AnyValue {
        match value {
            Value::Str(s) => AnyValue::Str(s.clone()),
            Value::Int(i) => AnyValue::Int(i.to_string()),
            Value::Bool(b) => AnyValue::Bool(*b),
            Value::Double(d) => AnyValue::Double(*d),
        }
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: AnyValue::Str(value.to_owned()),
    }
}

fn unix_nanos(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

/// The JSON body exporting `spans` as `resource`'s.
pub fn encode(resource: &Resource, spans: &[FinishedSpan]) -> Result<Vec<u8>, serde_json::Error> {
    let spans = spans
        .iter()
        .map(|s| JsonSpan {
            trace_id: hex::encode(s.context.trace_id),
            span_id: hex::encode(s.context.span_id),
            parent_span_id: s.parent.map(hex::encode),
            name: &s.name,
            kind: s.kind.otlp(),
            start_time_unix_nano: unix_nanos(s.start),
            end_time_unix_nano: unix_nanos(s.end),
            attributes: s
                .attributes
                .iter()
                .map(|(key, value)| KeyValue {
                    key: (*key).to_owned(),
                    value: value.into(),
                })
                .collect(),
            status: Status {
                code: if s.error.is_some() { 2 } else { 0 },
                message: s.error.as_deref(),
            },
        })
        .collect();
    serde_json::to_vec(&ExportRequest {
        resource_spans: [ResourceSpans {
            resource: JsonResource {
                attributes: vec![
                    text("service.name", resource.service),
                    text("service.instance.id", &resource.instance),
                    text("service.version", env!("CARGO_PKG_VERSION")),
                ],
            },
            scope_spans: [ScopeSpans {
                scope: Scope {
                    name: "tessera",
                    version: env!("CARGO_PKG_VERSION"),
                },
                spans,
            }],
        }],
    })
}

/// Why a batch was not exported.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("request: {0}")]
    Request(String),
    #[error("no answer within {}s", EXPORT_TIMEOUT.as_secs())]
    Timeout,
    #[error("collector answered {0}")]
    Status(http::StatusCode),
}

/// Sends what `queue` holds to `url` (`…/v1/traces`) every second, or as
/// soon as a batch is ready, until `stop`; then sends what is left once.
/// A batch the collector refuses or does not answer is dropped and counted
/// (`tessera_trace_export_failures_total`), not retried: the queue must not
/// grow while the collector is away.
pub async fn run(queue: Arc<Queue>, url: http::Uri, resource: Resource, stop: CancellationToken) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    metrics::counter!("tessera_trace_spans_exported_total").increment(0);
    metrics::counter!("tessera_trace_export_failures_total").increment(0);
    let mut last_error: Option<String> = None;
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = queue.ready.notified() => false,
            _ = tokio::time::sleep(INTERVAL) => false,
        };
        loop {
            let batch = queue.take(BATCH);
            if batch.is_empty() {
                break;
            }
            match send(&client, &url, &resource, &batch).await {
                Ok(()) => {
                    metrics::counter!("tessera_trace_spans_exported_total")
                        .increment(batch.len() as u64);
                    if last_error.take().is_some() {
                        tracing::info!(%url, "span export works again");
                    }
                }
                Err(e) => {
                    metrics::counter!("tessera_trace_export_failures_total").increment(1);
                    let e = e.to_string();
                    // Said once per outage, not once a second.
                    if last_error.as_deref() != Some(e.as_str()) {
                        tracing::warn!(%url, error = %e, spans = batch.len(), "span export failed; dropping the batch");
                    }
                    last_error = Some(e);
                    if stopping {
                        return;
                    }
                    break;
                }
            }
        }
        if stopping {
            return;
        }
    }
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &http::Uri,
    resource: &Resource,
    batch: &[FinishedSpan],
) -> Result<(), ExportError> {
    let body = encode(resource, batch)?;
    let request = http::Request::post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ExportError::Request(e.to_string()))?;
    let exchange = async {
        let answer = client
            .request(request)
            .await
            .map_err(|e| ExportError::Request(e.to_string()))?;
        let status = answer.status();
        // Read the answer to its end, so the connection can be used again.
        let _ = answer.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(ExportError::Status(status))
        }
    };
    tokio::time::timeout(EXPORT_TIMEOUT, exchange)
        .await
        .map_err(|_| ExportError::Timeout)?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tessera_net::trace::TraceContext;

    use super::super::layer::SpanKind;
    use super::*;

    #[test]
    fn spans_are_encoded_in_the_otlp_json_mapping() {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let span = FinishedSpan {
            context: TraceContext {
                trace_id: [0xab; 16],
                span_id: [1, 2, 3, 4, 5, 6, 7, 8],
            },
            parent: Some([9; 8]),
            name: "GetObject".to_owned(),
            kind: SpanKind::Server,
            start,
            end: start + Duration::from_millis(2),
            attributes: vec![
                ("s3.bucket", Value::Str("b".to_owned())),
                ("http.response.status_code", Value::Int(503)),
            ],
            error: Some("HTTP 503".to_owned()),
        };
        let resource = Resource {
            service: "tessera-gateway",
            instance: "g1".to_owned(),
        };
        let json: serde_json::Value =
            serde_json::from_slice(&encode(&resource, &[span]).unwrap()).unwrap();
        let rs = &json["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            serde_json::json!({"key": "service.name", "value": {"stringValue": "tessera-gateway"}})
        );
        let s = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "abababababababababababababababab");
        assert_eq!(s["spanId"], "0102030405060708");
        assert_eq!(s["parentSpanId"], "0909090909090909");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1700000000123456789");
        assert_eq!(s["endTimeUnixNano"], "1700000000125456789");
        assert_eq!(
            s["attributes"][1],
            serde_json::json!({"key": "http.response.status_code", "value": {"intValue": "503"}})
        );
        assert_eq!(
            s["status"],
            serde_json::json!({"code": 2, "message": "HTTP 503"})
        );
    }
}
