//! Keys and sealing: AES-256-GCM-SIV (RFC 8452) everywhere. Shard blocks,
//! the per-byte hot path, use `vaes` (VAES + VPCLMULQDQ on 512- or 256-bit
//! vectors) where the CPU has it; everything else, and blocks on other CPUs,
//! use aws-lc (the library rustls uses). Both produce the same bytes. The
//! `vaes` module exists only on x86-64 builds without `--cfg
//! tessera_portable` (see the crate docs on kernels).
//!
//! * [`MasterKey`]: the cluster key. It wraps per-object [`DataKey`]s (bound to
//!   the object id) and seals small secrets such as access-key secrets (bound to
//!   a caller-chosen context). These use a random 96-bit nonce stored in front
//!   of the ciphertext: `version (1) | nonce (12) | ciphertext | tag (16)`.
//! * [`DataKey`]: a random key per object. It seals the object's shard blocks
//!   and inline blobs.
//!
//! Block nonces are derived, not stored: `part (4, LE) | shard index (2, LE) |
//! block index (6, LE)`. Each position of an object is sealed once under that
//! object's own random key, so nonces never repeat within a key; should a
//! caller rewrite the same (object, part) with other bytes, GCM-SIV's
//! nonce-misuse resistance limits the damage to revealing whether two blocks
//! at the same position are equal. The associated data binds the block to its
//! object, part, shard index, block index and geometry, so a block moved to
//! another position or object fails to open.

use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroize;

use crate::error::StorageError;
use crate::format::Geometry;
use crate::store::ObjectId;

#[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
mod vaes;

/// AEAD tag length in bytes.
pub const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const SEALED_VERSION: u8 = 1;
/// Overhead of a blob sealed with a random nonce: version, nonce, tag.
pub(crate) const SEALED_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

const WRAP_LABEL: &[u8] = b"tessera/datakey/v1";
const SECRET_LABEL: &[u8] = b"tessera/secret/v1";
const BLOCK_LABEL: &[u8] = b"tessera/block/v1";

/// The cluster master key (32 bytes); zeroized on drop.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        MasterKey(rand::random())
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StorageError> {
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| StorageError::Crypto("master key must be 32 bytes"))?;
        Ok(MasterKey(key))
    }

    /// The raw bytes (to write to a key file).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Wraps `key` for storage in metadata, bound to `object`.
    pub fn wrap(&self, key: &DataKey, object: ObjectId) -> Vec<u8> {
        seal_random(&self.0, &[WRAP_LABEL, &object.0], &key.0)
    }

    /// Unwraps a key produced by [`MasterKey::wrap`] for the same `object`.
    pub fn unwrap(&self, wrapped: &[u8], object: ObjectId) -> Result<DataKey, StorageError> {
        let mut plain = open_random(&self.0, &[WRAP_LABEL, &object.0], wrapped)?;
        let key = <[u8; 32]>::try_from(plain.as_slice())
            .map_err(|_| StorageError::Crypto("wrapped data key has the wrong length"));
        plain.zeroize();
        Ok(DataKey(key?))
    }

    /// Seals a small secret (e.g. an access key's secret) bound to `context`.
    pub fn seal_secret(&self, context: &[u8], plain: &[u8]) -> Vec<u8> {
        seal_random(&self.0, &[SECRET_LABEL, context], plain)
    }

    /// Opens a secret sealed with [`MasterKey::seal_secret`] and the same `context`.
    pub fn open_secret(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StorageError> {
        open_random(&self.0, &[SECRET_LABEL, context], sealed)
    }
}

/// A per-object data key (32 bytes); zeroized on drop.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        DataKey(rand::random())
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A block cipher keyed once, for sealing or opening many blocks.
    pub fn block_cipher(&self) -> BlockCipher {
        #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
        if let Some(wide) = vaes::VaesGcmSiv::new(&self.0) {
            return BlockCipher(Implementation::Wide(Box::new(wide)));
        }
        BlockCipher(Implementation::AwsLc(cipher(&self.0)))
    }
}

/// Where a block sits; bound into its nonce and associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockPosition {
    /// The object (version) the block belongs to.
    pub object: ObjectId,
    /// Part number (1 for a single-part object).
    pub part: u32,
    /// Shard index.
    pub index: u16,
    /// Block (stripe) number within the shard.
    pub block: u64,
    /// The object's coding geometry.
    pub geometry: Geometry,
}

impl BlockPosition {
    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        n[0..4].copy_from_slice(&self.part.to_le_bytes());
        n[4..6].copy_from_slice(&self.index.to_le_bytes());
        n[6..12].copy_from_slice(&self.block.to_le_bytes()[..6]);
        n
    }

    fn aad(&self) -> [u8; 54] {
        let mut a = [0u8; 54];
        a[0..16].copy_from_slice(BLOCK_LABEL);
        a[16..32].copy_from_slice(&self.object.0);
        a[32..36].copy_from_slice(&self.part.to_le_bytes());
        a[36..38].copy_from_slice(&self.index.to_le_bytes());
        a[38..46].copy_from_slice(&self.block.to_le_bytes());
        a[46..48].copy_from_slice(&self.geometry.data_shards.to_le_bytes());
        a[48..50].copy_from_slice(&self.geometry.parity_shards.to_le_bytes());
        a[50..54].copy_from_slice(&self.geometry.block_size.to_le_bytes());
        a
    }
}

/// AES-256-GCM-SIV keyed with one object's data key: seals and opens shard
/// blocks at their [`BlockPosition`].
pub struct BlockCipher(Implementation);

enum Implementation {
    /// Wide-vector implementation (VAES and VPCLMULQDQ, 512- or 256-bit).
    #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
    Wide(Box<vaes::VaesGcmSiv>),
    /// aws-lc, on every other CPU and every build without the x86 kernels.
    AwsLc(LessSafeKey),
}

/// An AES-256-GCM-SIV key. Every 32-byte key is valid for the algorithm.
fn cipher(key: &[u8; 32]) -> LessSafeKey {
    match UnboundKey::new(&AES_256_GCM_SIV, key) {
        Ok(key) => LessSafeKey::new(key),
        Err(_) => unreachable!("a 32-byte key is always valid for AES-256-GCM-SIV"),
    }
}

/// Encrypts `buf` in place and returns the tag.
fn seal_in_place(key: &LessSafeKey, nonce: Nonce, aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    // Only fails for plaintexts over 64 GiB, far above any block or secret.
    let tag = match key.seal_in_place_separate_tag(nonce, Aad::from(aad), buf) {
        Ok(tag) => tag,
        Err(_) => unreachable!("input larger than the AES-GCM-SIV limit"),
    };
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

impl BlockCipher {
    /// Which implementation runs: `"vaes"` or `"aws-lc"`.
    pub fn implementation(&self) -> &'static str {
        match self.0 {
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            Implementation::Wide(_) => "vaes",
            Implementation::AwsLc(_) => "aws-lc",
        }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal(&self, pos: &BlockPosition, buf: &mut [u8]) -> [u8; TAG_LEN] {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            Implementation::Wide(c) => c.seal(&pos.nonce(), &pos.aad(), buf),
            Implementation::AwsLc(c) => seal_in_place(
                c,
                Nonce::assume_unique_for_key(pos.nonce()),
                &pos.aad(),
                buf,
            ),
        }
    }

    /// Appends `plain` sealed at `pos` (`ciphertext | tag`) to `out`.
    pub fn seal_append(&self, pos: &BlockPosition, plain: &[u8], out: &mut Vec<u8>) {
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            Implementation::Wide(c) => c.seal_append(&pos.nonce(), &pos.aad(), plain, out),
            Implementation::AwsLc(_) => {
                let at = out.len();
                out.extend_from_slice(plain);
                let tag = self.seal(pos, &mut out[at..]);
                out.extend_from_slice(&tag);
            }
        }
    }

    /// Decrypts `buf` in place if `tag` authenticates it at `pos`.
    pub fn open(
        &self,
        pos: &BlockPosition,
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), AuthenticationFailed> {
        let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| AuthenticationFailed)?;
        match &self.0 {
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            Implementation::Wide(c) => c
                .open(&pos.nonce(), &pos.aad(), buf, tag)
                .then_some(())
                .ok_or(AuthenticationFailed),
            Implementation::AwsLc(c) => c
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(pos.nonce()),
                    Aad::from(pos.aad()),
                    tag,
                    buf,
                )
                .map(|_| ())
                .map_err(|_| AuthenticationFailed),
        }
    }
}

/// A block's tag did not match: it was altered, truncated or moved.
#[derive(Debug, thiserror::Error)]
#[error("block failed authentication")]
pub struct AuthenticationFailed;

fn aad_of(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `version | random nonce | ciphertext | tag`.
pub(crate) fn seal_random(key: &[u8; 32], aad: &[&[u8]], plain: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut out = Vec::with_capacity(plain.len() + SEALED_OVERHEAD);
    out.push(SEALED_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plain);
    let tag = seal_in_place(
        &cipher(key),
        Nonce::assume_unique_for_key(nonce),
        &aad_of(aad),
        &mut out[1 + NONCE_LEN..],
    );
    out.extend_from_slice(&tag);
    out
}

/// Opens a blob made by [`seal_random`].
pub(crate) fn open_random(
    key: &[u8; 32],
    aad: &[&[u8]],
    sealed: &[u8],
) -> Result<Vec<u8>, StorageError> {
    if sealed.len() < SEALED_OVERHEAD || sealed[0] != SEALED_VERSION {
        return Err(StorageError::Crypto("sealed blob is malformed"));
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
        .map_err(|_| StorageError::Crypto("sealed blob is malformed"))?;
    let (body, tag) = sealed[1 + NONCE_LEN..].split_at(sealed.len() - SEALED_OVERHEAD);
    let mut plain = body.to_vec();
    cipher(key)
        .open_in_place_separate_tag(nonce, Aad::from(aad_of(aad)), tag, &mut plain)
        .map_err(|_| StorageError::Crypto("sealed blob failed authentication"))?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_the_object() {
        let master = MasterKey::generate();
        let key = DataKey::generate();
        let a = ObjectId::random();
        let wrapped = master.wrap(&key, a);
        assert_eq!(master.unwrap(&wrapped, a).unwrap().0, key.0);
        assert!(master.unwrap(&wrapped, ObjectId::random()).is_err());
        assert!(MasterKey::generate().unwrap(&wrapped, a).is_err());
        assert!(master.unwrap(&wrapped[..wrapped.len() - 1], a).is_err());
    }

    #[test]
    fn secrets_bind_their_context() {
        let master = MasterKey::from_bytes(&[7; 32]).unwrap();
        let sealed = master.seal_secret(b"key:AKIA", b"s3cret");
        assert_eq!(master.open_secret(b"key:AKIA", &sealed).unwrap(), b"s3cret");
        assert!(master.open_secret(b"key:OTHER", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[5] ^= 1;
        assert!(master.open_secret(b"key:AKIA", &flipped).is_err());
        assert!(MasterKey::from_bytes(&[1; 31]).is_err());
        assert_eq!(
            MasterKey::from_bytes(&master.to_bytes()).unwrap().0,
            [7; 32]
        );
    }

    #[test]
    fn block_positions_are_bound() {
        let key = DataKey::generate();
        let cipher = key.block_cipher();
        let pos = BlockPosition {
            object: ObjectId([1; 16]),
            part: 1,
            index: 2,
            block: 3,
            geometry: Geometry::default(),
        };
        let mut buf = b"hello block".to_vec();
        let tag = cipher.seal(&pos, &mut buf);
        let moved = BlockPosition { block: 4, ..pos };
        assert!(cipher.open(&moved, &mut buf.clone(), &tag).is_err());
        cipher.open(&pos, &mut buf, &tag).unwrap();
        assert_eq!(buf, b"hello block");
    }

    #[test]
    fn both_implementations_seal_the_same_bytes() {
        let key = DataKey::generate();
        let wide = key.block_cipher();
        let portable = BlockCipher(Implementation::AwsLc(cipher(key.bytes())));
        let pos = BlockPosition {
            object: ObjectId::random(),
            part: 3,
            index: 1,
            block: 9,
            geometry: Geometry::default(),
        };
        for len in [0, 1, 15, 16, 255, 256, 257, 4097, 65_536 + 48] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let (mut a, mut b) = (plain.clone(), plain.clone());
            let tag = wide.seal(&pos, &mut a);
            assert_eq!(tag, portable.seal(&pos, &mut b), "length {len}");
            assert_eq!(a, b, "length {len}");
            let (mut c, mut d) = (vec![1u8], vec![1u8]);
            wide.seal_append(&pos, &plain, &mut c);
            portable.seal_append(&pos, &plain, &mut d);
            assert!(
                c == d && c[1..] == [&a[..], &tag[..]].concat()[..],
                "length {len}"
            );
            portable.open(&pos, &mut a, &tag).unwrap();
            wide.open(&pos, &mut b, &tag).unwrap();
            assert!(a == plain && b == plain);
        }
    }

    #[test]
    fn blocks_use_the_wide_cipher_where_it_is_compiled_and_the_cpu_runs_it() {
        let chosen = DataKey::generate().block_cipher().implementation();
        #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
        let expected = if vaes::VaesGcmSiv::new(&[7; 32]).is_some() {
            "vaes"
        } else {
            "aws-lc"
        };
        #[cfg(not(all(target_arch = "x86_64", not(tessera_portable))))]
        let expected = "aws-lc";
        assert_eq!(chosen, expected);
    }

    #[test]
    fn rfc_8452_aes_256_gcm_siv_vectors() {
        // RFC 8452 appendix C.2: the cipher is standard AES-256-GCM-SIV, so
        // shard blocks stay readable whichever implementation sealed them.
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut nonce = [0u8; NONCE_LEN];
        nonce[0] = 3;
        let seal = |plain: &[u8]| {
            let mut buf = plain.to_vec();
            let tag = seal_in_place(
                &cipher(&key),
                Nonce::assume_unique_for_key(nonce),
                b"",
                &mut buf,
            );
            buf.extend_from_slice(&tag);
            hex::encode(buf)
        };
        assert_eq!(seal(b""), "07f5f4169bbf55a8400cd47ea6fd400f");
        assert_eq!(
            seal(&[1, 0, 0, 0, 0, 0, 0, 0]),
            "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28"
        );
    }
}
