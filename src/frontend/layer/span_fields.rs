//! Span fields as dimensions: the values of a span's allow-listed fields (`method`, `route`, `status`, ...),
//! recorded when the span is created and by `span.record(..)` later (tower-http records the status on
//! response), become the labels of the span's counters when it closes.
//!
//! A warm thread allocates nothing for them: the labels of its closed spans (with their strings' buffers) serve
//! its next spans, a thread that closes more spans than it makes hands its surplus to those that make more (in
//! batches, through [`SHARED`]), and the counter of label values it closed a span with lately is found in a
//! per-thread cache by the values' text, without building a `Key`. The labels are kept in the layer's table of
//! spans with fields ([`super::spans_with_fields`]), not in the span's extensions, which tracing-subscriber
//! boxes.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use tracing::field::{Field, Visit};

use super::events::{name_hash, text_hash};
use crate::frontend::cached_cell::{same_bytes, CachedCell};
use crate::model::CounterType;
use crate::store::cell::CounterCell;
use crate::store::thread_cache::{self, Slots};

thread_local! {
    /// A thread's handles to the counters of labelled spans (their Interval counters, and the Increment counters
    /// of their errors), by counter name and label values.
    static CACHE: RefCell<Slots<Arc<CachedCell>>> = const { RefCell::new(Slots::new(64, 1024)) };
}

/// The span fields that become dimensions by default: the usual HTTP ones, by their plain names and by
/// OpenTelemetry's semantic conventions. A URI or id field is not among them: every value is a metric.
pub const DEFAULT_SPAN_DIMENSIONS: &[&str] =
    &["method", "route", "matched_path", "status", "http.request.method", "http.route", "http.response.status_code"];

/// The values of one span's allow-listed fields, as recorded so far. Each thread keeps those of its closed spans
/// for its next ones ([`SpanLabels::spare`], [`SpanLabels::recycle`]), with their strings' buffers: a span whose
/// values are no longer than seen before writes them without allocating.
#[derive(Debug, Default)]
pub(crate) struct SpanLabels {
    /// The labels are `entries[..len]`; past it, entries left by an earlier use, kept for their buffers.
    entries: Vec<(&'static str, String)>,
    len: usize,
}

thread_local! {
    /// The labels of closed spans, for the next spans of this thread (or, past [`SPARE_LABELS`], of others).
    static SPARE: RefCell<Vec<SpanLabels>> = const { RefCell::new(Vec::new()) };
}

/// Labels passed between threads: spans made on one thread and closed on another (tasks that move between a
/// runtime's workers) leave the labels with the closing thread, which hands its surplus here, a batch at a time,
/// for threads that run out. Only tried (never waited for): a thread that finds it busy allocates or drops. It
/// holds at most [`SHARED_LABELS`] labels, up to about 4 MiB of text, for the life of the process.
static SHARED: Mutex<Vec<SpanLabels>> = Mutex::new(Vec::new());

/// Most labels a thread keeps.
const SPARE_LABELS: usize = 64;
/// The most text labels may hold to be kept.
const SPARE_BYTES: usize = 4096;
/// How many labels a thread hands to [`SHARED`] or takes from it at a time.
const SHARED_BATCH: usize = SPARE_LABELS / 2;
/// The most labels [`SHARED`] keeps.
const SHARED_LABELS: usize = 1024;

impl SpanLabels {
    /// Empty labels: ones this thread kept (taken from the shared ones when it has none), or new ones.
    pub(crate) fn spare() -> SpanLabels {
        let kept = SPARE.try_with(|spare| {
            let mut spare = spare.try_borrow_mut().ok()?;
            if spare.is_empty() {
                refill(&mut spare);
            }
            spare.pop()
        });
        kept.ok().flatten().unwrap_or_default()
    }

    /// Keeps `labels` for this thread's next spans (unless they hold nothing, or a lot of text), handing a batch
    /// to the other threads when this one keeps enough; a batch is dropped instead when the shared labels are
    /// busy or full (so that the next recycles do not try them again).
    pub(crate) fn recycle(mut labels: SpanLabels) {
        if labels.entries.capacity() == 0
            || labels.entries.iter().map(|(_, value)| value.capacity()).sum::<usize>() > SPARE_BYTES
        {
            return;
        }
        labels.len = 0;
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                if spare.len() >= SPARE_LABELS {
                    hand_over(&mut spare);
                    spare.truncate(SPARE_LABELS - SHARED_BATCH);
                }
                let room = SPARE_LABELS - spare.len();
                spare.reserve_exact(room); // once: its size for good
                spare.push(labels);
            }
        });
    }

    /// The labels recorded so far.
    fn live(&self) -> &[(&'static str, String)] {
        &self.entries[..self.len]
    }

    /// The labels' names and values, in the order the fields were first recorded.
    pub(crate) fn named_values(&self) -> impl ExactSizeIterator<Item = (&'static str, &str)> + Clone {
        self.live().iter().map(|(name, value)| (*name, value.as_str()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many labels there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The names and values, borrowed.
    pub(crate) fn pairs_iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.live().iter().map(|(name, value)| (*name, value.as_str()))
    }

    /// The per-thread cache's hash of the counter `name` with these labels.
    fn hash(&self, name: &str) -> u64 {
        self.live().iter().fold(text_hash(0, name), |hash, (label, value)| text_hash(hash ^ name_hash(label), value))
    }

    /// What `read` makes of the cell of the `kind` counter `name` with these labels, if this thread cached it
    /// for `layer` (see [`SpanLabels::cache_cell`]) and it is still in service.
    pub(crate) fn with_cached_cell<R>(
        &self,
        layer: u64,
        kind: CounterType,
        name: &str,
        read: impl FnOnce(&CounterCell) -> R,
    ) -> Option<R> {
        let serves = |c: &Arc<CachedCell>| c.serves(kind, name, self.pairs_iter());
        thread_cache::lookup(&CACHE, layer, self.hash(name), serves, |c| read(&c.cell))
    }

    /// Caches in this thread, for `layer`, `cell` as the `kind` counter `name` with these labels (rewriting the
    /// handle it evicts: no allocation once the cache is warm), unless the cache thrashes and turns it away (see
    /// `thread_cache::admits`).
    pub(crate) fn cache_cell(&self, layer: u64, kind: CounterType, name: &str, cell: &Arc<CounterCell>) {
        let hash = self.hash(name);
        if thread_cache::admits(&CACHE, hash) {
            let make = |evicted| CachedCell::reuse(evicted, Arc::clone(cell), kind, name, self.pairs_iter());
            thread_cache::insert_with(&CACHE, layer, hash, make, |_| ());
        }
    }

    /// Sets each of `recorded`'s labels here, as recording its fields here would have (no allocation where the
    /// values fit the buffers these labels keep).
    pub(crate) fn merge(&mut self, recorded: &SpanLabels) {
        for (name, value) in recorded.live() {
            self.set_with(name, |text| text.write_str(value));
        }
    }

    /// Sets the label `name` to what `write` writes, unless that is empty (an empty value is no dimension): written
    /// into a spare entry's buffer, which then takes the label's place (its old buffer becomes the spare).
    fn set_with(&mut self, name: &'static str, write: impl FnOnce(&mut String) -> fmt::Result) {
        if self.entries.len() == self.len {
            self.entries.push((name, String::new()));
        }
        let (live, spare) = self.entries.split_at_mut(self.len);
        let Some(scratch) = spare.first_mut() else { return };
        scratch.1.clear();
        // Writing into a `String` does not fail.
        let _ = write(&mut scratch.1);
        if scratch.1.is_empty() {
            return;
        }
        if let Some(entry) = live.iter_mut().find(|(n, _)| *n == name) {
            std::mem::swap(&mut entry.1, &mut scratch.1);
        } else {
            scratch.0 = name;
            self.len += 1;
        }
    }
}

/// Takes up to a batch of the labels other threads handed over into this thread's (empty) `spare`.
fn refill(spare: &mut Vec<SpanLabels>) {
    let Some(mut shared) = try_shared() else { return };
    if shared.is_empty() {
        return;
    }
    spare.reserve_exact(SPARE_LABELS); // once: its size for good
    let from = shared.len().saturating_sub(SHARED_BATCH);
    spare.extend(shared.drain(from..));
}

/// Hands a batch of this thread's (full) `spare` to the other threads, as far as [`SHARED`] has room.
fn hand_over(spare: &mut Vec<SpanLabels>) {
    let Some(mut shared) = try_shared() else { return };
    let room = SHARED_LABELS.saturating_sub(shared.len());
    let n = SHARED_BATCH.min(room);
    if n == 0 {
        return;
    }
    shared.reserve_exact(room); // once: its size for good
    let from = spare.len() - n;
    shared.extend(spare.drain(from..));
}

/// [`SHARED`], unless another thread holds it.
fn try_shared() -> Option<MutexGuard<'static, Vec<SpanLabels>>> {
    match SHARED.try_lock() {
        Ok(shared) => Some(shared),
        // Labels are whole whatever panicked: they are cleared before use.
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Records the allow-listed fields a span (or a `span.record`) carries into its labels.
pub(crate) struct LabelVisitor<'a> {
    pub(crate) allowed: &'a [String],
    pub(crate) labels: &'a mut SpanLabels,
}

impl LabelVisitor<'_> {
    fn wants(&self, field: &Field) -> bool {
        // Compared in registers: a call to `memcmp` for each allowed name of the field's length was 4% of a span
        // with dimensions.
        let field = field.name().as_bytes();
        self.allowed.iter().any(|name| same_bytes(name.as_bytes(), field))
    }

    fn put(&mut self, field: &Field, write: impl FnOnce(&mut String) -> fmt::Result) {
        if self.wants(field) {
            self.labels.set_with(field.name(), write);
        }
    }
}

impl Visit for LabelVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |text| text.write_str(value));
    }

    // Integers written with `itoa` rather than the formatting machinery (a status code is recorded on every
    // response).
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |text| text.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |text| text.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |text| text.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |text| write!(text, "{value:?}"));
    }
}
