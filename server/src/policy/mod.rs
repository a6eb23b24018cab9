//! Bucket policies as AWS documents them: the JSON document
//! ([`document`]: parsing and the checks of `PutBucketPolicy`), its
//! conditions ([`condition`]), the IAM action of each S3 operation
//! ([`actions`]), IAM wildcards ([`wildcard`]) and what a policy decides
//! about a request ([`eval`]), the condition keys a request offers
//! ([`keys`]). The gateway combines a policy's verdict with
//! the caller's grants in [`crate::auth`].

pub(crate) mod actions;
pub(crate) mod condition;
pub(crate) mod document;
pub(crate) mod eval;
pub(crate) mod keys;
mod wildcard;

pub(crate) use actions::Scope;
pub(crate) use condition::Context;
pub(crate) use document::{ARN_PREFIX, Policy, PolicyError, Validation};
pub(crate) use eval::{Decision, Request};
