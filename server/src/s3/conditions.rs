//! HTTP preconditions: `If-Match`, `If-None-Match`, `If-Modified-Since`,
//! `If-Unmodified-Since` on reads and copies (checked here against the version
//! read), and on writes (turned into a [`Precondition`] the state machine
//! checks atomically with the write).

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Error, s3_error};
use tessera_raft::command::Precondition;
use tessera_raft::model::ObjectVersion;

use super::convert;

/// The four read preconditions of a request.
#[derive(Default)]
pub(crate) struct ReadConditions {
    pub(crate) if_match: Option<ETagCondition>,
    pub(crate) if_none_match: Option<ETagCondition>,
    pub(crate) if_modified_since: Option<Timestamp>,
    pub(crate) if_unmodified_since: Option<Timestamp>,
}

/// What a failed read precondition answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 412 Precondition Failed.
    PreconditionFailed,
    /// 304 Not Modified.
    NotModified,
}

impl ReadConditions {
    /// Evaluates the conditions against a version as S3 does (RFC 9110 order:
    /// `If-Match` overrides `If-Unmodified-Since`, `If-None-Match` overrides
    /// `If-Modified-Since`).
    pub(crate) fn evaluate(&self, v: &ObjectVersion) -> Result<(), Failure> {
        let modified = v.last_modified.div_euclid(1000);
        if let Some(cond) = &self.if_match {
            if !matches(cond, &v.etag) {
                return Err(Failure::PreconditionFailed);
            }
        } else if let Some(ts) = &self.if_unmodified_since
            && modified > convert::seconds(ts)
        {
            return Err(Failure::PreconditionFailed);
        }
        if let Some(cond) = &self.if_none_match {
            if matches(cond, &v.etag) {
                return Err(Failure::NotModified);
            }
        } else if let Some(ts) = &self.if_modified_since
            && modified <= convert::seconds(ts)
        {
            return Err(Failure::NotModified);
        }
        Ok(())
    }

    /// Evaluates for a GET/HEAD: 412 or 304 as S3 errors.
    pub(crate) fn check(&self, v: &ObjectVersion) -> Result<(), S3Error> {
        self.evaluate(v).map_err(|f| match f {
            Failure::PreconditionFailed => s3_error!(PreconditionFailed),
            Failure::NotModified => s3_error!(NotModified),
        })
    }

    /// Evaluates `x-amz-copy-source-if-*`: every failure is a 412.
    pub(crate) fn check_copy_source(&self, v: &ObjectVersion) -> Result<(), S3Error> {
        self.evaluate(v).map_err(|_| s3_error!(PreconditionFailed))
    }
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(t) => convert::etag_value(t) == etag,
    }
}

/// The write precondition of `PutObject`/`CompleteMultipartUpload`.
pub(crate) fn write_precondition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> Result<Option<Precondition>, S3Error> {
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(s3_error!(
            NotImplemented,
            "If-Match and If-None-Match together are not supported on writes"
        )),
        (None, Some(ETagCondition::Any)) => Ok(Some(Precondition::IfNoneMatchAny)),
        (None, Some(ETagCondition::ETag(_))) => Err(s3_error!(
            NotImplemented,
            "If-None-Match on writes only supports *"
        )),
        (Some(ETagCondition::Any), None) => Ok(Some(Precondition::IfMatch("*".to_owned()))),
        (Some(ETagCondition::ETag(t)), None) => Ok(Some(Precondition::IfMatch(
            convert::etag_value(t).to_owned(),
        ))),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;
    use std::collections::BTreeMap;
    use tessera_raft::model::{ObjectData, SystemMetadata};

    fn version(etag: &str, ms: i64) -> ObjectVersion {
        ObjectVersion {
            bucket: "b".into(),
            key: "k".into(),
            version_id: "null".into(),
            last_modified: ms,
            size: 0,
            etag: etag.into(),
            checksums: vec![],
            system: SystemMetadata::default(),
            user: BTreeMap::new(),
            tags: vec![],
            owner: "o".into(),
            wrapped_key: vec![],
            data: ObjectData::Inline(vec![]),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::from_unix_timestamp(secs).unwrap())
    }

    #[test]
    fn rfc_order() {
        let v = version("abc", 10_500);
        let tag = |s: &str| ETagCondition::ETag(ETag::Strong(s.into()));
        let c = ReadConditions {
            if_match: Some(tag("abc")),
            if_unmodified_since: Some(at(5)),
            ..Default::default()
        };
        assert_eq!(c.evaluate(&v), Ok(()));
        let c = ReadConditions {
            if_match: Some(tag("x")),
            ..Default::default()
        };
        assert_eq!(c.evaluate(&v), Err(Failure::PreconditionFailed));
        let c = ReadConditions {
            if_none_match: Some(tag("abc")),
            ..Default::default()
        };
        assert_eq!(c.evaluate(&v), Err(Failure::NotModified));
        let c = ReadConditions {
            if_modified_since: Some(at(10)),
            ..Default::default()
        };
        assert_eq!(c.evaluate(&v), Err(Failure::NotModified));
        let c = ReadConditions {
            if_modified_since: Some(at(9)),
            ..Default::default()
        };
        assert_eq!(c.evaluate(&v), Ok(()));
        let c = ReadConditions {
            if_unmodified_since: Some(at(9)),
            ..Default::default()
        };
        assert_eq!(c.evaluate(&v), Err(Failure::PreconditionFailed));
    }
}
