//! Free buffers kept for the next stripes, shared by the memory budgets of
//! one process.
//!
//! Buffers of a MiB or more allocated and freed on many threads leave
//! glibc's arenas holding about three times the live memory, and a buffer
//! the allocator hands out anew costs a page fault per 4 KiB the first time
//! it is written. So a stripe's buffers go back to the pool when the last
//! view of them is dropped, and the next stripes (of any budget sharing the
//! pool: a write's records serve a read's blocks) take them from there.
//! Requests are rounded up to whole [`GRANULE`]s, so a block's plain text,
//! its framed record and a read of it all fit the same buffers. The pool
//! keeps at most its limit (the sum of its budgets' sizes), so memory stays
//! bounded by the budgets; its owner frees it all once no reservation has
//! been held for a while ([`BufferPool::free_if_idle`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Buffer sizes are whole multiples of this.
const GRANULE: usize = 64 * 1024;

/// Free buffers and the reservations that may come back for them (cheap to
/// clone: clones share them).
#[derive(Clone, Debug)]
pub(crate) struct BufferPool {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    free: Vec<Vec<u8>>,
    /// Most bytes of free buffers kept.
    limit: usize,
    /// Reservations held now, across every budget sharing the pool.
    active: usize,
    /// Since when `active` has been zero.
    idle_since: Option<Instant>,
}

impl BufferPool {
    /// A pool keeping at most `limit` bytes of free buffers.
    pub(crate) fn new(limit: usize) -> Self {
        BufferPool {
            state: Arc::new(Mutex::new(State {
                free: Vec::new(),
                limit,
                active: 0,
                idle_since: Some(Instant::now()),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Raises the limit by `bytes` (one more budget shares the pool).
    pub(crate) fn grow_limit(&self, bytes: usize) {
        self.lock().limit += bytes;
    }

    /// Counts a reservation that may take buffers.
    pub(crate) fn hold(&self) {
        let mut state = self.lock();
        state.active += 1;
        state.idle_since = None;
    }

    /// Counts a reservation given back.
    pub(crate) fn release(&self) {
        let mut state = self.lock();
        state.active = state.active.saturating_sub(1);
        if state.active == 0 {
            state.idle_since = Some(Instant::now());
        }
    }

    /// The smallest free buffer of at least `capacity` bytes (emptied), or
    /// a new one.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        let capacity = capacity.next_multiple_of(GRANULE);
        let reused = {
            let mut state = self.lock();
            let fitting = state
                .free
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= capacity)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(at, _)| at);
            fitting.map(|at| state.free.swap_remove(at))
        };
        match reused {
            Some(mut buf) => {
                buf.clear();
                buf
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buf` for reuse while the free buffers stay under the limit,
    /// making room by freeing smaller ones (a larger buffer serves more
    /// requests).
    pub(crate) fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut state = self.lock();
            if buf.capacity() > state.limit {
                return;
            }
            let mut held: usize = state.free.iter().map(Vec::capacity).sum();
            while held + buf.capacity() > state.limit {
                let Some((at, smallest)) = state
                    .free
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, b)| b.capacity())
                else {
                    break;
                };
                if smallest.capacity() >= buf.capacity() {
                    break;
                }
                held -= smallest.capacity();
                evicted.push(state.free.swap_remove(at));
            }
            if held + buf.capacity() <= state.limit {
                state.free.push(buf);
            }
        }
        // Freed outside the lock.
        drop(evicted);
    }

    /// Frees every free buffer if no reservation has been held for at least
    /// `idle`; returns the bytes freed.
    pub(crate) fn free_if_idle(&self, idle: Duration) -> usize {
        let freed = {
            let mut state = self.lock();
            match state.idle_since {
                Some(since) if since.elapsed() >= idle => std::mem::take(&mut state.free),
                _ => return 0,
            }
        };
        freed.iter().map(Vec::capacity).sum()
    }

    /// Bytes of free buffers kept now.
    #[cfg(test)]
    pub(crate) fn free_bytes(&self) -> usize {
        self.lock().free.iter().map(Vec::capacity).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_capacities(pool: &BufferPool) -> Vec<usize> {
        let mut caps: Vec<usize> = pool.lock().free.iter().map(Vec::capacity).collect();
        caps.sort();
        caps
    }

    #[test]
    fn requests_of_about_one_size_share_buffers() {
        let pool = BufferPool::new(4 * GRANULE);
        let block = pool.take(GRANULE - 100);
        assert_eq!(block.capacity(), GRANULE);
        let address = block.as_ptr();
        pool.give(block);
        let record = pool.take(GRANULE - 10);
        assert_eq!(record.as_ptr(), address, "the free buffer is reused");
        assert!(record.is_empty());
    }

    #[test]
    fn a_full_pool_frees_smaller_buffers_for_a_larger_one() {
        let pool = BufferPool::new(16 * GRANULE);
        pool.give(Vec::with_capacity(6 * GRANULE));
        pool.give(Vec::with_capacity(6 * GRANULE));
        pool.give(Vec::with_capacity(8 * GRANULE));
        assert_eq!(free_capacities(&pool), [6 * GRANULE, 8 * GRANULE]);
        // Nothing smaller to free: the newcomer is the one dropped.
        pool.give(Vec::with_capacity(4 * GRANULE));
        assert_eq!(free_capacities(&pool), [6 * GRANULE, 8 * GRANULE]);
        // Larger than the limit: never kept.
        pool.give(Vec::with_capacity(17 * GRANULE));
        assert_eq!(free_capacities(&pool), [6 * GRANULE, 8 * GRANULE]);
        // The smallest buffer that fits.
        assert_eq!(pool.take(5 * GRANULE).capacity(), 6 * GRANULE);
    }

    #[test]
    fn buffers_are_freed_only_once_the_pool_has_been_idle() {
        let pool = BufferPool::new(16 * GRANULE);
        pool.hold();
        pool.give(Vec::with_capacity(GRANULE));
        assert_eq!(
            pool.free_if_idle(Duration::ZERO),
            0,
            "a reservation is held"
        );
        pool.release();
        assert_eq!(
            pool.free_if_idle(Duration::from_secs(3600)),
            0,
            "idle too briefly"
        );
        assert_eq!(pool.free_if_idle(Duration::ZERO), GRANULE);
        assert_eq!(pool.free_bytes(), 0);
    }
}
