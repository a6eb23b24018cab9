//! Bodies between s3s and the data layer: a request's body (with its
//! `Content-Length`) in as a data-layer [`Body`] with S3's upload limit,
//! stored data out as an s3s [`StreamingBlob`].

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use s3s::dto::StreamingBlob;

use crate::data::{Body, DataStream, Destination, IngestOptions, Integrity, body_stream};

/// The largest body one `PutObject` or `UploadPart` may declare, and the
/// largest object `CopyObject` or `UploadPartCopy` copies (S3: 5 GiB).
const MAX_UPLOAD_SIZE: u64 = 5 << 30;

/// A request's body (none: empty) and its `Content-Length`.
pub(crate) fn request_body(body: Option<StreamingBlob>, content_length: Option<i64>) -> Body {
    Body {
        stream: match body {
            Some(b) => body_stream(b),
            None => futures::stream::empty().boxed(),
        },
        size_hint: content_length.and_then(|l| u64::try_from(l).ok()),
    }
}

/// How an upload or a copy to `destination` in `bucket` is stored: as
/// the bucket's storage policy says, within S3's upload limit, checked
/// against `integrity`.
pub(crate) fn upload<'a>(
    bucket: &'a str,
    destination: Destination,
    integrity: &'a Integrity,
) -> IngestOptions<'a> {
    IngestOptions {
        bucket,
        destination,
        max_size: MAX_UPLOAD_SIZE,
        integrity,
    }
}

/// A stream made `Sync` for s3s's bodies (it is only ever polled through
/// `&mut`, so the lock is never contended).
struct SyncStream<S>(Mutex<S>);

impl<S> Stream for SyncStream<S>
where
    S: Stream + Unpin,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        Pin::new(inner).poll_next(cx)
    }
}

/// A data stream as a response body.
pub(crate) fn blob(stream: DataStream) -> StreamingBlob {
    sync_blob(stream)
}

/// Any byte stream as an s3s body (a browser upload's file, say).
pub(crate) fn sync_blob<S, E>(stream: S) -> StreamingBlob
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    StreamingBlob::wrap(SyncStream(Mutex::new(stream)))
}
