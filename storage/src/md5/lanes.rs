//! MD5 of up to sixteen streams at once, one per 32-bit lane of AVX-512
//! vectors, behind one process-wide worker thread.
//!
//! Callers hand the worker whole 64-byte blocks of their stream with the
//! stream's state and wait. The worker takes every waiting job, up to
//! sixteen, and advances them together [`ROUND`] bytes at a time, so jobs
//! that arrive meanwhile join at the next round; a job alone runs on the
//! scalar code instead. With eight uploads in flight this hashes about
//! four times as many bytes per CPU second as eight scalar streams.

use std::arch::x86_64::*;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;

use super::{Md5, compress_scalar};

/// Lanes in one vector.
const LANES: usize = 16;
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

/// The shared worker, started on first use; `None` without AVX-512.
pub(super) fn shared() -> Option<&'static Lanes> {
    static SHARED: OnceLock<Option<Lanes>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if !std::arch::is_x86_feature_detected!("avx512f") {
                return None;
            }
            let lanes = Lanes {
                queue: Arc::new(Queue::default()),
            };
            let queue = Arc::clone(&lanes.queue);
            std::thread::Builder::new()
                .name("md5-lanes".into())
                .spawn(move || work(&queue))
                .ok()?;
            Some(lanes)
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
/// jobs into free lanes between rounds.
fn work(queue: &Queue) {
    let filler = vec![0u8; ROUND];
    let mut scalar = Md5::new();
    let mut active: Vec<Job> = Vec::with_capacity(LANES);
    loop {
        {
            let mut jobs = lock(&queue.jobs);
            while active.is_empty() && jobs.is_empty() {
                jobs = queue
                    .arrived
                    .wait(jobs)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            while active.len() < LANES {
                match jobs.pop_front() {
                    Some(job) => active.push(job),
                    None => break,
                }
            }
        }
        if let [job] = active.as_mut_slice() {
            let end = (job.at + ROUND).min(job.blocks.len());
            job.h = compress_scalar(&mut scalar, job.h, &job.blocks[job.at..end]);
            job.at = end;
        } else {
            let len = active
                .iter()
                .map(|j| j.blocks.len() - j.at)
                .fold(ROUND, usize::min);
            let mut h = [[0u32; LANES]; 4];
            let mut data: [&[u8]; LANES] = [&filler[..len]; LANES];
            for (lane, job) in active.iter().enumerate() {
                for (word, state) in h.iter_mut().zip(job.h) {
                    word[lane] = state;
                }
                data[lane] = &job.blocks[job.at..job.at + len];
            }
            // SAFETY: AVX-512F was detected before the worker started; every
            // lane holds `len` bytes, a multiple of 64.
            unsafe { compress16(&mut h, &data) };
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

/// Runs MD5's compression over the blocks of sixteen streams, lane `l` of
/// state word `w` being `h[w][l]`.
///
/// # Safety
/// The CPU has AVX-512F; every slice of `data` has the same length, a
/// multiple of 64.
#[target_feature(enable = "avx512f")]
unsafe fn compress16(h: &mut [[u32; LANES]; 4], data: &[&[u8]; LANES]) {
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
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => (_mm512_ternarylogic_epi32::<0xCA>(b, c, d), i),
                1 => (_mm512_ternarylogic_epi32::<0xE4>(b, c, d), (5 * i + 1) % 16),
                2 => (_mm512_ternarylogic_epi32::<0x96>(b, c, d), (3 * i + 5) % 16),
                _ => (_mm512_ternarylogic_epi32::<0x39>(b, c, d), (7 * i) % 16),
            };
            let sum = _mm512_add_epi32(
                _mm512_add_epi32(a, f),
                _mm512_add_epi32(words[g], _mm512_set1_epi32(K[i] as i32)),
            );
            a = d;
            d = c;
            c = b;
            b = _mm512_add_epi32(b, _mm512_rolv_epi32(sum, _mm512_set1_epi32(S[i] as i32)));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_lanes_match_the_scalar_compression() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let len = 64 * 37;
        let streams: Vec<Vec<u8>> = (0..LANES)
            .map(|l| (0..len).map(|i| (i * 31 + l * 7 + i / 97) as u8).collect())
            .collect();
        let starts: Vec<[u32; 4]> = (0..LANES as u32)
            .map(|l| [l, l.wrapping_mul(0x9e37_79b9), !l, 0x1234_5678 ^ l])
            .collect();
        let mut h = [[0u32; LANES]; 4];
        for (lane, start) in starts.iter().enumerate() {
            for (word, value) in h.iter_mut().zip(start) {
                word[lane] = *value;
            }
        }
        let data: [&[u8]; LANES] = std::array::from_fn(|l| streams[l].as_slice());
        unsafe { compress16(&mut h, &data) };
        let mut scratch = Md5::new();
        for lane in 0..LANES {
            let got: [u32; 4] = std::array::from_fn(|w| h[w][lane]);
            let want = compress_scalar(&mut scratch, starts[lane], &streams[lane]);
            assert_eq!(got, want, "lane {lane}");
        }
    }
}
