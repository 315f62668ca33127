//! A small per-thread cache, generic over what it maps, for the front-ends' hot lookups: the recorder's handles
//! of label-less keys and the layer's span callsites.
//!
//! Each front-end declares its own `thread_local!` of [`Slots`] and reads it with [`lookup`] / [`insert`]. A hit
//! costs a thread-local read and a comparison: no shard lock, and no reference count on a value other threads
//! share. Two-way set-associative: a key sits in its slot or the neighbouring one. The caller's `matches` decides
//! what a hit is (the same owner and key, and a value that is still live), so a hit never records into a
//! counter that was cleared or replaced.

use std::cell::RefCell;
use std::thread::LocalKey;

/// One cached entry: which front-end instance (`owner`) stored `value` for `key`.
#[derive(Debug)]
pub(crate) struct Slot<K, V> {
    pub(crate) owner: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// A thread's slots: empty until the first insert.
#[derive(Debug)]
pub(crate) struct Slots<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
    size: usize,
}

impl<K, V> Slots<K, V> {
    /// An empty cache of `size` slots (a power of two, at least 2), allocated at the first insert.
    pub(crate) const fn new(size: usize) -> Slots<K, V> {
        Slots { slots: Vec::new(), size }
    }

    fn index(&self, hash: u64) -> usize {
        // The high bits: the low ones of a key's hash also pick its store shard.
        ((hash >> 7) as usize) & (self.size - 1)
    }
}

/// The value this thread cached under `hash` for which `matches` holds, if any.
#[inline]
pub(crate) fn lookup<K: 'static, V: Clone + 'static>(
    cache: &'static LocalKey<RefCell<Slots<K, V>>>,
    hash: u64,
    matches: impl Fn(&Slot<K, V>) -> bool,
) -> Option<V> {
    cache
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let i = cache.index(hash);
            [i, i ^ 1]
                .into_iter()
                .find_map(|i| cache.slots.get(i)?.as_ref().filter(|slot| matches(slot)))
                .map(|slot| slot.value.clone())
        })
        .ok()
        .flatten()
}

/// Caches `slot` under `hash` in this thread; the slot's previous entry moves to the neighbouring slot.
#[cold]
pub(crate) fn insert<K: 'static, V: 'static>(
    cache: &'static LocalKey<RefCell<Slots<K, V>>>,
    hash: u64,
    slot: Slot<K, V>,
) {
    let _ = cache.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return };
        if cache.slots.is_empty() {
            let size = cache.size;
            cache.slots.resize_with(size, || None);
        }
        let i = cache.index(hash);
        if cache.slots[i].is_some() {
            cache.slots[i ^ 1] = cache.slots[i].take();
        }
        cache.slots[i] = Some(slot);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static CACHE: RefCell<Slots<u32, u32>> = const { RefCell::new(Slots::new(8)) };
    }

    #[test]
    fn a_key_is_found_beside_a_colliding_one_and_owners_stay_apart() {
        let hash = 3 << 7;
        insert(&CACHE, hash, Slot { owner: 1, key: 10, value: 100 });
        insert(&CACHE, hash, Slot { owner: 1, key: 11, value: 110 });
        let find = |owner, key| lookup(&CACHE, hash, |s| s.owner == owner && s.key == key);
        assert_eq!((find(1, 10), find(1, 11), find(2, 10)), (Some(100), Some(110), None));
    }
}
