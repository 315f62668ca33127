//! The lock-free store: a sharded `DashMap` from `metrics::Key` (name + labels) to a shared [`CounterCell`].
//!
//! Lookups use the key's precomputed hash (the map's hasher passes it through), take one shard read lock and
//! return an `Arc` to the cell; after that, updates touch only the cell's atomics. One counter exists per key
//! whatever its type: asking for a key with another type replaces the counter (pip's rule), and the old cell
//! is retired.
//!
//! The number of live counters is capped ([`Store::set_max_counters`]): past the cap a new key gets a detached
//! cell, whose updates are never published, and the refusal is counted and warned about (once a minute). The
//! crate's own counters (self-telemetry) take no place under the cap.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use metrics::Key;

use crate::model::dump_text::DumpTextWriter;
use crate::model::{Counter, CounterType, MAX_LABELS};
use crate::warn::{shown_name, WarnEvery};
use cell::{CounterCell, Period};

mod buckets;
mod by_parts;
pub(crate) mod cell;
mod expiry;
pub(crate) mod thread_cache;

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

/// One detached cell per type: where updates go that the store refused.
fn detached_cells() -> [Arc<CounterCell>; 5] {
    CounterType::ALL.map(|kind| {
        let cell = Arc::new(CounterCell::new(kind));
        cell.retire();
        cell
    })
}

/// Entries a take reads ahead (see [`read_ahead`]).
const READ_AHEAD: usize = 32;

/// Reads the memory a take and the dump's preparation of a batch of entries will use, before they are taken:
/// their cells (both ends: a cell's 64 bytes usually straddle two cache lines) and their keys' text, with plain
/// loads that do not wait for each other, so that their cache misses overlap. Otherwise each miss is waited for
/// in turn: the atomic swaps of a take (and the iterator's reference counting) wait for every earlier load.
/// With 100,000 counters the store is larger than the processor's caches, and these misses were most of the
/// take's time.
fn read_ahead<'a>(entries: impl Iterator<Item = (&'a Key, &'a Arc<CounterCell>)> + Clone) {
    for (_, cell) in entries.clone() {
        std::hint::black_box((Arc::strong_count(cell), cell.is_reserved()));
    }
    // The bytes themselves (`copied`): a reference to them would only read the key's pointers.
    for (key, _) in entries {
        std::hint::black_box(key.name().as_bytes().first().copied());
        key.labels().for_each(|label| {
            std::hint::black_box(label.value().as_bytes().first().copied());
        });
    }
}

/// Which existing cell serves a registration: one of its type, or (the recorder's) one of either sampled type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// Only a cell of the type asked for; one of another type is replaced (pip's `get` of a name with a new
    /// type).
    Exact,
    /// For a sampled type, a cell of either sampled type (Interval or Statistics); otherwise as `Exact`.
    EitherSampled,
}

impl Fit {
    /// Whether a cell of type `has` serves a registration of type `wants`.
    pub(crate) fn serves(self, has: CounterType, wants: CounterType) -> bool {
        has == wants || (self == Fit::EitherSampled && has.is_sampled() && wants.is_sampled())
    }
}

/// One counter's period, taken by a dump.
#[derive(Debug)]
pub(crate) struct Taken {
    pub(crate) cell: Arc<CounterCell>,
    pub(crate) period: Period,
}

/// What a dump takes out of the store.
#[derive(Debug, Default)]
pub(crate) struct TakeAll {
    /// Every live counter's period, in the store's order (empty periods included: levels and totals need them).
    pub(crate) taken: Vec<Taken>,
    /// The keys of the periods that keep theirs, with the period's index in `taken`: what idle expiry looks at
    /// after the save. Only for an empty period, for an expired cell, and for every counter while some counter
    /// is idle: after a dump in which every counter was updated and none is idle, none, and expiry then reads no
    /// period again. (Cloning every key touches each key's shared text, memory a dump of many counters would
    /// otherwise not read again; kept aside, the keys leave `taken` 80 bytes a period instead of 136.)
    pub(crate) kept: Vec<(usize, Key)>,
    /// Values refused since the previous take (not finite, or beyond CloudWatch's range).
    pub(crate) rejected: u64,
    /// Increments that saturated since the previous take.
    pub(crate) saturated: u64,
}

impl TakeAll {
    /// Adds a period, and its key if it keeps it.
    pub(crate) fn push(&mut self, taken: Taken, key: Option<Key>) {
        if let Some(key) = key {
            self.kept.push((self.taken.len(), key));
        }
        self.taken.push(taken);
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
    /// The crate's own counters among the live ones (self-telemetry): they take no place under the cap.
    reserved: AtomicUsize,
    max: AtomicUsize,
    /// Most label names a counter keeps (see [`MAX_LABELS`]): fewer where the sink adds a dimension of its own.
    max_labels: AtomicUsize,
    /// Whether Interval and Statistics counters also count their samples in buckets (for percentiles).
    percentiles: AtomicBool,
    /// New keys refused because the store was full.
    dropped: AtomicU64,
    /// Whether a key was refused since room last appeared (see [`Store::retirements`]).
    refused_since_room: AtomicBool,
    warn_dropped: WarnEvery,
    /// Metric keys or events whose labels past [`MAX_LABELS`] were cut.
    labels_cut: AtomicU64,
    warn_labels: WarnEvery,
    /// Where updates to refused keys go: one detached cell per type.
    overflow: [Arc<CounterCell>; 5],
    /// Updates refused because the counter's name was empty (counted here, once each)...
    names_empty: AtomicU64,
    /// ...and where they go: detached cells whose refusals are not counted again.
    nameless: [Arc<CounterCell>; 5],
    warn_names: WarnEvery,
    /// Serializes takes, commits and undos with local reads, so that a read sees each period once.
    take_lock: Mutex<()>,
    /// Cells removed from the map that handles may still update: their refused updates are counted at each take,
    /// and a cell is forgotten once nothing else holds it.
    retired: Mutex<Vec<Arc<CounterCell>>>,
    /// Cells retired so far, and times room appeared after refusals: a front-end that caches cells (the layer's
    /// span callsites) looks them up again when this changed.
    retirements: AtomicU64,
    /// Refusals counted by retired cells that were forgotten before a take collected them.
    refused_by_forgotten: AtomicU64,
    /// Counters expired for idleness, and those still held elsewhere.
    expiry: expiry::Expiry,
    /// Properties recorded in the current period, by counter (span and event fields that are context).
    properties: DashMap<Key, Vec<(String, String)>>,
    /// Whether `properties` was ever written (a cheap check at each dump).
    has_properties: AtomicBool,
}

impl Default for Store {
    fn default() -> Self {
        Store::with_max_counters(crate::config::DEFAULT_MAX_COUNTERS)
    }
}

impl Store {
    /// An empty store holding at most `max` counters.
    pub(crate) fn with_max_counters(max: usize) -> Store {
        let overflow = detached_cells();
        Store {
            map: Map::default(),
            units: DashMap::new(),
            described: AtomicBool::new(false),
            live: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
            max_labels: AtomicUsize::new(MAX_LABELS),
            percentiles: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            refused_since_room: AtomicBool::new(false),
            warn_dropped: WarnEvery::default(),
            labels_cut: AtomicU64::new(0),
            warn_labels: WarnEvery::default(),
            overflow,
            names_empty: AtomicU64::new(0),
            nameless: detached_cells(),
            warn_names: WarnEvery::default(),
            take_lock: Mutex::new(()),
            retired: Mutex::new(Vec::new()),
            retirements: AtomicU64::new(0),
            refused_by_forgotten: AtomicU64::new(0),
            expiry: expiry::Expiry::default(),
            properties: DashMap::new(),
            has_properties: AtomicBool::new(false),
        }
    }

    /// Most label names a counter keeps: the dimensions a datum takes, less those the sink adds on its own.
    #[inline]
    pub(crate) fn max_labels(&self) -> usize {
        self.max_labels.load(Relaxed)
    }

    /// Sets [`Store::max_labels`], for keys registered from now on.
    pub(crate) fn set_max_labels(&self, max: usize) {
        self.max_labels.store(max, Relaxed);
    }

    /// Changes the cap on live counters. Counters already there stay, even past a lowered cap.
    pub(crate) fn set_max_counters(&self, max: usize) {
        if self.max.swap(max, Relaxed) < max {
            self.room_made();
        }
    }

    /// Room for more counters appeared (some expired, or the cap was raised): a front-end that kept the detached
    /// cell of a key refused meanwhile looks it up again (see [`Store::retirements`]). A refusal racing the
    /// expiry that makes room is seen at the next room made (its updates are counted as refused until then).
    fn room_made(&self) {
        if self.refused_since_room.swap(false, Relaxed) {
            self.retirements.fetch_add(1, Release);
        }
    }

    /// Whether Interval and Statistics counters count their samples in buckets, for percentiles: new counters
    /// from now on, and those already there from their next sample.
    pub(crate) fn set_percentiles(&self, on: bool) {
        self.percentiles.store(on, Relaxed);
        self.each_cell_with_expired(|cell| cell.set_percentiles(on));
    }

    /// A new cell, counting its samples in buckets if percentiles are on.
    fn new_cell(&self, kind: CounterType, scale: f64) -> Arc<CounterCell> {
        let cell = CounterCell::with_scale(kind, scale);
        if self.percentiles.load(Relaxed) {
            cell.set_percentiles(true);
        }
        Arc::new(cell)
    }

    /// New keys refused so far because the store was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Metric keys or events whose labels were cut so far.
    pub(crate) fn labels_cut(&self) -> u64 {
        self.labels_cut.load(Relaxed)
    }

    /// Counts (and warns about, once a minute) a metric whose `labels` were cut to [`Store::max_labels`] names.
    #[cold]
    pub(crate) fn count_labels_cut(&self, metric: &str, labels: usize) {
        let total = self.labels_cut.fetch_add(1, Relaxed) + 1;
        if self.warn_labels.ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                metric = %shown_name(metric),
                labels,
                cut_so_far = total,
                max_names = self.max_labels(),
                "metric has labels of more names than CloudWatch's 30 dimensions allow (InstanceID included, when published); labels of names past the first max_names are dropped",
            );
        }
    }

    /// The cell for `key`, created if missing and replaced if it has another type.
    #[inline]
    pub(crate) fn cell(&self, key: &Key, kind: CounterType) -> Arc<CounterCell> {
        self.existing(key, kind, Fit::Exact).unwrap_or_else(|| self.insert(key, kind))
    }

    /// The cell for `key` of the recorder and of metric events: as [`Store::cell`], except that an existing cell
    /// of either sampled type serves a sampled `kind` (a `metrics` histogram is Statistics or Interval by whether
    /// a time unit was described, and a description may come after its first samples; a `histogram.` event field
    /// is Statistics: the counter keeps its type, its samples and its holders' handles); a missing cell is
    /// created with a histogram `scale` (see [`CounterCell::with_scale`]).
    #[inline]
    pub(crate) fn scaled_cell(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<CounterCell> {
        self.existing(key, kind, Fit::EitherSampled)
            .unwrap_or_else(|| self.insert_within(key, kind, scale, self.max.load(Relaxed), Fit::EitherSampled))
    }

    /// [`Store::scaled_cell`], with the store's own copy of the key when the cell is the one kept under it. The
    /// map holds retained keys only (`Key::to_retained`: a name and labels that are static or shared), so the
    /// copy does not allocate, and its parts stay where they are for as long as it is held (a cached handle
    /// matches a key's parts by their addresses).
    pub(crate) fn scaled_cell_and_key(
        &self,
        key: &Key,
        kind: CounterType,
        scale: f64,
    ) -> (Arc<CounterCell>, Option<Key>) {
        if let Some(found) = self.map.get(key).filter(|cell| Fit::EitherSampled.serves(cell.kind(), kind)) {
            return (Arc::clone(found.value()), Some(found.key().clone()));
        }
        let cell = self.insert_within(key, kind, scale, self.max.load(Relaxed), Fit::EitherSampled);
        let stored =
            self.map.get(key).filter(|found| Arc::ptr_eq(found.value(), &cell)).map(|found| found.key().clone());
        (cell, stored)
    }

    /// The cell an update for `key` goes into from a holder of `retired`, its cell until a clear or a replacement:
    /// the counter that has the name now if `fit` lets it serve `kind` (created if missing), unless a counter of
    /// another type took the name meanwhile: then `retired` itself, on which the update is refused and counted,
    /// and that counter is left alone.
    #[cold]
    pub(crate) fn cell_after_retire(
        &self,
        key: &Key,
        kind: CounterType,
        fit: Fit,
        retired: &Arc<CounterCell>,
    ) -> Arc<CounterCell> {
        match self.map.get(key).map(|cell| Arc::clone(&cell)) {
            Some(cell) if fit.serves(cell.kind(), kind) => cell,
            Some(_) => Arc::clone(retired),
            None => match fit {
                Fit::Exact => self.cell(key, kind),
                Fit::EitherSampled => self.scaled_cell(key, kind, 1.0),
            },
        }
    }

    /// The cell for one of this crate's own counters (self-telemetry): not subject to the cap, and never
    /// making a dump send on its own.
    pub(crate) fn reserved_cell(&self, key: &Key, kind: CounterType) -> Arc<CounterCell> {
        self.existing(key, kind, Fit::Exact).unwrap_or_else(|| {
            let cell = self.insert_within(key, kind, 1.0, usize::MAX, Fit::Exact);
            if cell.reserve() {
                self.reserved.fetch_add(1, Relaxed);
            }
            cell
        })
    }

    /// Updates refused so far because the counter's name was empty.
    pub(crate) fn names_empty(&self) -> u64 {
        self.names_empty.load(Relaxed)
    }

    /// The cell for `key` if it exists with a type that `fit` lets serve `kind`.
    #[inline]
    fn existing(&self, key: &Key, kind: CounterType, fit: Fit) -> Option<Arc<CounterCell>> {
        self.map.get(key).filter(|cell| fit.serves(cell.kind(), kind)).map(|cell| Arc::clone(&cell))
    }

    #[cold]
    fn insert(&self, key: &Key, kind: CounterType) -> Arc<CounterCell> {
        self.insert_within(key, kind, 1.0, self.max.load(Relaxed), Fit::Exact)
    }

    fn insert_within(&self, key: &Key, kind: CounterType, scale: f64, max: usize, fit: Fit) -> Arc<CounterCell> {
        if key.name().trim().is_empty() {
            return self.refuse_empty_name(kind);
        }
        if let Some(cell) = self.revive(key, kind, fit) {
            return cell;
        }
        if self.counted_live() >= max && !self.map.contains_key(key) {
            return self.refuse(key, kind);
        }
        match self.map.entry(key.to_retained()) {
            Entry::Occupied(entry) if fit.serves(entry.get().kind(), kind) => Arc::clone(entry.get()),
            Entry::Occupied(mut entry) => {
                let cell = self.new_cell(kind, scale);
                let replaced = entry.insert(Arc::clone(&cell));
                if replaced.is_reserved() {
                    self.reserved.fetch_sub(1, Relaxed);
                }
                self.retire(replaced);
                // The replaced counter's properties go with its data.
                self.properties.remove(key);
                cell
            }
            Entry::Vacant(entry) => {
                // Reserve a place first, so racing inserts cannot overshoot the cap.
                if self.live.fetch_add(1, Relaxed).saturating_sub(self.reserved.load(Relaxed)) >= max {
                    self.live.fetch_sub(1, Relaxed);
                    drop(entry);
                    return self.refuse(key, kind);
                }
                Arc::clone(&entry.insert(self.new_cell(kind, scale)))
            }
        }
    }

    #[cold]
    fn refuse(&self, key: &Key, kind: CounterType) -> Arc<CounterCell> {
        let dropped = self.dropped.fetch_add(1, Relaxed) + 1;
        self.refused_since_room.store(true, Relaxed);
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

    /// pip's "Counter name was not set": an update to a counter without a name is refused (into a detached
    /// cell), counted and warned about once a minute, instead of making a counter no dump can publish.
    #[cold]
    fn refuse_empty_name(&self, kind: CounterType) -> Arc<CounterCell> {
        let refused = self.names_empty.fetch_add(1, Relaxed) + 1;
        if self.warn_names.ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                refused_so_far = refused,
                "Counter name was not set: updates to a counter with an empty name are not recorded"
            );
        }
        Arc::clone(&self.nameless[kind as usize])
    }

    /// Takes `cell` out of service: updates through handles still pointing at it are refused and counted.
    fn retire(&self, cell: Arc<CounterCell>) {
        cell.retire();
        self.retirements.fetch_add(1, Release);
        let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        retired.push(cell);
        // Counters that are never dumped (never opened) and cleared again and again: forget, from time to time,
        // the cells nothing holds, keeping their counts for the next take.
        if retired.len() >= 1024 && retired.len().is_power_of_two() {
            self.refused_by_forgotten.fetch_add(forget_unheld(&mut retired), Relaxed);
        }
    }

    /// Updates refused since the last call by cells out of service (and the overflow cells past the cap);
    /// forgets the retired cells nothing else holds any more.
    fn take_refused_by_retired(&self) -> u64 {
        let overflow: u64 = self.overflow.iter().map(|cell| cell.take_rejected()).sum();
        let refused = forget_unheld(&mut self.retired.lock().unwrap_or_else(PoisonError::into_inner));
        overflow + refused + self.refused_by_forgotten.swap(0, Relaxed)
    }

    /// Keeps `properties` for the current period of the counter `key`, whose cell is `cell` (the last value of
    /// each name wins), written over the strings kept for it already: a counter given them at every event
    /// allocates nothing once its period has them (only the first of each period copies the key and the names).
    /// Not for a cell out of service (refused past the cap, cleared, replaced): no dump takes them for it.
    pub(crate) fn set_properties<'a>(
        &self,
        key: &Key,
        cell: &CounterCell,
        properties: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        if cell.is_retired() {
            return;
        }
        if !self.has_properties.load(Relaxed) {
            self.has_properties.store(true, Relaxed);
        }
        let set = |kept: &mut Vec<(String, String)>| {
            properties.into_iter().for_each(|(name, value)| crate::config::set_pair(kept, name, value));
        };
        match self.properties.get_mut(key) {
            Some(mut kept) => set(&mut kept),
            None => set(&mut self.properties.entry(key.clone()).or_default()),
        }
    }

    /// Puts back the properties of the counter `key`'s period when the period goes back (its save failed):
    /// under those recorded since, whose values of a name are newer and win.
    pub(crate) fn restore_properties(&self, key: &Key, properties: Vec<(String, String)>) {
        let mut entry = self.properties.entry(key.clone()).or_default();
        for (name, value) in properties {
            if !entry.iter().any(|(kept, _)| *kept == name) {
                entry.push((name, value));
            }
        }
    }

    /// How many counters have properties kept for their next period.
    #[cfg(test)]
    pub(crate) fn properties_kept(&self) -> usize {
        self.properties.len()
    }

    /// Takes the properties of the counter `key`'s period.
    pub(crate) fn take_properties(&self, key: &Key) -> Vec<(String, String)> {
        if !self.has_properties.load(Relaxed) {
            return Vec::new();
        }
        self.properties.remove(key).map(|(_, p)| p).unwrap_or_default()
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

    /// The type and scale a new histogram named `name` gets (a `metrics` histogram, a `histogram.` event field):
    /// Interval in milliseconds, with the factor from the unit, when it was described with a time unit; else
    /// Statistics, as recorded.
    pub(crate) fn histogram_kind(&self, name: &str) -> (CounterType, f64) {
        let to_millis = |unit| match unit {
            metrics::Unit::Seconds => Some(1000.0),
            metrics::Unit::Milliseconds => Some(1.0),
            metrics::Unit::Microseconds => Some(1e-3),
            metrics::Unit::Nanoseconds => Some(1e-6),
            _ => None,
        };
        match self.has_units().then(|| self.unit(name).and_then(to_millis)).flatten() {
            Some(scale) => (CounterType::Interval, scale),
            None => (CounterType::Statistics, 1.0),
        }
    }

    /// Removes one counter (its cell is retired). Returns whether it existed.
    pub(crate) fn remove(&self, key: &Key) -> bool {
        let removed = self.forget_expired(Some(key), || {
            self.map.remove(key).map(|(_, cell)| {
                self.leaves(&cell);
                self.retire(cell);
            })
        });
        // The counter's properties go with it, not into the period of a counter of the key made later.
        self.properties.remove(key);
        removed.is_some()
    }

    /// Removes every counter.
    pub(crate) fn clear(&self) {
        self.forget_expired(None, || {
            self.map.retain(|_, cell| {
                self.leaves(cell);
                self.retire(Arc::clone(cell));
                false
            });
        });
        self.properties.clear();
    }

    /// Counts `cell` out of the live counters, as it leaves the map.
    fn leaves(&self, cell: &CounterCell) {
        self.live.fetch_sub(1, Relaxed);
        if cell.is_reserved() {
            self.reserved.fetch_sub(1, Relaxed);
        }
    }

    /// The live counters that take a place under the cap: all but the crate's own.
    fn counted_live(&self) -> usize {
        self.live.load(Relaxed).saturating_sub(self.reserved.load(Relaxed))
    }

    /// How many cells were retired so far (cleared, removed, replaced by another type, expired and retired), plus
    /// how many times room appeared for counters after keys were refused past the cap: while it stays the same,
    /// cells a front-end found are still in service, and a key that was refused would be refused still.
    #[inline]
    pub(crate) fn retirements(&self) -> u64 {
        self.retirements.load(Acquire)
    }

    /// The number of live counters.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    fn lock_takes(&self) -> MutexGuard<'_, ()> {
        self.take_lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One counter as it is now (pip's local view), if it exists.
    pub(crate) fn get(&self, key: &Key) -> Option<Counter> {
        let _takes = self.lock_takes();
        self.map.get(key).map(|cell| {
            let mut counter = self.counter_for(key, &cell);
            cell.fill_live(&mut counter);
            counter
        })
    }

    /// Every counter as it is now, empty ones included (pip's `get_all`).
    pub(crate) fn read_all(&self) -> Vec<Counter> {
        let _takes = self.lock_takes();
        self.map
            .iter()
            .map(|entry| {
                let mut counter = self.counter_for(entry.key(), entry.value());
                entry.value().fill_live(&mut counter);
                counter
            })
            .collect()
    }

    /// Takes every counter's period (see [`CounterCell::take`]); the dump then commits or undoes each.
    #[cfg(test)]
    pub(crate) fn take_all(&self) -> TakeAll {
        self.take_all_with(|_, _, _| ())
    }

    /// [`Store::take_all`], with every period's key.
    #[cfg(test)]
    pub(crate) fn take_all_keyed(&self) -> (TakeAll, Vec<Key>) {
        let mut keys = Vec::new();
        let all = self.take_all_with(|_, key, _| keys.push(key.clone()));
        (all, keys)
    }

    /// [`Store::take_all`], handing each period to `each` (with its index in [`TakeAll::taken`] and its key) as
    /// soon as it is taken, while its cell is still in the processor's cache: a dump of many counters then reads
    /// each cell's memory once, not once to take and again to prepare.
    pub(crate) fn take_all_with(&self, mut each: impl FnMut(usize, &Key, &Taken)) -> TakeAll {
        let _takes = self.lock_takes();
        let mut all = TakeAll { taken: Vec::with_capacity(self.live.load(Relaxed)), ..TakeAll::default() };
        all.rejected = self.take_refused_by_retired();
        let keep_every_key = self.has_idle_counters();
        if keep_every_key {
            all.kept.reserve(all.taken.capacity());
        }
        self.absorb_expired(&mut all);
        self.take_live(&mut all, keep_every_key, &mut each);
        let live = all.taken.len();
        self.take_expired(&mut all);
        for (i, key) in all.kept.iter().filter(|(i, _)| *i >= live) {
            each(*i, key, &all.taken[*i]);
        }
        all
    }

    /// The live counters' part of [`Store::take_all_with`]. The map's iterator holds a shard's read lock until it
    /// is dropped, even once it is exhausted, so it lives only in here: what comes after the take writes to the
    /// map (expired cells that were updated go back into it).
    fn take_live(&self, all: &mut TakeAll, keep_every_key: bool, each: &mut impl FnMut(usize, &Key, &Taken)) {
        let mut entries = self.map.iter();
        let mut ahead = Vec::with_capacity(READ_AHEAD);
        loop {
            ahead.extend(entries.by_ref().take(READ_AHEAD));
            if ahead.is_empty() {
                return;
            }
            read_ahead(ahead.iter().map(|entry| (entry.key(), entry.value())));
            for entry in ahead.drain(..) {
                let cell = entry.value();
                all.rejected += cell.take_rejected();
                all.saturated += cell.take_saturated();
                let period = cell.take();
                let key = (keep_every_key || cell.is_empty_period(&period)).then(|| entry.key().clone());
                let taken = Taken { cell: Arc::clone(cell), period };
                each(all.taken.len(), entry.key(), &taken);
                all.push(taken, key);
            }
        }
    }

    /// Settles a dump's periods in one pass: the `i`th was saved (committed) unless `failed(i)` (put back, to go
    /// out with the next take).
    pub(crate) fn settle(&self, taken: &[Taken], failed: impl Fn(usize) -> bool) {
        let _takes = self.lock_takes();
        for (i, t) in taken.iter().enumerate() {
            if failed(i) {
                t.cell.undo(&t.period);
            } else {
                t.cell.commit(&t.period);
            }
        }
    }

    /// Resets every counter's local totals (pip's reset after `reset_timeout`).
    pub(crate) fn reset_totals(&self) {
        let _takes = self.lock_takes();
        // Those kept aside after their expiry too: one going back into the store brings back its totals.
        self.each_cell_with_expired(CounterCell::reset_totals);
    }

    /// An empty counter for `key` and `cell`: name, dimensions, described unit.
    #[inline]
    pub(crate) fn counter_for(&self, key: &Key, cell: &CounterCell) -> Counter {
        let mut counter = Counter::from_key(key.clone(), cell.kind());
        self.give_unit(&mut counter, key.name());
        counter
    }

    /// Pushes onto `records` a dump's empty record for `key` and `cell`, its name and dimensions written into the
    /// dump's `text`, and returns it, given its unit in place: a record is 200 bytes, and one returned, given its
    /// unit and then pushed was copied once more.
    #[inline]
    pub(crate) fn push_record<'r>(
        &self,
        records: &'r mut Vec<Counter>,
        key: &Key,
        cell: &CounterCell,
        text: &mut DumpTextWriter,
    ) -> &'r mut Counter {
        match text.write(key) {
            Some(at) => records.push(Counter::dumped(at, cell.kind())),
            None => records.push(Counter::from_key(key.clone(), cell.kind())),
        }
        let record = records.last_mut().expect("just pushed");
        self.give_unit(record, key.name());
        record
    }

    /// Gives `counter` the unit described for `name`, if any.
    fn give_unit(&self, counter: &mut Counter, name: &str) {
        if self.has_units() {
            counter.unit = self.unit(name);
        }
    }
}

/// Takes the refusals counted by the retired cells and forgets those nothing else holds. Who holds a cell is read
/// before its count: a holder that refuses an update and lets go after this read keeps the cell for the next
/// call, which counts it.
fn forget_unheld(retired: &mut Vec<Arc<CounterCell>>) -> u64 {
    let mut refused = 0;
    retired.retain(|cell| {
        let held = Arc::strong_count(cell) > 1;
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        refused += cell.take_rejected();
        held
    });
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_go_with_their_counter_when_it_is_cleared_removed_or_replaced() {
        for how in ["cleared", "removed", "replaced by another type"] {
            let store = Store::default();
            let jobs = Key::from_static_name("jobs");
            let cell = store.cell(&jobs, CounterType::Statistics);
            cell.sample(1.0);
            store.set_properties(&jobs, &cell, [("user", "a")]);
            match how {
                "cleared" => store.clear(),
                "removed" => assert!(store.remove(&jobs)),
                _ => drop(store.cell(&jobs, CounterType::Increment)),
            }
            store.cell(&jobs, CounterType::Increment).add(1);
            assert_eq!(store.take_properties(&jobs), [], "{how}: none for the counter of the key made later");
        }
    }

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
        let (all, keys) = store.take_all_keyed();
        let taken: Vec<_> = keys.iter().zip(&all.taken).filter(|(_, t)| !t.cell.is_empty_period(&t.period)).collect();
        assert_eq!(taken.len(), 1);
        let (key, t) = taken[0];
        assert_eq!(store.counter_for(key, &t.cell).dimensions(), vec![("k".to_owned(), "v".to_owned())]);
        let kept: Vec<&Key> = all
            .kept
            .iter()
            .map(|(i, key)| {
                assert_eq!(key, &keys[*i], "the key of its period");
                key
            })
            .collect();
        assert!(!kept.contains(&key), "an active period taken while no counter is idle keeps no key");
        assert_eq!(kept.len(), all.taken.len() - 1, "every empty period keeps its key");
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
    fn an_empty_name_is_refused_counted_and_never_stored() {
        let store = Store::default();
        for name in ["", "  "] {
            let cell = store.cell(&Key::from_name(name.to_owned()), CounterType::Increment);
            cell.add(1);
            assert!(cell.is_retired(), "a detached cell");
        }
        assert_eq!((store.len(), store.names_empty()), (0, 2));
    }

    #[test]
    fn cleared_counters_are_forgotten_when_nothing_holds_them_and_their_refusals_still_counted() {
        let store = Store::default();
        let held = store.cell(&Key::from_static_name("held"), CounterType::Increment);
        store.clear();
        held.add(1); // refused: counted
        for i in 0..5000 {
            store.cell(&Key::from_name(format!("c{i}")), CounterType::Increment);
            store.clear();
        }
        let retired = store.retired.lock().unwrap().len();
        assert!(retired < 2048, "{retired} retired cells kept although nothing holds them");
        assert_eq!(store.take_all().rejected, 1);
        drop(held);
        assert!(store.take_all().taken.is_empty());
        assert_eq!(store.retired.lock().unwrap().len(), 0, "forgotten at the take once nothing holds them");
    }

    #[test]
    fn a_local_read_during_an_unfinished_save_sees_each_value_once() {
        let store = Store::default();
        let key = Key::from_static_name("calls");
        store.cell(&key, CounterType::Increment).add(2);
        let all = store.take_all();
        assert_eq!(store.get(&key).and_then(|c| c.count), Some(2), "while the save is in flight");
        store.settle(&all.taken, |_| true);
        assert_eq!(store.get(&key).and_then(|c| c.count), Some(2), "after it failed");
        let again = store.take_all();
        store.settle(&again.taken, |_| false);
        assert_eq!(store.get(&key).and_then(|c| c.count), Some(2), "after it succeeded");
    }

    #[test]
    fn a_local_read_during_an_unfinished_save_sees_an_absolute_value_once() {
        let store = Store::default();
        let key = Key::from_static_name("bytes");
        store.cell(&key, CounterType::Increment).set_absolute(10);
        let all = store.take_all();
        assert_eq!(store.get(&key).and_then(|c| c.count), Some(10), "while the save is in flight");
        store.settle(&all.taken, |_| true);
        assert_eq!(store.get(&key).and_then(|c| c.count), Some(10), "after it failed");
        let again = store.take_all();
        assert_eq!(store.get(&key).and_then(|c| c.count), Some(10), "while the next save is in flight");
        store.settle(&again.taken, |_| false);
        store.cell(&key, CounterType::Increment).set_absolute(15);
        assert_eq!(store.get(&key).and_then(|c| c.count), Some(15), "after it succeeded, with 5 more");
    }
}
