//! A per-thread cache of the layer's span callsites: what to do with a new span of a callsite (time it into these
//! cells, or ignore it) without the shared callsite map's shard lock.
//!
//! Direct-mapped by the callsite's address; an entry whose cells were cleared or replaced is a miss, so a hit
//! never times into a detached cell.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;

use tracing::callsite::Identifier;

use crate::layer::{AddressHasher, SpanCells};

/// Slots per thread.
const SLOTS: usize = 64;

struct Slot {
    layer: u64,
    callsite: Identifier,
    cells: Option<Arc<SpanCells>>,
}

thread_local! {
    static CACHE: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
}

fn index(callsite: &Identifier) -> usize {
    (std::hash::BuildHasherDefault::<AddressHasher>::default().hash_one(callsite) >> 58) as usize % SLOTS
}

/// What this thread knows of `callsite` for `layer`: `Some(None)` = ignored, `Some(Some(cells))` = timed into
/// these cells, `None` = not cached (or its cells were retired).
#[inline]
pub(crate) fn get(layer: u64, callsite: &Identifier) -> Option<Option<Arc<SpanCells>>> {
    CACHE
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            let slot = cache.get(index(callsite))?.as_ref()?;
            if slot.layer != layer || slot.callsite != *callsite {
                return None;
            }
            match &slot.cells {
                Some(cells) if cells.exec_time.is_retired() => None,
                cells => Some(cells.clone()),
            }
        })
        .ok()
        .flatten()
}

/// Remembers, in this thread, what `layer` does with spans of `callsite`.
#[cold]
pub(crate) fn put(layer: u64, callsite: Identifier, cells: Option<Arc<SpanCells>>) {
    let _ = CACHE.try_with(|cache| {
        let Ok(mut cache) = cache.try_borrow_mut() else { return };
        if cache.is_empty() {
            cache.resize_with(SLOTS, || None);
        }
        let i = index(&callsite);
        cache[i] = Some(Slot { layer, callsite, cells });
    });
}
