//! The buffers a `metrics::Key` with label values borrowed from a span or event is built in, when the thread's
//! cache of handles misses and the store must be asked: taken back apart after the lookup ([`recycle`]), so that
//! such a miss allocates nothing once they are as large as the longest values seen.
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

/// The key `name` with `labels` (names, and values copied into this thread's spare strings). Give it back to
/// [`recycle`] once the lookup is done.
pub(super) fn key<'a>(name: Name<'_>, labels: impl Iterator<Item = (&'static str, &'a str)>) -> Key {
    let mut spare = take_spare();
    let mut list = std::mem::take(&mut spare.labels);
    for (label, value) in labels {
        let mut text = spare.values.pop().unwrap_or_default();
        text.clear();
        text.push_str(value);
        list.push(Label::new(label, text));
    }
    let key = match name {
        Name::Static(name) => Key::from_parts(name, list),
        Name::Copied(name) => {
            let mut text = std::mem::take(&mut spare.name);
            text.clear();
            text.push_str(name);
            Key::from_parts(text, list)
        }
    };
    put_back(spare);
    key
}

/// Takes `key` (made by [`key`] with `name`) apart, keeping its strings and label list for the next key.
pub(super) fn recycle(key: Key, name: Name<'_>) {
    let (key_name, mut list) = key.into_parts();
    let mut spare = take_spare();
    if let Name::Copied(_) = name {
        // Owned (made by `key`): the string itself, no copy.
        spare.name = key_name.into_inner().into_owned();
    }
    for label in list.drain(..) {
        let (_, value) = label.into_parts();
        // Owned (made by `key`): the string itself, with its capacity, no copy.
        spare.values.push(value.into_owned());
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
        assert_eq!(
            first,
            Key::from_parts("requests", vec![Label::new("method", "GET"), Label::new("route", "/items/1")])
        );
        let route_at = first.labels().nth(1).map(|l| l.value().as_ptr());
        recycle(first, Name::Static("requests"));
        // The next key's values are written into the same strings (the last given back is the first reused).
        let named = String::from("http.request.exec_time");
        let second = key(Name::Copied(&named), [("route", "/orders")].into_iter());
        assert_eq!(second.name(), "http.request.exec_time");
        assert_eq!(second.labels().next().map(metrics::Label::value), Some("/orders"));
        assert_eq!(second.labels().next().map(|l| l.value().as_ptr()), route_at, "the route's string, reused");
        let name_at = second.name().as_ptr();
        recycle(second, Name::Copied(&named));
        let third = key(Name::Copied("http.request.errors"), std::iter::empty());
        assert_eq!((third.name(), third.labels().count()), ("http.request.errors", 0));
        assert_eq!(third.name().as_ptr(), name_at, "the name's string, reused");
        recycle(third, Name::Copied("http.request.errors"));
    }
}
