//! The timings of a layer's open spans that carry field values (dimensions or properties, or a `counter` field),
//! kept beside the subscriber's span data like the plain spans' table ([`super::open_spans`]): such a span costs
//! no lookup of the span, no lock of its extensions and no allocation (tracing-subscriber boxes every value a
//! layer keeps in a span's extensions).
//!
//! [`SpansWithFields`] is a fixed table of 2048 entries in buckets of 8, indexed by a hash of the span's id,
//! allocated at the first such span (about 230 KiB). An entry's value sits behind a lock of its own, which only
//! the span's own calls take (its creation and close, a `record` or an ERROR event while it is open): uncontended
//! but for a span recorded on two threads at once. A span whose bucket is full is timed in its extensions.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// Entries in the table, and in one bucket (the entries a span's id may use).
const ENTRIES: usize = 2048;
const BUCKET: usize = 8;
/// An entry being written: reserved, not yet readable.
const WRITING: u64 = u64::MAX;

/// One open span and its value.
#[derive(Debug)]
struct Entry<T> {
    /// The span's id (`Id::into_u64`), 0 when free.
    id: AtomicU64,
    value: Mutex<Option<T>>,
}

impl<T> Default for Entry<T> {
    fn default() -> Self {
        Entry { id: AtomicU64::new(0), value: Mutex::new(None) }
    }
}

impl<T> Entry<T> {
    /// The entry's value, locked (a panic in a caller while it held the lock left a value that is still whole:
    /// every change to it is one assignment or a field's own update).
    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The table of one layer's open spans with field values, by span id (allocated at the first one).
#[derive(Debug)]
pub(crate) struct SpansWithFields<T> {
    entries: OnceLock<Box<[Entry<T>]>>,
}

impl<T> Default for SpansWithFields<T> {
    fn default() -> Self {
        SpansWithFields { entries: OnceLock::new() }
    }
}

impl<T> SpansWithFields<T> {
    /// The entries `id` may use in `entries`.
    fn bucket(entries: &[Entry<T>], id: u64) -> &[Entry<T>] {
        // As the plain spans' table does: spread close ids with a multiplication, take the high bits.
        let first = ((id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize) & (ENTRIES - 1) & !(BUCKET - 1);
        &entries[first..first + BUCKET]
    }

    /// The entry of the open span `id`, if it is in the table (never allocating the table).
    fn find(&self, id: u64) -> Option<&Entry<T>> {
        Self::bucket(self.entries.get()?, id).iter().find(|entry| entry.id.load(Acquire) == id)
    }

    /// Keeps a new span's `value`; gives it back when its bucket is full (the caller keeps it elsewhere).
    pub(crate) fn insert(&self, id: u64, value: T) -> Result<(), T> {
        let entries = self.entries.get_or_init(|| (0..ENTRIES).map(|_| Entry::default()).collect());
        let free = Self::bucket(entries, id).iter().find(|entry| {
            entry.id.load(Relaxed) == 0 && entry.id.compare_exchange(0, WRITING, Acquire, Relaxed).is_ok()
        });
        let Some(entry) = free else { return Err(value) };
        *entry.lock() = Some(value);
        entry.id.store(id, Release);
        Ok(())
    }

    /// Whether the open span `id` is in the table.
    pub(crate) fn holds(&self, id: u64) -> bool {
        self.find(id).is_some()
    }

    /// Changes the value of the open span `id` with `change` (under the entry's lock: `change` must not call
    /// out to code that may act on the same span); `None` if the span is not in the table.
    pub(crate) fn update<R>(&self, id: u64, change: impl FnOnce(&mut T) -> R) -> Option<R> {
        let entry = self.find(id)?;
        let mut value = entry.lock();
        value.as_mut().map(change)
    }

    /// Takes a closing span's value out of the table, if it is there.
    pub(crate) fn take(&self, id: u64) -> Option<T> {
        let entry = self.find(id)?;
        let value = entry.lock().take();
        entry.id.store(0, Release);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_updated_and_taken_once_and_a_full_bucket_gives_the_value_back() {
        let spans = SpansWithFields::<String>::default();
        assert!(spans.take(7).is_none() && spans.update(7, |_| ()).is_none() && spans.entries.get().is_none());
        assert_eq!(spans.insert(7, "a".to_owned()), Ok(()));
        assert!(spans.holds(7) && !spans.holds(8));
        assert_eq!(spans.update(7, |v| v.push('b')), Some(()));
        assert!(spans.update(8, |v| v.push('c')).is_none() && spans.take(8).is_none());
        assert_eq!(spans.take(7).as_deref(), Some("ab"));
        assert!(spans.take(7).is_none() && !spans.holds(7), "taken once");
        let bucket_of = |id: u64| std::ptr::from_ref(&SpansWithFields::bucket(spans.entries.get().unwrap(), id)[0]);
        let same: Vec<u64> = (1..1_000_000).filter(|&id| bucket_of(id) == bucket_of(1)).take(9).collect();
        assert!(same[..8].iter().all(|&id| spans.insert(id, id.to_string()).is_ok()));
        assert_eq!(spans.insert(same[8], "ninth".to_owned()), Err("ninth".to_owned()));
        assert_eq!(spans.take(same[3]), Some(same[3].to_string()));
        assert_eq!(spans.insert(same[8], "ninth".to_owned()), Ok(()));
        assert_eq!(spans.take(same[8]).as_deref(), Some("ninth"));
    }

    #[test]
    fn a_value_survives_a_panic_while_it_was_being_changed() {
        let spans = SpansWithFields::<Vec<u32>>::default();
        spans.insert(5, vec![1]).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spans.update(5, |v| {
                v.push(2);
                panic!("a field's Debug panicked");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(spans.update(5, |v| v.push(3)), Some(()), "the poisoned lock is still used");
        assert_eq!(spans.take(5), Some(vec![1, 2, 3]));
    }
}
