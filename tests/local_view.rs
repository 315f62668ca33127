//! pip's local view: `get()`, `get_all()` and what `LogCounters` prints are running totals with
//! `reset_timeout` 0 (pip's default) and start again after each reset otherwise — while every metrics sink
//! receives each period once (tests/per_period_truth.rs).

mod common;

use std::time::Duration;

use cloudwatch_counters::{CounterType, Counters, CountersOptions, LogCounters};
use common::SharedWriter;

#[tokio::test]
async fn log_counters_print_running_totals_by_default() {
    let out = SharedWriter::default();
    let log = LogCounters::to_writer(out.clone(), CountersOptions::default());
    log.increment("calls", 2);
    log.end_timing("op", 10.0);
    log.dump().await.unwrap();
    assert_eq!(out.take_lines("calls"), ["Counter calls { \"type\": COUNT, \"count\": 2 }"]);
    log.increment("calls", 3);
    log.end_timing("op", 30.0);
    log.dump().await.unwrap();
    assert_eq!(out.take_lines("calls"), ["Counter calls { \"type\": COUNT, \"count\": 5 }"], "2 + 3, as pip prints");
    log.end_timing("op", 20.0);
    log.dump().await.unwrap();
    assert_eq!(
        out.take_lines("op"),
        ["Counter op { \"type\": INTERVAL, \"last\": 20, \"count\": 3, \"min\": 10, \"max\": 30, \"avg\": 20 }"]
    );
    assert_eq!(log.get("calls", CounterType::Increment).count, Some(5));
}

#[tokio::test(start_paused = true)]
async fn with_a_reset_timeout_the_local_view_starts_again_after_each_reset() {
    let out = SharedWriter::default();
    let log = LogCounters::to_writer(out.clone(), CountersOptions::default().reset_timeout(Duration::from_secs(60)));
    log.increment("calls", 2);
    log.dump().await.unwrap();
    log.increment("calls", 3);
    tokio::time::advance(Duration::from_secs(61)).await;
    let report = log.dump().await.unwrap();
    assert!(report.reset);
    assert_eq!(
        out.take_lines("calls").last().map(String::as_str),
        Some("Counter calls { \"type\": COUNT, \"count\": 5 }")
    );
    assert_eq!(log.get("calls", CounterType::Increment).count, None, "reset, as pip's reset_all");
    log.increment("calls", 4);
    log.dump().await.unwrap();
    assert_eq!(out.take_lines("calls"), ["Counter calls { \"type\": COUNT, \"count\": 4 }"]);
    assert_eq!(log.counters().get_all().into_iter().find(|c| c.name == "calls").and_then(|c| c.count), Some(4));
}
