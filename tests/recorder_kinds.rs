//! The metrics Recorder maps counter!, gauge! and histogram! to pip counter types.

mod common;

use cloudwatch_counters::CounterType;
use common::{counter_named as find, recording_counters as counters};

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
