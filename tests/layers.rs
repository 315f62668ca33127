//! Several counters layers in one subscriber (span extensions hold one value per type: the layers share it), and
//! a composite of counters: every span and every call reaches each counters.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cloudwatch_counters::{
    CachedCounters, CompositeCounters, Counter, CounterType, Counters, CountersOptions, LogCounters,
};
use common::{find, RecordingSink, SharedWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry;

fn log_counters() -> (LogCounters, SharedWriter) {
    let out = SharedWriter::default();
    (LogCounters::to_writer(out.clone(), CountersOptions::default()), out)
}

fn recording_counters() -> (CachedCounters, RecordingSink) {
    let sink = RecordingSink::default();
    (CachedCounters::new(sink.clone(), CountersOptions::default()), sink)
}

/// The counter `name` among `all`, read with `get_all`.
fn named<'a>(all: &'a [Counter], name: &str) -> &'a Counter {
    all.iter().find(|c| c.name() == name).unwrap_or_else(|| panic!("no counter {name} in {all:?}"))
}

/// Three `work` spans, the last of which sees an ERROR event.
fn three_spans_one_failing() {
    for fail in [false, false, true] {
        tracing::info_span!("work").in_scope(|| {
            if fail {
                tracing::error!("the work failed");
            }
        });
    }
}

#[test]
fn spans_are_timed_into_each_counters_whose_layer_is_in_the_subscriber() {
    let (log, out) = log_counters();
    let (rec, sink) = recording_counters();
    let subscriber = registry().with(log.layer()).with(rec.layer());
    tracing::subscriber::with_default(subscriber, three_spans_one_failing);

    for (who, all) in [("log", log.counters().get_all()), ("cached", rec.get_all())] {
        assert_eq!(named(&all, "layers.work.exec_time").count, Some(3), "{who}: {all:?}");
        assert_eq!(named(&all, "layers.work.exec_time").counter_type, CounterType::Interval, "{who}");
        assert_eq!(named(&all, "layers.work.errors").count, Some(1), "{who}: {all:?}");
    }

    // And it is what each sink receives.
    rec.dump_blocking().unwrap();
    assert_eq!(find(&sink.last_save(), "layers.work.exec_time").count, Some(3));
    assert_eq!(find(&sink.last_save(), "layers.work.errors").count, Some(1));
    log.dump_blocking().unwrap();
    let text = out.text();
    let line =
        text.lines().find(|l| l.starts_with("Counter layers.work.exec_time ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("\"count\": 3"), "{line}");
    let line = text.lines().find(|l| l.starts_with("Counter layers.work.errors ")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("\"count\": 1"), "{line}");
}

#[test]
fn the_same_counters_layer_added_twice_times_each_span_twice() {
    let (rec, sink) = recording_counters();
    let subscriber = registry().with(rec.layer()).with(rec.layer());
    tracing::subscriber::with_default(subscriber, three_spans_one_failing);
    let all = rec.get_all();
    assert_eq!(named(&all, "layers.work.exec_time").count, Some(6), "two per span: {all:?}");
    assert_eq!(named(&all, "layers.work.errors").count, Some(2), "each layer counts the error: {all:?}");
    rec.dump_blocking().unwrap();
    assert_eq!(find(&sink.last_save(), "layers.work.exec_time").count, Some(6));
}

#[test]
fn three_layers_time_nested_spans_and_a_span_closed_on_another_thread() {
    let (log, _out) = log_counters();
    let (rec, _sink) = recording_counters();
    // The first layer's timing is kept inline and the others beside it: closing in layer order moves them.
    let subscriber = registry().with(rec.layer()).with(log.layer()).with(rec.layer());
    let handoff = tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("outer").in_scope(|| {
            tracing::info_span!("inner").in_scope(|| tracing::error!("inner failed"));
        });
        tracing::info_span!("handoff")
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(handoff);
        tx.send(()).unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("the span closed on the other thread");

    let (rec_all, log_all) = (rec.get_all(), log.counters().get_all());
    for (name, rec_count, log_count) in [
        ("layers.outer.exec_time", 2, 1),
        ("layers.inner.exec_time", 2, 1),
        ("layers.inner.errors", 2, 1),
        ("layers.handoff.exec_time", 2, 1),
    ] {
        assert_eq!(named(&rec_all, name).count, Some(rec_count), "{name}: {rec_all:?}");
        assert_eq!(named(&log_all, name).count, Some(log_count), "{name}: {log_all:?}");
    }
    assert!(rec_all.iter().all(|c| c.name() != "layers.outer.errors"), "the error was inside inner only: {rec_all:?}");
}

#[test]
fn a_composite_of_log_and_cached_counters_reaches_both_children() {
    let (log, out) = log_counters();
    let (rec, sink) = recording_counters();
    let composite = CompositeCounters::new(vec![Arc::new(log.clone()), Arc::new(rec.clone())]);
    assert_eq!(composite.len(), 2);

    let elapsed = composite.begin_timing("op").end_timing();
    composite.end_timing("op", 5.0);
    composite.increment("calls", 3);
    composite.increment("calls", 4);

    for (who, all) in [("log", log.counters().get_all()), ("cached", rec.get_all())] {
        let op = named(&all, "op");
        assert_eq!((op.counter_type, op.count), (CounterType::Interval, Some(2)), "{who}: {all:?}");
        assert_eq!(op.min, Some(elapsed.min(5.0)), "{who}: one elapsed time for both children");
        assert_eq!(op.max, Some(elapsed.max(5.0)), "{who}");
        assert_eq!(op.last, Some(5.0), "{who}");
        let calls = named(&all, "calls");
        assert_eq!((calls.counter_type, calls.count), (CounterType::Increment, Some(7)), "{who}: {all:?}");
    }

    rec.dump_blocking().unwrap();
    assert_eq!(find(&sink.last_save(), "op").count, Some(2));
    assert_eq!(find(&sink.last_save(), "calls").count, Some(7));
    log.dump_blocking().unwrap();
    let text = out.text();
    assert!(text.lines().any(|l| l.starts_with("Counter op ") && l.contains("\"count\": 2")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("Counter calls ") && l.contains("\"count\": 7")), "{text}");
}
