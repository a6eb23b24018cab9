//! The policy document of a browser upload (POST Object): base64 JSON with
//! an `expiration` and `conditions` every form field must meet, as S3
//! documents it ("POST Policy"):
//!
//! - `{"field": "value"}` and `["eq", "$field", "value"]`: the field equals
//!   the value; `["starts-with", "$field", "prefix"]`: it starts with the
//!   prefix (`""`: any value; for `Content-Type` each of a comma-separated
//!   list must); `["content-length-range", min, max]`: the file's size in
//!   bytes, checked while it streams;
//! - field names are case-insensitive, values are not; `$bucket` is the
//!   addressed bucket;
//! - every form field but `x-amz-signature`, `file`, `policy` and
//!   `x-ignore-*` fields, and the bucket, must be named by a condition.
//!
//! A policy that does not parse is 400 `InvalidPolicyDocument`; an expired
//! one, a failed condition or an extra field 403 `AccessDenied` "Invalid
//! according to Policy: …".

use base64::Engine as _;
use s3s::{S3Error, S3Result, s3_error};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One condition of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// The field (lower case, without `$`) equals the value.
    Eq(String, String),
    /// The field starts with the prefix.
    StartsWith(String, String),
    /// The file has from `min` to `max` bytes.
    LengthRange(u64, u64),
}

impl std::fmt::Display for Condition {
    /// The condition as S3 quotes it in "Policy Condition failed: …".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let q = |s: &str| Value::String(s.to_owned()).to_string();
        match self {
            Condition::Eq(field, v) => write!(f, "[\"eq\", {}, {}]", q(&format!("${field}")), q(v)),
            Condition::StartsWith(field, v) => {
                write!(
                    f,
                    "[\"starts-with\", {}, {}]",
                    q(&format!("${field}")),
                    q(v)
                )
            }
            Condition::LengthRange(min, max) => {
                write!(f, "[\"content-length-range\", {min}, {max}]")
            }
        }
    }
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostPolicy {
    /// When it stops being valid.
    pub(crate) expiration: OffsetDateTime,
    /// What the form must meet.
    pub(crate) conditions: Vec<Condition>,
}

/// 400 `InvalidPolicyDocument` with S3's "Invalid Policy: …" message.
fn invalid(why: impl std::fmt::Display) -> S3Error {
    s3_error!(InvalidPolicyDocument, "Invalid Policy: {why}")
}

/// 403 `AccessDenied` "Invalid according to Policy: …".
pub(crate) fn violated(why: impl std::fmt::Display) -> S3Error {
    s3_error!(AccessDenied, "Invalid according to Policy: {why}")
}

/// A condition's field name: `$Name` → `name`.
fn field_name(v: &Value) -> S3Result<String> {
    let name = v
        .as_str()
        .ok_or_else(|| invalid("Invalid Condition: field names must be strings."))?;
    Ok(name.strip_prefix('$').unwrap_or(name).to_ascii_lowercase())
}

/// A `content-length-range` bound: a non-negative integer (or one as a string).
fn bound(v: &Value) -> S3Result<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        invalid("Invalid content-length-range condition: bounds must be non-negative integers.")
    })
}

fn condition(v: &Value) -> S3Result<Condition> {
    match v {
        Value::Object(map) => {
            let mut entries = map.iter();
            match (entries.next(), entries.next()) {
                (Some((name, Value::String(value))), None) => Ok(Condition::Eq(
                    name.strip_prefix('$').unwrap_or(name).to_ascii_lowercase(),
                    value.clone(),
                )),
                _ => Err(invalid(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
                )),
            }
        }
        Value::Array(items) => {
            let op = items
                .first()
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| invalid("Invalid Condition: the operation must be a string."))?;
            if items.len() != 3 {
                return Err(invalid(format!(
                    "Invalid '{op}' condition: it must have exactly three elements."
                )));
            }
            let value = |v: &Value| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    invalid(format!("Invalid '{op}' condition: values must be strings."))
                })
            };
            match op.as_str() {
                "eq" => Ok(Condition::Eq(field_name(&items[1])?, value(&items[2])?)),
                "starts-with" => Ok(Condition::StartsWith(
                    field_name(&items[1])?,
                    value(&items[2])?,
                )),
                "content-length-range" => {
                    let (min, max) = (bound(&items[1])?, bound(&items[2])?);
                    if min > max {
                        return Err(invalid(
                            "Invalid content-length-range condition: the minimum exceeds the maximum.",
                        ));
                    }
                    Ok(Condition::LengthRange(min, max))
                }
                other => Err(invalid(format!(
                    "Invalid Condition: unknown operation '{other}'."
                ))),
            }
        }
        _ => Err(invalid(
            "Invalid Condition: conditions must be objects or arrays.",
        )),
    }
}

impl PostPolicy {
    /// Parses the `policy` form field (base64 of the JSON document).
    pub(crate) fn parse(encoded: &str) -> S3Result<Self> {
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| invalid("Invalid base64 encoding."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let doc = doc
            .as_object()
            .ok_or_else(|| invalid("Invalid JSON: the policy must be an object."))?;
        let expiration = doc
            .get("expiration")
            .ok_or_else(|| invalid("Policy missing expiration."))?;
        let text = expiration
            .as_str()
            .map_or_else(|| expiration.to_string(), str::to_owned);
        let expiration = OffsetDateTime::parse(&text, &Rfc3339)
            .map_err(|_| invalid(format!("Invalid 'expiration' value: '{text}'")))?;
        let conditions = doc
            .get("conditions")
            .ok_or_else(|| invalid("Policy missing conditions."))?
            .as_array()
            .ok_or_else(|| invalid("Invalid 'conditions' value: it must be a list."))?
            .iter()
            .map(condition)
            .collect::<S3Result<Vec<_>>>()?;
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    /// The `content-length-range` the file must meet, if any (several:
    /// all of them).
    pub(crate) fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions
            .iter()
            .filter_map(|c| match c {
                Condition::LengthRange(min, max) => Some((*min, *max)),
                _ => None,
            })
            .reduce(|(a, b), (c, d)| (a.max(c), b.min(d)))
    }

    /// Checks the policy at `now` against the form's `fields` (lower-case
    /// names) and the addressed `bucket`; the file's size is checked as it
    /// streams (see [`Self::length_range`]).
    pub(crate) fn check(
        &self,
        now: OffsetDateTime,
        fields: &[(String, String)],
        bucket: &str,
    ) -> S3Result<()> {
        if now >= self.expiration {
            return Err(violated("Policy expired."));
        }
        let value = |name: &str| {
            if name == "bucket" {
                return Some(bucket);
            }
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        for c in &self.conditions {
            let met = match c {
                Condition::Eq(field, expected) => value(field) == Some(expected.as_str()),
                Condition::StartsWith(field, prefix) => value(field).is_some_and(|v| {
                    if field == "content-type" {
                        v.split(',').all(|t| t.trim().starts_with(prefix.as_str()))
                    } else {
                        v.starts_with(prefix.as_str())
                    }
                }),
                Condition::LengthRange(..) => true,
            };
            if !met {
                return Err(violated(format!("Policy Condition failed: {c}")));
            }
        }
        let named = |name: &str| {
            self.conditions.iter().any(|c| match c {
                Condition::Eq(f, _) | Condition::StartsWith(f, _) => f == name,
                Condition::LengthRange(..) => false,
            })
        };
        let extra: Vec<&str> = std::iter::once("bucket")
            .chain(fields.iter().map(|(n, _)| n.as_str()))
            .filter(|n| !exempt(n) && !named(n))
            .collect();
        if !extra.is_empty() {
            return Err(violated(format!(
                "Extra input fields: {}",
                extra.join(", ")
            )));
        }
        Ok(())
    }
}

/// Form fields no condition needs to name.
fn exempt(name: &str) -> bool {
    matches!(name, "x-amz-signature" | "file" | "policy") || name.starts_with("x-ignore-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn message(e: S3Error) -> String {
        format!("{} {}", e.code().as_str(), e.message().unwrap_or_default())
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-07 12:00 UTC);

    #[test]
    fn conditions_in_every_form() {
        let p = PostPolicy::parse(&encode(
            r#"{"expiration": "2026-12-08T00:00:00.000Z", "conditions": [
                {"bucket": "photos"}, ["EQ", "$Key", "a/b"], ["starts-with", "$Content-Type", "image/"],
                ["content-length-range", 1, "10"], {"x-amz-meta-tag": ""}]}"#,
        ))
        .unwrap();
        assert_eq!(p.length_range(), Some((1, 10)));
        let ok = fields(&[
            ("key", "a/b"),
            ("content-type", "image/png, image/gif"),
            ("x-amz-meta-tag", ""),
            ("x-amz-signature", "00"),
            ("x-ignore-me", "1"),
        ]);
        p.check(NOW, &ok, "photos").unwrap();
        let e = p.check(NOW, &ok, "other").unwrap_err();
        assert_eq!(
            message(e),
            r#"AccessDenied Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "photos"]"#
        );
        let mut bad_type = ok.clone();
        bad_type[1].1 = "image/png, text/html".into();
        assert!(message(p.check(NOW, &bad_type, "photos").unwrap_err()).contains("starts-with"));
        let mut missing = ok.clone();
        missing.remove(2);
        assert!(message(p.check(NOW, &missing, "photos").unwrap_err()).contains("x-amz-meta-tag"));
        let mut extra = ok;
        extra.push(("acl".into(), "public-read".into()));
        assert_eq!(
            message(p.check(NOW, &extra, "photos").unwrap_err()),
            "AccessDenied Invalid according to Policy: Extra input fields: acl"
        );
        let late = time::macros::datetime!(2026-12-08 00:00 UTC);
        assert_eq!(
            message(p.check(late, &[], "photos").unwrap_err()),
            "AccessDenied Invalid according to Policy: Policy expired."
        );
    }

    #[test]
    fn the_bucket_must_be_named() {
        let p = PostPolicy::parse(&encode(
            r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [["starts-with", "$key", ""]]}"#,
        ))
        .unwrap();
        assert_eq!(
            message(p.check(NOW, &fields(&[("key", "k")]), "b").unwrap_err()),
            "AccessDenied Invalid according to Policy: Extra input fields: bucket"
        );
    }

    #[test]
    fn malformed_policies() {
        for doc in [
            "not json",
            r#"{"conditions": []}"#,
            r#"{"expiration": "tomorrow", "conditions": []}"#,
            r#"{"EXPIRATION": "2026-12-08T00:00:00Z", "conditions": []}"#,
            r#"{"expiration": "2026-12-08T00:00:00Z", "CONDITIONS": []}"#,
            r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [{}]}"#,
            r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [["content-length-range", 0]]}"#,
            r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [["content-length-range", -1, 0]]}"#,
            r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [["content-length-range", 5, 1]]}"#,
            r#"{"expiration": "2026-12-08T00:00:00Z", "conditions": [["in", "$key", "a"]]}"#,
        ] {
            let e = PostPolicy::parse(&encode(doc)).unwrap_err();
            assert_eq!(e.code().as_str(), "InvalidPolicyDocument", "{doc}");
        }
        assert_eq!(
            PostPolicy::parse("%%%").unwrap_err().code().as_str(),
            "InvalidPolicyDocument"
        );
    }
}
