//! AWS Signature Version 4 for requests to an S3 bucket: the
//! `Authorization` header over a canonical request (method, path, query,
//! signed headers, payload hash), with a key derived from the secret, the
//! day, the region and the service.

use hmac::{Hmac, KeyInit as _, Mac as _};
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

type HmacSha256 = Hmac<Sha256>;

/// The algorithm named in the string to sign and the `Authorization` header.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The `x-amz-date` header every signed request carries.
pub const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");

/// The SHA-256 of no bytes, in hex: the payload hash of a request without a body.
pub(super) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Signs requests with one access key for one region and service.
#[derive(Clone)]
pub struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    service: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `service` (`s3`) in `region`.
    pub fn new(access_key: &str, secret_key: &str, region: &str, service: &str) -> Self {
        Signer {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        }
    }

    /// Adds `x-amz-date` (`now`) and `Authorization` to `headers`, signing
    /// every header in it (which must include `host`). `path` is the
    /// request path as sent (already [`uri_encode`]d), `query` its query
    /// string as sent (already [`canonical_query`]), `payload_hash` the
    /// hex SHA-256 of the body or `UNSIGNED-PAYLOAD`.
    pub fn sign(
        &self,
        method: &http::Method,
        path: &str,
        query: &str,
        headers: &mut HeaderMap,
        payload_hash: &str,
        now: OffsetDateTime,
    ) {
        let stamp = now
            .format(format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        let day = &stamp[..stamp.len().min(8)];
        headers.insert(
            X_AMZ_DATE,
            HeaderValue::from_str(&stamp).unwrap_or(HeaderValue::from_static("")),
        );

        let mut names: Vec<&HeaderName> = headers.keys().collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut canonical_headers = String::new();
        for name in &names {
            let values: Vec<&str> = headers
                .get_all(*name)
                .iter()
                .map(|v| v.to_str().unwrap_or_default().trim())
                .collect();
            canonical_headers.push_str(&format!("{}:{}\n", name.as_str(), values.join(",")));
        }
        let signed_headers = names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_request = format!(
            "{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        let scope = format!("{day}/{}/{}/aws4_request", self.region, self.service);
        let string_to_sign = format!(
            "{ALGORITHM}\n{stamp}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let key = signing_key(&self.secret_key, day, &self.region, &self.service);
        let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        let authorization = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key
        );
        // Access keys are printable ASCII; one that is not fails the request
        // with an error from the server rather than a panic here.
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&authorization).unwrap_or(HeaderValue::from_static("")),
        );
    }
}

/// The SigV4 signing key of `secret` for `day` (`YYYYMMDD`), `region` and
/// `service`: `AWS4<secret>` HMAC-chained through the credential scope.
/// The S3 gateway checks browser-upload (POST form) signatures with it too.
pub fn signing_key(secret: &str, day: &str, region: &str, service: &str) -> Vec<u8> {
    [
        day.as_bytes(),
        region.as_bytes(),
        service.as_bytes(),
        b"aws4_request",
    ]
    .into_iter()
    .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
        hmac(&key, part)
    })
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `s` percent-encoded as SigV4 wants: every byte but the unreserved
/// characters (`A-Z a-z 0-9 - _ . ~`), and `/` unless `keep_slash`.
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The query string of `params`, encoded and sorted as SigV4's canonical
/// request wants it (and sent as such).
pub fn canonical_query(params: &[(&str, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HOST, RANGE};

    /// The `get-vanilla` case of AWS's SigV4 test suite: `GET /` to
    /// `example.amazonaws.com` at 2015-08-30 12:36:00 UTC, service
    /// `service`, with the suite's example key.
    #[test]
    fn signs_the_get_vanilla_test_vector() {
        let signer = Signer::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "service",
        );
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("example.amazonaws.com"));
        let now = time::macros::datetime!(2015-08-30 12:36:00 UTC);
        signer.sign(&http::Method::GET, "/", "", &mut headers, EMPTY_SHA256, now);
        assert_eq!(headers[X_AMZ_DATE], "20150830T123600Z");
        assert_eq!(
            headers[AUTHORIZATION],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// The GET-object example of the S3 SigV4 documentation ("Example:
    /// GET Object"): a ranged GET of `examplebucket/test.txt`, signing
    /// `range` and `x-amz-content-sha256` besides.
    #[test]
    fn signs_the_s3_get_object_example() {
        let signer = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
            "s3",
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        headers.insert(RANGE, HeaderValue::from_static("bytes=0-9"));
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(EMPTY_SHA256),
        );
        let now = time::macros::datetime!(2013-05-24 00:00:00 UTC);
        let path = format!("/{}", uri_encode("test.txt", true));
        signer.sign(
            &http::Method::GET,
            &path,
            "",
            &mut headers,
            EMPTY_SHA256,
            now,
        );
        assert_eq!(
            headers[AUTHORIZATION],
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn encodes_paths_and_sorts_queries() {
        assert_eq!(uri_encode("a b/c~d+é", true), "a%20b/c~d%2B%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        let query = canonical_query(&[
            ("prefix", "p/q".to_owned()),
            ("list-type", "2".to_owned()),
            ("max-keys", "10".to_owned()),
        ]);
        assert_eq!(query, "list-type=2&max-keys=10&prefix=p%2Fq");
    }
}
