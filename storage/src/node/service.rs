//! The node's side of the protocol: answers gateways' requests from its
//! stores. A shard upload or download that comes with a trace context
//! (`traceparent`, see [`tessera_net::trace`]) is a span of that trace
//! (`node.shard.write`, `node.shard.read`).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::Serialize;
use tessera_net::body::{Body, full, stream};
use tessera_net::server::reply;
use tessera_net::{HttpService, trace, wire};
use tracing::{Instrument, Span};

use super::NodeScrub;
use super::protocol::{self, AckRequest, ListRequest, ShardRequest, StoreRequest, VerifyAnswer};
use crate::error::StorageError;
use crate::repair::scrub_shard;
use crate::store::{ByteStream, ShardId, ShardStore};

/// Largest request body of the operations other than a shard upload.
const MAX_MESSAGE: usize = 64 << 10;

/// Serves a node's stores (see [`super::protocol`]).
#[derive(Debug, Clone)]
pub struct NodeService {
    stores: Arc<BTreeMap<String, Arc<dyn ShardStore>>>,
    scrub: Arc<NodeScrub>,
}

/// A refusal: the status and reason the gateway gets.
type Refusal = (StatusCode, String);

fn bad_request(reason: impl std::fmt::Display) -> Refusal {
    (StatusCode::BAD_REQUEST, reason.to_string())
}

/// The span `name` of a shard upload or download whose caller sent its
/// trace context (`parent`); none without one.
fn shard_span(parent: Option<&str>, name: &'static str, store: &str, shard: ShardId) -> Span {
    match parent {
        Some(parent) => tracing::info_span!(
            target: trace::TARGET,
            "node.shard",
            otel.name = name,
            otel.kind = "server",
            traceparent = parent,
            tessera.store = store,
            tessera.shard = %shard,
            error = tracing::field::Empty,
        ),
        None => Span::none(),
    }
}

/// [`failure`], recorded as the error of `span`.
fn failed_in(span: &Span, e: StorageError) -> Refusal {
    span.record("error", tracing::field::display(&e));
    failure(e)
}

fn failure(e: StorageError) -> Refusal {
    let status = match e {
        StorageError::NotFound(_) => StatusCode::NOT_FOUND,
        StorageError::Body(_) | StorageError::Format(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, e.to_string())
}

impl NodeService {
    /// Serves `stores`, each under its own id, and the findings of their
    /// scrub kept in `scrub`.
    pub fn new(
        stores: impl IntoIterator<Item = Arc<dyn ShardStore>>,
        scrub: Arc<NodeScrub>,
    ) -> Self {
        let stores = stores.into_iter().map(|s| (s.id().to_owned(), s)).collect();
        NodeService {
            stores: Arc::new(stores),
            scrub,
        }
    }

    fn store(&self, id: &str) -> Result<&Arc<dyn ShardStore>, Refusal> {
        self.stores
            .get(id)
            .ok_or_else(|| (StatusCode::NOT_FOUND, format!("no store {id} on this node")))
    }

    async fn answer(&self, req: Request<Incoming>) -> Result<Response<Body>, Refusal> {
        let path = req.uri().path().to_owned();
        if let Some((store, shard)) = protocol::parse_shard_path(&path) {
            let store = self.store(store)?;
            let parent = trace::remote_parent(req.headers());
            return match *req.method() {
                Method::PUT => {
                    let span = shard_span(parent, "node.shard.write", store.id(), shard);
                    let size = store
                        .put(shard, checked_upload(req.into_body()))
                        .instrument(span.clone())
                        .await
                        .map_err(|e| failed_in(&span, e))?;
                    encoded(&size)
                }
                Method::GET => {
                    let span = shard_span(parent, "node.shard.read", store.id(), shard);
                    let range = protocol::parse_range_query(req.uri().query())
                        .ok_or_else(|| bad_request("missing or malformed byte range"))?;
                    let bytes = store
                        .get(shard, range)
                        .instrument(span.clone())
                        .await
                        .map_err(|e| failed_in(&span, e))?;
                    let served = metrics::counter!("tessera_node_bytes_served_total");
                    // The span lasts until the shard is sent: it goes with the stream.
                    let bytes = bytes
                        .inspect(move |chunk| match chunk {
                            Ok(chunk) => served.increment(chunk.len() as u64),
                            Err(e) => {
                                span.record("error", tracing::field::display(e));
                            }
                        })
                        .boxed();
                    Ok(Response::new(stream(bytes)))
                }
                _ => Err((StatusCode::METHOD_NOT_ALLOWED, req.method().to_string())),
            };
        }
        if req.method() == Method::GET && path == protocol::STORES {
            return encoded(&self.stores.keys().collect::<Vec<_>>());
        }
        if req.method() != Method::POST {
            return Err((StatusCode::NOT_FOUND, path));
        }
        let body = message(req.into_body()).await?;
        match path.as_str() {
            protocol::STAT => {
                let r: ShardRequest = wire::decode(&body).map_err(bad_request)?;
                encoded(&self.store(&r.store)?.stat(r.shard).await.map_err(failure)?)
            }
            protocol::DELETE => {
                let r: ShardRequest = wire::decode(&body).map_err(bad_request)?;
                encoded(
                    &self
                        .store(&r.store)?
                        .delete(r.shard)
                        .await
                        .map_err(failure)?,
                )
            }
            protocol::LIST => {
                let r: ListRequest = wire::decode(&body).map_err(bad_request)?;
                let limit = r.limit.min(protocol::MAX_LIST);
                let page = self.store(&r.store)?.list(r.after, limit).await;
                encoded(&page.map_err(failure)?)
            }
            protocol::HEALTH => {
                let r: StoreRequest = wire::decode(&body).map_err(bad_request)?;
                encoded(&self.store(&r.store)?.health().await.map_err(failure)?)
            }
            protocol::SCRUB_FINDINGS => {
                let r: StoreRequest = wire::decode(&body).map_err(bad_request)?;
                self.store(&r.store)?;
                encoded(&self.scrub.pending(&r.store))
            }
            protocol::SCRUB_ACK => {
                let r: AckRequest = wire::decode(&body).map_err(bad_request)?;
                self.store(&r.store)?;
                encoded(
                    &self
                        .scrub
                        .acknowledge(&r.store, r.through)
                        .map_err(failure)?,
                )
            }
            protocol::VERIFY => {
                let r: ShardRequest = wire::decode(&body).map_err(bad_request)?;
                let store = self.store(&r.store)?;
                let answer = match scrub_shard(store.as_ref(), r.shard).await {
                    Ok(summary) => VerifyAnswer::Intact {
                        header: summary.header.encode().to_vec(),
                        trailer: summary.trailer.encode(r.shard).to_vec(),
                    },
                    Err(StorageError::NotFound(_)) => VerifyAnswer::Missing,
                    // What the node's scrub would count as a bad shard.
                    Err(StorageError::Corrupt { reason, .. } | StorageError::Format(reason)) => {
                        VerifyAnswer::Corrupt(reason)
                    }
                    Err(e) => return Err(failure(e)),
                };
                encoded(&answer)
            }
            protocol::SCRUB_START => {
                let () = wire::decode(&body).map_err(bad_request)?;
                self.scrub.request_pass();
                encoded(&())
            }
            _ => Err((StatusCode::NOT_FOUND, path)),
        }
    }
}

impl HttpService for NodeService {
    async fn serve(&self, req: Request<Incoming>) -> Response<Body> {
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        match self.answer(req).await {
            Ok(resp) => resp,
            Err((status, reason)) => {
                if status.is_server_error() {
                    tracing::warn!(%method, %path, %reason, "node request failed");
                } else {
                    tracing::debug!(%method, %path, %status, %reason, "node request refused");
                }
                reply(status, reason)
            }
        }
    }
}

fn encoded<T: Serialize>(value: &T) -> Result<Response<Body>, Refusal> {
    let bytes =
        wire::encode(value).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Response::new(full(bytes)))
}

/// The whole (small) body of a request.
async fn message(body: Incoming) -> Result<Bytes, Refusal> {
    http_body_util::Limited::new(body, MAX_MESSAGE)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| bad_request(format!("request body: {e}")))
}

/// The shard bytes of an upload, ending in an error (so the store keeps
/// nothing) unless the length trailer comes and agrees with them.
fn checked_upload(body: Incoming) -> ByteStream {
    let cut = |reason: String| StorageError::Body(reason.into());
    futures::stream::try_unfold((body, 0u64), move |(mut body, seen)| async move {
        loop {
            let frame = match body.frame().await {
                None => return Err(cut("shard upload ended without its length trailer".into())),
                Some(Err(e)) => return Err(StorageError::Body(Box::new(e))),
                Some(Ok(frame)) => frame,
            };
            let trailers = match frame.into_data() {
                Ok(data) => {
                    let seen = seen + data.len() as u64;
                    return Ok(Some((data, (body, seen))));
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => trailers,
                    Err(_) => continue,
                },
            };
            let declared = trailers
                .get(protocol::LENGTH_TRAILER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            return match declared {
                Some(n) if n == seen => Ok(None),
                Some(n) => Err(cut(format!("shard upload declared {n} bytes, {seen} came"))),
                None => Err(cut("shard upload trailer has no valid length".into())),
            };
        }
    })
    .boxed()
}
