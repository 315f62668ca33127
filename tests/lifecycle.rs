//! Dumps, resets, clears, type replacement, close-flush and the background timer.

mod common;

use std::time::Duration;

use cloudwatch_counters::{CachedCounters, CounterType, Counters, CountersOptions, Error, SinkView};
use common::{find, RecordingSink};

fn counters(options: CountersOptions) -> (CachedCounters, RecordingSink) {
    let sink = RecordingSink::default();
    (CachedCounters::new(sink.clone(), options), sink)
}

#[tokio::test]
async fn default_dumps_send_each_period_once_and_skip_when_nothing_changed() {
    let (c, sink) = counters(CountersOptions::default());
    c.increment("calls", 2);
    assert_eq!(c.dump().await.unwrap().saved, 1);
    assert_eq!(c.dump().await.unwrap().saved, 0, "nothing updated since: the dump sends nothing");
    c.increment("calls", 3);
    c.dump().await.unwrap();
    let saves = sink.saves();
    assert_eq!(saves.len(), 2);
    assert_eq!(find(&saves[1], "calls").count, Some(3), "the period's increments, not the total again");
    assert_eq!(c.get("calls", CounterType::Increment).count, Some(5), "pip's running total, read locally");
}

#[tokio::test(start_paused = true)]
async fn reset_happens_only_after_reset_timeout_and_a_successful_save() {
    let options = CountersOptions::default().reset_timeout(Duration::from_secs(60));
    let totals = RecordingSink::with_view(SinkView::Totals);
    let (c, periods) = counters(options.clone());
    let t = CachedCounters::new(totals.clone(), options);
    for counters in [&c, &t] {
        counters.increment("calls", 1);
        let first = counters.dump().await.unwrap();
        assert!(!first.reset, "reset_timeout has not passed yet");
    }
    tokio::time::advance(Duration::from_secs(61)).await;
    for counters in [&c, &t] {
        counters.increment("calls", 1);
        assert!(counters.dump().await.unwrap().reset);
    }
    assert_eq!(find(&totals.last_save(), "calls").count, Some(2), "local totals accumulate until the reset");
    assert_eq!(find(&periods.last_save(), "calls").count, Some(1), "a metrics sink gets each period once");
    assert_eq!(c.get("calls", CounterType::Increment).count, None, "reset, as pip's reset_all");
    for counters in [&c, &t] {
        counters.increment("calls", 5);
        counters.dump().await.unwrap();
    }
    assert_eq!(find(&totals.last_save(), "calls").count, Some(5), "after the reset counting starts again");
    assert_eq!(find(&periods.last_save(), "calls").count, Some(5));
}

#[tokio::test(start_paused = true)]
async fn failed_save_in_reset_mode_keeps_the_data_for_the_next_dump() {
    let options = CountersOptions::default().reset_timeout(Duration::from_millis(1));
    let (c, sink) = counters(options);
    tokio::time::advance(Duration::from_millis(2)).await;
    c.increment("calls", 4);
    c.stats("size", 10.0);
    sink.set_failing(true);
    let err = c.dump().await.unwrap_err();
    assert!(matches!(err, Error::Save(_)), "{err}");
    c.increment("calls", 1);
    c.stats("size", 2.0);
    sink.set_failing(false);
    c.dump().await.unwrap();
    let saved = sink.last_save();
    assert_eq!(find(&saved, "calls").count, Some(5));
    let size = find(&saved, "size");
    assert_eq!(
        (size.count, size.sum, size.min, size.max, size.last),
        (Some(2), Some(12.0), Some(2.0), Some(10.0), Some(2.0))
    );
}

#[tokio::test]
async fn a_failed_save_goes_out_with_the_next_dump_even_without_updates() {
    let (c, sink) = counters(CountersOptions::default());
    c.last("queue", 7.0);
    sink.set_failing(true);
    assert!(c.dump().await.is_err());
    sink.set_failing(false);
    assert_eq!(c.dump().await.unwrap().saved, 2, "the kept counter and the telemetry of the failed dump");
    assert_eq!(find(&sink.last_save(), "queue").last, Some(7.0));
    assert_eq!(find(&sink.last_save(), "cloudwatch_counters.dumps_failed").count, Some(1));
}

#[tokio::test]
async fn clear_removes_one_counter_and_clear_all_removes_every_one() {
    let (c, sink) = counters(CountersOptions::default());
    let held = c.handle("a", CounterType::Increment);
    held.increment(1);
    c.increment("b", 1);
    c.clear("a");
    assert!(held.is_detached());
    c.clear("missing"); // no error for a missing name
    c.dump().await.unwrap();
    let names: Vec<String> = sink.last_save().into_iter().map(|c| c.name().to_owned()).collect();
    assert_eq!(names, vec!["b".to_owned()]);
    c.clear_all();
    assert!(c.is_empty());
    c.increment("c", 1);
    c.dump().await.unwrap();
    assert_eq!(sink.last_save().len(), 1);
}

#[tokio::test]
async fn a_name_reused_with_another_type_replaces_the_counter() {
    let (c, sink) = counters(CountersOptions::default());
    c.increment("x", 10);
    c.last("x", 2.5);
    c.dump().await.unwrap();
    let saved = sink.last_save();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].counter_type, CounterType::LastValue);
    assert_eq!((saved[0].last, saved[0].count), (Some(2.5), None));
}

#[tokio::test]
async fn get_creates_an_empty_counter_that_is_never_sent() {
    let (c, sink) = counters(CountersOptions::default());
    let got = c.get("new", CounterType::Statistics);
    assert!(got.is_empty());
    assert_eq!(c.len(), 1);
    c.increment("real", 1);
    c.dump().await.unwrap();
    let names: Vec<String> = sink.last_save().into_iter().map(|c| c.name().to_owned()).collect();
    assert_eq!(names, vec!["real".to_owned()]);
}

#[tokio::test(start_paused = true)]
async fn the_timer_dumps_every_interval_without_any_update_arriving() {
    let (c, sink) = counters(CountersOptions::default().interval(Duration::from_secs(300)));
    c.open().await.unwrap();
    assert!(c.is_open());
    c.increment("calls", 1);
    // pip dumps only when an update arrives after the interval; here the timer alone does it.
    sink.wait_for_saves(1).await;
    c.increment("calls", 1);
    sink.wait_for_saves(2).await;
    assert_eq!(find(&sink.last_save(), "calls").count, Some(1), "the second period's increment");
    assert_eq!(c.get("calls", CounterType::Increment).count, Some(2));
    let started = tokio::time::Instant::now();
    c.increment("calls", 1);
    sink.wait_for_saves(3).await;
    assert!(started.elapsed() >= Duration::from_secs(299), "dumps are spaced by the interval");
    c.close().await.unwrap();
    assert!(!c.is_open());
}

#[tokio::test]
async fn close_flushes_what_the_timer_has_not_sent() {
    let (c, sink) = counters(CountersOptions::default());
    c.open().await.unwrap();
    c.increment("calls", 3);
    let timing = c.begin_timing("op");
    drop(timing); // an un-ended timing records when dropped
    let report = c.close().await.unwrap();
    assert_eq!(report.saved, 2);
    let saved = sink.last_save();
    assert_eq!(find(&saved, "calls").count, Some(3));
    assert_eq!(find(&saved, "op").count, Some(1));
}

#[test]
fn programs_without_a_runtime_open_dump_and_close_on_a_thread_of_their_own() {
    let (c, sink) = counters(CountersOptions::default().interval(Duration::from_millis(20)));
    c.open_blocking().unwrap();
    c.increment("calls", 1);
    sink.wait_for_saves_blocking(1, Duration::from_secs(30));
    c.increment("calls", 1);
    c.close_blocking().unwrap();
    let sent: i64 = sink.saves().iter().flatten().filter(|x| x.name() == "calls").filter_map(|x| x.count).sum();
    assert_eq!(sent, 2, "each increment in exactly one save, the last one in the close flush");
    assert!(!c.is_open());
}

#[tokio::test]
async fn blocking_calls_inside_async_code_are_refused_with_a_clear_error() {
    let (c, _sink) = counters(CountersOptions::default());
    let err = c.dump_blocking().unwrap_err();
    assert!(matches!(err, Error::BlockingInRuntime("dump_blocking")));
    assert!(err.to_string().contains("async"), "{err}");
}

#[tokio::test]
async fn end_timing_records_milliseconds() {
    let (c, _sink) = counters(CountersOptions::default());
    let timing = c.begin_timing("sleep");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let elapsed = timing.end_timing();
    let got = c.get("sleep", CounterType::Interval);
    assert_eq!(got.count, Some(1));
    assert_eq!(got.last, Some(elapsed));
    assert!(elapsed >= 20.0, "milliseconds, not seconds: {elapsed}");
}

#[tokio::test]
async fn self_telemetry_is_published_with_the_next_save_unless_turned_off() {
    for on in [true, false] {
        let (c, sink) = counters(CountersOptions::default().telemetry(on));
        c.stats("size", f64::NAN);
        c.stats("size", 2.0);
        c.dump().await.unwrap();
        assert_eq!(c.dump().await.unwrap().saved, 0, "telemetry alone never makes a dump send");
        c.stats("size", 3.0);
        c.dump().await.unwrap();
        assert_eq!(c.telemetry().values_rejected, 1, "readable through the API either way");
        let published = sink.last_save().into_iter().find(|x| x.name() == "cloudwatch_counters.values_rejected");
        assert_eq!(published.and_then(|x| x.count), on.then_some(1), "telemetry on: {on}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_timer_warns_once_a_minute_and_says_when_it_recovers() {
    let (logs_guard, logs) = common::capture_logs();
    let (c, sink) = counters(CountersOptions::default().interval(Duration::from_secs(1)));
    c.open().await.unwrap();
    c.increment("calls", 1);
    sink.set_failing(true);
    let thirty_failures = async {
        while c.telemetry().dumps_failed < 30 {
            tokio::time::sleep(Duration::from_millis(100)).await; // paused clock: the timer's ticks come at once
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), thirty_failures).await.expect("the timer kept dumping");
    assert_eq!(logs.lines_with("dumping counters failed"), 1, "30 failures in 30 s: one warning");
    sink.set_failing(false);
    sink.wait_for_saves(1).await;
    c.close().await.unwrap();
    drop(logs_guard);
    assert_eq!(logs.lines_with("dumping counters works again"), 1, "{}", logs.text());
    assert_eq!(find(&sink.saves()[0], "calls").count, Some(1));
}

/// A sink of one's own that reports every save as ambiguous (sent, not confirmed).
struct Unconfirmed;

impl cloudwatch_counters::Sink for Unconfirmed {
    fn save<'a>(&'a self, _: &'a [cloudwatch_counters::Counter]) -> cloudwatch_counters::SaveFuture<'a> {
        Box::pin(async { Err(cloudwatch_counters::SaveError::new("sent, no answer").ambiguous()) })
    }
}

#[tokio::test]
async fn an_ambiguous_failure_of_a_sink_of_ones_own_is_not_sent_again() {
    let c = CachedCounters::new(Unconfirmed, CountersOptions::default().telemetry(false));
    c.increment("calls", 3);
    let err = c.dump().await.unwrap_err();
    assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
    assert_eq!(c.dump().await.unwrap().saved, 0, "nothing put back: the destination may hold it");
    assert_eq!(c.get("calls", CounterType::Increment).count, Some(3), "the local view counts it once");
}

#[test]
fn options_that_break_a_rule_are_refused_at_open_until_good_ones_are_set() {
    let (c, _sink) = counters(CountersOptions::default().interval(Duration::ZERO));
    let err = c.open_blocking().expect_err("a zero interval");
    assert!(matches!(&err, Error::Config(_)) && err.to_string().contains("options.interval"), "{err}");
    assert!(!c.is_open());
    c.set_options(&CountersOptions::default().interval(Duration::from_secs(60))).expect("good options");
    c.open_blocking().expect("open now");
    c.close_blocking().expect("close");
}

/// The sum of the counts of `name` over every save of `sink`.
fn sent(sink: &RecordingSink, name: &str) -> i64 {
    sink.saves().iter().flatten().filter(|c| c.name() == name).filter_map(|c| c.count).sum()
}

#[tokio::test]
async fn an_absolute_source_read_before_a_failed_save_is_published_whether_it_then_climbs_or_restarts() {
    // `restart`: the source starts again from 0 before the next dump and reads 5; else it climbs to 15.
    for (restart, reading, published) in [(false, 15, 15), (true, 5, 15)] {
        let (c, sink) = counters(CountersOptions::default().telemetry(false));
        let bytes = c.handle("bytes", CounterType::Increment);
        bytes.set_count(10);
        sink.set_failing(true);
        assert!(c.dump().await.is_err());
        sink.set_failing(false);
        bytes.set_count(reading);
        assert_eq!(c.get("bytes", CounterType::Increment).count, Some(published), "restart: {restart}: local view");
        c.dump().await.unwrap();
        c.dump().await.unwrap();
        assert_eq!(sent(&sink, "bytes"), published, "restart: {restart}: 10 before the failure, the rest after");
        bytes.set_count(reading + 7);
        c.dump().await.unwrap();
        assert_eq!(sent(&sink, "bytes"), published + 7, "restart: {restart}: the next change, once");
    }
}

#[test]
fn a_period_whose_save_failed_goes_out_again_with_its_properties_under_newer_ones() {
    use tracing_subscriber::layer::SubscriberExt;
    let (c, sink) = counters(CountersOptions::default().telemetry(false));
    let layer = c.layer_builder().properties(["request_id", "shop"]).build();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(monotonic_counter.payments = 2, request_id = "r-1", shop = "north");
        sink.set_failing(true);
        assert!(c.dump_blocking().is_err());
        sink.set_failing(false);
        tracing::info!(monotonic_counter.payments = 3, request_id = "r-2");
    });
    c.dump_blocking().expect("dump");
    let last = sink.last_save();
    let payments = find(&last, "payments");
    assert_eq!(payments.count, Some(5), "the failed period and the new one");
    let mut properties = payments.properties.clone();
    properties.sort();
    let expected = [("request_id", "r-2"), ("shop", "north")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(properties, expected, "the failed period's properties, the newer value of a name winning");
}
