//! The AVX2 kernel: eight streams, one per 32-bit lane of a 256-bit vector.
//! Without ternary logic each of F, G, H and I takes two or three bitwise
//! operations and a rotation takes two shifts and an OR; the message words
//! come from two 8×8 transposes per block.

use std::arch::x86_64::*;

use super::{K, S, word};

/// Streams per call.
pub(super) const LANES: usize = 8;

/// Whether this CPU runs [`compress`].
pub(super) fn supported() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// The [`Kernel`](super::Kernel) over eight streams.
///
/// # Safety
/// The CPU has AVX2; every slice of `data` has the same length, a
/// multiple of 64.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn compress(h: &mut [[u32; LANES]; 4], data: &[&[u8]; LANES]) {
    // SAFETY (all loads and stores below): `h` rows are 8 u32, and block `b`
    // of every lane is in bounds as the caller promises.
    let load = |row: &[u32; LANES]| unsafe { _mm256_loadu_si256(row.as_ptr().cast()) };
    let mut state = [load(&h[0]), load(&h[1]), load(&h[2]), load(&h[3])];
    let ones = _mm256_set1_epi32(-1);
    for block in 0..data[0].len() / 64 {
        let half = |offset: usize| -> [__m256i; 8] {
            std::array::from_fn(|lane| unsafe {
                _mm256_loadu_si256(data[lane].as_ptr().add(64 * block + offset).cast())
            })
        };
        let (low, high) = (transpose(half(0)), transpose(half(32)));
        let words: [__m256i; 16] =
            std::array::from_fn(|w| if w < 8 { low[w] } else { high[w - 8] });
        let [mut a, mut b, mut c, mut d] = state;
        each_step!(I => {
            let f = match I / 16 {
                // F = (b & c) | (!b & d)
                0 => _mm256_xor_si256(d, _mm256_and_si256(b, _mm256_xor_si256(c, d))),
                // G = (b & d) | (c & !d)
                1 => _mm256_xor_si256(c, _mm256_and_si256(d, _mm256_xor_si256(b, c))),
                // H = b ^ c ^ d
                2 => _mm256_xor_si256(_mm256_xor_si256(b, c), d),
                // I = c ^ (b | !d)
                _ => _mm256_xor_si256(c, _mm256_or_si256(b, _mm256_xor_si256(d, ones))),
            };
            let sum = _mm256_add_epi32(
                _mm256_add_epi32(a, f),
                _mm256_add_epi32(words[word(I)], _mm256_set1_epi32(K[I] as i32)),
            );
            let rotated = _mm256_or_si256(
                _mm256_slli_epi32::<{ S[I] as i32 }>(sum),
                _mm256_srli_epi32::<{ 32 - S[I] as i32 }>(sum),
            );
            a = d;
            d = c;
            c = b;
            b = _mm256_add_epi32(b, rotated);
        });
        state = [
            _mm256_add_epi32(state[0], a),
            _mm256_add_epi32(state[1], b),
            _mm256_add_epi32(state[2], c),
            _mm256_add_epi32(state[3], d),
        ];
    }
    for (row, v) in h.iter_mut().zip(state) {
        // SAFETY: as above.
        unsafe { _mm256_storeu_si256(row.as_mut_ptr().cast(), v) };
    }
}

/// Transposes eight rows of eight u32 (word `w` of lane `l` at row `l`,
/// position `w`) into word `w` of every lane at row `w`.
#[target_feature(enable = "avx2")]
fn transpose(rows: [__m256i; 8]) -> [__m256i; 8] {
    // Within each 128-bit half: pairs of rows interleaved by 32, then by 64
    // bits, leave u[4i + j] holding word j (low half) and 4 + j (high half)
    // of rows 4i..4i + 4.
    let t: [__m256i; 8] = std::array::from_fn(|n| {
        let (a, b) = (rows[n & !1], rows[n | 1]);
        if n % 2 == 0 {
            _mm256_unpacklo_epi32(a, b)
        } else {
            _mm256_unpackhi_epi32(a, b)
        }
    });
    let u: [__m256i; 8] = std::array::from_fn(|n| {
        let (i, j) = (n / 4, n % 4);
        let (a, b) = (t[4 * i + j / 2], t[4 * i + j / 2 + 2]);
        if j % 2 == 0 {
            _mm256_unpacklo_epi64(a, b)
        } else {
            _mm256_unpackhi_epi64(a, b)
        }
    });
    // Then join the halves of the two row groups.
    std::array::from_fn(|w| {
        let (a, b) = (u[w % 4], u[4 + w % 4]);
        if w < 4 {
            _mm256_permute2x128_si256::<0x20>(a, b)
        } else {
            _mm256_permute2x128_si256::<0x31>(a, b)
        }
    })
}
