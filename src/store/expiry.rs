//! Idle expiry: a counter not updated for `options.idle_timeout` leaves the store (its cap slot and memory are
//! freed) and is published no more, until it is used again.
//!
//! Only activity counts: Increment, Interval and Statistics counters expire after `idle_timeout` without an
//! update. LastValue and Timestamp counters hold a level (a gauge set once still holds its value), so they never
//! expire; `remove` takes one out.
//!
//! A handle (or a per-thread cache) may still point at an expired counter. Its cell is kept aside while anything
//! holds it: an update through it lands in the cell, whose period the next take publishes, and the cell goes
//! back into the store if its key is free; a new registration of the key gets the same cell back. So a kept
//! handle always records into the live counter, and nothing is lost or counted twice. A cell nothing holds any
//! more is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use metrics::Key;

use super::cell::CounterCell;
use super::{Store, Taken};
use crate::model::CounterType;

/// The expiry state of a store.
#[derive(Debug, Default)]
pub(crate) struct Expiry {
    /// Expired cells that something may still update, by key.
    expired: Mutex<HashMap<Key, Arc<CounterCell>>>,
    /// `expired.len()`, readable without the lock (checked on the insertion of every new key).
    expired_len: AtomicUsize,
    /// Since when each idle counter has been idle (dump path only).
    idle_since: Mutex<HashMap<Key, Instant>>,
    /// Counters expired so far.
    total: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether counters of this type expire when idle.
fn expires(kind: CounterType) -> bool {
    !matches!(kind, CounterType::LastValue | CounterType::Timestamp)
}

impl Store {
    /// Counters expired for idleness so far.
    pub(crate) fn expired(&self) -> u64 {
        self.expiry.total.load(Relaxed)
    }

    /// Expires the counters whose periods in `taken` were empty and that have now been idle for `timeout`
    /// (zero: never). Called after a dump, with the periods it took.
    pub(crate) fn expire_idle(&self, taken: &[Taken], timeout: Duration, now: Instant) {
        if timeout.is_zero() {
            return;
        }
        let mut idle_since = lock(&self.expiry.idle_since);
        let mut due = Vec::new();
        for t in taken.iter().filter(|t| expires(t.cell.kind()) && !t.cell.is_reserved()) {
            if t.cell.is_empty_period(&t.period) {
                let since = *idle_since.entry(t.key.clone()).or_insert(now);
                if now.saturating_duration_since(since) >= timeout {
                    due.push(t);
                }
            } else if !idle_since.is_empty() {
                idle_since.remove(&t.key);
            }
        }
        for t in due {
            idle_since.remove(&t.key);
            self.expire(&t.key, &t.cell);
        }
    }

    /// Takes `cell` out of the map (if it is still `key`'s) and keeps it aside while anything else holds it.
    fn expire(&self, key: &Key, cell: &Arc<CounterCell>) {
        let mut expired = lock(&self.expiry.expired);
        let Some((key, cell)) = self.map.remove_if(key, |_, current| Arc::ptr_eq(current, cell)) else { return };
        self.live.fetch_sub(1, Relaxed);
        self.expiry.total.fetch_add(1, Relaxed);
        // Held by the `Taken` that named it and this one: a third holder is a handle or a cache.
        if Arc::strong_count(&cell) > 2 {
            expired.insert(key, cell);
            self.expiry.expired_len.store(expired.len(), Relaxed);
        }
    }

    /// For a new registration of `key`: its expired cell, put back into the store, if it has one of `kind`.
    pub(super) fn revive(&self, key: &Key, kind: CounterType) -> Option<Arc<CounterCell>> {
        if self.expiry.expired_len.load(Relaxed) == 0 {
            return None;
        }
        let mut expired = lock(&self.expiry.expired);
        let cell = expired.remove(key)?;
        self.expiry.expired_len.store(expired.len(), Relaxed);
        if cell.kind() != kind {
            return None; // another type takes the name: the old cell is dropped with its last holder
        }
        Some(self.put_back(key, cell))
    }

    /// `cell` back into the map under `key`; if a newer cell took the key meanwhile, that one.
    fn put_back(&self, key: &Key, cell: Arc<CounterCell>) -> Arc<CounterCell> {
        match self.map.entry(key.clone()) {
            Entry::Occupied(entry) => Arc::clone(entry.get()),
            Entry::Vacant(entry) => {
                self.live.fetch_add(1, Relaxed);
                Arc::clone(&entry.insert(cell))
            }
        }
    }

    /// At a take: every expired cell's period goes into `taken` (empty unless a kept handle updated it); the
    /// cells updated since go back into the store, and those nothing holds any more are dropped.
    pub(super) fn take_expired(&self, taken: &mut Vec<Taken>) {
        if self.expiry.expired_len.load(Relaxed) == 0 {
            return;
        }
        let mut expired = lock(&self.expiry.expired);
        expired.retain(|key, cell| {
            if Arc::strong_count(cell) == 1 {
                return false;
            }
            let period = cell.take();
            let active = !cell.is_empty_period(&period);
            taken.push(Taken { key: key.clone(), cell: Arc::clone(cell), period });
            if !active {
                return true;
            }
            match self.map.entry(key.clone()) {
                Entry::Vacant(entry) => {
                    self.live.fetch_add(1, Relaxed);
                    entry.insert(Arc::clone(cell));
                    false
                }
                // A newer cell has the key (a registration raced the expiry): this one stays aside, and what its
                // holders record is still taken at every dump.
                Entry::Occupied(entry) => !Arc::ptr_eq(entry.get(), cell),
            }
        });
        self.expiry.expired_len.store(expired.len(), Relaxed);
    }
}
