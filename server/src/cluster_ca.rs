//! The cluster CA's files: `ca.pem` and `ca.key` in one directory, and the
//! certificate and key it issues to each member as `NAME.pem` and
//! `NAME.key` (keys owner-only, 0600). `tessera init` writes them all;
//! `tessera cert issue` adds one member later.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tessera_net::{CLUSTER_CA_NAME, ClusterCa, ClusterTls};

use crate::datadir::write_new_file;

/// File name of the CA certificate.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA's private key.
pub const CA_KEY_FILE: &str = "ca.key";

/// Mode of certificates: anyone may read them.
const CERT_MODE: u32 = 0o644;
/// Mode of private keys: the owner only.
const KEY_MODE: u32 = 0o600;

/// Where a member's certificate and key were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberFiles {
    /// `NAME.pem`.
    pub cert: PathBuf,
    /// `NAME.key`.
    pub key: PathBuf,
}

/// Generates a new cluster CA and writes it into `dir` (which must not
/// hold one yet).
pub fn create(dir: &Path) -> Result<ClusterCa> {
    let ca = ClusterCa::generate(CLUSTER_CA_NAME).context("generating the cluster CA")?;
    write_new_file(&dir.join(CA_CERT_FILE), &ca.cert_pem, CERT_MODE)?;
    write_new_file(&dir.join(CA_KEY_FILE), &ca.key_pem, KEY_MODE)?;
    Ok(ca)
}

/// Reads the CA that [`create`] wrote into `dir`.
pub fn load(dir: &Path) -> Result<ClusterCa> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    Ok(ClusterCa::from_pem(read(CA_CERT_FILE)?, read(CA_KEY_FILE)?))
}

/// Issues `member` a certificate from `ca`, also valid as each of
/// `also` (a gateway that is metadata member 3 is `gateway-3` and
/// `member-3`), and writes it and its key into `dir` as `stem.pem` and
/// `stem.key`, refusing to replace either.
pub fn issue(
    ca: &ClusterCa,
    member: &str,
    also: &[String],
    stem: &str,
    dir: &Path,
) -> Result<MemberFiles> {
    let extra: Vec<String> = also
        .iter()
        .map(|m| tessera_net::tls::member_dns_name(m))
        .collect();
    let tls = ca
        .issue(member, &extra)
        .with_context(|| format!("issuing a certificate to {member}"))?;
    for name in std::iter::once(member).chain(also.iter().map(String::as_str)) {
        check_issued(&tls, name)?;
    }
    let files = MemberFiles {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    };
    write_new_file(&files.cert, &tls.cert_pem, CERT_MODE)?;
    write_new_file(&files.key, &tls.key_pem, KEY_MODE)?;
    Ok(files)
}

/// Checks a fresh certificate the way its member will at start, which also
/// catches a `ca.key` that does not belong to `ca.pem`.
fn check_issued(tls: &ClusterTls, member: &str) -> Result<()> {
    tessera_net::tls::verify_member(tls, member).with_context(|| {
        format!(
            "the certificate signed with {CA_KEY_FILE} does not verify against {CA_CERT_FILE} \
             (are they one CA's, written by tessera init?)"
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn issues_from_a_saved_ca_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path()).unwrap();
        let files = issue(
            &load(dir.path()).unwrap(),
            "node-4",
            &[],
            "node-4",
            dir.path(),
        )
        .unwrap();
        assert_eq!(mode(&dir.path().join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&files.key), 0o600);
        assert_eq!(mode(&files.cert), 0o644);
        assert!(create(dir.path()).is_err(), "a CA is never replaced");
        let again = issue(
            &load(dir.path()).unwrap(),
            "node-4",
            &[],
            "node-4",
            dir.path(),
        );
        assert!(again.is_err(), "a member's files are never replaced");
    }

    #[test]
    fn refuses_a_key_of_another_ca() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let ca = create(ours.path()).unwrap();
        let other = create(theirs.path()).unwrap();
        let mixed = ClusterCa::from_pem(ca.cert_pem, other.key_pem);
        let err = issue(&mixed, "node-1", &[], "node-1", ours.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("not signed by the cluster CA"),
            "{err:#}"
        );
        assert!(!ours.path().join("node-1.pem").exists());
    }
}
