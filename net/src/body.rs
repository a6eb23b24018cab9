//! Request and answer bodies: whole messages (postcard, see [`crate::wire`])
//! or streams of bytes (shard files), behind one boxed type.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;

/// Why a streamed body failed.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request or answer body.
pub type Body = UnsyncBoxBody<Bytes, BodyError>;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body with nothing in it.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body streaming the chunks of `chunks`; an error ends it (the peer sees
/// a reset stream, never a short body taken for a whole one).
pub fn stream<S, E>(chunks: S) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<BodyError> + 'static,
{
    StreamBody::new(chunks.map_ok(Frame::data).map_err(Into::into)).boxed_unsync()
}

/// The data chunks of a received body, as a stream.
pub fn chunks<B>(body: B) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    http_body_util::BodyDataStream::new(body).map_err(Into::into)
}
