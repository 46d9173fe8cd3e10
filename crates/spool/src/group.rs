//! Group commit: callers that made a change (an append to a file, a rename in a directory) share
//! the `fsync`s that make their changes durable instead of each paying for its own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::SpoolError;

/// A caller makes its change, takes a ticket with [`GroupSync::ticket`], then calls
/// [`GroupSync::sync_after`] with it, which returns once a sync that *started* after the ticket
/// was taken has succeeded: one sync covers every change made before it began. At most one
/// sync runs at a time; callers arriving meanwhile sleep until it ends (the lock is not held
/// during the sync), then find their ticket covered or run the next sync for all who arrived
/// since. Every waiter is woken after each sync, so none waits behind more than two syncs.
pub(crate) struct GroupSync {
    /// What is synced, for errors.
    path: PathBuf,
    tickets: AtomicU64,
    state: Mutex<State>,
    ended: Condvar,
    /// After a failed sync, every later call fails too (for files: the page cache cannot be
    /// trusted after a failed `fsync`). Otherwise the next caller runs a new sync.
    sticky: bool,
    syncs: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Every ticket up to this one is durable.
    durable: u64,
    syncing: bool,
    failed: bool,
}

impl GroupSync {
    pub(crate) fn new(path: PathBuf, sticky: bool) -> GroupSync {
        GroupSync {
            path,
            tickets: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            ended: Condvar::new(),
            sticky,
            syncs: AtomicU64::new(0),
        }
    }

    /// Takes a ticket for a change already made.
    pub(crate) fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once the change of `ticket` is durable, running `sync` when no sync already
    /// running or finished covers it. An `Err` means "not known durable".
    pub(crate) fn sync_after(
        &self,
        ticket: u64,
        sync: impl Fn() -> Result<(), SpoolError>,
    ) -> Result<(), SpoolError> {
        let mut st = self.lock();
        loop {
            if st.failed {
                return Err(SpoolError::Io {
                    path: self.path.clone(),
                    source: std::io::Error::other(
                        "an earlier sync failed; reopen the spool once the disk is sound",
                    ),
                });
            }
            if st.durable >= ticket {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                // Every ticket up to `upto` was taken after its change, before this sync starts.
                let upto = self.tickets.load(Ordering::SeqCst);
                drop(st);
                self.syncs.fetch_add(1, Ordering::Relaxed);
                let result = sync();
                st = self.lock();
                st.syncing = false;
                match &result {
                    Ok(()) => st.durable = st.durable.max(upto),
                    Err(_) => st.failed = self.sticky,
                }
                self.ended.notify_all();
                result?;
                continue;
            }
            st = self.ended.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The highest ticket known durable.
    #[cfg(test)]
    pub(crate) fn durable(&self) -> u64 {
        self.lock().durable
    }

    /// Syncs run so far.
    #[cfg(test)]
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}
