//! [`Remote`]: a store on a storage node, reached over the cluster network
//! (the gateway's side of [`crate::node::protocol`]). Each shard upload and
//! download is a span (`shard.write`, `shard.read`) whose context the node
//! receives, see [`tessera_net::trace`].

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_net::body::{BodyError, chunks, empty, full};
use tessera_net::{Body, CallError, PeerId, RpcClient, trace, wire};
use tracing::Instrument;

use super::{ByteStream, ScrubFinding, SelfScrubbing, ShardId, ShardStat, ShardStore, StoreHealth};
use crate::error::StorageError;
use crate::format::{ShardHeader, ShardSummary, ShardTrailer};
use crate::node::protocol::{
    self, AckRequest, ListRequest, ShardRequest, StoreRequest, VerifyAnswer,
};

/// Why a node could not say which stores it serves.
#[derive(Debug, thiserror::Error)]
pub enum NodeQueryError {
    /// The call failed (see [`CallError::Refused`] for a node that is not
    /// who it should be).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The node answered with an error or an unreadable answer.
    #[error("bad answer: {0}")]
    Answer(String),
}

impl NodeQueryError {
    /// Whether retrying cannot help: the node's or our identity was refused.
    pub fn is_refused(&self) -> bool {
        matches!(self, NodeQueryError::Call(CallError::Refused { .. }))
    }
}

/// Bytes per second a node's check of a shard is allowed at the least
/// (the call's timeout grows with the shard).
const VERIFY_MIN_RATE: u64 = 16 << 20;

/// A store on a storage node.
#[derive(Clone)]
pub struct Remote {
    id: String,
    node: PeerId,
    addr: String,
    client: Arc<RpcClient>,
    timeout: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("id", &self.id)
            .field("node", &self.node)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Store `id` of node `node` at `addr`, called through `client`; every
    /// call but an upload's must be answered within `timeout` (an upload is
    /// answered once the node has the whole shard durable).
    pub fn new(
        id: impl Into<String>,
        node: PeerId,
        addr: impl Into<String>,
        client: Arc<RpcClient>,
        timeout: Duration,
    ) -> Self {
        Remote {
            id: id.into(),
            node,
            addr: addr.into(),
            client,
            timeout,
        }
    }

    /// The store ids node `node` at `addr` serves.
    pub async fn list_stores(
        client: &RpcClient,
        node: PeerId,
        addr: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, NodeQueryError> {
        let request = Request::get(protocol::STORES)
            .body(empty())
            .map_err(|e| NodeQueryError::Answer(e.to_string()))?;
        let response = client.send(node, addr, request, timeout).await?;
        decode_answer(response)
            .await
            .map_err(NodeQueryError::Answer)
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> StorageError {
        StorageError::Unavailable {
            store: self.id.clone(),
            reason: reason.to_string(),
        }
    }

    async fn send(
        &self,
        request: Request<Body>,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, StorageError> {
        self.client
            .send(self.node, &self.addr, request, timeout)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// Posts `req` to `path`, answered within `timeout`.
    async fn post<Req: Serialize>(
        &self,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<http::Response<Incoming>, StorageError> {
        let body = wire::encode(req).map_err(|e| self.unavailable(e))?;
        let request = Request::post(path)
            .body(full(body))
            .map_err(|e| self.unavailable(e))?;
        self.send(request, timeout).await
    }

    /// A whole-message operation.
    async fn unary<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, StorageError> {
        let response = self.post(path, req, self.timeout).await?;
        decode_answer(response)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// The span (`name`: `shard.write`, `shard.read`) of a transfer of
    /// shard `id`; the node receives its context.
    fn shard_span(&self, name: &'static str, id: ShardId) -> tracing::Span {
        tracing::info_span!(
            target: trace::TARGET,
            "shard",
            otel.name = name,
            otel.kind = "client",
            tessera.node = self.node,
            tessera.store = %self.id,
            tessera.shard = %id,
            shard.bytes = tracing::field::Empty,
            shard.range = tracing::field::Empty,
            error = tracing::field::Empty,
        )
    }

    fn store_request(&self) -> StoreRequest {
        StoreRequest {
            store: self.id.clone(),
        }
    }

    fn shard_request(&self, shard: ShardId) -> ShardRequest {
        ShardRequest {
            store: self.id.clone(),
            shard,
        }
    }
}

/// The decoded answer, or the node's refusal as text.
async fn decode_answer<T: DeserializeOwned>(
    response: http::Response<Incoming>,
) -> Result<T, String> {
    let status = response.status();
    let bytes = http_body_util::Limited::new(response.into_body(), 64 << 20)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)));
    }
    wire::decode(&bytes).map_err(|e| format!("bad answer: {e}"))
}

/// The frames of a shard upload: its chunks, then the length trailer.
fn upload_frames(data: ByteStream) -> Body {
    let frames = futures::stream::try_unfold((Some(data), 0u64), |(data, sent)| async move {
        let Some(mut data) = data else {
            return Ok::<_, BodyError>(None);
        };
        match data.next().await {
            Some(chunk) => {
                let chunk: Bytes = chunk?;
                let sent = sent + chunk.len() as u64;
                Ok(Some((Frame::data(chunk), (Some(data), sent))))
            }
            None => {
                let mut trailers = HeaderMap::new();
                trailers.insert(protocol::LENGTH_TRAILER, HeaderValue::from(sent));
                Ok(Some((Frame::trailers(trailers), (None, sent))))
            }
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

#[async_trait::async_trait]
impl ShardStore for Remote {
    fn id(&self) -> &str {
        &self.id
    }

    async fn put(&self, id: ShardId, data: ByteStream) -> Result<u64, StorageError> {
        let span = self.shard_span("shard.write", id);
        let upload = async {
            let request = Request::builder()
                .method(Method::PUT)
                .uri(protocol::shard_path(&self.id, id))
                .body(upload_frames(data))
                .map_err(|e| self.unavailable(e))?;
            let response = self.send(request, Duration::MAX).await?;
            decode_answer(response)
                .await
                .map_err(|e| self.unavailable(e))
        };
        let size = upload.instrument(span.clone()).await;
        match &size {
            Ok(size) => span.record("shard.bytes", size),
            Err(e) => span.record("error", tracing::field::display(e)),
        };
        size
    }

    async fn get(&self, id: ShardId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        let span = self.shard_span("shard.read", id);
        span.record(
            "shard.range",
            tracing::field::display(format_args!("{}-{}", range.start, range.end)),
        );
        let uri = format!(
            "{}?{}",
            protocol::shard_path(&self.id, id),
            protocol::range_query(&range)
        );
        let request = Request::get(uri)
            .body(empty())
            .map_err(|e| self.unavailable(e))?;
        let answer = async {
            let response = self.send(request, self.timeout).await?;
            match response.status() {
                StatusCode::OK => Ok(response),
                StatusCode::NOT_FOUND => Err(StorageError::NotFound(id)),
                status => {
                    let reason = decode_answer::<()>(response).await.err();
                    Err(self.unavailable(reason.unwrap_or_else(|| status.to_string())))
                }
            }
        };
        let response = match answer.instrument(span.clone()).await {
            Ok(response) => response,
            Err(e) => {
                span.record("error", tracing::field::display(&e));
                return Err(e);
            }
        };
        let store = self.id.clone();
        // The span lasts as long as the download: it goes with the stream.
        Ok(chunks(response.into_body())
            .map_err(move |e| {
                let e = StorageError::Unavailable {
                    store: store.clone(),
                    reason: format!("shard download broke off: {e}"),
                };
                span.record("error", tracing::field::display(&e));
                e
            })
            .boxed())
    }

    async fn stat(&self, id: ShardId) -> Result<Option<ShardStat>, StorageError> {
        self.unary(protocol::STAT, &self.shard_request(id)).await
    }

    async fn delete(&self, id: ShardId) -> Result<bool, StorageError> {
        self.unary(protocol::DELETE, &self.shard_request(id)).await
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        let request = ListRequest {
            store: self.id.clone(),
            after,
            limit,
        };
        self.unary(protocol::LIST, &request).await
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        self.unary(protocol::HEALTH, &self.store_request()).await
    }

    /// A node scrubs its own disks.
    fn self_scrubbing(&self) -> Option<&dyn SelfScrubbing> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl SelfScrubbing for Remote {
    async fn scrub_findings(&self) -> Result<Vec<ScrubFinding>, StorageError> {
        self.unary(protocol::SCRUB_FINDINGS, &self.store_request())
            .await
    }

    async fn acknowledge_findings(&self, through: u64) -> Result<(), StorageError> {
        let request = AckRequest {
            store: self.id.clone(),
            through,
        };
        let _removed: u64 = self.unary(protocol::SCRUB_ACK, &request).await?;
        Ok(())
    }

    async fn start_scrub(&self) -> Result<(), StorageError> {
        self.unary(protocol::SCRUB_START, &()).await
    }

    /// The node reads the whole shard before it answers: the call may take
    /// as long as reading it at [`VERIFY_MIN_RATE`]. A node that does not
    /// know the call (an older version) has the shard read back instead.
    async fn verify_shard(&self, id: ShardId) -> Result<ShardSummary, StorageError> {
        let Some(stat) = self.stat(id).await? else {
            return Err(StorageError::NotFound(id));
        };
        let within = self.timeout + Duration::from_secs(stat.size / VERIFY_MIN_RATE);
        let response = self
            .post(protocol::VERIFY, &self.shard_request(id), within)
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            let path_unknown = decode_answer::<()>(response)
                .await
                .err()
                .is_some_and(|reason| reason.contains(protocol::VERIFY));
            if path_unknown {
                return crate::repair::scrub_shard(self, id).await;
            }
            return Err(StorageError::NotFound(id));
        }
        let answer = decode_answer(response)
            .await
            .map_err(|e| self.unavailable(e))?;
        match answer {
            VerifyAnswer::Intact { header, trailer } => {
                let header = ShardHeader::decode_of(id, &header)?;
                let trailer = ShardTrailer::decode(id, &trailer)?;
                Ok(ShardSummary { header, trailer })
            }
            VerifyAnswer::Missing => Err(StorageError::NotFound(id)),
            VerifyAnswer::Corrupt(reason) => Err(StorageError::corrupt(id, reason)),
        }
    }
}
