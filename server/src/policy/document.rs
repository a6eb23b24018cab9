//! A bucket policy document: parsed from JSON and validated as S3 does on
//! `PutBucketPolicy` (a refusal is `MalformedPolicy`).
//!
//! Principals are Tessera access keys: `"*"` (anyone, unsigned requests
//! included), `{"AWS": "*"}`, `{"AWS": "<key id>"}`,
//! `{"AWS": "arn:aws:iam::<any account>:user/<key id>"}` or
//! `{"CanonicalUser": "<key id>"}` (the owner id S3 responses show is the
//! key id). `{"Service": …}` is accepted and matches no request; account
//! principals (`arn:aws:iam::…:root`) and other forms are refused.

use serde_json::{Map, Value};

use super::actions::{self, Scope};
use super::condition::Condition;
use super::wildcard;

/// Largest policy document S3 accepts.
pub(crate) const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The ARN prefix of S3 resources.
pub(crate) const ARN_PREFIX: &str = "arn:aws:s3:::";

/// Why a policy document was refused (the message of `MalformedPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PolicyError(String);

impl PolicyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        PolicyError(message.into())
    }
}

/// A statement's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// Who a statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    /// Anyone, unsigned requests included.
    Anyone,
    /// Requests signed for this access key.
    Key(String),
    /// A service principal: never a Tessera request.
    Service,
}

/// A list of values and whether the statement names them or their
/// complement (`Action` / `NotAction`, …).
#[derive(Debug, Clone)]
pub(crate) struct Listed<T> {
    pub(crate) not: bool,
    pub(crate) items: Vec<T>,
}

/// One statement.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    pub(crate) principals: Listed<Who>,
    pub(crate) actions: Listed<String>,
    pub(crate) resources: Listed<String>,
    pub(crate) conditions: Vec<Condition>,
}

/// A parsed bucket policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) statements: Vec<Statement>,
}

/// What parsing checks beyond the syntax: done on `PutBucketPolicy`, not
/// again when a stored policy is evaluated.
pub(crate) struct Validation<'a> {
    /// The bucket the policy is for: every resource must be in it.
    pub(crate) bucket: &'a str,
    /// Whether an access key exists.
    pub(crate) key_exists: &'a dyn Fn(&str) -> bool,
}

fn err<T>(message: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError::new(message))
}

/// A string or a non-empty array of strings.
fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => err(format!("{what} must be a string or a list of strings")),
            })
            .collect(),
        _ => err(format!("{what} must be a string or a list of strings")),
    }
}

/// The one of `name` and `Not<name>` a statement has.
fn either<'v>(stmt: &'v Map<String, Value>, name: &str) -> Result<(bool, &'v Value), PolicyError> {
    let not_name = format!("Not{name}");
    match (stmt.get(name), stmt.get(&not_name)) {
        (Some(v), None) => Ok((false, v)),
        (None, Some(v)) => Ok((true, v)),
        (Some(_), Some(_)) => err(format!("Statement has both {name} and {not_name}")),
        (None, None) => err(format!("Missing required field {name}")),
    }
}

/// A user ARN's key id: `arn:aws:iam::<account>:user/<key>`.
fn user_arn_key(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, user) = rest.split_once(':')?;
    let key = user.strip_prefix("user/")?;
    let valid_account = account.is_empty() || account.bytes().all(|b| b.is_ascii_digit());
    (valid_account && !key.is_empty() && !key.contains('/')).then_some(key)
}

fn principal_entries(value: &Value, v: Option<&Validation<'_>>) -> Result<Vec<Who>, PolicyError> {
    let invalid = || PolicyError::new("Invalid principal in policy");
    let map = match value {
        Value::String(s) if s == "*" => return Ok(vec![Who::Anyone]),
        Value::Object(map) if !map.is_empty() => map,
        _ => return Err(invalid()),
    };
    let mut out = Vec::new();
    for (kind, ids) in map {
        for id in strings(ids, "Principal")? {
            let who = match kind.as_str() {
                "AWS" if id == "*" => Who::Anyone,
                "AWS" if !id.contains(':') => Who::Key(id),
                "AWS" => Who::Key(user_arn_key(&id).ok_or_else(invalid)?.to_owned()),
                "CanonicalUser" => Who::Key(id),
                "Service" => Who::Service,
                _ => return Err(invalid()),
            };
            if let (Who::Key(key), Some(v)) = (&who, v)
                && !(v.key_exists)(key)
            {
                return Err(invalid());
            }
            out.push(who);
        }
    }
    Ok(out)
}

fn action_patterns(value: &Value) -> Result<Vec<String>, PolicyError> {
    let patterns = strings(value, "Action")?;
    for p in &patterns {
        let known = p == "*"
            || (p.len() > 3
                && p.get(..3).is_some_and(|s| s.eq_ignore_ascii_case("s3:"))
                && actions::all().any(|(a, _)| wildcard::matches(p, a, true)));
        if !known {
            return err("Policy has invalid action");
        }
    }
    Ok(patterns)
}

fn resource_patterns(
    value: &Value,
    v: Option<&Validation<'_>>,
) -> Result<Vec<String>, PolicyError> {
    let patterns = strings(value, "Resource")?;
    for p in &patterns {
        if p == "*" {
            continue;
        }
        let Some(rest) = p.strip_prefix(ARN_PREFIX) else {
            return err("Policy has invalid resource");
        };
        let bucket_part = rest.split('/').next().unwrap_or_default();
        if let Some(v) = v
            && !wildcard::matches(bucket_part, v.bucket, false)
        {
            return err("Policy has invalid resource");
        }
    }
    Ok(patterns)
}

/// Whether resource pattern `p` can name a resource of `scope`.
fn names_scope(p: &str, scope: Scope, bucket: &str) -> bool {
    let Some(rest) = p.strip_prefix(ARN_PREFIX) else {
        return p == "*";
    };
    match scope {
        Scope::Service => false,
        Scope::Bucket => wildcard::matches(rest, bucket, false),
        Scope::Object => rest.contains(['/', '*']),
    }
}

/// Refuses a statement none of whose actions applies to any of its resources.
fn check_applies(stmt: &Statement, bucket: &str) -> Result<(), PolicyError> {
    if stmt.actions.not || stmt.resources.not {
        return Ok(());
    }
    let applies = actions::all().any(|(action, scope)| {
        stmt.actions
            .items
            .iter()
            .any(|p| wildcard::matches(p, action, true))
            && stmt
                .resources
                .items
                .iter()
                .any(|r| names_scope(r, scope, bucket))
    });
    if applies {
        Ok(())
    } else {
        err("Action does not apply to any resource(s) in statement")
    }
}

fn statement(value: &Value, v: Option<&Validation<'_>>) -> Result<Statement, PolicyError> {
    let Value::Object(stmt) = value else {
        return err("Statement must be an object");
    };
    const FIELDS: [&str; 9] = [
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    ];
    if let Some(unknown) = stmt.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return err(format!("Unknown field {unknown}"));
    }
    if stmt.get("Sid").is_some_and(|s| !s.is_string()) {
        return err("Sid must be a string");
    }
    let effect = match stmt.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return err(format!("Invalid effect: {other}")),
        None => return err("Missing required field Effect"),
    };
    let (not_principal, principal) = either(stmt, "Principal")?;
    let (not_action, action) = either(stmt, "Action")?;
    let (not_resource, resource) = either(stmt, "Resource")?;
    let conditions = match stmt.get("Condition") {
        Some(block) => Condition::parse_block(block)?,
        None => Vec::new(),
    };
    let stmt = Statement {
        effect,
        principals: Listed {
            not: not_principal,
            items: principal_entries(principal, v)?,
        },
        actions: Listed {
            not: not_action,
            items: action_patterns(action)?,
        },
        resources: Listed {
            not: not_resource,
            items: resource_patterns(resource, v)?,
        },
        conditions,
    };
    if let Some(v) = v {
        check_applies(&stmt, v.bucket)?;
    }
    Ok(stmt)
}

impl Policy {
    /// Parses `text`; with `validation`, checks it as `PutBucketPolicy` does.
    pub(crate) fn parse(
        text: &str,
        validation: Option<&Validation<'_>>,
    ) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return err("Policy exceeds the maximum allowed document size.");
        }
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| PolicyError::new(format!("This policy contains invalid Json: {e}")))?;
        let Value::Object(doc) = doc else {
            return err("This policy contains invalid Json");
        };
        if let Some(unknown) = doc
            .keys()
            .find(|k| !["Version", "Id", "Statement"].contains(&k.as_str()))
        {
            return err(format!("Unknown field {unknown}"));
        }
        match doc.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => return err("Invalid policy version"),
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|s| statement(s, validation))
                .collect::<Result<Vec<_>, _>>()?,
            Some(one @ Value::Object(_)) => vec![statement(one, validation)?],
            _ => return err("Missing required field Statement"),
        };
        Ok(Policy { statements })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Policy, PolicyError> {
        let exists = |k: &str| k == "KEY1";
        Policy::parse(
            text,
            Some(&Validation {
                bucket: "pics",
                key_exists: &exists,
            }),
        )
    }

    #[test]
    fn valid_policies_parse() {
        let p = check(
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"pub","Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":"arn:aws:s3:::pics/*"},
                {"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::123456789012:user/KEY1","KEY1"]},
                 "NotAction":"s3:Get*","Resource":["arn:aws:s3:::pics","arn:aws:s3:::pics/*"],
                 "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        )
        .unwrap();
        assert_eq!(p.statements.len(), 2);
        assert_eq!(
            p.statements[1].principals.items,
            [Who::Key("KEY1".into()), Who::Key("KEY1".into())]
        );
        assert!(p.statements[1].actions.not);
        // A single statement object, no version.
        check(r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::pics"}}"#).unwrap();
    }

    #[test]
    fn malformed_policies_are_refused() {
        let cases = [
            ("not json", "invalid Json"),
            ("[]", "invalid Json"),
            (
                r#"{"Version":"2012-10-17"}"#,
                "Missing required field Statement",
            ),
            (
                r#"{"Version":"2019-01-01","Statement":[]}"#,
                "Invalid policy version",
            ),
            (
                r#"{"Statement":[{"Effect":"Permit","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "Invalid effect",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "Missing required field Principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:Fly","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "invalid action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ec2:*","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "invalid action",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
                "invalid resource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"pics/*"}]}"#,
                "invalid resource",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics"}]}"#,
                "does not apply",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "does not apply",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"NOPE"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "Invalid principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "Invalid principal",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::pics/*"}]}"#,
                "both",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*","Extra":1}]}"#,
                "Unknown field",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pics/*","Condition":{"IpAddress":{"aws:SourceIp":"nope"}}}]}"#,
                "Invalid value",
            ),
        ];
        for (text, expected) in cases {
            let e = check(text).expect_err(text);
            assert!(e.to_string().contains(expected), "{text}: {e}");
        }
        let huge = format!(
            r#"{{"Id":"{}","Statement":[]}}"#,
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert!(check(&huge).unwrap_err().to_string().contains("size"));
    }
}
