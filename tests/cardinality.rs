//! The cap on live counters and the memory held under unbounded label values and long outages, measured with a
//! global allocator that tracks the bytes in use.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType, Counters, CountersOptions};
use common::bytes_in_use::{in_use, BytesInUse};
use common::{capture_logs, find, RecordingSink};

#[global_allocator]
static GLOBAL: BytesInUse = BytesInUse;

/// Runs `test` alone (the tests of this file measure process-wide memory), on a runtime built once the others
/// are done: a runtime built meanwhile would count in another test's measure.
fn one_at_a_time(test: impl std::future::Future<Output = ()>) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(test);
}

#[test]
fn a_million_label_values_stop_at_the_cap_with_memory_bounded() {
    one_at_a_time(a_million_label_values());
}

async fn a_million_label_values() {
    const CAP: usize = 10_000;
    const KEYS: usize = 1_000_000;
    let sink = RecordingSink::default();
    let counters = CachedCounters::new(sink.clone(), CountersOptions::default().max_counters(CAP));
    let recorder = counters.recorder();
    let (_logs_guard, logs) = capture_logs();

    let empty = in_use();
    let mut at_cap = 0;
    metrics::with_local_recorder(&recorder, || {
        for user in 0..KEYS {
            metrics::counter!("requests", "user" => user.to_string()).increment(1);
            if user + 1 == CAP {
                at_cap = in_use();
            }
        }
    });
    let at_end = in_use();
    let per_counter = (at_cap - empty) as f64 / CAP as f64;
    let growth_past_cap = at_end - at_cap;
    println!(
        "{CAP} counters hold {} bytes ({per_counter:.0} bytes each); {} more keys added {growth_past_cap} bytes",
        at_cap - empty,
        KEYS - CAP
    );
    assert_eq!(counters.len(), CAP);
    assert!(growth_past_cap < 64 * 1024, "memory kept growing past the cap: {growth_past_cap} bytes");
    assert!(per_counter < 1024.0, "{per_counter} bytes per counter");
    assert_eq!(logs.lines_with("the counters are full"), 1, "warned once: {}", logs.text());

    // Existing counters still count; the refusals are counted and published.
    metrics::with_local_recorder(&recorder, || metrics::counter!("requests", "user" => "7").increment(1));
    counters.dump().await.unwrap();
    assert_eq!(counters.telemetry().keys_dropped, (KEYS - CAP) as u64);
    let saved = sink.last_save();
    assert_eq!(saved.len(), CAP + 1, "the capped counters and the telemetry counter");
    assert_eq!(find(&saved, "cloudwatch_counters.keys_dropped").count, Some((KEYS - CAP) as i64));
    let seven = saved.iter().find(|c| c.dimensions() == [("user".to_owned(), "7".to_owned())]).unwrap();
    assert_eq!(seven.count, Some(2));
}

#[test]
fn a_long_outage_holds_no_more_memory_than_the_counters_themselves() {
    one_at_a_time(a_long_outage());
}

async fn a_long_outage() {
    let sink = RecordingSink::default();
    let options = CountersOptions::default().reset_timeout(std::time::Duration::from_nanos(1));
    let counters = CachedCounters::new(sink.clone(), options);
    let handles: Vec<_> = (0..1000).map(|i| counters.handle(format!("c{i}"), CounterType::Statistics)).collect();
    sink.set_failing(true);
    let mut after_first_failures = 0;
    for round in 0..300 {
        for h in &handles {
            h.record(1.0);
        }
        assert!(counters.dump().await.is_err());
        if round == 9 {
            after_first_failures = in_use();
        }
    }
    let growth = in_use() - after_first_failures;
    println!("290 more failed dumps of 1000 counters held {growth} more bytes");
    assert!(growth < 16 * 1024, "unsent data grew memory by {growth} bytes");

    sink.set_failing(false);
    counters.dump().await.unwrap();
    let saved = sink.last_save();
    assert!((0..1000).all(|i| find(&saved, &format!("c{i}")).count == Some(300)), "every sample kept");
    assert_eq!(find(&saved, "cloudwatch_counters.dumps_failed").count, Some(300));
    counters.stats("c0", 1.0); // the counters keep working
}
