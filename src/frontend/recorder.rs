//! [`CountersRecorder`]: a `metrics::Recorder` whose handles point straight at counter cells.
//!
//! `counter!` -> Increment (`increment` adds, `absolute` sets); `gauge!` -> LastValue (`set`, `increment`,
//! `decrement`); `histogram!` -> Statistics, or Interval in milliseconds when the histogram was described with a
//! time unit (seconds, milliseconds, microseconds or nanoseconds; samples are converted to ms). Labels become
//! CloudWatch dimensions; past 29 labels (30 with InstanceID) the rest are cut, counted (`Telemetry::labels_cut`)
//! and warned about at most once a minute.
//! Units: a described unit is published with every dump after the description, mapped to the CloudWatch unit that
//! means exactly the same (none for nanoseconds and the binary Kibibytes and up). A histogram must be described
//! before its first sample for a time unit to turn it into milliseconds; described later, it keeps the values
//! as recorded and is published with the described unit from the next dump on.
//!
//! Registrations of label-less keys are served from a per-thread cache after the first one; labelled keys are
//! looked up in the store by their precomputed hash on every registration.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder};
use metrics::{SharedString, Unit};

use super::Owner;
use crate::model::{CounterType, MAX_LABELS};
use crate::store::cell::CounterCell;
use crate::store::thread_cache::{self, Slot, Slots};
use crate::store::Store;

/// A `metrics::Recorder` that records into counters (`counters.recorder()`).
///
/// Install it with `metrics::set_global_recorder(counters.recorder())`. A registration for a known key returns a
/// handle to the counter's cell with no allocation: from a per-thread cache for a key without labels, otherwise
/// after one shard read lock and a lookup by the key's precomputed hash.
#[derive(Clone)]
pub struct CountersRecorder {
    store: Arc<Store>,
    _owner: Owner,
    /// Tells this recorder's entries apart in the per-thread caches (never reused, unlike an address).
    id: u64,
}

/// A handle to a cell for one thread: what the per-thread cache hands out, so that a hit touches no reference
/// count that other threads share.
#[derive(Debug)]
struct Local {
    cell: Arc<CounterCell>,
}

/// The key and type a cached handle was registered with.
#[derive(Debug)]
struct Cached {
    kind: CounterType,
    key: Key,
}

thread_local! {
    static CACHE: RefCell<Slots<Cached, Arc<Local>>> = const { RefCell::new(Slots::new(128)) };
}

/// The handle a registration returns: a thread's cached handle, or the cell itself.
enum Handle {
    Local(Arc<Local>),
    Cell(Arc<CounterCell>),
}

#[inline]
fn same_str(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

impl CountersRecorder {
    pub(crate) fn new(store: Arc<Store>, owner: Owner) -> CountersRecorder {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        CountersRecorder { store, _owner: owner, id: NEXT_ID.fetch_add(1, Relaxed) }
    }

    /// The handle for `key`: this thread's cached one, or the store's cell (cached if the key has no labels).
    /// `kind` is only resolved on a miss; a cached sampled cell serves either sampled kind.
    #[inline]
    fn handle(&self, key: &Key, cached_kind: CounterType, kind: impl FnOnce() -> (CounterType, f64)) -> Handle {
        let hit = thread_cache::lookup(&CACHE, key.get_hash(), |slot| {
            slot.owner == self.id
                && (slot.key.kind == cached_kind || (cached_kind.is_sampled() && slot.key.kind.is_sampled()))
                && slot.key.key.get_hash() == key.get_hash()
                && same_str(slot.key.key.name(), key.name())
                && slot.key.key.labels().eq(key.labels())
                && !slot.value.cell.is_retired()
        });
        if let Some(local) = hit {
            return Handle::Local(local);
        }
        let (kind, scale) = kind();
        let cell = self.cell(key, kind, scale);
        // Keys with labels are not cached (cloning their labels would allocate on every miss), nor is a detached
        // cell (one refused by the store): it would never match.
        if key.labels().len() == 0 && !cell.is_retired() {
            let local = Arc::new(Local { cell });
            let slot = Slot { owner: self.id, key: Cached { kind, key: key.clone() }, value: Arc::clone(&local) };
            thread_cache::insert(&CACHE, key.get_hash(), slot);
            Handle::Local(local)
        } else {
            Handle::Cell(cell)
        }
    }

    fn cell(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<CounterCell> {
        if key.labels().len() <= MAX_LABELS {
            return self.store.scaled_cell(key, kind, scale);
        }
        self.cut_labels(key, kind, scale)
    }

    #[cold]
    fn cut_labels(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<CounterCell> {
        self.store.count_labels_cut(key.name(), key.labels().len());
        let cut = Key::from_parts(key.name().to_owned(), key.labels().take(MAX_LABELS).cloned().collect::<Vec<_>>());
        self.store.scaled_cell(&cut, kind, scale)
    }

    fn describe(&self, key: &KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            self.store.describe(key.as_str(), unit);
        }
    }
}

/// For a histogram described with a time unit: the factor to milliseconds.
fn to_millis(unit: Unit) -> Option<f64> {
    match unit {
        Unit::Seconds => Some(1000.0),
        Unit::Milliseconds => Some(1.0),
        Unit::Microseconds => Some(1e-3),
        Unit::Nanoseconds => Some(1e-6),
        _ => None,
    }
}

impl Recorder for CountersRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(&key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(&key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(&key, unit);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        match self.handle(key, CounterType::Increment, || (CounterType::Increment, 1.0)) {
            Handle::Local(local) => Counter::from_arc(local),
            Handle::Cell(cell) => Counter::from_arc(cell),
        }
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        match self.handle(key, CounterType::LastValue, || (CounterType::LastValue, 1.0)) {
            Handle::Local(local) => Gauge::from_arc(local),
            Handle::Cell(cell) => Gauge::from_arc(cell),
        }
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        let kind = || {
            let store = &self.store;
            match store.has_units().then(|| store.unit(key.name()).and_then(to_millis)).flatten() {
                Some(scale) => (CounterType::Interval, scale),
                None => (CounterType::Statistics, 1.0),
            }
        };
        match self.handle(key, CounterType::Statistics, kind) {
            Handle::Local(local) => Histogram::from_arc(local),
            Handle::Cell(cell) => Histogram::from_arc(cell),
        }
    }
}

impl fmt::Debug for CountersRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountersRecorder")
            .field("counters", &self.store.len())
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl CounterFn for CounterCell {
    #[inline]
    fn increment(&self, value: u64) {
        self.add_unsigned(value);
    }

    #[inline]
    fn absolute(&self, value: u64) {
        self.set_absolute(value);
    }
}

impl GaugeFn for CounterCell {
    #[inline]
    fn increment(&self, value: f64) {
        self.add_last(value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.add_last(-value);
    }

    #[inline]
    fn set(&self, value: f64) {
        self.set_last(value);
    }
}

impl HistogramFn for CounterCell {
    #[inline]
    fn record(&self, value: f64) {
        self.sample_scaled(value);
    }
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
