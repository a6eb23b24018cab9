//! A request's integrity claims, read off its headers: `Content-MD5`,
//! `x-amz-checksum-*` values, the checksum algorithm asked for
//! (`x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm`) and an
//! aws-chunked checksum trailer (`x-amz-trailer`), as the data layer's
//! [`Integrity`]. Malformed claims are refused here (`InvalidDigest`,
//! `InvalidRequest`); claims that do not match the body are refused by the
//! data layer once it has been read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use s3s::{S3Error, TrailingHeaders, s3_error};
use tessera_storage::ChecksumAlgorithm;

use crate::data::{Integrity, Trailers};

/// The header (and trailer) that carries `alg`'s checksum.
pub(crate) fn header_name(alg: ChecksumAlgorithm) -> String {
    format!("x-amz-checksum-{}", alg.name().to_ascii_lowercase())
}

fn algorithm(name: &str) -> Result<ChecksumAlgorithm, S3Error> {
    ChecksumAlgorithm::from_name(&name.to_ascii_uppercase())
        .ok_or_else(|| s3_error!(InvalidRequest, "unsupported checksum algorithm {name}"))
}

impl Trailers for TrailingHeaders {
    fn checksum(&self, algorithm: ChecksumAlgorithm) -> Option<String> {
        self.read(|h| {
            h.get(header_name(algorithm))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .flatten()
    }
}

/// The claims of a request: its headers, `Content-MD5`, the requested
/// algorithm and its trailers.
pub(crate) fn from_request(
    headers: &HeaderMap,
    content_md5: Option<&str>,
    requested: Option<&str>,
    trailers: Option<TrailingHeaders>,
) -> Result<Integrity, S3Error> {
    let md5 = content_md5
        .map(|v| {
            BASE64
                .decode(v.trim())
                .ok()
                .and_then(|d| <[u8; 16]>::try_from(d).ok())
                .ok_or_else(|| s3_error!(InvalidDigest))
        })
        .transpose()?;
    let mut declared = Vec::new();
    for alg in ChecksumAlgorithm::ALL {
        if let Some(v) = headers.get(header_name(alg)) {
            let v = v
                .to_str()
                .map_err(|_| s3_error!(InvalidRequest, "invalid {} header", header_name(alg)))?;
            declared.push((alg, v.trim().to_owned()));
        }
    }
    let trailer = headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.trim()
                .to_ascii_lowercase()
                .strip_prefix("x-amz-checksum-")
                .map(str::to_owned)
        })
        .map(|n| algorithm(&n))
        .transpose()?;
    let requested = requested.map(algorithm).transpose()?.into_iter().collect();
    Ok(Integrity {
        md5,
        declared,
        trailer,
        requested,
        trailers: trailers.map(|t| Box::new(t) as Box<dyn Trailers>),
    })
}

/// No claims (a copy's source was verified when it was written); the
/// algorithm named (if any) computed and stored.
pub(crate) fn computing(requested: Option<&str>) -> Result<Integrity, S3Error> {
    Ok(Integrity::computing(requested.map(algorithm).transpose()?))
}
