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
