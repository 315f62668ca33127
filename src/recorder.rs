//! [`CountersRecorder`]: a `metrics::Recorder` whose handles point straight at counter cells.
//!
//! `counter!` -> Increment (`increment` adds, `absolute` sets); `gauge!` -> LastValue (`set`, `increment`,
//! `decrement`); `histogram!` -> Statistics, or Interval in milliseconds when the histogram was described with a
//! time unit (seconds, milliseconds, microseconds or nanoseconds; samples are converted to ms). Labels become
//! CloudWatch dimensions; past 29 labels (30 with InstanceID) the rest are cut, counted (`Telemetry::labels_cut`)
//! and warned about at most once a minute.
//! Describe a histogram before its first use for the time unit to apply.
//!
//! Registrations of label-less keys are served from a per-thread cache (`thread_cache`) after the first one;
//! labelled keys are looked up in the store by their precomputed hash on every registration.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::cell::Cell;
use crate::counter::CounterType;
use crate::exporter::Shared;
use crate::sink::limits::MAX_DIMENSIONS;
use crate::thread_cache::{self, Local};

/// Most labels a `metrics` key keeps: CloudWatch allows 30 dimensions and InstanceID is one.
pub const MAX_LABELS: usize = MAX_DIMENSIONS - 1;

/// A `metrics::Recorder` that records into `CachedCounters` (`counters.recorder()`).
///
/// Install it with `metrics::set_global_recorder(counters.recorder())`. A registration for a known key returns a
/// handle to the counter's cell with no allocation: from a per-thread cache for a key without labels, otherwise
/// after one shard read lock and a lookup by the key's precomputed hash.
#[derive(Clone)]
pub struct CountersRecorder {
    shared: Arc<Shared>,
    /// Tells this recorder's entries apart in the per-thread caches (never reused, unlike an address).
    id: u64,
}

/// The handle a registration returns: a thread's cached handle, or the cell itself.
enum Handle {
    Local(Arc<Local>),
    Cell(Arc<Cell>),
}

impl CountersRecorder {
    pub(crate) fn new(shared: Arc<Shared>) -> CountersRecorder {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        CountersRecorder { shared, id: NEXT_ID.fetch_add(1, Relaxed) }
    }

    /// The handle for `key`: this thread's cached one, or the store's cell (cached if the key has no labels).
    /// `kind` is only resolved on a miss; a cached sampled cell serves either sampled kind.
    #[inline]
    fn handle(&self, key: &Key, cached_kind: CounterType, kind: impl FnOnce() -> (CounterType, f64)) -> Handle {
        if let Some(local) = thread_cache::get(self.id, key, cached_kind) {
            return Handle::Local(local);
        }
        let (kind, scale) = kind();
        let cell = self.cell(key, kind, scale);
        // A detached cell (one refused by the store) is not cached: it would never match, and each miss allocates.
        if thread_cache::caches(key) && !cell.is_retired() {
            Handle::Local(thread_cache::put(self.id, key, kind, cell))
        } else {
            Handle::Cell(cell)
        }
    }

    fn cell(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<Cell> {
        if key.labels().len() <= MAX_LABELS {
            return self.shared.store.scaled_cell(key, kind, scale);
        }
        self.cut_labels(key, kind, scale)
    }

    #[cold]
    fn cut_labels(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<Cell> {
        self.shared.labels_cut(key.name(), key.labels().len());
        let cut = Key::from_parts(key.name().to_owned(), key.labels().take(MAX_LABELS).cloned().collect::<Vec<_>>());
        self.shared.store.scaled_cell(&cut, kind, scale)
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            self.shared.store.describe(key.as_str(), unit);
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
        self.describe(key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
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
            let store = &self.shared.store;
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

impl std::fmt::Debug for CountersRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountersRecorder").field("counters", &self.shared.store.len()).finish()
    }
}
