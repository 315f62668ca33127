//! The layer's span callsites: what it does with a new span of a callsite (time it into these cells, or ignore
//! it), in a map all threads share and in a per-thread cache in front of it (no shard lock per span). In front of
//! that, a thread keeps its recent plain callsites (timed in the open-spans table, or ignored) in 16 entries of
//! plain numbers: no `RefCell`, no reference count, one comparison of three words.
//!
//! A cached entry is a hit only while the store has retired no cell since it was cached (one load of the
//! store's count of retirements, not a walk to the entry's cell): after a clear, a removal or a replacement, or
//! once room appears for keys refused past the cap, each thread looks each callsite up again once. A span that
//! was open across a retirement is checked when it closes.

use std::cell::{Cell, RefCell};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use tracing::callsite::Identifier;

use crate::store::cell::CounterCell;
use crate::store::thread_cache::{self, Slots};

/// Hashes a callsite `Identifier` (a `&'static dyn Callsite`: its address, then its vtable's) with a
/// multiplication per word, instead of SipHash. Both words are mixed in: callsites of one type share the vtable.
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high bits into the low ones, which hash tables use for their bucket index.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, word: usize) {
        self.0 = (self.0 ^ word as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What the layer does with spans of one callsite: time them into these cells, or ignore them (`None`).
pub(crate) type Callsites = DashMap<Identifier, Option<Arc<SpanCells>>, BuildHasherDefault<AddressHasher>>;

/// The counters of one span callsite.
#[derive(Debug)]
pub(crate) struct SpanCells {
    pub(crate) base: String,
    /// The name of their Interval counter: `<base>.exec_time`.
    pub(crate) exec_name: String,
    /// The name of their errors' Increment counter: `<base>.errors`.
    pub(crate) errors_name: String,
    /// Whether the callsite has fields that become dimensions: its spans are then timed into the counter of
    /// their labels, looked up when they close.
    pub(crate) labelled: bool,
    /// Whether the callsite has fields that are properties.
    pub(crate) with_properties: bool,
    pub(crate) exec_time: Arc<CounterCell>,
    pub(crate) errors: OnceLock<Arc<CounterCell>>,
    /// Where the layer keeps these cells for its open spans (`CallsiteCells`), if it does.
    pub(crate) index: Option<u32>,
}

impl SpanCells {
    /// Whether a span of these cells needs nothing but its start and error flag: timed in the open-spans table.
    pub(crate) fn plain(&self) -> Option<u32> {
        self.index.filter(|_| !self.labelled && !self.with_properties)
    }
}

/// A callsite and what the layer does with its spans, as a thread caches it.
#[derive(Clone)]
struct Cached {
    callsite: Identifier,
    cells: Option<Arc<SpanCells>>,
    /// The store's retirements when the cells were looked up.
    retirements: u64,
}

thread_local! {
    static CACHE: RefCell<Slots<Cached>> = const { RefCell::new(Slots::new(64, 1024)) };
}

/// A callsite's cells for one name its spans' `counter` field gave, as a thread caches them.
struct Named {
    callsite: Identifier,
    cells: Arc<SpanCells>,
    /// The store's retirements when the cells were made.
    retirements: u64,
}

thread_local! {
    static NAMED: RefCell<Slots<Named>> = const { RefCell::new(Slots::new(16, 256)) };
}

/// The cells this thread made for spans of `callsite` named `name` by their `counter` field, for `layer`, if
/// it made them when the store's count of retirements was `retirements`; `hash`: of the callsite and the name.
pub(crate) fn named(
    layer: u64,
    callsite: &Identifier,
    name: &str,
    hash: u64,
    retirements: u64,
) -> Option<Arc<SpanCells>> {
    thread_cache::lookup(
        &NAMED,
        layer,
        hash,
        |named| named.callsite == *callsite && named.retirements == retirements && named.cells.base == name,
        |named| Arc::clone(&named.cells),
    )
}

/// Keeps, in this thread, the cells made for spans of `callsite` named `cells.base` by their `counter` field, as
/// made when the store's count of retirements was `retirements`, under `hash` (see [`named`]).
pub(crate) fn remember_named(layer: u64, callsite: Identifier, hash: u64, retirements: u64, cells: Arc<SpanCells>) {
    thread_cache::insert_with(&NAMED, layer, hash, |_| Named { callsite, cells, retirements }, |_| ());
}

/// A recent plain callsite of one layer, as a thread keeps it: what a new span of it needs, as numbers.
#[derive(Clone, Copy)]
struct Recent {
    /// The callsite's address (what `Identifier`'s equality compares).
    callsite: usize,
    layer: u64,
    /// The store's retirements when the callsite was looked up.
    retirements: u64,
    /// Its cells' index in the layer's `CallsiteCells` ([`IGNORED`]: the layer ignores it).
    cells: u32,
}

/// [`Recent::cells`] of an ignored callsite.
pub(crate) const IGNORED: u32 = u32::MAX;
/// Entries in a thread's table of recent callsites.
const RECENT: usize = 16;

thread_local! {
    static RECENTS: [Cell<Recent>; RECENT] =
        const { [const { Cell::new(Recent { callsite: 0, layer: u64::MAX, retirements: 0, cells: 0 }) }; RECENT] };
}

/// The address that tells a callsite apart.
#[inline]
fn address(callsite: &Identifier) -> usize {
    std::ptr::from_ref(callsite.0).cast::<()>() as usize
}

/// The entry of `callsite` in a thread's table of recent callsites.
#[inline]
fn recent_entry(callsite: usize) -> usize {
    (callsite.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) % RECENT
}

/// What this thread recently did with a new span of `callsite` for `layer` while the store's count of retirements
/// was `retirements`: `Some(index)` of its cells, or `Some(IGNORED)`; `None` if it is not there.
#[inline]
pub(crate) fn recent(layer: u64, callsite: &Identifier, retirements: u64) -> Option<u32> {
    let callsite = address(callsite);
    RECENTS
        .try_with(|recents| {
            let recent = recents[recent_entry(callsite)].get();
            (recent.callsite == callsite && recent.layer == layer && recent.retirements == retirements)
                .then_some(recent.cells)
        })
        .ok()
        .flatten()
}

/// Keeps, in this thread's recent callsites, that new spans of `callsite` for `layer` use the cells at `cells`
/// (or [`IGNORED`]), as looked up when the store's count of retirements was `retirements`.
pub(crate) fn remember(layer: u64, callsite: &Identifier, retirements: u64, cells: u32) {
    let callsite = address(callsite);
    let _ = RECENTS.try_with(|recents| {
        recents[recent_entry(callsite)].set(Recent { callsite, layer, retirements, cells });
    });
}

/// The hash of a callsite that the per-thread caches of callsites use.
#[inline]
pub(crate) fn hash(callsite: &Identifier) -> u64 {
    BuildHasherDefault::<AddressHasher>::default().hash_one(callsite)
}

/// What this thread knows of `callsite` for `layer`, as `read` sees it: `read(None)` = ignored,
/// `read(Some(cells))` = timed into these cells; `None` = not cached, or cached before the store's count of
/// retirements was `retirements`.
#[inline]
pub(crate) fn get<R>(
    layer: u64,
    callsite: &Identifier,
    retirements: u64,
    read: impl FnOnce(Option<&Arc<SpanCells>>) -> R,
) -> Option<R> {
    thread_cache::lookup(
        &CACHE,
        layer,
        hash(callsite),
        |cached| cached.callsite == *callsite && cached.retirements == retirements,
        |cached| read(cached.cells.as_ref()),
    )
}

/// Remembers, in this thread, what `layer` does with spans of `callsite`, as looked up when the store's count of
/// retirements was `retirements`.
pub(crate) fn put(layer: u64, callsite: Identifier, retirements: u64, cells: Option<Arc<SpanCells>>) {
    thread_cache::insert(&CACHE, layer, hash(&callsite), |_| Cached { callsite, cells, retirements });
}

#[cfg(test)]
mod tests {
    use tracing::callsite::{Callsite, Identifier};
    use tracing::subscriber::Interest;
    use tracing::Metadata;

    use super::{hash, recent, remember, IGNORED};

    struct Site(#[allow(dead_code)] u8);

    impl Callsite for Site {
        fn set_interest(&self, _: Interest) {}

        fn metadata(&self) -> &Metadata<'_> {
            unimplemented!("not called by hashing")
        }
    }

    static A: Site = Site(1);
    static B: Site = Site(2);

    #[test]
    fn callsites_of_one_type_hash_apart() {
        assert_ne!(
            hash(&Identifier(&A)),
            hash(&Identifier(&B)),
            "the vtable, shared by both, must not be all that is hashed"
        );
    }

    #[test]
    fn a_recent_callsite_is_known_only_to_its_layer_and_until_the_next_retirement() {
        // One callsite only: two could share an entry, depending on where the linker put them.
        let a = Identifier(&A);
        assert_eq!(recent(1, &a, 0), None, "nothing yet");
        remember(1, &a, 5, IGNORED);
        assert_eq!(recent(1, &a, 5), Some(IGNORED));
        remember(1, &a, 5, 42);
        assert_eq!(recent(1, &a, 5), Some(42));
        assert_eq!(recent(2, &a, 5), None, "another layer");
        assert_eq!(recent(1, &a, 6), None, "a cell was retired since");
        remember(1, &a, 6, 43);
        assert_eq!((recent(1, &a, 6), recent(1, &a, 5)), (Some(43), None), "looked up again");
    }
}
