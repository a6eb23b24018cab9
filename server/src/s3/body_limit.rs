//! Request bodies s3s reads whole before the gateway sees them (the XML of
//! DeleteObjects, CompleteMultipartUpload, bucket and object settings) are
//! bounded: a larger one is refused with `MaxMessageLengthExceeded` from
//! its `Content-Length`, before a byte of it is read. (s3s's own limit
//! answers 500 where it trips, so it is set to the same size as a backstop.)

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use s3s::{S3Result, s3_error};

/// Largest XML request body. A CompleteMultipartUpload of 10,000 parts
/// with every checksum listed takes about 4 MiB, a DeleteObjects of 1,000
/// keys of 1,024 bytes about 1.1 MiB.
pub(crate) const XML_BODY_LIMIT: usize = 8 << 20;

/// Operations whose body is object data streamed to the disks, not XML.
const STREAMED: [&str; 4] = [
    "PutObject",
    "UploadPart",
    "PostObject",
    "WriteGetObjectResponse",
];

/// Refuses a request to operation `op` whose body would be larger than
/// [`XML_BODY_LIMIT`], or whose length is not declared, unless `op`
/// streams its body.
pub(crate) fn check(op: &str, headers: &HeaderMap) -> S3Result<()> {
    if STREAMED.contains(&op) {
        return Ok(());
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(len) if len > XML_BODY_LIMIT as u64 => Err(s3_error!(
            MaxMessageLengthExceeded,
            "Your request was too big: at most {XML_BODY_LIMIT} bytes."
        )),
        None if headers.contains_key(TRANSFER_ENCODING) => Err(s3_error!(MissingContentLength)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (http::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn xml_bodies_are_bounded_and_object_data_is_not() {
        let at_limit = XML_BODY_LIMIT.to_string();
        let over = (XML_BODY_LIMIT + 1).to_string();
        let code = |op, h: &HeaderMap| check(op, h).err().map(|e| e.code().as_str().to_owned());
        assert_eq!(
            code("DeleteObjects", &headers(&[("content-length", &at_limit)])),
            None
        );
        assert_eq!(
            code("DeleteObjects", &headers(&[("content-length", &over)])).as_deref(),
            Some("MaxMessageLengthExceeded")
        );
        assert_eq!(
            code(
                "CompleteMultipartUpload",
                &headers(&[("transfer-encoding", "chunked")])
            )
            .as_deref(),
            Some("MissingContentLength")
        );
        assert_eq!(code("GetObject", &headers(&[])), None);
        assert_eq!(
            code("PutObject", &headers(&[("content-length", &over)])),
            None
        );
        assert_eq!(
            code("UploadPart", &headers(&[("transfer-encoding", "chunked")])),
            None
        );
    }
}
