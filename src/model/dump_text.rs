//! The text of one dump's records in one buffer: each record's name and dimensions are copied there as the dump
//! takes its counter, while the counter's key is in the processor's cache, and the records share the buffer.
//!
//! A record that held its own share of the store's key instead (a reference count on the key's text) would have
//! the sink read that text, and the record's drop let go of it, wherever the store keeps it: once a store is
//! larger than the caches, each record then waits on that memory twice more. A record that copied its text into
//! strings of its own allocated for each part. Here a dump allocates the buffer once, reads it in order, and
//! drops each record's share of it on memory already in the cache.

use std::sync::{Arc, OnceLock};

use metrics::Key;

/// The text of a dump's records, written once the dump has taken every counter (see [`DumpTextWriter`]).
#[derive(Default)]
pub(crate) struct DumpText {
    written: OnceLock<Parts>,
}

/// Every record's text, and where each of its parts ends.
#[derive(Default)]
struct Parts {
    text: String,
    /// For each record, from its `at`: where its name starts, where its name ends, then where each of its
    /// dimensions' names and values ends.
    bounds: Vec<u32>,
}

/// Where one record's text lies in a [`DumpText`].
#[derive(Clone)]
pub(crate) struct TextAt {
    text: Arc<DumpText>,
    /// The record's first bound.
    at: u32,
    /// How many dimensions it has.
    dimensions: u32,
}

impl TextAt {
    /// The record's bounds: where its name starts, where it ends, then where each dimension's name and value ends
    /// (none while the text is not written).
    fn bounds(&self) -> (&str, &[u32]) {
        let Some(parts) = self.text.written.get() else {
            return ("", &[]);
        };
        let at = self.at as usize;
        let end = at + 2 + 2 * self.dimensions as usize;
        (&parts.text, parts.bounds.get(at..end).unwrap_or_default())
    }

    /// The record's name.
    pub(crate) fn name(&self) -> &str {
        match self.bounds() {
            (text, [start, end, ..]) => part(text, *start, *end),
            _ => "",
        }
    }

    /// The record's dimensions: the text, and the bounds from where the name ends on (see [`DimensionBounds`]).
    pub(crate) fn dimensions(&self) -> DimensionBounds<'_> {
        let (text, bounds) = self.bounds();
        DimensionBounds { text, bounds: bounds.get(1..).unwrap_or_default() }
    }
}

/// The part of `text` from `start` to `end` (empty if they are not the bounds of one: they always are).
fn part(text: &str, start: u32, end: u32) -> &str {
    text.get(start as usize..end as usize).unwrap_or_default()
}

/// A record's dimensions in a [`DumpText`]: `bounds` starts where the previous part ends, and each dimension adds
/// where its name ends and where its value ends.
#[derive(Clone)]
pub(crate) struct DimensionBounds<'a> {
    text: &'a str,
    bounds: &'a [u32],
}

impl<'a> DimensionBounds<'a> {
    /// How many dimensions are left.
    pub(crate) fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1) / 2
    }

    /// The first dimension left, if any.
    pub(crate) fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let [start, name_end, value_end, ..] = *self.bounds else {
            return None;
        };
        self.bounds = &self.bounds[2..];
        Some((part(self.text, start, name_end), part(self.text, name_end, value_end)))
    }

    /// The last dimension left, if any.
    pub(crate) fn next_back(&mut self) -> Option<(&'a str, &'a str)> {
        let [.., start, name_end, value_end] = *self.bounds else {
            return None;
        };
        self.bounds = &self.bounds[..self.bounds.len() - 2];
        Some((part(self.text, start, name_end), part(self.text, name_end, value_end)))
    }
}

/// Writes a dump's records' text as the dump takes them; [`finish`](Self::finish) makes it readable.
pub(crate) struct DumpTextWriter {
    shared: Arc<DumpText>,
    parts: Parts,
    /// The most text and bounds it holds: what a `u32` counts.
    max: usize,
}

impl DumpTextWriter {
    /// A writer with room for `text` bytes and `bounds` bounds (those of the previous dump: see
    /// [`size`](Self::size)).
    pub(crate) fn with_capacity((text, bounds): (usize, usize)) -> DumpTextWriter {
        DumpTextWriter {
            shared: Arc::default(),
            parts: Parts { text: String::with_capacity(text), bounds: Vec::with_capacity(bounds) },
            max: u32::MAX as usize,
        }
    }

    /// The text's length and the number of bounds written so far.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.parts.text.len(), self.parts.bounds.len())
    }

    /// Copies `key`'s name and labels, and says where they lie. `None` past 4 GiB of text (the record then keeps
    /// its own share of the key): every bound is checked to fit a `u32`, none wraps.
    pub(crate) fn write(&mut self, key: &Key) -> Option<TextAt> {
        let Parts { text, bounds } = &mut self.parts;
        let (start, at) = (text.len(), bounds.len());
        bounds.push(start as u32);
        let mut write = |part: &str| {
            text.push_str(part);
            bounds.push(text.len() as u32);
        };
        write(key.name());
        for label in key.labels() {
            write(label.key());
            write(label.value());
        }
        if text.len() > self.max || bounds.len() > self.max {
            text.truncate(start);
            bounds.truncate(at);
            return None;
        }
        Some(TextAt { text: Arc::clone(&self.shared), at: at as u32, dimensions: key.labels().len() as u32 })
    }

    /// Makes the text readable through the records written.
    pub(crate) fn finish(self) {
        // Only this writer sets it.
        let _ = self.shared.written.set(self.parts);
    }
}

#[cfg(test)]
mod tests {
    use metrics::Label;

    use super::*;

    fn all(text: &TextAt) -> (String, Vec<(String, String)>) {
        let mut dims = text.dimensions();
        let mut pairs = Vec::new();
        while let Some((k, v)) = dims.next() {
            pairs.push((k.to_owned(), v.to_owned()));
        }
        (text.name().to_owned(), pairs)
    }

    #[test]
    fn a_key_past_what_the_bounds_count_is_not_written() {
        let mut writer = DumpTextWriter::with_capacity((0, 0));
        writer.max = 12;
        let first = writer.write(&Key::from_parts("abc", vec![Label::new("k", "v")])).unwrap();
        assert_eq!(writer.write(&Key::from_parts("defghijk", vec![Label::new("k", "v")])).map(|_| ()), None);
        assert_eq!(writer.size(), (5, 4), "what the key began to write is taken back");
        let last = writer.write(&Key::from_name("lmnopqr")).unwrap();
        assert_eq!(writer.write(&Key::from_name("s")).map(|_| ()), None);
        writer.finish();
        assert_eq!(all(&first), ("abc".to_owned(), vec![("k".to_owned(), "v".to_owned())]));
        assert_eq!(all(&last), ("lmnopqr".to_owned(), vec![]));
    }

    #[test]
    fn records_read_their_own_name_and_dimensions_once_the_text_is_written() {
        let keys = [
            Key::from_parts("a", vec![Label::new("k", "v"), Label::new("route", "/x")]),
            Key::from_name("only.a.name"),
            Key::from_parts("", vec![Label::new("", "")]),
            Key::from_parts("é", vec![Label::new("ключ", "значение")]),
        ];
        let mut writer = DumpTextWriter::with_capacity((0, 0));
        let written: Vec<TextAt> = keys.iter().map(|key| writer.write(key).unwrap()).collect();
        assert_eq!(written[0].name(), "", "nothing to read before the text is finished");
        assert_eq!(written[0].dimensions().len(), 0);
        let size = writer.size();
        writer.finish();
        assert_eq!(size.1, 2 + 4 + 2 + 4 + 4);
        for (key, text) in keys.iter().zip(&written) {
            let labels: Vec<(String, String)> =
                key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            assert_eq!(all(text), (key.name().to_owned(), labels));
            assert_eq!(text.dimensions().len(), key.labels().len());
        }
        let mut dims = written[0].dimensions();
        assert_eq!(dims.next_back(), Some(("route", "/x")));
        assert_eq!(dims.len(), 1);
        assert_eq!(dims.next(), Some(("k", "v")));
        assert_eq!((dims.next(), dims.next_back()), (None, None));
    }
}
