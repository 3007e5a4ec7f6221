//! A process-wide cap on request-body bytes held in memory. Per-request
//! limits bound one upload; this bounds all of them together, so a
//! thousand clients each sending a large (but individually allowed) body
//! get 503s instead of exhausting memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct BodyBudget {
    used: AtomicUsize,
    cap: usize,
}

/// Bytes held on behalf of one request; given back when dropped. Growing
/// takes `&self` so decoders deep in a call chain can share one.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: AtomicUsize,
}

impl BodyBudget {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(BodyBudget {
            used: AtomicUsize::new(0),
            cap,
        })
    }

    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation to grow as the body arrives.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: AtomicUsize::new(0),
        }
    }

    fn take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.cap)
            })
            .is_ok()
    }
}

impl Reservation {
    /// Holds `n` more bytes; false (and nothing held) when the budget is
    /// spent.
    pub fn grow(&self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        if self.budget.take(n) {
            self.bytes.fetch_add(n, Ordering::AcqRel);
            true
        } else {
            false
        }
    }

    /// Grows to at least `total` bytes.
    pub fn ensure(&self, total: usize) -> bool {
        self.grow(total.saturating_sub(self.bytes()))
    }

    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_cap_and_give_back_on_drop() {
        let budget = BodyBudget::new(100);
        let a = budget.reservation();
        assert!(a.grow(60));
        let b = budget.reservation();
        assert!(!b.grow(41), "over the cap");
        assert_eq!(b.bytes(), 0, "a refused grow holds nothing");
        assert!(b.grow(40));
        assert_eq!(budget.in_use(), 100);
        assert!(a.ensure(50), "already holds more");
        drop(a);
        assert_eq!(budget.in_use(), 40);
        assert!(b.ensure(100));
        drop(b);
        assert_eq!(budget.in_use(), 0);
        assert!(budget.reservation().grow(0));
    }
}
