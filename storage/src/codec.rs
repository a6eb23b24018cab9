//! Erasure coding behind one small trait, so the choice stays measured
//! (`benches/` runs `reed-solomon-novelpoly` against the default).

use std::cell::RefCell;

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::error::StorageError;

// The GFNI kernel (AVX-512 intrinsics), x86-64 only; elsewhere, and with
// `--cfg tessera_portable`, every call goes to reed-solomon-simd.
#[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
mod matrix;

/// A systematic k + m erasure code over equally long shards (length even).
pub trait Codec: Send + Sync + std::fmt::Debug {
    /// Fills `parity` (m buffers) from `data` (k buffers), all the same length.
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), StorageError>;

    /// Restores the data shards listed in `missing` (index < k, buffer to fill)
    /// from at least k `present` shards (index in `0..k+m`, bytes).
    fn reconstruct(
        &self,
        k: usize,
        m: usize,
        present: &[(usize, &[u8])],
        missing: &mut [(usize, &mut [u8])],
    ) -> Result<(), StorageError>;
}

/// Reed-Solomon over GF(2^16) with run-time SIMD (`reed-solomon-simd`): any k + m.
/// On x86-64 CPUs with AVX-512 and GFNI, parity and lost data shards are
/// computed by coefficient matrices instead (same bytes; see the crate docs
/// on kernels).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReedSolomonSimd;

/// The codec written into format version 1 shard files.
pub static DEFAULT_CODEC: ReedSolomonSimd = ReedSolomonSimd;

thread_local! {
    // Encoders and decoders keep large work buffers: reuse them per thread.
    static ENCODER: RefCell<Option<ReedSolomonEncoder>> = const { RefCell::new(None) };
    static DECODER: RefCell<Option<ReedSolomonDecoder>> = const { RefCell::new(None) };
}

/// Bytes of each shard coded per encoder call: small enough for the shards'
/// slices and the encoder's work buffer to stay in L2. Even, so every slice
/// but possibly the last is a valid shard length (the last is even because
/// the whole length is).
const ENCODE_SLICE: usize = 64 * 1024;

/// Bytes of decoder work buffer per call: the decoder's buffer holds
/// `next_pow2(next_pow2(m) + k)` shard slices, and every call also pays a
/// fixed cost (evaluating the erasure locator over the whole field), so
/// slices are sized to keep the buffer about this big (measured: 4+2 is
/// fastest whole at 1 MiB blocks, 8+4 fastest in 256–512 KiB slices).
const RECONSTRUCT_WORK: usize = 8 << 20;

/// Bytes of each shard rebuilt per decoder call for a k + m code (even).
fn reconstruct_slice(k: usize, m: usize) -> usize {
    let work_shards = (m.next_power_of_two() + k).next_power_of_two();
    (RECONSTRUCT_WORK / work_shards).max(64 * 1024) & !1
}

fn codec_err(e: reed_solomon_simd::Error) -> StorageError {
    StorageError::Codec(e.to_string())
}

impl Codec for ReedSolomonSimd {
    fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), StorageError> {
        #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
        if let Some(done) = matrix::encode(data, parity) {
            return done;
        }
        encode_by_encoder(data, parity)
    }

    fn reconstruct(
        &self,
        k: usize,
        m: usize,
        present: &[(usize, &[u8])],
        missing: &mut [(usize, &mut [u8])],
    ) -> Result<(), StorageError> {
        #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
        if let Some(done) = matrix::reconstruct(k, m, present, missing) {
            return done;
        }
        reconstruct_by_decoder(k, m, present, missing)
    }
}

/// Encodes with reed-solomon-simd's encoder (any CPU).
fn encode_by_encoder(data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), StorageError> {
    let len = data.first().map_or(0, |d| d.len());
    ENCODER.with_borrow_mut(|slot| {
        // Code the shards a slice at a time so the inputs, the codec's
        // work buffer and the outputs stay in cache (the code is
        // position-wise, so slices encode independently).
        let mut at = 0;
        while at < len {
            let end = (at + ENCODE_SLICE).min(len);
            let encoder = match slot.as_mut() {
                Some(e) => {
                    e.reset(data.len(), parity.len(), end - at)
                        .map_err(codec_err)?;
                    e
                }
                None => slot.insert(
                    ReedSolomonEncoder::new(data.len(), parity.len(), end - at)
                        .map_err(codec_err)?,
                ),
            };
            for d in data {
                encoder.add_original_shard(&d[at..end]).map_err(codec_err)?;
            }
            let result = encoder.encode().map_err(codec_err)?;
            for (out, recovery) in parity.iter_mut().zip(result.recovery_iter()) {
                out[at..end].copy_from_slice(recovery);
            }
            at = end;
        }
        Ok(())
    })
}

/// Rebuilds with reed-solomon-simd's decoder, in slices (any CPU, any pattern).
fn reconstruct_by_decoder(
    k: usize,
    m: usize,
    present: &[(usize, &[u8])],
    missing: &mut [(usize, &mut [u8])],
) -> Result<(), StorageError> {
    let len = present.first().map_or(0, |p| p.1.len());
    DECODER.with_borrow_mut(|slot| {
        // As for encoding, a slice at a time bounds the work buffer.
        let slice = reconstruct_slice(k, m);
        let mut at = 0;
        while at < len {
            let end = (at + slice).min(len);
            let decoder = match slot.as_mut() {
                Some(d) => {
                    d.reset(k, m, end - at).map_err(codec_err)?;
                    d
                }
                None => slot.insert(ReedSolomonDecoder::new(k, m, end - at).map_err(codec_err)?),
            };
            for (index, bytes) in present {
                let bytes = &bytes[at..end];
                if *index < k {
                    decoder
                        .add_original_shard(*index, bytes)
                        .map_err(codec_err)?;
                } else {
                    decoder
                        .add_recovery_shard(*index - k, bytes)
                        .map_err(codec_err)?;
                }
            }
            let result = decoder.decode().map_err(codec_err)?;
            for (index, out) in missing.iter_mut() {
                // Shards given as present are not "restored"; copy those from the input.
                match result.restored_original(*index) {
                    Some(restored) => out[at..end].copy_from_slice(restored),
                    None => {
                        let given = present.iter().find(|(i, _)| i == index).ok_or_else(|| {
                            StorageError::Codec(format!("shard {index} was not restored"))
                        })?;
                        out[at..end].copy_from_slice(&given.1[at..end]);
                    }
                }
            }
            at = end;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_rebuild_from_parity() {
        let data: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i * 3 + 1; 64]).collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![vec![0u8; 64]; 2];
        let mut prefs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        DEFAULT_CODEC.encode(&refs, &mut prefs).unwrap();
        let present = [
            (1, refs[1]),
            (3, refs[3]),
            (4, &parity[0][..]),
            (5, &parity[1][..]),
        ];
        let (mut a, mut b) = (vec![0u8; 64], vec![0u8; 64]);
        DEFAULT_CODEC
            .reconstruct(4, 2, &present, &mut [(0, &mut a), (2, &mut b)])
            .unwrap();
        assert_eq!(a, data[0]);
        assert_eq!(b, data[2]);
    }

    #[test]
    fn sliced_encoding_equals_whole_shard_decoding() {
        // Longer than two slices and not a multiple of one: the parity made a
        // slice at a time must rebuild the data with a decoder over whole shards.
        let len = 2 * ENCODE_SLICE + 130;
        let data: Vec<Vec<u8>> = (0..3u32)
            .map(|s| {
                (0..len as u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> (s + 7)) as u8)
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut parity = vec![vec![0u8; len]; 2];
        let mut prefs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
        DEFAULT_CODEC.encode(&refs, &mut prefs).unwrap();
        let present = [(2, refs[2]), (3, &parity[0][..]), (4, &parity[1][..])];
        let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
        DEFAULT_CODEC
            .reconstruct(3, 2, &present, &mut [(0, &mut a), (1, &mut b)])
            .unwrap();
        assert!(a == data[0] && b == data[1]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Any k of the k + m shards rebuild the lost data shards exactly,
        /// whatever the length (whole 64-byte chunks and a trailing part).
        #[test]
        fn any_k_shards_rebuild_the_lost_data(
            k in 1usize..=20,
            m in 1usize..=6,
            half_len in 0usize..1500,
            seed in proptest::prelude::any::<u64>(),
        ) {
            use rand::{Rng, SeedableRng, seq::SliceRandom};
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let len = 2 * half_len.max(1);
            let data: Vec<Vec<u8>> = (0..k).map(|_| (0..len).map(|_| rng.random()).collect()).collect();
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let mut parity = vec![vec![0u8; len]; m];
            let mut prefs: Vec<&mut [u8]> = parity.iter_mut().map(Vec::as_mut_slice).collect();
            DEFAULT_CODEC.encode(&refs, &mut prefs).unwrap();
            // The portable encoder (CPUs without GFNI) agrees.
            let mut portable = vec![vec![0u8; len]; m];
            let mut outs: Vec<&mut [u8]> = portable.iter_mut().map(Vec::as_mut_slice).collect();
            encode_by_encoder(&refs, &mut outs).unwrap();
            proptest::prop_assert_eq!(&portable, &parity);
            let all: Vec<&[u8]> = refs.iter().copied().chain(parity.iter().map(Vec::as_slice)).collect();
            let mut order: Vec<usize> = (0..k + m).collect();
            order.shuffle(&mut rng);
            let lost: Vec<usize> = order[..m.min(k)].iter().copied().filter(|&i| i < k).collect();
            let present: Vec<(usize, &[u8])> = order[m.min(k)..].iter().map(|&i| (i, all[i])).collect();
            let mut rebuilt = vec![vec![0u8; len]; lost.len()];
            let mut missing: Vec<(usize, &mut [u8])> =
                lost.iter().copied().zip(rebuilt.iter_mut().map(Vec::as_mut_slice)).collect();
            DEFAULT_CODEC.reconstruct(k, m, &present, &mut missing).unwrap();
            for (i, bytes) in lost.iter().zip(&rebuilt) {
                proptest::prop_assert_eq!(bytes, &data[*i], "shard {}", i);
            }
            // The portable path (CPUs without GFNI) agrees.
            let mut portable = vec![vec![0u8; len]; lost.len()];
            let mut missing: Vec<(usize, &mut [u8])> =
                lost.iter().copied().zip(portable.iter_mut().map(Vec::as_mut_slice)).collect();
            reconstruct_by_decoder(k, m, &present, &mut missing).unwrap();
            proptest::prop_assert_eq!(portable, rebuilt);
        }
    }
}
