//! Counter -> CloudWatch `MetricDatum`, as pip's CloudWatchCounters maps it, checked against CloudWatch's limits.
//!
//! | CounterType | Unit         | payload                                                        |
//! |-------------|--------------|----------------------------------------------------------------|
//! | Increment   | Count        | `Value = count`                                                |
//! | Interval    | Milliseconds | `Values`/`Counts` (percentiles), else `StatisticValues`        |
//! | Statistics  | None         | the same                                                       |
//! | LastValue   | None         | `Value = last`                                                 |
//! | Timestamp   | None         | `Value = epoch ms of time`, `Timestamp = time`                 |
//!
//! With percentiles on (the default), a period of Interval or Statistics samples goes out as at most 150
//! `Values` with their `Counts` ([`Counter::percentile_values`]), so that CloudWatch computes percentiles;
//! SampleCount, Minimum, Maximum and Sum stay exact. Without percentiles, or for a period with negative
//! samples, it is pip's `StatisticValues {SampleCount = count, Sum, Minimum, Maximum}`.
//!
//! Dimensions: `InstanceID = instance`, then the counter's own; a repeated name keeps its last label's value (a
//! counter's own `InstanceID` wins), and that is counted.

use std::time::SystemTime;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::builders::MetricDatumBuilder;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};

use crate::model::{epoch_millis, MAX_DIMENSIONS, TELEMETRY_PREFIX};
use crate::model::{Counter, CounterType};
use crate::sink::limits;
use crate::sink::{merge_labels, SkipReason};

/// Most values one datum's `Values` may hold.
pub(crate) const MAX_VALUES_PER_DATUM: usize = 150;

/// The dimension every datum carries (pip's).
pub(crate) const INSTANCE_DIMENSION: &str = "InstanceID";

/// What every datum of one dump shares.
#[derive(Debug, Clone)]
pub(crate) struct DatumContext<'a> {
    /// The InstanceID dimension's value; `None`: no InstanceID dimension.
    pub(crate) instance: Option<&'a str>,
    /// Dimensions of every datum, after InstanceID (a counter's own label of the same name wins).
    pub(crate) dimensions: &'a [(String, String)],
    /// Whether each metric is also published without InstanceID.
    pub(crate) rollup: bool,
    /// More dimension sets each metric is also published with (those whose every name it has).
    pub(crate) rollups: &'a [Vec<String>],
    /// StorageResolution: 60 or 1.
    pub(crate) storage_resolution: i32,
    /// Metric name prefixes published at StorageResolution 1.
    pub(crate) high_resolution: &'a [String],
    /// The time of the dump, for the timestamp limits.
    pub(crate) now: SystemTime,
}

/// Dimension names and values, in the order they are sent.
type Pairs<'a> = Vec<(&'a str, &'a str)>;

/// A counter's datums (its own, then its rollups) and whether its dimensions had a repeated name.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) datums: Vec<MetricDatum>,
    pub(crate) deduplicated: bool,
}

/// The datum's dimensions: InstanceID, the default dimensions, then the counter's own. CloudWatch refuses a whole
/// request in which one datum names a dimension twice, so a repeated name keeps its last value: a label replaces
/// a default dimension silently, and a label repeating InstanceID or another label is counted (the second
/// value says whether that happened).
fn dimension_pairs<'a>(counter: &'a Counter, ctx: &DatumContext<'a>) -> Result<(Pairs<'a>, bool), SkipReason> {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(counter.dimensions().len() + ctx.dimensions.len() + 1);
    // The crate's own telemetry is one metric for the whole fleet, not one per instance.
    if !counter.name().starts_with(TELEMETRY_PREFIX) {
        pairs.extend(ctx.instance.map(|instance| (INSTANCE_DIMENSION, instance)));
    }
    let defaults_from = pairs.len();
    for (name, value) in ctx.dimensions {
        match pairs.iter_mut().find(|(seen, _)| *seen == name) {
            Some(pair) => pair.1 = value,
            None => pairs.push((name, value)),
        }
    }
    let defaults = defaults_from..pairs.len();
    let deduplicated = merge_labels(&mut pairs, defaults, counter.dimensions());
    if pairs.len() > MAX_DIMENSIONS {
        return Err(SkipReason::TooManyDimensions);
    }
    for (name, value) in &pairs {
        limits::check_dimension(name, value)?;
    }
    Ok((pairs, deduplicated))
}

/// The dimension sets a counter is published with: its own, then (without repeats) the one without InstanceID
/// when `rollup` is on, and each rollup set whose every name it has.
fn dimension_sets<'a>(pairs: &[(&'a str, &'a str)], ctx: &DatumContext<'_>) -> Vec<Pairs<'a>> {
    let mut sets = vec![pairs.to_vec()];
    let mut add = |set: Vec<(&'a str, &'a str)>| {
        if !sets.contains(&set) {
            sets.push(set);
        }
    };
    if ctx.rollup {
        add(pairs.iter().copied().filter(|(name, _)| *name != INSTANCE_DIMENSION).collect());
    }
    for names in ctx.rollups {
        if names.iter().all(|n| pairs.iter().any(|(name, _)| name == n)) {
            add(pairs.iter().copied().filter(|(name, _)| names.iter().any(|n| n == name)).collect());
        }
    }
    sets
}

/// The datums for `counter` (its own, then its rollups), or why it cannot be sent.
pub(crate) fn to_datum(counter: &Counter, ctx: &DatumContext<'_>) -> Result<Built, SkipReason> {
    limits::check_metric_name(counter.name())?;
    if ctx.storage_resolution != 1 && ctx.storage_resolution != DEFAULT_STORAGE_RESOLUTION {
        return Err(SkipReason::StorageResolution);
    }
    let (pairs, deduplicated) = dimension_pairs(counter, ctx)?;
    // 60, CloudWatch's default, is left out: 20 of the 148 bytes a datum of one dimension takes in a request,
    // which would otherwise be encoded and gzipped again for every datum.
    let resolution = Some(storage_resolution(counter, ctx)).filter(|&r| r != DEFAULT_STORAGE_RESOLUTION);
    let datum = MetricDatum::builder().metric_name(counter.name()).set_storage_resolution(resolution);
    let datum = match counter.counter_type {
        CounterType::Increment => {
            // A fractional total (tracing events) is exact in `sum`; a whole one is `count`.
            let value = counter.sum.or(counter.count.map(|count| count as f64)).ok_or(SkipReason::Value)?;
            // Count unless a unit was described: then that unit, or none where CloudWatch has no equivalent.
            let unit = match counter.unit {
                Some(_) => described_unit(counter).unwrap_or(StandardUnit::None),
                None => StandardUnit::Count,
            };
            datum.unit(unit).value(limits::check_value(value)?)
        }
        CounterType::Interval => samples(datum.unit(StandardUnit::Milliseconds), counter)?,
        CounterType::Statistics => samples(datum.unit(described_unit(counter).unwrap_or(StandardUnit::None)), counter)?,
        CounterType::LastValue => {
            let value = limits::check_value(counter.last.ok_or(SkipReason::Value)?)?;
            datum.unit(described_unit(counter).unwrap_or(StandardUnit::None)).value(value)
        }
        CounterType::Timestamp => {
            let time = limits::check_timestamp(counter.time.ok_or(SkipReason::Value)?, ctx.now)?;
            datum.unit(StandardUnit::None).value(epoch_millis(time)).timestamp(DateTime::from(time))
        }
    };
    let datums = dimension_sets(&pairs, ctx)
        .into_iter()
        .map(|set| {
            let dimensions = set.into_iter().map(|(name, value)| Dimension::builder().name(name).value(value).build());
            datum.clone().set_dimensions(Some(dimensions.collect())).build()
        })
        .collect();
    Ok(Built { datums, deduplicated })
}

/// The StorageResolution CloudWatch gives a datum that has none.
const DEFAULT_STORAGE_RESOLUTION: i32 = 60;

/// 1 for a metric whose name starts with one of the high-resolution prefixes, else the configured one.
fn storage_resolution(counter: &Counter, ctx: &DatumContext<'_>) -> i32 {
    if ctx.high_resolution.iter().any(|prefix| counter.name().starts_with(prefix.as_str())) {
        1
    } else {
        ctx.storage_resolution
    }
}

/// The CloudWatch unit for a `metrics` unit, where the two mean exactly the same thing.
pub(crate) fn cloudwatch_unit(unit: metrics::Unit) -> Option<StandardUnit> {
    crate::sink::units::unit_name(unit).map(StandardUnit::from)
}

fn described_unit(counter: &Counter) -> Option<StandardUnit> {
    counter.unit.and_then(cloudwatch_unit)
}

/// A period's samples: values and counts when the counter carries a usable distribution, else the statistic set.
fn samples(datum: MetricDatumBuilder, counter: &Counter) -> Result<MetricDatumBuilder, SkipReason> {
    let Some(sent) = counter.percentile_values(MAX_VALUES_PER_DATUM) else {
        return Ok(datum.statistic_values(statistic_set(counter)?));
    };
    for value in &sent.values {
        limits::check_value(*value)?;
    }
    Ok(datum.set_values(Some(sent.values)).set_counts(Some(sent.counts)))
}

fn statistic_set(counter: &Counter) -> Result<StatisticSet, SkipReason> {
    let samples = counter.count.filter(|&n| n > 0).ok_or(SkipReason::EmptyStatistics)?;
    let sum = counter.sum.or_else(|| counter.average.map(|avg| avg * samples as f64));
    let (Some(sum), Some(min), Some(max)) = (sum, counter.min, counter.max) else {
        return Err(SkipReason::EmptyStatistics);
    };
    Ok(StatisticSet::builder()
        .sample_count(samples as f64)
        .sum(limits::check_value(limits::sum_in_range(sum))?)
        .minimum(limits::check_value(min)?)
        .maximum(limits::check_value(max)?)
        .build())
}

/// A conservative estimate of a datum's size in a request body, for the 1 MB request limit.
pub(crate) fn estimated_size(datum: &MetricDatum) -> usize {
    const FIXED: usize = 160;
    let dims: usize =
        datum.dimensions().iter().map(|d| 24 + d.name().map_or(0, str::len) + d.value().map_or(0, str::len)).sum();
    // A value and its count: two doubles, with room for the JSON protocol's decimal text.
    let values = datum.values().len() * 64;
    FIXED + datum.metric_name().map_or(0, str::len) + dims + values
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ctx() -> DatumContext<'static> {
        DatumContext {
            instance: Some("host-1"),
            dimensions: &[],
            rollup: false,
            rollups: &[],
            storage_resolution: 60,
            high_resolution: &[],
            now: SystemTime::now(),
        }
    }

    fn stats(kind: CounterType) -> Counter {
        let mut c = Counter::new("op.exec_time", kind);
        (c.count, c.sum, c.min, c.max, c.average, c.last) =
            (Some(4), Some(10.0), Some(1.0), Some(4.0), Some(2.5), Some(4.0));
        c
    }

    #[test]
    fn each_type_maps_as_pip_does() {
        let mut inc = Counter::new("calls", CounterType::Increment);
        inc.count = Some(7);
        let d = to_datum(&inc, &ctx()).unwrap().datums.remove(0);
        assert_eq!((d.unit(), d.value(), d.timestamp()), (Some(&StandardUnit::Count), Some(7.0), None));
        assert_eq!(d.dimensions()[0].name(), Some("InstanceID"));
        assert_eq!(d.dimensions()[0].value(), Some("host-1"));

        for (kind, unit) in
            [(CounterType::Interval, StandardUnit::Milliseconds), (CounterType::Statistics, StandardUnit::None)]
        {
            let d = to_datum(&stats(kind), &ctx()).unwrap().datums.remove(0);
            assert_eq!(d.unit(), Some(&unit));
            let s = d.statistic_values().unwrap();
            assert_eq!(
                (s.sample_count(), s.sum(), s.minimum(), s.maximum()),
                (Some(4.0), Some(10.0), Some(1.0), Some(4.0))
            );
            assert_eq!(d.value(), None);
        }

        let mut last = Counter::new("queue", CounterType::LastValue);
        last.last = Some(3.5);
        let d = to_datum(&last, &ctx()).unwrap().datums.remove(0);
        assert_eq!((d.unit(), d.value()), (Some(&StandardUnit::None), Some(3.5)));

        let when = SystemTime::now() - Duration::from_secs(60);
        let mut ts = Counter::new("backup", CounterType::Timestamp);
        ts.time = Some(when);
        let d = to_datum(&ts, &ctx()).unwrap().datums.remove(0);
        assert_eq!(d.value(), Some(epoch_millis(when)));
        assert_eq!(d.timestamp(), Some(&DateTime::from(when)));
    }

    #[test]
    fn a_sum_past_the_range_goes_out_as_the_nearest_value_in_it_with_the_period() {
        use crate::model::{MAX_VALUE, MIN_VALUE};
        let mut big = stats(CounterType::Statistics);
        (big.count, big.sum, big.min, big.max) = (Some(2), Some(4e108), Some(2e108), Some(2e108));
        let s = to_datum(&big, &ctx()).expect("sent").datums.remove(0).statistic_values().cloned().expect("a set");
        assert_eq!((s.sample_count(), s.sum(), s.maximum()), (Some(2.0), Some(MAX_VALUE), Some(2e108)));
        let mut cancelled = stats(CounterType::Statistics);
        (cancelled.count, cancelled.sum, cancelled.min, cancelled.max) =
            (Some(2), Some(MIN_VALUE / 4.0), Some(-1.0), Some(1.0));
        let s =
            to_datum(&cancelled, &ctx()).expect("sent").datums.remove(0).statistic_values().cloned().expect("a set");
        assert_eq!(s.sum(), Some(0.0));
    }

    #[test]
    fn a_period_with_a_distribution_goes_out_as_values_and_counts_unless_it_has_negative_samples() {
        use crate::model::distribution::bucket_index;
        use crate::model::Distribution;
        let mut c = stats(CounterType::Interval);
        let buckets = [1.0, 2.0, 3.0, 4.0].iter().map(|&v| (bucket_index(v), 1)).collect();
        c.distribution = Some(Distribution::from_parts(0, 0, buckets));
        let d = to_datum(&c, &ctx()).unwrap().datums.remove(0);
        assert_eq!((d.values(), d.counts()), ([1.0, 2.0, 3.0, 4.0].as_slice(), [1.0; 4].as_slice()));
        assert!(d.statistic_values().is_none(), "CloudWatch refuses neither, but one source of truth is sent");
        assert!(estimated_size(&d) >= 4 * 64, "the values count towards the request size");
        let mut negative = stats(CounterType::Statistics);
        (negative.min, negative.sum) = (Some(-2.0), Some(5.0));
        let buckets = [2.0, 1.0, 4.0].iter().map(|&v| (bucket_index(v), 1)).collect();
        negative.distribution = Some(Distribution::from_parts(0, 1, buckets));
        let d = to_datum(&negative, &ctx()).unwrap().datums.remove(0);
        assert!(d.values().is_empty());
        assert_eq!(d.statistic_values().and_then(StatisticSet::minimum), Some(-2.0));
    }

    #[test]
    fn metrics_named_with_a_high_resolution_prefix_get_one_second_resolution() {
        let prefixes = ["api.".to_owned(), "checkout".to_owned()];
        let ctx = DatumContext { high_resolution: &prefixes, ..ctx() };
        let resolution = |name: &str| {
            let mut c = Counter::new(name, CounterType::Increment);
            c.count = Some(1);
            to_datum(&c, &ctx).unwrap().datums.remove(0).storage_resolution()
        };
        assert_eq!(resolution("api.latency"), Some(1));
        assert_eq!(resolution("checkout.exec_time"), Some(1));
        // 60, CloudWatch's default, is left out of the datum.
        assert_eq!(resolution("apis"), None, "a prefix, not a substring");
        assert_eq!(resolution("db.query"), None);
        // Every metric at high resolution (`high_resolution(true)`): 1, sent for each.
        let everywhere = DatumContext { storage_resolution: 1, high_resolution: &[], ..ctx };
        let mut c = Counter::new("db.query", CounterType::Increment);
        c.count = Some(1);
        assert_eq!(to_datum(&c, &everywhere).unwrap().datums.remove(0).storage_resolution(), Some(1));
    }

    #[test]
    fn described_units_map_only_to_exact_cloudwatch_units() {
        use metrics::Unit as M;
        let mut heap = Counter::new("heap", CounterType::LastValue);
        (heap.last, heap.unit) = (Some(1024.0), Some(metrics::Unit::Bytes));
        assert_eq!(to_datum(&heap, &ctx()).unwrap().datums.remove(0).unit(), Some(&StandardUnit::Bytes));
        assert_eq!(cloudwatch_unit(metrics::Unit::Kibibytes), None);
        let every = [
            (M::Count, Some(StandardUnit::Count)),
            (M::Percent, Some(StandardUnit::Percent)),
            (M::Seconds, Some(StandardUnit::Seconds)),
            (M::Milliseconds, Some(StandardUnit::Milliseconds)),
            (M::Microseconds, Some(StandardUnit::Microseconds)),
            (M::Nanoseconds, None),
            (M::Tebibytes, None),
            (M::Gibibytes, None),
            (M::Mebibytes, None),
            (M::Kibibytes, None),
            (M::Bytes, Some(StandardUnit::Bytes)),
            (M::TerabitsPerSecond, Some(StandardUnit::TerabitsSecond)),
            (M::GigabitsPerSecond, Some(StandardUnit::GigabitsSecond)),
            (M::MegabitsPerSecond, Some(StandardUnit::MegabitsSecond)),
            (M::KilobitsPerSecond, Some(StandardUnit::KilobitsSecond)),
            (M::BitsPerSecond, Some(StandardUnit::BitsSecond)),
            (M::CountPerSecond, Some(StandardUnit::CountSecond)),
        ];
        for (unit, expected) in every {
            assert_eq!(cloudwatch_unit(unit), expected, "{unit:?}");
        }
        // An Increment is a Count unless a unit was described: one without an equivalent is published with none.
        let unit_of = |unit: Option<M>| {
            let mut gc = Counter::new("gc.pause", CounterType::Increment);
            (gc.count, gc.unit) = (Some(3), unit);
            to_datum(&gc, &ctx()).unwrap().datums.remove(0).unit().cloned()
        };
        assert_eq!(unit_of(None), Some(StandardUnit::Count));
        assert_eq!(unit_of(Some(M::Nanoseconds)), Some(StandardUnit::None));
        assert_eq!(unit_of(Some(M::Bytes)), Some(StandardUnit::Bytes));
    }

    #[test]
    fn labels_follow_instance_id_and_an_own_instance_id_wins() {
        let mut c = Counter::new("calls", CounterType::Increment);
        c.count = Some(1);
        c.set_dimensions(vec![("status", "200")]);
        let names: Vec<_> = to_datum(&c, &ctx())
            .unwrap()
            .datums
            .remove(0)
            .dimensions()
            .iter()
            .map(|d| d.name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["InstanceID", "status"]);
        c.set_dimensions(vec![("InstanceID", "mine")]);
        let built = to_datum(&c, &ctx()).unwrap();
        assert_eq!(built.datums[0].dimensions().len(), 1);
        assert_eq!(built.datums[0].dimensions()[0].value(), Some("mine"));
        assert!(built.deduplicated, "counted: the label replaced the instance dimension");
    }

    fn dims(datum: &MetricDatum) -> Vec<(&str, &str)> {
        datum.dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect()
    }

    #[test]
    fn default_dimensions_follow_instance_id_and_a_label_replaces_one_silently() {
        let defaults = [("service".to_owned(), "checkout".to_owned()), ("env".to_owned(), "prod".to_owned())];
        let ctx = DatumContext { dimensions: &defaults, ..ctx() };
        let mut c = Counter::new("calls", CounterType::Increment);
        c.count = Some(1);
        c.set_dimensions(vec![("route", "/pay"), ("env", "canary")]);
        let built = to_datum(&c, &ctx).unwrap();
        assert_eq!(
            dims(&built.datums[0]),
            [("InstanceID", "host-1"), ("service", "checkout"), ("env", "canary"), ("route", "/pay")]
        );
        assert!(!built.deduplicated, "overriding a default dimension is not a repeat");
        let no_instance = DatumContext { instance: None, ..ctx };
        assert_eq!(dims(&to_datum(&c, &no_instance).unwrap().datums[0])[0], ("service", "checkout"));
    }

    #[test]
    fn rollups_add_a_datum_per_distinct_dimension_set_the_metric_has() {
        let sets = [vec!["route".to_owned()], vec!["route".to_owned(), "status".to_owned()], vec![]];
        let ctx = DatumContext { rollup: true, rollups: &sets, ..ctx() };
        let mut c = Counter::new("latency", CounterType::Increment);
        c.count = Some(3);
        c.set_dimensions(vec![("route", "/pay")]);
        let built = to_datum(&c, &ctx).unwrap();
        let all: Vec<_> = built.datums.iter().map(dims).collect();
        assert_eq!(
            all,
            [vec![("InstanceID", "host-1"), ("route", "/pay")], vec![("route", "/pay")], vec![]],
            "the set without InstanceID equals the route set: sent once; route+status is not the metric's"
        );
        assert!(built.datums.iter().all(|d| d.value() == Some(3.0) && d.metric_name() == Some("latency")));
        let no_instance = DatumContext { instance: None, ..ctx };
        assert_eq!(to_datum(&c, &no_instance).unwrap().datums.len(), 2, "without InstanceID the rollup is the metric");
    }

    #[test]
    fn a_repeated_dimension_name_keeps_its_last_value_and_is_counted() {
        let mut c = Counter::new("m", CounterType::Increment);
        c.count = Some(1);
        c.set_dimensions(vec![("k", "a"), ("j", "x"), ("k", "b")]);
        let built = to_datum(&c, &ctx()).unwrap();
        let dims: Vec<_> =
            built.datums[0].dimensions().iter().map(|d| (d.name().unwrap(), d.value().unwrap())).collect();
        assert_eq!(dims, [("InstanceID", "host-1"), ("k", "b"), ("j", "x")]);
        assert!(built.deduplicated);
        c.set_dimensions(vec![("k", "a"), ("j", "x")]);
        assert!(!to_datum(&c, &ctx()).unwrap().deduplicated);
        // A label replacing a default dimension is no duplicate; a second label of that name is.
        let defaults = [("env".to_owned(), "prod".to_owned())];
        let with_defaults = DatumContext { dimensions: &defaults, ..ctx() };
        c.set_dimensions(vec![("env", "a")]);
        assert!(!to_datum(&c, &with_defaults).unwrap().deduplicated);
        c.set_dimensions(vec![("env", "a"), ("env", "b")]);
        let built = to_datum(&c, &with_defaults).unwrap();
        assert!(built.deduplicated);
        assert_eq!(built.datums[0].dimensions()[1].value(), Some("b"), "the last label wins");
    }

    #[test]
    fn a_fractional_increment_is_sent_exactly() {
        let mut c = Counter::new("m", CounterType::Increment);
        (c.count, c.sum) = (Some(2), Some(2.75));
        assert_eq!(to_datum(&c, &ctx()).unwrap().datums.remove(0).value(), Some(2.75));
    }

    #[test]
    fn every_limit_is_enforced() {
        let ok = |c: &Counter| to_datum(c, &ctx());
        let mut inc = Counter::new("calls", CounterType::Increment);
        inc.count = Some(1);
        let with = |f: &dyn Fn(&mut Counter)| {
            let mut c = inc.clone();
            f(&mut c);
            c
        };
        let named = |name: String| {
            let mut c = Counter::new(name, CounterType::Increment);
            c.count = Some(1);
            c
        };
        assert!(ok(&inc).is_ok());
        assert_eq!(ok(&named(String::new())).unwrap_err(), SkipReason::MetricName);
        assert_eq!(ok(&named("x".repeat(256))).unwrap_err(), SkipReason::MetricName);
        assert!(ok(&named("x".repeat(255))).is_ok());
        assert_eq!(ok(&named("caf\u{e9}".into())).unwrap_err(), SkipReason::MetricName);
        assert_eq!(ok(&named("a\nb".into())).unwrap_err(), SkipReason::MetricName);
        let dims = |n: usize| (0..n).map(|i| (format!("k{i}"), "v".to_owned())).collect::<Vec<_>>();
        assert!(ok(&with(&|c| c.set_dimensions(dims(29)))).is_ok(), "29 + InstanceID = 30");
        assert_eq!(ok(&with(&|c| c.set_dimensions(dims(30)))).unwrap_err(), SkipReason::TooManyDimensions);
        assert_eq!(
            ok(&with(&|c| c.set_dimensions(vec![(String::new(), "v")]))).unwrap_err(),
            SkipReason::DimensionName
        );
        assert_eq!(ok(&with(&|c| c.set_dimensions(vec![(":k", "v")]))).unwrap_err(), SkipReason::DimensionName);
        assert_eq!(
            ok(&with(&|c| c.set_dimensions(vec![("x".repeat(256), "v")]))).unwrap_err(),
            SkipReason::DimensionName
        );
        assert_eq!(
            ok(&with(&|c| c.set_dimensions(vec![("k", String::new())]))).unwrap_err(),
            SkipReason::DimensionValue
        );
        assert_eq!(
            ok(&with(&|c| c.set_dimensions(vec![("k", "v".repeat(1025))]))).unwrap_err(),
            SkipReason::DimensionValue
        );
        assert!(ok(&with(&|c| c.set_dimensions(vec![("k", "v".repeat(1024))]))).is_ok());
        assert_eq!(ok(&with(&|c| c.set_dimensions(vec![("k", "\u{fc}")]))).unwrap_err(), SkipReason::DimensionValue);

        let mut last = Counter::new("g", CounterType::LastValue);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2f64.powi(361), -(2f64.powi(361))] {
            last.last = Some(bad);
            assert_eq!(ok(&last).unwrap_err(), SkipReason::Value, "{bad}");
        }
        let mut s = stats(CounterType::Statistics);
        s.max = Some(f64::INFINITY);
        assert_eq!(ok(&s).unwrap_err(), SkipReason::Value);
        let mut empty = stats(CounterType::Statistics);
        empty.count = Some(0);
        assert_eq!(ok(&empty).unwrap_err(), SkipReason::EmptyStatistics);

        let mut ts = Counter::new("t", CounterType::Timestamp);
        ts.time = Some(SystemTime::now() - Duration::from_secs(15 * 24 * 3600));
        assert_eq!(ok(&ts).unwrap_err(), SkipReason::TooOld);
        ts.time = Some(SystemTime::now() + Duration::from_secs(3 * 3600));
        assert_eq!(ok(&ts).unwrap_err(), SkipReason::InFuture);

        let bad_resolution = DatumContext { storage_resolution: 5, ..ctx() };
        assert_eq!(to_datum(&inc, &bad_resolution).unwrap_err(), SkipReason::StorageResolution);
        let bad_instance = DatumContext { instance: Some(""), ..ctx() };
        assert_eq!(to_datum(&inc, &bad_instance).unwrap_err(), SkipReason::DimensionValue);
    }
}
