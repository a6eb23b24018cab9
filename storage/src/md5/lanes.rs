//! MD5 of several streams at once, one per 32-bit lane of SIMD vectors,
//! behind one process-wide worker thread: sixteen lanes with AVX-512
//! ([`avx512`]), eight with AVX2 ([`avx2`]).
//!
//! Callers hand the worker whole 64-byte blocks of their stream with the
//! stream's state and wait. The worker takes every waiting job, as many as
//! it has lanes, and advances them together [`ROUND`] bytes at a time, so
//! jobs that arrive meanwhile join at the next round; a job alone, or too
//! few jobs to pay for a vector's idle lanes, run on the scalar code
//! instead. With eight uploads in flight this hashes about 3.7 (AVX-512,
//! Zen 4) or 2.8 (AVX2, Zen 3) times as many bytes per CPU second as eight
//! scalar streams.

mod avx2;
mod avx512;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;

use super::{Md5, compress_scalar};

/// A compression kernel over `N` streams: runs MD5's compression over the
/// blocks of every stream, lane `l` of state word `w` being `h[w][l]`.
///
/// # Safety
/// The CPU has the kernel's features; every slice of `data` has the same
/// length, a multiple of 64.
type Kernel<const N: usize> = unsafe fn(&mut [[u32; N]; 4], &[&[u8]; N]);

/// Bytes every active stream advances per round.
const ROUND: usize = 16 * 1024;

/// MD5's per-step additive constants, `floor(|sin(i + 1)| · 2^32)`.
const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

/// Left-rotation amounts of each step.
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// The shared worker, started on first use with the widest kernel this CPU
/// runs; `None` without AVX2.
pub(super) fn shared() -> Option<&'static Lanes> {
    static SHARED: OnceLock<Option<Lanes>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let queue = Arc::new(Queue::default());
            let worker = Arc::clone(&queue);
            let thread = std::thread::Builder::new().name("md5-lanes".into());
            if avx512::supported() {
                thread.spawn(move || {
                    work::<{ avx512::LANES }>(&worker, avx512::compress, avx512::MIN_STREAMS)
                })
            } else if avx2::supported() {
                thread.spawn(move || {
                    work::<{ avx2::LANES }>(&worker, avx2::compress, avx2::MIN_STREAMS)
                })
            } else {
                return None;
            }
            .ok()?;
            Some(Lanes { queue })
        })
        .as_ref()
}

/// The handle callers use.
pub(super) struct Lanes {
    queue: Arc<Queue>,
}

impl Lanes {
    /// Runs MD5's compression from state `h` over `blocks` (whole 64-byte
    /// blocks) and returns the new state; waits for the worker.
    pub(super) fn compress(&self, h: [u32; 4], blocks: Bytes) -> [u32; 4] {
        let done = Arc::new(Done::default());
        lock(&self.queue.jobs).push_back(Job {
            h,
            blocks,
            at: 0,
            done: Arc::clone(&done),
        });
        self.queue.arrived.notify_one();
        let mut result = lock(&done.result);
        loop {
            if let Some(h) = *result {
                return h;
            }
            result = done
                .ready
                .wait(result)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    arrived: Condvar,
}

/// Where a job's caller waits for its state.
#[derive(Default)]
struct Done {
    result: Mutex<Option<[u32; 4]>>,
    ready: Condvar,
}

/// One caller's blocks, hashed up to `at`, with the state so far.
struct Job {
    h: [u32; 4],
    blocks: Bytes,
    at: usize,
    done: Arc<Done>,
}

impl Job {
    fn finish(self) {
        *lock(&self.done.result) = Some(self.h);
        self.done.ready.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The worker: advances every active job a round at a time, taking new
/// jobs into free lanes between rounds. Rounds with fewer than
/// `min_streams` jobs run on the scalar code, which is then cheaper than
/// a vector with so many idle lanes.
fn work<const N: usize>(queue: &Queue, kernel: Kernel<N>, min_streams: usize) {
    let filler = vec![0u8; ROUND];
    let mut scalar = Md5::new();
    let mut active: Vec<Job> = Vec::with_capacity(N);
    loop {
        {
            let mut jobs = lock(&queue.jobs);
            while active.is_empty() && jobs.is_empty() {
                jobs = queue
                    .arrived
                    .wait(jobs)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            while active.len() < N {
                match jobs.pop_front() {
                    Some(job) => active.push(job),
                    None => break,
                }
            }
        }
        if active.len() < min_streams {
            for job in &mut active {
                let end = (job.at + ROUND).min(job.blocks.len());
                job.h = compress_scalar(&mut scalar, job.h, &job.blocks[job.at..end]);
                job.at = end;
            }
        } else {
            let len = active
                .iter()
                .map(|j| j.blocks.len() - j.at)
                .fold(ROUND, usize::min);
            let mut h = [[0u32; N]; 4];
            let mut data: [&[u8]; N] = [&filler[..len]; N];
            for (lane, job) in active.iter().enumerate() {
                for (word, state) in h.iter_mut().zip(job.h) {
                    word[lane] = state;
                }
                data[lane] = &job.blocks[job.at..job.at + len];
            }
            // SAFETY: the kernel's features were detected before the worker
            // started; every lane holds `len` bytes, a multiple of 64.
            unsafe { kernel(&mut h, &data) };
            for (lane, job) in active.iter_mut().enumerate() {
                job.h = std::array::from_fn(|word| h[word][lane]);
                job.at += len;
            }
        }
        for job in active.extract_if(.., |job| job.at == job.blocks.len()) {
            job.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `kernel` over `N` streams from arbitrary states and compares
    /// every lane with the scalar compression.
    fn matches_the_scalar_compression<const N: usize>(kernel: Kernel<N>) {
        let len = 64 * 37;
        let streams: Vec<Vec<u8>> = (0..N)
            .map(|l| (0..len).map(|i| (i * 31 + l * 7 + i / 97) as u8).collect())
            .collect();
        let starts: Vec<[u32; 4]> = (0..N as u32)
            .map(|l| [l, l.wrapping_mul(0x9e37_79b9), !l, 0x1234_5678 ^ l])
            .collect();
        let mut h = [[0u32; N]; 4];
        for (lane, start) in starts.iter().enumerate() {
            for (word, value) in h.iter_mut().zip(start) {
                word[lane] = *value;
            }
        }
        let data: [&[u8]; N] = std::array::from_fn(|l| streams[l].as_slice());
        // SAFETY: callers check the kernel's features; all lanes are `len` long.
        unsafe { kernel(&mut h, &data) };
        let mut scratch = Md5::new();
        for lane in 0..N {
            let got: [u32; 4] = std::array::from_fn(|w| h[w][lane]);
            let want = compress_scalar(&mut scratch, starts[lane], &streams[lane]);
            assert_eq!(got, want, "lane {lane}");
        }
    }

    #[test]
    fn avx512_lanes_match_the_scalar_compression() {
        if avx512::supported() {
            matches_the_scalar_compression::<{ avx512::LANES }>(avx512::compress);
        }
    }

    #[test]
    fn avx2_lanes_match_the_scalar_compression() {
        if avx2::supported() {
            matches_the_scalar_compression::<{ avx2::LANES }>(avx2::compress);
        }
    }
}
