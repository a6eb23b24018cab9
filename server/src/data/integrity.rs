//! What a writer claimed about a body, and the check of those claims
//! against what was computed while storing it.
//!
//! The claims are typed values here: a decoded MD5, checksum values by
//! algorithm (base64, as clients send them), an algorithm whose value comes
//! after the body ([`Trailers`]) and further algorithms to compute. The S3
//! surface reads them off a request's headers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tessera_raft::model::Checksum;
use tessera_storage::ChecksumAlgorithm;

use super::DataError;

/// Checksum values that arrive after the body (aws-chunked trailers).
pub(crate) trait Trailers: Send + Sync {
    /// The base64 value sent for `algorithm`, once the body has been read.
    fn checksum(&self, algorithm: ChecksumAlgorithm) -> Option<String>;
}

/// The integrity claims a writer made about a body, and the checksums it
/// asked to have stored.
#[derive(Default)]
pub(crate) struct Integrity {
    /// The declared MD5.
    pub(crate) md5: Option<[u8; 16]>,
    /// Declared checksum values (base64), by algorithm.
    pub(crate) declared: Vec<(ChecksumAlgorithm, String)>,
    /// Algorithm whose declared value arrives as a trailer.
    pub(crate) trailer: Option<ChecksumAlgorithm>,
    /// Further algorithms to compute and store.
    pub(crate) requested: Vec<ChecksumAlgorithm>,
    /// Where the trailer's value is read once the body is consumed.
    pub(crate) trailers: Option<Box<dyn Trailers>>,
}

impl Integrity {
    /// No claims; `algorithm`'s checksum computed and stored.
    pub(crate) fn computing(algorithm: Option<ChecksumAlgorithm>) -> Self {
        Self {
            requested: algorithm.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Every algorithm to compute, without duplicates.
    pub(crate) fn algorithms(&self) -> Vec<ChecksumAlgorithm> {
        let mut out: Vec<ChecksumAlgorithm> = Vec::new();
        let all = self
            .declared
            .iter()
            .map(|(a, _)| *a)
            .chain(self.trailer)
            .chain(self.requested.iter().copied());
        for a in all {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Compares the computed digests with every claim.
    pub(crate) fn verify(
        &self,
        md5: &[u8; 16],
        computed: &[(ChecksumAlgorithm, Vec<u8>)],
    ) -> Result<(), DataError> {
        if self.md5.is_some_and(|m| &m != md5) {
            return Err(DataError::Md5Mismatch);
        }
        let mut claims = self.declared.clone();
        if let (Some(alg), Some(trailers)) = (self.trailer, &self.trailers) {
            let value = trailers
                .checksum(alg)
                .ok_or(DataError::MissingTrailer(alg))?;
            claims.push((alg, value));
        }
        for (alg, claimed) in claims {
            let got = computed
                .iter()
                .find(|(a, _)| *a == alg)
                .map(|(_, d)| BASE64.encode(d))
                .unwrap_or_default();
            if got != claimed {
                return Err(DataError::ChecksumMismatch(alg));
            }
        }
        Ok(())
    }
}

/// Computed digests as the metadata model stores them.
pub(crate) fn to_model(computed: &[(ChecksumAlgorithm, Vec<u8>)]) -> Vec<Checksum> {
    computed
        .iter()
        .map(|(a, d)| Checksum {
            algorithm: a.name().to_owned(),
            value: BASE64.encode(d),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sent(Option<String>);

    impl Trailers for Sent {
        fn checksum(&self, _: ChecksumAlgorithm) -> Option<String> {
            self.0.clone()
        }
    }

    #[test]
    fn every_claim_is_checked() {
        let crc = ChecksumAlgorithm::Crc32;
        let mut hasher = tessera_storage::checksum::Hasher::new(&[crc]);
        hasher.update(b"hello");
        let sums = hasher.finish();
        let (md5, computed) = (sums.md5, sums.others);
        let right = BASE64.encode(crc.digest(b"hello"));
        let claims = |md5, declared: Option<&str>, trailer: Option<Sent>| Integrity {
            md5,
            declared: declared.map(|v| (crc, v.to_owned())).into_iter().collect(),
            trailer: trailer.is_some().then_some(crc),
            requested: Vec::new(),
            trailers: trailer.map(|t| Box::new(t) as Box<dyn Trailers>),
        };
        assert!(
            claims(Some(md5), Some(&right), None)
                .verify(&md5, &computed)
                .is_ok()
        );
        assert!(matches!(
            claims(Some([0; 16]), None, None).verify(&md5, &computed),
            Err(DataError::Md5Mismatch)
        ));
        assert!(matches!(
            claims(None, Some("AAAAAA=="), None).verify(&md5, &computed),
            Err(DataError::ChecksumMismatch(a)) if a == crc
        ));
        let trailed = claims(None, None, Some(Sent(Some(right))));
        assert!(trailed.verify(&md5, &computed).is_ok());
        assert_eq!(trailed.algorithms(), vec![crc]);
        assert!(matches!(
            claims(None, None, Some(Sent(None))).verify(&md5, &computed),
            Err(DataError::MissingTrailer(a)) if a == crc
        ));
    }
}
