//! The layer's span callsites: what it does with a new span of a callsite (time it into these cells, or ignore
//! it), in a map all threads share and in a per-thread cache in front of it (no shard lock per span).
//!
//! A cached entry whose cells were cleared or replaced is a miss, so a hit never times into a detached cell.

use std::cell::RefCell;
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
}

thread_local! {
    static CACHE: RefCell<Slots<Cached>> = const { RefCell::new(Slots::new(64, 1024)) };
}

/// The hash of a callsite that the per-thread caches of callsites use.
#[inline]
pub(crate) fn hash(callsite: &Identifier) -> u64 {
    BuildHasherDefault::<AddressHasher>::default().hash_one(callsite)
}

/// What this thread knows of `callsite` for `layer`, as `read` sees it: `read(None)` = ignored,
/// `read(Some(cells))` = timed into these cells; `None` = not cached (or its cells were retired).
#[inline]
pub(crate) fn get<R>(layer: u64, callsite: &Identifier, read: impl FnOnce(Option<&Arc<SpanCells>>) -> R) -> Option<R> {
    thread_cache::lookup(
        &CACHE,
        layer,
        hash(callsite),
        |cached| {
            cached.callsite == *callsite && !cached.cells.as_ref().is_some_and(|cells| cells.exec_time.is_retired())
        },
        |cached| read(cached.cells.as_ref()),
    )
}

/// Remembers, in this thread, what `layer` does with spans of `callsite`.
pub(crate) fn put(layer: u64, callsite: Identifier, cells: Option<Arc<SpanCells>>) {
    thread_cache::insert(&CACHE, layer, hash(&callsite), |_| Cached { callsite, cells });
}

#[cfg(test)]
mod tests {
    use tracing::callsite::{Callsite, Identifier};
    use tracing::subscriber::Interest;
    use tracing::Metadata;

    use super::hash;

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
}
