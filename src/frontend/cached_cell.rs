//! [`CachedCell`]: a thread's cached handle to a counter cell, with the key it was found for, rewritten in place
//! when the per-thread cache evicts it and nothing else holds it, so that a cache miss does not allocate.
//!
//! The recorder and the layer's metric events keep these in their per-thread caches (`store::thread_cache`). A
//! hit clones the handle's `Arc`, whose count only this thread touches while the handle stays in its cache.

use std::sync::Arc;

use metrics::{CounterFn, GaugeFn, HistogramFn, Key};

use crate::model::CounterType;
use crate::store::cell::CounterCell;

/// A cell and the key it was found for, as text whose buffers are reused when the handle is rewritten.
#[derive(Debug)]
pub(crate) struct CachedCell {
    pub(crate) cell: Arc<CounterCell>,
    kind: CounterType,
    key: KeyText,
    /// The name, when it is `'static` (a metric event's field name): compared by address, and the key text then
    /// holds only the labels.
    static_name: Option<&'static str>,
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
        if let Some(mut handle) = evicted {
            if let Some(cached) = Arc::get_mut(&mut handle) {
                cached.cell = cell;
                cached.kind = kind;
                cached.key.set(name, labels);
                cached.static_name = None;
                return handle;
            }
        }
        let mut key = KeyText::default();
        key.set(name, labels);
        Arc::new(CachedCell { cell, kind, key, static_name: None })
    }

    /// [`CachedCell::reuse`] for a counter whose name is `'static` (a metric event's field name), found again by
    /// the name's address and its labels' text.
    pub(crate) fn reuse_static<'a>(
        evicted: Option<Arc<CachedCell>>,
        cell: Arc<CounterCell>,
        kind: CounterType,
        name: &'static str,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Arc<CachedCell> {
        // The name is kept by address only: the text holds the labels.
        let mut handle = Self::reuse(evicted, cell, kind, "", labels);
        if let Some(cached) = Arc::get_mut(&mut handle) {
            cached.static_name = Some(name);
        }
        handle
    }

    /// [`CachedCell::reuse`] for a `metrics::Key`.
    pub(crate) fn reuse_for_key(
        evicted: Option<Arc<CachedCell>>,
        cell: Arc<CounterCell>,
        kind: CounterType,
        key: &Key,
    ) -> Arc<CachedCell> {
        Self::reuse(evicted, cell, kind, key.name(), key.labels().map(|l| (l.key(), l.value())))
    }

    /// Whether this handle serves the counter `name` + `labels` asked for as `kind` (a sampled cell serves
    /// either sampled type) and still records into the store.
    #[inline]
    pub(crate) fn serves<'a>(
        &self,
        kind: CounterType,
        name: &str,
        labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        self.serves_kind(kind) && self.key.matches(name, labels) && !self.cell.is_retired()
    }

    /// [`CachedCell::serves`] for a counter cached by [`CachedCell::reuse_static`]: the same `'static` name (the
    /// same address and length: the same text, which never changes) and the same labels.
    #[inline]
    pub(crate) fn serves_static<'a>(
        &self,
        kind: CounterType,
        name: &'static str,
        labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> bool {
        self.static_name.is_some_and(|cached| std::ptr::eq(cached, name)) && self.serves(kind, "", labels)
    }

    /// Whether the cached cell serves a counter asked for as `kind`: its own type, or either sampled type.
    #[inline]
    fn serves_kind(&self, kind: CounterType) -> bool {
        self.kind == kind || (kind.is_sampled() && self.kind.is_sampled())
    }

    /// [`CachedCell::serves`] for a `metrics::Key`.
    #[inline]
    pub(crate) fn serves_key(&self, kind: CounterType, key: &Key) -> bool {
        self.serves(kind, key.name(), key.labels().map(|l| (l.key(), l.value())))
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

    #[inline]
    fn matches<'a>(&self, name: &str, labels: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> bool {
        let n = labels.len();
        let (text, ends) = (self.text.as_bytes(), self.ends.as_slice());
        if ends.len() != 1 + 2 * n || !same_bytes(&text[..ends[0]], name.as_bytes()) {
            return false;
        }
        if n == 0 {
            return true;
        }
        let mut start = ends[0];
        let mut ends = ends[1..].iter();
        let mut part = |expected: &str| {
            let end = ends.next().copied().unwrap_or(start);
            let same = text.get(start..end).is_some_and(|part| same_bytes(part, expected.as_bytes()));
            start = end;
            same
        };
        labels.into_iter().all(|(key, value)| part(key) && part(value))
    }
}

/// Whether two short strings' bytes are equal, compared in registers (two overlapping loads of 8 or 4 bytes, or
/// the bytes of a part shorter than 4) rather than through a call to `memcmp`; longer ones the usual way.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
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
}
