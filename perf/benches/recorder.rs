//! `metrics` macros through this crate's recorder and its peers' recorders, on the same workload in the same run
//! (see BENCHMARKS.md): `counter!` with a static key and with two dynamic labels, `gauge!` set, `histogram!`
//! record, and two threads on one hot counter.
//!
//! Every recorder is reached through `metrics::with_local_recorder`, so every macro call registers its key (the
//! `metrics` callsite does not cache handles): the lookup is part of what is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use futures_util::FutureExt;
use metrics::Recorder;
use metrics_cloudwatch::collector;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};

/// Histogram samples recorded between two prometheus upkeeps (its histograms keep every sample until then).
const UPKEEP_EVERY: u64 = 1 << 16;

/// A CloudWatch client that accepts and drops every request.
struct NullCloudWatch;

impl collector::CloudWatch for NullCloudWatch {
    fn put_metric_data(
        &self,
        _config: &collector::Config,
        _data: Vec<aws_sdk_cloudwatch::types::MetricDatum>,
    ) -> metrics_cloudwatch::BoxFuture<'_, Result<(), aws_sdk_cloudwatch::error::SdkError<PutMetricDataError>>> {
        async { Ok(()) }.boxed()
    }
}

/// The recorders under test, built once.
struct Peers {
    ours: cloudwatch_counters::CountersRecorder,
    /// Ours as CloudWatch users get it: percentiles on, each histogram sample also counted in its bucket.
    ours_percentiles: cloudwatch_counters::CountersRecorder,
    prometheus: metrics_exporter_prometheus::PrometheusRecorder,
    prometheus_handle: PrometheusHandle,
    cloudwatch: collector::RecorderHandle,
    /// Runs metrics_cloudwatch's collector, which drains its channel, on a thread of its own.
    _runtime: tokio::runtime::Runtime,
}

impl Peers {
    fn new() -> Peers {
        let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
        let prometheus = PrometheusBuilder::new().build_recorder();
        let prometheus_handle = prometheus.handle();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let config = collector::Config {
            cloudwatch_namespace: "bench".into(),
            default_dimensions: Default::default(),
            storage_resolution: collector::Resolution::Minute,
            send_interval_secs: 60,
            send_timeout_secs: 10,
            shutdown_signal: futures_util::future::pending::<()>().boxed().shared(),
            metric_buffer_size: 2048,
        };
        let (cloudwatch, task) = {
            let _in_runtime = runtime.enter();
            collector::new(NullCloudWatch, config, None)
        };
        runtime.spawn(task);
        // Never opened: nothing is sent, and the recorder is the one `CloudWatchCounters` users record through.
        let cloudwatch_counters = cloudwatch_counters::CloudWatchCounters::builder()
            .namespace("bench")
            .region("us-east-1")
            .credentials("bench", "bench")
            .build()
            .expect("valid settings");
        Peers {
            ours: counters.recorder(),
            ours_percentiles: cloudwatch_counters.recorder(),
            prometheus,
            prometheus_handle,
            cloudwatch,
            _runtime: runtime,
        }
    }
}

/// Benches `op` through each recorder; `upkeep` runs (untimed) every [`UPKEEP_EVERY`] calls for prometheus.
fn compare(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, peers: &Peers, op: &dyn Fn()) {
    group.bench_function("ours", |b| metrics::with_local_recorder(&peers.ours, || b.iter(op)));
    group.bench_function("prometheus", |b| {
        metrics::with_local_recorder(&peers.prometheus, || {
            b.iter_custom(|iters| timed_in_chunks(iters, op, || peers.prometheus_handle.run_upkeep()))
        })
    });
    group.bench_function("metrics_cloudwatch", |b| metrics::with_local_recorder(&peers.cloudwatch, || b.iter(op)));
}

/// Times `iters` calls of `op`, running `between` untimed after every [`UPKEEP_EVERY`] calls.
fn timed_in_chunks(iters: u64, op: &dyn Fn(), between: impl Fn()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(UPKEEP_EVERY);
        let start = Instant::now();
        for _ in 0..n {
            op();
        }
        total += start.elapsed();
        between();
        left -= n;
    }
    total
}

fn single_thread(c: &mut Criterion) {
    let peers = Peers::new();
    let method = String::from("GET");
    let status = String::from("200");

    let mut group = c.benchmark_group("counter_static");
    compare(&mut group, &peers, &|| metrics::counter!("requests").increment(1));
    group.finish();

    let mut group = c.benchmark_group("counter_2_labels");
    compare(&mut group, &peers, &|| {
        metrics::counter!("requests", "method" => method.clone(), "status" => status.clone()).increment(1)
    });
    group.finish();

    let mut group = c.benchmark_group("gauge_set");
    compare(&mut group, &peers, &|| metrics::gauge!("inflight").set(std::hint::black_box(3.0)));
    group.finish();

    let mut group = c.benchmark_group("histogram_record");
    let record = || metrics::histogram!("latency").record(std::hint::black_box(12.5));
    group.bench_function("ours_percentiles", |b| {
        metrics::with_local_recorder(&peers.ours_percentiles, || b.iter(record))
    });
    compare(&mut group, &peers, &record);
    group.finish();

    // Latencies spread over 0.1 ms to 1.6 s (15 powers of two): every sample in another bucket.
    let mut group = c.benchmark_group("histogram_record_spread");
    let next = std::cell::Cell::new(0u32);
    let spread = || {
        let i = next.get().wrapping_add(1);
        next.set(i);
        metrics::histogram!("latency").record(0.1 * f64::from(1 + (i.wrapping_mul(2_654_435_761) >> 18)));
    };
    group.bench_function("ours_percentiles", |b| {
        metrics::with_local_recorder(&peers.ours_percentiles, || b.iter(spread))
    });
    compare(&mut group, &peers, &spread);
    group.finish();
}

/// Two threads incrementing one counter through `recorder`: the wall time for `iters` increments on each.
fn two_threads<R: Recorder + Sync>(recorder: &R, iters: u64) -> Duration {
    let start = Arc::new(std::sync::Barrier::new(3));
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let start = Arc::clone(&start);
                s.spawn(move || {
                    metrics::with_local_recorder(recorder, || {
                        start.wait();
                        for _ in 0..iters {
                            metrics::counter!("hot").increment(1);
                        }
                    })
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        threads.into_iter().for_each(|t| t.join().expect("bench thread"));
        t.elapsed()
    })
}

fn contended(c: &mut Criterion) {
    let peers = Peers::new();
    let mut group = c.benchmark_group("counter_2_threads_one_key");
    group.bench_function("ours", |b| b.iter_custom(|iters| two_threads(&peers.ours, iters)));
    group.bench_function("prometheus", |b| b.iter_custom(|iters| two_threads(&peers.prometheus, iters)));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = single_thread, contended }
criterion_main!(benches);
