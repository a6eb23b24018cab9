//! AES-256-GCM-SIV (RFC 8452) on 512-bit vectors: VAES for the AES rounds and
//! VPCLMULQDQ for POLYVAL, four 16-byte blocks per instruction.
//!
//! The shard cipher is the writer's and reader's largest per-byte cost;
//! aws-lc's GCM-SIV uses 128-bit AES-NI, about a third of what a core with
//! these extensions does. The output is the standard cipher's, byte for byte
//! (the tests compare it with aws-lc over random keys, nonces, associated
//! data and lengths), so shards sealed by either implementation open with
//! the other. [`VaesGcmSiv::new`] returns `None` on CPUs without the
//! extensions and callers fall back to aws-lc.
//!
//! POLYVAL works on 256-byte chunks: each of the sixteen blocks is multiplied
//! by its own power of H (`H^16 … H^1`), the sixteen unreduced products are
//! summed, and the sum is reduced once.

// Intrinsics that read or write memory, and calls into functions compiled for
// CPU features that are checked at run time, need `unsafe`.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use zeroize::Zeroize;

use super::TAG_LEN;

/// Bytes hashed or encrypted per step of the wide loops.
const CHUNK: usize = 256;

/// AES-256 round keys.
type RoundKeys = [__m128i; 15];

/// AES-256-GCM-SIV under one key-generating key, for CPUs with AVX-512,
/// VAES and VPCLMULQDQ.
pub(crate) struct VaesGcmSiv {
    /// Round keys of the key-generating key, as bytes so they can be wiped.
    round_keys: [[u8; 16]; 15],
}

impl Drop for VaesGcmSiv {
    fn drop(&mut self) {
        self.round_keys.zeroize();
    }
}

/// Whether this CPU runs the wide implementation.
fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("vaes")
        && is_x86_feature_detected!("vpclmulqdq")
        && is_x86_feature_detected!("aes")
        && is_x86_feature_detected!("pclmulqdq")
}

impl VaesGcmSiv {
    /// The cipher for `key`, or `None` if this CPU lacks the extensions.
    pub fn new(key: &[u8; 32]) -> Option<Self> {
        if !supported() {
            return None;
        }
        // SAFETY: the CPU features were checked above.
        let keys = unsafe { expand_key(key) };
        let mut round_keys = [[0u8; 16]; 15];
        for (out, k) in round_keys.iter_mut().zip(keys) {
            // SAFETY: `out` is 16 writable bytes.
            unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), k) };
        }
        Some(VaesGcmSiv { round_keys })
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let at = buf.as_mut_ptr();
        // SAFETY: a VaesGcmSiv only exists where the features were detected;
        // source and destination are the same `buf.len()` bytes.
        unsafe { seal(&self.round_keys, nonce, aad, at, at, buf.len()) }
    }

    /// Appends `plain` sealed (`ciphertext | tag`) to `out`, encrypting
    /// straight from `plain` into `out`.
    pub fn seal_append(&self, nonce: &[u8; 12], aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        out.reserve(plain.len() + TAG_LEN);
        // SAFETY: the features were detected (see `seal`); the spare
        // capacity holds `plain.len()` bytes and cannot overlap `plain`.
        unsafe {
            let tag = seal(
                &self.round_keys,
                nonce,
                aad,
                plain.as_ptr(),
                out.spare_capacity_mut().as_mut_ptr().cast(),
                plain.len(),
            );
            out.set_len(out.len() + plain.len());
            out.extend_from_slice(&tag);
        }
    }

    /// Decrypts `buf` in place if `tag` authenticates it; on failure `buf`
    /// is zeroed.
    pub fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        // SAFETY: as in `seal`.
        let ok = unsafe { open(&self.round_keys, nonce, aad, buf, tag) };
        if !ok {
            buf.fill(0);
        }
        ok
    }
}

/// The per-message keys of RFC 8452 section 4, from the key-generating key.
struct MessageKeys {
    /// POLYVAL key H and its powers `H^1 … H^16` (index `i` holds `H^(i+1)`).
    powers: [__m128i; 16],
    /// Round keys of the message-encryption key.
    round_keys: RoundKeys,
}

/// Seals the `len` bytes at `src` into `dst` and returns the tag.
///
/// # Safety
/// The CPU has the features this is compiled for; `src` is readable and
/// `dst` writable for `len` bytes, either the same pointer (in place) or
/// not overlapping.
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,avx2")]
unsafe fn seal(
    kgk: &[[u8; 16]; 15],
    nonce: &[u8; 12],
    aad: &[u8],
    src: *const u8,
    dst: *mut u8,
    len: usize,
) -> [u8; TAG_LEN] {
    let keys = message_keys(kgk, nonce);
    // SAFETY: `src` is readable for `len` bytes; the slice is not used once
    // counter mode starts writing (which may be to the same bytes).
    let tag = tag_of(&keys, nonce, aad, unsafe {
        std::slice::from_raw_parts(src, len)
    });
    // SAFETY: as the caller promises.
    unsafe { ctr_to(&keys.round_keys, tag, src, dst, len) };
    let mut out = [0u8; TAG_LEN];
    // SAFETY: `out` is 16 writable bytes.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), tag) };
    out
}

#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,avx2")]
unsafe fn open(
    kgk: &[[u8; 16]; 15],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> bool {
    let keys = message_keys(kgk, nonce);
    // SAFETY: `tag` is 16 readable bytes.
    let expected = unsafe { _mm_loadu_si128(tag.as_ptr().cast()) };
    ctr(&keys.round_keys, expected, buf);
    let actual = tag_of(&keys, nonce, aad, buf);
    // Constant time: every byte is compared.
    let diff = _mm_xor_si128(actual, expected);
    _mm_testz_si128(diff, diff) == 1
}

/// Derives the message keys for `nonce` (RFC 8452 section 4).
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,avx2")]
fn message_keys(kgk: &[[u8; 16]; 15], nonce: &[u8; 12]) -> MessageKeys {
    let kgk: RoundKeys = std::array::from_fn(|i| {
        // SAFETY: each round key is 16 readable bytes.
        unsafe { _mm_loadu_si128(kgk[i].as_ptr().cast()) }
    });
    let mut halves = [0u64; 6];
    for (i, half) in halves.iter_mut().enumerate() {
        let mut input = [0u8; 16];
        input[..4].copy_from_slice(&(i as u32).to_le_bytes());
        input[4..].copy_from_slice(nonce);
        // SAFETY: `input` is 16 readable bytes.
        let block = encrypt_block(&kgk, unsafe { _mm_loadu_si128(input.as_ptr().cast()) });
        *half = _mm_cvtsi128_si64(block) as u64;
    }
    let h = _mm_set_epi64x(halves[1] as i64, halves[0] as i64);
    let mut key = [0u8; 32];
    for (chunk, half) in key.chunks_exact_mut(8).zip(&halves[2..]) {
        chunk.copy_from_slice(&half.to_le_bytes());
    }
    // SAFETY: the features this function is compiled for include `expand_key`'s.
    let round_keys = unsafe { expand_key(&key) };
    key.zeroize();
    let mut powers = [h; 16];
    for i in 1..16 {
        powers[i] = dot(powers[i - 1], h);
    }
    MessageKeys { powers, round_keys }
}

/// The tag of `plain` under `aad` (RFC 8452 section 4): POLYVAL over the
/// padded associated data, the padded plaintext and their bit lengths, masked
/// with the nonce and encrypted.
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,avx2")]
fn tag_of(keys: &MessageKeys, nonce: &[u8; 12], aad: &[u8], plain: &[u8]) -> __m128i {
    let zero = _mm_setzero_si128();
    let s = polyval(&keys.powers, zero, aad);
    let s = polyval(&keys.powers, s, plain);
    let lengths = _mm_set_epi64x(
        (plain.len() as u64 * 8) as i64,
        (aad.len() as u64 * 8) as i64,
    );
    let s = dot(_mm_xor_si128(s, lengths), keys.powers[0]);
    let mut nonce_block = [0u8; 16];
    nonce_block[..12].copy_from_slice(nonce);
    // SAFETY: `nonce_block` is 16 readable bytes.
    let s = _mm_xor_si128(s, unsafe { _mm_loadu_si128(nonce_block.as_ptr().cast()) });
    // Clear the top bit of the last byte.
    let s = _mm_and_si128(s, _mm_set_epi64x(0x7fff_ffff_ffff_ffff, -1));
    encrypt_block(&keys.round_keys, s)
}

/// Folds `data`, zero-padded to whole blocks, into the POLYVAL state `s`.
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,avx2")]
fn polyval(powers: &[__m128i; 16], mut s: __m128i, data: &[u8]) -> __m128i {
    // H^16 … H^13 | H^12 … H^9 | H^8 … H^5 | H^4 … H^1, lane 0 first.
    let wide: [__m512i; 4] = std::array::from_fn(|v| {
        let p = |i: usize| powers[15 - 4 * v - i];
        let lo = _mm256_set_m128i(p(1), p(0));
        let hi = _mm256_set_m128i(p(3), p(2));
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
    });
    let mut chunks = data.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        let mut lo = _mm512_setzero_si512();
        let mut hi = _mm512_setzero_si512();
        let mut mid = _mm512_setzero_si512();
        for (v, h) in wide.iter().enumerate() {
            // SAFETY: the chunk holds 256 bytes, so 64 at offset 64·v.
            let mut x = unsafe { _mm512_loadu_si512(chunk.as_ptr().add(64 * v).cast()) };
            if v == 0 {
                x = _mm512_xor_si512(x, _mm512_zextsi128_si512(s));
            }
            lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128::<0x00>(x, *h));
            hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128::<0x11>(x, *h));
            mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128::<0x01>(x, *h));
            mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128::<0x10>(x, *h));
        }
        s = reduce(fold_lanes(lo), fold_lanes(hi), fold_lanes(mid));
    }
    let mut blocks = chunks.remainder().chunks_exact(16);
    for block in &mut blocks {
        // SAFETY: the block is 16 readable bytes.
        let x = unsafe { _mm_loadu_si128(block.as_ptr().cast()) };
        s = dot(_mm_xor_si128(s, x), powers[0]);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut padded = [0u8; 16];
        padded[..tail.len()].copy_from_slice(tail);
        // SAFETY: `padded` is 16 readable bytes.
        let x = unsafe { _mm_loadu_si128(padded.as_ptr().cast()) };
        s = dot(_mm_xor_si128(s, x), powers[0]);
    }
    s
}

/// XORs the four 128-bit lanes of `v`.
#[target_feature(enable = "avx512f,avx2")]
fn fold_lanes(v: __m512i) -> __m128i {
    let x = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
    _mm_xor_si128(_mm256_castsi256_si128(x), _mm256_extracti128_si256::<1>(x))
}

/// POLYVAL's multiplication: `a · b · x^-128` in GF(2^128).
#[target_feature(enable = "pclmulqdq,sse4.1")]
fn dot(a: __m128i, b: __m128i) -> __m128i {
    let lo = _mm_clmulepi64_si128::<0x00>(a, b);
    let hi = _mm_clmulepi64_si128::<0x11>(a, b);
    let mid = _mm_xor_si128(
        _mm_clmulepi64_si128::<0x01>(a, b),
        _mm_clmulepi64_si128::<0x10>(a, b),
    );
    reduce(lo, hi, mid)
}

/// Reduces the 256-bit carry-less product `hi · x^128 + mid · x^64 + lo`
/// to `product · x^-128` modulo POLYVAL's polynomial
/// `x^128 + x^127 + x^126 + x^121 + 1` (two Montgomery folds of 64 bits).
#[target_feature(enable = "pclmulqdq,sse4.1")]
fn reduce(lo: __m128i, hi: __m128i, mid: __m128i) -> __m128i {
    let lo = _mm_xor_si128(lo, _mm_slli_si128::<8>(mid));
    let hi = _mm_xor_si128(hi, _mm_srli_si128::<8>(mid));
    let poly = _mm_set_epi64x(0xc200_0000_0000_0000_u64 as i64, 1);
    let fold = |x: __m128i| {
        _mm_xor_si128(
            _mm_shuffle_epi32::<0x4e>(x),
            _mm_clmulepi64_si128::<0x10>(x, poly),
        )
    };
    _mm_xor_si128(fold(fold(lo)), hi)
}

/// Encrypts (or decrypts) `buf` in place in counter mode.
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,avx2")]
fn ctr(keys: &RoundKeys, tag: __m128i, buf: &mut [u8]) {
    let at = buf.as_mut_ptr();
    // SAFETY: source and destination are the same `buf.len()` bytes.
    unsafe { ctr_to(keys, tag, at, at, buf.len()) }
}

/// Encrypts (or decrypts) `len` bytes from `src` to `dst` in counter mode:
/// the counter block is the tag with its top bit set, its first 32 bits a
/// little-endian counter that wraps.
///
/// # Safety
/// `src` must be readable and `dst` writable for `len` bytes; they are
/// either the same pointer or do not overlap.
#[target_feature(enable = "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,avx2")]
unsafe fn ctr_to(keys: &RoundKeys, tag: __m128i, src: *const u8, dst: *mut u8, len: usize) {
    let first = _mm_or_si128(tag, _mm_set_epi64x(i64::MIN, 0));
    let wide: [__m512i; 15] = std::array::from_fn(|i| _mm512_broadcast_i32x4(keys[i]));
    let lane_offsets = _mm512_set_epi32(0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0);
    let four = _mm512_set_epi32(0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4);
    let mut counters = _mm512_add_epi32(_mm512_broadcast_i32x4(first), lane_offsets);
    let whole = len / CHUNK * CHUNK;
    for offset in (0..whole).step_by(CHUNK) {
        let mut blocks = [counters; 4];
        for block in &mut blocks[1..] {
            counters = _mm512_add_epi32(counters, four);
            *block = counters;
        }
        counters = _mm512_add_epi32(counters, four);
        for block in &mut blocks {
            *block = _mm512_xor_si512(*block, wide[0]);
        }
        for key in &wide[1..14] {
            for block in &mut blocks {
                *block = _mm512_aesenc_epi128(*block, *key);
            }
        }
        for (v, block) in blocks.iter().enumerate() {
            let stream = _mm512_aesenclast_epi128(*block, wide[14]);
            // SAFETY: offset + 256 <= len, so 64 bytes at offset + 64·v are in bounds.
            unsafe {
                let from = src.add(offset + 64 * v).cast::<__m512i>();
                let to = dst.add(offset + 64 * v).cast::<__m512i>();
                _mm512_storeu_si512(to, _mm512_xor_si512(_mm512_loadu_si512(from), stream));
            }
        }
    }
    // The rest, a block at a time from lane 0 of the counters.
    let mut counter = _mm512_castsi512_si128(counters);
    let one = _mm_set_epi32(0, 0, 0, 1);
    for offset in (whole..len).step_by(16) {
        let n = (len - offset).min(16);
        let mut block = [0u8; 16];
        // SAFETY: offset + n <= len; `block` is 16 bytes and `dst` does not
        // partially overlap `src`.
        unsafe {
            std::ptr::copy_nonoverlapping(src.add(offset), block.as_mut_ptr(), n);
            let sealed = _mm_xor_si128(
                _mm_loadu_si128(block.as_ptr().cast()),
                encrypt_block(keys, counter),
            );
            _mm_storeu_si128(block.as_mut_ptr().cast(), sealed);
            std::ptr::copy_nonoverlapping(block.as_ptr(), dst.add(offset), n);
        }
        counter = _mm_add_epi32(counter, one);
    }
}

/// AES-256 of one block.
#[target_feature(enable = "aes")]
fn encrypt_block(keys: &RoundKeys, block: __m128i) -> __m128i {
    let mut b = _mm_xor_si128(block, keys[0]);
    for key in &keys[1..14] {
        b = _mm_aesenc_si128(b, *key);
    }
    _mm_aesenclast_si128(b, keys[14])
}

/// The AES-256 key schedule (FIPS 197 section 5.2) with AESKEYGENASSIST.
#[target_feature(enable = "aes,sse4.1")]
unsafe fn expand_key(key: &[u8; 32]) -> RoundKeys {
    /// `w ^ (w << 32) ^ (w << 64) ^ (w << 96)`: each word XORed with those before it.
    #[target_feature(enable = "sse2")]
    fn spread(w: __m128i) -> __m128i {
        let w = _mm_xor_si128(w, _mm_slli_si128::<4>(w));
        let w = _mm_xor_si128(w, _mm_slli_si128::<4>(w));
        _mm_xor_si128(w, _mm_slli_si128::<4>(w))
    }
    // SAFETY: the key is 32 readable bytes.
    let (mut a, mut b) = unsafe {
        (
            _mm_loadu_si128(key.as_ptr().cast()),
            _mm_loadu_si128(key.as_ptr().add(16).cast()),
        )
    };
    let mut keys = [a; 15];
    keys[1] = b;
    // Round keys 2i and 2i + 1 from the pair before them; rcon doubles each time.
    macro_rules! rounds {
        ($i:expr, $rcon:expr) => {
            a = _mm_xor_si128(
                spread(a),
                _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>(b)),
            );
            keys[2 * $i] = a;
            b = _mm_xor_si128(
                spread(b),
                _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(a)),
            );
            keys[2 * $i + 1] = b;
        };
    }
    rounds!(1, 0x01);
    rounds!(2, 0x02);
    rounds!(3, 0x04);
    rounds!(4, 0x08);
    rounds!(5, 0x10);
    rounds!(6, 0x20);
    keys[14] = _mm_xor_si128(
        spread(a),
        _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<0x40>(b)),
    );
    keys
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::aead::{AES_256_GCM_SIV, Aad, LessSafeKey, Nonce, UnboundKey};
    use proptest::prelude::*;

    use super::*;

    fn reference(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plain: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let cipher = LessSafeKey::new(UnboundKey::new(&AES_256_GCM_SIV, key).unwrap());
        let mut buf = plain.to_vec();
        let tag = cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buf,
            )
            .unwrap();
        (buf, tag.as_ref().to_vec())
    }

    /// The cipher, or `None` (the test is skipped) on a CPU without the
    /// extensions: the aws-lc fallback is tested in `crypto.rs`.
    fn cipher(key: &[u8; 32]) -> Option<VaesGcmSiv> {
        let c = VaesGcmSiv::new(key);
        if c.is_none() {
            eprintln!("skipped: this CPU lacks AVX-512, VAES or VPCLMULQDQ");
        }
        c
    }

    #[test]
    fn rfc_8452_vectors() {
        // Appendix C.2, AES-256-GCM-SIV.
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut nonce = [0u8; 12];
        nonce[0] = 3;
        let Some(c) = cipher(&key) else { return };
        let seal = |aad: &[u8], plain: &[u8]| {
            let mut buf = plain.to_vec();
            let tag = c.seal(&nonce, aad, &mut buf);
            buf.extend_from_slice(&tag);
            hex::encode(buf)
        };
        assert_eq!(seal(b"", b""), "07f5f4169bbf55a8400cd47ea6fd400f");
        assert_eq!(
            seal(b"", &[1, 0, 0, 0, 0, 0, 0, 0]),
            "c2ef328e5c71c83b843122130f7364b761e0b97427e3df28"
        );
    }

    #[test]
    fn counter_wraps_at_32_bits() {
        // A tag whose counter word is six blocks short of wrapping: the wide
        // loop must agree with block-at-a-time counter mode across the wrap.
        if cipher(&[9; 32]).is_none() {
            return;
        }
        let keys = unsafe { expand_key(&[9; 32]) };
        let mut tag = [0x33u8; 16];
        tag[..4].copy_from_slice(&(u32::MAX - 5).to_le_bytes());
        let mut buf = vec![0u8; 2 * CHUNK + 40];
        unsafe { ctr(&keys, _mm_loadu_si128(tag.as_ptr().cast()), &mut buf) };
        for (j, block) in buf.chunks(16).enumerate() {
            let mut counter = tag;
            counter[15] |= 0x80;
            let word = (u32::MAX - 5).wrapping_add(j as u32);
            counter[..4].copy_from_slice(&word.to_le_bytes());
            let mut want = [0u8; 16];
            unsafe {
                let stream = encrypt_block(&keys, _mm_loadu_si128(counter.as_ptr().cast()));
                _mm_storeu_si128(want.as_mut_ptr().cast(), stream);
            }
            assert_eq!(block, &want[..block.len()], "block {j}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn matches_aws_lc(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..100),
            plain in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let Some(c) = cipher(&key) else { return Ok(()) };
            let mut buf = plain.clone();
            let tag = c.seal(&nonce, &aad, &mut buf);
            let (want, want_tag) = reference(&key, &nonce, &aad, &plain);
            prop_assert_eq!(&buf, &want);
            prop_assert_eq!(tag.to_vec(), want_tag.clone());
            let mut appended = vec![9u8; 3];
            c.seal_append(&nonce, &aad, &plain, &mut appended);
            prop_assert_eq!(&appended[3..], &[&want[..], &want_tag[..]].concat()[..]);
            let mut opened = buf.clone();
            prop_assert!(c.open(&nonce, &aad, &mut opened, &tag));
            prop_assert_eq!(&opened, &plain);
        }

        #[test]
        fn tampering_fails(
            plain in proptest::collection::vec(any::<u8>(), 1..2000),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let Some(c) = cipher(&[3; 32]) else { return Ok(()) };
            let nonce = [4; 12];
            let mut buf = plain.clone();
            let tag = c.seal(&nonce, b"aad", &mut buf);
            buf[flip.index(plain.len())] ^= 1 << bit;
            prop_assert!(!c.open(&nonce, b"aad", &mut buf, &tag));
            prop_assert!(buf.iter().all(|&b| b == 0));
            let mut other = plain.clone();
            let tag = c.seal(&nonce, b"aad", &mut other);
            prop_assert!(!c.open(&nonce, b"aae", &mut other, &tag));
        }
    }

    #[test]
    fn large_block_matches_aws_lc() {
        let plain: Vec<u8> = (0..(1 << 20) + 37)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let (key, nonce) = ([0x42; 32], [0x17; 12]);
        let Some(c) = cipher(&key) else { return };
        let mut buf = plain.clone();
        let tag = c.seal(&nonce, b"tessera", &mut buf);
        let (want, want_tag) = reference(&key, &nonce, b"tessera", &plain);
        assert!(buf == want && tag.to_vec() == want_tag);
    }
}
