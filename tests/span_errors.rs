//! A span that saw an ERROR event counts `<base>.errors`.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType};
use common::recording_counters as counters;
use tracing::instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn subscriber(counters: &CachedCounters) -> impl tracing::Subscriber + Send + Sync {
    Registry::default().with(counters.layer())
}

#[instrument(err)]
fn fails(fail: bool) -> Result<(), String> {
    if fail {
        Err("boom".into())
    } else {
        Ok(())
    }
}

#[test]
fn a_span_that_saw_an_error_event_counts_an_error() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        let _ = fails(true);
        let _ = fails(false);
        let _ = fails(true);
    });
    assert_eq!(c.get("span_errors.fails.exec_time", CounterType::Interval).count, Some(3));
    assert_eq!(c.get("span_errors.fails.errors", CounterType::Increment).count, Some(2));
}

#[test]
fn an_error_counts_on_the_span_the_layer_sees_and_on_an_explicit_parent() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::Layer;
    let c = counters();
    let subscriber = Registry::default().with(c.layer().with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        // Its per-layer filter hides the DEBUG span from the layer: the error belongs to the INFO span around it.
        tracing::info_span!("outer").in_scope(|| {
            tracing::debug_span!("inner").in_scope(|| tracing::error!("failed"));
        });
        // An event with an explicit parent marks that span, wherever it is emitted.
        let parent = tracing::info_span!("parent");
        tracing::error!(parent: &parent, "failed");
        drop(parent);
        tracing::info_span!("clean").in_scope(|| tracing::info!("fine"));
    });
    for (span, errors) in [("outer", Some(1)), ("parent", Some(1)), ("clean", None)] {
        let got = c.get(&format!("span_errors.{span}.errors"), CounterType::Increment).count.filter(|&n| n > 0);
        assert_eq!(got, errors, "{span}");
    }
}

#[tracing::instrument(level = "debug")]
fn validate() {
    tracing::error!("invalid sku");
}

#[test]
fn an_error_in_a_span_the_layer_does_not_time_counts_on_the_timed_span_around_it() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        // No per-layer filter: the DEBUG span is below the layer's level, so the INFO span around it is the one
        // that failed.
        tracing::info_span!("create_order").in_scope(validate);
        tracing::info_span!("checkout").in_scope(|| tracing::debug_span!("inner").in_scope(|| tracing::info!("ok")));
    });
    assert_eq!(c.get("span_errors.create_order.exec_time", CounterType::Interval).count, Some(1));
    assert_eq!(c.get("span_errors.create_order.errors", CounterType::Increment).count, Some(1));
    assert_eq!(c.get("span_errors.validate.exec_time", CounterType::Interval).count, None, "not timed");
    assert!(c.get("span_errors.checkout.errors", CounterType::Increment).count.is_none_or(|n| n == 0));
}
