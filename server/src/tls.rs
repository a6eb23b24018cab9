//! TLS for the S3 listener: a rustls server configuration (aws-lc-rs) from
//! PEM certificate and key files, offering HTTP/2 and HTTP/1.1 by ALPN; and
//! when a certificate expires ([`not_after`]), for the expiry metric.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Builds the rustls server configuration from the configured PEM files.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>> {
    let certs = load_certs(&files.cert)?;
    let key = load_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("tls certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_pem(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("opening {}", path.display()))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    tessera_net::tls::certs(&read_pem(path)?)
        .with_context(|| format!("reading certificates from {}", path.display()))
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    tessera_net::tls::private_key(&read_pem(path)?)
        .with_context(|| format!("reading private key from {}", path.display()))
}

/// When the X.509 certificate `der` expires: its `notAfter` as Unix
/// seconds, or `None` when `der` is not a certificate this can read.
pub fn not_after(der: &[u8]) -> Option<i64> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
    // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber,
    //     signature, issuer, validity, subject, ... }
    yasna::parse_der(der, |reader| {
        reader.read_sequence(|cert| {
            let expiry = cert.next().read_sequence(|tbs| {
                tbs.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_der()))?;
                for _serial_algorithm_issuer in 0..3 {
                    tbs.next().read_der()?;
                }
                let expiry = tbs.next().read_sequence(|validity| {
                    read_time(validity.next())?;
                    read_time(validity.next())
                })?;
                while tbs.read_optional(|r| r.read_der())?.is_some() {}
                Ok(expiry)
            })?;
            while cert.read_optional(|r| r.read_der())?.is_some() {}
            Ok(expiry)
        })
    })
    .ok()
}

/// An X.509 `Time` (UTCTime or GeneralizedTime) as Unix seconds.
fn read_time(reader: yasna::BERReader<'_, '_>) -> yasna::ASN1Result<i64> {
    if reader.lookahead_tag()? == yasna::tags::TAG_UTCTIME {
        Ok(reader.read_utctime()?.datetime().unix_timestamp())
    } else {
        Ok(reader.read_generalized_time()?.datetime().unix_timestamp())
    }
}

/// The earliest expiry (Unix seconds) of the certificates in `pem`, a
/// chain; `None` when it holds none this can read.
pub fn earliest_expiry(pem: &str) -> Option<i64> {
    let certs = tessera_net::tls::certs(pem).ok()?;
    certs.iter().map(|c| not_after(c.as_ref())).min().flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A self-signed certificate's PEM and DER, expiring at `not_after`.
    fn certificate(not_after: time::OffsetDateTime) -> (String, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = not_after;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    #[test]
    fn reads_the_expiry_of_utc_and_generalized_times() {
        // Up to 2049 a certificate says UTCTime, from 2050 GeneralizedTime.
        for expiry in [
            time::macros::datetime!(2031-05-17 12:34:56 UTC),
            time::macros::datetime!(2051-01-02 03:04:05 UTC),
        ] {
            let (pem, der) = certificate(expiry);
            assert_eq!(not_after(&der), Some(expiry.unix_timestamp()));
            assert_eq!(earliest_expiry(&pem), Some(expiry.unix_timestamp()));
        }
    }

    #[test]
    fn a_chain_expires_with_its_earliest_certificate() {
        let late = time::macros::datetime!(2040-01-01 0:00 UTC);
        let early = time::macros::datetime!(2030-06-01 0:00 UTC);
        let chain = format!("{}{}", certificate(late).0, certificate(early).0);
        assert_eq!(earliest_expiry(&chain), Some(early.unix_timestamp()));
    }

    #[test]
    fn anything_else_has_no_expiry() {
        let (_, der) = certificate(time::macros::datetime!(2031-05-17 0:00 UTC));
        assert_eq!(not_after(&der[..der.len() - 1]), None);
        assert_eq!(not_after(b"not a certificate"), None);
        assert_eq!(earliest_expiry(""), None);
        assert_eq!(
            earliest_expiry("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            None
        );
    }
}
