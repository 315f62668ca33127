//! Counters -> Embedded Metric Format documents, checked against the EMF specification's limits.
//!
//! Counters with the same dimensions share documents: the dimension values and properties are root members, and
//! one `CloudWatchMetrics` directive names the namespace, the dimension sets (the counters' own, then the rollup
//! sets they have every dimension of) and the metrics. At most 100 metrics go in a document, a document stays
//! under 256 KB (65,000 bytes over UDP), names each metric once, and holds no two metrics with different values
//! of one property (a document has one value of each); more make more documents. A metric whose
//! document alone is too large with its properties goes without them (warned about); one too large even so is
//! skipped and counted (`too_large`).
//!
//! | CounterType | value                                                                                     |
//! |-------------|-------------------------------------------------------------------------------------------|
//! | Increment   | the period's count (a number)                                                             |
//! | Interval    | `{"Values":[..],"Counts":[..],"Max","Min","Count","Sum"}`: at most 100 values (percentiles)|
//! | Statistics  | the same; with negative samples or percentiles off, `{"Max","Min","Count","Sum"}`          |
//! | LastValue   | the level (a number)                                                                      |
//! | Timestamp   | epoch milliseconds (a number)                                                             |
//!
//! The specification's metric values are numbers or arrays of at most 100 numbers; CloudWatch also takes the
//! distribution objects above (AWS's OpenTelemetry exporter sends them), which keep SampleCount, Minimum,
//! Maximum and Sum exact and carry the percentiles of any number of samples.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use rapidhash::v3::{rapidhash_v3_nano_inline, RapidSecrets};
use rapidhash::{RapidHashMap, RapidHashSet};

use crate::model::{epoch_millis, Counter, CounterType, MAX_DIMENSIONS};
use crate::sink::units::unit_name;
use crate::sink::{limits, text};
use crate::sink::{merge_labels, SkipReason};

/// Most metrics in one document's directive.
pub(crate) const MAX_METRICS: usize = 100;
/// Most values in one metric's array.
pub(crate) const MAX_VALUES: usize = 100;
/// Largest document: a CloudWatch Logs event (256 KB, less the 26 bytes CloudWatch Logs counts for each event
/// on top of its message; the current specification allows 1 MB).
pub(crate) const MAX_DOCUMENT_BYTES: usize = 256 * 1024 - 26;
/// Largest document sent as one UDP datagram (with its newline, under the 65,507 bytes a datagram holds).
pub(crate) const MAX_DATAGRAM_BYTES: usize = 65_000;
/// Longest metric name or namespace.
const MAX_NAME_LEN: usize = 1024;
/// Longest dimension name.
const MAX_DIMENSION_NAME_LEN: usize = 250;
/// Longest dimension value.
const MAX_DIMENSION_VALUE_LEN: usize = 1024;

/// What every document of one dump shares.
#[derive(Debug, Clone)]
pub(crate) struct DocumentContext<'a> {
    pub(crate) namespace: &'a str,
    /// Dimensions of every metric, before the counter's own labels (which win over them).
    pub(crate) dimensions: &'a [(String, String)],
    /// More dimension sets each metric is also published with (those whose every name it has).
    pub(crate) rollups: &'a [Vec<String>],
    /// Properties of every document (root members that are not dimensions).
    pub(crate) properties: &'a [(String, String)],
    /// StorageResolution of every metric unless its name starts with a high-resolution prefix.
    pub(crate) high_resolution: &'a [String],
    /// Largest document ([`MAX_DOCUMENT_BYTES`], or [`MAX_DATAGRAM_BYTES`] over UDP).
    pub(crate) max_bytes: usize,
    pub(crate) now: SystemTime,
}

/// The documents of one dump (each with the indices of the counters it holds), and the counters skipped with why.
#[derive(Debug, Default)]
pub(crate) struct Built {
    pub(crate) documents: Vec<(String, Vec<usize>)>,
    pub(crate) skipped: Vec<(usize, SkipReason)>,
    /// Counters whose document went without its properties, too large with them.
    pub(crate) without_properties: Vec<usize>,
    /// Counters written whose labels repeated a name (the last value is published).
    pub(crate) deduplicated: u64,
}

/// Dimension (or property) names and values.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// A group's dimensions and their hash ([`dimensions_hash`], worked out once): the map hashes the hash alone.
#[derive(Clone, Default, PartialEq, Eq)]
struct GroupKey<'a> {
    hash: u64,
    dimensions: Pairs<'a>,
}

impl Hash for GroupKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// A hash of `dimensions`, in their order: each name and value hashed alone (its length included), then folded.
/// Cheaper than hashing the pairs as a slice, which mixes every part's length and end marker in one by one.
fn dimensions_hash(dimensions: &[(&str, &str)]) -> u64 {
    const NAME: RapidSecrets = RapidSecrets::seed_cpp(1);
    const VALUE: RapidSecrets = RapidSecrets::seed_cpp(2);
    let hash = |text: &str, secrets: &RapidSecrets| rapidhash_v3_nano_inline::<false, false>(text.as_bytes(), secrets);
    dimensions.iter().fold(dimensions.len() as u64, |sum, (name, value)| {
        (sum.rotate_left(29) ^ hash(name, &NAME)).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ hash(value, &VALUE)
    })
}

/// A counter's metric, its properties and its index among the dump's counters.
type Entry<'a> = (Metric<'a>, Vec<(&'a str, &'a str)>, usize);

/// Counters of the same dimensions, none of the same name.
struct Group<'a> {
    dimensions: Pairs<'a>,
    /// The first of the dimensions that cannot be sent, its index and why, checked once when the group was made:
    /// every counter of these dimensions is skipped (for its name, if a dimension up to that one has its name).
    invalid: Option<(usize, SkipReason)>,
    entries: Vec<Entry<'a>>,
    /// The names of the entries, kept once a counter whose labels replaced a dimension joined the group (only
    /// then can two of its counters have one name: otherwise each has its own key, and a dump takes each key
    /// once, see the store's expiry).
    names: Option<RapidHashSet<&'a str>>,
    /// The next group of these dimensions, for the names this one has.
    next: Option<usize>,
}

impl<'a> Group<'a> {
    /// The group, `group` or one after it of the same dimensions (made if need be), that takes a metric named
    /// `name`; `merged`: its counter's labels replaced a dimension.
    fn taking(groups: &mut Vec<Group<'a>>, mut group: usize, name: &'a str, merged: bool) -> usize {
        loop {
            let len = groups.len();
            let g = &mut groups[group];
            if g.names.is_none() && merged {
                g.names = Some(g.entries.iter().map(|(metric, _, _)| metric.name).collect());
            }
            if g.names.as_mut().is_none_or(|names| names.insert(name)) {
                return group;
            }
            group = if let Some(next) = g.next {
                next
            } else {
                let copy = Group {
                    dimensions: g.dimensions.clone(),
                    invalid: g.invalid,
                    entries: Vec::new(),
                    names: Some(RapidHashSet::default()),
                    next: None,
                };
                g.next = Some(len);
                groups.push(copy);
                len
            };
        }
    }
}

/// One metric ready for a document: its definition and its value.
struct Metric<'a> {
    name: &'a str,
    /// The name has nothing a JSON string escapes.
    plain: bool,
    unit: &'static str,
    high_resolution: bool,
    value: Value,
}

impl Metric<'_> {
    /// The metric's name as a JSON string.
    fn write_name(&self, doc: &mut String) {
        escaped_string(doc, self.name, !self.plain);
    }
}

/// A metric's value: a number, written as the document is, or a distribution object's JSON text.
enum Value {
    Number(f64),
    Json(String),
}

impl Value {
    fn write(&self, out: &mut String) {
        match self {
            Value::Number(value) => push_number(out, *value),
            Value::Json(json) => out.push_str(json),
        }
    }
}

/// Builds the documents for `counters`.
///
/// A document names each metric once: two counters with the same name and the same dimensions once the
/// defaults are merged in (a label that repeats a default dimension's value, or a label name given twice) go
/// into separate documents, which CloudWatch adds up, instead of one document with the name twice, of which
/// CloudWatch would keep one value.
pub(crate) fn documents(counters: &[Counter], ctx: &DocumentContext<'_>) -> Built {
    let mut out = Built::default();
    // Counters grouped by their dimensions (found by hash), the groups then in the order of their dimensions.
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut group_of: RapidHashMap<GroupKey<'_>, usize> = RapidHashMap::default();
    // Each counter's dimensions, in one buffer: only a new group keeps a copy.
    let mut key = GroupKey::default();
    for (i, counter) in counters.iter().enumerate() {
        let name = counter.name();
        // Read once for what its JSON string escapes too.
        let Some(plain) = limits::valid_nonblank_plain(name, MAX_NAME_LEN).filter(|_| name != "_aws") else {
            out.skipped.push((i, SkipReason::MetricName));
            continue;
        };
        let (merged, deduplicated) = merge_dimensions(counter, ctx, &mut key.dimensions);
        if key.dimensions.len() > MAX_DIMENSIONS {
            out.skipped.push((i, SkipReason::TooManyDimensions));
            continue;
        }
        key.hash = dimensions_hash(&key.dimensions);
        let group = if let Some(&group) = group_of.get(&key) {
            group
        } else {
            // The dimensions are checked once, for every counter that has them.
            group_of.insert(key.clone(), groups.len());
            let invalid = invalid_dimension(&key.dimensions);
            let dimensions = key.dimensions.clone();
            groups.push(Group { dimensions, invalid, entries: Vec::new(), names: None, next: None });
            groups.len() - 1
        };
        match sendable(&groups[group], name).and_then(|()| metric(counter, ctx, name, plain)) {
            Ok(metric) => {
                let mut properties: Pairs<'_> =
                    counter.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                // In one order, so that the same properties compare equal (names are unique in a counter).
                properties.sort_unstable();
                let group = Group::taking(&mut groups, group, name, merged);
                groups[group].entries.push((metric, properties, i));
                out.deduplicated += u64::from(deduplicated);
            }
            Err(reason) => out.skipped.push((i, reason)),
        }
    }
    groups.sort_by(|a, b| a.dimensions.cmp(&b.dimensions));
    let timestamp = ctx.now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    for Group { dimensions, mut entries, .. } in groups {
        if entries.is_empty() {
            // Every counter of these dimensions was skipped.
            continue;
        }
        let sets = dimension_sets(&dimensions, ctx.rollups);
        if entries.iter().any(|(_, properties, _)| !properties.is_empty()) {
            // The counters of the same properties next to each other: as few documents as they allow.
            entries.sort_by(|a, b| a.1.cmp(&b.1));
        }
        let mut rest = entries.as_slice();
        while !rest.is_empty() {
            // At most 100 metrics, all with the same properties: a document's properties are every metric's.
            let fit = (1..rest.len().min(MAX_METRICS))
                .find(|&n| conflicts(&rest[..n], &rest[n].1))
                .unwrap_or(rest.len().min(MAX_METRICS));
            let (chunk, after) = rest.split_at(fit);
            write_documents(&mut out, ctx, timestamp, &dimensions, &sets, chunk);
            rest = after;
        }
    }
    out
}

/// Whether `properties` (sorted) are not those of `entries` (which all have the same ones): a property one lacks
/// or gives another value. A document's properties are read as every one of its metrics', so a metric without a
/// request's id does not share a document that carries one.
fn conflicts(entries: &[Entry<'_>], properties: &[(&str, &str)]) -> bool {
    entries.first().is_some_and(|(_, theirs, _)| theirs.as_slice() != properties)
}

/// Writes `metrics` as one document, or as several when one would pass `ctx.max_bytes`. A single metric whose
/// document is still too large (long properties) goes without its properties; one too large even so (its
/// dimensions and rollup sets) is skipped ([`SkipReason::TooLarge`]): the destination would refuse it, and over
/// UDP it would not fit a datagram.
fn write_documents(
    out: &mut Built,
    ctx: &DocumentContext<'_>,
    timestamp: u128,
    dimensions: &[(&str, &str)],
    sets: &[Vec<&str>],
    metrics: &[Entry<'_>],
) {
    let sources = || metrics.iter().map(|(_, _, i)| *i).collect();
    let full = document(ctx, timestamp, dimensions, sets, metrics, true);
    if full.len() <= ctx.max_bytes {
        out.documents.push((full, sources()));
    } else if let [(_, _, i)] = metrics {
        let bare = document(ctx, timestamp, dimensions, sets, metrics, false);
        if bare.len() <= ctx.max_bytes {
            out.documents.push((bare, sources()));
            out.without_properties.push(*i);
        } else {
            out.skipped.push((*i, SkipReason::TooLarge));
        }
    } else {
        let (left, right) = metrics.split_at(metrics.len() / 2);
        write_documents(out, ctx, timestamp, dimensions, sets, left);
        write_documents(out, ctx, timestamp, dimensions, sets, right);
    }
}

/// One document of `metrics`, with the dump's and the metrics' properties unless `with_properties` is false.
fn document(
    ctx: &DocumentContext<'_>,
    timestamp: u128,
    dimensions: &[(&str, &str)],
    sets: &[Vec<&str>],
    metrics: &[Entry<'_>],
    with_properties: bool,
) -> String {
    // A metric takes its name twice (directive and member) and about 40 bytes more.
    let names: usize = metrics.iter().map(|(m, _, _)| m.name.len()).sum();
    let mut doc = String::with_capacity(256 + 2 * names + metrics.len() * 48);
    doc.push_str("{\"_aws\":{\"Timestamp\":");
    doc.push_str(itoa::Buffer::new().format(timestamp));
    doc.push_str(",\"CloudWatchMetrics\":[{\"Namespace\":");
    string(&mut doc, ctx.namespace);
    doc.push_str(",\"Dimensions\":[");
    for (i, set) in sets.iter().enumerate() {
        doc.push_str(if i == 0 { "[" } else { ",[" });
        for (j, name) in set.iter().enumerate() {
            if j > 0 {
                doc.push(',');
            }
            string(&mut doc, name);
        }
        doc.push(']');
    }
    doc.push_str("],\"Metrics\":[");
    for (i, (m, _, _)) in metrics.iter().enumerate() {
        doc.push_str(if i == 0 { "{\"Name\":" } else { ",{\"Name\":" });
        m.write_name(&mut doc);
        doc.push_str(",\"Unit\":\"");
        doc.push_str(m.unit);
        doc.push('"');
        if m.high_resolution {
            doc.push_str(",\"StorageResolution\":1");
        }
        doc.push('}');
    }
    doc.push_str("]}]}");
    for (name, value) in dimensions {
        member(&mut doc, name, |doc| string(doc, value));
    }
    // Properties: the dump's, then the metrics' own; a name already used by a dimension or a metric is left out.
    let taken = |name: &str| {
        name == "_aws" || dimensions.iter().any(|(d, _)| *d == name) || metrics.iter().any(|(m, _, _)| m.name == name)
    };
    let mut written: Vec<&str> = Vec::new();
    let own = metrics.iter().flat_map(|(_, properties, _)| properties.iter().copied());
    let all = ctx.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(own).filter(|_| with_properties);
    let mut properties: Vec<(&str, &str)> = Vec::new();
    for (name, value) in all {
        match properties.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => properties.push((name, value)),
        }
    }
    for (name, value) in properties {
        if !taken(name) && !written.contains(&name) {
            member(&mut doc, name, |doc| string(doc, value));
            written.push(name);
        }
    }
    for (m, _, _) in metrics {
        doc.push(',');
        m.write_name(&mut doc);
        doc.push(':');
        m.value.write(&mut doc);
    }
    doc.push('}');
    doc
}

/// Writes `,"name":` then the value.
fn member(doc: &mut String, name: &str, value: impl FnOnce(&mut String)) {
    doc.push(',');
    string(doc, name);
    doc.push(':');
    value(doc);
}

/// The dimension sets of a group: its own, then each rollup set whose every name it has (without repeats).
fn dimension_sets<'a>(dimensions: &[(&'a str, &'a str)], rollups: &[Vec<String>]) -> Vec<Vec<&'a str>> {
    let mut sets = vec![dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()];
    for rollup in rollups {
        if rollup.iter().all(|r| dimensions.iter().any(|(name, _)| name == r)) {
            let set: Vec<&str> =
                dimensions.iter().map(|(name, _)| *name).filter(|name| rollup.iter().any(|r| r == name)).collect();
            if !sets.contains(&set) {
                sets.push(set);
            }
        }
    }
    sets
}

/// Whether a dimension can go into a document: a name and value CloudWatch takes, the name not one EMF reserves.
pub(crate) fn check_dimension(key: &str, value: &str) -> Result<(), SkipReason> {
    if !limits::valid_nonblank(key, MAX_DIMENSION_NAME_LEN) || key.starts_with(':') || key == "_aws" {
        return Err(SkipReason::DimensionName);
    }
    if !limits::valid_nonblank(value, MAX_DIMENSION_VALUE_LEN) {
        return Err(SkipReason::DimensionValue);
    }
    Ok(())
}

/// Writes a counter's dimensions into `dimensions`: the defaults, then its labels (a label of a default's name
/// takes its place; of an earlier label's name, too: the last value is published). Returns whether a label
/// replaced one of them (then another counter, another key, may have these dimensions and this name), and whether
/// it replaced an earlier label (counted as `dimensions_deduplicated`, as the CloudWatch sink does).
fn merge_dimensions<'a>(counter: &'a Counter, ctx: &DocumentContext<'a>, dimensions: &mut Pairs<'a>) -> (bool, bool) {
    dimensions.clear();
    dimensions.extend(ctx.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let labels = counter.dimensions();
    let defaults = ctx.dimensions.len();
    // Fewer dimensions than the defaults and the labels: a label replaced one of them.
    let merged_from = defaults + labels.len();
    let deduplicated = merge_labels(dimensions, 0..defaults, labels);
    (dimensions.len() < merged_from, deduplicated)
}

/// The first of `dimensions` that cannot go into a document ([`check_dimension`]), its index and why.
fn invalid_dimension(dimensions: &[(&str, &str)]) -> Option<(usize, SkipReason)> {
    dimensions.iter().enumerate().find_map(|(i, (key, value))| check_dimension(key, value).err().map(|r| (i, r)))
}

/// Whether a metric named `name` can go into a document of `group`'s dimensions, read in their order as a
/// counter's own checks would be: a dimension of its name ([`SkipReason::DimensionName`]) or one that cannot be
/// sent, whichever comes first.
fn sendable(group: &Group<'_>, name: &str) -> Result<(), SkipReason> {
    let checked = group.invalid.map_or(group.dimensions.len(), |(at, _)| at + 1);
    if group.dimensions[..checked].iter().any(|(key, _)| *key == name) {
        return Err(SkipReason::DimensionName);
    }
    group.invalid.map_or(Ok(()), |(_, reason)| Err(reason))
}

/// The metric of a counter named `name` (a valid metric name; `plain`: with nothing a JSON string escapes), or
/// why its value cannot be sent.
fn metric<'a>(
    counter: &'a Counter,
    ctx: &DocumentContext<'a>,
    name: &'a str,
    plain: bool,
) -> Result<Metric<'a>, SkipReason> {
    let described = counter.unit.and_then(unit_name);
    let (unit, value) = match counter.counter_type {
        CounterType::Increment => {
            let value = counter.sum.or(counter.count.map(|c| c as f64)).ok_or(SkipReason::Value)?;
            // Count unless a unit was described: then that unit, or none where CloudWatch has no equivalent.
            let unit = if counter.unit.is_some() { described.unwrap_or("None") } else { "Count" };
            (unit, Value::Number(limits::check_value(value)?))
        }
        CounterType::Interval => ("Milliseconds", Value::Json(samples(counter)?)),
        CounterType::Statistics => (described.unwrap_or("None"), Value::Json(samples(counter)?)),
        CounterType::LastValue => {
            let value = limits::check_value(counter.last.ok_or(SkipReason::Value)?)?;
            (described.unwrap_or("None"), Value::Number(value))
        }
        CounterType::Timestamp => ("None", Value::Number(epoch_millis(counter.time.ok_or(SkipReason::Value)?))),
    };
    let high_resolution = ctx.high_resolution.iter().any(|p| name.starts_with(p.as_str()));
    Ok(Metric { name, plain, unit, high_resolution, value })
}

/// A period's samples: values and counts with the exact statistics, or the statistics alone.
fn samples(counter: &Counter) -> Result<String, SkipReason> {
    let count = counter.count.filter(|&n| n > 0).ok_or(SkipReason::EmptyStatistics)?;
    let (Some(sum), Some(min), Some(max)) = (counter.sum, counter.min, counter.max) else {
        return Err(SkipReason::EmptyStatistics);
    };
    let mut out = String::from("{");
    if let Some(sent) = counter.percentile_values(MAX_VALUES) {
        out.push_str("\"Values\":[");
        list(&mut out, &sent.values);
        out.push_str("],\"Counts\":[");
        list(&mut out, &sent.counts);
        out.push_str("],");
    }
    out.push_str("\"Max\":");
    push_number(&mut out, max);
    out.push_str(",\"Min\":");
    push_number(&mut out, min);
    out.push_str(",\"Count\":");
    out.push_str(itoa::Buffer::new().format(count));
    out.push_str(",\"Sum\":");
    push_number(&mut out, limits::sum_in_range(sum));
    out.push('}');
    Ok(out)
}

fn list(out: &mut String, values: &[f64]) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_number(out, *v);
    }
}

/// Appends a finite number as JSON to `out` (whole numbers without a fraction, very large or small ones with
/// an exponent).
fn push_number(out: &mut String, value: f64) {
    // Whole, by a round trip through an integer (`fract` is a call into libm).
    if value.abs() < 1e15 && (value as i64) as f64 == value {
        out.push_str(itoa::Buffer::new().format(value as i64));
    } else {
        let _ = write!(out, "{value:?}");
    }
}

/// `s` as a JSON string.
pub(crate) fn string(out: &mut String, s: &str) {
    escaped_string(out, s, text::needs_json_escape(s));
}

/// `s` as a JSON string, escaped only if `escape` (whether it has something to escape, found already).
#[inline]
fn escaped_string(out: &mut String, s: &str, escape: bool) {
    if escape {
        escaping(out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// `s` as a JSON string, escaped.
#[cold]
fn escaping(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
