//! Cluster TLS: a private cluster CA, certificates signed by it for every
//! metadata member and storage node, and the rustls configurations of the
//! cluster RPC (mutual TLS both ways: a machine only talks to, and only
//! answers, holders of a certificate from the CA).
//!
//! Every certificate the CA issues carries the DNS name
//! [`MEMBER_SERVER_NAME`]; a client verifies the server against that name
//! (machines are identified by the CA, not by their addresses, which may
//! change), plus any extra names given at issue time for other tools. It
//! also carries the member's own name (`node-3`) as its common name and as
//! the DNS name `node-3.tessera.internal` ([`member_dns_name`]), which
//! [`verify_member`] checks: a process can refuse to start with a
//! certificate issued to another member or by another CA.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, Error as RustlsError};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::NetError;

/// The DNS name every member certificate holds and every client checks.
pub const MEMBER_SERVER_NAME: &str = "member.tessera.internal";
/// The domain of the members' own DNS names ([`member_dns_name`]).
pub const MEMBER_DOMAIN: &str = "tessera.internal";
/// The common name of the CAs `tessera init` generates; a CA is signed
/// with again under its name, so [`ClusterCa::from_pem`] assumes this one.
pub const CLUSTER_CA_NAME: &str = "Tessera cluster CA";

/// The DNS name a member's certificate holds besides
/// [`MEMBER_SERVER_NAME`]: `node-3` → `node-3.tessera.internal`.
pub fn member_dns_name(member: &str) -> String {
    format!("{member}.{MEMBER_DOMAIN}")
}

/// Checks that `member` can be a DNS label (1 to 63 lower-case letters,
/// digits and hyphens, no hyphen first or last), as it becomes one.
fn check_member_name(member: &str) -> Result<(), NetError> {
    let valid = (1..=63).contains(&member.len())
        && member
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !member.starts_with('-')
        && !member.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(NetError::Tls(format!(
            "member name {member:?} must be 1 to 63 lower-case letters, digits and hyphens (like node-3)"
        )))
    }
}

/// A member's or node's TLS material: the cluster CA, its own certificate and key (PEM).
#[derive(Clone)]
pub struct ClusterTls {
    /// The cluster CA certificate.
    pub ca_pem: String,
    /// This member's certificate, signed by the CA.
    pub cert_pem: String,
    /// This member's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls").finish_non_exhaustive()
    }
}

/// A cluster certificate authority: certificate and signing key (PEM).
#[derive(Clone)]
pub struct ClusterCa {
    /// The CA's common name (needed to sign with it again).
    pub name: String,
    /// The CA certificate.
    pub cert_pem: String,
    /// The CA private key. Keep it offline once members have their certificates.
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn tls_err(e: impl std::fmt::Display) -> NetError {
    NetError::Tls(e.to_string())
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
    params
}

impl ClusterCa {
    /// Generates a new CA named `name` (e.g. "tessera cluster CA").
    pub fn generate(name: &str) -> Result<ClusterCa, NetError> {
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = ca_params(name).self_signed(&key).map_err(tls_err)?;
        Ok(ClusterCa {
            name: name.to_owned(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A CA generated under [`CLUSTER_CA_NAME`], from its certificate and
    /// key. Whether the two belong together shows when a certificate it
    /// issues is checked against `cert_pem` ([`verify_member`]).
    pub fn from_pem(cert_pem: String, key_pem: String) -> ClusterCa {
        ClusterCa {
            name: CLUSTER_CA_NAME.to_owned(),
            cert_pem,
            key_pem,
        }
    }

    /// Issues a member certificate for `member` (a DNS label: its common
    /// name, and [`member_dns_name`]), valid as both TLS server and client.
    /// `extra_names` (DNS names or IP addresses) are added next to
    /// [`MEMBER_SERVER_NAME`].
    pub fn issue(&self, member: &str, extra_names: &[String]) -> Result<ClusterTls, NetError> {
        check_member_name(member)?;
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(tls_err)?;
        let issuer = Issuer::new(ca_params(&self.name), ca_key);
        let mut names = vec![MEMBER_SERVER_NAME.to_owned(), member_dns_name(member)];
        names.extend(extra_names.iter().cloned());
        let mut params = CertificateParams::new(names).map_err(tls_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, member);
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2125, 1, 1);
        let key = KeyPair::generate().map_err(tls_err)?;
        let cert = params.signed_by(&key, &issuer).map_err(tls_err)?;
        Ok(ClusterTls {
            ca_pem: self.cert_pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Checks that the certificate in `tls` chains to the CA in `tls` and was
/// issued to `member` (holds [`member_dns_name`]), as rustls would check it
/// at a handshake, with the reason in words when it does not.
pub fn verify_member(tls: &ClusterTls, member: &str) -> Result<(), NetError> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(&tls.ca_pem)?, provider())
        .build()
        .map_err(tls_err)?;
    let chain = certs(&tls.cert_pem)?;
    let name = ServerName::try_from(member_dns_name(member)).map_err(tls_err)?;
    let verified = verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now());
    match verified {
        Ok(_) => Ok(()),
        Err(RustlsError::InvalidCertificate(CertificateError::NotValidForNameContext {
            presented,
            ..
        })) => {
            // webpki presents DNS names as `DnsName("node-2.tessera.internal")`.
            let suffix = format!(".{MEMBER_DOMAIN}");
            let members: Vec<&str> = presented
                .iter()
                .map(|n| {
                    n.strip_prefix("DnsName(\"")
                        .and_then(|n| n.strip_suffix("\")"))
                        .unwrap_or(n)
                })
                .filter(|n| *n != MEMBER_SERVER_NAME)
                .filter_map(|n| n.strip_suffix(&suffix))
                .collect();
            Err(NetError::Identity(if members.is_empty() {
                format!("the certificate names no member, so it cannot be {member}'s")
            } else {
                format!(
                    "the certificate was issued to {}, not to {member}",
                    members.join(", ")
                )
            }))
        }
        Err(RustlsError::InvalidCertificate(CertificateError::NotValidForName)) => Err(
            NetError::Identity(format!("the certificate was not issued to {member}")),
        ),
        Err(RustlsError::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        )) => Err(NetError::Identity(
            "the certificate was not signed by the cluster CA (it is another cluster's?)".into(),
        )),
        Err(e) => Err(NetError::Identity(format!(
            "the certificate is not valid: {e}"
        ))),
    }
}

/// Whether `cert` (a certificate a handshake already verified against the
/// cluster CA) was issued to `member` (holds [`member_dns_name`]).
pub fn issued_to(cert: &CertificateDer<'_>, member: &str) -> bool {
    let Ok(name) = ServerName::try_from(member_dns_name(member)) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

/// Every certificate in a PEM text (at least one).
pub fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_err)?;
    if certs.is_empty() {
        return Err(NetError::Tls("no certificate in PEM".into()));
    }
    Ok(certs)
}

/// The private key in a PEM text.
pub fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, NetError> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(tls_err)?
        .ok_or_else(|| NetError::Tls("no private key in PEM".into()))
}

/// A root store holding exactly the certificates in a PEM text.
pub fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, NetError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca_pem)? {
        roots.add(cert).map_err(tls_err)?;
    }
    Ok(Arc::new(roots))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The server side: present our certificate, require one from the cluster CA.
pub fn server_config(tls: &ClusterTls) -> Result<Arc<ServerConfig>, NetError> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&tls.ca_pem)?, provider())
        .build()
        .map_err(tls_err)?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&tls.cert_pem)?, private_key(&tls.key_pem)?)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// The client side: trust only the cluster CA, present our certificate.
pub fn client_config(tls: &ClusterTls) -> Result<Arc<ClientConfig>, NetError> {
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots(&tls.ca_pem)?)
        .with_client_auth_cert(certs(&tls.cert_pem)?, private_key(&tls.key_pem)?)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

/// The name clients check on a member's certificate.
pub fn member_server_name() -> ServerName<'static> {
    ServerName::DnsName(
        rustls::pki_types::DnsName::try_from(MEMBER_SERVER_NAME)
            .expect("MEMBER_SERVER_NAME is a valid DNS name")
            .to_owned(),
    )
}
