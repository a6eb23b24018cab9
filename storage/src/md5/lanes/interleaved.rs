//! The general-purpose kernel: the steps of a few streams interleaved in
//! scalar code. One stream's MD5 is a chain of dependent additions and
//! rotations, about five cycles a step, that leaves most of a core's
//! integer units idle; the chains of two to four independent streams, step
//! by step side by side, fill them, so two streams cost what one does and
//! three little more. Where a vector step is slow (on Zen 5 vector additions
//! take two cycles, and a sixteen-lane step eight), this beats the vector
//! kernels on the few streams rounds often hold.

use super::{K, S, word};

/// The most streams one call interleaves. Four streams' states already
/// fill the sixteen general-purpose registers; five cost 183 ns a block on
/// Zen 5, more than sixteen AVX-512 lanes (138 ns).
pub(super) const MAX_LANES: usize = 4;

/// The [`Kernel`](super::Kernel) over `N` streams; any CPU runs it (plain Rust).
///
/// # Safety
/// Every slice of `data` has the same length, a multiple of 64 (no
/// unsafe operation depends on it; `unsafe` only matches the kernel type).
pub(super) unsafe fn compress<const N: usize>(h: &mut [[u32; N]; 4], data: &[&[u8]; N]) {
    let count = data[0].len() / 64;
    let [mut a, mut b, mut c, mut d] = *h;
    for block in 0..count {
        let (start_a, start_b, start_c, start_d) = (a, b, c, d);
        let words: [&[[u8; 4]]; N] =
            std::array::from_fn(|lane| data[lane][64 * block..64 * (block + 1)].as_chunks::<4>().0);
        each_step!(I => {
            for lane in 0..N {
                let (x, y, z) = (b[lane], c[lane], d[lane]);
                // What does not wait for the step before (x) first.
                let early = a[lane]
                    .wrapping_add(u32::from_le_bytes(words[lane][word(I)]))
                    .wrapping_add(K[I]);
                let sum = match I / 16 {
                    0 => settled(early).wrapping_add(z ^ (x & (y ^ z))),
                    1 => settled(early.wrapping_add(y & !z)).wrapping_add(x & z),
                    2 => settled(early).wrapping_add(x ^ (y ^ z)),
                    _ => settled(early).wrapping_add(y ^ (x | !z)),
                };
                a[lane] = z;
                d[lane] = y;
                c[lane] = x;
                b[lane] = x.wrapping_add(sum.rotate_left(S[I]));
            }
        });
        for lane in 0..N {
            a[lane] = a[lane].wrapping_add(start_a[lane]);
            b[lane] = b[lane].wrapping_add(start_b[lane]);
            c[lane] = c[lane].wrapping_add(start_c[lane]);
            d[lane] = d[lane].wrapping_add(start_d[lane]);
        }
    }
    *h = [a, b, c, d];
}

/// `v`, out of the optimizer's sight, so that what is summed before it
/// stays summed before the step's last term. The fence is an empty x86
/// `asm!` (its `e` operand modifier names a 32-bit x86 register), so it is
/// compiled with the x86 kernels only; other builds return `v` as it is and
/// leave the order to the compiler, and the worker's timing decides whether
/// the kernel pays there.
#[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
fn settled(mut v: u32) -> u32 {
    // SAFETY: the asm is empty; it only claims to change `v`.
    unsafe {
        std::arch::asm!("/* {0:e} */", inout(reg) v, options(pure, nomem, nostack, preserves_flags))
    };
    v
}

/// `v` as it is: builds without the x86 kernels have no fence.
#[cfg(not(all(target_arch = "x86_64", not(tessera_portable))))]
fn settled(v: u32) -> u32 {
    v
}
