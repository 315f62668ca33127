//! pip-services' `Counter` record: one counter's measurements at the moment of a snapshot, under the `metrics`
//! key (name and labels) the counter was recorded with.

use std::iter::FusedIterator;
use std::time::SystemTime;

use metrics::{Key, Label};

use super::{CounterType, Distribution};

/// One counter's measurements at the moment of a snapshot, with pip's field names.
///
/// As in pip, a field the counter's type does not use stays `None`:
/// Increment fills `count`; LastValue fills `last`; Timestamp fills `time`;
/// Interval and Statistics fill `count`, `min`, `max`, `average`, `last` and (additions to pip) `sum` and, in a
/// period view with percentiles on, `distribution`.
///
/// The name and the dimensions are the counter's `metrics` key ([`name`](Counter::name),
/// [`dimensions`](Counter::dimensions), [`key`](Counter::key)): a dump shares the store's own copy of it, so
/// that a record costs no allocation for its text. Two records compare equal whatever the order of their
/// dimensions, as `metrics` keys do.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Counter {
    /// The counter's name (a CloudWatch metric name) and its labels (CloudWatch dimensions).
    key: Key,
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
        Counter {
            key,
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
        self.key = Key::from_parts(self.key.name().to_owned(), labels);
    }

    /// The counter's name (a CloudWatch metric name).
    pub fn name(&self) -> &str {
        self.key.name()
    }

    /// The counter's dimensions, in order: the `metrics` labels or the event and span fields it was recorded
    /// with, as name/value pairs (a name may repeat: the sinks publish its last value).
    pub fn dimensions(&self) -> Dimensions<'_> {
        Dimensions(self.key.labels())
    }

    /// The counter's `metrics` key: its name, and its dimensions as labels.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Whether the counter holds no measurement at all (a sink skips such counters).
    pub fn is_empty(&self) -> bool {
        self.last.is_none() && self.count.is_none() && self.time.is_none()
    }
}

/// A counter's dimensions ([`Counter::dimensions`]): name/value pairs, in order.
#[derive(Debug, Clone)]
pub struct Dimensions<'a>(std::slice::Iter<'a, Label>);

impl Dimensions<'_> {
    /// Whether the counter has no dimensions (left to iterate).
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
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
        self.0.next().map(|label| (label.key(), label.value()))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Dimensions<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|label| (label.key(), label.value()))
    }
}

impl ExactSizeIterator for Dimensions<'_> {}

impl FusedIterator for Dimensions<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(counter.key(), &key);
        let mut built = Counter::new(String::from("requests"), CounterType::Increment);
        assert!(built.dimensions().is_empty());
        built.set_dimensions([("route", "/"), ("method", "GET")]);
        assert_eq!(built, counter);
        let other = built.clone().with_dimensions([("route", String::from("/x"))]);
        assert_eq!((other.name(), other.dimensions().collect::<Vec<_>>()), ("requests", vec![("route", "/x")]));
    }
}
