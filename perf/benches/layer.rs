//! What the counters Layer adds to a `tracing_subscriber::Registry`, in the same run (see BENCHMARKS.md), and
//! tracing-opentelemetry's `MetricsLayer` on the same metric events.
//!
//! - `span_new_enter_exit_close`: a span's whole life under a bare Registry, under Registry + `NoopLayer` (a
//!   layer that does nothing: what any layer costs to be called) and under Registry + `counters.layer()`. The
//!   layer's added cost is `registry_with_layer - registry_with_noop_layer`. The bare registry's figure swings
//!   from batch to batch on this VM (see BENCHMARKS.md), so this group takes 100 samples of equal size (flat
//!   sampling, each sample one timed batch of ~3 s / 100 of spans) and the figure to use is criterion's
//!   **median** (`target/criterion/<group>/<bench>/new/estimates.json`, `"median"`; `perf/medians.sh` prints
//!   them all), which one slow batch does not move.
//! - `span_layer_added_cost`: the same span, timed in pairs of batches (Registry + `NoopLayer`, then Registry +
//!   `counters.layer()`, back to back), each sample the difference: the layer's added cost per span, directly.
//!   Its median is criterion's figure; `perf/examples/span_cost.rs` measures the same cost as the fastest of many
//!   alternating batches, which the VM's noise moves far less (BENCHMARKS.md gives both).
//! - `span_with_dimensions`: a span with `method`, `route` and a `status` recorded before it closes, under
//!   Registry + `NoopLayer` and Registry + `counters.layer()`.
//! - `clock/quanta_raw`: one read of the clock the layer times spans with; a span reads it twice.
//! - `event_in_span`, `error_event_in_span`: an INFO and an ERROR event inside an entered span, bare Registry
//!   against Registry + `counters.layer()`.
//! - `metric_event` (`monotonic_counter.requests = 1`), `metric_event_1_label` (the same with `status = "200"`),
//!   `metric_histogram` (`histogram.latency = 12.5`) and `metric_event_6000_values` (`monotonic_counter.hits = 1`
//!   with a `route` of 6,000 values in turn: more counters than a thread's cache holds, so most events miss it):
//!   Registry + `counters.layer()`, Registry + tracing-opentelemetry's `MetricsLayer` over an `SdkMeterProvider`
//!   with a `ManualReader` (its docs: `Registry::default().with(MetricsLayer::new(meter_provider))`; its default
//!   cardinality limit, 2,000 attribute sets per instrument, folds the other routes' events into one overflow
//!   series; so the 6,000-value event is also run under a `MetricsLayer` whose limit keeps every route apart,
//!   `registry_with_otel_metrics_layer_limit_8192`), and Registry + `NoopLayer`.
//! - `ours_percent_of_metrics_layer`: the same events through ours and through `MetricsLayer` back to back in
//!   each sample, reported as ours' time in percent of `MetricsLayer`'s (see `paired`; the 6,000-value event
//!   against both `MetricsLayer`s); the figure the ratio targets are read from.
//!
//! Every bench times plain loops of `iters` calls (`iter_custom`) and counts them; after each bench, ours must hold
//! exactly that many span samples or metric updates, and the OpenTelemetry reader must collect exactly that many.
//! Each subscriber lives only while its bench runs, so the callsites' cached interest is one subscriber's at a
//! time.

use std::cell::Cell;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    Instrument, InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Stream, Temporality,
};
use tracing::Subscriber;
use tracing_opentelemetry::MetricsLayer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};

mod paired;

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// A layer that does nothing (every method the default).
struct NoopLayer;

impl<S: Subscriber> Layer<S> for NoopLayer {}

/// Benches `op` under `subscriber` (the thread's default while it runs), with `op` inside an entered span when
/// `in_span`: `iters` calls timed as one batch. Returns the calls made.
fn bench_under(
    group: &mut Group<'_>,
    name: &str,
    subscriber: impl Subscriber + Send + Sync,
    in_span: bool,
    op: fn(),
) -> u64 {
    let runs = Cell::new(0);
    tracing::subscriber::with_default(subscriber, || {
        let span = in_span.then(|| tracing::info_span!("outer"));
        let _entered = span.as_ref().map(tracing::Span::enter);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runs.set(runs.get() + iters);
                let start = Instant::now();
                for _ in 0..iters {
                    op();
                }
                start.elapsed()
            })
        });
    });
    runs.get()
}

fn counters() -> CachedCounters {
    CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default())
}

/// The count (increments, or samples) our `counters` hold for the counters `mine` picks by name and labels.
fn ours_total(counters: &CachedCounters, mine: impl Fn(&str, usize) -> bool) -> u64 {
    let total: i64 =
        counters.get_all().iter().filter(|c| mine(c.name(), c.dimensions().len())).map(|c| c.count.unwrap_or(0)).sum();
    total as u64
}

fn spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_new_enter_exit_close");
    group.sample_size(100).sampling_mode(SamplingMode::Flat);
    let op = || {
        let span = tracing::info_span!("request");
        drop(span.enter());
        drop(span);
    };
    bench_under(&mut group, "registry", Registry::default(), false, op);
    bench_under(&mut group, "registry_with_noop_layer", Registry::default().with(NoopLayer), false, op);
    let counters = counters();
    let runs = bench_under(&mut group, "registry_with_layer", Registry::default().with(counters.layer()), false, op);
    group.finish();
    let timed = ours_total(&counters, |name, _| name.ends_with(".request.exec_time"));
    assert_eq!(timed, runs, "every span timed");
    span_added_cost(c, op);
    labelled_spans(c);
}

/// A span with dimensions, as an HTTP service makes one (`method`, `route`, and `status` recorded before it
/// closes; two routes in turn), under Registry + `NoopLayer` and Registry + `counters.layer()`.
fn labelled_spans(c: &mut Criterion) {
    let mut group = c.benchmark_group("span_with_dimensions");
    let op = || {
        thread_local! {
            static NEXT: Cell<u32> = const { Cell::new(0) };
        }
        let i = NEXT.with(|n| n.replace(n.get().wrapping_add(1)));
        let route = if i.is_multiple_of(2) { "/orders" } else { "/items" };
        let span = tracing::info_span!("request", method = "GET", route, status = tracing::field::Empty);
        drop(span.enter());
        span.record("status", 200);
        drop(span);
    };
    bench_under(&mut group, "registry_with_noop_layer", Registry::default().with(NoopLayer), false, op);
    let counters = counters();
    let runs = bench_under(&mut group, "registry_with_layer", Registry::default().with(counters.layer()), false, op);
    group.finish();
    let timed = ours_total(&counters, |name, labels| name.ends_with(".request.exec_time") && labels == 3);
    assert_eq!(timed, runs, "every span timed into the counter of its values");
}

/// `iters` calls of `op` timed as one batch with `dispatch` as the thread's default.
fn timed_under(dispatch: &tracing::Dispatch, iters: u64, op: fn()) -> Duration {
    tracing::dispatcher::with_default(dispatch, || {
        let start = Instant::now();
        for _ in 0..iters {
            op();
        }
        start.elapsed()
    })
}

/// The layer's added cost per span measured directly: each sample times a batch of spans under Registry +
/// `NoopLayer`, then the same number under Registry + `counters.layer()`, and reports the difference. Both
/// batches run back to back in the same state of the machine, so a slow phase moves both and cancels out;
/// criterion's median of the differences is the figure BENCHMARKS.md gives.
fn span_added_cost(c: &mut Criterion, op: fn()) {
    let counters = counters();
    let noop = tracing::Dispatch::new(Registry::default().with(NoopLayer));
    let layer = tracing::Dispatch::new(Registry::default().with(counters.layer()));
    let runs = Cell::new(0);
    let mut group = c.benchmark_group("span_layer_added_cost");
    group.sample_size(100).sampling_mode(SamplingMode::Flat);
    group.bench_function("layer_minus_noop_layer", |b| {
        b.iter_custom(|iters| {
            runs.set(runs.get() + iters);
            let without = timed_under(&noop, iters, op);
            timed_under(&layer, iters, op).saturating_sub(without)
        })
    });
    group.finish();
    let timed = ours_total(&counters, |name, _| name.ends_with(".request.exec_time"));
    assert_eq!(timed, runs.get(), "every span timed");
}

/// One read of the clock the layer times spans with (`quanta::Clock::raw`, the time stamp counter where it is
/// reliable): a span reads it twice, so twice this is the part of the layer's added cost no bookkeeping can
/// remove.
fn clock(c: &mut Criterion) {
    let clock = quanta::Clock::new();
    let mut group = c.benchmark_group("clock");
    group.bench_function("quanta_raw", |b| b.iter(|| clock.raw()));
    group.finish();
}

fn events(c: &mut Criterion) {
    for (name, op) in [
        ("event_in_span", (|| tracing::info!("handled")) as fn()),
        ("error_event_in_span", || tracing::error!("failed")),
    ] {
        let mut group = c.benchmark_group(name);
        bench_under(&mut group, "registry", Registry::default(), true, op);
        bench_under(&mut group, "registry_with_layer", Registry::default().with(counters().layer()), true, op);
        group.finish();
    }
}

/// A [`ManualReader`] the meter provider and the bench share, so that the bench can collect after the provider
/// took its reader.
#[derive(Clone, Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline)
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// A meter provider over a [`ManualReader`] the bench keeps a handle to, for tracing-opentelemetry's
/// `MetricsLayer` (its docs' setup); with `limit`, each instrument keeps up to `limit` attribute sets apart
/// instead of the default 2,000 (a view, as the SDK's docs set one).
fn otel_meter_provider(limit: Option<usize>) -> (SharedReader, SdkMeterProvider) {
    let reader = SharedReader(Arc::new(ManualReader::builder().build()));
    let mut builder = SdkMeterProvider::builder().with_reader(reader.clone());
    if let Some(limit) = limit {
        builder = builder.with_view(move |_: &Instrument| Stream::builder().with_cardinality_limit(limit).build().ok());
    }
    (reader, builder.build())
}

/// The cardinality limit of the second `MetricsLayer` the 6,000-value event is compared with: every route kept
/// apart, as ours keeps them.
const OTEL_LIMIT: usize = 8_192;

/// The `MetricsLayer` configurations an event is compared with: its default, and for the event of 6,000 label
/// values (past the default's 2,000), one whose limit keeps them all apart.
fn otel_limits(group: &str) -> Vec<Option<usize>> {
    if group == MANY_VALUES {
        vec![None, Some(OTEL_LIMIT)]
    } else {
        vec![None]
    }
}

/// The count the reader collects for the metric `name`: a sum's value, or a histogram's samples.
fn otel_total(reader: &SharedReader, name: &str) -> u64 {
    let mut collected = ResourceMetrics::default();
    reader.collect(&mut collected).expect("collect");
    let mut total = 0;
    for metric in collected.scope_metrics().flat_map(|s| s.metrics()).filter(|m| m.name() == name) {
        let count: u64 = match metric.data() {
            AggregatedMetrics::U64(MetricData::Sum(sum)) => sum.data_points().map(|p| p.value()).sum(),
            AggregatedMetrics::I64(MetricData::Sum(sum)) => sum.data_points().map(|p| p.value() as u64).sum(),
            AggregatedMetrics::F64(MetricData::Histogram(h)) => h.data_points().map(|p| p.count()).sum(),
            AggregatedMetrics::U64(MetricData::Histogram(h)) => h.data_points().map(|p| p.count()).sum(),
            AggregatedMetrics::I64(MetricData::Histogram(h)) => h.data_points().map(|p| p.count()).sum(),
            _ => panic!("{name}: unexpected data"),
        };
        total += count;
    }
    total
}

/// Benches a metric event recording 1 into (or sampling) the metric `metric` with `labels` labels under our
/// layer, tracing-opentelemetry's `MetricsLayer` and a no-op layer.
fn compare_metric(c: &mut Criterion, name: &str, metric: &'static str, labels: usize, op: fn()) {
    let mut group = c.benchmark_group(name);

    let counters = counters();
    let runs = bench_under(&mut group, "registry_with_layer", Registry::default().with(counters.layer()), false, op);
    assert_eq!(ours_total(&counters, |name, n| name == metric && n == labels), runs, "ours: every event counted");

    // With more label values than its default cardinality limit, MetricsLayer folds most events into one
    // overflow series: the same events again with every value kept apart.
    for limit in otel_limits(name) {
        let (reader, meter_provider) = otel_meter_provider(limit);
        let subscriber = Registry::default().with(MetricsLayer::new(meter_provider.clone()));
        let bench = match limit {
            Some(limit) => format!("registry_with_otel_metrics_layer_limit_{limit}"),
            None => String::from("registry_with_otel_metrics_layer"),
        };
        let runs = bench_under(&mut group, &bench, subscriber, false, op);
        assert_eq!(otel_total(&reader, metric), runs, "opentelemetry: every event counted");
        meter_provider.shutdown().expect("shutdown");
    }

    bench_under(&mut group, "registry_with_noop_layer", Registry::default().with(NoopLayer), false, op);
    group.finish();
}

/// A metric event bench: its group, the metric, how many labels it has, and the event.
type MetricEvent = (&'static str, &'static str, usize, fn());

/// The metric events.
const METRIC_EVENTS: [MetricEvent; 4] = [
    ("metric_event", "requests", 0, || tracing::info!(monotonic_counter.requests = 1)),
    ("metric_event_1_label", "requests", 1, || tracing::info!(monotonic_counter.requests = 1, status = "200")),
    ("metric_histogram", "latency", 0, || tracing::info!(histogram.latency = 12.5)),
    (MANY_VALUES, "hits", 1, || tracing::info!(monotonic_counter.hits = 1, route = next_route())),
];

/// The metric event of more label values than `MetricsLayer`'s default cardinality limit (see [`otel_limits`]).
const MANY_VALUES: &str = "metric_event_6000_values";

/// Distinct routes [`next_route`] cycles through: more label values than a thread's cache holds (4,096).
const ROUTES: usize = 6_000;

/// The next of [`ROUTES`] `&'static str` label values, round-robin (per thread).
fn next_route() -> &'static str {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    thread_local! {
        static NEXT: Cell<usize> = const { Cell::new(0) };
    }
    let names = NAMES.get_or_init(|| (0..ROUTES).map(|i| &*format!("/route/{i}").leak()).collect());
    let i = NEXT.with(|n| n.replace((n.get() + 1) % ROUTES));
    names[i]
}

fn metric_events(c: &mut Criterion) {
    for (group, metric, labels, op) in METRIC_EVENTS {
        compare_metric(c, group, metric, labels, op);
    }
    paired_with_metrics_layer(c);
}

/// The metric events under Registry + `counters.layer()` and Registry + `MetricsLayer` in paired batches (see
/// `paired`): group `ours_percent_of_metrics_layer`, a bench per event; both must count every event.
fn paired_with_metrics_layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("ours_percent_of_metrics_layer");
    let order = paired::Order::default();
    let events = METRIC_EVENTS.iter().flat_map(|&event| otel_limits(event.0).into_iter().map(move |l| (event, l)));
    for ((event, metric, labels, op), limit) in events {
        let name = match limit {
            Some(limit) => format!("{event}_otel_limit_{limit}"),
            None => event.to_owned(),
        };
        let counters = counters();
        let ours = tracing::Dispatch::new(Registry::default().with(counters.layer()));
        let (reader, meter_provider) = otel_meter_provider(limit);
        let otel = tracing::Dispatch::new(Registry::default().with(MetricsLayer::new(meter_provider.clone())));
        let (ours_runs, otel_runs) = (Cell::new(0), Cell::new(0));
        let batch = |dispatch: &tracing::Dispatch, runs: &Cell<u64>, iters: u64| {
            runs.set(runs.get() + iters);
            timed_under(dispatch, iters, op)
        };
        group.bench_function(&name, |b| {
            b.iter_custom(|iters| {
                let ours = |iters| batch(&ours, &ours_runs, iters);
                let otel = |iters| batch(&otel, &otel_runs, iters);
                paired::percent_of(iters, &ours, &otel, &order)
            })
        });
        assert_eq!(ours_total(&counters, |n, l| n == metric && l == labels), ours_runs.get(), "ours: every event");
        assert_eq!(otel_total(&reader, metric), otel_runs.get(), "opentelemetry: every event counted");
        meter_provider.shutdown().expect("shutdown");
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = spans, clock, events, metric_events }
criterion_main!(benches);
