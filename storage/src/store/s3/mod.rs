//! [`S3Bucket`]: shards kept as objects in an S3-compatible bucket
//! (Backblaze B2, Cloudflare R2, AWS S3, another Tessera …), so an
//! off-site bucket can hold some shards of every segment.
//!
//! Layout under the configured prefix (`<prefix>/`, or the bucket's root
//! when the prefix is empty):
//!
//! ```text
//! store.id                                   the store's identity (see [`StoreIdentity`])
//! <object hex>-<part as 8 hex>-<index as 4 hex>   one object per shard ([`ShardId::file_name`])
//! ```
//!
//! Shard names are fixed-width hex, so the bucket's key order (UTF-8
//! bytes) is [`ShardId`] order and [`ShardStore::list`] pages with
//! `start-after` straight from the bucket's listing. The store only moves
//! bytes: shards arrive sealed and checksummed by the gateway.
//!
//! **Puts** need the length of a body before it is sent, which a shard
//! stream does not tell: the store gathers up to [`PART_SIZE`] bytes in
//! memory. A shard that ends within it goes in one `PUT`; a longer one
//! goes as a multipart upload of `PART_SIZE` parts, one part in memory at
//! a time, so a shard upload holds at most `PART_SIZE` bytes whatever the
//! shard's size (a segment is a whole object or part, up to 5 GiB). Every
//! request carries its body's SHA-256 in the signature and its MD5 in
//! `Content-MD5`, so the bucket refuses a body damaged or cut on the way;
//! the shard is durable once the bucket answers `200` to the `PUT` or
//! to `CompleteMultipartUpload`. A failed or abandoned multipart upload is
//! aborted; one the gateway could not abort (it died) leaves only parts
//! that are no object: a lifecycle rule on the bucket
//! (`AbortIncompleteMultipartUpload`) reclaims their space.
//!
//! **Identity**: the store's id is minted once, at first use, into the
//! `store.id` object (the same text as a local disk's `store.id`, written
//! with `If-None-Match: *` so two gateways starting at once agree on one),
//! and read from there on every later start.
//!
//! **Health and capacity**: a bucket is probed with `HEAD` on the bucket;
//! it has no fixed size, so capacity and free space are reported as
//! `u64::MAX` (unlimited).

mod client;
pub mod sigv4;
mod xml;

pub use client::S3Error;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::Fuse;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LAST_MODIFIED, RANGE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tessera_net::body::chunks;

use self::client::{Call, Client, error_in_body, status_error};
use super::{ByteStream, ID_FILE, ShardId, ShardStat, ShardStore, StoreHealth, StoreIdentity};
use crate::error::StorageError;

/// Bytes of a shard gathered before they are sent: a whole small shard,
/// or one part of a multipart upload (S3 wants parts of 5 MiB or more,
/// but the last).
pub const PART_SIZE: usize = 8 << 20;

/// Most keys one listing request asks for (S3's own ceiling).
const LIST_PAGE: usize = 1000;

/// The header carrying a body's MD5, base64.
const CONTENT_MD5: HeaderName = HeaderName::from_static("content-md5");

/// Where a bucket store keeps its shards and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3BucketConfig {
    /// `https://host[:port]` (or `http://` for a bucket on this machine or
    /// a trusted network); requests are path-style, `/<bucket>/<key>`.
    pub endpoint: String,
    /// The bucket, which must exist.
    pub bucket: String,
    /// The key prefix the store's objects go under (no leading or trailing
    /// `/`), empty for the bucket's root.
    pub prefix: String,
    /// The region requests are signed for.
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// A PEM file of the CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How long a request may wait for its answer (a download: for each
    /// piece of its body), and a connection to be made.
    pub timeout: Duration,
}

impl std::fmt::Debug for S3BucketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BucketConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A shard store in an S3 bucket (see the module docs).
#[derive(Debug, Clone)]
pub struct S3Bucket {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: String,
    client: Client,
    /// `<prefix>/`, or empty.
    prefix: String,
}

impl S3Bucket {
    /// Opens the store `config` names: reads its identity from the bucket,
    /// minting and saving one if the bucket (under the prefix) has none.
    /// Fails when the bucket cannot be reached or refuses the credentials.
    pub async fn open(config: &S3BucketConfig) -> Result<S3Bucket, S3Error> {
        let prefix = config.prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let client = Client::new(config)?;
        let id_key = format!("{prefix}{ID_FILE}");
        let origin = PathBuf::from(format!("{}/{}/{id_key}", client.endpoint(), config.bucket));
        let identity = match read_identity(&client, &id_key, &origin).await? {
            Some(identity) => identity,
            None => mint_identity(&client, &id_key, &origin).await?,
        };
        Ok(S3Bucket {
            inner: Arc::new(Inner {
                id: identity.id,
                client,
                prefix,
            }),
        })
    }

    /// The object key of shard `id`.
    fn key(&self, id: ShardId) -> String {
        format!("{}{}", self.inner.prefix, id.file_name())
    }

    /// A failed request as the data plane sees it.
    fn fail(&self, what: &str, e: S3Error) -> StorageError {
        match e {
            S3Error::Timeout(_) => StorageError::Timeout,
            e => StorageError::Unavailable {
                store: self.inner.id.clone(),
                reason: format!("{what}: {e}"),
            },
        }
    }

    /// A PUT of the whole shard in `body`.
    async fn put_whole(&self, key: &str, body: Bytes) -> Result<(), S3Error> {
        let mut call = Call::new(Method::PUT, Some(key));
        call.headers = body_headers(&body);
        call.body = body;
        self.inner.client.call(call).await.map(drop)
    }

    /// Uploads the shard as a multipart upload: `first`, then the rest of
    /// `data` in parts of [`PART_SIZE`]. Returns the bytes uploaded.
    async fn put_parts(
        &self,
        key: &str,
        first: Bytes,
        data: &mut Fuse<ByteStream>,
        pending: &mut BytesMut,
    ) -> Result<u64, PutError> {
        let client = &self.inner.client;
        let mut create = Call::new(Method::POST, Some(key));
        create.query = vec![("uploads", String::new())];
        let (_, body) = client.call(create).await?;
        let upload_id = xml::parse::<xml::InitiatedUpload>(&String::from_utf8_lossy(&body))
            .map_err(S3Error::Answer)?
            .upload_id;
        let abort = AbortOnDrop {
            store: Some(self.clone()),
            key: key.to_owned(),
            upload_id: upload_id.clone(),
        };
        let mut etags = Vec::new();
        let (mut part, mut last) = (first, false);
        let mut total = 0u64;
        loop {
            total += part.len() as u64;
            let mut call = Call::new(Method::PUT, Some(key));
            call.query = vec![
                ("partNumber", (etags.len() + 1).to_string()),
                ("uploadId", upload_id.clone()),
            ];
            call.headers = body_headers(&part);
            call.body = part;
            let (headers, _) = client.call(call).await?;
            let etag = headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| S3Error::Answer("an uploaded part has no ETag".into()))?;
            etags.push(etag.to_owned());
            if last {
                break;
            }
            let (next, ended) = gather(data, pending).await?;
            if next.is_empty() {
                break;
            }
            (part, last) = (next, ended);
        }
        let mut complete = Call::new(Method::POST, Some(key));
        complete.query = vec![("uploadId", upload_id)];
        complete.body = Bytes::from(xml::complete_upload(&etags));
        complete.headers = body_headers(&complete.body);
        complete
            .headers
            .push((CONTENT_TYPE, HeaderValue::from_static("application/xml")));
        let (_, body) = client.call(complete).await?;
        if let Some(e) = error_in_body(&body) {
            return Err(e.into());
        }
        abort.disarm();
        Ok(total)
    }

    /// `HEAD` of shard `key`: its size and age, `None` when absent.
    async fn head(&self, key: &str) -> Result<Option<ShardStat>, S3Error> {
        let client = &self.inner.client;
        let response = client.send(Call::new(Method::HEAD, Some(key))).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(status, &[]));
        }
        let header = |name: HeaderName| {
            response
                .headers()
                .get(&name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .ok_or_else(|| S3Error::Answer(format!("HEAD answer without {name}")))
        };
        let size = header(CONTENT_LENGTH)?
            .parse()
            .map_err(|_| S3Error::Answer("bad Content-Length".into()))?;
        let modified = httpdate::parse_http_date(header(LAST_MODIFIED)?)
            .map_err(|e| S3Error::Answer(format!("bad Last-Modified: {e}")))?;
        Ok(Some(ShardStat { size, modified }))
    }

    /// A `GET` of `range` of `key`.
    async fn download(&self, id: ShardId, range: Range<u64>) -> Result<ByteStream, S3Error> {
        let client = &self.inner.client;
        let key = self.key(id);
        let mut call = Call::new(Method::GET, Some(&key));
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        call.headers = vec![(
            RANGE,
            HeaderValue::from_str(&header).map_err(|e| S3Error::Answer(e.to_string()))?,
        )];
        let response = client.send(call).await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT => {}
            // Asked from the start, a whole short object may come as 200.
            StatusCode::OK if range.start == 0 => {}
            // The range starts past the end: only the bytes that exist, none.
            StatusCode::RANGE_NOT_SATISFIABLE => return Ok(futures::stream::empty().boxed()),
            status => {
                let body = client.read_small(response.into_body()).await?;
                return Err(status_error(status, &body));
            }
        }
        let length: Option<u64> = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        if length.is_some_and(|n| n > range.end - range.start) {
            return Err(S3Error::Answer(format!(
                "{} bytes for a range of {}",
                length.unwrap_or_default(),
                range.end - range.start
            )));
        }
        let (store, timeout) = (self.inner.id.clone(), client.timeout());
        let body = chunks(response.into_body()).boxed();
        Ok(futures::stream::unfold(Some(body), move |body| {
            let store = store.clone();
            async move {
                let mut body = body?;
                let failed = |reason: String| StorageError::Unavailable {
                    store,
                    reason: format!("shard download broke off: {reason}"),
                };
                match tokio::time::timeout(timeout, body.next()).await {
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
                    Ok(Some(Err(e))) => Some((Err(failed(e.to_string())), None)),
                    Ok(None) => None,
                    Err(_) => Some((Err(StorageError::Timeout), None)),
                }
            }
        })
        .boxed())
    }

    /// Up to `limit` shards after `after`, paging through the listing.
    async fn list_shards(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, S3Error> {
        let prefix = &self.inner.prefix;
        let mut start_after = after.map(|a| self.key(a));
        let mut out = Vec::new();
        while out.len() < limit {
            let mut call = Call::new(Method::GET, None);
            call.query = vec![
                ("list-type", "2".to_owned()),
                ("prefix", prefix.clone()),
                ("max-keys", (limit - out.len()).min(LIST_PAGE).to_string()),
            ];
            if let Some(key) = &start_after {
                call.query.push(("start-after", key.clone()));
            }
            let (_, body) = self.inner.client.call(call).await?;
            let page: xml::ListPage =
                xml::parse(&String::from_utf8_lossy(&body)).map_err(S3Error::Answer)?;
            if let Some(last) = page.contents.last() {
                start_after = Some(last.key.clone());
            }
            // Other objects under the prefix (`store.id`) are no shards.
            out.extend(page.contents.iter().filter_map(|entry| {
                ShardId::from_file_name(entry.key.strip_prefix(prefix.as_str())?)
            }));
            if !page.is_truncated || page.contents.is_empty() {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

/// Headers of a request with `body`: its MD5, for the bucket to check.
fn body_headers(body: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
    let md5 = base64::engine::general_purpose::STANDARD.encode(crate::md5::Md5::digest(body));
    HeaderValue::from_str(&md5)
        .map(|v| vec![(CONTENT_MD5, v)])
        .unwrap_or_default()
}

/// Why a shard upload failed: its data stream, or the bucket.
#[derive(Debug, thiserror::Error)]
enum PutError {
    #[error(transparent)]
    Data(#[from] StorageError),
    #[error(transparent)]
    Bucket(#[from] S3Error),
}

/// Takes bytes from `data` (after those left in `pending`) until
/// [`PART_SIZE`] are gathered or it ends: the gathered bytes (at most
/// `PART_SIZE`; the rest stays in `pending`) and whether nothing is left.
/// `data` is fused: it is asked again after it ended while `pending`
/// holds more than a part.
async fn gather(
    data: &mut Fuse<ByteStream>,
    pending: &mut BytesMut,
) -> Result<(Bytes, bool), StorageError> {
    let mut ended = false;
    while pending.len() < PART_SIZE {
        match data.next().await {
            Some(chunk) => pending.extend_from_slice(&chunk?),
            None => {
                ended = true;
                break;
            }
        }
    }
    let take = pending.len().min(PART_SIZE);
    Ok((pending.split_to(take).freeze(), ended && pending.is_empty()))
}

/// Aborts a multipart upload that did not complete, also when the put is
/// cancelled (its future dropped), so its parts do not linger.
struct AbortOnDrop {
    store: Option<S3Bucket>,
    key: String,
    upload_id: String,
}

impl AbortOnDrop {
    /// The upload completed: nothing to abort.
    fn disarm(mut self) {
        self.store = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let (Some(store), Ok(runtime)) = (self.store.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (key, upload_id) = (
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.upload_id),
        );
        runtime.spawn(async move {
            let mut call = Call::new(Method::DELETE, Some(&key));
            call.query = vec![("uploadId", upload_id)];
            if let Err(e) = store.inner.client.call(call).await {
                tracing::warn!(store = store.inner.id, key, error = %e, "could not abort a shard upload");
            }
        });
    }
}

/// The identity saved in the bucket, `None` when it has none yet.
async fn read_identity(
    client: &Client,
    key: &str,
    origin: &Path,
) -> Result<Option<StoreIdentity>, S3Error> {
    let response = client.send(Call::new(Method::GET, Some(key))).await?;
    let status = response.status();
    let body = client.read_small(response.into_body()).await?;
    match status {
        StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => {
            let text = String::from_utf8(body.to_vec()).map_err(|_| {
                S3Error::Identity(StorageError::Identity {
                    path: origin.to_path_buf(),
                    reason: "it is not UTF-8 text".into(),
                })
            })?;
            StoreIdentity::parse(&text, origin)
                .map(Some)
                .map_err(S3Error::Identity)
        }
        s => Err(status_error(s, &body)),
    }
}

/// Mints an identity and saves it, unless another gateway saved one first
/// (then that one is the store's).
async fn mint_identity(
    client: &Client,
    key: &str,
    origin: &Path,
) -> Result<StoreIdentity, S3Error> {
    let identity = StoreIdentity::mint(None);
    let text = identity.to_text().map_err(S3Error::Identity)?;
    let mut call = Call::new(Method::PUT, Some(key));
    call.body = Bytes::from(text);
    call.headers = body_headers(&call.body);
    call.headers
        .push((IF_NONE_MATCH, HeaderValue::from_static("*")));
    match client.call(call).await {
        Ok(_) => {
            tracing::info!(id = identity.id, at = %origin.display(), "minted a bucket store id");
            Ok(identity)
        }
        Err(S3Error::Status {
            status: StatusCode::PRECONDITION_FAILED,
            ..
        }) => read_identity(client, key, origin)
            .await?
            .ok_or_else(|| S3Error::Answer(format!("{} vanished", origin.display()))),
        Err(e) => Err(e),
    }
}

#[async_trait::async_trait]
impl ShardStore for S3Bucket {
    fn id(&self) -> &str {
        &self.inner.id
    }

    async fn put(&self, id: ShardId, data: ByteStream) -> Result<u64, StorageError> {
        let key = self.key(id);
        let mut data = data.fuse();
        let mut pending = BytesMut::new();
        let (first, ended) = gather(&mut data, &mut pending).await?;
        let len = if ended {
            let len = first.len() as u64;
            self.put_whole(&key, first)
                .await
                .map_err(|e| self.fail(&format!("storing {id}"), e))?;
            len
        } else {
            match self.put_parts(&key, first, &mut data, &mut pending).await {
                Ok(len) => len,
                Err(PutError::Data(e)) => return Err(e),
                Err(PutError::Bucket(e)) => return Err(self.fail(&format!("storing {id}"), e)),
            }
        };
        metrics::counter!("tessera_storage_bucket_put_bytes_total").increment(len);
        Ok(len)
    }

    async fn get(&self, id: ShardId, range: Range<u64>) -> Result<ByteStream, StorageError> {
        if range.is_empty() {
            // No bytes to ask for, but a missing shard is still missing.
            return match self.stat(id).await? {
                Some(_) => Ok(futures::stream::empty().boxed()),
                None => Err(StorageError::NotFound(id)),
            };
        }
        match self.download(id, range).await {
            Ok(stream) => Ok(stream),
            Err(S3Error::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Err(StorageError::NotFound(id)),
            Err(e) => Err(self.fail(&format!("reading {id}"), e)),
        }
    }

    async fn stat(&self, id: ShardId) -> Result<Option<ShardStat>, StorageError> {
        self.head(&self.key(id))
            .await
            .map_err(|e| self.fail(&format!("stat of {id}"), e))
    }

    async fn delete(&self, id: ShardId) -> Result<bool, StorageError> {
        // S3 answers a DELETE alike whether or not the object was there:
        // HEAD first says which. (Two deletes racing may both say true.)
        let key = self.key(id);
        let fail = |e| self.fail(&format!("deleting {id}"), e);
        if self.head(&key).await.map_err(fail)?.is_none() {
            return Ok(false);
        }
        self.inner
            .client
            .call(Call::new(Method::DELETE, Some(&key)))
            .await
            .map_err(fail)?;
        Ok(true)
    }

    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> Result<Vec<ShardId>, StorageError> {
        self.list_shards(after, limit)
            .await
            .map_err(|e| self.fail("listing shards", e))
    }

    async fn health(&self) -> Result<StoreHealth, StorageError> {
        let call = Call::new(Method::HEAD, None);
        let response = self
            .inner
            .client
            .send(call)
            .await
            .map_err(|e| self.fail("probing the bucket", e))?;
        let ok = response.status().is_success();
        if !ok {
            tracing::debug!(store = self.inner.id, status = %response.status(), "bucket probe refused");
        }
        Ok(StoreHealth {
            capacity: u64::MAX,
            free: u64::MAX,
            ok,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunks of `sizes` bytes, chunk `i` all `i`, fused as a put fuses its
    /// input (an unfold panics if polled past its end).
    fn stream_of(sizes: Vec<usize>) -> Fuse<ByteStream> {
        let chunks = futures::stream::unfold(sizes.into_iter().enumerate(), |mut it| async {
            let (i, n) = it.next()?;
            Some((Ok(Bytes::from(vec![i as u8; n])), it))
        });
        chunks.boxed().fuse()
    }

    #[tokio::test]
    async fn gathers_whole_parts_and_says_when_the_stream_ended() {
        let mib = 1 << 20;
        // 3 × 3 MiB: one 8 MiB part, then the last 1 MiB.
        let mut data = stream_of(vec![3 * mib; 3]);
        let mut pending = BytesMut::new();
        let (first, ended) = gather(&mut data, &mut pending).await.unwrap();
        assert_eq!((first.len(), ended), (PART_SIZE, false));
        assert_eq!(&first[6 * mib..6 * mib + 1], [2]);
        let (last, ended) = gather(&mut data, &mut pending).await.unwrap();
        assert_eq!((last.len(), ended), (mib, true));
        assert_eq!(last[0], 2);

        // One chunk of more than a part, left over after the stream ended.
        let mut data = stream_of(vec![PART_SIZE + 5]);
        let mut pending = BytesMut::new();
        let (first, ended) = gather(&mut data, &mut pending).await.unwrap();
        assert_eq!((first.len(), ended), (PART_SIZE, false));
        let (rest, ended) = gather(&mut data, &mut pending).await.unwrap();
        assert_eq!((rest.len(), ended), (5, true));

        // A stream of exactly one part: not ended until it says so.
        let mut data = stream_of(vec![4 * mib, 4 * mib]);
        let mut pending = BytesMut::new();
        let (first, ended) = gather(&mut data, &mut pending).await.unwrap();
        assert_eq!((first.len(), ended), (PART_SIZE, false));
        let (rest, ended) = gather(&mut data, &mut pending).await.unwrap();
        assert_eq!((rest.len(), ended), (0, true));

        let mut empty = stream_of(vec![]);
        let (none, ended) = gather(&mut empty, &mut BytesMut::new()).await.unwrap();
        assert_eq!((none.len(), ended), (0, true));
    }
}
