//! Conversions between the metadata model and s3s DTOs.

use std::collections::BTreeMap;

use s3s::S3Error;
use s3s::dto::{self, ETag, Timestamp};
use s3s::s3_error;
use tessera_raft::model::{Checksum, Millis, ObjectVersion, Tag};

/// A model time as an S3 timestamp.
pub(crate) fn timestamp(ms: Millis) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

/// Whole seconds of an S3 timestamp (HTTP dates have second precision).
pub(crate) fn seconds(ts: &Timestamp) -> i64 {
    time::OffsetDateTime::from(ts.clone()).unix_timestamp()
}

/// A stored ETag (no quotes) as an S3 ETag.
pub(crate) fn etag(value: &str) -> ETag {
    ETag::Strong(value.to_owned())
}

/// The value of an ETag the client sent, without quotes or weakness marker.
pub(crate) fn etag_value(tag: &ETag) -> &str {
    tag.value()
}

/// Stored checksums as the S3 checksum fields.
pub(crate) fn checksum_fields(sums: &[Checksum]) -> dto::Checksum {
    let mut out = dto::Checksum::default();
    for c in sums {
        let v = Some(c.value.clone());
        match c.algorithm.as_str() {
            "CRC32" => out.checksum_crc32 = v,
            "CRC32C" => out.checksum_crc32c = v,
            "CRC64NVME" => out.checksum_crc64nvme = v,
            "SHA1" => out.checksum_sha1 = v,
            "SHA256" => out.checksum_sha256 = v,
            _ => {}
        }
    }
    if !sums.is_empty() {
        let composite = sums.iter().any(|c| c.value.contains('-'));
        out.checksum_type = Some(dto::ChecksumType::from_static(if composite {
            dto::ChecksumType::COMPOSITE
        } else {
            dto::ChecksumType::FULL_OBJECT
        }));
    }
    out
}

/// Copies the five checksum fields of a [`dto::Checksum`] into an output
/// struct that has fields of the same names.
macro_rules! set_checksums {
    ($out:expr, $sums:expr) => {{
        let sums: s3s::dto::Checksum = $sums;
        $out.checksum_crc32 = sums.checksum_crc32;
        $out.checksum_crc32c = sums.checksum_crc32c;
        $out.checksum_crc64nvme = sums.checksum_crc64nvme;
        $out.checksum_sha1 = sums.checksum_sha1;
        $out.checksum_sha256 = sums.checksum_sha256;
    }};
}
pub(crate) use set_checksums;

/// The five checksum fields of an input struct (a part listed in
/// `CompleteMultipartUpload`, the request itself) as a [`dto::Checksum`]
/// without a type.
macro_rules! checksums_of {
    ($in:expr) => {{
        let i = &$in;
        s3s::dto::Checksum {
            checksum_crc32: i.checksum_crc32.clone(),
            checksum_crc32c: i.checksum_crc32c.clone(),
            checksum_crc64nvme: i.checksum_crc64nvme.clone(),
            checksum_sha1: i.checksum_sha1.clone(),
            checksum_sha256: i.checksum_sha256.clone(),
            checksum_type: None,
        }
    }};
}
pub(crate) use checksums_of;

/// The version id S3 shows for a stored version id (`None` for the null version).
pub(crate) fn shown_version_id(version_id: &str) -> Option<String> {
    (version_id != tessera_raft::model::NULL_VERSION_ID).then(|| version_id.to_owned())
}

/// The checksum algorithms of stored checksums, for listings.
pub(crate) fn checksum_algorithms(sums: &[Checksum]) -> Option<Vec<dto::ChecksumAlgorithm>> {
    if sums.is_empty() {
        return None;
    }
    Some(
        sums.iter()
            .map(|c| dto::ChecksumAlgorithm::from(c.algorithm.clone()))
            .collect(),
    )
}

/// User metadata as S3 returns it (`None` when empty).
pub(crate) fn user_metadata(user: &BTreeMap<String, String>) -> Option<dto::Metadata> {
    if user.is_empty() {
        return None;
    }
    Some(user.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// User metadata from a request (names lower-cased).
pub(crate) fn user_metadata_in(meta: Option<dto::Metadata>) -> BTreeMap<String, String> {
    meta.into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// The `Expires` header as a model string.
pub(crate) fn expires_in(ts: Option<Timestamp>) -> Result<Option<String>, S3Error> {
    let Some(ts) = ts else { return Ok(None) };
    let mut buf = Vec::new();
    ts.format(dto::TimestampFormat::HttpDate, &mut buf)
        .map_err(|e| s3_error!(InvalidArgument, "invalid Expires: {e}"))?;
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| s3_error!(InvalidArgument, "invalid Expires: {e}"))
}

/// A stored `Expires` string as a timestamp (unparseable values are dropped).
pub(crate) fn expires_out(s: Option<&String>) -> Option<Timestamp> {
    s.and_then(|s| Timestamp::parse(dto::TimestampFormat::HttpDate, s).ok())
}

/// The storage class S3 reports for a version stored with `class` (STANDARD
/// when none was given).
pub(crate) fn storage_class(class: Option<&str>) -> dto::StorageClass {
    dto::StorageClass::from(class.unwrap_or(dto::StorageClass::STANDARD).to_owned())
}

/// The owner as S3 lists it.
pub(crate) fn owner(id: &str) -> dto::Owner {
    dto::Owner {
        display_name: Some(id.to_owned()),
        id: Some(id.to_owned()),
    }
}

/// Model tags as an S3 tag set.
pub(crate) fn tag_set(tags: &[Tag]) -> Vec<dto::Tag> {
    tags.iter()
        .map(|t| dto::Tag {
            key: Some(t.key.clone()),
            value: Some(t.value.clone()),
        })
        .collect()
}

/// An S3 tag set as model tags, validated as S3 does (≤ 10 object tags,
/// unique keys of ≤ 128 chars, values of ≤ 256 chars).
pub(crate) fn tags_in(set: Vec<dto::Tag>, max: usize) -> Result<Vec<Tag>, S3Error> {
    let mut out: Vec<Tag> = Vec::with_capacity(set.len());
    for t in set {
        let key = t.key.unwrap_or_default();
        let value = t.value.unwrap_or_default();
        push_tag(&mut out, key, value)?;
    }
    if out.len() > max {
        return Err(s3_error!(InvalidTag, "too many tags"));
    }
    Ok(out)
}

/// Tags from the `x-amz-tagging` header (a URL query string).
pub(crate) fn tags_from_header(header: Option<&str>) -> Result<Vec<Tag>, S3Error> {
    let mut out = Vec::new();
    let Some(header) = header.filter(|h| !h.is_empty()) else {
        return Ok(out);
    };
    for pair in header.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        push_tag(&mut out, url_decode(k)?, url_decode(v)?)?;
    }
    if out.len() > OBJECT_TAG_LIMIT {
        return Err(s3_error!(InvalidTag, "too many tags"));
    }
    Ok(out)
}

/// Most tags one object may carry.
pub(crate) const OBJECT_TAG_LIMIT: usize = 10;
/// Most tags one bucket may carry.
pub(crate) const BUCKET_TAG_LIMIT: usize = 50;

fn push_tag(out: &mut Vec<Tag>, key: String, value: String) -> Result<(), S3Error> {
    if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
        return Err(s3_error!(
            InvalidTag,
            "tag key or value has an invalid length"
        ));
    }
    if out.iter().any(|t| t.key == key) {
        return Err(s3_error!(InvalidTag, "duplicate tag key {key}"));
    }
    out.push(Tag { key, value });
    Ok(())
}

/// Percent-decodes a URL query component (`+` is a space).
pub(crate) fn url_decode(s: &str) -> Result<String, S3Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| s3_error!(InvalidArgument, "bad percent-encoding"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| s3_error!(InvalidArgument, "percent-encoding is not UTF-8"))
}

/// Percent-encodes a key for `encoding-type=url` listings (keeps unreserved
/// characters and `/`).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The system metadata of a version as the headers of a GET/HEAD response.
pub(crate) struct Headers {
    pub(crate) content_type: Option<dto::ContentType>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) content_disposition: Option<String>,
    pub(crate) content_language: Option<String>,
    pub(crate) cache_control: Option<String>,
    pub(crate) expires: Option<Timestamp>,
    pub(crate) website_redirect: Option<String>,
}

impl Headers {
    /// Headers of a version, with `response-*` overrides applied.
    pub(crate) fn of(v: &ObjectVersion, o: Overrides) -> Self {
        let s = &v.system;
        Self {
            content_type: o
                .content_type
                .or_else(|| s.content_type.clone())
                .or_else(|| Some("binary/octet-stream".to_owned())),
            content_encoding: o.content_encoding.or_else(|| s.content_encoding.clone()),
            content_disposition: o
                .content_disposition
                .or_else(|| s.content_disposition.clone()),
            content_language: o.content_language.or_else(|| s.content_language.clone()),
            cache_control: o.cache_control.or_else(|| s.cache_control.clone()),
            expires: o.expires.or_else(|| expires_out(s.expires.as_ref())),
            website_redirect: s.website_redirect.clone(),
        }
    }
}

/// `response-*` query overrides of a GET.
#[derive(Default)]
pub(crate) struct Overrides {
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) content_disposition: Option<String>,
    pub(crate) content_language: Option<String>,
    pub(crate) cache_control: Option<String>,
    pub(crate) expires: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_round_trip() {
        let s = "a b/ü+%&=";
        assert_eq!(url_decode(&url_encode(s)).unwrap(), s);
        assert_eq!(url_encode("a b/c"), "a%20b/c");
    }

    #[test]
    fn tagging_header() {
        let t = tags_from_header(Some("a=1&b=x%20y")).unwrap();
        assert_eq!(t[1].value, "x y");
        assert!(tags_from_header(Some("a=1&a=2")).is_err());
    }
}
