//! A dump of 10,000 counters as EMF documents, next to metrics-cloudwatch-embedded's flush of the same counters
//! in the same run (see BENCHMARKS.md): 100 metric names times 100 values of a `shard` label, every counter
//! updated (untimed) before each flush, the documents written to `io::sink()`.
//!
//! metrics-cloudwatch-embedded installs itself as the process's global `metrics` recorder (its collector
//! cannot be made otherwise), so it is the only one this bench process uses that way; ours records through
//! handles.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use metrics::{Key, Label};

use cloudwatch_counters::{CounterType, CountersOptions, EmfCounters};

const COUNTERS: usize = 10_000;

fn key(i: usize) -> Key {
    Key::from_parts(format!("service.op{}.calls", i % 100), vec![Label::new("shard", (i / 100).to_string())])
}

fn emf(c: &mut Criterion) {
    let options = CountersOptions::default().telemetry(false).interval(Duration::from_secs(3600));
    let ours =
        EmfCounters::builder().namespace("bench").writer(std::io::sink()).options(options).build().expect("valid");
    let handles: Vec<_> = (0..COUNTERS).map(|i| ours.handle_for_key(&key(i), CounterType::Increment)).collect();
    let touch_ours = || handles.iter().for_each(|h| h.increment(1));
    touch_ours();
    assert_eq!(ours.flush_blocking().expect("flush").saved, COUNTERS);

    let theirs = metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace("bench").init().expect("installed");
    let their_handles: Vec<metrics::Counter> = (0..COUNTERS)
        .map(|i| metrics::counter!(format!("service.op{}.calls", i % 100), "shard" => (i / 100).to_string()))
        .collect();
    let touch_theirs = || their_handles.iter().for_each(|h| h.increment(1));
    touch_theirs();
    let mut out = Vec::new();
    theirs.flush(&mut out).expect("flush");
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 100, "a document per label set");

    let mut group = c.benchmark_group("emf_dump_10k_counters");
    group.bench_function("ours", |b| {
        b.iter_batched(touch_ours, |()| ours.flush_blocking().expect("flush"), BatchSize::PerIteration)
    });
    group.bench_function("metrics_cloudwatch_embedded", |b| {
        b.iter_batched(touch_theirs, |()| theirs.flush(std::io::sink()).expect("flush"), BatchSize::PerIteration)
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = emf }
criterion_main!(benches);
