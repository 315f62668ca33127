//! A per-thread cache of the recorder's handles for label-less keys.
//!
//! `metrics` macros register their key on every call, so a registration is the hot path. A hit here costs a
//! thread-local read, a key comparison (pointer-equal for static names) and a reference count on an `Arc` only
//! this thread uses — no shard lock, and no reference count on the cell that other threads share. Entries are
//! checked against the cell's retirement (cleared or replaced counters), so a hit never records into a detached
//! cell. Keys with labels are not cached: cloning their labels would allocate on every miss.

use std::cell::RefCell;
use std::sync::Arc;

use metrics::{CounterFn, GaugeFn, HistogramFn, Key};

use crate::cell::Cell;
use crate::counter::CounterType;

/// Slots per thread (two-way: a key may sit in its slot or the neighbouring one).
const SLOTS: usize = 128;

/// A handle to a cell for one thread.
#[derive(Debug)]
pub(crate) struct Local {
    cell: Arc<Cell>,
}

struct Slot {
    recorder: u64,
    kind: CounterType,
    key: Key,
    local: Arc<Local>,
}

thread_local! {
    static CACHE: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

#[inline]
fn index(key: &Key) -> usize {
    (key.get_hash() >> 7) as usize % SLOTS
}

#[inline]
fn same_str(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

#[inline]
fn matches(slot: &Slot, recorder: u64, key: &Key, kind: CounterType) -> bool {
    slot.recorder == recorder
        && (slot.kind == kind || (kind.is_sampled() && slot.kind.is_sampled()))
        && slot.key.get_hash() == key.get_hash()
        && same_str(slot.key.name(), key.name())
        && slot.key.labels().eq(key.labels())
        && !slot.local.cell.is_retired()
}

/// The cached handle of `recorder` for `key` and `kind` (a sampled kind matches Interval or Statistics, whichever
/// the histogram was resolved to), if this thread has one.
#[inline]
pub(crate) fn get(recorder: u64, key: &Key, kind: CounterType) -> Option<Arc<Local>> {
    CACHE
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let i = index(key);
            [i, i ^ 1]
                .into_iter()
                .find_map(|i| cache.get(i)?.as_ref().filter(|slot| matches(slot, recorder, key, kind)))
                .map(|slot| Arc::clone(&slot.local))
        })
        .ok()
        .flatten()
}

/// Whether `key` is one this cache keeps.
pub(crate) fn caches(key: &Key) -> bool {
    key.labels().len() == 0
}

/// Caches `cell` as the handle of `recorder` for `key` in this thread, and returns the thread's handle. The slot's
/// previous entry moves to the neighbouring slot.
#[cold]
pub(crate) fn put(recorder: u64, key: &Key, kind: CounterType, cell: Arc<Cell>) -> Arc<Local> {
    let local = Arc::new(Local { cell });
    let _ = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return };
        if cache.is_empty() {
            cache.resize_with(SLOTS, || None);
        }
        let i = index(key);
        if cache[i].is_some() {
            cache[i ^ 1] = cache[i].take();
        }
        cache[i] = Some(Slot { recorder, kind, key: key.clone(), local: Arc::clone(&local) });
    });
    local
}

impl CounterFn for Local {
    #[inline]
    fn increment(&self, value: u64) {
        CounterFn::increment(&*self.cell, value);
    }

    #[inline]
    fn absolute(&self, value: u64) {
        CounterFn::absolute(&*self.cell, value);
    }
}

impl GaugeFn for Local {
    #[inline]
    fn increment(&self, value: f64) {
        GaugeFn::increment(&*self.cell, value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        GaugeFn::decrement(&*self.cell, value);
    }

    #[inline]
    fn set(&self, value: f64) {
        GaugeFn::set(&*self.cell, value);
    }
}

impl HistogramFn for Local {
    #[inline]
    fn record(&self, value: f64) {
        HistogramFn::record(&*self.cell, value);
    }
}
