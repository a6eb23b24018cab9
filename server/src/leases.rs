//! Read leases: which segments this gateway is reading right now.
//!
//! GC deletes the shards of a replaced or deleted version only once no read
//! holds a lease on them, and only after a grace period counted from when it
//! first saw the deletion queued. The lease covers a read from its first
//! stripe to its last, however slowly the client takes it; the grace period
//! covers the moment between a read finding the version in the metadata and
//! taking its lease. Leases live in the gateway's memory: with one gateway
//! that is every read there is.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The segments being read, by storage object id, with a count of readers.
#[derive(Debug, Clone, Default)]
pub struct ReadLeases {
    held: Arc<Mutex<HashMap<[u8; 16], usize>>>,
}

impl ReadLeases {
    /// No leases.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leases the segments of `objects` until the returned guard is dropped.
    pub fn take(&self, objects: impl IntoIterator<Item = [u8; 16]>) -> Lease {
        let mut objects: Vec<[u8; 16]> = objects.into_iter().collect();
        objects.sort_unstable();
        objects.dedup();
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        for id in &objects {
            *held.entry(*id).or_insert(0) += 1;
        }
        Lease {
            leases: self.clone(),
            objects,
        }
    }

    /// Whether any read holds a lease on `object`.
    pub fn is_held(&self, object: &[u8; 16]) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(object)
    }
}

/// A read's hold on its segments; dropping it gives them back.
#[derive(Debug)]
pub struct Lease {
    leases: ReadLeases,
    objects: Vec<[u8; 16]>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut held = self.leases.held.lock().unwrap_or_else(|e| e.into_inner());
        for id in &self.objects {
            if let Some(count) = held.get_mut(id) {
                *count -= 1;
                if *count == 0 {
                    held.remove(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_until_its_last_reader_is_done() {
        let leases = ReadLeases::new();
        let a = leases.take([[1; 16], [2; 16], [1; 16]]);
        let b = leases.take([[1; 16]]);
        assert!(leases.is_held(&[1; 16]) && leases.is_held(&[2; 16]));
        drop(a);
        assert!(leases.is_held(&[1; 16]));
        assert!(!leases.is_held(&[2; 16]));
        drop(b);
        assert!(!leases.is_held(&[1; 16]));
    }
}
