//! The layer's added cost per span, measured the way noise on a shared VM moves least: batches of spans (new,
//! enter, exit, close) under Registry + a no-op layer and under Registry + `counters.layer()`, alternating, and
//! the fastest batches of each compared (noise only ever adds time, so the low end of many batches is the
//! cost without it).
//!
//! ```text
//! cargo run --release -p cloudwatch-counters-perf --example span_cost [BATCHES [dimensions]]
//! ```
//!
//! With `dimensions`, each span is that of `perf/benches/layer.rs`' `span_with_dimensions`: `method` and `route`
//! (two values in turn) at creation and `status` recorded before the close, timed into the counter of its values.
//!
//! Prints, per span, the minimum, the 10th percentile and the median of each configuration's batches and their
//! differences; then the median of the pairs' ratios (ours' batch over the no-op layer's batch next to it) and
//! the added cost it gives at the no-op layer's fastest speed, a median that the VM's slow phases move far less
//! than the plain medians (BENCHMARKS.md).
//! It checks that the layer timed every span.

use std::time::{Duration, Instant};

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};
use tracing::{Dispatch, Subscriber};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

#[allow(dead_code, reason = "the fastest-batches examples' shared module: each uses part of it")]
mod batches;

use batches::quantile;

/// A layer that does nothing (every method the default).
struct NoopLayer;

impl<S: Subscriber> Layer<S> for NoopLayer {}

/// Spans per batch.
const SPANS: u32 = 2_000;

/// One batch under `dispatch`, of plain spans or of spans with dimensions: nanoseconds per span.
fn batch(dispatch: &Dispatch, dimensions: bool) -> f64 {
    tracing::dispatcher::with_default(dispatch, || {
        let start = Instant::now();
        if dimensions {
            for i in 0..SPANS {
                let route = if i % 2 == 0 { "/orders" } else { "/items" };
                let span = tracing::info_span!("request", method = "GET", route, status = tracing::field::Empty);
                drop(span.enter());
                span.record("status", 200);
                drop(span);
            }
        } else {
            for _ in 0..SPANS {
                let span = tracing::info_span!("request");
                drop(span.enter());
                drop(span);
            }
        }
        start.elapsed().as_nanos() as f64 / f64::from(SPANS)
    })
}

fn main() {
    let batches: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let dimensions = match std::env::args().nth(2).as_deref() {
        None => false,
        Some("dimensions") => true,
        Some(other) => panic!("unknown workload {other:?}: give `dimensions` or nothing"),
    };
    let options = CountersOptions::default().telemetry(false).interval(Duration::from_secs(3600));
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), options);
    let noop = Dispatch::new(Registry::default().with(NoopLayer));
    let layer = Dispatch::new(Registry::default().with(counters.layer()));
    let (mut without, mut with) = (Vec::with_capacity(batches), Vec::with_capacity(batches));
    for _ in 0..batches {
        without.push(batch(&noop, dimensions));
        with.push(batch(&layer, dimensions));
    }
    let timed: i64 =
        counters.get_all().iter().filter(|c| c.name().ends_with(".request.exec_time")).filter_map(|c| c.count).sum();
    assert_eq!(timed, batches as i64 * i64::from(SPANS), "every span timed");
    // The machine's slow phases (a second or so, in which everything runs about 1.5 times slower) move both
    // batches of a pair: their ratio moves far less than a difference of times.
    let ratio = batches::median_pair_ratio(&with, &without);
    without.sort_by(f64::total_cmp);
    with.sort_by(f64::total_cmp);
    for (what, q) in [("minimum", 0.0), ("10th percentile", 0.1), ("median", 0.5)] {
        let (a, b) = (quantile(&without, q), quantile(&with, q));
        println!("{what:>15}: no-op layer {a:6.1} ns, ours {b:6.1} ns, added {:5.1} ns per span", b - a);
    }
    let fastest = quantile(&without, 0.0);
    println!(
        "{:>15}: ours / no-op layer {ratio:.3}, added {:5.1} ns per span at the no-op layer's fastest",
        "median pair",
        (ratio - 1.0) * fastest
    );
}
