//! Tracing across processes: three `tessera node`s and a `tessera serve`
//! gateway over mutual TLS, all exporting spans over OTLP/HTTP (JSON) to a
//! small receiver in this test. One PUT and one GET each make one trace:
//! the S3 request span is its root; the raft commit (of the PUT) and the
//! shard writes and reads are its descendants; and each node's span of a
//! shard, exported by the node process, has the gateway's shard span as
//! its parent in the same trace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::cluster::{start_gateway, start_nodes_with};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tessera_net::ClusterCa;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    /// `service.name` of the process that sent it.
    service: String,
    /// `service.instance.id` of the process that sent it.
    instance: String,
    trace: String,
    id: String,
    parent: Option<String>,
    name: String,
    kind: u64,
    attributes: BTreeMap<String, Value>,
}

type Collected = Arc<Mutex<Vec<Received>>>;

/// The `resource` attribute `key`'s string value.
fn resource_attribute(resource: &Value, key: &str) -> String {
    resource["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"]["stringValue"].as_str())
        .unwrap_or_else(|| panic!("resource has no {key}: {resource}"))
        .to_owned()
}

/// The spans of one OTLP/HTTP JSON export request.
fn parse_export(body: &Value) -> Vec<Received> {
    let mut out = Vec::new();
    for rs in body["resourceSpans"].as_array().unwrap() {
        let service = resource_attribute(&rs["resource"], "service.name");
        let instance = resource_attribute(&rs["resource"], "service.instance.id");
        for ss in rs["scopeSpans"].as_array().unwrap() {
            for s in ss["spans"].as_array().unwrap() {
                let hex_of = |v: &Value, len: usize| {
                    let text = v.as_str().unwrap().to_owned();
                    assert_eq!(text.len(), len, "{v}");
                    assert!(text.bytes().all(|c| c.is_ascii_hexdigit()), "{v}");
                    text
                };
                // Times are decimal strings (64-bit numbers in the JSON mapping).
                let start: u64 = s["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
                let end: u64 = s["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
                assert!(start > 0 && end >= start, "{s}");
                out.push(Received {
                    service: service.clone(),
                    instance: instance.clone(),
                    trace: hex_of(&s["traceId"], 32),
                    id: hex_of(&s["spanId"], 16),
                    parent: s.get("parentSpanId").map(|p| hex_of(p, 16)),
                    name: s["name"].as_str().unwrap().to_owned(),
                    kind: s["kind"].as_u64().unwrap(),
                    attributes: s["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
                        .collect(),
                });
            }
        }
    }
    out
}

/// A tiny OTLP/HTTP receiver: takes JSON POSTed to `/v1/traces`.
async fn start_receiver() -> (SocketAddr, Collected) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let collected: Collected = Arc::default();
    let spans = collected.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let spans = spans.clone();
            let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                let spans = spans.clone();
                async move {
                    assert_eq!(req.method(), http::Method::POST);
                    assert_eq!(req.uri().path(), "/v1/traces");
                    assert_eq!(req.headers()["content-type"], "application/json");
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let json: Value = serde_json::from_slice(&body).unwrap();
                    spans.lock().unwrap().extend(parse_export(&json));
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"{}"))))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service),
            );
        }
    });
    (addr, collected)
}

/// The spans of the trace whose root is named `root`, once the receiver
/// has `expect_node_spans` node spans of it; panics after 30 s.
async fn trace_of(collected: &Collected, root: &str, expect_node_spans: usize) -> Vec<Received> {
    let mut trace = Vec::new();
    let complete = common::eventually(30, || {
        let spans = collected.lock().unwrap().clone();
        trace = spans
            .iter()
            .find(|s| s.name == root && s.parent.is_none())
            .map(|r| {
                spans
                    .iter()
                    .filter(|s| s.trace == r.trace)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let on_nodes = trace.iter().filter(|s| s.service == "tessera-node").count();
        async move { on_nodes >= expect_node_spans }
    })
    .await;
    let names: Vec<(String, String, bool)> = collected
        .lock()
        .unwrap()
        .iter()
        .map(|s| (s.service.clone(), s.name.clone(), s.parent.is_none()))
        .collect();
    assert!(
        complete,
        "the {root} trace did not arrive whole: {trace:#?}\nall spans: {names:?}"
    );
    trace
}

/// Whether `span` descends from the span `ancestor` within `trace`.
fn descends_from(trace: &[Received], span: &Received, ancestor: &str) -> bool {
    let mut at = span.parent.clone();
    for _ in 0..trace.len() {
        let Some(id) = at else {
            return false;
        };
        if id == ancestor {
            return true;
        }
        at = trace
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.parent.clone());
    }
    false
}

/// Checks the tree of one request's trace: the root is the S3 request
/// span of `op` on `bucket`, answered 200; every other span descends from
/// it; `shard` spans of the gateway (as many as `shards`) each have one
/// `node_shard` span of a node as child.
fn check_tree(
    trace: &[Received],
    op: &str,
    bucket: &str,
    shard: &str,
    node_shard: &str,
    shards: usize,
) {
    let roots: Vec<&Received> = trace.iter().filter(|s| s.parent.is_none()).collect();
    assert_eq!(roots.len(), 1, "{trace:#?}");
    let root = roots[0];
    assert_eq!(root.name, op);
    assert_eq!(root.service, "tessera-gateway");
    assert_eq!(root.kind, 2, "the S3 request is a server span");
    assert_eq!(root.attributes["s3.bucket"]["stringValue"], bucket);
    assert_eq!(root.attributes["s3.operation"]["stringValue"], op);
    assert_eq!(
        root.attributes["http.response.status_code"]["intValue"],
        "200"
    );
    for span in trace.iter().filter(|s| s.parent.is_some()) {
        assert!(
            descends_from(trace, span, &root.id),
            "{} does not descend from the {op} span: {trace:#?}",
            span.name
        );
    }
    // At least `shards` (a hedged read may ask one store more).
    let gateway_shards: Vec<&Received> = trace
        .iter()
        .filter(|s| s.service == "tessera-gateway" && s.name == shard)
        .collect();
    assert!(gateway_shards.len() >= shards, "{trace:#?}");
    let node_spans: Vec<&Received> = trace
        .iter()
        .filter(|s| s.service == "tessera-node")
        .collect();
    assert!(node_spans.len() >= shards, "{trace:#?}");
    for node_span in &node_spans {
        assert_eq!(node_span.name, node_shard);
        assert_eq!(node_span.kind, 2, "a node's shard span is a server span");
        let parent = gateway_shards
            .iter()
            .find(|g| Some(&g.id) == node_span.parent.as_ref())
            .unwrap_or_else(|| panic!("{node_span:#?} has no gateway shard span as parent"));
        assert_eq!(parent.kind, 3, "the gateway's shard span is a client span");
        // The same store on both sides.
        assert_eq!(
            parent.attributes["tessera.store"],
            node_span.attributes["tessera.store"]
        );
        assert_eq!(
            node_span.instance,
            format!(
                "node-{}",
                parent.attributes["tessera.node"]["intValue"]
                    .as_str()
                    .unwrap()
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_put_and_one_get_each_make_one_trace_across_gateway_and_nodes() {
    let (receiver, collected) = start_receiver().await;
    let otlp = format!("otlp_endpoint = \"http://{receiver}\"\n");
    let dir = tempfile::tempdir().unwrap();
    let ca = ClusterCa::generate("test cluster CA").unwrap();
    let nodes = start_nodes_with(dir.path(), &ca, 3, 2, &otlp).await;
    let (gateway, s3) = start_gateway(dir.path(), &ca, &nodes, &otlp).await;

    s3.create_bucket().bucket("traced").send().await.unwrap();
    // Four blocks of 1 MiB and a bit: every data shard holds a part.
    let body: Vec<u8> = (0..(3 << 20) + 1000u32).map(|i| (i * 7) as u8).collect();
    common::put_bytes(&s3, "traced", "object", body.clone()).await;
    assert_eq!(common::get_bytes(&s3, "traced", "object").await, body);

    // 4+2 over six stores: six shard writes, and the four data shards read.
    let put = trace_of(&collected, "PutObject", 6).await;
    check_tree(
        &put,
        "PutObject",
        "traced",
        "shard.write",
        "node.shard.write",
        6,
    );
    assert_eq!(
        put.iter().filter(|s| s.name == "shard.write").count(),
        6,
        "{put:#?}"
    );
    let commits: Vec<&Received> = put.iter().filter(|s| s.name == "raft.commit").collect();
    assert!(!commits.is_empty(), "the PUT's raft commit: {put:#?}");
    let get = trace_of(&collected, "GetObject", 4).await;
    check_tree(
        &get,
        "GetObject",
        "traced",
        "shard.read",
        "node.shard.read",
        4,
    );
    assert_ne!(put[0].trace, get[0].trace);
    // Every node served a part of the PUT.
    let instances: std::collections::BTreeSet<&str> = put
        .iter()
        .filter(|s| s.service == "tessera-node")
        .map(|s| s.instance.as_str())
        .collect();
    assert_eq!(instances.len(), 3, "{instances:?}");

    // Nothing was dropped on the way.
    let url = gateway.announced.split(", admin on ").nth(1).unwrap();
    let (_, metrics) = common::http_get(&format!("{url}/metrics")).await;
    assert!(
        metrics.contains("tessera_trace_spans_dropped_total 0"),
        "{metrics}"
    );
    drop(gateway);
    drop(nodes);
}
