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

/// A span and a `metrics` histogram of one name share one counter, whichever came first: both are samples (the
/// counter keeps the type it was made with), and neither replaces the other, losing its samples.
#[test]
fn a_span_and_a_histogram_of_one_name_share_its_counter_whichever_came_first() {
    use tracing_subscriber::layer::SubscriberExt;
    for labels in [&[][..], &[("method", "GET")][..]] {
        for histogram_first in [true, false] {
            let c = counters();
            let recorder = c.recorder();
            let histogram = || {
                let labels: Vec<metrics::Label> = labels.iter().map(|&(k, v)| metrics::Label::new(k, v)).collect();
                metrics::with_local_recorder(&recorder, || {
                    metrics::histogram!("shared.work.exec_time", labels).record(5.0);
                });
            };
            let span = || {
                let subscriber = tracing_subscriber::Registry::default()
                    .with(c.layer_builder().naming(|_| "shared.work".to_owned()).span_dimensions(["method"]).build());
                tracing::subscriber::with_default(subscriber, || {
                    if labels.is_empty() {
                        drop(tracing::info_span!("work").entered());
                    } else {
                        drop(tracing::info_span!("work", method = "GET").entered());
                    }
                });
            };
            if histogram_first {
                histogram();
                span();
            } else {
                span();
                histogram();
            }
            let all = c.get_all();
            let shared: Vec<_> =
                all.iter().filter(|x| x.name() == "shared.work.exec_time" && x.count.is_some()).collect();
            assert_eq!(shared.len(), 1, "labels {labels:?}, histogram first: {histogram_first}: {all:?}");
            assert_eq!(shared[0].count, Some(2), "labels {labels:?}, histogram first: {histogram_first}: {all:?}");
            assert_eq!(c.telemetry().values_rejected, 0);
        }
    }
}
