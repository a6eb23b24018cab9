//! The `Condition` element: operators, their values, and the request
//! context they are checked against.
//!
//! As IAM evaluates them: every operator of a block and every key of an
//! operator must hold; the values listed for a key match if any does (none
//! may, for negated operators: `StringNotEquals`, `NotIpAddress`, …). A
//! key the request does not have fails the test, except for negated
//! operators, `…IfExists` and `ForAllValues:`, where it passes, and `Null`,
//! which tests just that.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::document::PolicyError;
use super::wildcard;

/// The values of the request a condition can test, by lower-case key name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    values: BTreeMap<String, String>,
}

impl Context {
    /// Sets `key` (any case) to `value`.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_lowercase(), value.into());
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }
}

/// How the values of a comparison relate to the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Compare {
    fn holds(self, request_vs_policy: Ordering) -> bool {
        match self {
            Compare::Eq => request_vs_policy == Ordering::Equal,
            Compare::Lt => request_vs_policy == Ordering::Less,
            Compare::Le => request_vs_policy != Ordering::Greater,
            Compare::Gt => request_vs_policy == Ordering::Greater,
            Compare::Ge => request_vs_policy != Ordering::Less,
        }
    }
}

/// The test of an operator, before negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    String { ignore_case: bool, like: bool },
    Numeric(Compare),
    Date(Compare),
    Bool,
    Ip,
    Null,
}

/// The operator names: `(name, test, negated)`.
const OPERATORS: &[(&str, Test, bool)] = &[
    (
        "StringEquals",
        Test::String {
            ignore_case: false,
            like: false,
        },
        false,
    ),
    (
        "StringNotEquals",
        Test::String {
            ignore_case: false,
            like: false,
        },
        true,
    ),
    (
        "StringEqualsIgnoreCase",
        Test::String {
            ignore_case: true,
            like: false,
        },
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Test::String {
            ignore_case: true,
            like: false,
        },
        true,
    ),
    (
        "StringLike",
        Test::String {
            ignore_case: false,
            like: true,
        },
        false,
    ),
    (
        "StringNotLike",
        Test::String {
            ignore_case: false,
            like: true,
        },
        true,
    ),
    (
        "ArnEquals",
        Test::String {
            ignore_case: false,
            like: true,
        },
        false,
    ),
    (
        "ArnLike",
        Test::String {
            ignore_case: false,
            like: true,
        },
        false,
    ),
    (
        "ArnNotEquals",
        Test::String {
            ignore_case: false,
            like: true,
        },
        true,
    ),
    (
        "ArnNotLike",
        Test::String {
            ignore_case: false,
            like: true,
        },
        true,
    ),
    ("NumericEquals", Test::Numeric(Compare::Eq), false),
    ("NumericNotEquals", Test::Numeric(Compare::Eq), true),
    ("NumericLessThan", Test::Numeric(Compare::Lt), false),
    ("NumericLessThanEquals", Test::Numeric(Compare::Le), false),
    ("NumericGreaterThan", Test::Numeric(Compare::Gt), false),
    (
        "NumericGreaterThanEquals",
        Test::Numeric(Compare::Ge),
        false,
    ),
    ("DateEquals", Test::Date(Compare::Eq), false),
    ("DateNotEquals", Test::Date(Compare::Eq), true),
    ("DateLessThan", Test::Date(Compare::Lt), false),
    ("DateLessThanEquals", Test::Date(Compare::Le), false),
    ("DateGreaterThan", Test::Date(Compare::Gt), false),
    ("DateGreaterThanEquals", Test::Date(Compare::Ge), false),
    ("Bool", Test::Bool, false),
    ("IpAddress", Test::Ip, false),
    ("NotIpAddress", Test::Ip, true),
    ("Null", Test::Null, false),
];

/// How a missing key counts: the set qualifiers and `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Absent {
    /// Plain operator: fails (passes when negated).
    Default,
    /// `…IfExists`, `ForAllValues:`: passes.
    Passes,
    /// `ForAnyValue:`: fails.
    Fails,
}

/// One operator on one key, with its values.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    test: Test,
    negated: bool,
    absent: Absent,
    /// Lower-case key name.
    key: String,
    values: Vec<String>,
}

/// An IP network of an `IpAddress` condition.
fn network(value: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
        None => (value.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((addr, len))
}

fn in_network(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    let bits = |a: IpAddr| match a {
        IpAddr::V4(v4) => (u128::from(v4.to_bits()) << 96, 32),
        IpAddr::V6(v6) => (v6.to_bits(), 128),
    };
    let ((a, wa), (b, wb)) = (bits(ip), bits(net));
    if wa != wb {
        return false;
    }
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    };
    a & mask == b & mask
}

fn number(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date as IAM writes them: ISO 8601 (RFC 3339) or epoch seconds.
fn date(value: &str) -> Option<i128> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() / 1_000_000);
    }
    let secs: i64 = value.trim().parse().ok()?;
    Some(i128::from(secs) * 1000)
}

fn boolean(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The values of a condition key: one scalar or an array of them.
fn values(value: &Value) -> Option<Vec<String>> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    }
}

impl Condition {
    /// The conditions of a `Condition` element.
    pub(crate) fn parse_block(block: &Value) -> Result<Vec<Condition>, PolicyError> {
        let Value::Object(ops) = block else {
            return Err(PolicyError::new("Condition must be an object"));
        };
        let mut out = Vec::new();
        for (op, keys) in ops {
            let (test, negated, absent) = parse_operator(op)?;
            let Value::Object(keys) = keys else {
                return Err(PolicyError::new(format!(
                    "Invalid Condition block for {op}"
                )));
            };
            for (key, value) in keys {
                let (prefix, name) = key.split_once(':').unwrap_or(("", ""));
                if prefix.is_empty() || name.is_empty() {
                    return Err(PolicyError::new("Policy has an invalid condition key"));
                }
                let values = values(value).ok_or_else(|| {
                    PolicyError::new(format!("Invalid value for condition key {key}"))
                })?;
                let valid = |v: &String| match test {
                    Test::String { .. } => true,
                    Test::Numeric(_) => number(v).is_some(),
                    Test::Date(_) => date(v).is_some(),
                    Test::Bool | Test::Null => boolean(v).is_some(),
                    Test::Ip => network(v).is_some(),
                };
                if let Some(bad) = values.iter().find(|v| !valid(v)) {
                    return Err(PolicyError::new(format!(
                        "Invalid value {bad} for {op} on {key}"
                    )));
                }
                out.push(Condition {
                    test,
                    negated,
                    absent,
                    key: key.to_ascii_lowercase(),
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Whether the condition holds for `cx`.
    pub(crate) fn holds(&self, cx: &Context) -> bool {
        let Some(actual) = cx.get(&self.key) else {
            return match (self.test, self.absent) {
                (Test::Null, _) => self.values.iter().any(|v| boolean(v) == Some(true)),
                (_, Absent::Passes) => true,
                (_, Absent::Fails) => false,
                (_, Absent::Default) => self.negated,
            };
        };
        if self.test == Test::Null {
            return self.values.iter().any(|v| boolean(v) == Some(false));
        }
        let any = self.values.iter().any(|v| self.matches(v, actual));
        any != self.negated
    }

    /// Whether one policy value matches the request's value (before negation).
    fn matches(&self, wanted: &str, actual: &str) -> bool {
        match self.test {
            Test::String { ignore_case, like } => {
                if like {
                    wildcard::matches(wanted, actual, ignore_case)
                } else if ignore_case {
                    wanted.eq_ignore_ascii_case(actual)
                } else {
                    wanted == actual
                }
            }
            Test::Numeric(cmp) => match (number(actual), number(wanted)) {
                (Some(a), Some(w)) => a.partial_cmp(&w).is_some_and(|o| cmp.holds(o)),
                _ => false,
            },
            Test::Date(cmp) => match (date(actual), date(wanted)) {
                (Some(a), Some(w)) => cmp.holds(a.cmp(&w)),
                _ => false,
            },
            Test::Bool => boolean(actual).is_some() && boolean(actual) == boolean(wanted),
            Test::Ip => match (actual.parse::<IpAddr>(), network(wanted)) {
                (Ok(ip), Some(net)) => in_network(ip, net),
                _ => false,
            },
            Test::Null => false,
        }
    }

    /// Whether this condition pins the request to fixed values that keep a
    /// wildcard principal from being public (S3's meaning of "public"): a
    /// source IP range narrower than everything, or a fixed source
    /// account, ARN, VPC, endpoint, owner or user id.
    pub(crate) fn narrows_public(&self) -> bool {
        const FIXED_KEYS: [&str; 7] = [
            "aws:sourcearn",
            "aws:sourcevpc",
            "aws:sourcevpce",
            "aws:sourceowner",
            "aws:sourceaccount",
            "aws:userid",
            "s3:x-amz-server-side-encryption-aws-kms-key-id",
        ];
        if self.negated || self.absent != Absent::Default {
            return false;
        }
        match self.test {
            Test::Ip => {
                self.key == "aws:sourceip"
                    && self
                        .values
                        .iter()
                        .all(|v| network(v).is_some_and(|(_, len)| len > 0))
            }
            Test::String { .. } => {
                FIXED_KEYS.contains(&self.key.as_str())
                    && self.values.iter().all(|v| !v.contains(['*', '?']))
            }
            _ => false,
        }
    }
}

/// An operator name: its test, whether it is negated, and how a missing
/// key counts.
fn parse_operator(op: &str) -> Result<(Test, bool, Absent), PolicyError> {
    let (qualifier, rest) = if let Some(rest) = op.strip_prefix("ForAnyValue:") {
        (Some(Absent::Fails), rest)
    } else if let Some(rest) = op.strip_prefix("ForAllValues:") {
        (Some(Absent::Passes), rest)
    } else {
        (None, op)
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(base) => (true, base),
        None => (false, rest),
    };
    let (_, test, negated) = OPERATORS
        .iter()
        .find(|(name, ..)| *name == base)
        .ok_or_else(|| PolicyError::new(format!("Invalid Condition type : {op}")))?;
    if *test == Test::Null && (if_exists || qualifier.is_some()) {
        return Err(PolicyError::new(format!("Invalid Condition type : {op}")));
    }
    let absent = match (qualifier, if_exists) {
        (_, true) => Absent::Passes,
        (Some(q), false) => q,
        (None, false) => Absent::Default,
    };
    Ok((*test, *negated, absent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(block: Value) -> Condition {
        let mut c = Condition::parse_block(&block).unwrap();
        assert_eq!(c.len(), 1);
        c.remove(0)
    }

    fn cx(pairs: &[(&str, &str)]) -> Context {
        let mut cx = Context::default();
        for (k, v) in pairs {
            cx.set(k, *v);
        }
        cx
    }

    #[test]
    fn strings() {
        let c = one(json!({"StringEquals": {"s3:prefix": ["home/", "pub/"]}}));
        assert!(c.holds(&cx(&[("s3:prefix", "pub/")])));
        assert!(!c.holds(&cx(&[("s3:prefix", "priv/")])));
        assert!(!c.holds(&cx(&[])));
        let c = one(json!({"StringNotEquals": {"s3:prefix": ["home/", "pub/"]}}));
        assert!(!c.holds(&cx(&[("s3:prefix", "pub/")])));
        assert!(c.holds(&cx(&[("s3:prefix", "priv/")])));
        assert!(
            c.holds(&cx(&[])),
            "a negated operator passes on a missing key"
        );
        let c = one(json!({"StringLike": {"aws:Referer": "https://*.example.com/*"}}));
        assert!(c.holds(&cx(&[("aws:referer", "https://www.example.com/x")])));
        assert!(!c.holds(&cx(&[("aws:referer", "https://evil.com/x")])));
        let c = one(json!({"StringEqualsIgnoreCase": {"aws:UserAgent": "CURL"}}));
        assert!(c.holds(&cx(&[("aws:useragent", "curl")])));
        let c = one(json!({"StringEqualsIfExists": {"s3:prefix": "a"}}));
        assert!(c.holds(&cx(&[])));
        assert!(!c.holds(&cx(&[("s3:prefix", "b")])));
    }

    #[test]
    fn numbers_bools_dates_null() {
        let c = one(json!({"NumericLessThanEquals": {"s3:max-keys": "10"}}));
        assert!(c.holds(&cx(&[("s3:max-keys", "10")])));
        assert!(!c.holds(&cx(&[("s3:max-keys", "11")])));
        assert!(!c.holds(&cx(&[])));
        let c = one(json!({"NumericGreaterThan": {"s3:max-keys": 5}}));
        assert!(c.holds(&cx(&[("s3:max-keys", "6")])));
        assert!(!c.holds(&cx(&[("s3:max-keys", "5")])));
        let c = one(json!({"Bool": {"aws:SecureTransport": false}}));
        assert!(c.holds(&cx(&[("aws:securetransport", "false")])));
        assert!(!c.holds(&cx(&[("aws:securetransport", "true")])));
        let c = one(json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}));
        assert!(c.holds(&cx(&[("aws:currenttime", "2026-12-07T09:00:00Z")])));
        assert!(!c.holds(&cx(&[("aws:currenttime", "2031-01-01T00:00:00Z")])));
        let c = one(json!({"Null": {"s3:x-amz-acl": "true"}}));
        assert!(c.holds(&cx(&[])));
        assert!(!c.holds(&cx(&[("s3:x-amz-acl", "private")])));
    }

    #[test]
    fn addresses() {
        let c = one(json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}));
        assert!(c.holds(&cx(&[("aws:sourceip", "10.1.2.3")])));
        assert!(c.holds(&cx(&[("aws:sourceip", "2001:db8::1")])));
        assert!(c.holds(&cx(&[("aws:sourceip", "::ffff:10.0.0.1")])));
        assert!(!c.holds(&cx(&[("aws:sourceip", "11.0.0.1")])));
        let c = one(json!({"NotIpAddress": {"aws:SourceIp": "127.0.0.1"}}));
        assert!(!c.holds(&cx(&[("aws:sourceip", "127.0.0.1")])));
        assert!(c.holds(&cx(&[("aws:sourceip", "127.0.0.2")])));
        assert!(
            one(json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}))
                .holds(&cx(&[("aws:sourceip", "1.2.3.4")]))
        );
    }

    #[test]
    fn malformed_conditions_are_refused() {
        for bad in [
            json!({"StringFoo": {"s3:prefix": "a"}}),
            json!({"NumericEquals": {"s3:max-keys": "ten"}}),
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}),
            json!({"Bool": {"aws:SecureTransport": "yes"}}),
            json!({"StringEquals": {"prefix": "a"}}),
            json!({"StringEquals": {"s3:prefix": []}}),
            json!({"StringEquals": "s3:prefix"}),
            json!({"NullIfExists": {"s3:prefix": "true"}}),
        ] {
            assert!(Condition::parse_block(&bad).is_err(), "{bad}");
        }
    }
}
