//! The tracing layer times spans into Interval counters: async fns, nesting, threads, cached callsites.

mod common;

use std::time::Duration;

use cloudwatch_counters::{CachedCounters, CounterType};
use common::recording_counters as counters;
use tracing::instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn subscriber(counters: &CachedCounters) -> impl tracing::Subscriber + Send + Sync {
    Registry::default().with(counters.layer())
}

#[instrument]
async fn sleepy() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

// The lower bounds allow 1% for the span clock's calibration against the system's (done once per process).

#[tokio::test]
async fn an_instrumented_async_fn_is_timed_once_per_call_in_milliseconds() {
    let c = counters();
    let _guard = tracing::subscriber::set_default(subscriber(&c));
    sleepy().await;
    sleepy().await;
    let got = c.get("span_timing.sleepy.exec_time", CounterType::Interval);
    assert_eq!(got.count, Some(2));
    assert!(got.min.unwrap() >= 49.5, "min {:?} ms", got.min);
    assert!(got.max.unwrap() < 5_000.0, "milliseconds, not microseconds: {:?}", got.max);
}

#[test]
fn nested_spans_are_each_timed_and_the_outer_one_lasts_longer() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        tracing::info_span!("outer").in_scope(|| {
            tracing::info_span!("inner").in_scope(|| std::thread::sleep(Duration::from_millis(5)));
        });
    });
    let outer = c.get("span_timing.outer.exec_time", CounterType::Interval);
    let inner = c.get("span_timing.inner.exec_time", CounterType::Interval);
    assert_eq!((outer.count, inner.count), (Some(1), Some(1)));
    assert!(outer.last.unwrap() >= inner.last.unwrap());
    assert!(inner.last.unwrap() >= 4.95);
}

#[test]
fn a_span_closed_on_another_thread_is_timed_from_creation_to_close() {
    let c = counters();
    let span = tracing::subscriber::with_default(subscriber(&c), || tracing::info_span!("handoff"));
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        drop(span);
    })
    .join()
    .unwrap();
    let got = c.get("span_timing.handoff.exec_time", CounterType::Interval);
    assert_eq!(got.count, Some(1));
    assert!(got.last.unwrap() >= 9.9);
}

#[test]
fn clearing_counters_does_not_break_cached_callsites() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        let run = || tracing::info_span!("cached").in_scope(|| {});
        run();
        c.clear_all();
        run();
    });
    assert_eq!(c.get("span_timing.cached.exec_time", CounterType::Interval).count, Some(1));
}

#[test]
fn thousands_of_spans_open_at_once_are_each_timed_once_with_their_errors() {
    // More open spans than the layer's table of open spans holds (8192): the rest are timed in their
    // extensions, and every one is counted once, with its error, whichever thread closes it.
    const OPEN: usize = 20_000;
    let c = counters();
    let dispatch = tracing::Dispatch::new(subscriber(&c));
    let mut spans: Vec<tracing::Span> = tracing::dispatcher::with_default(&dispatch, || {
        (0..OPEN)
            .map(|i| {
                let span = tracing::info_span!("many");
                if i % 4 == 0 {
                    span.in_scope(|| tracing::error!("failed"));
                }
                span
            })
            .collect()
    });
    assert_eq!(c.get("span_timing.many.exec_time", CounterType::Interval).count.unwrap_or(0), 0, "all open");
    let second = spans.split_off(OPEN / 2);
    std::thread::scope(|s| {
        s.spawn(move || drop(spans));
        s.spawn(move || drop(second));
    });
    assert_eq!(c.get("span_timing.many.exec_time", CounterType::Interval).count, Some(OPEN as i64));
    assert_eq!(c.get("span_timing.many.errors", CounterType::Increment).count, Some((OPEN / 4) as i64));
}
