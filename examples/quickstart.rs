//! Quickstart: record every pip counter type for a few seconds and watch the dumps.
//!
//! `cargo run --example quickstart` prints each dump through LogCounters (one line per counter).

use std::time::Duration;

use cloudwatch_counters::{Counters, CountersOptions, LogCounters};

#[tokio::main]
async fn main() -> Result<(), cloudwatch_counters::Error> {
    let seconds: u64 = std::env::var("QUICKSTART_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let options = CountersOptions::default().interval(Duration::from_secs(1));
    let counters = LogCounters::new(options);
    counters.open()?;

    let started = tokio::time::Instant::now();
    let mut request = 0u32;
    while started.elapsed() < Duration::from_secs(seconds) {
        request += 1;
        // Increment: calls.
        counters.increment_one("quickstart.requests");
        // Interval: a timed operation, in milliseconds.
        let timing = counters.begin_timing("quickstart.handle.exec_time");
        tokio::time::sleep(Duration::from_millis(40 + u64::from(request % 7) * 5)).await;
        timing.end_timing();
        // Statistics: any sampled value.
        counters.stats("quickstart.payload_bytes", f64::from(512 + request % 5 * 100));
        // LastValue: the current value of something.
        counters.last("quickstart.queue_depth", f64::from(request % 10));
        // Timestamp: when something last happened.
        counters.timestamp_now("quickstart.last_request_time");
    }
    println!("-- closing: the final flush follows --");
    // close() flushes, so the last partial interval is printed too.
    counters.close().await?;
    Ok(())
}
