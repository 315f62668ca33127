//! Ours against metrics-exporter-prometheus on each single-thread workload of the recorder benches, measured the
//! way noise on a shared VM moves least: batches of calls through each recorder (`with_local_recorder`),
//! alternating, and the fastest batches of each compared (noise only ever adds time, so the low end of many
//! batches is the cost without it). BENCHMARKS.md gives these beside criterion's paired medians.
//!
//! ```text
//! cargo run --release -p cloudwatch-counters-perf --example recorder_cost [BATCHES [WORKLOAD]]
//! ```
//!
//! WORKLOAD keeps the workloads whose name contains it. Prints, per workload, each recorder's minimum and 10th
//! percentile per call, ours as a fraction of prometheus' (of the fastest batches, of the 10th percentiles, and
//! the median of each pair's ratio), the fastest batch through `metrics::NoopRecorder` (what the workload
//! costs before any recorder: ours minus it is our part), and ours' part as a fraction of prometheus' part (of
//! the fastest batches: what each recorder adds to the workload). It checks that ours recorded every call and
//! that prometheus rendered the workload's metric.

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};
use metrics_exporter_prometheus::PrometheusBuilder;

#[allow(dead_code, reason = "the benches' shared module; this uses its workloads and checks")]
#[path = "../benches/common/mod.rs"]
mod common;

#[allow(dead_code, reason = "the fastest-batches examples' shared module: each uses part of it")]
mod batches;

use batches::{quantile, recorder_batch, CALLS};

fn main() {
    let batches: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(5_000);
    let only = std::env::args().nth(2).unwrap_or_default();
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let ours = counters.recorder();
    // Never opened: nothing is sent; its recorder keeps percentiles (CloudWatch publishes them).
    let cloudwatch = cloudwatch_counters::CloudWatchCounters::builder()
        .namespace("bench")
        .region("us-east-1")
        .credentials("bench", "bench")
        .build()
        .expect("valid settings");
    let ours_percentiles = cloudwatch.recorder();
    let prometheus = PrometheusBuilder::new().build_recorder();
    let handle = prometheus.handle();
    println!(
        "{:<26} {:>20} {:>20} {:>17} {:>12} {:>13} {:>11}",
        "workload",
        "ours min / p10",
        "prometheus min / p10",
        "ratio min / p10",
        "median pair",
        "noop min",
        "part ratio"
    );
    for workload in common::workloads().into_iter().filter(|w| w.group.contains(only.as_str())) {
        let (counters, ours) = match workload.kind {
            common::Kind::Histogram => (cloudwatch.counters(), &ours_percentiles),
            _ => (&counters, &ours),
        };
        let before = workload.ours_total(counters);
        let (mut theirs, mut mine) = (Vec::with_capacity(batches), Vec::with_capacity(batches));
        let mut noop = Vec::with_capacity(batches);
        let mut calls = 0;
        for _ in 0..batches {
            theirs.push(recorder_batch(&prometheus, &*workload.op));
            mine.push(recorder_batch(ours, &*workload.op));
            calls += CALLS;
            if calls % common::UPKEEP_EVERY < CALLS {
                handle.run_upkeep(); // prometheus keeps histogram samples until then (untimed)
            }
        }
        workload.check_ours(counters, before, calls, "ours");
        // The workload's own cost (building its key, for one) through a recorder that does nothing, measured
        // after the others rather than between them, which would change what they leave in the caches.
        for _ in 0..batches {
            noop.push(recorder_batch(&metrics::NoopRecorder, &*workload.op));
        }
        workload.check_prometheus(calls, &handle.render());
        let median_pair = batches::median_pair_ratio(&mine, &theirs);
        theirs.sort_by(f64::total_cmp);
        mine.sort_by(f64::total_cmp);
        noop.sort_by(f64::total_cmp);
        let (ours_min, ours_p10) = (quantile(&mine, 0.0), quantile(&mine, 0.1));
        let (their_min, their_p10) = (quantile(&theirs, 0.0), quantile(&theirs, 0.1));
        let noop_min = quantile(&noop, 0.0);
        println!(
            "{:<26} {:>8.1} / {:>6.1} ns {:>8.1} / {:>6.1} ns {:>7.3} / {:.3} {:>12.3} {:>10.1} ns {:>11.3}",
            workload.group,
            ours_min,
            ours_p10,
            their_min,
            their_p10,
            ours_min / their_min,
            ours_p10 / their_p10,
            median_pair,
            noop_min,
            (ours_min - noop_min) / (their_min - noop_min)
        );
    }
}
