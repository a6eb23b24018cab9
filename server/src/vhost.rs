//! Virtual-host style addressing (`bucket.DOMAIN`) under a configured base
//! domain, with or without a port in the `Host` header.
//!
//! s3s's own `SingleDomain` compares the whole `Host` header with the
//! domain, so `bucket.s3.example.com:9000` would be refused; this strips the
//! port first and then asks `SingleDomain`.

use std::sync::Arc;

use s3s::S3Result;
use s3s::host::{S3Host, SingleDomain, VirtualHost};

/// The configured base domain (cheap to clone: s3s and the CORS layer both
/// need it).
#[derive(Debug, Clone)]
pub struct BaseDomain {
    domain: Arc<SingleDomain>,
}

impl BaseDomain {
    /// Virtual hosts under `domain` (for example `s3.example.com`).
    pub fn new(domain: &str) -> anyhow::Result<Self> {
        let domain =
            SingleDomain::new(domain).map_err(|e| anyhow::anyhow!("domain {domain:?}: {e}"))?;
        Ok(BaseDomain {
            domain: Arc::new(domain),
        })
    }
}

/// `host` without a trailing `:port`.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

impl S3Host for BaseDomain {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        self.domain.parse_host_header(strip_port(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_come_from_the_host_with_or_without_port() {
        let base = BaseDomain::new("s3.example.com").unwrap();
        for host in ["photos.s3.example.com", "photos.s3.example.com:9000"] {
            let vh = base.parse_host_header(host).unwrap();
            assert_eq!(vh.bucket(), Some("photos"), "{host}");
        }
        let vh = base.parse_host_header("s3.example.com:9000").unwrap();
        assert_eq!(vh.bucket(), None);
        assert!(BaseDomain::new("not a domain").is_err());
    }
}
