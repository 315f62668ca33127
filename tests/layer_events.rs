//! Metric events become counters; SDK and excluded targets are never timed or counted.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType, CountersOptions};
use common::RecordingSink;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn counters() -> CachedCounters {
    CachedCounters::new(RecordingSink::default(), CountersOptions::default())
}

#[test]
fn metric_fields_feed_the_matching_counter_types_with_other_fields_as_dimensions() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(monotonic_counter.orders = 2, region = "eu", "placed");
        tracing::info!(counter.orders = 3_i64, region = "eu");
        tracing::info!(histogram.order_value = 12.5, region = "eu");
        tracing::info!(histogram.order_value = 7.5, region = "eu");
        tracing::info!(gauge.queue_depth = 4.0);
        tracing::info!(gauge.queue_depth = 6.0);
    });
    let all = c.get_all();
    let find = |name: &str| all.iter().find(|x| x.name == name).unwrap_or_else(|| panic!("{name}: {all:?}"));
    let orders = find("orders");
    assert_eq!((orders.counter_type, orders.count), (CounterType::Increment, Some(5)));
    assert_eq!(orders.dimensions, vec![("region".to_owned(), "eu".to_owned())], "message is not a dimension");
    let value = find("order_value");
    assert_eq!((value.counter_type, value.count, value.sum), (CounterType::Statistics, Some(2), Some(20.0)));
    let depth = find("queue_depth");
    assert_eq!((depth.counter_type, depth.last), (CounterType::LastValue, Some(6.0)));
    assert!(depth.dimensions.is_empty());
}

#[test]
fn event_dimensions_are_cut_to_29() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(
            counter.wide = 1,
            a0 = 0,
            a1 = 1,
            a2 = 2,
            a3 = 3,
            a4 = 4,
            a5 = 5,
            a6 = 6,
            a7 = 7,
            a8 = 8,
            a9 = 9,
            b0 = 0,
            b1 = 1,
            b2 = 2,
            b3 = 3,
            b4 = 4,
            b5 = 5,
            b6 = 6,
            b7 = 7,
            b8 = 8,
            b9 = 9,
            c0 = 0,
            c1 = 1,
            c2 = 2,
            c3 = 3,
            c4 = 4,
            c5 = 5,
            c6 = 6,
            c7 = 7,
            c8 = 8,
            c9 = 9,
        );
    });
    let all = c.get_all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].dimensions.len(), 29);
}

#[test]
fn aws_sdk_hyper_and_own_targets_are_never_timed_or_counted() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info_span!(target: "app", "x").in_scope(|| {});
        tracing::info_span!(target: "aws_smithy_runtime::client::orchestrator", "invoke").in_scope(|| {
            tracing::event!(target: "aws_smithy_runtime::client::orchestrator", tracing::Level::ERROR, counter.retries = 1);
        });
        tracing::info_span!(target: "hyper::client", "connect").in_scope(|| {});
        tracing::info_span!(target: "h2::proto", "poll").in_scope(|| {});
        tracing::info_span!(target: "rustls::client", "handshake").in_scope(|| {});
        tracing::event!(target: "cloudwatch_counters::exporter", tracing::Level::INFO, counter.dumps = 1);
        tracing::info_span!(target: "tower::buffer", "worker").in_scope(|| {});
        tracing::info_span!(target: "aws_sdk_cloudwatch::client", "put").in_scope(|| {});
    });
    let names: Vec<String> = c.get_all().into_iter().map(|x| x.name).collect();
    assert_eq!(names, vec!["app.x.exec_time".to_owned()]);
}

#[test]
fn extra_exclusions_and_switches_apply() {
    let c = counters();
    let layer = c.layer_builder().exclude_target("noisy").count_events(false).build();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::info_span!(target: "noisy::module", "spin").in_scope(|| {});
        tracing::info!(counter.ignored = 1);
        tracing::info_span!(target: "quiet", "work").in_scope(|| {});
    });
    let names: Vec<String> = c.get_all().into_iter().map(|x| x.name).collect();
    assert_eq!(names, vec!["quiet.work.exec_time".to_owned()]);
}

#[test]
fn other_layers_still_see_what_this_layer_ignores() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct CountEvents(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountEvents {
        fn on_event(&self, _e: &tracing::Event<'_>, _c: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let c = counters();
    let subscriber = Registry::default().with(c.layer()).with(CountEvents(Arc::clone(&seen)));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "hyper::client", "plain event our layer ignores");
        tracing::info!("another plain event");
    });
    assert_eq!(seen.load(Ordering::SeqCst), 2, "the per-layer filter must not disable callsites for others");
}
