//! What a policy says about one request, and whether it is public.

use super::condition::Context;
use super::document::{Effect, Policy, Statement, Who};
use super::wildcard;

/// A request as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// The access key it is signed for, `None` when unsigned.
    pub(crate) principal: Option<&'a str>,
    /// The IAM action (`s3:GetObject`).
    pub(crate) action: &'a str,
    /// The resource ARN (`arn:aws:s3:::bucket/key`).
    pub(crate) resource: &'a str,
    /// The condition keys.
    pub(crate) context: &'a Context,
}

/// A policy's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A statement denies the request: nothing else can allow it.
    Deny,
    /// A statement allows it and none denies it.
    Allow,
    /// No statement applies.
    Silent,
}

impl Who {
    fn covers(&self, principal: Option<&str>) -> bool {
        match self {
            Who::Anyone => true,
            Who::Key(key) => principal == Some(key.as_str()),
            Who::Service => false,
        }
    }
}

impl Statement {
    /// Whether the statement applies to `req` (its effect aside).
    fn applies(&self, req: &Request<'_>) -> bool {
        let who = self
            .principals
            .items
            .iter()
            .any(|w| w.covers(req.principal));
        let action = self
            .actions
            .items
            .iter()
            .any(|p| wildcard::matches(p, req.action, true));
        let resource = self
            .resources
            .items
            .iter()
            .any(|p| wildcard::matches(p, req.resource, false));
        who != self.principals.not
            && action != self.actions.not
            && resource != self.resources.not
            && self.conditions.iter().all(|c| c.holds(req.context))
    }

    /// Whether the statement allows anyone, unrestricted by a condition
    /// that pins requests to fixed sources.
    fn is_public(&self) -> bool {
        let anyone = if self.principals.not {
            // NotPrincipal allows everyone but the listed.
            true
        } else {
            self.principals.items.contains(&Who::Anyone)
        };
        self.effect == Effect::Allow
            && anyone
            && !self.conditions.iter().any(|c| c.narrows_public())
    }
}

impl Policy {
    /// The verdict on `req`: an explicit deny wins over any allow.
    pub(crate) fn decide(&self, req: &Request<'_>) -> Decision {
        let mut decision = Decision::Silent;
        for stmt in self.statements.iter().filter(|s| s.applies(req)) {
            match stmt.effect {
                Effect::Deny => return Decision::Deny,
                Effect::Allow => decision = Decision::Allow,
            }
        }
        decision
    }

    /// Whether the policy is public as S3 means it: some statement allows
    /// any principal without pinning the request to a fixed source (a
    /// source IP range, account, ARN, VPC …).
    pub(crate) fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(statements: &str) -> Policy {
        Policy::parse(&format!(r#"{{"Statement":[{statements}]}}"#), None).unwrap()
    }

    fn decide(
        p: &Policy,
        principal: Option<&str>,
        action: &str,
        resource: &str,
        cx: &Context,
    ) -> Decision {
        p.decide(&Request {
            principal,
            action,
            resource,
            context: cx,
        })
    }

    const OBJ: &str = "arn:aws:s3:::b/k";

    #[test]
    fn deny_wins_and_silence_is_not_consent() {
        let cx = Context::default();
        let p = policy(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:Get*","Resource":"arn:aws:s3:::b/*"},
               {"Effect":"Deny","Principal":{"AWS":"K1"},"Action":"s3:*","Resource":"arn:aws:s3:::b/*"}"#,
        );
        assert_eq!(decide(&p, None, "s3:GetObject", OBJ, &cx), Decision::Allow);
        assert_eq!(
            decide(&p, Some("K2"), "s3:getobject", OBJ, &cx),
            Decision::Allow
        );
        assert_eq!(
            decide(&p, Some("K1"), "s3:GetObject", OBJ, &cx),
            Decision::Deny
        );
        assert_eq!(decide(&p, None, "s3:PutObject", OBJ, &cx), Decision::Silent);
        assert_eq!(
            decide(&p, None, "s3:GetObject", "arn:aws:s3:::b", &cx),
            Decision::Silent
        );
    }

    #[test]
    fn negated_elements() {
        let cx = Context::default();
        let p = policy(
            r#"{"Effect":"Deny","NotPrincipal":{"AWS":"K1"},"NotAction":"s3:GetObject","NotResource":"arn:aws:s3:::b/public/*"}"#,
        );
        assert_eq!(
            decide(&p, Some("K2"), "s3:PutObject", OBJ, &cx),
            Decision::Deny
        );
        assert_eq!(
            decide(&p, Some("K1"), "s3:PutObject", OBJ, &cx),
            Decision::Silent
        );
        assert_eq!(
            decide(&p, Some("K2"), "s3:GetObject", OBJ, &cx),
            Decision::Silent
        );
        assert_eq!(
            decide(
                &p,
                Some("K2"),
                "s3:PutObject",
                "arn:aws:s3:::b/public/x",
                &cx
            ),
            Decision::Silent
        );
    }

    #[test]
    fn conditions_gate_statements() {
        let p = policy(
            r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*",
                "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"Bool":{"aws:SecureTransport":"true"}}}"#,
        );
        let mut cx = Context::default();
        cx.set("aws:SourceIp", "10.9.9.9");
        cx.set("aws:SecureTransport", "true");
        assert_eq!(decide(&p, None, "s3:GetObject", OBJ, &cx), Decision::Allow);
        cx.set("aws:SecureTransport", "false");
        assert_eq!(decide(&p, None, "s3:GetObject", OBJ, &cx), Decision::Silent);
        assert!(!p.is_public(), "a source IP range keeps it private");
    }

    #[test]
    fn public_policies() {
        let any = r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}"#;
        assert!(policy(any).is_public());
        assert!(policy(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"s3:GetObject","Resource":"*"}"#).is_public());
        assert!(
            !policy(
                r#"{"Effect":"Allow","Principal":{"AWS":"K1"},"Action":"s3:*","Resource":"*"}"#
            )
            .is_public()
        );
        assert!(
            !policy(r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*"}"#)
                .is_public()
        );
        assert!(policy(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}"#).is_public());
        assert!(policy(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"StringLike":{"aws:Referer":"https://x/*"}}}"#).is_public());
        assert!(!policy(r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}"#).is_public());
    }
}
