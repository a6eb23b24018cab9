//! Coding by matrix on GFNI: each parity shard, and each lost data shard, is
//! a GF(2^16)-linear combination of k other shards, and
//! multiplying by a constant of GF(2^16) is a linear map of the 16 bits, so
//! one term costs two `vgf2p8affineqb` per 32 symbols.
//!
//! reed-solomon-simd's decoder runs an inverse and a forward FFT over the
//! next power of two above the shard count for every call; for the handful
//! of erasure patterns a read meets, computing the combination once and
//! applying it is several times faster. The coefficients are not derived
//! here from the code's definition: they are read off reed-solomon-simd's
//! own decoder, run once per pattern on unit shards, so they stay whatever
//! that code is.
//!
//! Symbol layout (reed-solomon-simd's): in every whole 64-byte chunk of a
//! shard, symbol `t` has its low byte at `t` and its high byte at `32 + t`;
//! a trailing chunk of `r < 64` bytes holds `r / 2` symbols, low bytes
//! first, then high bytes.
//!
//! x86-64 only (see the crate docs on kernels): [`encode`] and
//! [`reconstruct`] answer `None` where the CPU lacks the features or the
//! call is not one a matrix serves, and the caller uses reed-solomon-simd.

// GFNI / AVX-512 intrinsics that touch memory, and calls into functions
// compiled for CPU features checked at run time, need `unsafe`.
#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::cell::RefCell;
use std::rc::Rc;

use reed_solomon_simd::engine::tables;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::error::StorageError;

/// Symbols per 64-byte chunk.
const SYMBOLS: usize = 32;

/// Bytes of each shard combined for every output before moving on: the k
/// input tiles stay in L1/L2 while the outputs are computed from them.
const TILE: usize = 4096;

fn codec(e: reed_solomon_simd::Error) -> StorageError {
    StorageError::Codec(e.to_string())
}

/// Length of the unit shards for a code with `k` inputs: one symbol position each.
fn unit_len(k: usize) -> usize {
    k.div_ceil(SYMBOLS) * 64
}

/// Input number `i` as a unit shard: the symbol 1 at position i, 0 elsewhere.
/// The code works position by position, so position i of every output is
/// then the coefficient of input i.
fn unit_shard(i: usize, len: usize) -> Vec<u8> {
    let mut unit = vec![0u8; len];
    unit[(i / SYMBOLS) * 64 + i % SYMBOLS] = 1;
    unit
}

thread_local! {
    // Coding matrices of the codes and erasure patterns met last, newest at the end.
    static MATRICES: RefCell<Vec<Rc<CodingMatrix>>> = const { RefCell::new(Vec::new()) };
}

/// Coding matrices a thread keeps.
const CACHED_PATTERNS: usize = 8;

/// The matrix computing shards `outputs` from shards `inputs` (the parity
/// from the data, or lost data shards from k others), cached per thread.
fn coding_matrix(
    k: usize,
    m: usize,
    inputs: &[usize],
    outputs: &[usize],
) -> Result<Rc<CodingMatrix>, StorageError> {
    MATRICES.with_borrow_mut(|cache| {
        if let Some(at) = cache.iter().position(|x| x.is_for(k, m, inputs, outputs)) {
            let found = cache.remove(at);
            cache.push(found.clone());
            return Ok(found);
        }
        let made = Rc::new(if outputs.first() == Some(&k) {
            CodingMatrix::parity(k, m)?
        } else {
            CodingMatrix::recovery(k, m, inputs, outputs)?
        });
        if cache.len() == CACHED_PATTERNS {
            cache.remove(0);
        }
        cache.push(made.clone());
        Ok(made)
    })
}

/// Fills `parity` (m buffers) from `data` (k buffers) by matrix, or `None`
/// (nothing written) where this CPU lacks the kernel or k or m is zero.
pub(super) fn encode(data: &[&[u8]], parity: &mut [&mut [u8]]) -> Option<Result<(), StorageError>> {
    let (k, m) = (data.len(), parity.len());
    if !supported() || k == 0 || m == 0 {
        return None;
    }
    let inputs: Vec<usize> = (0..k).collect();
    let outputs: Vec<usize> = (k..k + m).collect();
    Some(coding_matrix(k, m, &inputs, &outputs).and_then(|matrix| matrix.apply(data, parity)))
}

/// Restores the data shards in `missing` from the first k of `present` by
/// matrix, or `None` (nothing written) where this CPU lacks the kernel,
/// fewer than k shards are present, or a shard asked for is not a lost data
/// shard (see [`Codec::reconstruct`](super::Codec::reconstruct)).
pub(super) fn reconstruct(
    k: usize,
    m: usize,
    present: &[(usize, &[u8])],
    missing: &mut [(usize, &mut [u8])],
) -> Option<Result<(), StorageError>> {
    let served = supported()
        && present.len() >= k
        && missing
            .iter()
            .all(|(i, _)| *i < k && present.iter().all(|(p, _)| p != i));
    if !served {
        return None;
    }
    let present = &present[..k];
    let inputs: Vec<usize> = present.iter().map(|p| p.0).collect();
    let outputs: Vec<usize> = missing.iter().map(|p| p.0).collect();
    let shards: Vec<&[u8]> = present.iter().map(|p| p.1).collect();
    let mut rebuilt: Vec<&mut [u8]> = missing.iter_mut().map(|p| &mut *p.1).collect();
    Some(
        coding_matrix(k, m, &inputs, &outputs)
            .and_then(|matrix| matrix.apply(&shards, &mut rebuilt)),
    )
}

/// Whether this CPU runs the GFNI kernel.
fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("gfni")
}

/// How to compute some shards of a k + m code from `k` others: the parity
/// from the data, or the lost data shards of one erasure pattern from `k`
/// that survive.
#[derive(Debug)]
pub(super) struct CodingMatrix {
    /// Data and parity shard counts of the code.
    code: (usize, usize),
    /// Shard indexes read, in order (`k` of them).
    pub inputs: Vec<usize>,
    /// Shard indexes computed, in order.
    pub outputs: Vec<usize>,
    /// Per output, per input: the two affine matrices (see [`affine_pair`]),
    /// or `None` where the coefficient is zero.
    terms: Vec<Vec<Option<[[u64; 8]; 2]>>>,
}

impl CodingMatrix {
    /// The matrix rebuilding data shards `outputs` from shards `inputs` of a
    /// k + m code (`inputs.len() == k`).
    pub fn recovery(
        k: usize,
        m: usize,
        inputs: &[usize],
        outputs: &[usize],
    ) -> Result<Self, StorageError> {
        let len = unit_len(k);
        let mut decoder = ReedSolomonDecoder::new(k, m, len).map_err(codec)?;
        for (i, &index) in inputs.iter().enumerate() {
            let unit = unit_shard(i, len);
            if index < k {
                decoder.add_original_shard(index, &unit).map_err(codec)?;
            } else {
                decoder
                    .add_recovery_shard(index - k, &unit)
                    .map_err(codec)?;
            }
        }
        let result = decoder.decode().map_err(codec)?;
        let responses = outputs
            .iter()
            .map(|&out| {
                result
                    .restored_original(out)
                    .ok_or_else(|| StorageError::Codec(format!("shard {out} was not restored")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_responses((k, m), inputs, outputs, &responses))
    }

    /// The matrix computing the m parity shards (indexes `k..k + m`) from the
    /// k data shards.
    pub fn parity(k: usize, m: usize) -> Result<Self, StorageError> {
        let len = unit_len(k);
        let mut encoder = ReedSolomonEncoder::new(k, m, len).map_err(codec)?;
        for i in 0..k {
            encoder
                .add_original_shard(unit_shard(i, len))
                .map_err(codec)?;
        }
        let result = encoder.encode().map_err(codec)?;
        let responses: Vec<&[u8]> = result.recovery_iter().collect();
        let inputs: Vec<usize> = (0..k).collect();
        let outputs: Vec<usize> = (k..k + m).collect();
        Ok(Self::from_responses((k, m), &inputs, &outputs, &responses))
    }

    /// The matrix whose coefficient (output o, input i) is symbol i of
    /// `responses[o]`: what the code made of unit inputs (see [`unit_shard`]).
    fn from_responses(
        code: (usize, usize),
        inputs: &[usize],
        outputs: &[usize],
        responses: &[&[u8]],
    ) -> Self {
        let exp_log = tables::get_exp_log();
        let terms = responses
            .iter()
            .map(|response| {
                (0..inputs.len())
                    .map(|i| {
                        let at = (i / SYMBOLS) * 64 + i % SYMBOLS;
                        let c = u16::from_le_bytes([response[at], response[at + SYMBOLS]]);
                        (c != 0).then(|| {
                            // Column b of "multiply by c": c times the element with bit b set.
                            let log_c = exp_log.log[usize::from(c)];
                            let columns: [u16; 16] = std::array::from_fn(|b| {
                                tables::mul(1 << b, log_c, &exp_log.exp, &exp_log.log)
                            });
                            affine_pair(&columns)
                        })
                    })
                    .collect()
            })
            .collect();
        CodingMatrix {
            code,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            terms,
        }
    }

    /// Whether this matrix is the one for this code and pattern.
    pub fn is_for(&self, k: usize, m: usize, inputs: &[usize], outputs: &[usize]) -> bool {
        self.code == (k, m) && self.inputs == inputs && self.outputs == outputs
    }

    /// Rebuilds every output: `outputs[o]` from `inputs` (same order as
    /// [`CodingMatrix::inputs`], all of one even length).
    pub fn apply(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<(), StorageError> {
        let len = inputs.first().map_or(0, |s| s.len());
        if !supported()
            || inputs.len() != self.inputs.len()
            || outputs.len() != self.outputs.len()
            || !len.is_multiple_of(2)
            || inputs.iter().any(|s| s.len() != len)
            || outputs.iter().any(|s| s.len() != len)
        {
            return Err(StorageError::Codec(
                "shards of unequal or odd length".into(),
            ));
        }
        let whole = len / 64 * 64;
        let tail = len - whole;
        // Tile by tile, so the inputs a tile reads for one output are still
        // in cache for the next output.
        for start in (0..whole).step_by(TILE) {
            let end = (start + TILE).min(whole);
            for (out, row) in outputs.iter_mut().zip(&self.terms) {
                // SAFETY: the CPU features were checked above; every input is
                // `len >= end` bytes long.
                unsafe { combine(inputs, start, row, &mut out[start..end]) };
            }
        }
        if tail > 0 {
            // The trailing chunk in reed-solomon-simd's layout, one chunk per
            // shard, laid out once for every output.
            let half = tail / 2;
            let chunks: Vec<[u8; 64]> = inputs
                .iter()
                .map(|s| {
                    let mut c = [0u8; 64];
                    c[..half].copy_from_slice(&s[whole..whole + half]);
                    c[SYMBOLS..SYMBOLS + half].copy_from_slice(&s[whole + half..len]);
                    c
                })
                .collect();
            let chunks: Vec<&[u8]> = chunks.iter().map(|c| &c[..]).collect();
            for (out, row) in outputs.iter_mut().zip(&self.terms) {
                let mut rebuilt = [0u8; 64];
                // SAFETY: as above; every slice is 64 bytes.
                unsafe { combine(&chunks, 0, row, &mut rebuilt) };
                out[whole..whole + half].copy_from_slice(&rebuilt[..half]);
                out[whole + half..len].copy_from_slice(&rebuilt[SYMBOLS..SYMBOLS + half]);
            }
        }
        Ok(())
    }
}

/// The 16 × 16 bit matrix whose column `b` is `columns[b]`, cut into the
/// operands of two byte-wise affine transforms over a 64-byte chunk
/// `[low bytes | high bytes]`: the first maps (low → low, high → high), the
/// second, applied to the chunk with its halves swapped, (high → low, low → high).
fn affine_pair(columns: &[u16; 16]) -> [[u64; 8]; 2] {
    // GF2P8AFFINEQB: bit i of a result byte is the parity of (matrix byte 7 - i) & input byte.
    let block = |out_high: bool, in_high: bool| {
        let mut q = 0u64;
        for i in 0..8 {
            let row = i + if out_high { 8 } else { 0 };
            let mut bits = 0u64;
            for j in 0..8 {
                let column = j + if in_high { 8 } else { 0 };
                bits |= u64::from((columns[column] >> row) & 1) << j;
            }
            q |= bits << (8 * (7 - i));
        }
        q
    };
    let lanes = |low: u64, high: u64| [low, low, low, low, high, high, high, high];
    [
        lanes(block(false, false), block(true, true)),
        lanes(block(false, true), block(true, false)),
    ]
}

/// `out = Σ term_i · inputs[i][from..from + out.len()]` over whole 64-byte chunks.
///
/// # Safety
/// The CPU has AVX-512 (F, BW) and GFNI; every input holds at least
/// `from + out.len()` bytes.
#[target_feature(enable = "avx512f,avx512bw,gfni")]
unsafe fn combine(inputs: &[&[u8]], from: usize, terms: &[Option<[[u64; 8]; 2]>], out: &mut [u8]) {
    // Four chunks at a time, so each term's matrices are loaded once per 256 bytes.
    const STEP: usize = 4;
    for (group, chunks) in out.chunks_mut(64 * STEP).enumerate() {
        let n = chunks.len() / 64;
        let mut acc = [_mm512_setzero_si512(); STEP];
        for (input, term) in inputs.iter().zip(terms) {
            let Some([straight, crossed]) = term else {
                continue;
            };
            // SAFETY: each matrix is 64 readable bytes.
            let (straight, crossed) = unsafe {
                (
                    _mm512_loadu_si512(straight.as_ptr().cast()),
                    _mm512_loadu_si512(crossed.as_ptr().cast()),
                )
            };
            for (c, acc) in acc.iter_mut().enumerate().take(n) {
                // SAFETY: the input holds `from + out.len()` bytes.
                let x = unsafe {
                    _mm512_loadu_si512(input.as_ptr().add(from + 64 * (STEP * group + c)).cast())
                };
                let swapped = _mm512_shuffle_i64x2::<0x4e>(x, x);
                *acc = _mm512_xor_si512(*acc, _mm512_gf2p8affine_epi64_epi8::<0>(x, straight));
                *acc = _mm512_xor_si512(*acc, _mm512_gf2p8affine_epi64_epi8::<0>(swapped, crossed));
            }
        }
        for (chunk, acc) in chunks.chunks_exact_mut(64).zip(acc) {
            // SAFETY: the chunk is 64 writable bytes.
            unsafe { _mm512_storeu_si512(chunk.as_mut_ptr().cast(), acc) };
        }
    }
}
