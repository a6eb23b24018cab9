//! A memory budget shared by concurrent object writes.
//!
//! Every stripe a writer holds (its plain text while it is hashed and
//! encoded, its k + m framed blocks until every store has written them)
//! carries a [`Reservation`] of the budget. A writer reserves before it reads
//! the next stripe of its body, so when the budget is spent, uploads wait
//! (and TCP pushes back on their clients) instead of buffering: the memory a
//! gateway uses for writes is bounded by the budget, whatever the number or
//! size of the uploads.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Accounting unit: reservations are rounded up to whole KiB.
const UNIT: usize = 1024;

/// A budget of bytes shared by writers (cheap to clone: clones share it).
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    units: u32,
}

impl MemoryBudget {
    /// A budget of `bytes` (at least 1 KiB).
    pub fn new(bytes: usize) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, u32::MAX as usize) as u32;
        MemoryBudget {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
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
        Some(Reservation {
            _permit: Some(permit),
        })
    }

    /// Waits until `bytes` can be reserved, then reserves them. A request
    /// larger than the whole budget reserves the whole budget, so it still
    /// proceeds (alone). A caller must not wait here while it holds
    /// reservations whose memory only it can release.
    pub async fn reserve(&self, bytes: usize) -> Reservation {
        let want = self.units_for(bytes);
        Reservation {
            // The semaphore is never closed, so this is always Ok.
            _permit: Arc::clone(&self.permits)
                .acquire_many_owned(want)
                .await
                .ok(),
        }
    }
}

/// Part of a [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: Option<OwnedSemaphorePermit>,
}

/// Bytes whose memory stays reserved until the last view of them is dropped.
pub(crate) struct Reserved {
    pub bytes: Vec<u8>,
    pub _reservation: Arc<Reservation>,
}

impl AsRef<[u8]> for Reserved {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
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
}
