//! A browser upload into S3 with memory bounded by [`PART`], whatever the
//! file's size: the multipart form's file field is read a part at a time;
//! a file of one part is one `PutObject`, a larger one an S3 multipart
//! upload (S3 wants each request's length up front, which a form field
//! does not say). The console runs a few uploads at once (the rest wait),
//! so it buffers a few parts at most.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use http::Method;
use s3s::Body;
use serde::Deserialize;

use super::as_key::{AsKey, Call, S3CallError};
use crate::s3::post_form::FileStream;

/// Bytes buffered at most per upload: one part.
pub(crate) const PART: usize = 8 * 1024 * 1024;

/// `InitiateMultipartUploadResult`.
#[derive(Debug, Deserialize)]
struct Initiated {
    #[serde(rename = "UploadId")]
    upload_id: String,
}

/// Reads up to [`PART`] bytes of `file`: the part, and whether the file ended.
async fn next_part(file: &mut FileStream) -> Result<(Bytes, bool), S3CallError> {
    let mut part = BytesMut::new();
    while part.len() < PART {
        match file.next().await {
            Some(Ok(chunk)) => part.extend_from_slice(&chunk),
            // The browser's form, not S3, is at fault: refused as S3
            // refuses a malformed browser upload.
            Some(Err(e)) => {
                return Err(S3CallError::Refused {
                    status: http::StatusCode::BAD_REQUEST,
                    code: "MalformedPOSTRequest".into(),
                    message: e.to_string(),
                });
            }
            None => return Ok((part.freeze(), true)),
        }
    }
    Ok((part.freeze(), false))
}

/// Stores `file` as `bucket`/`key`, signed as `s3`'s key.
pub(crate) async fn store(
    s3: &AsKey<'_>,
    bucket: &str,
    key: &str,
    mut file: FileStream,
) -> Result<(), S3CallError> {
    let (first, ended) = next_part(&mut file).await?;
    if ended {
        let call = Call::new(Method::PUT, Some(bucket), Some(key)).body(Body::from(first));
        return s3.send(call).await.map(drop);
    }
    let create = Call::new(Method::POST, Some(bucket), Some(key)).query("uploads", "");
    let Initiated { upload_id } = s3.xml(create).await?;
    let result = parts(s3, bucket, key, &upload_id, first, &mut file).await;
    if result.is_err() {
        let abort =
            Call::new(Method::DELETE, Some(bucket), Some(key)).query("uploadId", upload_id.clone());
        if let Err(e) = s3.send(abort).await {
            tracing::warn!(bucket, key, error = %e, "console: aborting a failed upload");
        }
    }
    result
}

/// Uploads the parts from `first` on, then completes the upload.
async fn parts(
    s3: &AsKey<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    first: Bytes,
    file: &mut FileStream,
) -> Result<(), S3CallError> {
    let mut done = String::new();
    let (mut part, mut ended) = (first, false);
    for number in 1u32.. {
        if part.is_empty() && number > 1 {
            break;
        }
        let call = Call::new(Method::PUT, Some(bucket), Some(key))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .body(Body::from(part));
        let answer = s3.send(call).await?;
        let etag = answer
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        done.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            etag.replace('&', "&amp;").replace('<', "&lt;")
        ));
        if ended {
            break;
        }
        (part, ended) = next_part(file).await?;
    }
    let complete = Call::new(Method::POST, Some(bucket), Some(key))
        .query("uploadId", upload_id)
        .body(Body::from(format!(
            "<CompleteMultipartUpload>{done}</CompleteMultipartUpload>"
        )));
    s3.send(complete).await.map(drop)
}
