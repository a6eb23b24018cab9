//! Whole-object checksums computed while a body streams in: MD5 (the ETag)
//! always, plus the S3 `x-amz-checksum-*` algorithms on request.

use sha2::Digest as _;

use bytes::Bytes;

use crate::md5::Md5;

/// An S3 additional checksum algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC, as zlib), 4 bytes.
    Crc32,
    /// CRC-32C (Castagnoli), 4 bytes.
    Crc32c,
    /// CRC-64/NVME, 8 bytes.
    Crc64Nvme,
    /// SHA-1, 20 bytes.
    Sha1,
    /// SHA-256, 32 bytes.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The S3 name: `"CRC32"`, `"CRC32C"`, `"CRC64NVME"`, `"SHA1"`, `"SHA256"`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Parses an S3 name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// The digest of `data` in one call.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = AlgorithmHasher::new(self);
        h.update(data);
        h.finish()
    }

    /// The CRC behind a CRC algorithm (`None` for SHA).
    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        use crc_fast::CrcAlgorithm as C;
        match self {
            ChecksumAlgorithm::Crc32 => Some(C::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(C::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(C::Crc64Nvme),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }

    /// Whether digests of this algorithm can be [combined](Self::combine).
    pub fn is_crc(self) -> bool {
        self.crc().is_some()
    }

    /// The CRC of `a ‖ b` from the digest of `a`, the digest of `b` and the
    /// length of `b` in bytes, without the bytes (digests big-endian, as
    /// [`Checksums`] holds them). `None` for SHA algorithms and for digests
    /// of the wrong length.
    pub fn combine(self, first: &[u8], second: &[u8], second_len: u64) -> Option<Vec<u8>> {
        let (crc, len) = (self.crc()?, self.digest_len());
        let value = |d: &[u8]| {
            (d.len() == len).then(|| d.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
        };
        let combined = crc_fast::checksum_combine(crc, value(first)?, value(second)?, second_len);
        Some(combined.to_be_bytes()[8 - len..].to_vec())
    }
}

/// Raw digests of an object: MD5 plus the requested algorithms.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Checksums {
    /// MD5 of the whole body (the single-part ETag).
    pub md5: [u8; 16],
    /// Requested algorithms with their raw (big-endian for CRCs) digests.
    pub others: Vec<(ChecksumAlgorithm, Vec<u8>)>,
}

impl Checksums {
    /// The digest for `algorithm`, if it was computed.
    pub fn get(&self, algorithm: ChecksumAlgorithm) -> Option<&[u8]> {
        self.others
            .iter()
            .find(|(a, _)| *a == algorithm)
            .map(|(_, d)| d.as_slice())
    }
}

enum AlgorithmHasher {
    Crc(crc_fast::Digest, usize),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl AlgorithmHasher {
    fn new(algorithm: ChecksumAlgorithm) -> Self {
        match algorithm.crc() {
            Some(crc) => Self::Crc(crc_fast::Digest::new(crc), algorithm.digest_len()),
            None if algorithm == ChecksumAlgorithm::Sha1 => Self::Sha1(sha1::Sha1::new()),
            None => Self::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc(d, _) => d.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Crc(d, len) => d.finalize().to_be_bytes()[8 - len..].to_vec(),
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// Computes MD5 and the requested algorithms over a stream of chunks.
pub struct Hasher {
    md5: Md5,
    others: Vec<(ChecksumAlgorithm, AlgorithmHasher)>,
}

impl Hasher {
    /// A hasher for MD5 plus `algorithms` (duplicates are ignored).
    pub fn new(algorithms: &[ChecksumAlgorithm]) -> Self {
        let mut wanted = algorithms.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        Hasher {
            md5: Md5::new(),
            others: wanted
                .into_iter()
                .map(|a| (a, AlgorithmHasher::new(a)))
                .collect(),
        }
    }

    /// Feeds the next bytes of the body.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.update_others(data);
    }

    /// Feeds the next bytes of the body, their MD5 in the lanes shared with
    /// concurrent uploads (see [`Md5::update_shared`]).
    pub fn update_shared(&mut self, data: &Bytes) {
        self.md5.update_shared(data);
        self.update_others(data);
    }

    fn update_others(&mut self, data: &[u8]) {
        for (_, h) in &mut self.others {
            h.update(data);
        }
    }

    /// The digests of everything fed so far.
    pub fn finish(self) -> Checksums {
        Checksums {
            md5: self.md5.finish(),
            others: self
                .others
                .into_iter()
                .map(|(a, h)| (a, h.finish()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests_of_123456789() {
        let mut h = Hasher::new(&ChecksumAlgorithm::ALL);
        h.update(b"1234");
        h.update(b"56789");
        let sums = h.finish();
        assert_eq!(hex::encode(sums.md5), "25f9e794323b453885f5181f1b624d0b");
        let hex_of = |a| hex::encode(sums.get(a).unwrap());
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32), "cbf43926");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc32c), "e3069283");
        assert_eq!(hex_of(ChecksumAlgorithm::Crc64Nvme), "ae8b14860a799888");
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha1),
            "f7c3bc1d808e04732adf679965ccc34ca7ae3441"
        );
        assert_eq!(
            hex_of(ChecksumAlgorithm::Sha256),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
    }

    #[test]
    fn combined_crcs_equal_the_crc_of_the_whole() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for a in ChecksumAlgorithm::ALL {
            if !a.is_crc() {
                assert_eq!(a.combine(&a.digest(b"x"), &a.digest(b"y"), 1), None);
                continue;
            }
            for cut in [0, 1, 17, 2500, 4999, 5000] {
                let (x, y) = data.split_at(cut);
                let combined = a.combine(&a.digest(x), &a.digest(y), y.len() as u64);
                assert_eq!(combined, Some(a.digest(&data)), "{} cut at {cut}", a.name());
            }
            assert_eq!(a.combine(b"short", &a.digest(b""), 0), None);
        }
    }

    #[test]
    fn names_round_trip() {
        for a in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::from_name(a.name()), Some(a));
            assert_eq!(a.digest(b"").len(), a.digest_len());
        }
        assert_eq!(
            ChecksumAlgorithm::from_name("crc32c"),
            Some(ChecksumAlgorithm::Crc32c)
        );
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
    }
}
