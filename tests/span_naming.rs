//! Span counter names: target and span name, the `counter` field override, and a naming function.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType};
use common::recording_counters as counters;
use tracing::field::Empty;
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

#[test]
fn a_counter_field_recorded_after_the_span_was_made_names_it() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        // Declared empty, named once known (a route after routing), then an ERROR inside it.
        let span = tracing::info_span!(target: "orders::api", "request", counter = Empty);
        span.record("counter", "orders.create");
        span.in_scope(|| tracing::error!("failed"));
        drop(span);
        // Named when made, renamed later: only the last name counts.
        let span = tracing::info_span!(target: "orders::api", "request", counter = "orders.pending");
        span.record("counter", "orders.pay");
        drop(span);
        // Renamed through `Debug` (its quotes are not part of the name), with a dimension recorded too.
        let span = tracing::info_span!(target: "orders::api", "request", counter = Empty, route = Empty);
        span.record("route", "/refunds");
        span.record("counter", tracing::field::debug("orders.refund"));
        drop(span);
        // Never named, and named then emptied: the callsite's own name.
        tracing::info_span!(target: "orders::api", "request", counter = Empty).in_scope(|| {});
        let span = tracing::info_span!(target: "orders::api", "request", counter = "orders.void");
        span.record("counter", "");
        drop(span);
        // A record of other fields leaves the name alone.
        let span = tracing::info_span!(target: "orders::api", "request", counter = "orders.list", status = Empty);
        span.record("status", 200);
        drop(span);
    });
    let all = c.get_all();
    let count = |name: &str, dimensions: &[(&str, &str)]| {
        let dimensions: Vec<(String, String)> =
            dimensions.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        all.iter().find(|c| c.name() == name && c.dimensions() == dimensions).and_then(|c| c.count)
    };
    assert_eq!(count("orders.create.exec_time", &[]), Some(1));
    assert_eq!(count("orders.create.errors", &[]), Some(1), "the error counts under the recorded name");
    assert_eq!(count("orders.pay.exec_time", &[]), Some(1));
    assert_eq!(count("orders.refund.exec_time", &[("route", "/refunds")]), Some(1));
    assert_eq!(count("orders.api.request.exec_time", &[]), Some(2), "never named, and named then emptied");
    assert_eq!(count("orders.list.exec_time", &[("status", "200")]), Some(1));
    // A name's counter is made when the name is first seen; one that no span closed under stays empty.
    let counted: Vec<&str> = all.iter().filter(|c| c.count.is_some()).map(cloudwatch_counters::Counter::name).collect();
    assert_eq!(counted.len(), 6, "no other counter counts: {counted:?}");
}

#[test]
fn a_counter_field_recorded_on_a_span_the_layer_does_not_time_makes_no_counter() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        // More spans with fields open at once than their table holds: some are timed in their extensions, so a
        // record on any other span is looked at too.
        let open: Vec<_> = (0..3000).map(|i| tracing::info_span!("held", counter = Empty, n = i)).collect();
        let quiet = tracing::debug_span!("quiet", counter = Empty);
        quiet.record("counter", "quiet.named");
        let excluded = tracing::info_span!(target: "hyper::client", "excluded", counter = Empty);
        excluded.record("counter", "excluded.named");
        drop((quiet, excluded));
        for span in &open {
            span.record("counter", "held.named");
        }
        drop(open);
    });
    let all = c.get_all();
    let named = |name: &str| all.iter().find(|c| c.name() == name).map(|c| c.count);
    assert_eq!(named("held.named.exec_time"), Some(Some(3000)), "every held span, in the table or its extensions");
    assert_eq!(named("quiet.named.exec_time"), None, "a DEBUG span is not timed");
    assert_eq!(named("excluded.named.exec_time"), None, "nor one of an excluded target");
}

#[test]
fn each_counters_layer_renames_only_the_spans_it_times() {
    let (info, debug) = (counters(), counters());
    let layers =
        Registry::default().with(info.layer()).with(debug.layer_builder().level(tracing::Level::DEBUG).build());
    tracing::subscriber::with_default(layers, || {
        let span = tracing::debug_span!("detail", counter = Empty);
        span.record("counter", "detail.named");
        drop(span);
        let span = tracing::info_span!("request", counter = Empty);
        span.record("counter", "request.named");
        drop(span);
    });
    let named = |c: &CachedCounters, name: &str| c.get_all().iter().find(|c| c.name() == name).map(|c| c.count);
    assert_eq!(named(&debug, "detail.named.exec_time"), Some(Some(1)), "the DEBUG layer times the DEBUG span");
    assert_eq!(named(&info, "detail.named.exec_time"), None, "the INFO layer neither times nor names it");
    assert_eq!(named(&info, "request.named.exec_time"), Some(Some(1)));
    assert_eq!(named(&debug, "request.named.exec_time"), Some(Some(1)));
}
