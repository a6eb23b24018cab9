//! AES-256-GCM-SIV (RFC 8452) on wide vectors: VAES for the AES rounds and
//! VPCLMULQDQ for POLYVAL, on 512-bit vectors where the CPU has AVX-512
//! (four 16-byte blocks per instruction) and on 256-bit ones where it has
//! only AVX2 (two: Zen 3, Ice Lake and Alder Lake clients).
//!
//! The shard cipher is the writer's and reader's largest per-byte cost;
//! aws-lc's GCM-SIV uses 128-bit AES-NI and PCLMULQDQ, a third of what a
//! core with 512-bit extensions does and about half of what one with the
//! 256-bit ones does. The output is the standard cipher's, byte for byte
//! (the tests compare every width this CPU has with aws-lc over random keys,
//! nonces, associated data and lengths), so shards sealed by any
//! implementation open with the others. [`VaesGcmSiv::new`] returns `None`
//! on CPUs without the extensions and callers fall back to aws-lc.
//!
//! Both widths work on 256-byte chunks. POLYVAL multiplies each of a chunk's
//! sixteen blocks by its own power of H (`H^16 … H^1`), sums the sixteen
//! unreduced products and reduces the sum once; counter mode encrypts the
//! chunk's sixteen counter blocks side by side. What is left after the last
//! whole chunk goes a block at a time, the same for both widths.

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

/// AES-256-GCM-SIV under one key-generating key, for CPUs with VAES and
/// VPCLMULQDQ.
pub(crate) struct VaesGcmSiv {
    /// Round keys of the key-generating key, as bytes so they can be wiped.
    round_keys: [[u8; 16]; 15],
    /// The vectors the bulk loops run on.
    width: Width,
}

impl Drop for VaesGcmSiv {
    fn drop(&mut self) {
        self.round_keys.zeroize();
    }
}

/// The vector width of the bulk loops, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Width {
    /// 256-bit vectors: AVX2 with VAES and VPCLMULQDQ.
    Ymm,
    /// 512-bit vectors: AVX-512 with VAES and VPCLMULQDQ.
    Zmm,
}

impl Width {
    /// The widest vectors this CPU runs the bulk loops on (it then runs
    /// every narrower width too), or `None` without the extensions.
    fn widest() -> Option<Width> {
        let ymm = is_x86_feature_detected!("aes")
            && is_x86_feature_detected!("pclmulqdq")
            && is_x86_feature_detected!("sse4.1")
            && is_x86_feature_detected!("vaes")
            && is_x86_feature_detected!("vpclmulqdq")
            && is_x86_feature_detected!("avx2");
        let zmm =
            ymm && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw");
        if zmm {
            Some(Width::Zmm)
        } else {
            ymm.then_some(Width::Ymm)
        }
    }

    /// Every width this CPU runs, narrowest first.
    #[cfg(test)]
    fn supported() -> Vec<Width> {
        [Width::Ymm, Width::Zmm]
            .into_iter()
            .filter(|&w| Width::widest().is_some_and(|top| w <= top))
            .collect()
    }
}

impl VaesGcmSiv {
    /// The cipher for `key` on the widest vectors this CPU has, or `None` if
    /// it lacks the extensions.
    pub fn new(key: &[u8; 32]) -> Option<Self> {
        Width::widest().map(|width| Self::with_width(key, width))
    }

    /// The cipher for `key` on `width`, which this CPU runs.
    fn with_width(key: &[u8; 32], width: Width) -> Self {
        // SAFETY: every width needs AES-NI and SSE4.1, which were detected.
        let keys = unsafe { expand_key(key) };
        let mut round_keys = [[0u8; 16]; 15];
        for (out, k) in round_keys.iter_mut().zip(keys) {
            // SAFETY: `out` is 16 writable bytes.
            unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), k) };
        }
        VaesGcmSiv { round_keys, width }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let at = buf.as_mut_ptr();
        // SAFETY: source and destination are the same `buf.len()` bytes.
        unsafe { self.seal_to(nonce, aad, at, at, buf.len()) }
    }

    /// Appends `plain` sealed (`ciphertext | tag`) to `out`, encrypting
    /// straight from `plain` into `out`.
    pub fn seal_append(&self, nonce: &[u8; 12], aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        out.reserve(plain.len() + TAG_LEN);
        // SAFETY: the spare capacity holds `plain.len()` bytes and cannot
        // overlap `plain`.
        unsafe {
            let tag = self.seal_to(
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

    /// Seals with this cipher's width.
    ///
    /// # Safety
    /// As [`seal`].
    unsafe fn seal_to(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        src: *const u8,
        dst: *mut u8,
        len: usize,
    ) -> [u8; TAG_LEN] {
        // SAFETY: a cipher is only made with a width the CPU runs; the
        // pointers are the caller's promise.
        unsafe {
            match self.width {
                Width::Ymm => seal::<Ymm>(&self.round_keys, nonce, aad, src, dst, len),
                Width::Zmm => seal::<Zmm>(&self.round_keys, nonce, aad, src, dst, len),
            }
        }
    }

    /// Decrypts `buf` in place if `tag` authenticates it; on failure `buf`
    /// is zeroed.
    pub fn open(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        // SAFETY: a cipher is only made with a width the CPU runs.
        let ok = unsafe {
            match self.width {
                Width::Ymm => open::<Ymm>(&self.round_keys, nonce, aad, buf, tag),
                Width::Zmm => open::<Zmm>(&self.round_keys, nonce, aad, buf, tag),
            }
        };
        if !ok {
            buf.fill(0);
        }
        ok
    }
}

/// The bulk loops on one vector width.
trait Bulk {
    /// Folds `data`, whole [`CHUNK`]s, into the POLYVAL state `s`.
    ///
    /// # Safety
    /// The CPU has the width's features.
    unsafe fn polyval(powers: &[__m128i; 16], s: __m128i, data: &[u8]) -> __m128i;

    /// Encrypts `len` bytes, whole [`CHUNK`]s, from `src` to `dst` in
    /// counter mode from counter block `first`; returns the next counter
    /// block.
    ///
    /// # Safety
    /// The CPU has the width's features; as [`ctr_to`] for the pointers.
    unsafe fn ctr(
        keys: &RoundKeys,
        first: __m128i,
        src: *const u8,
        dst: *mut u8,
        len: usize,
    ) -> __m128i;
}

/// 256-bit vectors.
struct Ymm;

/// 512-bit vectors.
struct Zmm;

/// Implements [`Bulk`] for `$width`, whose vectors of type `$v` hold `$lanes`
/// 16-byte blocks, compiled for `$features`. The loops are the same at every
/// width; only the intrinsics' names differ, so they are written once here
/// and each width names its own (a generic over a trait of vector operations
/// would leave their inlining into the `target_feature` loops to chance).
macro_rules! bulk {
    (
        $width:ident, $v:ty, lanes: $lanes:literal, features: $features:literal,
        load: $load:ident, store: $store:ident, zero: $zero:ident, xor: $xor:ident,
        widen: $widen:ident, low: $low:ident, broadcast: $broadcast:ident,
        add: $add:ident, clmul: $clmul:ident, aesenc: $aesenc:ident,
        aesenclast: $aesenclast:ident, fold: $fold:ident
    ) => {
        impl Bulk for $width {
            #[target_feature(enable = $features)]
            unsafe fn polyval(powers: &[__m128i; 16], mut s: __m128i, data: &[u8]) -> __m128i {
                const VECTORS: usize = CHUNK / (16 * $lanes);
                // Block j of a chunk is multiplied by H^(16-j): the
                // vectors hold H^16 … H^1, lane 0 first.
                let wide: [$v; VECTORS] = std::array::from_fn(|v| {
                    let blocks: [__m128i; $lanes] =
                        std::array::from_fn(|l| powers[15 - $lanes * v - l]);
                    // SAFETY: `blocks` is one vector's readable bytes.
                    unsafe { $load(blocks.as_ptr().cast()) }
                });
                for chunk in data.chunks_exact(CHUNK) {
                    let mut lo = $zero();
                    let mut hi = $zero();
                    let mut mid = $zero();
                    for (v, h) in wide.iter().enumerate() {
                        // SAFETY: the chunk holds 256 bytes, so a vector's
                        // worth at the v-th vector's offset.
                        let mut x = unsafe { $load(chunk.as_ptr().add(16 * $lanes * v).cast()) };
                        if v == 0 {
                            x = $xor(x, $widen(s));
                        }
                        lo = $xor(lo, $clmul::<0x00>(x, *h));
                        hi = $xor(hi, $clmul::<0x11>(x, *h));
                        mid = $xor(mid, $clmul::<0x01>(x, *h));
                        mid = $xor(mid, $clmul::<0x10>(x, *h));
                    }
                    s = reduce($fold(lo), $fold(hi), $fold(mid));
                }
                s
            }

            #[target_feature(enable = $features)]
            unsafe fn ctr(
                keys: &RoundKeys,
                first: __m128i,
                src: *const u8,
                dst: *mut u8,
                len: usize,
            ) -> __m128i {
                const VECTORS: usize = CHUNK / (16 * $lanes);
                let wide: [$v; 15] = std::array::from_fn(|i| $broadcast(keys[i]));
                // Lane l counts from `first + l`, every lane steps by the
                // number of lanes.
                let offsets: [__m128i; $lanes] =
                    std::array::from_fn(|l| _mm_set_epi32(0, 0, 0, l as i32));
                // SAFETY: `offsets` is one vector's readable bytes.
                let offsets: $v = unsafe { $load(offsets.as_ptr().cast()) };
                let step = $broadcast(_mm_set_epi32(0, 0, 0, $lanes));
                let mut counters = $add($broadcast(first), offsets);
                for offset in (0..len).step_by(CHUNK) {
                    let mut blocks = [counters; VECTORS];
                    for block in &mut blocks[1..] {
                        counters = $add(counters, step);
                        *block = counters;
                    }
                    counters = $add(counters, step);
                    for block in &mut blocks {
                        *block = $xor(*block, wide[0]);
                    }
                    for key in &wide[1..14] {
                        for block in &mut blocks {
                            *block = $aesenc(*block, *key);
                        }
                    }
                    for (v, block) in blocks.iter().enumerate() {
                        let stream = $aesenclast(*block, wide[14]);
                        // SAFETY: offset + 256 <= len, so the v-th
                        // vector's bytes of this chunk are in bounds.
                        unsafe {
                            let at = offset + 16 * $lanes * v;
                            $store(dst.add(at).cast(), $xor($load(src.add(at).cast()), stream));
                        }
                    }
                }
                $low(counters)
            }
        }
    };
}

bulk!(
    Ymm, __m256i, lanes: 2, features: "avx2,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1",
    load: _mm256_loadu_si256, store: _mm256_storeu_si256, zero: _mm256_setzero_si256,
    xor: _mm256_xor_si256, widen: _mm256_zextsi128_si256, low: _mm256_castsi256_si128,
    broadcast: _mm256_broadcastsi128_si256, add: _mm256_add_epi32,
    clmul: _mm256_clmulepi64_epi128, aesenc: _mm256_aesenc_epi128,
    aesenclast: _mm256_aesenclast_epi128, fold: fold_ymm
);

bulk!(
    Zmm, __m512i, lanes: 4,
    features: "avx512f,avx512bw,vaes,vpclmulqdq,aes,pclmulqdq,sse4.1,avx2",
    load: _mm512_loadu_si512, store: _mm512_storeu_si512, zero: _mm512_setzero_si512,
    xor: _mm512_xor_si512, widen: _mm512_zextsi128_si512, low: _mm512_castsi512_si128,
    broadcast: _mm512_broadcast_i32x4, add: _mm512_add_epi32,
    clmul: _mm512_clmulepi64_epi128, aesenc: _mm512_aesenc_epi128,
    aesenclast: _mm512_aesenclast_epi128, fold: fold_zmm
);

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
/// The CPU has `W`'s features; `src` is readable and `dst` writable for
/// `len` bytes, either the same pointer (in place) or not overlapping.
#[target_feature(enable = "aes,pclmulqdq,sse4.1")]
unsafe fn seal<W: Bulk>(
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
    let tag = unsafe { tag_of::<W>(&keys, nonce, aad, std::slice::from_raw_parts(src, len)) };
    // SAFETY: as the caller promises.
    unsafe { ctr_to::<W>(&keys.round_keys, tag, src, dst, len) };
    let mut out = [0u8; TAG_LEN];
    // SAFETY: `out` is 16 writable bytes.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), tag) };
    out
}

/// Decrypts `buf` in place and says whether `tag` authenticates it.
///
/// # Safety
/// The CPU has `W`'s features.
#[target_feature(enable = "aes,pclmulqdq,sse4.1")]
unsafe fn open<W: Bulk>(
    kgk: &[[u8; 16]; 15],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> bool {
    let keys = message_keys(kgk, nonce);
    // SAFETY: `tag` is 16 readable bytes.
    let expected = unsafe { _mm_loadu_si128(tag.as_ptr().cast()) };
    // SAFETY: as the caller promises.
    unsafe { ctr::<W>(&keys.round_keys, expected, buf) };
    // SAFETY: as the caller promises.
    let actual = unsafe { tag_of::<W>(&keys, nonce, aad, buf) };
    // Constant time: every byte is compared.
    let diff = _mm_xor_si128(actual, expected);
    _mm_testz_si128(diff, diff) == 1
}

/// Derives the message keys for `nonce` (RFC 8452 section 4).
#[target_feature(enable = "aes,pclmulqdq,sse4.1")]
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
///
/// # Safety
/// The CPU has `W`'s features.
#[target_feature(enable = "aes,pclmulqdq,sse4.1")]
unsafe fn tag_of<W: Bulk>(
    keys: &MessageKeys,
    nonce: &[u8; 12],
    aad: &[u8],
    plain: &[u8],
) -> __m128i {
    let zero = _mm_setzero_si128();
    // SAFETY: as the caller promises.
    let s = unsafe { polyval::<W>(&keys.powers, zero, aad) };
    // SAFETY: as the caller promises.
    let s = unsafe { polyval::<W>(&keys.powers, s, plain) };
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

/// Folds `data`, zero-padded to whole blocks, into the POLYVAL state `s`:
/// whole chunks on `W`'s vectors, the rest a block at a time.
///
/// # Safety
/// The CPU has `W`'s features.
#[target_feature(enable = "pclmulqdq,sse4.1")]
unsafe fn polyval<W: Bulk>(powers: &[__m128i; 16], s: __m128i, data: &[u8]) -> __m128i {
    let whole = data.len() / CHUNK * CHUNK;
    // SAFETY: as the caller promises.
    let mut s = unsafe { W::polyval(powers, s, &data[..whole]) };
    let mut blocks = data[whole..].chunks_exact(16);
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

/// XORs the two 128-bit lanes of `v`.
#[target_feature(enable = "avx2")]
fn fold_ymm(v: __m256i) -> __m128i {
    _mm_xor_si128(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v))
}

/// XORs the four 128-bit lanes of `v`.
#[target_feature(enable = "avx512f,avx2")]
fn fold_zmm(v: __m512i) -> __m128i {
    fold_ymm(_mm256_xor_si256(
        _mm512_castsi512_si256(v),
        _mm512_extracti64x4_epi64::<1>(v),
    ))
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
///
/// # Safety
/// The CPU has `W`'s features.
#[target_feature(enable = "aes,sse4.1")]
unsafe fn ctr<W: Bulk>(keys: &RoundKeys, tag: __m128i, buf: &mut [u8]) {
    let at = buf.as_mut_ptr();
    // SAFETY: source and destination are the same `buf.len()` bytes.
    unsafe { ctr_to::<W>(keys, tag, at, at, buf.len()) }
}

/// Encrypts (or decrypts) `len` bytes from `src` to `dst` in counter mode:
/// the counter block is the tag with its top bit set, its first 32 bits a
/// little-endian counter that wraps.
///
/// # Safety
/// The CPU has `W`'s features; `src` must be readable and `dst` writable
/// for `len` bytes; they are either the same pointer or do not overlap.
#[target_feature(enable = "aes,sse4.1")]
unsafe fn ctr_to<W: Bulk>(
    keys: &RoundKeys,
    tag: __m128i,
    src: *const u8,
    dst: *mut u8,
    len: usize,
) {
    let first = _mm_or_si128(tag, _mm_set_epi64x(i64::MIN, 0));
    let whole = len / CHUNK * CHUNK;
    // SAFETY: as the caller promises.
    let mut counter = unsafe { W::ctr(keys, first, src, dst, whole) };
    // The rest, a block at a time.
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

    /// The cipher on every width this CPU runs; none (the test is skipped)
    /// on a CPU without the extensions: the aws-lc fallback is tested in
    /// `crypto.rs`.
    fn ciphers(key: &[u8; 32]) -> Vec<VaesGcmSiv> {
        let widths = Width::supported();
        if widths.is_empty() {
            eprintln!("skipped: this CPU lacks VAES or VPCLMULQDQ");
        }
        widths
            .into_iter()
            .map(|w| VaesGcmSiv::with_width(key, w))
            .collect()
    }

    #[test]
    fn rfc_8452_vectors() {
        // Appendix C.2, AES-256-GCM-SIV.
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut nonce = [0u8; 12];
        nonce[0] = 3;
        for c in ciphers(&key) {
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
    }

    /// Counter mode on `W` from a tag whose counter word is six blocks short
    /// of wrapping agrees with block-at-a-time counter mode across the wrap.
    fn counter_wraps<W: Bulk>() {
        let keys = unsafe { expand_key(&[9; 32]) };
        let mut tag = [0x33u8; 16];
        tag[..4].copy_from_slice(&(u32::MAX - 5).to_le_bytes());
        let mut buf = vec![0u8; 2 * CHUNK + 40];
        unsafe { ctr::<W>(&keys, _mm_loadu_si128(tag.as_ptr().cast()), &mut buf) };
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

    #[test]
    fn counter_wraps_at_32_bits() {
        for width in Width::supported() {
            match width {
                Width::Ymm => counter_wraps::<Ymm>(),
                Width::Zmm => counter_wraps::<Zmm>(),
            }
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
            let (want, want_tag) = reference(&key, &nonce, &aad, &plain);
            for c in ciphers(&key) {
                let mut buf = plain.clone();
                let tag = c.seal(&nonce, &aad, &mut buf);
                prop_assert_eq!(&buf, &want);
                prop_assert_eq!(tag.to_vec(), want_tag.clone());
                let mut appended = vec![9u8; 3];
                c.seal_append(&nonce, &aad, &plain, &mut appended);
                prop_assert_eq!(&appended[3..], &[&want[..], &want_tag[..]].concat()[..]);
                let mut opened = buf.clone();
                prop_assert!(c.open(&nonce, &aad, &mut opened, &tag));
                prop_assert_eq!(&opened, &plain);
            }
        }

        #[test]
        fn tampering_fails(
            plain in proptest::collection::vec(any::<u8>(), 1..2000),
            flip in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let nonce = [4; 12];
            for c in ciphers(&[3; 32]) {
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
    }

    #[test]
    fn large_block_matches_aws_lc() {
        let plain: Vec<u8> = (0..(1 << 20) + 37)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let (key, nonce) = ([0x42; 32], [0x17; 12]);
        let (want, want_tag) = reference(&key, &nonce, b"tessera", &plain);
        for c in ciphers(&key) {
            let mut buf = plain.clone();
            let tag = c.seal(&nonce, b"tessera", &mut buf);
            assert!(buf == want && tag.to_vec() == want_tag, "{:?}", c.width);
        }
    }
}
