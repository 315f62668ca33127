//! The lock-free store: a sharded `DashMap` from `metrics::Key` (name + labels) to a shared [`CounterCell`].
//!
//! Lookups use the key's precomputed hash (the map's hasher passes it through), take one shard read lock and
//! return an `Arc` to the cell; after that, updates touch only the cell's atomics. One counter exists per key
//! whatever its type: asking for a key with another type replaces the counter (pip's rule), and the old cell
//! is retired.
//!
//! The number of live counters is capped ([`Store::set_max_counters`]): past the cap a new key gets a detached
//! cell, whose updates are never published, and the refusal is counted and warned about (once a minute).

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use metrics::Key;

pub(crate) mod cell;
pub(crate) mod thread_cache;

use crate::model::{Counter, CounterType, MAX_LABELS};
use crate::warn::{shown_name, WarnEvery};
use cell::{CounterCell, Taken};

/// A hasher for `metrics::Key`, whose `Hash` writes only its precomputed 64-bit hash.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Key`; kept correct for any other input.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

type Map = DashMap<Key, Arc<CounterCell>, BuildHasherDefault<KeyHasher>>;

/// What a dump reads out of the store.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// The non-empty counters, in the store's order.
    pub(crate) counters: Vec<Counter>,
    /// In reset mode, what was taken out of each cell, to merge back if the save fails.
    pub(crate) taken: Vec<(Arc<CounterCell>, Taken)>,
    /// Whether any counter was updated since the previous snapshot.
    pub(crate) dirty: bool,
    /// Non-finite values refused since the previous snapshot.
    pub(crate) rejected: u64,
}

impl Snapshot {
    /// Whether the snapshot is worth a save: it holds counters, and something changed since the last snapshot or
    /// `force` (a previous save failed, or a reset is due) says to send anyway.
    pub(crate) fn needs_save(&self, force: bool) -> bool {
        !self.counters.is_empty() && (self.dirty || force)
    }

    /// Puts taken contents back into their cells (the save failed): those at the `failed` indices of
    /// `counters`, or all of them when `failed` is `None`.
    pub(crate) fn merge_back(&self, failed: Option<&[usize]>) {
        match failed {
            None => self.taken.iter().for_each(|(cell, taken)| cell.merge(taken)),
            Some(failed) => {
                failed.iter().filter_map(|&i| self.taken.get(i)).for_each(|(cell, taken)| cell.merge(taken));
            }
        }
    }
}

/// All counters of one `CachedCounters`.
#[derive(Debug)]
pub(crate) struct Store {
    map: Map,
    units: DashMap<String, metrics::Unit>,
    /// Whether `units` was ever written: read on every histogram registration, where `units.is_empty()` would
    /// lock every shard.
    described: AtomicBool,
    /// Live counters (kept beside the map: `DashMap::len` locks every shard).
    live: AtomicUsize,
    max: AtomicUsize,
    /// New keys refused because the store was full.
    dropped: AtomicU64,
    warn_dropped: WarnEvery,
    /// Metric keys or events whose labels past [`MAX_LABELS`] were cut.
    labels_cut: AtomicU64,
    warn_labels: WarnEvery,
    /// Where updates to refused keys go: one detached cell per type.
    overflow: [Arc<CounterCell>; 5],
}

impl Default for Store {
    fn default() -> Self {
        Store::with_max_counters(crate::config::DEFAULT_MAX_COUNTERS)
    }
}

impl Store {
    /// An empty store holding at most `max` counters.
    pub(crate) fn with_max_counters(max: usize) -> Store {
        let overflow = CounterType::ALL.map(|kind| {
            let cell = Arc::new(CounterCell::new(kind));
            cell.retire();
            cell
        });
        Store {
            map: Map::default(),
            units: DashMap::new(),
            described: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
            dropped: AtomicU64::new(0),
            warn_dropped: WarnEvery::default(),
            labels_cut: AtomicU64::new(0),
            warn_labels: WarnEvery::default(),
            overflow,
        }
    }

    /// Changes the cap on live counters. Counters already there stay, even past a lowered cap.
    pub(crate) fn set_max_counters(&self, max: usize) {
        self.max.store(max, Relaxed);
    }

    /// New keys refused so far because the store was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Metric keys or events whose labels were cut so far.
    pub(crate) fn labels_cut(&self) -> u64 {
        self.labels_cut.load(Relaxed)
    }

    /// Counts (and warns about, once a minute) a metric whose `labels` were cut to [`MAX_LABELS`].
    #[cold]
    pub(crate) fn count_labels_cut(&self, metric: &str, labels: usize) {
        let total = self.labels_cut.fetch_add(1, Relaxed) + 1;
        if self.warn_labels.ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                metric = %shown_name(metric),
                labels,
                cut_so_far = total,
                "metric has more labels than CloudWatch's 30 dimensions allow (InstanceID included); labels after the first {MAX_LABELS} are dropped",
            );
        }
    }

    /// The cell for `key`, created if missing and replaced if it has another type.
    #[inline]
    pub(crate) fn cell(&self, key: &Key, kind: CounterType) -> Arc<CounterCell> {
        self.scaled_cell(key, kind, 1.0)
    }

    /// [`Store::cell`], creating a missing cell with a histogram `scale` (see [`CounterCell::with_scale`]).
    #[inline]
    pub(crate) fn scaled_cell(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<CounterCell> {
        self.existing(key, kind).unwrap_or_else(|| self.insert(key, kind, scale))
    }

    /// The cell for one of this crate's own counters (self-telemetry): not subject to the cap.
    pub(crate) fn reserved_cell(&self, key: &Key, kind: CounterType) -> Arc<CounterCell> {
        self.existing(key, kind).unwrap_or_else(|| self.insert_within(key, kind, 1.0, usize::MAX))
    }

    /// The cell for `key` if it exists with type `kind`.
    #[inline]
    fn existing(&self, key: &Key, kind: CounterType) -> Option<Arc<CounterCell>> {
        self.map.get(key).filter(|cell| cell.kind() == kind).map(|cell| Arc::clone(&cell))
    }

    #[cold]
    fn insert(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<CounterCell> {
        self.insert_within(key, kind, scale, self.max.load(Relaxed))
    }

    fn insert_within(&self, key: &Key, kind: CounterType, scale: f64, max: usize) -> Arc<CounterCell> {
        if self.live.load(Relaxed) >= max && !self.map.contains_key(key) {
            return self.refuse(key, kind);
        }
        match self.map.entry(key.to_retained()) {
            Entry::Occupied(entry) if entry.get().kind() == kind => Arc::clone(entry.get()),
            Entry::Occupied(mut entry) => {
                let cell = Arc::new(CounterCell::with_scale(kind, scale));
                entry.insert(Arc::clone(&cell)).retire();
                cell
            }
            Entry::Vacant(entry) => {
                // Reserve a place first, so racing inserts cannot overshoot the cap.
                if self.live.fetch_add(1, Relaxed) >= max {
                    self.live.fetch_sub(1, Relaxed);
                    drop(entry);
                    return self.refuse(key, kind);
                }
                Arc::clone(&entry.insert(Arc::new(CounterCell::with_scale(kind, scale))))
            }
        }
    }

    #[cold]
    fn refuse(&self, key: &Key, kind: CounterType) -> Arc<CounterCell> {
        let dropped = self.dropped.fetch_add(1, Relaxed) + 1;
        if self.warn_dropped.ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                metric = %shown_name(key.name()),
                max_counters = self.max.load(Relaxed),
                dropped_so_far = dropped,
                "the counters are full (options.max_counters); new keys are dropped and their updates not published"
            );
        }
        Arc::clone(&self.overflow[kind as usize])
    }

    /// Records the unit a `metrics` description gave a name.
    pub(crate) fn describe(&self, name: &str, unit: metrics::Unit) {
        self.units.insert(name.to_owned(), unit);
        self.described.store(true, Relaxed);
    }

    /// Whether any unit was described (a cheap check before a lookup by name).
    pub(crate) fn has_units(&self) -> bool {
        self.described.load(Relaxed)
    }

    /// The unit described for `name`, if any.
    pub(crate) fn unit(&self, name: &str) -> Option<metrics::Unit> {
        self.units.get(name).map(|u| *u)
    }

    /// Removes one counter (its cell is retired). Returns whether it existed.
    pub(crate) fn remove(&self, key: &Key) -> bool {
        let removed = self.map.remove(key).inspect(|(_, cell)| cell.retire()).is_some();
        if removed {
            self.live.fetch_sub(1, Relaxed);
        }
        removed
    }

    /// Removes every counter.
    pub(crate) fn clear(&self) {
        self.map.retain(|_, cell| {
            cell.retire();
            self.live.fetch_sub(1, Relaxed);
            false
        });
    }

    /// The number of live counters.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// One counter as it is now, if it exists.
    pub(crate) fn get(&self, key: &Key) -> Option<Counter> {
        self.map.get(key).map(|cell| self.to_counter(key, &cell, &cell.read()))
    }

    /// Every counter as it is now, empty ones included (pip's `get_all`).
    pub(crate) fn read_all(&self) -> Vec<Counter> {
        self.map.iter().map(|e| self.to_counter(e.key(), e.value(), &e.value().read())).collect()
    }

    /// Reads (cumulative mode) or takes (`take = true`, reset mode) every non-empty counter.
    pub(crate) fn snapshot(&self, take: bool) -> Snapshot {
        let mut snap = Snapshot::default();
        for entry in &self.map {
            let (key, cell) = (entry.key(), entry.value());
            snap.dirty |= cell.take_dirty();
            snap.rejected += cell.take_rejected();
            let contents = if take { cell.take() } else { cell.read() };
            if take && contents.is_torn(cell.kind()) {
                cell.merge(&contents);
                continue;
            }
            if contents.is_empty(cell.kind()) {
                continue;
            }
            snap.counters.push(self.to_counter(key, cell, &contents));
            if take {
                snap.taken.push((Arc::clone(cell), contents));
            }
        }
        snap
    }
}

impl Store {
    fn to_counter(&self, key: &Key, cell: &CounterCell, contents: &Taken) -> Counter {
        let mut counter = Counter::new(key.name(), cell.kind());
        counter.dimensions = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
        if self.has_units() {
            counter.unit = self.unit(key.name());
        }
        contents.fill(&mut counter);
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_and_type_share_one_cell() {
        let store = Store::default();
        let a = store.cell(&Key::from_static_name("a"), CounterType::Increment);
        let b = store.cell(&Key::from_name(String::from("a")), CounterType::Increment);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn labels_make_distinct_counters() {
        let store = Store::default();
        let plain = store.cell(&Key::from_static_name("a"), CounterType::Increment);
        let labelled = store.cell(&Key::from_parts("a", vec![metrics::Label::new("k", "v")]), CounterType::Increment);
        assert!(!Arc::ptr_eq(&plain, &labelled));
        labelled.add(2);
        let snap = store.snapshot(false);
        assert_eq!(snap.counters.len(), 1);
        assert_eq!(snap.counters[0].dimensions, vec![("k".to_owned(), "v".to_owned())]);
    }

    #[test]
    fn another_type_replaces_and_retires_the_old_cell() {
        let store = Store::default();
        let key = Key::from_static_name("x");
        let old = store.cell(&key, CounterType::Increment);
        old.add(5);
        let new = store.cell(&key, CounterType::LastValue);
        assert!(old.is_retired());
        assert!(!new.is_retired());
        assert_eq!(store.len(), 1);
        assert_eq!(store.get(&key).map(|c| c.counter_type), Some(CounterType::LastValue));
    }

    #[test]
    fn torn_take_goes_back_into_the_cell() {
        let store = Store::default();
        let cell = store.cell(&Key::from_static_name("s"), CounterType::Statistics);
        // Simulate a sample whose count arrived but whose sum/min/max were taken by an earlier dump.
        cell.merge(&{
            let probe = CounterCell::new(CounterType::Statistics);
            probe.sample(1.0);
            let mut t = probe.take();
            t.clear_values_for_test();
            t
        });
        let snap = store.snapshot(true);
        assert!(snap.counters.is_empty(), "a torn take is not published");
        cell.sample(4.0);
        let snap = store.snapshot(true);
        assert_eq!(snap.counters[0].count, Some(2), "the merged count is published with the next sample");
    }
}
