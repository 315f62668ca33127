//! The buffers a `metrics::Key` with label values borrowed from a span or event is built in, when the thread's
//! cache of handles misses and the store must be asked with a key (whatever the lookup by parts,
//! `store/by_parts.rs`, did not serve: a new counter, one of another type, one kept aside after it expired, one
//! with properties, a span's with more labels than are kept, one stored with its labels in another order):
//! taken back apart when the key ([`BuiltKey`]) is dropped after the lookup, so that such a miss allocates
//! nothing once they are as large as the longest values seen.
//!
//! The store is a map of `metrics::Key`s, and a `Key`'s label values are either `'static` or owned: a lookup by
//! values that are neither needs them copied into strings of the key's own. `Key::into_parts` and
//! `Label::into_parts` hand those strings back, with their capacity, for the next lookup.

use std::cell::Cell;

use metrics::{Key, Label};

/// Emptied label lists and strings, kept for the next key.
#[derive(Default)]
struct Spare {
    labels: Vec<Label>,
    values: Vec<String>,
    name: String,
}

thread_local! {
    static SPARE: Cell<Spare> =
        const { Cell::new(Spare { labels: Vec::new(), values: Vec::new(), name: String::new() }) };
}

#[cfg(test)]
thread_local! {
    /// Keys built on this thread, for the tests that show which misses build none.
    static BUILT: Cell<usize> = const { Cell::new(0) };
}

/// How many keys [`key`] has built on this thread.
#[cfg(test)]
pub(super) fn built_on_this_thread() -> usize {
    BUILT.with(Cell::get)
}

/// This thread's spare buffers, taken (empty ones while a key is being built, or once the thread is ending).
fn take_spare() -> Spare {
    SPARE.try_with(Cell::take).unwrap_or_default()
}

fn put_back(spare: Spare) {
    // Once the thread is ending, they are dropped.
    let _ = SPARE.try_with(|cell| cell.set(spare));
}

/// A counter's name: `'static` (a metric event's field name), or copied into a spare string (a span's counter).
#[derive(Clone, Copy)]
pub(super) enum Name<'a> {
    Static(&'static str),
    Copied(&'a str),
}

/// Strings longer than this are not kept for the next key: one huge label value would hold its memory for as
/// long as the thread lives.
const MAX_KEPT_BYTES: usize = 4096;

/// A key built in this thread's spare buffers: dereferences to the `Key`, and gives the buffers back when
/// dropped.
pub(super) struct BuiltKey {
    key: Key,
    copied_name: bool,
}

impl std::ops::Deref for BuiltKey {
    type Target = Key;

    fn deref(&self) -> &Key {
        &self.key
    }
}

impl Drop for BuiltKey {
    fn drop(&mut self) {
        // A key of static parts in its place: no allocation.
        let key = std::mem::replace(&mut self.key, Key::from_static_name(""));
        recycle(key, self.copied_name);
    }
}

/// The key `name` with `labels` (names, and values copied into this thread's spare strings).
pub(super) fn key<'a>(name: Name<'_>, labels: impl Iterator<Item = (&'static str, &'a str)>) -> BuiltKey {
    #[cfg(test)]
    BUILT.with(|built| built.set(built.get() + 1));
    let mut spare = take_spare();
    let mut list = std::mem::take(&mut spare.labels);
    for (label, value) in labels {
        let mut text = spare.values.pop().unwrap_or_default();
        text.clear();
        text.push_str(value);
        list.push(Label::new(label, text));
    }
    let built = match name {
        Name::Static(name) => BuiltKey { key: Key::from_parts(name, list), copied_name: false },
        Name::Copied(name) => {
            let mut text = std::mem::take(&mut spare.name);
            text.clear();
            text.push_str(name);
            BuiltKey { key: Key::from_parts(text, list), copied_name: true }
        }
    };
    put_back(spare);
    built
}

/// Takes `key` (made by [`key`]; its name copied or not) apart, keeping its strings and label list for the next
/// key.
fn recycle(key: Key, copied_name: bool) {
    let (name, mut list) = key.into_parts();
    let mut spare = take_spare();
    // Owned (made by `key`): the strings themselves, with their capacity, no copy.
    let keep = |text: &String| text.capacity() <= MAX_KEPT_BYTES;
    if copied_name {
        spare.name = Some(name.into_inner().into_owned()).filter(keep).unwrap_or_default();
    }
    for label in list.drain(..) {
        let (_, value) = label.into_parts();
        let value = value.into_owned();
        if keep(&value) {
            spare.values.push(value);
        }
    }
    if list.capacity() > spare.labels.capacity() {
        spare.labels = list;
    }
    put_back(spare);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_built_in_the_spare_buffers_has_the_parts_given_and_gives_its_strings_back() {
        let first = key(Name::Static("requests"), [("method", "GET"), ("route", "/items/1")].into_iter());
        let labels: Vec<(&str, &str)> = first.labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!((first.name(), labels), ("requests", vec![("method", "GET"), ("route", "/items/1")]));
        let expected = Key::from_parts("requests", vec![Label::new("method", "GET"), Label::new("route", "/items/1")]);
        assert_eq!(*first, expected);
        let route_at = first.labels().nth(1).map(|l| l.value().as_ptr());
        drop(first);
        // The next key's values are written into the same strings (the last given back is the first reused).
        let named = String::from("http.request.exec_time");
        let second = key(Name::Copied(&named), [("route", "/orders")].into_iter());
        assert_eq!(second.name(), "http.request.exec_time");
        assert_eq!(second.labels().next().map(metrics::Label::value), Some("/orders"));
        assert_eq!(second.labels().next().map(|l| l.value().as_ptr()), route_at, "the route's string, reused");
        let name_at = second.name().as_ptr();
        drop(second);
        let third = key(Name::Copied("http.request.errors"), std::iter::empty());
        assert_eq!((third.name(), third.labels().count()), ("http.request.errors", 0));
        assert_eq!(third.name().as_ptr(), name_at, "the name's string, reused");
        drop(third);
        // A value past the size kept is dropped, not kept for the next key.
        let huge = "x".repeat(MAX_KEPT_BYTES + 1);
        drop(key(Name::Static("requests"), [("route", huge.as_str())].into_iter()));
        let spare = take_spare();
        assert!(spare.values.iter().all(|v| v.capacity() <= MAX_KEPT_BYTES), "no huge string kept");
        put_back(spare);
    }
}
