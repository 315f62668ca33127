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
    assert_eq!(log.counters().get_all().into_iter().find(|c| c.name() == "calls").and_then(|c| c.count), Some(4));
}

/// A sink with the running view whose saves take 10 ms, as a real destination's do.
struct SlowTotals(common::RecordingSink);

impl cloudwatch_counters::Sink for SlowTotals {
    fn view(&self) -> cloudwatch_counters::SinkView {
        cloudwatch_counters::SinkView::Totals
    }

    fn save<'a>(&'a self, counters: &'a [cloudwatch_counters::Counter]) -> cloudwatch_counters::SaveFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.0.save(counters).await
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_reset_timeout_equal_to_the_interval_resets_at_every_timer_dump_however_long_the_save() {
    let recorded = common::RecordingSink::with_view(cloudwatch_counters::SinkView::Totals);
    let second = Duration::from_secs(1);
    let options = CountersOptions::default().interval(second).reset_timeout(second).telemetry(false);
    let counters = cloudwatch_counters::CachedCounters::new(SlowTotals(recorded.clone()), options);
    counters.open().await.unwrap();
    let mut shown = Vec::new();
    for (dump, amount) in [1, 2, 4, 8].into_iter().enumerate() {
        counters.increment("calls", amount);
        tokio::time::timeout(Duration::from_secs(60), recorded.wait_for_saves(dump + 1)).await.expect("a timer dump");
        shown.push(common::find(&recorded.last_save(), "calls").count);
    }
    assert_eq!(&shown[2..], [Some(4), Some(8)], "each interval's own amount, reset after every dump: {shown:?}");
    counters.close().await.unwrap();
}
