//! Idle expiry: a counter not updated for `options.idle_timeout` leaves the store (its cap slot and memory are
//! freed) and is published no more, until it is used again.
//!
//! Only activity counts: Increment, Interval and Statistics counters expire after `idle_timeout` without an
//! update. LastValue and Timestamp counters hold a level (a gauge set once still holds its value), and an
//! Increment fed with `absolute` holds its baseline, so they never expire; `remove` takes one out.
//!
//! A handle (or a per-thread cache) may still point at an expired counter. Its cell is kept aside while anything
//! holds it: an update through it lands in the cell, whose period the next take publishes, and the cell goes
//! back into the store; a new registration of the key gets the same cell back. So a kept handle always records
//! into the live counter, and nothing is lost or counted twice; values it refuses are counted at the next take.
//! A registration that raced an expiry may have made a newer cell for the key: what the kept cell records then
//! moves into the newer cell at each take (one record a key in a dump), and a key may have several cells aside
//! (the newer one expired in turn while the older was held): each is taken. Interval and Statistics cells take
//! each other's samples there, as a live sampled cell serves a histogram of either type, when their samples are
//! in the same unit. A kept cell whose key now has a live cell of another type (or unit) is retired, as a
//! replaced counter is. A cell with nothing in it that nothing holds any more is dropped.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering::Acquire, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dashmap::mapref::entry::Entry;
use metrics::Key;

use super::cell::{CounterCell, Period};
use super::{Fit, Store, TakeAll, Taken};
use crate::model::CounterType;

/// The expiry state of a store.
#[derive(Debug, Default)]
pub(crate) struct Expiry {
    /// Expired cells that something may still update, by key: more than one where a newer cell of the key
    /// expired while an older one was still held.
    expired: Mutex<HashMap<Key, Vec<Arc<CounterCell>>>>,
    /// `expired.len()`, readable without the lock (checked on the insertion of every new key).
    expired_len: AtomicUsize,
    /// Since when each idle counter has been idle (dump path only).
    idle_since: Mutex<HashMap<Key, Instant>>,
    /// `idle_since.len()`, readable without the lock: while it is 0, a take keeps only the keys of empty periods.
    idle_len: AtomicUsize,
    /// Counters expired so far.
    total: AtomicU64,
    /// Run by [`Store::expire`] between its two checks (tests only: an update and a drop in that window).
    #[cfg(test)]
    between_checks: tests::Hook,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// Counters expired for idleness so far.
    pub(crate) fn expired(&self) -> u64 {
        self.expiry.total.load(Relaxed)
    }

    /// Expires the counters whose periods in `all` were empty and that have now been idle for `timeout`
    /// (zero: never). Called after a dump, with the periods it took.
    pub(crate) fn expire_idle(&self, all: &TakeAll, timeout: Duration, now: Instant) {
        // No period kept its key: every counter was active and none is idle (nothing to read again, nor to lock).
        if timeout.is_zero() || all.kept.is_empty() {
            return;
        }
        let mut idle_since = lock(&self.expiry.idle_since);
        let mut due = Vec::new();
        // A period without its key is an active one taken while no counter was idle: none to forget. Only the
        // periods that kept theirs are read again: the others' cells are memory the dump has already left behind.
        for (key, t) in all.kept.iter().map(|(i, key)| (key, &all.taken[*i])) {
            if t.cell.is_reserved() || t.cell.holds_state() {
                continue;
            }
            if t.cell.is_empty_period(&t.period) {
                let since = *idle_since.entry(key.clone()).or_insert(now);
                if now.saturating_duration_since(since) >= timeout {
                    due.push((key, t));
                }
            } else if !idle_since.is_empty() {
                idle_since.remove(key);
            }
        }
        let made_room = !due.is_empty();
        for (key, t) in due {
            idle_since.remove(key);
            self.expire(key, &t.cell);
        }
        self.expiry.idle_len.store(idle_since.len(), Relaxed);
        if made_room {
            self.room_made();
        }
    }

    /// Runs `f` on every cell, the map's and those kept aside, holding the latter's lock throughout: a cell moves
    /// between the two only under it, so none is missed on its way.
    pub(super) fn each_cell_with_expired(&self, f: impl Fn(&CounterCell)) {
        let expired = lock(&self.expiry.expired);
        expired.values().flatten().for_each(|cell| f(cell));
        self.map.iter().for_each(|entry| f(entry.value()));
    }

    /// Whether some counter is idle (tracked for expiry): a take then keeps every key.
    pub(super) fn has_idle_counters(&self) -> bool {
        self.expiry.idle_len.load(Relaxed) > 0
    }

    /// Takes `cell` out of the map (if it is still `key`'s). Updated since its period was taken (during the
    /// dump), it goes back (kept aside if a newer cell took the key meanwhile); held elsewhere, it is kept aside;
    /// otherwise it is dropped.
    fn expire(&self, key: &Key, cell: &Arc<CounterCell>) {
        let mut expired = lock(&self.expiry.expired);
        let Some((key, cell)) = self.map.remove_if(key, |_, current| Arc::ptr_eq(current, cell)) else { return };
        // Out of the map, the cell gets no new holder. Who holds it is read before whether it was updated: a
        // holder that updates it and lets go after this read still counts as one, and its update is kept
        // (the other order could see neither the update nor the holder). Held by the `Taken` that named it and
        // this one: a third holder is a handle or a cache. The fence pairs with a holder's release of its
        // reference, so that a holder gone before the read left its update visible to the check below.
        let held = Arc::strong_count(&cell) > 2;
        fence(Acquire);
        #[cfg(test)]
        self.expiry.between_checks.run();
        if cell.has_activity() {
            match self.map.entry(key) {
                Entry::Vacant(entry) => {
                    entry.insert(cell);
                }
                // A registration made a newer cell for the key meanwhile: this one goes aside, taken at every dump
                // while it is held, as a revival that lost the race leaves it.
                Entry::Occupied(entry) => {
                    self.live.fetch_sub(1, Relaxed);
                    expired.entry(entry.key().clone()).or_default().push(cell);
                    self.expiry.expired_len.store(expired.len(), Relaxed);
                }
            }
            return;
        }
        self.live.fetch_sub(1, Relaxed);
        self.expiry.total.fetch_add(1, Relaxed);
        if held {
            // Beside any older cell of the key still held: each is taken at every dump.
            expired.entry(key).or_default().push(cell);
            self.expiry.expired_len.store(expired.len(), Relaxed);
        }
    }

    /// For a new registration of `key`: its expired cell, put back into the store, if `fit` lets it serve `kind`
    /// (one of another type is retired: the name changes type, as pip's rule says). Of several expired cells of
    /// the key, the first that fits goes back; the others stay aside, taken at every dump while they are held.
    pub(super) fn revive(&self, key: &Key, kind: CounterType, fit: Fit) -> Option<Arc<CounterCell>> {
        if self.expiry.expired_len.load(Relaxed) == 0 {
            return None;
        }
        let mut expired = lock(&self.expiry.expired);
        let cells = expired.remove(key)?;
        let (mut fitting, other): (Vec<_>, Vec<_>) = cells.into_iter().partition(|cell| fit.serves(cell.kind(), kind));
        let revived = if fitting.is_empty() {
            None
        } else {
            // Retained, as every key the map holds (see `Store::scaled_cell_and_key`).
            match self.map.entry(key.to_retained()) {
                Entry::Vacant(entry) => {
                    self.live.fetch_add(1, Relaxed);
                    Some(Arc::clone(&entry.insert(fitting.remove(0))))
                }
                // A newer cell took the key: the old ones stay aside, their holders' updates still taken at each
                // dump (into the newer cell). One of another type is not for this registration, which replaces it.
                Entry::Occupied(entry) => fit.serves(entry.get().kind(), kind).then(|| Arc::clone(entry.get())),
            }
        };
        if !fitting.is_empty() {
            // Retained: `take_expired` may put it back in the map.
            expired.insert(key.to_retained(), fitting);
        }
        self.expiry.expired_len.store(expired.len(), Relaxed);
        drop(expired);
        for cell in other {
            self.retire(cell);
        }
        revived
    }

    /// At a take, before the live counters are taken: the period of each expired cell whose key has a newer live
    /// cell of the same kind (or either sampled kind, in the same unit: [`takes_from`]) moves into that cell (see
    /// [`CounterCell::absorb`]), so that the dump publishes the key once (two records of one name and dimensions
    /// would each be a datum to CloudWatch, but one EMF document keeps one of them). Cells nothing holds any more
    /// are then dropped. An expired cell whose key has a live cell that does not take from it is retired, its data
    /// dropped and its holders' updates refused: the name changed type, as when a registration of another type
    /// replaces a live counter.
    pub(super) fn absorb_expired(&self, all: &mut TakeAll) {
        if self.expiry.expired_len.load(Relaxed) == 0 {
            return;
        }
        let mut expired = lock(&self.expiry.expired);
        expired.retain(|key, cells| {
            let Some(live) = self.newer_cell(key) else { return true };
            cells.retain(|cell| {
                if Arc::ptr_eq(cell, &live) || live.is_retired() {
                    return true;
                }
                if !takes_from(&live, cell) {
                    self.retire(Arc::clone(cell));
                    return false;
                }
                let (held, period) = take_kept(cell, all);
                if cell.is_empty_period(&period) || move_into(&live, cell, &period) {
                    return held;
                }
                cell.undo(&period);
                true
            });
            !cells.is_empty()
        });
        self.expiry.expired_len.store(expired.len(), Relaxed);
    }

    /// The live cell of `key`, if there is one.
    fn newer_cell(&self, key: &Key) -> Option<Arc<CounterCell>> {
        self.map.get(key).map(|entry| Arc::clone(entry.value()))
    }

    /// At a take: every expired cell's period goes into `all`, with the values it refused; the cells updated
    /// since go back into the store (unless a newer cell took the key), and the empty ones nothing holds any
    /// more are dropped.
    pub(super) fn take_expired(&self, all: &mut TakeAll) {
        if self.expiry.expired_len.load(Relaxed) == 0 {
            return;
        }
        let mut expired = lock(&self.expiry.expired);
        expired.retain(|key, cells| {
            cells.retain(|cell| {
                let (held, period) = take_kept(cell, all);
                if cell.is_empty_period(&period) {
                    return held;
                }
                // Updated since `absorb_expired`, beside a newer cell of the key: into its next take; a cell of another
                // type replaced it (see `absorb_expired`).
                let newer = self.newer_cell(key).filter(|live| !Arc::ptr_eq(live, cell) && !live.is_retired());
                if let Some(live) = newer {
                    if takes_from(&live, cell) && move_into(&live, cell, &period) {
                        return held;
                    }
                    self.retire(Arc::clone(cell));
                    return false;
                }
                all.push(Taken { cell: Arc::clone(cell), period }, Some(key.clone()));
                match self.map.entry(key.clone()) {
                    Entry::Vacant(entry) => {
                        self.live.fetch_add(1, Relaxed);
                        entry.insert(Arc::clone(cell));
                        false
                    }
                    Entry::Occupied(entry) => !Arc::ptr_eq(entry.get(), cell),
                }
            });
            !cells.is_empty()
        });
        self.expiry.expired_len.store(expired.len(), Relaxed);
    }

    /// `clear` and `remove`: runs `remove` on the map while no expiry moves a cell aside, after retiring the
    /// expired cells of these keys (all with `None`) and forgetting their idle times; a cell expiry would move
    /// aside in between would escape the retirement.
    pub(super) fn forget_expired<R>(&self, key: Option<&Key>, remove: impl FnOnce() -> R) -> R {
        let mut expired = lock(&self.expiry.expired);
        let retired: Vec<Arc<CounterCell>> = match key {
            Some(key) => expired.remove(key).into_iter().flatten().collect(),
            None => expired.drain().flat_map(|(_, cells)| cells).collect(),
        };
        self.expiry.expired_len.store(expired.len(), Relaxed);
        for cell in retired {
            self.retire(cell);
        }
        let removed = remove();
        drop(expired);
        let mut idle_since = lock(&self.expiry.idle_since);
        match key {
            Some(key) => {
                idle_since.remove(key);
            }
            None => idle_since.clear(),
        }
        self.expiry.idle_len.store(idle_since.len(), Relaxed);
        removed
    }
}

/// Takes the period of the kept cell `cell`, its refusals and saturations into `all`; with whether anything
/// besides the kept list holds it. Who holds it is read before the take (see `Store::expire`): a holder that
/// lets go after this read still keeps the cell for the next take, which finds its last update.
fn take_kept(cell: &Arc<CounterCell>, all: &mut TakeAll) -> (bool, Period) {
    let held = Arc::strong_count(cell) > 1;
    fence(Acquire);
    all.rejected += cell.take_rejected();
    all.saturated += cell.take_saturated();
    (held, cell.take())
}

/// Whether the live cell `live` takes the periods of the kept cell `kept` of its key: of its type, or both sampled
/// (as a live sampled cell serves a histogram of either type) with their samples in the same unit (one described
/// with a time unit after the other was made keeps milliseconds).
fn takes_from(live: &CounterCell, kept: &CounterCell) -> bool {
    Fit::EitherSampled.serves(live.kind(), kept.kind()) && live.same_scale(kept)
}

/// Moves `period`, taken from the kept cell `cell`, into the live cell `live` of its key, and commits it on
/// `cell`: published by `live` from here (put back into `live` if its save fails). `false` if it cannot move.
fn move_into(live: &CounterCell, cell: &CounterCell, period: &Period) -> bool {
    let moved = live.absorb(period);
    if moved {
        cell.commit(period);
    }
    moved
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CounterType;

    /// Code a test runs at a point of the store's own code, once.
    #[derive(Default)]
    pub(super) struct Hook(Mutex<Option<Box<dyn FnOnce() + Send>>>);

    impl Hook {
        fn set(&self, f: impl FnOnce() + Send + 'static) {
            *lock(&self.0) = Some(Box::new(f));
        }

        pub(super) fn run(&self) {
            let f = lock(&self.0).take();
            if let Some(f) = f {
                f();
            }
        }
    }

    impl std::fmt::Debug for Hook {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Hook")
        }
    }

    fn key(name: &'static str) -> Key {
        Key::from_static_name(name)
    }

    /// Takes every period and commits it (a successful dump), then expires with a timeout of 1 ns: a counter
    /// expires at the second such dump that finds it idle.
    /// Returns each period with its key.
    fn dump(store: &Store) -> Vec<(Key, Taken)> {
        let (all, keys) = store.take_all_keyed();
        store.settle(&all.taken, |_| false);
        store.expire_idle(&all, Duration::from_nanos(1), Instant::now());
        keys.into_iter().zip(all.taken).collect()
    }

    /// The Increment counts of every period of `name` in `taken` (a key taken from more than one cell), added up.
    fn published_total(taken: &[(Key, Taken)], name: &str) -> i64 {
        taken
            .iter()
            .filter(|(key, t)| key.name() == name && !t.cell.is_empty_period(&t.period))
            .map(|(_, t)| {
                let mut c = crate::model::Counter::new(name, CounterType::Increment);
                t.cell.fill_period(&t.period, &mut c);
                c.count.unwrap_or(0)
            })
            .sum()
    }

    /// A dump's Increment total of `route` and how many records of it it publishes.
    fn route_records(store: &Store) -> (i64, usize) {
        let taken = dump(store);
        (published_total(&taken, "route"), records(&taken, "route"))
    }

    /// How many records of `name` a dump of `taken` publishes.
    fn records(taken: &[(Key, Taken)], name: &str) -> usize {
        taken.iter().filter(|(key, t)| key.name() == name && !t.cell.is_empty_period(&t.period)).count()
    }

    fn published(taken: &[(Key, Taken)], name: &str) -> Option<crate::model::Counter> {
        taken.iter().find(|(key, t)| key.name() == name && !t.cell.is_empty_period(&t.period)).map(|(_, t)| {
            let mut c = crate::model::Counter::new(name, t.cell.kind());
            t.cell.fill_period(&t.period, &mut c);
            c
        })
    }

    #[test]
    fn percentiles_turned_on_reach_a_cell_kept_aside() {
        let store = Store::default();
        let held = kept_aside(&store, "latency", CounterType::Interval, |cell| cell.sample(5.0));
        store.set_percentiles(true);
        held.sample(7.0);
        let latency = published(&dump(&store), "latency").expect("published");
        assert_eq!(latency.distribution.map(|d| d.count()), Some(1), "its sample counted in buckets");
    }

    #[test]
    fn an_update_during_the_dump_that_expires_a_counter_keeps_it() {
        let store = Store::default();
        store.cell(&key("idle"), CounterType::Increment).add(1);
        dump(&store);
        dump(&store); // idle from here
        let all = store.take_all();
        store.settle(&all.taken, |_| false);
        store.cell(&key("idle"), CounterType::Increment).add(7); // a short-lived handle, while the save runs
        store.expire_idle(&all, Duration::from_nanos(1), Instant::now() + Duration::from_secs(1));
        assert_eq!(store.len(), 1, "the update kept it in the store");
        assert_eq!(published(&dump(&store), "idle").and_then(|c| c.count), Some(7));
    }

    #[test]
    fn expired_counters_updated_again_go_back_into_the_map_whatever_shard_they_hash_to() {
        // 64 keys: every shard of the map gets some, the last one a take iterates included. The take must let go
        // of the map (its iterator holds a shard's read lock until it is dropped) before it puts them back, or
        // it waits for itself.
        let store = Arc::new(Store::default());
        let handles: Vec<_> =
            (0..64).map(|i| store.cell(&Key::from_name(format!("c{i}")), CounterType::Increment)).collect();
        for handle in &handles {
            handle.add(1);
        }
        dump(&store);
        dump(&store);
        dump(&store);
        assert_eq!((store.len(), store.expired()), (0, 64));
        for handle in &handles {
            handle.add(2);
        }
        let (done, finished) = std::sync::mpsc::channel();
        let taker = Arc::clone(&store);
        std::thread::spawn(move || {
            let published = dump(&taker).iter().filter(|(_, t)| !t.cell.is_empty_period(&t.period)).count();
            let _ = done.send(published);
        });
        let published = finished.recv_timeout(Duration::from_secs(20)).expect("the take finished");
        assert_eq!(published, 64, "every updated counter published");
        assert_eq!(store.len(), 64, "all back in the store");
    }

    #[test]
    fn an_update_through_a_handle_dropped_before_the_next_take_is_published() {
        let store = Store::default();
        let handle = kept_aside(&store, "jobs", CounterType::Increment, |cell| cell.add(1));
        handle.add(5);
        drop(handle);
        assert_eq!(published(&dump(&store), "jobs").and_then(|c| c.count), Some(5));
        assert_eq!(store.len(), 1, "back in the store");
    }

    #[test]
    fn an_update_and_a_drop_racing_the_expiry_are_published() {
        let store = Store::default();
        let handle = store.cell(&key("jobs"), CounterType::Increment);
        handle.add(1);
        dump(&store);
        dump(&store); // idle from here: the next dump expires it
                      // Its last holder updates it and lets go while the expiry checks the cell.
        store.expiry.between_checks.set(move || {
            handle.add(7);
            drop(handle);
        });
        dump(&store);
        assert_eq!(published(&dump(&store), "jobs").and_then(|c| c.count), Some(7), "the update is not lost");
        assert_eq!((store.len(), store.live.load(Relaxed)), (1, 1), "back in the store, counted once");
    }

    #[test]
    fn a_registration_racing_the_expiry_of_an_updated_cell_keeps_both_cells() {
        let store = Arc::new(Store::default());
        let old = store.cell(&key("route"), CounterType::Increment);
        old.add(1);
        dump(&store);
        dump(&store); // idle from here: the next dump expires it
                      // Updated while the save runs; then, while the expiry checks it (out of the map), a registration of the
                      // key makes a newer cell.
        let all = store.take_all();
        store.settle(&all.taken, |_| false);
        old.add(2);
        let registrar = Arc::clone(&store);
        let (newer_tx, newer_rx) = std::sync::mpsc::channel();
        store.expiry.between_checks.set(move || {
            let _ = newer_tx.send(registrar.cell(&key("route"), CounterType::Increment));
        });
        store.expire_idle(&all, Duration::from_nanos(1), Instant::now() + Duration::from_secs(1));
        let newer = newer_rx.try_recv().expect("the registration ran");
        assert!(!Arc::ptr_eq(&newer, &old), "a newer cell");
        assert!(Arc::ptr_eq(&store.cell(&key("route"), CounterType::Increment), &newer), "the newer one stays");
        newer.add(3);
        let taken = dump(&store);
        assert_eq!(published_total(&taken, "route"), 5, "both cells' updates are published");
        assert_eq!((store.len(), store.live.load(Relaxed)), (1, 1), "one live counter, counted once");
    }

    /// The cell `name` of `kind`, given `update`, then expired by three dumps and kept aside for its holder (the
    /// handle returned).
    fn kept_aside(
        store: &Store,
        name: &'static str,
        kind: CounterType,
        update: impl FnOnce(&CounterCell),
    ) -> Arc<CounterCell> {
        let held = store.cell(&key(name), kind);
        update(&held);
        dump(store);
        dump(store);
        dump(store);
        assert_eq!((store.len(), store.expired()), (0, 1), "{name}: expired, kept aside for its holder");
        held
    }

    /// An expired cell of `kind` kept aside for its holder (returned), and a newer live cell of `live_kind` for the
    /// same key, made by a registration that raced the expiry (returned too).
    fn aside_beside_a_newer_cell(store: &Store, kind: CounterType, live_kind: CounterType) -> [Arc<CounterCell>; 2] {
        let old =
            kept_aside(store, "route", kind, |cell| if kind.is_sampled() { cell.sample(1.0) } else { cell.add(1) });
        let newer = Arc::new(CounterCell::new(live_kind));
        store.map.insert(key("route"), Arc::clone(&newer));
        store.live.fetch_add(1, Relaxed);
        [old, newer]
    }

    #[test]
    fn a_registration_racing_the_revival_leaves_the_old_cell_taken_at_every_dump() {
        let store = Store::default();
        let [old, newer] = aside_beside_a_newer_cell(&store, CounterType::Increment, CounterType::Increment);
        assert!(Arc::ptr_eq(
            &store.revive(&key("route"), CounterType::Increment, Fit::Exact).expect("the key's cell"),
            &newer
        ));
        old.add(2);
        newer.add(3);
        assert_eq!(route_records(&store), (5, 1), "both cells' updates, in one record: the old one's moved over");
        old.add(4);
        newer.add(1);
        assert_eq!(route_records(&store), (5, 1), "at every dump");
    }

    #[test]
    fn a_newer_cell_of_a_key_expiring_while_the_older_is_aside_keeps_both() {
        let store = Store::default();
        let [old, newer] = aside_beside_a_newer_cell(&store, CounterType::Increment, CounterType::Increment);
        newer.add(3);
        assert_eq!(published_total(&dump(&store), "route"), 3);
        dump(&store);
        dump(&store);
        assert_eq!((store.len(), store.expired()), (0, 2), "the newer one expired too, while the older was aside");
        old.add(2);
        newer.add(4);
        assert_eq!(
            route_records(&store),
            (2, 1),
            "one record a key: the first cell goes back into the store, the other's update into its next take"
        );
        old.add(5);
        assert_eq!(route_records(&store), (9, 1));
        newer.add(6);
        assert_eq!(route_records(&store), (6, 1), "still aside, still taken");
    }

    #[test]
    fn samples_of_a_cell_kept_aside_go_out_in_the_record_of_the_newer_cell() {
        let store = Store::default();
        let [old, newer] = aside_beside_a_newer_cell(&store, CounterType::Interval, CounterType::Interval);
        old.sample(5.0);
        newer.sample(7.0);
        newer.sample(9.0);
        let taken = dump(&store);
        assert_eq!(records(&taken, "route"), 1);
        let route = published(&taken, "route").expect("published");
        assert_eq!((route.count, route.min, route.max, route.average), (Some(3), Some(5.0), Some(9.0), Some(7.0)));
        let mut totals = crate::model::Counter::new("route", CounterType::Interval);
        newer.fill_totals(&mut totals);
        assert_eq!((totals.count, totals.min), (Some(3), Some(5.0)), "in the newer cell's local totals too");
    }

    #[test]
    fn a_cell_kept_aside_whose_name_changed_type_is_retired() {
        let store = Store::default();
        let [old, newer] = aside_beside_a_newer_cell(&store, CounterType::Increment, CounterType::LastValue);
        old.add(3);
        newer.set_last(2.0);
        let (all, keys) = store.take_all_keyed();
        let published: Vec<_> = keys
            .iter()
            .zip(&all.taken)
            .filter(|(key, t)| key.name() == "route" && !t.cell.is_empty_period(&t.period))
            .map(|(_, t)| t.cell.kind())
            .collect();
        assert_eq!(published, [CounterType::LastValue], "the other type's data dropped, as a replacement drops it");
        assert!(old.is_retired());
        old.add(1);
        assert_eq!(store.take_all().rejected, 1, "its holder's updates refused and counted");
    }

    #[test]
    fn samples_of_a_cell_kept_aside_go_out_with_a_newer_cell_of_the_other_sampled_type() {
        for (kind, live_kind) in
            [(CounterType::Interval, CounterType::Statistics), (CounterType::Statistics, CounterType::Interval)]
        {
            let store = Store::default();
            let [old, newer] = aside_beside_a_newer_cell(&store, kind, live_kind);
            old.sample(5.0);
            let taken = dump(&store);
            let route = published(&taken, "route").unwrap_or_else(|| panic!("{kind:?} aside: published"));
            assert_eq!((route.counter_type, route.count, route.min), (live_kind, Some(1), Some(5.0)), "{kind:?}");
            assert!(!old.is_retired(), "{kind:?}: a live sampled cell would have served it, so it still records");
            old.sample(7.0);
            newer.sample(9.0);
            let route = published(&dump(&store), "route").unwrap_or_else(|| panic!("{kind:?}: published again"));
            assert_eq!((route.count, route.min, route.max), (Some(2), Some(7.0), Some(9.0)), "{kind:?}");
        }
    }

    #[test]
    fn a_cell_kept_aside_gives_no_samples_to_a_newer_cell_that_keeps_them_in_another_unit() {
        let store = Store::default();
        let [old, _] = aside_beside_a_newer_cell(&store, CounterType::Statistics, CounterType::Statistics);
        // A histogram described in seconds after the old cell was made: the newer cell keeps milliseconds.
        let newer = Arc::new(CounterCell::with_scale(CounterType::Interval, 1e3));
        store.map.insert(key("route"), Arc::clone(&newer));
        old.sample(5.0); // seconds
        assert!(published(&dump(&store), "route").is_none(), "not 5 s among milliseconds");
        assert!(old.is_retired(), "retired, as a counter whose name changed type");
    }

    #[test]
    fn a_reset_of_the_totals_reaches_a_cell_kept_aside() {
        let store = Store::default();
        let handle = kept_aside(&store, "jobs", CounterType::Increment, |cell| cell.add(5));
        store.reset_totals();
        handle.add(1);
        dump(&store);
        let jobs = store.get(&key("jobs")).expect("back in the store");
        assert_eq!(jobs.count, Some(1), "the totals since the reset only");
    }

    #[test]
    fn an_absolute_value_set_through_a_cell_kept_aside_goes_out_as_its_change_in_the_newer_cells_record() {
        let store = Store::default();
        let [old, newer] = aside_beside_a_newer_cell(&store, CounterType::Increment, CounterType::Increment);
        old.set_absolute(10);
        newer.add(1);
        assert_eq!(route_records(&store), (11, 1));
        old.set_absolute(15);
        assert_eq!(route_records(&store), (5, 1), "the change since the last");
    }

    #[test]
    fn a_registration_of_the_kept_cells_type_replaces_a_newer_cell_of_another_type() {
        let store = Store::default();
        let [old, newer] = aside_beside_a_newer_cell(&store, CounterType::Increment, CounterType::LastValue);
        assert!(store.revive(&key("route"), CounterType::Increment, Fit::Exact).is_none(), "not the LastValue cell");
        let replacing = store.cell(&key("route"), CounterType::Increment);
        assert!(!Arc::ptr_eq(&replacing, &newer) && newer.is_retired(), "the name changed type again");
        old.add(2);
        replacing.add(3);
        assert_eq!(route_records(&store), (5, 1));
    }

    #[test]
    fn values_refused_through_a_cell_kept_aside_are_counted() {
        let store = Store::default();
        let held = kept_aside(&store, "latency", CounterType::Interval, |cell| cell.sample(5.0));
        held.sample(f64::NAN);
        held.sample(f64::INFINITY);
        assert_eq!(store.take_all().rejected, 2);
    }

    #[test]
    fn clear_retires_expired_cells_so_kept_handles_are_refused() {
        let store = Store::default();
        let handle = kept_aside(&store, "gone", CounterType::Increment, |cell| cell.add(1));
        store.clear();
        handle.add(4);
        let (all, keys) = store.take_all_keyed();
        assert!(keys.iter().all(|key| key.name() != "gone"), "never published again");
        assert_eq!(all.rejected, 1, "refused and counted");
    }

    #[test]
    fn a_counter_used_again_starts_its_idle_time_over() {
        let store = Store::default();
        let timeout = Duration::from_secs(10);
        let t0 = Instant::now();
        let dump_at = |at: Instant| {
            let all = store.take_all();
            store.settle(&all.taken, |_| false);
            store.expire_idle(&all, timeout, at);
        };
        store.cell(&key("jobs"), CounterType::Increment).add(1);
        dump_at(t0);
        dump_at(t0); // idle since t0
        store.cell(&key("jobs"), CounterType::Increment).add(1);
        dump_at(t0 + Duration::from_secs(5)); // used again: no longer idle
        dump_at(t0 + Duration::from_secs(11)); // idle since 11 s, not since t0
        assert_eq!((store.len(), store.expired()), (1, 0));
        dump_at(t0 + Duration::from_secs(21));
        assert_eq!((store.len(), store.expired()), (0, 1), "idle for 10 s since it was last used");
    }

    #[test]
    fn levels_and_absolute_counters_never_expire() {
        let store = Store::default();
        store.cell(&key("gauge"), CounterType::LastValue).set_last(1.0);
        store.cell(&key("total"), CounterType::Increment).set_absolute(10);
        for _ in 0..4 {
            dump(&store);
        }
        assert_eq!((store.len(), store.expired()), (2, 0));
    }
}
