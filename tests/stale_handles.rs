//! Handles kept by users (a `metrics::Counter` in a struct, a `CounterHandle`, an open span) across `clear`,
//! `clear_all`, a type replacement and a full cap: an update reaches the counter that now has the name, or is
//! counted as refused — never written into a cell nobody reads.

mod common;

use cloudwatch_counters::{CounterType, Counters, CountersOptions};
use common::{find, recording_counters, RecordingSink};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

#[test]
fn a_timing_running_across_clear_all_records_into_the_counter_its_name_has_at_the_end() {
    let c = recording_counters();
    let timing = c.begin_timing("op");
    c.clear_all();
    timing.end_timing();
    assert_eq!(c.get("op", CounterType::Interval).count, Some(1), "pip's end_timing looks the name up at the end");
    // A name that became another type by the end: refused and counted, never written where nobody reads.
    let timing = c.begin_timing("job");
    c.clear("job");
    c.last("job", 1.0);
    timing.end_timing();
    let job = c.get("job", CounterType::LastValue);
    assert_eq!((job.counter_type, job.last), (CounterType::LastValue, Some(1.0)));
    c.dump_blocking().expect("dump");
    assert_eq!(c.telemetry().values_rejected, 1);
    // A name refused at the start is counted once, as an empty name, not again at the end.
    c.begin_timing("").end_timing();
    c.dump_blocking().expect("dump");
    assert_eq!((c.telemetry().names_empty, c.telemetry().values_rejected), (1, 1));
}

#[tokio::test]
async fn metrics_handles_kept_across_clear_all_and_a_type_change_are_refused_and_counted() {
    let sink = RecordingSink::default();
    let c = cloudwatch_counters::CachedCounters::new(sink.clone(), CountersOptions::default());
    let recorder = c.recorder();
    let (orders, sizes) =
        metrics::with_local_recorder(&recorder, || (metrics::counter!("orders"), metrics::histogram!("sizes")));
    orders.increment(1);
    c.clear_all();
    orders.increment(5); // the counter it pointed at is gone
    c.last("sizes", 1.0); // "sizes" is now a LastValue
    sizes.record(3.0);
    metrics::with_local_recorder(&recorder, || metrics::counter!("orders").increment(2));
    let report = c.dump().await.unwrap();
    assert_eq!(report.rejected_values, 2, "both stale updates counted");
    let saved = sink.last_save();
    assert_eq!(find(&saved, "orders").count, Some(2), "only the update through a live handle");
    assert_eq!(find(&saved, "sizes").counter_type, CounterType::LastValue);
    assert_eq!(c.telemetry().values_rejected, 2);
}

#[tokio::test]
async fn a_counter_handle_of_a_cleared_counter_is_detached_and_its_updates_counted() {
    let c = recording_counters();
    let calls = c.handle("calls", CounterType::Increment);
    c.clear("calls");
    assert!(calls.is_detached());
    calls.increment(3);
    c.increment("calls", 1);
    assert_eq!(c.get("calls", CounterType::Increment).count, Some(1));
    assert_eq!(c.dump().await.unwrap().rejected_values, 1);
}

#[tokio::test]
async fn updates_past_a_full_cap_are_counted_as_well_as_the_refused_key() {
    let c =
        cloudwatch_counters::CachedCounters::new(RecordingSink::default(), CountersOptions::default().max_counters(1));
    let recorder = c.recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("a").increment(1);
        let refused = metrics::counter!("b");
        refused.increment(1);
        refused.increment(1);
    });
    c.dump().await.unwrap();
    let t = c.telemetry();
    assert_eq!((t.keys_dropped, t.values_rejected), (1, 2));
}

#[tokio::test]
async fn the_crates_own_counters_take_no_place_under_the_cap() {
    let c =
        cloudwatch_counters::CachedCounters::new(RecordingSink::default(), CountersOptions::default().max_counters(1));
    let a = c.handle("a", CounterType::Increment);
    a.set_last(1.0); // refused (no call of an Increment) and counted: a problem the telemetry publishes
    a.increment(1);
    c.dump().await.unwrap(); // counts the refusal
    a.increment(1);
    c.dump().await.unwrap(); // records it into `cloudwatch_counters.values_rejected`, a counter of the store
    let own = |c: &cloudwatch_counters::CachedCounters| {
        c.get_all().iter().filter(|x| x.name().starts_with("cloudwatch_counters.")).count()
    };
    assert_eq!(own(&c), 1, "{:?}", c.get_all());
    c.clear("a");
    assert!(!c.handle("b", CounterType::Increment).is_detached(), "the user's one place is free again");
    assert!(c.handle("c", CounterType::Increment).is_detached(), "and the cap still holds");
    // Cleared with the rest, the crate's own counters give back no place they did not take.
    c.clear_all();
    assert!(!c.handle("d", CounterType::Increment).is_detached());
    assert!(c.handle("e", CounterType::Increment).is_detached());
}

#[test]
fn a_span_open_across_clear_all_is_timed_into_the_counter_that_has_its_name_now() {
    let c = recording_counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        let first = tracing::info_span!("work").entered();
        drop(first);
        let open = tracing::info_span!("work").entered();
        c.clear_all();
        drop(open);
    });
    let all = c.get_all();
    let work: Vec<_> = all.iter().filter(|x| x.name().ends_with(".work.exec_time")).collect();
    assert_eq!(work.len(), 1, "{all:?}");
    assert_eq!(work[0].count, Some(1), "the span closed after the clear is in the new counter");
}

#[test]
fn a_span_with_dimensions_open_across_clear_all_leaves_a_counter_of_another_type_alone() {
    let c = recording_counters();
    let recorder = c.recorder();
    let subscriber = Registry::default().with(c.layer_builder().span_dimensions(["method"]).build());
    let name = tracing::subscriber::with_default(subscriber, || {
        let first = tracing::info_span!("work", method = "GET").entered();
        drop(first);
        let all = c.get_all();
        let name = all.iter().find(|x| x.name().ends_with(".work.exec_time")).expect("timed").name().to_owned();
        let open = tracing::info_span!("work", method = "GET").entered();
        c.clear_all();
        // The span's counter names, with its dimension, now gauges'.
        metrics::with_local_recorder(&recorder, || {
            metrics::gauge!(name.clone(), "method" => "GET").set(42.0);
            metrics::gauge!(name.replace("exec_time", "errors"), "method" => "GET").set(7.0);
        });
        tracing::error!(parent: open.id(), "failed");
        drop(open);
        name
    });
    let all = c.get_all();
    for (name, value) in [(name.clone(), 42.0), (name.replace("exec_time", "errors"), 7.0)] {
        let gauge = all.iter().find(|x| x.name() == name).expect("the gauge");
        assert_eq!((gauge.counter_type, gauge.last), (CounterType::LastValue, Some(value)), "{all:?}");
    }
    c.dump_blocking().unwrap();
    assert_eq!(c.telemetry().values_rejected, 2, "the span's time and error refused and counted");
}
