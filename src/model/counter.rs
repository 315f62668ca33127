//! pip-services' `Counter` record: one counter's measurements at the moment of a snapshot, under the `metrics`
//! key (name and labels) the counter was recorded with.

use std::fmt;
use std::iter::FusedIterator;
use std::time::SystemTime;

use metrics::{Key, Label};

use super::dump_text::{DimensionBounds, TextAt};
use super::{CounterType, Distribution};

/// One counter's measurements at the moment of a snapshot, with pip's field names.
///
/// As in pip, a field the counter's type does not use stays `None`:
/// Increment fills `count`; LastValue fills `last`; Timestamp fills `time`;
/// Interval and Statistics fill `count`, `min`, `max`, `average`, `last` and (additions to pip) `sum` and, in a
/// period view with percentiles on, `distribution`.
///
/// The name and the dimensions ([`name`](Counter::name), [`dimensions`](Counter::dimensions)) are those of the
/// counter's `metrics` key. A dump copies them into one buffer its records share, so that a record costs no
/// allocation for its text; a sink that keeps a clone of a record past its save keeps that buffer, the text of
/// every record of the dump, until the clone goes. Two records compare equal whatever the order of their
/// dimensions, as `metrics` keys do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Counter {
    /// The counter's name (a CloudWatch metric name) and its labels (CloudWatch dimensions).
    text: Text,
    /// The counter's type (pip's `type` field).
    pub counter_type: CounterType,
    /// The latest sample (Interval, Statistics) or the value itself (LastValue).
    pub last: Option<f64>,
    /// The running total (Increment) or the number of samples (Interval, Statistics).
    pub count: Option<i64>,
    /// The smallest sample.
    pub min: Option<f64>,
    /// The largest sample.
    pub max: Option<f64>,
    /// The mean of the samples, derived as `sum / count`.
    pub average: Option<f64>,
    /// The sum of the samples. pip keeps only `average`; `count * average` equals it up to rounding.
    pub sum: Option<f64>,
    /// The recorded time (Timestamp).
    pub time: Option<SystemTime>,
    /// The unit a `metrics` description gave this name (`describe_counter!` etc.), if any.
    pub unit: Option<metrics::Unit>,
    /// Interval and Statistics, in a period view with `options.percentiles` on: the period's samples in
    /// log-linear buckets, for [`percentile_values`](Counter::percentile_values).
    pub distribution: Option<Distribution>,
    /// Context recorded with the counter's updates in the period that is not a dimension (EMF properties: the
    /// allow-listed fields of spans and events), last value of each name.
    pub properties: Vec<(String, String)>,
}

impl Counter {
    /// A new counter with no dimensions and every measurement unset, as pip's `Counter(name, type)`.
    pub fn new(name: impl Into<String>, counter_type: CounterType) -> Counter {
        Counter::from_key(Key::from_name(name.into()), counter_type)
    }

    /// A new counter for `key` (its name, and its labels as dimensions) with every measurement unset.
    pub fn from_key(key: Key, counter_type: CounterType) -> Counter {
        Counter::with_text(Text::Key(Box::new(key)), counter_type)
    }

    /// A dump's record of a counter whose name and dimensions lie in the dump's text.
    pub(crate) fn dumped(text: TextAt, counter_type: CounterType) -> Counter {
        Counter::with_text(Text::Dumped(text), counter_type)
    }

    /// A new counter named by `text` with every measurement unset.
    fn with_text(text: Text, counter_type: CounterType) -> Counter {
        Counter {
            text,
            counter_type,
            last: None,
            count: None,
            min: None,
            max: None,
            average: None,
            sum: None,
            time: None,
            unit: None,
            distribution: None,
            properties: Vec::new(),
        }
    }

    /// The counter with `dimensions` (name/value pairs, in order) in place of its own.
    #[must_use]
    pub fn with_dimensions<K: Into<String>, V: Into<String>>(
        mut self,
        dimensions: impl IntoIterator<Item = (K, V)>,
    ) -> Counter {
        self.set_dimensions(dimensions);
        self
    }

    /// Replaces the counter's dimensions with `dimensions` (name/value pairs, in order).
    pub fn set_dimensions<K: Into<String>, V: Into<String>>(&mut self, dimensions: impl IntoIterator<Item = (K, V)>) {
        let labels: Vec<Label> = dimensions.into_iter().map(|(k, v)| Label::new(k.into(), v.into())).collect();
        self.text = Text::Key(Box::new(Key::from_parts(self.name().to_owned(), labels)));
    }

    /// The counter's name (a CloudWatch metric name).
    pub fn name(&self) -> &str {
        self.text.name()
    }

    /// The counter's dimensions, in order: the `metrics` labels or the event and span fields it was recorded
    /// with, as name/value pairs (a name may repeat: the sinks publish its last value).
    pub fn dimensions(&self) -> Dimensions<'_> {
        self.text.dimensions()
    }

    /// Whether the counter holds no measurement at all (a sink skips such counters).
    pub fn is_empty(&self) -> bool {
        self.last.is_none() && self.count.is_none() && self.time.is_none()
    }
}

/// Where a record's name and dimensions lie.
#[derive(Clone)]
enum Text {
    /// In a key of its own (a record built by hand, or a local read): boxed, so that a dump's records, which
    /// never are, stay small.
    Key(Box<Key>),
    /// In the text of the dump that made the record.
    Dumped(TextAt),
}

impl Text {
    fn name(&self) -> &str {
        match self {
            Text::Key(key) => key.name(),
            Text::Dumped(text) => text.name(),
        }
    }

    fn dimensions(&self) -> Dimensions<'_> {
        Dimensions(match self {
            Text::Key(key) => Inner::Labels(key.labels()),
            Text::Dumped(text) => Inner::Dumped(text.dimensions()),
        })
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Text").field("name", &self.name()).field("dimensions", &self.dimensions()).finish()
    }
}

/// The same name and the same dimensions whatever their order, as `metrics` keys compare: dimensions of one
/// name keep their order among themselves (the sinks publish the last one's value).
impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        let (mine, theirs) = (self.dimensions(), other.dimensions());
        if self.name() != other.name() || mine.len() != theirs.len() {
            return false;
        }
        if mine.clone().eq(theirs.clone()) {
            return true;
        }
        let (mut mine, mut theirs): (Vec<_>, Vec<_>) = (mine.collect(), theirs.collect());
        mine.sort_by_key(|&(name, _)| name);
        theirs.sort_by_key(|&(name, _)| name);
        mine == theirs
    }
}

/// A counter's dimensions ([`Counter::dimensions`]): name/value pairs, in order.
#[derive(Clone)]
pub struct Dimensions<'a>(Inner<'a>);

/// Where the dimensions lie: a key's labels, or a dump's text.
#[derive(Clone)]
enum Inner<'a> {
    Labels(std::slice::Iter<'a, Label>),
    Dumped(DimensionBounds<'a>),
}

impl Dimensions<'_> {
    /// Whether the counter has no dimensions (left to iterate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The pairs left, as a list.
impl fmt::Debug for Dimensions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

impl Dimensions<'_> {
    /// Whether these are `pairs`, in the same order.
    fn are<A: AsRef<str>, B: AsRef<str>>(&self, pairs: &[(A, B)]) -> bool {
        self.len() == pairs.len() && self.clone().zip(pairs).all(|((k, v), (a, b))| k == a.as_ref() && v == b.as_ref())
    }
}

/// Dimensions equal name/value pairs that hold the same text in the same order.
impl<A: AsRef<str>, B: AsRef<str>> PartialEq<[(A, B)]> for Dimensions<'_> {
    fn eq(&self, pairs: &[(A, B)]) -> bool {
        self.are(pairs)
    }
}

impl<A: AsRef<str>, B: AsRef<str>, const N: usize> PartialEq<[(A, B); N]> for Dimensions<'_> {
    fn eq(&self, pairs: &[(A, B); N]) -> bool {
        self.are(pairs)
    }
}

impl<A: AsRef<str>, B: AsRef<str>> PartialEq<Vec<(A, B)>> for Dimensions<'_> {
    fn eq(&self, pairs: &Vec<(A, B)>) -> bool {
        self.are(pairs)
    }
}

impl PartialEq for Dimensions<'_> {
    fn eq(&self, other: &Dimensions<'_>) -> bool {
        self.clone().eq(other.clone())
    }
}

impl<'a> Iterator for Dimensions<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        match &mut self.0 {
            Inner::Labels(labels) => labels.next().map(|label| (label.key(), label.value())),
            Inner::Dumped(dumped) => dumped.next(),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = match &self.0 {
            Inner::Labels(labels) => labels.len(),
            Inner::Dumped(dumped) => dumped.len(),
        };
        (len, Some(len))
    }
}

impl DoubleEndedIterator for Dimensions<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::Labels(labels) => labels.next_back().map(|label| (label.key(), label.value())),
            Inner::Dumped(dumped) => dumped.next_back(),
        }
    }
}

impl ExactSizeIterator for Dimensions<'_> {}

impl FusedIterator for Dimensions<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dumped_record_reads_and_compares_as_one_built_from_its_key() {
        use crate::model::dump_text::DumpTextWriter;
        let keys = [
            Key::from_parts("requests", vec![Label::new("route", "/"), Label::new("method", "GET")]),
            Key::from_name("plain"),
            Key::from_parts("r", vec![Label::new("a", "1"), Label::new("a", "2"), Label::new("b", "3")]),
        ];
        let mut text = DumpTextWriter::with_capacity((0, 0));
        let dumped: Vec<Counter> =
            keys.iter().map(|key| Counter::dumped(text.write(key).unwrap(), CounterType::Increment)).collect();
        text.finish();
        for (key, record) in keys.iter().zip(&dumped) {
            let built = Counter::from_key(key.clone(), CounterType::Increment);
            assert_eq!((record, &built), (&built, record));
            assert_eq!(record.name(), key.name());
            assert_eq!(record.dimensions(), built.dimensions());
            assert_eq!(record.dimensions().len(), key.labels().len());
            assert!(record.dimensions().rev().eq(built.dimensions().rev()));
            assert_eq!(format!("{record:?}"), format!("{built:?}"));
        }
        let named = |name: &str| Counter::new(name, CounterType::Increment);
        assert_eq!(dumped[0], named("requests").with_dimensions([("method", "GET"), ("route", "/")]), "any order");
        assert_ne!(dumped[0], named("requests").with_dimensions([("method", "GET"), ("route", "/x")]));
        assert_ne!(dumped[0], named("request").with_dimensions([("route", "/"), ("method", "GET")]));
        assert_eq!(dumped[2], named("r").with_dimensions([("b", "3"), ("a", "1"), ("a", "2")]));
        assert_ne!(
            dumped[2],
            named("r").with_dimensions([("a", "2"), ("a", "1"), ("b", "3")]),
            "a name's values in order"
        );
        assert_ne!(dumped[1], dumped[0]);
        assert_eq!(dumped[1].clone(), dumped[1]);
        assert!(format!("{:?}", dumped[0])
            .contains(r#"text: Text { name: "requests", dimensions: [("route", "/"), ("method", "GET")] }"#));
    }

    #[test]
    fn a_counter_reads_its_name_and_dimensions_from_its_key_in_order() {
        let key = Key::from_parts("requests", vec![Label::new("route", "/"), Label::new("method", "GET")]);
        let counter = Counter::from_key(key.clone(), CounterType::Increment);
        assert_eq!(counter.name(), "requests");
        assert_eq!(counter.dimensions().collect::<Vec<_>>(), [("route", "/"), ("method", "GET")]);
        assert_eq!(counter.dimensions().next_back(), Some(("method", "GET")));
        assert_eq!(counter.dimensions().len(), 2);
        assert_eq!(counter.dimensions(), [("route", "/"), ("method", "GET")]);
        assert_eq!(counter.dimensions(), vec![(String::from("route"), "/"), (String::from("method"), "GET")]);
        assert_ne!(counter.dimensions(), [("method", "GET"), ("route", "/")], "in order");
        assert_ne!(counter.dimensions(), [("route", "/")]);
        let mut built = Counter::new(String::from("requests"), CounterType::Increment);
        assert!(built.dimensions().is_empty());
        built.set_dimensions([("route", "/"), ("method", "GET")]);
        assert_eq!(built, counter);
        let other = built.clone().with_dimensions([("route", String::from("/x"))]);
        assert_eq!((other.name(), other.dimensions().collect::<Vec<_>>()), ("requests", vec![("route", "/x")]));
    }
}
