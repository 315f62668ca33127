//! [`CountersRecorder`]: a `metrics::Recorder` whose handles point straight at counter cells.
//!
//! `counter!` -> Increment (`increment` adds, `absolute` sets); `gauge!` -> LastValue (`set`, `increment`,
//! `decrement`); `histogram!` -> Statistics, or Interval in milliseconds when the histogram was described with a
//! time unit (seconds, milliseconds, microseconds or nanoseconds; samples are converted to ms). Labels become
//! CloudWatch dimensions (a name repeated counts once: the last value is published); labels of names past the
//! first 29 (30 dimensions with InstanceID; 30 without it) are cut, counted (`Telemetry::labels_cut`) and
//! warned about at most once a minute.
//! Units: a described unit is published with every dump after the description, mapped to the CloudWatch unit that
//! means exactly the same (none for nanoseconds and the binary Kibibytes and up). A histogram must be described
//! before it is first registered (its first `histogram!` call on any thread) for a time unit to turn it into
//! milliseconds; described later (even before its first sample, through a handle registered earlier), it keeps
//! the values as recorded and is published with the described unit from the next dump on.
//!
//! Registrations are served from a per-thread cache of handles after the first one, with or without labels;
//! a cached handle holds the store's copy of its key and matches a registration's name and labels by their
//! addresses where they are the same strings (`&'static str` names and label keys), else by their bytes. A
//! miss (a key this thread has not used lately) is a store lookup by the key's precomputed hash; the handle the
//! cache evicts for it is rewritten in place, so a warm thread's misses do not allocate either. The cache grows,
//! up to 4096 handles a thread, while one in sixteen of its lookups misses; at its largest, once half its
//! lookups miss (a thread cycling through more keys than it holds) and until fewer than one in sixteen do, it
//! caches one miss in eight and serves the others straight from the store.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder};
use metrics::{SharedString, Unit};

use super::cached_cell::CachedCell;
use super::Owner;
use crate::model::{labels_kept, CounterType};
use crate::store::cell::CounterCell;
use crate::store::thread_cache::{self, Slots};
use crate::store::Store;

/// A `metrics::Recorder` that records into counters (`counters.recorder()`).
///
/// Install it with `metrics::set_global_recorder(counters.recorder())`. A registration for a known key returns a
/// handle to the counter's cell with no allocation: from a per-thread cache, or after one shard read lock and a
/// lookup by the key's precomputed hash.
#[derive(Clone)]
pub struct CountersRecorder {
    store: Arc<Store>,
    _owner: Owner,
    /// Tells this recorder's entries apart in the per-thread caches (never reused, unlike an address).
    id: u64,
}

thread_local! {
    /// Up to 4096 handles per thread: a few thousand distinct keys round-robin before misses start again.
    static CACHE: RefCell<Slots<Arc<CachedCell>>> = const { RefCell::new(Slots::new(128, 4096)) };
}

/// The handle a registration returns: a thread's cached handle, or a cell served uncached (one the store refused,
/// a key whose labels were cut, or any key while this thread's cache thrashes).
enum Handle {
    Local(Arc<CachedCell>),
    Cell(Arc<CounterCell>),
}

impl CountersRecorder {
    pub(crate) fn new(store: Arc<Store>, owner: Owner) -> CountersRecorder {
        CountersRecorder { store, _owner: owner, id: thread_cache::next_owner() }
    }

    /// The handle for `key`: this thread's cached one, or the store's cell, cached in this thread when the cache
    /// admits it (rewriting the handle the cache evicts, so that a miss does not allocate once the cache is
    /// warm). `kind` is only resolved on a miss; a cached sampled cell serves either sampled kind.
    #[inline]
    fn handle(&self, key: &Key, cached_kind: CounterType, kind: impl FnOnce() -> (CounterType, f64)) -> Handle {
        let hash = key.get_hash();
        if let Some(local) = thread_cache::lookup(&CACHE, self.id, hash, |c| c.serves_key(cached_kind, key), Arc::clone)
        {
            return Handle::Local(local);
        }
        self.miss(key, hash, kind)
    }

    fn miss(&self, key: &Key, hash: u64, kind: impl FnOnce() -> (CounterType, f64)) -> Handle {
        let (kind, scale) = kind();
        if let Some(kept) = labels_kept(key.labels().as_slice(), self.store.max_labels(), metrics::Label::key) {
            // A key whose labels are cut is counted at each registration: not cached.
            return Handle::Cell(self.cut_labels(key, &kept, kind, scale));
        }
        if !thread_cache::admits(&CACHE, hash) {
            // A thread cycling through more keys than its cache holds: served from the store, uncached.
            return Handle::Cell(self.store.scaled_cell(key, kind, scale));
        }
        let (cell, pinned) = self.store.scaled_cell_and_key(key, kind, scale);
        if cell.is_retired() {
            // A detached cell (refused by the store) would never match: not cached.
            return Handle::Cell(cell);
        }
        Handle::Local(thread_cache::insert(&CACHE, self.id, hash, |evicted| {
            CachedCell::reuse_for_key(evicted, cell, kind, key, pinned)
        }))
    }

    #[cold]
    fn cut_labels(&self, key: &Key, kept: &[bool], kind: CounterType, scale: f64) -> Arc<CounterCell> {
        self.store.count_labels_cut(key.name(), key.labels().len());
        let labels = key.labels().zip(kept).filter(|&(_, &kept)| kept).map(|(label, _)| label.clone());
        let cut = Key::from_parts(key.name().to_owned(), labels.collect::<Vec<_>>());
        self.store.scaled_cell(&cut, kind, scale)
    }

    fn describe(&self, key: &KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            self.store.describe(key.as_str(), unit);
        }
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
        match self.handle(key, CounterType::Statistics, || self.store.histogram_kind(key.name())) {
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
