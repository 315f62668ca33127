//! Quickstart: record every pip counter type for a few seconds and watch the dumps.
//!
//! `cargo run --example quickstart` prints each dump through LogCounters (one line per counter).
//! `cargo run --example quickstart -- --cloudwatch` also publishes to CloudWatch: to `AWS_ENDPOINT_URL` when set
//! (for example the local server of `scripts/localstack.sh start`), else to AWS with the default credential chain.
//! Setting `AWS_ENDPOINT_URL` alone turns publishing on too. The namespace is `cloudwatch-counters/quickstart`.
//! It runs for `QUICKSTART_SECONDS` (3); Ctrl-C stops it early, and the counters are flushed either way.

use std::sync::Arc;
use std::time::Duration;

use cloudwatch_counters::{CloudWatchCounters, CompositeCounters, Counters, CountersOptions, LogCounters};

#[tokio::main]
async fn main() -> Result<(), cloudwatch_counters::Error> {
    let seconds: u64 = std::env::var("QUICKSTART_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let publish = endpoint.is_some() || std::env::args().any(|a| a == "--cloudwatch");
    let options = CountersOptions::default().interval(Duration::from_secs(1));

    let log = LogCounters::new(options.clone());
    log.open().await?;
    let mut all = CompositeCounters::new(vec![Arc::new(log.counters().clone())]);
    let cloudwatch = if publish {
        let mut builder = CloudWatchCounters::builder()
            .namespace("cloudwatch-counters/quickstart")
            .instance("quickstart")
            .options(options);
        if let Some(endpoint) = endpoint {
            // A local server takes any credentials; AWS itself uses the default chain.
            builder = builder
                .endpoint_url(endpoint)
                .credentials("test", "test")
                .region(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()));
        }
        let cw = builder.build()?;
        cw.open().await?;
        all.add(Arc::new(cw.counters().clone()));
        Some(cw)
    } else {
        None
    };

    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    let stop = async {
        tokio::select! {
            () = deadline => {}
            _ = tokio::signal::ctrl_c() => println!("-- Ctrl-C --"),
        }
    };
    tokio::pin!(stop);
    let mut request = 0u32;
    loop {
        request += 1;
        // Increment: calls.
        all.increment_one("quickstart.requests");
        // Interval: a timed operation, in milliseconds.
        let timing = all.begin_timing("quickstart.handle.exec_time");
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(Duration::from_millis(40 + u64::from(request % 7) * 5)) => {}
        }
        timing.end_timing();
        // Statistics: any sampled value.
        all.stats("quickstart.payload_bytes", f64::from(512 + request % 5 * 100));
        // LastValue: the current value of something.
        all.last("quickstart.queue_depth", f64::from(request % 10));
        // Timestamp: when something last happened.
        all.timestamp_now("quickstart.last_request_time");
    }
    println!("-- closing: the final flush follows --");
    // close() flushes, so the last partial interval is saved too.
    log.close().await?;
    if let Some(cw) = cloudwatch {
        let report = cw.close().await?;
        let sent = cw.telemetry().datums_sent;
        println!("-- published to CloudWatch: {sent} datums in all, {} in the final flush --", report.saved);
    }
    Ok(())
}
