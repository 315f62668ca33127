//! A per-thread cache, generic over what it holds, for the front-ends' hot lookups: the recorder's and the
//! metric events' handles, and the layer's span callsites.
//!
//! Each front-end declares its own `thread_local!` of [`Slots`] and reads it with [`lookup`] / [`insert`]. A hit
//! costs a thread-local read and a comparison: no shard lock, and no reference count on a value other threads
//! share. Four-way set-associative: an entry sits in one of the four slots of its hash's set, the newest first.
//!
//! A miss does not allocate once the cache is warm: [`insert`] hands the evicted value to the caller, who can
//! reuse it (the recorder rewrites an evicted handle in place when nothing else holds it). The table starts
//! small and doubles, up to its maximum, while at least one lookup in sixteen misses: a thread that cycles
//! through a thousand keys gets a table that holds them, one that uses ten keeps a small one.
//!
//! The caller's `matches` decides what a hit is (the same key, and a value that is still live), so a hit never
//! records into a counter that was cleared or replaced. Entries of different front-end instances (`owner`, from
//! [`next_owner`]) never match each other.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::LocalKey;

/// Slots per set: a lookup compares at most this many.
const WAYS: usize = 4;

/// The table doubles while at least one lookup in this many misses. A quarter left a thread that cycles through
/// 1,000 keys at 2,048 slots, where the keys that fall five or more to a set (about 13% of them) missed at every
/// use, each a store lookup: at one in sixteen it grows to 4,096, where about 2% do.
const MISSES_TO_GROW: u64 = 16;

/// While the table is at its largest and at least half its lookups miss (a thread cycling through more keys
/// than it holds), [`admits`] turns away all but one miss in this many, until fewer than one lookup in
/// [`MISSES_TO_GROW`] misses: rewriting an evicted entry for a value that will itself be evicted before its next
/// use costs more than the lookup it would save.
const ADMIT_ONE_IN: u64 = 8;

/// One cached entry: which front-end instance (`owner`) stored `value`, under which hash.
#[derive(Debug)]
struct Slot<V> {
    owner: u64,
    hash: u64,
    value: V,
}

/// A thread's slots: empty until the first insert.
#[derive(Debug)]
pub(crate) struct Slots<V> {
    table: Vec<Option<Slot<V>>>,
    /// The table's size at the first insert, and the most it may grow to (powers of two, at least [`WAYS`]).
    initial: usize,
    max: usize,
    /// Lookups and misses since the table's size was last reconsidered.
    lookups: Cell<u64>,
    misses: u64,
    /// Whether the table is thrashing (see [`ADMIT_ONE_IN`]: at its largest, set once half the lookups of a
    /// check's window missed, cleared once fewer than one in [`MISSES_TO_GROW`] did); and the misses [`admits`]
    /// turned away since.
    thrashing: bool,
    turned_away: u64,
    /// Slots that hold nothing (a table that grew leaves some free until they are filled).
    free: usize,
}

impl<V> Slots<V> {
    /// An empty cache of `initial` slots, growing up to `max` (powers of two, at least 4), allocated at the first
    /// insert.
    pub(crate) const fn new(initial: usize, max: usize) -> Slots<V> {
        Slots {
            table: Vec::new(),
            initial,
            max,
            lookups: Cell::new(0),
            misses: 0,
            thrashing: false,
            turned_away: 0,
            free: 0,
        }
    }

    /// The first slot of `hash`'s set.
    fn set(&self, hash: u64) -> usize {
        // The high bits: the low ones of a key's hash also pick its store shard.
        ((hash >> 7) as usize) & (self.table.len() - 1) & !(WAYS - 1)
    }

    /// Counts a miss, and doubles the table while it is under its maximum and at least one in [`MISSES_TO_GROW`]
    /// of the lookups since the last check missed (see [`Slots::count_miss`] for when a check is made).
    fn maybe_grow(&mut self) {
        if !self.count_miss() {
            return;
        }
        if self.table.len() < self.max {
            let old = std::mem::take(&mut self.table);
            self.table.resize_with(old.len() * 2, || None);
            self.free = self.table.len();
            for slot in old.into_iter().flatten() {
                let set = self.set(slot.hash);
                if let Some(free) = self.table[set..set + WAYS].iter_mut().find(|s| s.is_none()) {
                    *free = Some(slot);
                    self.free -= 1;
                }
            }
        }
    }

    /// Counts a miss; once per table-size misses (or once the lookups since the last check are eight times the
    /// table's size, so that a table whose misses have become rare is reconsidered too), checks whether the table
    /// is thrashing, and says whether it should grow.
    fn count_miss(&mut self) -> bool {
        self.misses += 1;
        let size = self.table.len() as u64;
        if self.misses < size && self.lookups.get() < 8 * size {
            return false;
        }
        let (misses, lookups) = (self.misses, self.lookups.get());
        self.misses = 0;
        self.lookups.set(0);
        // Turned away, misses leave more of the table to the keys it holds and fewer lookups miss: it stops
        // thrashing only when a table that grows would also stop growing.
        let limit = if self.thrashing { MISSES_TO_GROW } else { 2 };
        self.thrashing = self.table.len() >= self.max && misses * limit >= lookups;
        misses * MISSES_TO_GROW >= lookups
    }

    /// See [`admits`].
    fn admits(&mut self, hash: u64) -> bool {
        if !self.thrashing || self.table.is_empty() {
            return true;
        }
        let set = self.set(hash);
        if self.free > 0 && self.table[set..set + WAYS].iter().any(Option::is_none) {
            return true; // a free way: cached with no eviction (counted by the insert)
        }
        self.turned_away += 1;
        if self.turned_away % ADMIT_ONE_IN == 0 {
            return true; // counted by the insert
        }
        // Counted here; a check this brings on may find the table no longer thrashing (the insert then counts
        // the miss once more, in the new window).
        self.count_miss();
        !self.thrashing
    }

    /// The table's size.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.len()
    }
}

/// A new front-end instance's owner id, never reused (unlike an address).
pub(crate) fn next_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Relaxed)
}

/// What `read` makes of the value `owner` cached in this thread under `hash` for which `matches` holds, if any.
#[inline]
pub(crate) fn lookup<V: 'static, R>(
    cache: &'static LocalKey<RefCell<Slots<V>>>,
    owner: u64,
    hash: u64,
    matches: impl Fn(&V) -> bool,
    read: impl FnOnce(&V) -> R,
) -> Option<R> {
    cache
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            if cache.table.is_empty() {
                return None;
            }
            cache.lookups.set(cache.lookups.get() + 1);
            let set = cache.set(hash);
            cache.table[set..set + WAYS]
                .iter()
                .flatten()
                .find(|slot| slot.hash == hash && slot.owner == owner && matches(&slot.value))
                .map(|slot| read(&slot.value))
        })
        .ok()
        .flatten()
}

/// Whether a value this thread's cache missed under `hash` should be inserted: not, but for one in
/// [`ADMIT_ONE_IN`] and where its set has a free way, once the table is at its largest and at least half its
/// lookups miss, until fewer than one in [`MISSES_TO_GROW`] do (the caller then serves the value uncached). A miss
/// turned away is counted here (an admitted one by the insert).
#[inline(never)]
pub(crate) fn admits<V: 'static>(cache: &'static LocalKey<RefCell<Slots<V>>>, hash: u64) -> bool {
    cache.try_with(|cache| cache.try_borrow_mut().is_ok_and(|mut cache| cache.admits(hash))).unwrap_or(false)
}

/// Caches, in this thread, the value `make` returns for `owner` under `hash`, as the newest of its set, and
/// returns a clone of it. `make` receives the value this evicts (the set's oldest, when the set is full), to
/// reuse it if it can. When the cache cannot be used (the thread is ending, or a lookup is under way), the value
/// is made from nothing and not cached.
#[cold]
pub(crate) fn insert<V: Clone + 'static>(
    cache: &'static LocalKey<RefCell<Slots<V>>>,
    owner: u64,
    hash: u64,
    make: impl FnOnce(Option<V>) -> V,
) -> V {
    insert_with(cache, owner, hash, make, V::clone)
}

/// [`insert`], handing the new value to `read` (where it is cached, or before it is dropped when it cannot be)
/// instead of cloning it.
#[cold]
pub(crate) fn insert_with<V: 'static, R>(
    cache: &'static LocalKey<RefCell<Slots<V>>>,
    owner: u64,
    hash: u64,
    make: impl FnOnce(Option<V>) -> V,
    read: impl FnOnce(&V) -> R,
) -> R {
    let (mut make, mut read) = (Some(make), Some(read));
    let cached = cache.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return None };
        if cache.table.is_empty() {
            let size = cache.initial;
            cache.table.resize_with(size, || None);
            cache.free = size;
        } else {
            cache.maybe_grow();
        }
        let set = cache.set(hash);
        let ways = &mut cache.table[set..set + WAYS];
        // The newest goes first; the others move down one, and the last one out is handed to `make` (free ways
        // are the last of their set: a table that grew fills each set from its first way).
        ways.rotate_right(1);
        let evicted = ways[0].take().map(|slot| slot.value);
        if evicted.is_none() {
            cache.free = cache.free.saturating_sub(1);
        }
        let value = make.take()?(evicted);
        let slot = cache.table[set].insert(Slot { owner, hash, value });
        Some(read.take()?(&slot.value))
    });
    match (cached, make, read) {
        (Ok(Some(result)), _, _) => result,
        (_, Some(make), Some(read)) => read(&make(None)),
        _ => unreachable!("the value was made and read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static CACHE: RefCell<Slots<u32>> = const { RefCell::new(Slots::new(8, 32)) };
    }

    #[test]
    fn a_set_holds_four_the_oldest_is_handed_back_and_owners_stay_apart() {
        let hash = 3 << 7;
        for value in 10..14 {
            assert_eq!(insert(&CACHE, 1, hash, |evicted| evicted.map_or(value, |_| unreachable!())), value);
        }
        let mut evicted = None;
        insert(&CACHE, 1, hash, |old| {
            evicted = old;
            14
        });
        assert_eq!(evicted, Some(10), "the oldest of the set leaves first");
        let find = |owner, value| lookup(&CACHE, owner, hash, |v| *v == value, |v| *v);
        assert_eq!((find(1, 10), find(1, 11), find(1, 14), find(2, 14)), (None, Some(11), Some(14), None));
    }

    #[test]
    fn the_table_grows_while_lookups_miss_and_not_past_its_maximum() {
        thread_local! {
            static GROWING: RefCell<Slots<u64>> = const { RefCell::new(Slots::new(8, 32)) };
        }
        // 64 keys round-robin in 8 slots: every lookup misses, so the table doubles up to 32.
        for _ in 0..20 {
            for key in 0..64u64 {
                let hash = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                if lookup(&GROWING, 1, hash, |v| *v == key, |_| ()).is_none() {
                    insert(&GROWING, 1, hash, |_| key);
                }
            }
        }
        assert_eq!(GROWING.with(|c| c.borrow().len()), 32);
        let free = GROWING.with(|c| (c.borrow().free, c.borrow().table.iter().filter(|s| s.is_none()).count()));
        assert_eq!(free.0, free.1, "the free slots counted as they are");
        // Four keys of one set fit: after their first use they all hit, and the table does not grow.
        thread_local! {
            static WARM: RefCell<Slots<u64>> = const { RefCell::new(Slots::new(16, 1024)) };
        }
        let mut misses = 0;
        for _ in 0..1000 {
            for key in 0..4u64 {
                let hash = key << 7;
                if lookup(&WARM, 1, hash, |v| *v == key, |_| ()).is_none() {
                    misses += 1;
                    insert(&WARM, 1, hash, |_| key);
                }
            }
        }
        assert_eq!((misses, WARM.with(|c| c.borrow().len())), (4, 16));
    }

    #[test]
    fn a_table_at_its_largest_that_thrashes_admits_one_miss_in_eight_until_the_keys_settle() {
        thread_local! {
            static CACHE: RefCell<Slots<u64>> = const { RefCell::new(Slots::new(8, 32)) };
        }
        let hash = |key: u64| key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // What the recorder does: look up, and on a miss insert only what the cache admits.
        let round = |keys: std::ops::Range<u64>| {
            let (mut misses, mut inserts) = (0, 0);
            for key in keys {
                if lookup(&CACHE, 1, hash(key), |v| *v == key, |_| ()).is_none() {
                    misses += 1;
                    if admits(&CACHE, hash(key)) {
                        inserts += 1;
                        insert(&CACHE, 1, hash(key), |_| key);
                    }
                }
            }
            (misses, inserts)
        };
        // 200 keys round-robin through at most 32 slots: most lookups miss (the few cached keys are evicted
        // less often than every key was), and once the table is at its largest, one miss in eight is cached.
        for _ in 0..10 {
            round(0..200);
        }
        let (misses, inserts) = round(0..200);
        assert_eq!(CACHE.with(|c| c.borrow().len()), 32);
        assert!(misses > 150 && (misses / 8..=misses / 8 + 1).contains(&inserts), "{misses} misses, {inserts} cached");
        // The thread settles on four keys: each is cached within eight misses, and once they hit, the next check
        // finds the table no longer thrashing and a new key is cached at its first miss.
        for _ in 0..100 {
            round(1000..1004);
        }
        assert_eq!(round(1000..1004), (0, 0), "the settled keys hit");
        assert_eq!(round(2000..2001), (1, 1), "a new key is admitted at once");
        assert_eq!(round(2000..2001), (0, 0));
    }

    #[test]
    fn a_table_that_thrashes_fills_a_free_way_at_the_first_miss() {
        thread_local! {
            static CACHE: RefCell<Slots<u64>> = const { RefCell::new(Slots::new(8, 32)) };
        }
        let hash = |key: u64| key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for _ in 0..11 {
            for key in 0..200 {
                if lookup(&CACHE, 1, hash(key), |v| *v == key, |_| ()).is_none() && admits(&CACHE, hash(key)) {
                    insert(&CACHE, 1, hash(key), |_| key);
                }
            }
        }
        assert!(CACHE.with(|c| c.borrow().thrashing), "200 keys through 32 slots thrash");
        // A set with free ways (as a table that grew leaves some) takes a miss at once: no value is evicted.
        let set = CACHE.with(|c| c.borrow().set(hash(7)));
        CACHE.with(|c| {
            let mut cache = c.borrow_mut();
            cache.table[set..set + WAYS].fill_with(|| None);
            cache.free += WAYS;
            cache.turned_away = 0; // so that the fifth key below is not the one in eight
        });
        let same_set: Vec<u64> = (300..).filter(|&k| CACHE.with(|c| c.borrow().set(hash(k))) == set).take(5).collect();
        let admitted: Vec<bool> = same_set
            .iter()
            .map(|&key| {
                let admitted = admits(&CACHE, hash(key));
                if admitted {
                    insert(&CACHE, 1, hash(key), |_| key);
                }
                admitted
            })
            .collect();
        assert_eq!(admitted, [true, true, true, true, false], "four free ways, four keys cached, then one in eight");
        assert!(CACHE.with(|c| c.borrow().thrashing), "and the table still thrashes");
        assert_eq!(CACHE.with(|c| c.borrow().free), 0, "no slot free any more");
    }

    #[test]
    fn a_thread_cycling_through_a_thousand_keys_ends_up_missing_few() {
        thread_local! {
            static ROUTES: RefCell<Slots<u64>> = const { RefCell::new(Slots::new(128, 4096)) };
        }
        // Spread as the keys' hashes are: at 2,048 slots about one key in eight shares a set with four others
        // and misses at every use, which a quarter of lookups missing would leave be.
        let hash = |key: u64| {
            // splitmix64's finaliser: as a key's hash, no better spread than chance.
            let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let round = || {
            let mut misses = 0;
            for key in 0..1000u64 {
                if lookup(&ROUTES, 1, hash(key), |v| *v == key, |_| ()).is_none() {
                    misses += 1;
                    insert(&ROUTES, 1, hash(key), |_| key);
                }
            }
            misses
        };
        for _ in 0..100 {
            round();
        }
        let misses = round();
        assert_eq!(ROUTES.with(|c| c.borrow().len()), 4096);
        assert!(misses < 50, "{misses} of 1,000 lookups missed");
    }
}
