//! `metrics` macros through this crate's recorder and its peers' recorders, on the same workload in the same run
//! (see BENCHMARKS.md). Single thread (`common::workloads`): `counter!` with a static key, with two dynamic labels,
//! with 1,000 and with 6,000 static keys round-robin and with a name formatted each call; `gauge!` set;
//! `histogram!` record of one value and of spread values. Threads: 1, 2 and 4 threads incrementing one hot counter
//! (`counter_threads_one_key`) and each its own key (`counter_threads_own_keys`), through ours, prometheus and
//! metrics-cloudwatch-embedded (bench ids `<recorder>/<threads>`). Paired (`ours_percent_of_prometheus`, a bench
//! per single-thread workload): the same calls through ours and prometheus back to back in each sample, reported
//! as ours' time in percent of prometheus' (see `paired`); the figure the ratio targets are read from.
//!
//! Every recorder is reached through `metrics::with_local_recorder`, so every macro call registers its key (the
//! `metrics` callsite does not cache handles): the lookup is part of what is measured. metrics-cloudwatch-embedded
//! can only be installed as the process's global recorder (its `Builder::init`; its recorder type is private), so
//! this process installs it globally and the bench sets that global recorder as the local one too
//! (`metrics::with_recorder`), reaching it the same way as the others. `recorder_global.rs` measures every
//! recorder installed with `metrics::set_global_recorder` instead.
//!
//! Every bench times plain loops of `iters` calls (`iter_custom`), the same for every recorder, and counts them:
//! after each bench, ours must hold exactly that many increments or samples, prometheus' rendering and
//! metrics-cloudwatch-embedded's flushed documents must hold the metric (metrics_cloudwatch's data goes to its
//! collector thread and is not checked). Untimed, between chunks of calls: prometheus' upkeep every 65,536 calls,
//! and metrics-cloudwatch-embedded's flush every 100 histogram samples (it keeps at most 100 between flushes); the
//! chunking adds two clock reads per chunk to their timed figures (about 0.5 ns a call for 100-call chunks).
//!
//! Threads: `iter_custom` returns the wall time from the start barrier to the last join for `iters` increments
//! on each thread, so criterion's time per iteration is the time for one increment on every thread (a round),
//! and its throughput (elements = threads) the increments per second of all threads together. The machine has 2
//! cores: 4 threads share them.

mod common;
mod paired;

use std::cell::Cell;
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use futures_util::FutureExt;
use metrics_cloudwatch::collector;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};
use common::{timed_in_chunks, EmbeddedFlush, Kind, Workload, UPKEEP_EVERY};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

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

/// metrics-cloudwatch-embedded, installed as the global recorder once, as its README does:
/// `metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace("MyApplication").init()`.
fn embedded() -> &'static metrics_cloudwatch_embedded::Collector {
    static COLLECTOR: OnceLock<&'static metrics_cloudwatch_embedded::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace("bench").init().expect("installed")
    })
}

/// Runs `f` with the global recorder (metrics-cloudwatch-embedded) set as this thread's local recorder.
fn with_global_as_local<T>(f: impl FnOnce() -> T) -> T {
    metrics::with_recorder(|global| metrics::with_local_recorder(global, f))
}

/// The recorders under test, built once.
struct Peers {
    counters: CachedCounters,
    ours: cloudwatch_counters::CountersRecorder,
    /// Ours as CloudWatch users get it: percentiles on, each histogram sample also counted in its bucket.
    cloudwatch_counters: cloudwatch_counters::CloudWatchCounters,
    ours_percentiles: cloudwatch_counters::CountersRecorder,
    prometheus: metrics_exporter_prometheus::PrometheusRecorder,
    prometheus_handle: PrometheusHandle,
    cloudwatch: collector::RecorderHandle,
    embedded: &'static metrics_cloudwatch_embedded::Collector,
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
            counters,
            ours_percentiles: cloudwatch_counters.recorder(),
            cloudwatch_counters,
            prometheus,
            prometheus_handle,
            cloudwatch,
            embedded: embedded(),
            _runtime: runtime,
        }
    }
}

/// Benches `workload` through each recorder (and ours with percentiles for histograms), then checks that each
/// did the work.
fn compare(group: &mut Group<'_>, peers: &Peers, workload: &Workload) {
    let op = &*workload.op;
    let none = &|| {};
    let runs = Cell::new(0);

    let mut ours = |name: &str, counters: &CachedCounters, recorder: &cloudwatch_counters::CountersRecorder| {
        let before = workload.ours_total(counters);
        runs.set(0);
        group.bench_function(name, |b| {
            metrics::with_local_recorder(recorder, || {
                b.iter_custom(|iters| timed_in_chunks(iters, op, u64::MAX, none, &runs))
            })
        });
        workload.check_ours(counters, before, runs.get(), name);
    };
    if workload.kind == Kind::Histogram {
        ours("ours_percentiles", peers.cloudwatch_counters.counters(), &peers.ours_percentiles);
    }
    ours("ours", &peers.counters, &peers.ours);

    let upkeep = &|| peers.prometheus_handle.run_upkeep();
    runs.set(0);
    group.bench_function("prometheus", |b| {
        metrics::with_local_recorder(&peers.prometheus, || {
            b.iter_custom(|iters| timed_in_chunks(iters, op, UPKEEP_EVERY, upkeep, &runs))
        })
    });
    workload.check_prometheus(runs.get(), &peers.prometheus_handle.render());

    group.bench_function("metrics_cloudwatch", |b| {
        metrics::with_local_recorder(&peers.cloudwatch, || {
            b.iter_custom(|iters| timed_in_chunks(iters, op, u64::MAX, none, &runs))
        })
    });

    let flush = EmbeddedFlush::new(peers.embedded, workload);
    let every = workload.embedded_flush_every();
    group.bench_function("metrics_cloudwatch_embedded", |b| {
        with_global_as_local(|| b.iter_custom(|iters| timed_in_chunks(iters, op, every, &|| flush.flush(), &runs)))
    });
    flush.check(workload.group);
}

fn single_thread(c: &mut Criterion) {
    let peers = Peers::new();
    for workload in common::workloads() {
        let mut group = c.benchmark_group(workload.group);
        compare(&mut group, &peers, &workload);
        group.finish();
    }
    paired_with_prometheus(c, &peers);
}

/// Every single-thread workload through ours (with percentiles for histograms, as CloudWatch users get them)
/// and prometheus in paired batches (see `paired`): group `ours_percent_of_prometheus`, a bench per workload.
fn paired_with_prometheus(c: &mut Criterion, peers: &Peers) {
    let mut group = c.benchmark_group("ours_percent_of_prometheus");
    let order = paired::Order::default();
    for workload in common::workloads() {
        let (counters, recorder) = match workload.kind {
            Kind::Histogram => (peers.cloudwatch_counters.counters(), &peers.ours_percentiles),
            Kind::Counter | Kind::Gauge => (&peers.counters, &peers.ours),
        };
        let op = &*workload.op;
        let before = workload.ours_total(counters);
        let (ours_runs, prometheus_runs) = (Cell::new(0), Cell::new(0));
        let ours =
            |iters| metrics::with_local_recorder(recorder, || timed_in_chunks(iters, op, u64::MAX, &|| {}, &ours_runs));
        let upkeep = || peers.prometheus_handle.run_upkeep();
        let prometheus = |iters| {
            metrics::with_local_recorder(&peers.prometheus, || {
                timed_in_chunks(iters, op, UPKEEP_EVERY, &upkeep, &prometheus_runs)
            })
        };
        group.bench_function(workload.group, |b| {
            b.iter_custom(|iters| paired::percent_of(iters, &ours, &prometheus, &order))
        });
        workload.check_ours(counters, before, ours_runs.get(), "paired");
        workload.check_prometheus(prometheus_runs.get(), &peers.prometheus_handle.render());
    }
    group.finish();
}

/// Sets a thread's recorder for the duration of the closure it is given.
type WithRecorder<'a> = &'a (dyn Fn(&mut dyn FnMut()) + Sync);

/// `threads` threads at once, each under the recorder `with` sets, each incrementing `iters` times the counter
/// `key(thread)`: the wall time from the start barrier to the last join.
fn on_threads(threads: usize, iters: u64, with: WithRecorder<'_>, key: fn(usize) -> &'static str) -> Duration {
    let start = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let running: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    with(&mut || {
                        let name = key(t);
                        start.wait();
                        for _ in 0..iters {
                            metrics::counter!(name).increment(1);
                        }
                    })
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        running.into_iter().for_each(|t| t.join().expect("bench thread"));
        t.elapsed()
    })
}

/// Keys of `counter_threads_own_keys`: thread `t` increments `own.t`.
const OWN_KEYS: [&str; 4] = ["own.0", "own.1", "own.2", "own.3"];

/// A threads workload: the key thread `t` increments, which of our counters hold its increments, and text
/// prometheus' rendering holds once it ran.
struct ThreadsWorkload {
    group: &'static str,
    key: fn(usize) -> &'static str,
    mine: fn(&str) -> bool,
    prometheus: &'static str,
}

fn threads(c: &mut Criterion) {
    let peers = Peers::new();
    let (ours, prometheus) = (&peers.ours, &peers.prometheus);
    let recorders: [(&str, WithRecorder<'_>); 3] = [
        ("ours", &|f| metrics::with_local_recorder(ours, f)),
        ("prometheus", &|f| metrics::with_local_recorder(prometheus, f)),
        ("metrics_cloudwatch_embedded", &|f| with_global_as_local(f)),
    ];
    let workloads = [
        ThreadsWorkload {
            group: "counter_threads_one_key",
            key: |_| "hot",
            mine: |name| name == "hot",
            prometheus: "\nhot ",
        },
        ThreadsWorkload {
            group: "counter_threads_own_keys",
            key: |t| OWN_KEYS[t],
            mine: |name| name.starts_with("own."),
            prometheus: "\nown_0 ",
        },
    ];
    let ours_total = |mine: fn(&str) -> bool| -> i64 {
        peers.counters.get_all().iter().filter(|c| mine(c.name())).map(|c| c.count.unwrap_or(0)).sum()
    };
    for ThreadsWorkload { group: group_name, key, mine, prometheus: line } in workloads {
        let mut group = c.benchmark_group(group_name);
        for threads in [1, 2, 4] {
            group.throughput(Throughput::Elements(threads as u64));
            for (name, with) in recorders {
                let (before, increments) = (ours_total(mine), Cell::new(0));
                group.bench_function(BenchmarkId::new(name, threads), |b| {
                    b.iter_custom(|iters| {
                        increments.set(increments.get() + iters * threads as u64);
                        on_threads(threads, iters, with, key)
                    })
                });
                match name {
                    "ours" => {
                        assert_eq!(ours_total(mine) - before, increments.get() as i64, "{group_name}: every increment")
                    }
                    "prometheus" if increments.get() > 0 => {
                        let rendered = peers.prometheus_handle.render();
                        assert!(rendered.contains(line), "{group_name}/prometheus: {line:?} rendered")
                    }
                    _ => {}
                }
            }
        }
        group.finish();
    }
}

criterion_group! { name = benches; config = common::config(); targets = single_thread, threads }
criterion_main!(benches);
