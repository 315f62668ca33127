//! The timings of a layer's open spans, kept beside the subscriber's span data rather than in it: a span that
//! opens and closes costs no lookup of the span, no lock of its extensions and no allocation.
//!
//! [`OpenSpans`] is a fixed table of 8192 entries in buckets of 8, indexed by a hash of the span's id: an entry
//! holds the span's id, the clock reading at its creation, its callsite's cells (an index into [`CallsiteCells`],
//! which keeps every callsite's cells for the layer's life) and whether it saw an ERROR event. A span whose
//! bucket is full is timed with the spans with dimensions or properties instead, whose values need room of their
//! own ([`super::spans_with_fields`]). Span ids are unique among open spans (the registry reuses a slot with another
//! generation), and a span is closed after everything done inside it, so an entry is only ever written by the
//! thread that creates or closes its span, or marks its error while it is open.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::{Arc, OnceLock};

use super::span_cache::SpanCells;

/// Entries in the table, and in one bucket (the entries a span's id may use).
const ENTRIES: usize = 8192;
const BUCKET: usize = 8;
/// An entry being written: reserved, not yet readable.
const WRITING: u64 = u64::MAX;

/// One open span.
#[derive(Debug, Default)]
struct Entry {
    /// The span's id (`Id::into_u64`), 0 when free.
    id: AtomicU64,
    start: AtomicU64,
    cells: AtomicU32,
    error: AtomicBool,
}

/// A closing span's timing, taken out of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenSpan {
    pub(crate) start: u64,
    pub(crate) cells: u32,
    pub(crate) error: bool,
}

/// The table of one layer's open spans (allocated at the first span).
#[derive(Debug, Default)]
pub(crate) struct OpenSpans {
    entries: OnceLock<Box<[Entry]>>,
}

impl OpenSpans {
    /// The entries `id` may use in `entries`.
    fn bucket(entries: &[Entry], id: u64) -> &[Entry] {
        // Ids of one thread's spans are close together: spread them with a multiplication, take the high bits.
        let first = ((id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as usize) & (ENTRIES - 1) & !(BUCKET - 1);
        &entries[first..first + BUCKET]
    }

    /// The entry of the open span `id`, if it is in the table (never allocating the table: closing a span the
    /// layer did not time costs no table).
    fn find(&self, id: u64) -> Option<&Entry> {
        Self::bucket(self.entries.get()?, id).iter().find(|entry| entry.id.load(Acquire) == id)
    }

    /// Keeps a new span's timing; `false` when its bucket is full (the caller keeps it elsewhere).
    pub(crate) fn insert(&self, id: u64, start: u64, cells: u32) -> bool {
        let entries = self.entries.get_or_init(|| (0..ENTRIES).map(|_| Entry::default()).collect());
        for entry in Self::bucket(entries, id) {
            if entry.id.load(Relaxed) == 0 && entry.id.compare_exchange(0, WRITING, Acquire, Relaxed).is_ok() {
                entry.start.store(start, Relaxed);
                entry.cells.store(cells, Relaxed);
                entry.error.store(false, Relaxed);
                entry.id.store(id, Release);
                return true;
            }
        }
        false
    }

    /// Takes a closing span's timing out of the table, if it is there.
    pub(crate) fn take(&self, id: u64) -> Option<OpenSpan> {
        let entry = self.find(id)?;
        let open = OpenSpan {
            start: entry.start.load(Relaxed),
            cells: entry.cells.load(Relaxed),
            error: entry.error.load(Relaxed),
        };
        entry.id.store(0, Release);
        Some(open)
    }

    /// Marks an open span as having seen an ERROR event; `false` if the span is not in the table.
    pub(crate) fn mark_error(&self, id: u64) -> bool {
        let entry = self.find(id);
        if let Some(entry) = entry {
            entry.error.store(true, Relaxed);
        }
        entry.is_some()
    }
}

/// One segment of [`CallsiteCells`].
type Segment = Box<[OnceLock<Arc<SpanCells>>]>;

/// Every callsite's cells a layer resolved, by index, kept for the layer's life so that an open span refers to
/// them with a number. Appended to when a callsite is first seen, and again when its counters were cleared or
/// replaced; read without a lock.
#[derive(Debug, Default)]
pub(crate) struct CallsiteCells {
    next: AtomicU32,
    /// Segment `k` holds `64 << k` entries.
    segments: [OnceLock<Segment>; 26],
}

impl CallsiteCells {
    /// Segment and offset of `index`.
    fn place(index: u32) -> (usize, usize) {
        let n = index as usize / 64 + 1;
        let segment = n.ilog2() as usize;
        (segment, index as usize - 64 * ((1 << segment) - 1))
    }

    /// Keeps the cells `make` returns for their index; `None` past 2^32 callsite resolutions.
    pub(crate) fn push(&self, make: impl FnOnce(u32) -> Arc<SpanCells>) -> Option<Arc<SpanCells>> {
        let index = self.next.fetch_add(1, Relaxed);
        let (segment, offset) = Self::place(index);
        let slots =
            self.segments.get(segment)?.get_or_init(|| (0..64usize << segment).map(|_| OnceLock::new()).collect());
        let cells = make(index);
        slots[offset].set(Arc::clone(&cells)).ok()?;
        Some(cells)
    }

    /// The cells kept at `index`.
    #[inline]
    pub(crate) fn get(&self, index: u32) -> Option<&Arc<SpanCells>> {
        let (segment, offset) = Self::place(index);
        self.segments.get(segment)?.get()?.get(offset)?.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_taken_once_with_its_error_and_a_full_bucket_refuses() {
        let spans = OpenSpans::default();
        assert!(spans.take(7).is_none() && !spans.mark_error(7) && spans.entries.get().is_none(), "no table yet");
        assert!(spans.insert(7, 100, 3));
        assert!(spans.mark_error(7) && !spans.mark_error(8));
        assert!(spans.take(8).is_none());
        let open = spans.take(7).expect("kept");
        assert_eq!((open.start, open.cells, open.error), (100, 3, true));
        assert!(spans.take(7).is_none(), "taken once");
        // Ids that share a bucket: the ninth is refused, and one taken makes room.
        assert!(spans.entries.get().is_some(), "allocated by the first insert");
        let bucket_of = |id: u64| std::ptr::from_ref(&OpenSpans::bucket(spans.entries.get().unwrap(), id)[0]);
        let same: Vec<u64> = (1..1_000_000).filter(|&id| bucket_of(id) == bucket_of(1)).take(9).collect();
        assert!(same[..8].iter().all(|&id| spans.insert(id, id, 0)));
        assert!(!spans.insert(same[8], 0, 0));
        assert_eq!(spans.take(same[3]).map(|o| o.start), Some(same[3]));
        assert!(spans.insert(same[8], 0, 0));
    }

    #[test]
    fn indices_land_in_doubling_segments() {
        assert_eq!(CallsiteCells::place(0), (0, 0));
        assert_eq!(CallsiteCells::place(63), (0, 63));
        assert_eq!(CallsiteCells::place(64), (1, 0));
        assert_eq!(CallsiteCells::place(191), (1, 127));
        assert_eq!(CallsiteCells::place(192), (2, 0));
    }
}
