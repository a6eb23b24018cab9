//! Who may do what: SigV4 secrets come from the access keys kept in raft
//! ([`KeyAuth`], an s3s [`S3Auth`]), and every request is checked against the
//! caller's per-bucket grants and the bucket's policy ([`GrantAccess`], an
//! s3s [`S3Access`]; policies in [`crate::policy`]).
//!
//! Rules:
//! - unknown keys get `InvalidAccessKeyId`, as S3 answers; requests that
//!   neither a grant nor the bucket policy allows get `AccessDenied` (a
//!   bucket that does not exist: `NoSuchBucket`);
//! - a bucket policy's explicit `Deny` refuses whatever grants allow (to
//!   administrator keys too), except that the bucket's owners and
//!   administrators may always get, put and delete the policy; a policy's
//!   `Allow` allows what grants do not, to keys and, with principal `*`, to
//!   unsigned (anonymous) requests, which nothing else allows;
//! - `x-amz-expected-bucket-owner` (and `x-amz-source-expected-bucket-owner`
//!   of a copy) must be the access key id of the bucket's owner, else
//!   `AccessDenied`;
//! - administrator keys may do everything;
//! - `ListBuckets` is open to every key (the gateway shows only buckets the
//!   caller owns or has a grant on);
//! - `CreateBucket` needs a key allowed to create buckets; it then owns the bucket;
//! - reads (`Get*`, `Head*`, `List*`) need a read grant, bucket settings
//!   (`PutBucket*`, `DeleteBucket*`, `PutObjectLockConfiguration`, the
//!   public access block) and reading access settings (policy, ACLs …)
//!   need ownership, everything else a write grant;
//! - bypassing governance retention (`x-amz-bypass-governance-retention`,
//!   S3's `s3:BypassGovernanceRetention`) needs an administrator key or
//!   ownership of the bucket ([`may_bypass_governance`]): a read-write
//!   grant may not;
//! - a copy also needs to be allowed to read its source object;
//! - temporary credentials from STS `AssumeRole` ([`crate::sts`]) act as the
//!   key that assumed the role: its grants, its buckets. They need their
//!   session token (`x-amz-security-token`, or `X-Amz-Security-Token` in a
//!   presigned URL); expired ones get `ExpiredToken`, forged ones and those
//!   whose parent key was deleted get `InvalidAccessKeyId`, a wrong or
//!   missing token `InvalidToken`.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, DeleteObjectsInput, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};
use tessera_raft::access::{Acl, Grantee, Permission, PublicAccessBlock};
use tessera_raft::model::{AccessKey, Bucket, Grant};
use tessera_raft::node::MetaNode;
use tessera_raft::{MetaError, command::Command};
use tessera_storage::MasterKey;
use time::OffsetDateTime;

use crate::datadir;
use crate::listener::ConnInfo;
use crate::policy::{self, ARN_PREFIX, Decision, Policy, Scope};
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
pub(crate) struct Principal(pub(crate) String);

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
            || op == "PutPublicAccessBlock"
            || op == "DeletePublicAccessBlock"
            || op == "PutObjectAcl"
            || ACCESS_SETTINGS.contains(&op)
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

/// Operations on a bucket's access settings: owner-only by grant (a read
/// grant does not show them).
const ACCESS_SETTINGS: [&str; 6] = [
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketAcl",
    "GetObjectAcl",
    "GetPublicAccessBlock",
    "GetBucketOwnershipControls",
];

/// The operations a bucket's owner may always do, whatever its policy
/// denies (as S3 lets the owner account's root user), so no policy locks
/// the owner out.
const POLICY_OPERATIONS: [&str; 3] = ["GetBucketPolicy", "PutBucketPolicy", "DeleteBucketPolicy"];

/// What a request asks to do.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    /// The S3 operation.
    op: &'a str,
    /// Its bucket (`None` for `ListBuckets` and `CreateBucket`).
    bucket: Option<&'a str>,
    /// Its object key, if any.
    key: Option<&'a str>,
    /// The version it names (`versionId`).
    version_id: Option<&'a str>,
    /// What the grants must allow; `None`: any known key may.
    need: Option<Need>,
}

/// What grants and the bucket policy say of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Judgement {
    Allowed,
    /// Explicitly denied by the bucket policy: nothing else can allow it.
    Denied,
    /// Neither allowed nor denied: an ACL still may allow it.
    NotAllowed,
}

/// The ACL permission an operation needs, and whether on the object's
/// ACL (else the bucket's); `None`: no ACL allows it.
fn acl_permission(op: &str) -> Option<(bool, Permission)> {
    Some(match op {
        "GetObject" | "HeadObject" => (true, Permission::Read),
        "GetObjectAcl" => (true, Permission::ReadAcp),
        "PutObjectAcl" => (true, Permission::WriteAcp),
        "ListObjects"
        | "ListObjectsV2"
        | "ListObjectVersions"
        | "ListMultipartUploads"
        | "HeadBucket" => (false, Permission::Read),
        "PutObject"
        | "DeleteObject"
        | "DeleteObjects"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "CompleteMultipartUpload"
        | "AbortMultipartUpload"
        | "CopyObject"
        | "UploadPartCopy" => (false, Permission::Write),
        "GetBucketAcl" => (false, Permission::ReadAcp),
        "PutBucketAcl" => (false, Permission::WriteAcp),
        _ => return None,
    })
}

/// Whether `acl` gives `caller` `permission` (public grants unless ignored).
fn acl_grants(
    acl: &Acl,
    caller: Option<&str>,
    permission: Permission,
    ignore_public: bool,
) -> bool {
    acl.grants.iter().any(|g| {
        let who = match &g.grantee {
            Grantee::Key(id) => caller == Some(id.as_str()),
            Grantee::AllUsers => !ignore_public,
            Grantee::AuthenticatedUsers => !ignore_public && caller.is_some(),
        };
        who && (g.permission == permission || g.permission == Permission::FullControl)
    })
}

/// What authorizing reads from the metadata, in one local read.
struct Standing {
    key: Option<AccessKey>,
    grant: Option<Grant>,
    bucket: Option<Bucket>,
    policy: Option<Policy>,
    /// The bucket's public access block.
    block: PublicAccessBlock,
}

impl Standing {
    /// The policy's verdict on `target` from `caller`.
    fn verdict(&self, caller: Option<&str>, target: &Target<'_>, cx: &policy::Context) -> Decision {
        let (Some(policy), Some(bucket)) = (&self.policy, target.bucket) else {
            return Decision::Silent;
        };
        let Some((action, scope)) = policy::actions::of(target.op, target.version_id.is_some())
        else {
            return Decision::Silent;
        };
        let resource = match (scope, target.key) {
            (Scope::Object, Some(key)) => format!("{ARN_PREFIX}{bucket}/{key}"),
            _ => format!("{ARN_PREFIX}{bucket}"),
        };
        let verdict = policy.decide(&policy::Request {
            principal: caller,
            action,
            resource: &resource,
            context: cx,
        });
        // RestrictPublicBuckets: a public policy serves only the keys of
        // the cluster (S3: the owner's account), never unsigned requests.
        let restricted =
            self.block.restrict_public_buckets && caller.is_none() && policy.is_public();
        if restricted && verdict == Decision::Allow {
            return Decision::Silent;
        }
        verdict
    }

    /// Whether the caller's key and grant allow `need`.
    fn identity_allows(&self, need: Need) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        key.admin
            || self.grant.is_some_and(|g| need.allowed_by(&g))
            || (need == Need::Create && key.allow_create_bucket)
    }

    /// Whether the caller owns the bucket (or administers the cluster).
    fn owns(&self) -> bool {
        self.key.as_ref().is_some_and(|k| k.admin) || self.grant.is_some_and(|g| g.owner)
    }

    /// Judges `target`, as AWS does for an identity and a resource
    /// policy of one account: an explicit deny in the policy refuses;
    /// otherwise the caller's grants or the policy must allow (ACLs are
    /// consulted after, see [`GrantAccess::authorize`]).
    fn judge(&self, caller: Option<&str>, target: &Target<'_>, cx: &policy::Context) -> Judgement {
        let Some(need) = target.need else {
            return if caller.is_some() {
                Judgement::Allowed
            } else {
                Judgement::NotAllowed
            };
        };
        let verdict = self.verdict(caller, target, cx);
        let exempt = self.owns() && POLICY_OPERATIONS.contains(&target.op);
        if verdict == Decision::Deny && !exempt {
            return Judgement::Denied;
        }
        if self.identity_allows(need) || verdict == Decision::Allow {
            return Judgement::Allowed;
        }
        Judgement::NotAllowed
    }

    /// The error of a request nothing allows.
    fn refusal(&self, caller: Option<&str>, target: &Target<'_>) -> s3s::S3Error {
        match target.need {
            None => s3_error!(AccessDenied, "Signature is required"),
            Some(Need::Create) if caller.is_some() => {
                s3_error!(AccessDenied, "this key may not create buckets")
            }
            _ if target.bucket.is_some() && self.bucket.is_none() => s3_error!(NoSuchBucket),
            _ => s3_error!(AccessDenied),
        }
    }

    /// Refuses a request whose expected bucket owner
    /// (`x-amz-expected-bucket-owner`, or `x-amz-source-expected-bucket-owner`
    /// for a copy source) is not the bucket's: the owner id is the access
    /// key id of the bucket's owner, as S3 responses show it.
    fn check_expected_owner(&self, expected: Option<&str>) -> S3Result<()> {
        match (expected, &self.bucket) {
            (Some(expected), Some(bucket)) if expected != bucket.owner => Err(s3_error!(
                AccessDenied,
                "The bucket is not owned by the expected owner"
            )),
            _ => Ok(()),
        }
    }
}

fn header<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Per-key, per-bucket authorization from the grants and bucket policies in raft.
#[derive(Debug, Clone)]
pub struct GrantAccess {
    keys: KeyStore,
}

impl GrantAccess {
    /// Authorization over these keys and their grants.
    pub fn new(keys: KeyStore) -> Self {
        GrantAccess { keys }
    }

    /// Reads the caller's key and grant on `bucket`, the bucket and its
    /// policy; an unknown caller is `InvalidAccessKeyId`.
    async fn standing(&self, caller: Option<&str>, bucket: Option<&str>) -> S3Result<Standing> {
        let id = caller.map(str::to_owned);
        let name = bucket.map(str::to_owned);
        let (key, grant, bucket) = self
            .keys
            .meta
            .read_local(move |view| {
                let key = id
                    .as_deref()
                    .map(|id| view.access_key(id))
                    .transpose()?
                    .flatten();
                let (grant, bucket) = match &name {
                    Some(b) => (
                        id.as_deref()
                            .map(|id| view.grant(id, b))
                            .transpose()?
                            .flatten(),
                        view.bucket(b)?,
                    ),
                    None => (None, None),
                };
                Ok((key, grant, bucket))
            })
            .await
            .map_err(meta_unavailable)?;
        if caller.is_some() && key.is_none() {
            return Err(unknown_key());
        }
        let document = bucket
            .as_ref()
            .map(tessera_raft::access::bucket_policy)
            .transpose()
            .map_err(meta_unavailable)?
            .flatten();
        let block = bucket
            .as_ref()
            .map(tessera_raft::access::public_access_block)
            .transpose()
            .map_err(meta_unavailable)?
            .flatten()
            .unwrap_or_default();
        let policy = document
            .map(|text| {
                Policy::parse(&text, None).map_err(|e| {
                    tracing::error!(error = %e, "stored bucket policy does not parse");
                    s3_error!(InternalError, "the bucket policy cannot be read")
                })
            })
            .transpose()?;
        Ok(Standing {
            key,
            grant,
            bucket,
            policy,
            block,
        })
    }

    /// Authorizes `target`: what grants and the bucket policy decide
    /// (see [`Standing::judge`]), else what the bucket's or object's ACL
    /// grants (unless ownership controls disable ACLs; public grants not
    /// while the public access block ignores public ACLs).
    async fn authorize(
        &self,
        standing: &Standing,
        caller: Option<&str>,
        target: &Target<'_>,
        cx: &policy::Context,
    ) -> S3Result<()> {
        match standing.judge(caller, target, cx) {
            Judgement::Allowed => Ok(()),
            Judgement::Denied => Err(s3_error!(
                AccessDenied,
                "Access Denied by the bucket policy"
            )),
            Judgement::NotAllowed if self.acl_allows(standing, caller, target).await? => Ok(()),
            Judgement::NotAllowed => Err(standing.refusal(caller, target)),
        }
    }

    /// Whether the ACL of the bucket or object of `target` allows it.
    async fn acl_allows(
        &self,
        standing: &Standing,
        caller: Option<&str>,
        target: &Target<'_>,
    ) -> S3Result<bool> {
        let (Some(bucket), Some((on_object, permission))) =
            (&standing.bucket, acl_permission(target.op))
        else {
            return Ok(false);
        };
        if tessera_raft::access::acls_disabled(bucket).map_err(meta_unavailable)? {
            return Ok(false);
        }
        let acl = if on_object {
            let Some(key) = target.key else {
                return Ok(false);
            };
            let (b, k, v) = (
                bucket.name.clone(),
                key.to_owned(),
                target.version_id.map(str::to_owned),
            );
            self.keys
                .meta
                .read_local(move |view| match view.object(&b, &k, v.as_deref())? {
                    Some(version) => view.object_acl(&b, &k, &version.version_id),
                    None => Ok(None),
                })
                .await
                .map_err(meta_unavailable)?
        } else {
            tessera_raft::access::bucket_acl(bucket).map_err(meta_unavailable)?
        };
        let ignore_public = standing.block.ignore_public_acls;
        Ok(acl.is_some_and(|acl| acl_grants(&acl, caller, permission, ignore_public)))
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

    /// A copy also needs to read its source object.
    async fn check_copy_source<T>(&self, req: &S3Request<T>, source: &CopySource) -> S3Result<()> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(s3_error!(
                NotImplemented,
                "copy sources other than bucket/key"
            ));
        };
        let caller = principal(req);
        let standing = self.standing(caller, Some(bucket)).await?;
        let target = Target {
            op: "GetObject",
            bucket: Some(bucket),
            key: Some(key),
            version_id: version_id.as_deref(),
            need: Some(Need::Read),
        };
        let cx = request_context(req, caller);
        self.authorize(&standing, caller, &target, &cx).await?;
        standing.check_expected_owner(header(&req.headers, "x-amz-source-expected-bucket-owner"))
    }
}

/// The condition keys of an operation's request.
fn request_context<T>(req: &S3Request<T>, caller: Option<&str>) -> policy::Context {
    policy::keys::context(
        &req.headers,
        &req.uri,
        req.extensions.get::<ConnInfo>(),
        caller,
    )
}

/// A request to authorize: what s3s's access check tells of it, or what a
/// browser upload (POST Object, read before s3s) asks for.
pub(crate) struct Admission<'a> {
    /// The S3 operation.
    pub(crate) op: &'a str,
    /// The addressed bucket and object key.
    pub(crate) bucket: Option<String>,
    pub(crate) key: Option<String>,
    /// The verified signing credentials (`None`: anonymous).
    pub(crate) credentials: Option<&'a Credentials>,
    /// The session token that came with them.
    pub(crate) token: Option<String>,
    /// The headers and URI bucket policy conditions read.
    pub(crate) headers: &'a http::HeaderMap,
    pub(crate) uri: &'a http::Uri,
    pub(crate) conn: Option<ConnInfo>,
}

impl GrantAccess {
    /// Authorizes `a` (see the module docs); the access key it acts as
    /// (`None`: anonymous).
    pub(crate) async fn admit(&self, a: Admission<'_>) -> S3Result<Option<String>> {
        let caller = match a.credentials {
            Some(creds) => Some(self.principal_of(creds, a.token.as_deref())?),
            None => None,
        };
        let (bucket, need) = match (a.op, a.bucket) {
            ("CreateBucket", _) => (None, Some(Need::Create)),
            (_, None) => (None, None),
            (op, Some(bucket)) => (Some(bucket), Some(Need::of(op))),
        };
        let standing = self.standing(caller.as_deref(), bucket.as_deref()).await?;
        let version_id = policy::keys::version_id(a.uri);
        let target = Target {
            op: a.op,
            bucket: bucket.as_deref(),
            key: a.key.as_deref(),
            version_id: version_id.as_deref(),
            need,
        };
        // DeleteObjects is decided per key once its body is read.
        if a.op != "DeleteObjects" {
            let pcx = policy::keys::context(a.headers, a.uri, a.conn.as_ref(), caller.as_deref());
            self.authorize(&standing, caller.as_deref(), &target, &pcx)
                .await?;
        }
        standing.check_expected_owner(header(a.headers, "x-amz-expected-bucket-owner"))?;
        Ok(caller)
    }
}

#[async_trait::async_trait]
impl S3Access for GrantAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let conn = cx.extensions_mut().get::<ConnInfo>().copied();
        let op = cx.s3_op().name();
        crate::metrics::set_current_op(op, cx.s3_path().get_bucket_name());
        // s3s reads XML bodies right after this check: refuse huge ones first.
        crate::s3::body_limit::check(op, cx.headers())?;
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let caller = self
            .admit(Admission {
                op,
                bucket,
                key,
                credentials: cx.credentials(),
                token: session_token(cx.headers(), cx.uri()),
                headers: cx.headers(),
                uri: cx.uri(),
                conn,
            })
            .await?;
        if let Some(caller) = caller {
            cx.extensions_mut().insert(Principal(caller));
        }
        Ok(())
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let caller = principal(req);
        let bucket = req.input.bucket.as_str();
        let standing = self.standing(caller, Some(bucket)).await?;
        let cx = request_context(req, caller);
        let mut target = Target {
            op: "DeleteObjects",
            bucket: Some(bucket),
            key: None,
            version_id: None,
            need: Some(Need::Write),
        };
        let objects = &req.input.delete.objects;
        if objects.is_empty() {
            return self.authorize(&standing, caller, &target, &cx).await;
        }
        for o in objects {
            target.key = Some(&o.key);
            target.version_id = o.version_id.as_deref();
            self.authorize(&standing, caller, &target, &cx).await?;
        }
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
