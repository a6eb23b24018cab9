//! A memory budget shared by concurrent object writes (or reads).
//!
//! Every stripe a writer holds (its plain text while it is hashed and
//! encoded, its k + m framed blocks until every store has written them)
//! carries a [`Reservation`] of the budget. A writer reserves before it reads
//! the next stripe of its body, so when the budget is spent, uploads wait
//! (and TCP pushes back on their clients) instead of buffering: the memory a
//! gateway uses for writes is bounded by the budget, whatever the number or
//! size of the uploads. A reader likewise reserves each stripe's blocks
//! before it fetches them and keeps the reservation until the consumer drops
//! the last bytes of the stripe it yielded.
//!
//! The budget also keeps the buffers of finished stripes for the next ones
//! (a reserved buffer goes back when its last view is dropped) in a pool
//! of free buffers, which budgets may share
//! ([`MemoryBudget::sharing_buffers_with`]) and whose owner frees once it
//! has been idle a while ([`MemoryBudget::free_idle_buffers`]).
//!
//! A budget given a name ([`MemoryBudget::named`]) publishes the gauges
//! `tessera_memory_budget_capacity_bytes` and
//! `tessera_memory_budget_reserved_bytes` and the counter
//! `tessera_memory_budget_waits_total` (reservations that had to wait),
//! each labelled `budget="<name>"`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::pool::BufferPool;

/// Accounting unit: reservations are rounded up to whole KiB.
const UNIT: usize = 1024;

/// A budget of bytes shared by writers or readers (cheap to clone: clones share it).
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    units: u32,
    pool: BufferPool,
    /// Label of the budget's metrics; none are published without one.
    name: Option<&'static str>,
}

impl MemoryBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: usize) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, u32::MAX as usize) as u32;
        MemoryBudget {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
            pool: BufferPool::new(units as usize * UNIT),
            name: None,
        }
    }

    /// This budget, publishing its metrics under `budget="<name>"`.
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        metrics::gauge!("tessera_memory_budget_capacity_bytes", "budget" => name)
            .set(self.capacity() as f64);
        // At 0 until the first wait, so a rate over it sees that one too.
        metrics::counter!("tessera_memory_budget_waits_total", "budget" => name).increment(0);
        self.publish_reserved();
        self
    }

    /// This budget, keeping its free buffers in `other`'s pool (which
    /// grows by this budget's size): what one budget's stripes gave back
    /// serves the other's next ones.
    pub fn sharing_buffers_with(mut self, other: &MemoryBudget) -> Self {
        other.pool.grow_limit(self.capacity());
        self.pool = other.pool.clone();
        self
    }

    /// Frees the free buffers kept for this budget (and those sharing them)
    /// if none of them has held a reservation for at least `idle`: the load
    /// is over for now, so the allocator gets them back. Returns the bytes
    /// freed.
    pub fn free_idle_buffers(&self, idle: Duration) -> usize {
        self.pool.free_if_idle(idle)
    }

    /// A reservation of `permit`, counted in the pool until dropped.
    fn reservation(&self, permit: Option<OwnedSemaphorePermit>) -> Reservation {
        self.pool.hold();
        self.publish_reserved();
        Reservation {
            permit,
            budget: self.clone(),
        }
    }

    /// Publishes how much is reserved now (named budgets only).
    fn publish_reserved(&self) {
        if let Some(name) = self.name {
            metrics::gauge!("tessera_memory_budget_reserved_bytes", "budget" => name)
                .set((self.capacity() - self.available()) as f64);
        }
    }

    /// The budget's size in bytes.
    pub fn capacity(&self) -> usize {
        self.units as usize * UNIT
    }

    /// Bytes not reserved right now.
    pub fn available(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    fn units_for(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.units)
    }

    /// Reserves `bytes` if they are free right now.
    pub fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let permit = Arc::clone(&self.permits)
            .try_acquire_many_owned(self.units_for(bytes))
            .ok()?;
        Some(self.reservation(Some(permit)))
    }

    /// Waits until `bytes` can be reserved, then reserves them. A request
    /// larger than the whole budget reserves the whole budget, so it still
    /// proceeds (alone). A caller must not wait here while it holds
    /// reservations whose memory only it can release.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let want = self.units_for(bytes);
        if let Some(name) = self.name
            && self.permits.available_permits() < want as usize
        {
            metrics::counter!("tessera_memory_budget_waits_total", "budget" => name).increment(1);
        }
        // The semaphore is never closed, so this is always Ok.
        let permit = Arc::clone(&self.permits)
            .acquire_many_owned(want)
            .await
            .ok();
        self.reservation(permit)
    }
}

/// Part of a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    budget: MemoryBudget,
}

impl Reservation {
    /// An empty buffer of at least `capacity` bytes, reused if one is free.
    pub(crate) fn buffer(&self, capacity: usize) -> Vec<u8> {
        self.budget.pool.take(capacity)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.budget.publish_reserved();
        self.budget.pool.release();
    }
}

/// A buffer for bytes held under `reservation`: from its pool, or a fresh
/// one when there is no budget.
pub(crate) fn buffer_for(reservation: Option<&Arc<Reservation>>, capacity: usize) -> Vec<u8> {
    match reservation {
        Some(r) => r.buffer(capacity),
        None => Vec::with_capacity(capacity),
    }
}

/// Gives a buffer no longer needed back to `reservation`'s pool (dropped
/// when there is no budget).
pub(crate) fn recycle(reservation: Option<&Arc<Reservation>>, buf: Vec<u8>) {
    if let Some(r) = reservation {
        r.budget.pool.give(buf);
    }
}

/// `buf` as shared bytes that keep `reservation` (and give the buffer back
/// to its pool) until the last view of them is dropped.
pub(crate) fn reserved_bytes(buf: Vec<u8>, reservation: Option<Arc<Reservation>>) -> Bytes {
    match reservation {
        Some(r) => Bytes::from_owner(Reserved::new(buf, r)),
        None => Bytes::from(buf),
    }
}

/// A buffer whose memory stays reserved until the last view of it is
/// dropped; the buffer then goes back to the budget's pool.
struct Reserved {
    bytes: Vec<u8>,
    reservation: Arc<Reservation>,
}

impl Reserved {
    /// `bytes` (ideally from [`Reservation::buffer`]), held under `reservation`.
    fn new(bytes: Vec<u8>, reservation: Arc<Reservation>) -> Self {
        Reserved { bytes, reservation }
    }
}

impl AsRef<[u8]> for Reserved {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.reservation
            .budget
            .pool
            .give(std::mem::take(&mut self.bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_wait_for_memory_to_come_back() {
        let budget = MemoryBudget::new(10 * UNIT);
        let a = budget.reserve(6 * UNIT).await;
        assert_eq!(budget.available(), 4 * UNIT);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(6 * UNIT).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(a);
        let b = waiting.await.unwrap();
        assert_eq!(budget.available(), 4 * UNIT);
        drop(b);
        // Larger than the budget: takes all of it rather than waiting forever.
        let all = budget.reserve(100 * UNIT).await;
        assert_eq!(budget.available(), 0);
        drop(all);
        assert_eq!(budget.available(), budget.capacity());
    }

    #[tokio::test]
    async fn stripe_buffers_are_kept_until_every_sharing_budget_is_idle() {
        let writes = MemoryBudget::new(64 * UNIT);
        let reads = MemoryBudget::new(32 * UNIT).sharing_buffers_with(&writes);
        let w = Arc::new(writes.reserve(8 * UNIT).await);
        let buf = w.buffer(8 * UNIT);
        let address = buf.as_ptr();
        drop(Reserved::new(buf, Arc::clone(&w)));
        drop(w);
        // A read takes the buffer a write gave back.
        let r = Arc::new(reads.reserve(8 * UNIT).await);
        let again = r.buffer(4 * UNIT);
        assert_eq!(again.as_ptr(), address, "the write's buffer is reused");
        assert!(again.is_empty());
        drop(Reserved::new(again, Arc::clone(&r)));
        assert_eq!(
            writes.free_idle_buffers(Duration::ZERO),
            0,
            "a read is reserved"
        );
        drop(r);
        assert!(reads.free_idle_buffers(Duration::ZERO) >= 8 * UNIT);
        assert_eq!(writes.pool.free_bytes(), 0);
    }
}
