//! Who may do what: SigV4 secrets come from the access keys kept in raft
//! ([`KeyAuth`], an s3s [`S3Auth`]), and every request is checked against the
//! caller's per-bucket grants ([`GrantAccess`], an s3s [`S3Access`]).
//!
//! Rules:
//! - unknown keys get `InvalidAccessKeyId`, as S3 answers; unsigned requests
//!   and requests without a grant get `AccessDenied` (a bucket that does not
//!   exist: `NoSuchBucket`);
//! - administrator keys may do everything;
//! - `ListBuckets` is open to every key (the gateway shows only buckets the
//!   caller owns or has a grant on);
//! - `CreateBucket` needs a key allowed to create buckets; it then owns the bucket;
//! - reads (`Get*`, `Head*`, `List*`) need a read grant, bucket settings
//!   (`PutBucket*`, `DeleteBucket*`, `PutObjectLockConfiguration`) need
//!   ownership, everything else a write grant;
//! - bypassing governance retention (`x-amz-bypass-governance-retention`,
//!   S3's `s3:BypassGovernanceRetention`) needs an administrator key or
//!   ownership of the bucket ([`may_bypass_governance`]): a read-write
//!   grant may not;
//! - a copy also needs a read grant on the source bucket;
//! - temporary credentials from STS `AssumeRole` ([`crate::sts`]) act as the
//!   key that assumed the role: its grants, its buckets. They need their
//!   session token (`x-amz-security-token`, or `X-Amz-Security-Token` in a
//!   presigned URL); expired ones get `ExpiredToken`, forged ones and those
//!   whose parent key was deleted get `InvalidAccessKeyId`, a wrong or
//!   missing token `InvalidToken`.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::{S3Request, S3Result, s3_error};
use tessera_raft::model::{AccessKey, Grant};
use tessera_raft::node::MetaNode;
use tessera_raft::{MetaError, command::Command};
use tessera_storage::MasterKey;
use time::OffsetDateTime;

use crate::datadir;
use crate::secret_cache::SecretCache;
use crate::sts::TempKeys;

/// Access keys and their sealed secrets, as kept in raft.
#[derive(Clone)]
pub struct KeyStore {
    meta: MetaNode,
    master_key: Arc<MasterKey>,
    temp: Arc<TempKeys>,
    pub(crate) secrets: Arc<SecretCache>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore").finish_non_exhaustive()
    }
}

/// The context binding a sealed secret to its key id (so a sealed secret
/// cannot be moved to another key).
fn secret_context(key_id: &str) -> Vec<u8> {
    format!("tessera/access-key/{key_id}").into_bytes()
}

impl KeyStore {
    /// Keys read from `meta`, secrets sealed with `master_key`.
    pub fn new(meta: MetaNode, master_key: Arc<MasterKey>) -> Self {
        KeyStore {
            meta,
            temp: Arc::new(TempKeys::new(Arc::clone(&master_key))),
            master_key,
            secrets: Arc::default(),
        }
    }

    /// The temporary (STS) credentials of these keys.
    pub fn temp_keys(&self) -> &TempKeys {
        &self.temp
    }

    /// Builds the access key record for `creds`, its secret sealed.
    pub fn seal(
        &self,
        creds: &datadir::Credentials,
        name: &str,
        admin: bool,
        now: i64,
    ) -> AccessKey {
        AccessKey {
            id: creds.access_key.clone(),
            sealed_secret: self.master_key.seal_secret(
                &secret_context(&creds.access_key),
                creds.secret_key.as_bytes(),
            ),
            name: name.to_owned(),
            created: now,
            allow_create_bucket: true,
            admin,
        }
    }

    /// The plain secret of `key`, or `None` if it cannot be opened (wrong
    /// master key). Opened secrets are cached while the key keeps them.
    pub fn open(&self, key: &AccessKey) -> Option<String> {
        self.secrets.open(key, |key| {
            let plain = self
                .master_key
                .open_secret(&secret_context(&key.id), &key.sealed_secret)
                .ok()?;
            String::from_utf8(plain).ok()
        })
    }

    /// Looks a key up in this member's applied state.
    pub async fn get(&self, id: &str) -> Result<Option<AccessKey>, MetaError> {
        let id = id.to_owned();
        let key = self.meta.read_local(|view| view.access_key(&id)).await?;
        if key.is_none() {
            self.secrets.forget(&id);
        }
        Ok(key)
    }

    /// Makes sure the root key exists in raft as an administrator key with
    /// exactly this secret (writing it when missing or changed).
    pub async fn ensure_root(&self, creds: &datadir::Credentials) -> Result<(), MetaError> {
        if let Some(existing) = self.get(&creds.access_key).await?
            && existing.admin
            && self.open(&existing).as_deref() == Some(creds.secret_key.as_str())
        {
            return Ok(());
        }
        let key = self.seal(creds, "root", true, now_millis());
        self.meta.write(Command::PutAccessKey { key }).await?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn meta_unavailable(e: MetaError) -> s3s::S3Error {
    tracing::warn!(error = %e, "access key lookup failed");
    crate::s3::errors::unavailable("metadata unavailable")
}

fn unknown_key() -> s3s::S3Error {
    s3_error!(
        InvalidAccessKeyId,
        "The access key id you provided does not exist in our records."
    )
}

fn expired_token() -> s3s::S3Error {
    s3_error!(ExpiredToken, "The provided token has expired.")
}

/// The access key a request acts as, noted in its extensions by
/// [`GrantAccess`]: the signing key, or for temporary credentials the key
/// that assumed the role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal(String);

/// The access key id `req` acts as (see [`Principal`]), `None` when unsigned.
pub(crate) fn principal<T>(req: &S3Request<T>) -> Option<&str> {
    match req.extensions.get::<Principal>() {
        Some(Principal(id)) => Some(id),
        None => req.credentials.as_ref().map(|c| c.access_key.as_str()),
    }
}

/// The session token of a request: the `x-amz-security-token` header, or
/// the `X-Amz-Security-Token` parameter of a presigned URL.
fn session_token(headers: &http::HeaderMap, uri: &http::Uri) -> Option<String> {
    if let Some(v) = headers.get("x-amz-security-token") {
        return v.to_str().ok().map(str::to_owned);
    }
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == "X-Amz-Security-Token")
        .map(|(_, v)| v.into_owned())
}

/// SigV4 secrets from the access keys in raft.
#[derive(Debug, Clone)]
pub struct KeyAuth {
    keys: KeyStore,
}

impl KeyAuth {
    /// Authentication over these keys.
    pub fn new(keys: KeyStore) -> Self {
        KeyAuth { keys }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some(temp) = self.keys.temp.open(access_key) {
            if temp.expired_at(OffsetDateTime::now_utc()) {
                return Err(expired_token());
            }
            let parent = self
                .keys
                .get(&temp.parent)
                .await
                .map_err(meta_unavailable)?
                .ok_or_else(unknown_key)?;
            return Ok(SecretKey::from(self.keys.temp.secret(access_key, &parent)));
        }
        let key = self
            .keys
            .get(access_key)
            .await
            .map_err(meta_unavailable)?
            .ok_or_else(unknown_key)?;
        let secret = self.keys.open(&key).ok_or_else(|| {
            tracing::error!(key = %key.id, "cannot open the sealed secret (wrong master key?)");
            s3_error!(InternalError)
        })?;
        Ok(SecretKey::from(secret))
    }
}

/// What an operation needs on its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
    Owner,
    /// Create a bucket (no bucket grant involved).
    Create,
}

impl Need {
    fn of(op: &str) -> Need {
        if op.starts_with("PutBucket")
            || op.starts_with("DeleteBucket")
            || op == "PutObjectLockConfiguration"
        {
            Need::Owner
        } else if op.starts_with("Get") || op.starts_with("Head") || op.starts_with("List") {
            Need::Read
        } else {
            Need::Write
        }
    }

    fn allowed_by(self, grant: &Grant) -> bool {
        grant.owner
            || match self {
                Need::Read => grant.read,
                Need::Write => grant.write,
                Need::Owner | Need::Create => false,
            }
    }
}

/// Whether `key_id` may bypass governance retention in `bucket`
/// (S3's `s3:BypassGovernanceRetention`): administrator keys and the
/// bucket's owners may, read-write grants may not.
pub(crate) fn may_bypass_governance(
    view: &tessera_raft::read::ReadView,
    key_id: &str,
    bucket: &str,
) -> Result<bool, MetaError> {
    if view.access_key(key_id)?.is_some_and(|k| k.admin) {
        return Ok(true);
    }
    Ok(view.grant(key_id, bucket)?.is_some_and(|g| g.owner))
}

/// Per-key, per-bucket authorization from the grants in raft.
#[derive(Debug, Clone)]
pub struct GrantAccess {
    keys: KeyStore,
}

impl GrantAccess {
    /// Authorization over these keys and their grants.
    pub fn new(keys: KeyStore) -> Self {
        GrantAccess { keys }
    }

    /// Checks that `key_id` exists and may do `need` on `bucket`.
    async fn authorize(
        &self,
        key_id: &str,
        bucket: Option<&str>,
        need: Option<Need>,
    ) -> S3Result<()> {
        let id = key_id.to_owned();
        let bucket = bucket.map(str::to_owned);
        let (key, grant, exists) = self
            .keys
            .meta
            .read_local(move |view| {
                let key = view.access_key(&id)?;
                let (grant, exists) = match &bucket {
                    Some(b) => (view.grant(&id, b)?, view.bucket(b)?.is_some()),
                    None => (None, false),
                };
                Ok((key, grant, exists))
            })
            .await
            .map_err(meta_unavailable)?;
        let key = key.ok_or_else(unknown_key)?;
        let Some(need) = need else {
            return Ok(());
        };
        if key.admin || grant.is_some_and(|g| need.allowed_by(&g)) {
            return Ok(());
        }
        if need == Need::Create {
            if key.allow_create_bucket {
                return Ok(());
            }
            return Err(s3_error!(AccessDenied, "this key may not create buckets"));
        }
        if !exists {
            return Err(s3_error!(NoSuchBucket));
        }
        Err(s3_error!(AccessDenied))
    }

    /// The access key id a request signed with `creds` acts as: the
    /// signing key, or the parent of temporary credentials (which must be
    /// live and come with their session token).
    fn principal_of(&self, creds: &Credentials, token: Option<&str>) -> S3Result<String> {
        let Some(temp) = self.keys.temp.open(&creds.access_key) else {
            return Ok(creds.access_key.clone());
        };
        if temp.expired_at(OffsetDateTime::now_utc()) {
            return Err(expired_token());
        }
        if !token.is_some_and(|t| self.keys.temp.token_matches(&creds.access_key, t)) {
            return Err(s3_error!(
                InvalidToken,
                "The provided token is malformed or otherwise invalid."
            ));
        }
        Ok(temp.parent)
    }

    /// A copy also needs a read grant on its source bucket.
    async fn check_copy_source<T>(&self, req: &S3Request<T>, source: &CopySource) -> S3Result<()> {
        let caller = principal(req).ok_or_else(|| s3_error!(AccessDenied))?;
        match source {
            CopySource::Bucket { bucket, .. } => {
                self.authorize(caller, Some(bucket), Some(Need::Read)).await
            }
            _ => Err(s3_error!(
                NotImplemented,
                "copy sources other than bucket/key"
            )),
        }
    }
}

#[async_trait::async_trait]
impl S3Access for GrantAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name();
        crate::metrics::set_current_op(op);
        let creds = cx
            .credentials()
            .ok_or_else(|| s3_error!(AccessDenied, "Signature is required"))?;
        // s3s reads XML bodies right after this check: refuse huge ones first.
        crate::s3::body_limit::check(op, cx.headers())?;
        let token = session_token(cx.headers(), cx.uri());
        let caller = self.principal_of(creds, token.as_deref())?;
        let bucket = cx.s3_path().get_bucket_name().map(str::to_owned);
        let (bucket, need) = match (op, bucket) {
            ("CreateBucket", _) => (None, Some(Need::Create)),
            (_, None) => (None, None),
            (_, Some(bucket)) => (Some(bucket), Some(Need::of(op))),
        };
        self.authorize(&caller, bucket.as_deref(), need).await?;
        cx.extensions_mut().insert(Principal(caller));
        Ok(())
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_need_the_right_grant() {
        assert_eq!(Need::of("GetObject"), Need::Read);
        assert_eq!(Need::of("HeadBucket"), Need::Read);
        assert_eq!(Need::of("ListObjectsV2"), Need::Read);
        assert_eq!(Need::of("PutObject"), Need::Write);
        assert_eq!(Need::of("DeleteObjects"), Need::Write);
        assert_eq!(Need::of("CompleteMultipartUpload"), Need::Write);
        assert_eq!(Need::of("PutBucketVersioning"), Need::Owner);
        assert_eq!(Need::of("DeleteBucket"), Need::Owner);
        let rw = Grant {
            read: true,
            write: true,
            owner: false,
        };
        assert!(Need::Read.allowed_by(&rw) && Need::Write.allowed_by(&rw));
        assert!(!Need::Owner.allowed_by(&rw));
        let owner = Grant {
            read: false,
            write: false,
            owner: true,
        };
        assert!(Need::Owner.allowed_by(&owner) && Need::Write.allowed_by(&owner));
    }
}
