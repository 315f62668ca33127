//! Units from describe_* carry to CloudWatch units; time-unit histograms become Interval counters in ms.

mod common;

use cloudwatch_counters::CounterType;
use common::{counter_named as find, recording_counters as counters};
use metrics::Unit;

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
    // How a described unit maps to a CloudWatch unit is tested beside the mapping (src/sink/cloudwatch/datum.rs).
    assert_eq!(find(&c, "ratio").unit, Some(Unit::Kibibytes));
}

#[test]
fn a_unit_described_after_the_first_sample_applies_from_the_next_dump_and_values_stay_as_recorded() {
    let sink = common::RecordingSink::with_percentiles();
    let c = cloudwatch_counters::CachedCounters::new(sink.clone(), cloudwatch_counters::CountersOptions::default());
    let recorder = c.recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::histogram!("payload").record(512.0);
        metrics::histogram!("db.query").record(0.25);
    });
    c.dump_blocking().expect("dump");
    let first = sink.last_save();
    assert_eq!(common::find(&first, "payload").unit, None);
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_histogram!("payload", Unit::Bytes, "described late");
        metrics::describe_histogram!("db.query", Unit::Seconds, "described late");
        metrics::histogram!("payload").record(1024.0);
        metrics::histogram!("db.query").record(0.5);
    });
    c.dump_blocking().expect("dump");
    let second = sink.last_save();
    let payload = common::find(&second, "payload");
    assert_eq!((payload.unit, payload.sum), (Some(Unit::Bytes), Some(1024.0)));
    // Already recording in seconds: it stays a Statistics counter in seconds, now published as Seconds.
    let query = common::find(&second, "db.query");
    assert_eq!((query.counter_type, query.unit, query.sum), (CounterType::Statistics, Some(Unit::Seconds), Some(0.5)));
    assert_eq!(query.distribution.as_ref().map(cloudwatch_counters::Distribution::count), Some(1));
}

#[test]
fn a_late_description_does_not_replace_a_histogram_that_another_thread_registers_after_it() {
    let sink = common::RecordingSink::with_percentiles();
    let c = cloudwatch_counters::CachedCounters::new(sink.clone(), cloudwatch_counters::CountersOptions::default());
    let recorder = c.recorder();
    // A handle kept from before the description, as a service keeps one in a struct.
    let held = metrics::with_local_recorder(&recorder, || metrics::histogram!("db.query"));
    held.record(0.25);
    metrics::with_local_recorder(&recorder, || metrics::describe_histogram!("db.query", Unit::Seconds, "late"));
    // Another thread's first registration misses its own cache and asks the store, now for an Interval.
    let other = recorder.clone();
    std::thread::spawn(move || metrics::with_local_recorder(&other, || metrics::histogram!("db.query").record(0.5)))
        .join()
        .expect("the other thread");
    held.record(0.75);
    c.dump_blocking().expect("dump");
    let query = common::find(&sink.last_save(), "db.query").clone();
    assert_eq!(
        (query.counter_type, query.count, query.sum, query.unit),
        (CounterType::Statistics, Some(3), Some(1.5), Some(Unit::Seconds)),
        "one counter keeps every sample, as recorded"
    );
    assert_eq!(c.telemetry().values_rejected, 0, "the held handle still records");
}
