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
