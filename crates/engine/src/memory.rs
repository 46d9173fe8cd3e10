//! A shared budget for the memory the engine needs beyond an instance's input and output.
//!
//! Most instances need none: tags are scrubbed in place and pixel data passes through. Two
//! cases allocate in proportion to the data: a deflated data set is inflated, and a pixel clean
//! holds the decoded frames, their detection images and the re-encoded pixel data at once. A
//! service that de-identifies many instances at a time shares one [`MemoryBudget`] between its
//! engines ([`crate::Engine::with_memory_budget`]) so that this memory is bounded as a whole:
//! an instance waits until its share is free, and one that needs more than the whole budget is
//! refused with a reason rather than risking an out-of-memory kill.
//!
//! Waiting cannot deadlock: an instance takes its share once, all at once, and holds nothing
//! else of the budget while it waits.
//!
//! ```
//! use dicom_deid_engine::memory::MemoryBudget;
//! use std::sync::Arc;
//! let budget = Arc::new(MemoryBudget::new(1 << 20));
//! let share = budget.take(4096).unwrap();
//! assert_eq!(budget.in_use(), 4096);
//! drop(share);
//! assert_eq!(budget.in_use(), 0);
//! assert!(budget.take(2 << 20).is_err());
//! ```

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};

/// A number of bytes shared by the instances being de-identified at once.
pub struct MemoryBudget {
    total: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total", &self.total)
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// More than the whole budget was asked for: the instance can never be processed within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// Bytes asked for.
    pub needed: u64,
    /// The whole budget.
    pub total: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "needs {} bytes of working memory, more than the whole budget of {} bytes",
            self.needed, self.total
        )
    }
}

impl std::error::Error for TooLarge {}

impl MemoryBudget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> MemoryBudget {
        MemoryBudget {
            total,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes taken now.
    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `bytes`, blocking the calling thread until they are free; they are given back
    /// when the [`Share`] is dropped. Fails at once when `bytes` exceeds the whole budget.
    pub fn take(self: &Arc<Self>, bytes: u64) -> Result<Share, TooLarge> {
        if bytes > self.total {
            return Err(TooLarge {
                needed: bytes,
                total: self.total,
            });
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.total {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
        Ok(Share {
            budget: self.clone(),
            bytes,
        })
    }
}

/// Bytes taken from a [`MemoryBudget`], given back on drop.
#[derive(Debug)]
pub struct Share {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Share {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.bytes;
        drop(used);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_share_waits_until_enough_is_given_back() {
        let budget = Arc::new(MemoryBudget::new(100));
        let first = budget.take(70).unwrap();
        let taken = Arc::new(AtomicBool::new(false));
        let waiter = {
            let budget = budget.clone();
            let taken = taken.clone();
            std::thread::spawn(move || {
                let share = budget.take(50).unwrap();
                taken.store(true, Ordering::SeqCst);
                share.bytes()
            })
        };
        // The waiter cannot have its 50 while 70 of 100 are held. (Not a timing assertion: if
        // it had them, `taken` would be true whatever the timing.)
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!taken.load(Ordering::SeqCst));
        assert_eq!(budget.in_use(), 70);
        drop(first);
        assert_eq!(waiter.join().unwrap(), 50);
        assert!(taken.load(Ordering::SeqCst));
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn more_than_the_whole_budget_is_refused_at_once() {
        let budget = Arc::new(MemoryBudget::new(100));
        let held = budget.take(100).unwrap();
        let err = budget.take(101).unwrap_err();
        assert_eq!(
            err,
            TooLarge {
                needed: 101,
                total: 100
            }
        );
        assert!(err.to_string().contains("101 bytes"));
        drop(held);
        assert_eq!(budget.in_use(), 0);
    }
}
