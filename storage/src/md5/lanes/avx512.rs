//! The AVX-512 kernel: sixteen streams, one per 32-bit lane of a 512-bit
//! vector. Each of F, G, H and I is one `vpternlogd`, rotations are
//! `vprold`, and the message words come from a 16×16 transpose (gathers
//! were ten times slower on Zen 4).

use std::arch::asm;
use std::arch::x86_64::*;

use super::{K, S, word};

/// Streams per call.
pub(super) const LANES: usize = 16;

/// Whether this CPU runs [`compress`].
pub(super) fn supported() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// The [`Kernel`](super::Kernel) over sixteen streams.
///
/// # Safety
/// The CPU has AVX-512F; every slice of `data` has the same length, a
/// multiple of 64.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn compress(h: &mut [[u32; LANES]; 4], data: &[&[u8]; LANES]) {
    // SAFETY (all loads and stores below): `h` rows are 16 u32, and block
    // `b` of every lane is in bounds as the caller promises.
    let load = |row: &[u32; LANES]| unsafe { _mm512_loadu_si512(row.as_ptr().cast()) };
    let mut state = [load(&h[0]), load(&h[1]), load(&h[2]), load(&h[3])];
    for block in 0..data[0].len() / 64 {
        let mut words: [__m512i; 16] = std::array::from_fn(|lane| unsafe {
            _mm512_loadu_si512(data[lane].as_ptr().add(64 * block).cast())
        });
        transpose(&mut words);
        let [mut a, mut b, mut c, mut d] = state;
        each_step!(I => {
            let f = match I / 16 {
                0 => _mm512_ternarylogic_epi32::<0xCA>(b, c, d),
                1 => _mm512_ternarylogic_epi32::<0xE4>(b, c, d),
                2 => _mm512_ternarylogic_epi32::<0x96>(b, c, d),
                _ => _mm512_ternarylogic_epi32::<0x39>(b, c, d),
            };
            let early = _mm512_add_epi32(
                a,
                _mm512_add_epi32(words[word(I)], _mm512_set1_epi32(K[I] as i32)),
            );
            let sum = _mm512_add_epi32(settled(early), f);
            a = d;
            d = c;
            c = b;
            b = _mm512_add_epi32(b, _mm512_rol_epi32::<{ S[I] as i32 }>(sum));
        });
        state = [
            _mm512_add_epi32(state[0], a),
            _mm512_add_epi32(state[1], b),
            _mm512_add_epi32(state[2], c),
            _mm512_add_epi32(state[3], d),
        ];
    }
    for (row, v) in h.iter_mut().zip(state) {
        // SAFETY: as above.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
    }
}

/// `v`, out of the optimizer's sight. Of a step's sum `a + M + K + F`, only
/// F waits for the step before; left to itself, LLVM adds the constant K
/// after F, one more cycle on the chain from step to step. Summing
/// `a + M + K` behind this first leaves F one addition from the rotation:
/// 98.8 → 86.9 ns a sixteen-lane block on the Xeon of session 10.
#[target_feature(enable = "avx512f")]
fn settled(mut v: __m512i) -> __m512i {
    // SAFETY: the asm is empty; it only claims to change `v`.
    unsafe { asm!("/* {0} */", inout(zmm_reg) v, options(pure, nomem, nostack, preserves_flags)) };
    v
}

/// Transposes sixteen rows of sixteen u32 (lane `l`'s block in row `l`)
/// into sixteen message words (word `w` of every lane in row `w`).
#[target_feature(enable = "avx512f")]
fn transpose(rows: &mut [__m512i; 16]) {
    // Within each 128-bit quarter: pairs of rows interleaved by 32, then by
    // 64 bits, leave u[4i + j] holding word 4q + j of rows 4i..4i + 4 in
    // quarter q.
    let t: [__m512i; 16] = std::array::from_fn(|n| {
        let (a, b) = (rows[n & !1], rows[n | 1]);
        if n % 2 == 0 {
            _mm512_unpacklo_epi32(a, b)
        } else {
            _mm512_unpackhi_epi32(a, b)
        }
    });
    let u: [__m512i; 16] = std::array::from_fn(|n| {
        let (i, j) = (n / 4, n % 4);
        let (a, b) = (t[4 * i + j / 2], t[4 * i + j / 2 + 2]);
        if j % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    // Then gather quarter q of the four row groups into word 4q + j.
    for j in 0..4 {
        let (a, b, c, d) = (u[j], u[4 + j], u[8 + j], u[12 + j]);
        let ab_low = _mm512_shuffle_i32x4::<0x44>(a, b);
        let ab_high = _mm512_shuffle_i32x4::<0xEE>(a, b);
        let cd_low = _mm512_shuffle_i32x4::<0x44>(c, d);
        let cd_high = _mm512_shuffle_i32x4::<0xEE>(c, d);
        rows[j] = _mm512_shuffle_i32x4::<0x88>(ab_low, cd_low);
        rows[4 + j] = _mm512_shuffle_i32x4::<0xDD>(ab_low, cd_low);
        rows[8 + j] = _mm512_shuffle_i32x4::<0x88>(ab_high, cd_high);
        rows[12 + j] = _mm512_shuffle_i32x4::<0xDD>(ab_high, cd_high);
    }
}
