//! MD5 of several streams at once, behind one process-wide worker thread:
//! one stream per 32-bit lane of SIMD vectors, eight of AVX2 (`avx2`) or
//! sixteen of AVX-512 (`avx512`) where the CPU has them, or two to four
//! streams' scalar steps interleaved ([`interleaved`]); for each number of
//! streams a round may hold, the kernel that was quickest on this core.
//!
//! On x86-64 the worker runs where the CPU has AVX2 (without it, streams
//! hash on their callers' threads). The vector kernels exist only on x86-64
//! builds without `--cfg tessera_portable`; every other build runs the
//! worker on any CPU with the scalar and interleaved kernels, which are
//! plain Rust.
//!
//! A [`Stream`] hands the worker its bytes and goes on without waiting; the
//! worker keeps each stream's state and queued pieces and advances the
//! streams side by side, [`ROUND`] bytes each at a time. Uploads' stripes
//! arrive at different moments, so the worker lets them line up before it
//! starts: it runs when every open stream has bytes queued, when its lanes
//! would be full, when a stream is finishing or has [`QUEUE_MAX`] bytes
//! queued, or when the oldest piece has waited [`MAX_WAIT`].
//!
//! The worker counts its rounds by kernel in `tessera_md5_lane_rounds_total`
//! (`kernel="scalar|interleaved"`, and `avx2|avx512` in builds that have
//! them) and the streams they advanced in
//! `tessera_md5_lane_streams_total`: their ratio is how full the lanes run.

/// Expands `$body` once for each of MD5's 64 steps, with the constant `$i`
/// set to the step's number: every step's function, message word, additive
/// constant and rotation are then fixed when it compiles (a loop over the
/// steps was left rolled, with its rotations and branches at run time).
macro_rules! each_step {
    ($i:ident => $body:block) => {
        each_step!(@ $i $body; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63)
    };
    (@ $i:ident $body:block; $($n:literal)*) => {
        $({
            const $i: usize = $n;
            $body
        })*
    };
}

#[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
mod avx2;
#[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
mod avx512;
mod interleaved;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Md5, compress_scalar};

/// A compression kernel over `N` streams: runs MD5's compression over the
/// blocks of every stream, lane `l` of state word `w` being `h[w][l]`.
///
/// # Safety
/// The CPU has the kernel's features; every slice of `data` has the same
/// length, a multiple of 64.
type Kernel<const N: usize> = unsafe fn(&mut [[u32; N]; 4], &[&[u8]; N]);

/// Bytes every stream in a round advances.
const ROUND: usize = 16 * 1024;

/// Bytes a stream may have queued (two stripes of the default geometry);
/// its feeder waits for room beyond that.
const QUEUE_MAX: usize = 8 << 20;

/// The longest a queued piece waits for other streams to line up with it.
const MAX_WAIT: Duration = Duration::from_millis(50);

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

/// The message word step `i` adds.
const fn word(i: usize) -> usize {
    match i / 16 {
        0 => i,
        1 => (5 * i + 1) % 16,
        2 => (3 * i + 5) % 16,
        _ => (7 * i) % 16,
    }
}

/// Left-rotation amounts of each step.
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
    14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15,
    21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// The shared worker, started on first use; `None` where it does not run
/// (see [`worker_runs`]).
pub(super) fn shared() -> Option<&'static Lanes> {
    static SHARED: OnceLock<Option<Lanes>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if !worker_runs() {
                return None;
            }
            let inner = Arc::new(Inner::default());
            let worker = Arc::clone(&inner);
            // The kernels are timed on the worker's thread, not the first
            // caller's; streams queue their pieces meanwhile.
            std::thread::Builder::new()
                .name("md5-lanes".into())
                .spawn(move || work(&worker, &Kernels::measure()))
                .ok()?;
            Some(Lanes { inner })
        })
        .as_ref()
}

/// Whether the shared worker runs on this CPU: with the x86 kernels, where
/// it has AVX2; without them, always.
fn worker_runs() -> bool {
    #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
    {
        avx2::supported()
    }
    #[cfg(not(all(target_arch = "x86_64", not(tessera_portable))))]
    {
        true
    }
}

/// How the worker runs a round of some number of streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    /// The scalar code, one stream after the other.
    Scalar,
    /// The streams' scalar steps interleaved (two to four streams).
    Interleaved,
    /// One call over AVX2's eight lanes.
    #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
    Avx2,
    /// One call over AVX-512's sixteen lanes.
    #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
    Avx512,
}

impl Choice {
    /// Every choice, in declaration order (`ALL[c as usize] == c`).
    #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
    const ALL: [Choice; 4] = [
        Choice::Scalar,
        Choice::Interleaved,
        Choice::Avx2,
        Choice::Avx512,
    ];
    /// Every choice, in declaration order (`ALL[c as usize] == c`).
    #[cfg(not(all(target_arch = "x86_64", not(tessera_portable))))]
    const ALL: [Choice; 2] = [Choice::Scalar, Choice::Interleaved];

    /// The label of its rounds in `tessera_md5_lane_rounds_total`.
    fn label(self) -> &'static str {
        match self {
            Choice::Scalar => "scalar",
            Choice::Interleaved => "interleaved",
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            Choice::Avx2 => "avx2",
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            Choice::Avx512 => "avx512",
        }
    }
}

/// The kernels the worker picks from, by how many streams a round has.
/// Which is cheapest for a number of streams depends on the core, so it is
/// measured: a vector call costs the same however few of its lanes are
/// used, and its step is slow where vector additions take two cycles. On
/// Zen 5 a sixteen-lane call costs 138 ns a block, four interleaved scalar
/// streams 134 ns, three 92 ns, two 78 ns and the scalar code 82 ns for
/// one; on the Xeon of session 10 the sixteen-lane call took 87 ns.
struct Kernels {
    /// `choice[n]`: how a round of `n` streams runs.
    choice: Vec<Choice>,
}

/// Timed calls of each kernel when choosing between them.
const CALIBRATION_TRIALS: usize = 8;

impl Kernels {
    /// The kernels of this CPU (which has AVX2 if this build has the x86
    /// kernels), each timed over a round.
    fn measure() -> Kernels {
        let data = vec![0u8; ROUND];
        let mut scratch = Md5::new();
        let scalar = quickest(|| {
            std::hint::black_box(compress_scalar(&mut scratch, [0; 4], &data));
        });
        // Interleaved calls over two, three and four streams.
        let interleaved: [Duration; interleaved::MAX_LANES - 1] = [
            time_kernel(interleaved::compress::<2>, &data),
            time_kernel(interleaved::compress::<3>, &data),
            time_kernel(interleaved::compress::<4>, &data),
        ];
        // Vector calls: (streams per call, cost of a call, choice), narrowest first.
        #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
        let vector = {
            let mut vector = vec![(
                avx2::LANES,
                time_kernel(avx2::compress, &data),
                Choice::Avx2,
            )];
            if avx512::supported() {
                let cost = time_kernel(avx512::compress, &data);
                vector.push((avx512::LANES, cost, Choice::Avx512));
            }
            vector
        };
        #[cfg(not(all(target_arch = "x86_64", not(tessera_portable))))]
        let vector: Vec<(usize, Duration, Choice)> = Vec::new();
        let capacity = vector
            .iter()
            .map(|&(lanes, ..)| lanes)
            .fold(interleaved::MAX_LANES, usize::max);
        let choice = (0..=capacity)
            .map(|n| {
                let mut options = vec![(scalar * n as u32, Choice::Scalar)];
                if let Some(&cost) = n.checked_sub(2).and_then(|i| interleaved.get(i)) {
                    options.push((cost, Choice::Interleaved));
                }
                for &(lanes, cost, choice) in &vector {
                    if n <= lanes {
                        options.push((cost, choice));
                    }
                }
                options
                    .into_iter()
                    .min_by_key(|(cost, _)| *cost)
                    .map_or(Choice::Scalar, |(_, choice)| choice)
            })
            .collect();
        let kernels = Kernels { choice };
        tracing::debug!(choice = ?kernels.choice, "md5 lane kernels chosen");
        kernels
    }

    /// The most streams one round takes.
    fn capacity(&self) -> usize {
        self.choice.len() - 1
    }
}

/// The quickest of [`CALIBRATION_TRIALS`] runs of `f`.
fn quickest(mut f: impl FnMut()) -> Duration {
    (0..CALIBRATION_TRIALS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or(Duration::MAX)
}

/// The quickest call of `kernel` over a round in every lane.
fn time_kernel<const N: usize>(kernel: Kernel<N>, data: &[u8]) -> Duration {
    let mut h = [[0u32; N]; 4];
    let lanes = [data; N];
    quickest(|| {
        // SAFETY: the caller checked the kernel's features; every lane holds
        // ROUND bytes, a multiple of 64.
        unsafe { kernel(&mut h, &lanes) };
        std::hint::black_box(&h);
    })
}

/// The handle streams are opened on.
pub(super) struct Lanes {
    inner: Arc<Inner>,
}

impl Lanes {
    /// A stream whose compression starts from state `h`.
    pub(super) fn open(&self, h: [u32; 4]) -> Stream {
        let mut state = lock(&self.inner.state);
        let slot = Slot {
            h,
            queue: VecDeque::new(),
            at: 0,
            carry: [0; 64],
            carried: 0,
            closing: false,
            busy: false,
            abandoned: false,
        };
        let index = match state.slots.iter().position(Option::is_none) {
            Some(free) => {
                state.slots[free] = Some(slot);
                free
            }
            None => {
                state.slots.push(Some(slot));
                state.slots.len() - 1
            }
        };
        Stream {
            inner: Arc::clone(&self.inner),
            slot: Some(index),
        }
    }
}

/// One stream's bytes on their way through the worker.
pub(super) struct Stream {
    inner: Arc<Inner>,
    /// The stream's slot; `None` once finished.
    slot: Option<usize>,
}

impl Stream {
    /// Queues `bytes` for hashing; waits only while the stream already has
    /// [`QUEUE_MAX`] bytes queued.
    pub(super) fn push(&mut self, bytes: Bytes) {
        let Some(index) = self.slot.filter(|_| !bytes.is_empty()) else {
            return;
        };
        let mut state = lock(&self.inner.state);
        while state.slot(index).queued() >= QUEUE_MAX {
            state = wait(&self.inner.progress, state);
        }
        state.slot(index).queue.push_back(Piece {
            bytes,
            since: Instant::now(),
        });
        drop(state);
        self.inner.arrived.notify_one();
    }

    /// Waits until every byte pushed is hashed; returns the state and the
    /// bytes after the last whole block (fewer than 64).
    pub(super) fn finish(mut self) -> ([u32; 4], Vec<u8>) {
        let index = self
            .slot
            .take()
            .unwrap_or_else(|| unreachable!("only finish and drop take the slot"));
        let mut state = lock(&self.inner.state);
        state.slot(index).closing = true;
        self.inner.arrived.notify_one();
        loop {
            let slot = state.slot(index);
            if slot.queue.is_empty() && !slot.busy {
                break;
            }
            state = wait(&self.inner.progress, state);
        }
        let slot = state.slots[index].take().unwrap_or_else(|| unreachable!());
        (slot.h, slot.carry[..slot.carried].to_vec())
    }
}

impl Drop for Stream {
    /// A stream dropped unfinished gives up its slot (after the round that
    /// holds it, if any).
    fn drop(&mut self) {
        let Some(index) = self.slot.take() else {
            return;
        };
        let mut state = lock(&self.inner.state);
        let slot = state.slot(index);
        if slot.busy {
            slot.abandoned = true;
        } else {
            state.slots[index] = None;
        }
    }
}

/// What the worker and the streams share.
#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    /// Bytes arrived, or a stream is finishing.
    arrived: Condvar,
    /// Pieces left a queue (feeders wait for room, finishers for none).
    progress: Condvar,
}

#[derive(Default)]
struct State {
    slots: Vec<Option<Slot>>,
}

impl State {
    fn slot(&mut self, index: usize) -> &mut Slot {
        self.slots[index]
            .as_mut()
            .unwrap_or_else(|| unreachable!("a live stream's slot is occupied"))
    }
}

/// One stream's place in the worker.
struct Slot {
    /// The compression state after everything hashed so far.
    h: [u32; 4],
    queue: VecDeque<Piece>,
    /// Bytes of the front piece already hashed or carried.
    at: usize,
    /// Bytes short of a whole block, waiting for the next piece.
    carry: [u8; 64],
    carried: usize,
    /// Its owner waits in [`Stream::finish`].
    closing: bool,
    /// In a round outside the lock.
    busy: bool,
    /// Dropped while busy: freed when the round ends.
    abandoned: bool,
}

impl Slot {
    /// Brings the front piece to a block boundary: completes the carried
    /// block from it, or carries its last partial block, dropping pieces
    /// used up on the way. Afterwards the queue is empty or its front has a
    /// whole block at `at`. True if a piece left the queue.
    fn align(&mut self, scratch: &mut Md5) -> bool {
        let mut popped = false;
        while let Some(front) = self.queue.front() {
            let rest = &front.bytes[self.at..];
            if self.carried > 0 {
                let take = (64 - self.carried).min(rest.len());
                self.carry[self.carried..self.carried + take].copy_from_slice(&rest[..take]);
                self.carried += take;
                self.at += take;
                if self.carried == 64 {
                    self.h = compress_scalar(scratch, self.h, &self.carry);
                    self.carried = 0;
                }
            } else if rest.len() < 64 {
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carried = rest.len();
                self.at += rest.len();
            } else {
                break;
            }
            if self.at == front.bytes.len() {
                self.queue.pop_front();
                self.at = 0;
                popped = true;
            }
        }
        popped
    }

    /// Whether the worker should not wait for other streams on its account.
    fn urgent(&self) -> bool {
        self.closing || self.queued() >= QUEUE_MAX
    }

    /// Bytes queued and not yet hashed.
    fn queued(&self) -> usize {
        self.queue.iter().map(|p| p.bytes.len()).sum::<usize>() - self.at
    }
}

/// A piece of a stream and when it was queued.
struct Piece {
    bytes: Bytes,
    since: Instant,
}

/// A stream's part in a round: whole blocks `at..end` of `bytes`.
struct Job {
    slot: usize,
    h: [u32; 4],
    bytes: Bytes,
    at: usize,
    end: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wait<'a, T>(c: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    c.wait(guard).unwrap_or_else(PoisonError::into_inner)
}

/// The worker: picks the streams of each round, runs it outside the lock,
/// and writes the states back.
fn work(inner: &Inner, kernels: &Kernels) {
    let rounds = Choice::ALL.map(
        |choice| metrics::counter!("tessera_md5_lane_rounds_total", "kernel" => choice.label()),
    );
    let streams_hashed = metrics::counter!("tessera_md5_lane_streams_total");
    let filler = vec![0u8; ROUND];
    let mut scratch = Md5::new();
    let mut jobs: Vec<Job> = Vec::with_capacity(kernels.capacity());
    let mut state = lock(&inner.state);
    loop {
        match pick(
            &mut state,
            &mut scratch,
            kernels.capacity(),
            &mut jobs,
            &inner.progress,
        ) {
            Ok(()) => {}
            Err(None) => {
                state = wait(&inner.arrived, state);
                continue;
            }
            Err(Some(timeout)) => {
                state = inner
                    .arrived
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
        }
        drop(state);
        streams_hashed.increment(jobs.len() as u64);
        let choice = kernels.choice[jobs.len()];
        rounds[choice as usize].increment(1);
        match (choice, jobs.len()) {
            (Choice::Interleaved, 2) => {
                kernel_round(interleaved::compress::<2>, &mut jobs, &filler)
            }
            (Choice::Interleaved, 3) => {
                kernel_round(interleaved::compress::<3>, &mut jobs, &filler)
            }
            (Choice::Interleaved, 4) => {
                kernel_round(interleaved::compress::<4>, &mut jobs, &filler)
            }
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            (Choice::Avx2, _) => kernel_round(avx2::compress, &mut jobs, &filler),
            #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
            (Choice::Avx512, _) => kernel_round(avx512::compress, &mut jobs, &filler),
            _ => {
                for job in &mut jobs {
                    let end = (job.at + ROUND).min(job.end);
                    job.h = compress_scalar(&mut scratch, job.h, &job.bytes[job.at..end]);
                    job.at = end;
                }
            }
        }
        state = lock(&inner.state);
        for job in jobs.drain(..) {
            let slot = state.slot(job.slot);
            if slot.abandoned {
                state.slots[job.slot] = None;
                continue;
            }
            slot.h = job.h;
            slot.at = job.at;
            slot.busy = false;
        }
        // No waiter is woken here: a queue only shrinks in `pick`, which
        // wakes them (a busy stream's piece is still queued).
    }
}

/// Chooses the next round's streams into `jobs` (marking them busy), or
/// says how long to wait for more: `Err(None)` until bytes arrive. Aligns
/// every stream on the way and wakes `progress` if a queue shrank.
fn pick(
    state: &mut State,
    scratch: &mut Md5,
    capacity: usize,
    jobs: &mut Vec<Job>,
    progress: &Condvar,
) -> Result<(), Option<Duration>> {
    let now = Instant::now();
    let mut open = 0;
    let mut popped = false;
    // (slot, urgent, queued since) of every stream with a whole block.
    let mut ready: Vec<(usize, bool, Instant)> = Vec::new();
    for (index, slot) in state.slots.iter_mut().enumerate() {
        let Some(slot) = slot else { continue };
        open += 1;
        popped |= slot.align(scratch);
        if let Some(front) = slot.queue.front() {
            ready.push((index, slot.urgent(), front.since));
        }
    }
    if popped {
        // Feeders waiting for room, finishers for an empty queue.
        progress.notify_all();
    }
    let Some(oldest) = ready.iter().map(|r| r.2).min() else {
        return Err(None);
    };
    let deadline = oldest + MAX_WAIT;
    let go = ready.len() >= open.min(capacity) || ready.iter().any(|r| r.1) || now >= deadline;
    if !go {
        return Err(Some(deadline - now));
    }
    ready.sort_by_key(|&(_, urgent, since)| (!urgent, since));
    for &(index, ..) in ready.iter().take(capacity) {
        let slot = state.slot(index);
        slot.busy = true;
        let front = &slot.queue[0].bytes;
        jobs.push(Job {
            slot: index,
            h: slot.h,
            bytes: front.clone(),
            at: slot.at,
            end: slot.at + (front.len() - slot.at) / 64 * 64,
        });
    }
    Ok(())
}

/// Advances every job by the same number of bytes (at most [`ROUND`]) with
/// `kernel` (vector lanes or interleaved streams); lanes without a job hash
/// zeros.
fn kernel_round<const N: usize>(kernel: Kernel<N>, jobs: &mut [Job], filler: &[u8]) {
    let len = jobs.iter().map(|j| j.end - j.at).fold(ROUND, usize::min);
    let mut h = [[0u32; N]; 4];
    let mut data: [&[u8]; N] = [&filler[..len]; N];
    for (lane, job) in jobs.iter().enumerate() {
        for (word, state) in h.iter_mut().zip(job.h) {
            word[lane] = state;
        }
        data[lane] = &job.bytes[job.at..job.at + len];
    }
    // SAFETY: the kernel's features were detected before the worker started;
    // every lane holds `len` bytes, a multiple of 64.
    unsafe { kernel(&mut h, &data) };
    for (lane, job) in jobs.iter_mut().enumerate() {
        job.h = std::array::from_fn(|word| h[word][lane]);
        job.at += len;
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

    #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
    #[test]
    fn avx512_lanes_match_the_scalar_compression() {
        if avx512::supported() {
            matches_the_scalar_compression::<{ avx512::LANES }>(avx512::compress);
        }
    }

    #[test]
    fn the_worker_has_the_kernels_of_this_build() {
        for (at, choice) in Choice::ALL.iter().enumerate() {
            assert_eq!(*choice as usize, at, "{choice:?} is out of order");
        }
        let labels = Choice::ALL.map(Choice::label);
        // A round holds as many streams as the widest kernel takes.
        #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
        {
            assert_eq!(labels, ["scalar", "interleaved", "avx2", "avx512"]);
            assert_eq!(shared().is_some(), avx2::supported());
            if avx2::supported() {
                let widest = if avx512::supported() {
                    avx512::LANES
                } else {
                    avx2::LANES
                };
                assert_eq!(Kernels::measure().capacity(), widest);
            }
        }
        #[cfg(not(all(target_arch = "x86_64", not(tessera_portable))))]
        {
            assert_eq!(labels, ["scalar", "interleaved"]);
            assert!(shared().is_some(), "the worker runs on any CPU");
            assert_eq!(Kernels::measure().capacity(), interleaved::MAX_LANES);
        }
    }

    #[test]
    fn interleaved_lanes_match_the_scalar_compression() {
        matches_the_scalar_compression::<2>(interleaved::compress::<2>);
        matches_the_scalar_compression::<3>(interleaved::compress::<3>);
        matches_the_scalar_compression::<4>(interleaved::compress::<4>);
    }

    #[cfg(all(target_arch = "x86_64", not(tessera_portable)))]
    #[test]
    fn avx2_lanes_match_the_scalar_compression() {
        if avx2::supported() {
            matches_the_scalar_compression::<{ avx2::LANES }>(avx2::compress);
        }
    }
}
