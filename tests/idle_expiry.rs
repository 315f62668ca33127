//! Idle expiry: a counter not updated for `options.idle_timeout` leaves the store and frees its place under the
//! cap; a handle kept across the expiry records into the same counter, which comes back; gauges never expire.
//! With an idle timeout of 1 ns, a counter expires at the second dump in a row that finds it idle (the first
//! one starts its idle time), so no test waits on a clock.

mod common;

use std::time::Duration;

use cloudwatch_counters::{CachedCounters, CounterType, Counters, CountersOptions};
use common::{find, RecordingSink};

fn counters(max: usize) -> (CachedCounters, RecordingSink) {
    let sink = RecordingSink::default();
    let options = CountersOptions::default().max_counters(max).idle_timeout(Duration::from_nanos(1)).telemetry(false);
    (CachedCounters::new(sink.clone(), options), sink)
}

fn names(counters: &[cloudwatch_counters::Counter]) -> Vec<&str> {
    let mut names: Vec<&str> = counters.iter().map(cloudwatch_counters::Counter::name).collect();
    names.sort_unstable();
    names
}

#[test]
fn an_idle_counter_leaves_the_store_and_frees_its_place_under_the_cap() {
    let (c, sink) = counters(2);
    let kept = c.handle("a", CounterType::Increment);
    kept.increment(1);
    c.stats("b", 2.0);
    c.dump_blocking().expect("dump");
    assert_eq!(names(&sink.last_save()), ["a", "b"]);
    c.last("level", 1.0); // past the cap of 2: refused
    assert_eq!(c.telemetry().keys_dropped, 1);
    c.dump_blocking().expect("dump"); // idle from here
    c.dump_blocking().expect("dump"); // idle for the timeout: both expire
    assert_eq!((c.len(), c.telemetry().counters_expired), (0, 2));

    c.increment("x", 1);
    c.increment("y", 1);
    assert_eq!((c.len(), c.telemetry().keys_dropped), (2, 1), "the freed places took new keys");
    c.dump_blocking().expect("dump");
    assert_eq!(names(&sink.last_save()), ["x", "y"], "expired counters are published no more");

    kept.increment(5);
    c.dump_blocking().expect("dump");
    assert_eq!(find(&sink.last_save(), "a").count, Some(5), "the kept handle recorded into the counter");
    assert_eq!(c.get("a", CounterType::Increment).count, Some(6), "which is back in the store, totals kept");
    assert_eq!(c.len(), 3, "back past the cap: it was there before");
    c.increment("a", 2);
    c.dump_blocking().expect("dump");
    assert_eq!(find(&sink.last_save(), "a").count, Some(2), "one counter: the name and the handle agree");
}

#[test]
fn a_new_registration_of_an_expired_key_gets_the_same_counter_back() {
    let (c, sink) = counters(10);
    let recorder = c.recorder();
    let histogram = metrics::with_local_recorder(&recorder, || metrics::histogram!("latency", "route" => "/a"));
    histogram.record(3.0);
    c.dump_blocking().expect("dump");
    c.dump_blocking().expect("dump");
    c.dump_blocking().expect("dump");
    assert_eq!((c.len(), c.telemetry().counters_expired), (0, 1));
    histogram.record(4.0);
    metrics::with_local_recorder(&recorder, || metrics::histogram!("latency", "route" => "/a").record(5.0));
    c.dump_blocking().expect("dump");
    let saved = sink.last_save();
    let latency = find(&saved, "latency");
    assert_eq!((latency.count, latency.sum), (Some(2), Some(9.0)), "both samples, in one counter");
    assert_eq!(c.len(), 1);
}

#[test]
fn gauges_and_timestamps_never_expire() {
    let (c, sink) = counters(10);
    c.last("config.version", 7.0);
    c.timestamp_now("started");
    for _ in 0..4 {
        c.dump_blocking().expect("dump");
        assert_eq!(names(&sink.last_save()), ["config.version", "started"], "published at every dump");
    }
    assert_eq!(c.telemetry().counters_expired, 0);
    assert_eq!(CountersOptions::default().get_idle_timeout(), cloudwatch_counters::DEFAULT_IDLE_TIMEOUT);
}
