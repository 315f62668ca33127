//! The metrics Recorder: kinds, labels, the 30-dimension cut and units.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType, CountersOptions};
use common::RecordingSink;
use metrics::Unit;

fn counters() -> CachedCounters {
    CachedCounters::new(RecordingSink::default(), CountersOptions::default())
}

fn find(c: &CachedCounters, name: &str) -> cloudwatch_counters::Counter {
    c.get_all().into_iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn counters_gauges_and_histograms_map_to_pip_types() {
    let c = counters();
    metrics::with_local_recorder(&c.recorder(), || {
        metrics::counter!("requests").increment(2);
        metrics::counter!("requests").increment(3);
        metrics::counter!("total").absolute(40);
        metrics::gauge!("inflight").set(5.0);
        metrics::gauge!("inflight").increment(2.0);
        metrics::gauge!("inflight").decrement(4.0);
        metrics::histogram!("payload").record(10.0);
        metrics::histogram!("payload").record(30.0);
    });
    assert_eq!(find(&c, "requests").count, Some(5));
    assert_eq!(find(&c, "total").count, Some(40));
    let g = find(&c, "inflight");
    assert_eq!((g.counter_type, g.last), (CounterType::LastValue, Some(3.0)));
    let h = find(&c, "payload");
    assert_eq!(
        (h.counter_type, h.count, h.min, h.max, h.average),
        (CounterType::Statistics, Some(2), Some(10.0), Some(30.0), Some(20.0))
    );
}

#[test]
fn a_histogram_described_in_seconds_becomes_an_interval_in_milliseconds() {
    let c = counters();
    metrics::with_local_recorder(&c.recorder(), || {
        metrics::describe_histogram!("db.query", Unit::Seconds, "query latency");
        metrics::histogram!("db.query").record(0.25);
        metrics::describe_histogram!("io.wait", Unit::Microseconds, "io wait");
        metrics::histogram!("io.wait").record(1500.0);
    });
    let q = find(&c, "db.query");
    assert_eq!((q.counter_type, q.last), (CounterType::Interval, Some(250.0)));
    let io = find(&c, "io.wait");
    assert_eq!((io.counter_type, io.last), (CounterType::Interval, Some(1.5)));
}

#[test]
fn units_from_descriptions_carry_to_counters() {
    let c = counters();
    metrics::with_local_recorder(&c.recorder(), || {
        metrics::describe_gauge!("heap", Unit::Bytes, "heap size");
        metrics::gauge!("heap").set(1024.0);
        metrics::describe_gauge!("ratio", Unit::Kibibytes, "no exact CloudWatch unit");
        metrics::gauge!("ratio").set(1.0);
    });
    assert_eq!(find(&c, "heap").unit, Some(Unit::Bytes));
    let datum = cloudwatch_counters::sink::datum::to_datum(
        &find(&c, "heap"),
        &cloudwatch_counters::sink::datum::DatumContext {
            instance: "h",
            storage_resolution: 60,
            now: std::time::SystemTime::now(),
        },
    )
    .unwrap();
    assert_eq!(datum.unit(), Some(&aws_sdk_cloudwatch::types::StandardUnit::Bytes));
    assert_eq!(cloudwatch_counters::sink::datum::cloudwatch_unit(Unit::Kibibytes), None);
}

#[test]
fn labels_become_dimensions_and_more_than_29_are_cut() {
    let c = counters();
    metrics::with_local_recorder(&c.recorder(), || {
        metrics::counter!("http", "route" => "/a", "status" => "200").increment(1);
        let many: Vec<metrics::Label> = (0..35).map(|i| metrics::Label::new(format!("k{i:02}"), "v")).collect();
        metrics::counter!("wide", many.clone()).increment(1);
        metrics::counter!("wide", many).increment(1);
    });
    assert_eq!(
        find(&c, "http").dimensions,
        vec![("route".to_owned(), "/a".to_owned()), ("status".to_owned(), "200".to_owned())]
    );
    let wide = find(&c, "wide");
    assert_eq!(wide.dimensions.len(), 29);
    assert_eq!(wide.count, Some(2), "both calls land in the one cut key");
}
