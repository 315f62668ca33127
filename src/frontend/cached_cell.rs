//! [`CachedCell`]: a thread's cached handle to a counter cell, with the key it was found for, rewritten in place
//! when the per-thread cache evicts it and nothing else holds it, so that a cache miss does not allocate.
//!
//! The recorder and the layer's metric events keep these in their per-thread caches (`store::thread_cache`). A
//! hit clones the handle's `Arc`, whose count only this thread touches while the handle stays in its cache.

mod key_match;

use std::sync::Arc;

use metrics::{CounterFn, GaugeFn, HistogramFn, Key};

use key_match::PinnedKey;

use crate::model::CounterType;
use crate::store::cell::CounterCell;

/// A cell and the key it was found for, as text whose buffers are reused when the handle is rewritten.
#[derive(Debug)]
pub(crate) struct CachedCell {
    pub(crate) cell: Arc<CounterCell>,
    kind: CounterType,
    found: Found,
}

/// What a handle was found for, in the form its front-end looks it up by. Each front-end's cache holds handles
/// of one form, so an evicted handle is rewritten into the same form, its buffers reused.
///
/// `repr(u8)`: its tag first, each form's fields right after it. Left to the compiler, the tag went into a niche
/// of the largest form, and a metric event's lookup took 36.5% of tracing-opentelemetry's against 35% before the
/// forms were split; with the tag first, 30.5-33% (`--bench layer ours_percent_of_metrics_layer/metric_event`).
#[derive(Debug)]
#[repr(u8)]
enum Found {
    /// A `metrics::Key` (the recorder): its text, and the store's copy of it to match its parts by address.
    Key(PinnedKey),
    /// A name and labels (a span's counter with fields).
    Text(KeyText),
    /// A metric event's counter: its name, then its label names (field names, `'static`), compared by address;
    /// `values` holds only the label values, one after the other, and their ends.
    Event { names: Vec<&'static str>, values: KeyText },
}

/// A metric event's labels as it collected them: each label's name and the end of its value in `text`, which
/// holds the values one after the other.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventLabels<'a> {
    pub(crate) labels: &'a [(&'static str, usize, usize)],
    pub(crate) text: &'a str,
}

impl CachedCell {
    /// The handle for `cell`, found for the counter `name` + `labels` of type `kind`: `evicted` rewritten in
    /// place when nothing else holds it (no allocation once its buffers are large enough), else a new one.
    pub(crate) fn reuse<'a>(
        evicted: Option<Arc<CachedCell>>,
        cell: Arc<CounterCell>,
        kind: CounterType,
        name: &str,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Arc<CachedCell> {
        Self::rewrite(evicted, cell, kind, |found| {
            if !matches!(found, Found::Text(_)) {
                *found = Found::Text(KeyText::default());
            }
            if let Found::Text(text) = found {
                text.set(name, labels);
            }
        })
    }

    /// [`CachedCell::reuse`] for a metric event's counter, whose name and label names are `'static` (field
    /// names): found again by their addresses and the label values' text.
    pub(crate) fn reuse_for_event(
        evicted: Option<Arc<CachedCell>>,
        cell: Arc<CounterCell>,
        kind: CounterType,
        name: &'static str,
        labels: EventLabels<'_>,
    ) -> Arc<CachedCell> {
        Self::rewrite(evicted, cell, kind, |found| {
            if !matches!(found, Found::Event { .. }) {
                *found = Found::Event { names: Vec::new(), values: KeyText::default() };
            }
            if let Found::Event { names, values } = found {
                values.set_values(labels.text, labels.labels.iter().map(|&(_, _, end)| end));
                names.clear();
                names.reserve_exact(room(names.capacity(), 1 + labels.labels.len(), 4));
                names.push(name);
                names.extend(labels.labels.iter().map(|&(name, _, _)| name));
            }
        })
    }

    /// [`CachedCell::reuse`] for a `metrics::Key`, with the store's copy of it (`pinned`, when the store has the
    /// cell under it) to match its parts by their addresses.
    pub(crate) fn reuse_for_key(
        evicted: Option<Arc<CachedCell>>,
        cell: Arc<CounterCell>,
        kind: CounterType,
        key: &Key,
        pinned: Option<Key>,
    ) -> Arc<CachedCell> {
        Self::rewrite(evicted, cell, kind, |found| {
            if !matches!(found, Found::Key(_)) {
                *found = Found::Key(PinnedKey::default());
            }
            if let Found::Key(parts) = found {
                parts.set(key, pinned);
            }
        })
    }

    /// `evicted` (when nothing else holds it) or a new handle, for `cell` and `kind`, found for what `write`
    /// makes of it: rewritten in place (each front-end's handles keep their form, so `write` finds the form it
    /// writes, and reuses its buffers).
    fn rewrite(
        evicted: Option<Arc<CachedCell>>,
        cell: Arc<CounterCell>,
        kind: CounterType,
        write: impl FnOnce(&mut Found),
    ) -> Arc<CachedCell> {
        if let Some(mut handle) = evicted {
            if let Some(cached) = Arc::get_mut(&mut handle) {
                cached.cell = cell;
                cached.kind = kind;
                write(&mut cached.found);
                return handle;
            }
        }
        let mut found = Found::Text(KeyText::default());
        write(&mut found);
        Arc::new(CachedCell { cell, kind, found })
    }

    /// Whether this handle serves the counter `name` + `labels` asked for as `kind` (a sampled cell serves
    /// either sampled type) and still records into the store: a span's counter with fields. Inlined into the
    /// lookup, as [`CachedCell::serves_key`] is: as a call, it and the key comparison cost the recorder's
    /// `counter!` with a static key several points of its ratio to prometheus in the paired bench.
    #[allow(clippy::inline_always, reason = "measured in the paired recorder bench (see above)")]
    #[inline(always)]
    pub(crate) fn serves<'a>(
        &self,
        kind: CounterType,
        name: &str,
        labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        let Found::Text(text) = &self.found else { return false };
        self.serves_kind(kind) && text.matches(name, labels) && !self.cell.is_retired()
    }

    /// [`CachedCell::serves`] for a counter cached by [`CachedCell::reuse_for_event`]: the same `'static` name
    /// and label names (the same address and length: the same text, which never changes) and the same label
    /// values, compared as one text. Inlined into every event's lookup: left a call, it took 8-10% of an unlabelled
    /// event's profile.
    #[allow(clippy::inline_always, reason = "measured with perf (see above)")]
    #[inline(always)]
    pub(crate) fn serves_event(&self, kind: CounterType, name: &'static str, labels: EventLabels<'_>) -> bool {
        let Found::Event { names, values } = &self.found else { return false };
        let n = labels.labels.len();
        let Some((&cached_name, label_names)) = names.split_first() else { return false };
        if !std::ptr::eq(cached_name, name) || label_names.len() != n || values.ends.len() != n {
            return false;
        }
        let cached = label_names.iter().zip(&values.ends);
        for ((&cached_name, &cached_end), &(name, _, end)) in cached.zip(labels.labels) {
            if !std::ptr::eq(cached_name, name) || cached_end != end {
                return false;
            }
        }
        same_bytes(values.text.as_bytes(), labels.text.as_bytes()) && self.serves_kind(kind) && !self.cell.is_retired()
    }

    /// Whether the cached cell serves a counter asked for as `kind`: its own type, or either sampled type.
    #[inline]
    fn serves_kind(&self, kind: CounterType) -> bool {
        self.kind == kind || (kind.is_sampled() && self.kind.is_sampled())
    }

    /// [`CachedCell::serves`] for a `metrics::Key` (see `key_match` for how its parts are compared).
    #[allow(clippy::inline_always, reason = "measured in the paired recorder bench (see `serves`)")]
    #[inline(always)]
    pub(crate) fn serves_key(&self, kind: CounterType, key: &Key) -> bool {
        let Found::Key(parts) = &self.found else { return false };
        self.serves_kind(kind) && parts.matches(key) && !self.cell.is_retired()
    }
}

/// How much to reserve in an emptied buffer of `capacity` that must hold `needed` items: nothing when it does,
/// else a power of two, at least `min`. A handle is rewritten in place for one key after another (most of all in a
/// thread cycling through more counters than its cache holds): rounded up, its buffers soon hold any of the keys,
/// where grown to each longer key they would go on allocating until it was rewritten for the longest.
fn room(capacity: usize, needed: usize, min: usize) -> usize {
    if capacity >= needed {
        0
    } else {
        needed.next_power_of_two().max(min)
    }
}

/// A counter's name and labels as one string and the end of each part (name, then each label's key and value).
#[derive(Debug, Default)]
struct KeyText {
    text: String,
    ends: Vec<usize>,
}

impl KeyText {
    fn set<'a>(&mut self, name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        self.text.clear();
        self.ends.clear();
        self.text.push_str(name);
        self.ends.push(self.text.len());
        for (key, value) in labels {
            self.text.push_str(key);
            self.ends.push(self.text.len());
            self.text.push_str(value);
            self.ends.push(self.text.len());
        }
    }

    /// Label values only (an event's counter, whose names are kept by address): `text` holds them one after the
    /// other, each ending where `ends` says (compared as one text and the ends, so that `"ab" + "c"` is not
    /// `"a" + "bc"`).
    fn set_values(&mut self, text: &str, ends: impl ExactSizeIterator<Item = usize>) {
        self.text.clear();
        self.text.reserve_exact(room(self.text.capacity(), text.len(), 32));
        self.text.push_str(text);
        self.ends.clear();
        self.ends.reserve_exact(room(self.ends.capacity(), ends.len(), 4));
        self.ends.extend(ends);
    }

    #[allow(clippy::inline_always, reason = "part of `CachedCell::serves`, inlined for the same measured reason")]
    #[inline(always)]
    fn matches<'a>(&self, name: &str, labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> bool {
        let (text, ends) = (self.text.as_bytes(), self.ends.as_slice());
        let Some((&name_end, label_ends)) = ends.split_first().filter(|_| ends.len() == 1 + 2 * labels.len()) else {
            return false;
        };
        // Each part starts where the one before it ended.
        let mut start = 0;
        let mut part = |end: usize, expected: &str| {
            let same = text.get(start..end).is_some_and(|part| same_bytes(part, expected.as_bytes()));
            start = end;
            same
        };
        if !part(name_end, name) {
            return false;
        }
        for (ends, (key, value)) in label_ends.chunks_exact(2).zip(labels) {
            if !(part(ends[0], key) && part(ends[1], value)) {
                return false;
            }
        }
        true
    }
}

/// Whether two short strings' bytes are equal, compared in registers (two overlapping loads of 8 or 4 bytes, or
/// the bytes of a part shorter than 4) rather than through a call to `memcmp`; longer ones the usual way.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| s.get(at..at + 8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()));
    let half = |s: &[u8], at: usize| s.get(at..at + 4).map(|w| u32::from_le_bytes(w.try_into().unwrap_or_default()));
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        // First, middle and last byte: every byte of a part this short.
        1..=3 => a.first() == b.first() && a.get(n / 2) == b.get(n / 2) && a.last() == b.last(),
        0 => true,
        _ => a == b,
    }
}

// The handle records as its cell does (the cell's `metrics` implementations, in `recorder.rs`).
impl CounterFn for CachedCell {
    #[inline]
    fn increment(&self, value: u64) {
        CounterFn::increment(&*self.cell, value);
    }

    #[inline]
    fn absolute(&self, value: u64) {
        CounterFn::absolute(&*self.cell, value);
    }
}

impl GaugeFn for CachedCell {
    #[inline]
    fn increment(&self, value: f64) {
        GaugeFn::increment(&*self.cell, value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        GaugeFn::decrement(&*self.cell, value);
    }

    #[inline]
    fn set(&self, value: f64) {
        GaugeFn::set(&*self.cell, value);
    }
}

impl HistogramFn for CachedCell {
    #[inline]
    fn record(&self, value: f64) {
        HistogramFn::record(&*self.cell, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_matches_only_its_own_name_and_labels() {
        let mut key = KeyText::default();
        key.set("requests", [("method", "GET"), ("status", "200")].into_iter());
        let matches = |name, labels: &[(&str, &str)]| key.matches(name, labels.iter().copied());
        assert!(matches("requests", &[("method", "GET"), ("status", "200")]));
        assert!(!matches("requests", &[("method", "GET")]));
        assert!(!matches("requests", &[("method", "GET"), ("status", "500")]));
        assert!(!matches("requests", &[("methodGET", ""), ("status", "200")]), "parts are compared one by one");
        assert!(!matches("request", &[("method", "GET"), ("status", "200")]));
        for (a, b) in [
            ("status", "statux"),
            ("request.count", "request.coune"),
            ("abc", "abd"),
            ("route.12", "xoute.12"),
            ("abc", "xbc"),
            ("abc", "axc"),
            ("ab", "ax"),
            ("ab", "xb"),
            ("a", "b"),
            ("a", ""),
            ("", "a"),
        ] {
            key.set(a, std::iter::empty());
            assert!(key.matches(a, std::iter::empty()) && !key.matches(b, std::iter::empty()), "{a} against {b}");
        }
        key.set("requests", std::iter::empty());
        assert!(key.matches("requests", std::iter::empty()));
        assert!(!key.matches("requests", [("method", "GET")].into_iter()));
    }

    #[test]
    fn a_handle_serves_only_in_the_form_it_was_found_for() {
        let key = Key::from_static_name("requests");
        let cell = || Arc::new(CounterCell::new(CounterType::Increment));
        let handle = CachedCell::reuse_for_key(None, cell(), CounterType::Increment, &key, Some(key.clone()));
        assert!(handle.serves_key(CounterType::Increment, &key));
        assert!(!handle.serves(CounterType::Increment, "requests", std::iter::empty()));
        assert!(!handle.serves_event(CounterType::Increment, "requests", event(&[], "")));
        // Rewritten in place as a handle of another front-end: found only in that form.
        let text = CachedCell::reuse(Some(handle), cell(), CounterType::Increment, "requests", std::iter::empty());
        assert!(text.serves(CounterType::Increment, "requests", std::iter::empty()));
        assert!(!text.serves_key(CounterType::Increment, &key));
        let key_again = CachedCell::reuse_for_key(Some(text), cell(), CounterType::Increment, &key, None);
        assert!(key_again.serves_key(CounterType::Increment, &key), "by its bytes, with no copy pinned");
    }

    fn event<'a>(labels: &'a [(&'static str, usize, usize)], text: &'a str) -> EventLabels<'a> {
        EventLabels { labels, text }
    }

    #[test]
    fn an_event_handle_serves_only_its_own_name_label_names_and_values() {
        static STATUS: &str = "status";
        static METHOD: &str = "method";
        static NAME: &str = "requests";
        let cell = Arc::new(CounterCell::new(CounterType::Increment));
        let labels = [(METHOD, 0, 3), (STATUS, 3, 6)];
        let handle = CachedCell::reuse_for_event(None, cell, CounterType::Increment, NAME, event(&labels, "GET200"));
        let serves = |name, labels: &[_], text| handle.serves_event(CounterType::Increment, name, event(labels, text));
        assert!(serves(NAME, &labels, "GET200"));
        assert!(!serves(NAME, &labels, "GET201"), "another value");
        assert!(!serves(NAME, &[(METHOD, 0, 2), (STATUS, 2, 6)], "GET200"), "the same text cut elsewhere");
        assert!(!serves(NAME, &[(STATUS, 0, 3), (METHOD, 3, 6)], "GET200"), "other names");
        assert!(!serves(NAME, &labels[..1], "GET"), "fewer labels");
        let same_text = String::from("requests").leak();
        assert!(!serves(same_text, &labels, "GET200"), "a name is known by its address");
        assert!(!handle.serves_event(CounterType::LastValue, NAME, event(&labels, "GET200")), "another type");
        handle.cell.retire();
        assert!(!serves(NAME, &labels, "GET200"), "a retired cell");
        // Rewritten in place for a counter without labels: nothing of the old key is left.
        let cell = Arc::new(CounterCell::new(CounterType::Increment));
        let plain = CachedCell::reuse_for_event(Some(handle), cell, CounterType::Increment, NAME, event(&[], ""));
        assert!(plain.serves_event(CounterType::Increment, NAME, event(&[], "")));
        assert!(!plain.serves_event(CounterType::Increment, NAME, event(&labels, "GET200")));
    }
}
