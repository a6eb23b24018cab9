//! Cluster TLS: a private cluster CA, certificates signed by it for every
//! metadata member and storage node, and the rustls configurations of the
//! cluster RPC (mutual TLS both ways: a machine only talks to, and only
//! answers, holders of a certificate from the CA).
//!
//! Every certificate the CA issues carries the DNS name
//! [`MEMBER_SERVER_NAME`]; a client verifies the server against that name
//! (machines are identified by the CA, not by their addresses, which may
//! change), plus any extra names given at issue time for other tools.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::NetError;

/// The DNS name every member certificate holds and every client checks.
pub const MEMBER_SERVER_NAME: &str = "member.tessera.internal";

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

    /// Issues a member certificate for `member` (its common name), valid as
    /// both TLS server and client. `extra_names` (DNS names or IP addresses)
    /// are added next to [`MEMBER_SERVER_NAME`].
    pub fn issue(&self, member: &str, extra_names: &[String]) -> Result<ClusterTls, NetError> {
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(tls_err)?;
        let issuer = Issuer::new(ca_params(&self.name), ca_key);
        let mut names = vec![MEMBER_SERVER_NAME.to_owned()];
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

fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, NetError> {
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
