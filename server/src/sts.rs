//! STS `AssumeRole` on the S3 listener ([`StsRoute`]) and the temporary
//! credentials it issues ([`TempKeys`]).
//!
//! Tessera has no IAM roles: `AssumeRole` hands the caller temporary
//! credentials with exactly the caller's own permissions (its grants; an
//! administrator key's temporary credentials are administrator credentials),
//! whatever role it names. Session policies (`Policy`, `PolicyArns`) are
//! refused rather than ignored, since ignoring them would grant more than
//! was asked for.
//!
//! Temporary credentials are stateless — issuing them writes nothing to raft:
//! - the access key id is `TS` + base64url of the parent key id and the
//!   expiry, sealed with the cluster master key (so it cannot be forged or
//!   altered, and its expiry cannot be extended);
//! - the secret is an HMAC of the access key id and the parent key's sealed
//!   secret, keyed with a key derived from the master key: deleting the
//!   parent key (or re-creating it) revokes every temporary key it issued;
//! - the session token is an HMAC of the access key id; requests signed with
//!   a temporary key must carry it (`x-amz-security-token`).
//!
//! The request is a SigV4-signed (service `sts`) form POST to `/`:
//! `Action=AssumeRole&Version=2011-06-15&RoleArn=…&RoleSessionName=…[&DurationSeconds=…]`.
//! s3s verifies the signature before the route sees it; errors found by the
//! route come back as STS `ErrorResponse` documents.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use serde::Serialize;
use sha2::Sha256;
use tessera_raft::model::AccessKey;
use tessera_storage::MasterKey;
use time::OffsetDateTime;
use zeroize::Zeroize as _;

use crate::auth::KeyStore;

/// Prefix of every temporary access key id.
const TEMP_PREFIX: &str = "TS";
/// Longest access key id clients accept (AWS's limit).
pub const MAX_ACCESS_KEY_ID_LEN: usize = 128;
/// Bytes a sealed temporary key id adds around the parent id: the expiry
/// (8) and the sealing overhead (version, nonce, tag: 29).
const SEALED_ID_OVERHEAD: usize = 8 + 29;
/// Sealing context of temporary key ids.
const ID_CONTEXT: &[u8] = b"tessera/sts/key-id/v1";
/// Label deriving the HMAC key from the master key.
const MAC_KEY_LABEL: &[u8] = b"tessera/sts/mac-key/v1";
/// Bytes of a temporary secret (40 base64 characters, like AWS secrets).
const SECRET_BYTES: usize = 30;

/// Default lifetime of temporary credentials.
pub const DEFAULT_DURATION_SECS: i64 = 3600;
/// Shortest lifetime `DurationSeconds` may ask for.
pub const MIN_DURATION_SECS: i64 = 900;
/// Longest lifetime `DurationSeconds` may ask for.
pub const MAX_DURATION_SECS: i64 = 43_200;
/// Largest `AssumeRole` form accepted.
const MAX_FORM_BYTES: usize = 8192;
/// XML namespace of STS documents.
const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The only STS API version.
const STS_VERSION: &str = "2011-06-15";

type HmacSha256 = Hmac<Sha256>;

/// Mints and checks temporary credentials with keys from the cluster master key.
pub struct TempKeys {
    master: Arc<MasterKey>,
    mac_key: [u8; 32],
}

impl Drop for TempKeys {
    fn drop(&mut self) {
        self.mac_key.zeroize();
    }
}

impl std::fmt::Debug for TempKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TempKeys(..)")
    }
}

/// What a temporary access key id carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempKey {
    /// Id of the access key that assumed the role.
    pub parent: String,
    /// When the credentials stop working.
    pub expires: OffsetDateTime,
}

impl TempKey {
    /// Whether the credentials have expired at `now`.
    pub fn expired_at(&self, now: OffsetDateTime) -> bool {
        now >= self.expires
    }
}

/// Temporary credentials as handed out.
#[derive(Clone, PartialEq, Eq)]
pub struct TempCredentials {
    /// Temporary access key id (`TS…`).
    pub access_key_id: String,
    /// Its secret.
    pub secret_access_key: String,
    /// The session token requests must carry in `x-amz-security-token`.
    pub session_token: String,
    /// When they stop working.
    pub expiration: OffsetDateTime,
}

impl std::fmt::Debug for TempCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// Why temporary credentials cannot be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// The parent key id is too long to fit a temporary key id of at most
    /// [`MAX_ACCESS_KEY_ID_LEN`] characters.
    #[error("access key ids longer than {max} characters cannot assume roles")]
    ParentIdTooLong {
        /// Longest parent key id that fits.
        max: usize,
    },
}

/// HMAC-SHA256 of `parts`, each length-prefixed so that no two part lists collide.
fn mac(key: &[u8; 32], parts: &[&[u8]]) -> HmacSha256 {
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    for part in parts {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m
}

/// Longest parent key id whose temporary key id fits [`MAX_ACCESS_KEY_ID_LEN`].
const fn max_parent_len() -> usize {
    // base64 without padding: 4 characters per 3 bytes.
    (MAX_ACCESS_KEY_ID_LEN - TEMP_PREFIX.len()) * 3 / 4 - SEALED_ID_OVERHEAD
}

impl TempKeys {
    /// Keys derived from `master`.
    pub fn new(master: Arc<MasterKey>) -> Self {
        let mut raw = master.to_bytes();
        let mac_key = mac(&raw, &[MAC_KEY_LABEL]).finalize().into_bytes().into();
        raw.zeroize();
        TempKeys { master, mac_key }
    }

    /// Temporary credentials of `parent`, valid until `expires`.
    pub fn issue(
        &self,
        parent: &AccessKey,
        expires: OffsetDateTime,
    ) -> Result<TempCredentials, IssueError> {
        let max = max_parent_len();
        if parent.id.len() > max {
            return Err(IssueError::ParentIdTooLong { max });
        }
        let mut plain = Vec::with_capacity(8 + parent.id.len());
        plain.extend_from_slice(&expires.unix_timestamp().to_be_bytes());
        plain.extend_from_slice(parent.id.as_bytes());
        let sealed = self.master.seal_secret(ID_CONTEXT, &plain);
        let id = format!("{TEMP_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed));
        Ok(TempCredentials {
            secret_access_key: self.secret(&id, parent),
            session_token: self.session_token(&id),
            access_key_id: id,
            expiration: expires,
        })
    }

    /// What the temporary access key id `id` carries, or `None` when `id`
    /// is not a temporary key id minted with this master key (expired or not).
    pub fn open(&self, id: &str) -> Option<TempKey> {
        let sealed = URL_SAFE_NO_PAD.decode(id.strip_prefix(TEMP_PREFIX)?).ok()?;
        let plain = self.master.open_secret(ID_CONTEXT, &sealed).ok()?;
        let (expiry, parent) = plain.split_first_chunk::<8>()?;
        Some(TempKey {
            parent: String::from_utf8(parent.to_vec()).ok()?,
            expires: OffsetDateTime::from_unix_timestamp(i64::from_be_bytes(*expiry)).ok()?,
        })
    }

    /// The secret of temporary key `id` issued by `parent` (it changes when
    /// the parent's secret is sealed anew, i.e. when the key is re-created).
    pub fn secret(&self, id: &str, parent: &AccessKey) -> String {
        let tag = mac(
            &self.mac_key,
            &[b"secret", id.as_bytes(), &parent.sealed_secret],
        )
        .finalize()
        .into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..SECRET_BYTES])
    }

    fn session_token(&self, id: &str) -> String {
        let tag = mac(&self.mac_key, &[b"session-token", id.as_bytes()])
            .finalize()
            .into_bytes();
        URL_SAFE_NO_PAD.encode(tag)
    }

    /// Whether `token` is the session token of temporary key `id` (compared
    /// in constant time).
    pub fn token_matches(&self, id: &str, token: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        mac(&self.mac_key, &[b"session-token", id.as_bytes()])
            .verify_slice(&given)
            .is_ok()
    }
}

/// An STS error, sent as an STS `ErrorResponse` document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum StsError {
    /// A parameter is missing or out of range.
    #[error("{0}")]
    Validation(String),
    /// `Action` is missing, not `AssumeRole`, or `Version` is wrong.
    #[error("{0}")]
    InvalidAction(String),
    /// A feature Tessera does not offer.
    #[error("{0}")]
    NotImplemented(String),
    /// The caller may not assume roles.
    #[error("{0}")]
    AccessDenied(String),
    /// The request is signed for another service.
    #[error("{0}")]
    WrongService(String),
    /// The signing key vanished between the signature check and now.
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,
    /// The metadata plane cannot answer.
    #[error("the metadata service is unavailable")]
    Unavailable,
}

impl StsError {
    fn code(&self) -> &'static str {
        match self {
            StsError::Validation(_) => "ValidationError",
            StsError::InvalidAction(_) => "InvalidAction",
            StsError::NotImplemented(_) => "NotImplemented",
            StsError::AccessDenied(_) => "AccessDenied",
            StsError::WrongService(_) => "SignatureDoesNotMatch",
            StsError::InvalidClientTokenId => "InvalidClientTokenId",
            StsError::Unavailable => "ServiceUnavailable",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            StsError::Validation(_) | StsError::InvalidAction(_) => StatusCode::BAD_REQUEST,
            StsError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            StsError::AccessDenied(_)
            | StsError::WrongService(_)
            | StsError::InvalidClientTokenId => StatusCode::FORBIDDEN,
            StsError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `Sender` for the caller's mistakes, `Receiver` for ours.
    fn fault(&self) -> &'static str {
        if self.status().is_server_error() && !matches!(self, StsError::NotImplemented(_)) {
            "Receiver"
        } else {
            "Sender"
        }
    }
}

/// The `AssumeRole` parameters Tessera uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AssumeRole {
    role_arn: String,
    session_name: String,
    duration_secs: i64,
}

/// Parses and validates an `AssumeRole` form body.
fn parse_form(body: &[u8]) -> Result<AssumeRole, StsError> {
    let mut action = None;
    let mut version = None;
    let mut role_arn = None;
    let mut session_name = None;
    let mut duration = None;
    for (name, value) in form_urlencoded::parse(body) {
        match name.as_ref() {
            "Action" => action = Some(value.into_owned()),
            "Version" => version = Some(value.into_owned()),
            "RoleArn" => role_arn = Some(value.into_owned()),
            "RoleSessionName" => session_name = Some(value.into_owned()),
            "DurationSeconds" => duration = Some(value.into_owned()),
            "Policy" => {
                return Err(StsError::NotImplemented(
                    "session policies (Policy) are not supported".into(),
                ));
            }
            n if n.starts_with("PolicyArns.") => {
                return Err(StsError::NotImplemented(
                    "session policies (PolicyArns) are not supported".into(),
                ));
            }
            // Tags, ExternalId, SourceIdentity, MFA: nothing to enforce them against.
            _ => {}
        }
    }
    match action.as_deref() {
        Some("AssumeRole") => {}
        Some(other) => {
            return Err(StsError::InvalidAction(format!(
                "Could not find operation {other} for version {}",
                version.as_deref().unwrap_or("NO_VERSION_SPECIFIED")
            )));
        }
        None => return Err(StsError::InvalidAction("Action is missing".into())),
    }
    if version.as_deref() != Some(STS_VERSION) {
        return Err(StsError::InvalidAction(format!(
            "Could not find operation AssumeRole for version {}",
            version.as_deref().unwrap_or("NO_VERSION_SPECIFIED")
        )));
    }
    let role_arn = role_arn
        .filter(|r| !r.is_empty() && r.len() <= 2048)
        .ok_or_else(|| constraint("roleArn", "have length between 1 and 2048"))?;
    let session_name = session_name
        .filter(|s| {
            (2..=64).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        })
        .ok_or_else(|| {
            constraint(
                "roleSessionName",
                "have length between 2 and 64 and satisfy the pattern [\\w+=,.@-]*",
            )
        })?;
    let duration_secs = match duration {
        None => DEFAULT_DURATION_SECS,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| (MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(d))
            .ok_or_else(|| {
                constraint(
                    "durationSeconds",
                    &format!("have a value between {MIN_DURATION_SECS} and {MAX_DURATION_SECS}"),
                )
            })?,
    };
    Ok(AssumeRole {
        role_arn,
        session_name,
        duration_secs,
    })
}

fn constraint(member: &str, rule: &str) -> StsError {
    StsError::Validation(format!(
        "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must {rule}"
    ))
}

#[derive(Serialize)]
#[serde(rename = "AssumeRoleResponse")]
struct AssumeRoleResponse {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "AssumeRoleResult")]
    result: AssumeRoleResult,
    #[serde(rename = "ResponseMetadata")]
    metadata: ResponseMetadata,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleResult {
    credentials: XmlCredentials,
    assumed_role_user: AssumedRoleUser,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct XmlCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct AssumedRoleUser {
    assumed_role_id: String,
    arn: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ResponseMetadata {
    request_id: String,
}

#[derive(Serialize)]
#[serde(rename = "ErrorResponse")]
struct ErrorResponse {
    #[serde(rename = "@xmlns")]
    xmlns: &'static str,
    #[serde(rename = "Error")]
    error: ErrorBody,
    #[serde(rename = "RequestId")]
    request_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    r#type: &'static str,
    code: &'static str,
    message: String,
}

fn request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// An XML document response with `status`.
fn xml_response(status: StatusCode, doc: &impl Serialize) -> S3Result<S3Response<Body>> {
    let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    quick_xml::se::to_writer(&mut xml, doc).map_err(|e| {
        tracing::error!(error = %e, "encoding an STS response");
        S3Error::with_message(S3ErrorCode::InternalError, "encoding an STS response")
    })?;
    let mut resp = S3Response::new(Body::from(xml));
    resp.status = Some(status);
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    Ok(resp)
}

fn error_response(err: &StsError) -> S3Result<S3Response<Body>> {
    tracing::debug!(code = err.code(), error = %err, "AssumeRole refused");
    xml_response(
        err.status(),
        &ErrorResponse {
            xmlns: STS_NAMESPACE,
            error: ErrorBody {
                r#type: err.fault(),
                code: err.code(),
                message: err.to_string(),
            },
            request_id: request_id(),
        },
    )
}

/// The name of the role in a role ARN (`arn:aws:iam::1:role/path/name` → `name`).
fn role_name(arn: &str) -> &str {
    arn.rsplit(['/', ':']).next().unwrap_or(arn)
}

/// Answers STS `AssumeRole` (a form `POST /`) for correctly signed requests
/// of known, non-temporary keys.
#[derive(Debug, Clone)]
pub struct StsRoute {
    keys: KeyStore,
}

impl StsRoute {
    /// The route over these keys.
    pub fn new(keys: KeyStore) -> Self {
        StsRoute { keys }
    }

    /// Whether a request is for STS: a form `POST /`.
    pub fn is_match(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
        method == Method::POST
            && uri.path() == "/"
            && headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| {
                    v.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
    }

    /// Only signed requests get here (s3s has checked the signature and
    /// that the key exists); unsigned ones get `AccessDenied`.
    pub fn check_access(req: &S3Request<Body>) -> S3Result<()> {
        crate::metrics::set_current_op("AssumeRole", None);
        match req.credentials {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Signature is required")),
        }
    }

    /// Handles a checked request.
    pub async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        match self.assume_role(req).await {
            Ok(doc) => xml_response(StatusCode::OK, &doc),
            Err(e) => error_response(&e),
        }
    }

    async fn assume_role(&self, req: S3Request<Body>) -> Result<AssumeRoleResponse, StsError> {
        if req.service.as_deref() != Some("sts") {
            return Err(StsError::WrongService(
                "Credential should be scoped to correct service: 'sts'.".into(),
            ));
        }
        let caller = req
            .credentials
            .as_ref()
            .map(|c| c.access_key.clone())
            .ok_or_else(|| StsError::AccessDenied("Signature is required".into()))?;
        if self.keys.temp_keys().open(&caller).is_some() {
            return Err(StsError::AccessDenied(
                "temporary credentials cannot assume a role".into(),
            ));
        }
        let mut body = req.input;
        let form = body
            .store_all_limited(MAX_FORM_BYTES)
            .await
            .map_err(|e| StsError::Validation(format!("unreadable request body: {e}")))?;
        let params = parse_form(&form)?;
        let parent = self
            .keys
            .get(&caller)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "access key lookup failed");
                StsError::Unavailable
            })?
            .ok_or(StsError::InvalidClientTokenId)?;
        let expires = OffsetDateTime::from_unix_timestamp(
            OffsetDateTime::now_utc().unix_timestamp() + params.duration_secs,
        )
        .map_err(|e| StsError::Validation(format!("expiry out of range: {e}")))?;
        let creds = self
            .keys
            .temp_keys()
            .issue(&parent, expires)
            .map_err(|e| StsError::Validation(e.to_string()))?;
        tracing::info!(parent = %parent.id, role = %params.role_arn, session = %params.session_name,
            expires = %expires, "temporary credentials issued");
        let expiration = expires
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StsError::Validation(format!("expiry out of range: {e}")))?;
        let role = role_name(&params.role_arn);
        Ok(AssumeRoleResponse {
            xmlns: STS_NAMESPACE,
            result: AssumeRoleResult {
                credentials: XmlCredentials {
                    access_key_id: creds.access_key_id,
                    secret_access_key: creds.secret_access_key,
                    session_token: creds.session_token,
                    expiration,
                },
                assumed_role_user: AssumedRoleUser {
                    assumed_role_id: format!("{}:{}", parent.id, params.session_name),
                    arn: format!(
                        "arn:aws:sts::tessera:assumed-role/{role}/{}",
                        params.session_name
                    ),
                },
            },
            metadata: ResponseMetadata {
                request_id: request_id(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TempKeys {
        TempKeys::new(Arc::new(MasterKey::generate()))
    }

    fn parent(id: &str) -> AccessKey {
        AccessKey {
            id: id.to_owned(),
            sealed_secret: vec![7; 45],
            name: "parent".into(),
            created: 1,
            allow_create_bucket: true,
            admin: false,
        }
    }

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn issued_keys_open_to_their_parent_and_expiry() {
        let k = keys();
        let p = parent("TKPARENT000000000001");
        let c = k.issue(&p, at(2_000_000_000)).unwrap();
        assert!(c.access_key_id.starts_with(TEMP_PREFIX));
        assert_eq!(c.secret_access_key.len(), 40);
        let t = k.open(&c.access_key_id).unwrap();
        assert_eq!(t.parent, p.id);
        assert_eq!(t.expires, at(2_000_000_000));
        assert!(!t.expired_at(at(1_999_999_999)));
        assert!(t.expired_at(at(2_000_000_000)));
        assert_eq!(k.secret(&c.access_key_id, &p), c.secret_access_key);
        assert!(k.token_matches(&c.access_key_id, &c.session_token));
    }

    #[test]
    fn forged_or_foreign_ids_do_not_open() {
        let k = keys();
        let c = k.issue(&parent("TKP"), at(2_000_000_000)).unwrap();
        // Another cluster's master key.
        assert_eq!(keys().open(&c.access_key_id), None);
        // Any altered character.
        let id = c.access_key_id.as_bytes();
        for i in 0..id.len() {
            let mut forged = id.to_vec();
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            assert_eq!(k.open(&forged), None, "altered at {i}");
        }
        for id in ["", "TS", "TSnot-base64!", "TKPARENT000000000001"] {
            assert_eq!(k.open(id), None, "{id}");
        }
    }

    #[test]
    fn tokens_and_secrets_bind_to_the_key() {
        let k = keys();
        let p = parent("TKP");
        let a = k.issue(&p, at(2_000_000_000)).unwrap();
        let b = k.issue(&p, at(2_000_000_000)).unwrap();
        assert_ne!(a.access_key_id, b.access_key_id);
        assert!(!k.token_matches(&a.access_key_id, &b.session_token));
        assert!(!k.token_matches(&a.access_key_id, ""));
        assert!(!k.token_matches(&a.access_key_id, "not base64!"));
        // A re-created parent (new sealed secret) gets other secrets.
        let mut recreated = p.clone();
        recreated.sealed_secret = vec![8; 45];
        assert_ne!(k.secret(&a.access_key_id, &recreated), a.secret_access_key);
    }

    #[test]
    fn key_ids_fit_128_characters() {
        let k = keys();
        let max = max_parent_len();
        let c = k
            .issue(&parent(&"K".repeat(max)), at(2_000_000_000))
            .unwrap();
        assert!(c.access_key_id.len() <= MAX_ACCESS_KEY_ID_LEN);
        assert_eq!(
            k.issue(&parent(&"K".repeat(max + 1)), at(2_000_000_000)),
            Err(IssueError::ParentIdTooLong { max })
        );
    }

    #[test]
    fn form_validation() {
        let ok = parse_form(
            b"Action=AssumeRole&Version=2011-06-15&RoleArn=example&RoleSessionName=test",
        )
        .unwrap();
        assert_eq!(ok.duration_secs, DEFAULT_DURATION_SECS);
        assert_eq!(ok.role_arn, "example");
        let with = |extra: &str| {
            parse_form(
                format!("Action=AssumeRole&Version=2011-06-15&RoleArn=r&RoleSessionName=s1{extra}")
                    .as_bytes(),
            )
        };
        assert_eq!(with("&DurationSeconds=900").unwrap().duration_secs, 900);
        assert_eq!(with("&DurationSeconds=43200").unwrap().duration_secs, 43200);
        for bad in ["899", "43201", "-1", "x", ""] {
            let e = with(&format!("&DurationSeconds={bad}")).unwrap_err();
            assert_eq!(e.code(), "ValidationError", "{bad}");
        }
        assert_eq!(with("&Policy=%7B%7D").unwrap_err().code(), "NotImplemented");
        assert_eq!(
            with("&PolicyArns.member.1.arn=a").unwrap_err().code(),
            "NotImplemented"
        );
        assert!(with("&Tags.member.1.Key=k&ExternalId=e").is_ok());
        let e = parse_form(b"Action=GetCallerIdentity&Version=2011-06-15").unwrap_err();
        assert_eq!(e.code(), "InvalidAction");
        let e = parse_form(b"Action=AssumeRole&RoleArn=r&RoleSessionName=s1").unwrap_err();
        assert_eq!(e.code(), "InvalidAction");
        let e = parse_form(b"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1").unwrap_err();
        assert_eq!(e.code(), "ValidationError");
        let e = parse_form(b"Action=AssumeRole&Version=2011-06-15&RoleArn=r&RoleSessionName=a b")
            .unwrap_err();
        assert_eq!(e.code(), "ValidationError");
    }

    #[test]
    fn role_names() {
        assert_eq!(role_name("arn:aws:iam::123:role/path/reader"), "reader");
        assert_eq!(role_name("arn:aws:iam::123:reader"), "reader");
        assert_eq!(role_name("example"), "example");
    }
}
