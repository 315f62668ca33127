//! Span counter names: target and span name, the `counter` field override, and a naming function.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType};
use common::recording_counters as counters;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn subscriber(counters: &CachedCounters) -> impl tracing::Subscriber + Send + Sync {
    Registry::default().with(counters.layer())
}

#[test]
fn names_follow_target_and_span_name_and_a_counter_field_overrides() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        tracing::info_span!(target: "orders::api", "create_order").in_scope(|| {});
        tracing::info_span!(target: "orders::api", "create_order", counter = "orders.create").in_scope(|| {});
    });
    assert_eq!(c.get("orders.api.create_order.exec_time", CounterType::Interval).count, Some(1));
    assert_eq!(c.get("orders.create.exec_time", CounterType::Interval).count, Some(1));
}

#[test]
fn a_naming_function_replaces_the_rule() {
    let c = counters();
    let layer = c.layer_builder().naming(|meta| format!("svc.{}", meta.name())).build();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::info_span!("lookup").in_scope(|| {});
    });
    assert_eq!(c.get("svc.lookup.exec_time", CounterType::Interval).count, Some(1));
}

#[test]
fn named_spans_after_a_clear_and_with_an_empty_name_are_counted_where_their_name_is_now() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        let named = |name: &str| {
            tracing::info_span!(target: "orders::api", "op", counter = name).in_scope(|| tracing::error!("failed"));
        };
        named("orders.create");
        named("orders.create"); // from this thread's cache of named spans
        assert_eq!(c.get("orders.create.exec_time", CounterType::Interval).count, Some(2));
        c.clear_all();
        named("orders.create");
        named("orders.pay");
        named(""); // no name: the callsite's own
    });
    let count = |name: &str, kind| c.get(name, kind).count;
    assert_eq!(count("orders.create.exec_time", CounterType::Interval), Some(1), "counted again after the clear");
    assert_eq!(count("orders.create.errors", CounterType::Increment), Some(1));
    assert_eq!(count("orders.pay.exec_time", CounterType::Interval), Some(1));
    assert_eq!(count("orders.api.op.exec_time", CounterType::Interval), Some(1));
    assert_eq!(c.telemetry().values_rejected, 0, "nothing recorded into a retired counter");
}
