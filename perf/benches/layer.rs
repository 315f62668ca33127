//! What the counters Layer adds to a bare `tracing_subscriber::Registry`, in the same run (see BENCHMARKS.md):
//! a span's whole life (new, enter, exit, close), a plain event inside a span, an ERROR event inside a span, and
//! metric events (`monotonic_counter.X = 1`, with and without a label).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use tracing::Subscriber;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Benches `op` under `subscriber` (the thread's default while it runs), with `op` inside an entered span when
/// `in_span`.
fn bench_under(group: &mut Group<'_>, name: &str, subscriber: impl Subscriber + Send + Sync, in_span: bool, op: fn()) {
    tracing::subscriber::with_default(subscriber, || {
        let span = in_span.then(|| tracing::info_span!("outer"));
        let _entered = span.as_ref().map(tracing::Span::enter);
        group.bench_function(name, |b| b.iter(op));
    });
}

/// Benches `op` under a bare Registry, then under a Registry with the counters layer. Each subscriber lives only
/// while its bench runs, so the callsites' cached interest is that of one subscriber at a time.
fn compare(c: &mut Criterion, group: &str, in_span: bool, op: fn()) {
    let mut group = c.benchmark_group(group);
    bench_under(&mut group, "registry", Registry::default(), in_span, op);
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    bench_under(&mut group, "registry_with_layer", Registry::default().with(counters.layer()), in_span, op);
    group.finish();
}

fn spans(c: &mut Criterion) {
    compare(c, "span_new_enter_exit_close", false, || {
        let span = tracing::info_span!("request");
        drop(span.enter());
        drop(span);
    });
}

fn events(c: &mut Criterion) {
    compare(c, "event_in_span", true, || tracing::info!("handled"));
    compare(c, "error_event_in_span", true, || tracing::error!("failed"));
    compare(c, "metric_event", false, || tracing::info!(monotonic_counter.requests = 1));
    compare(c, "metric_event_1_label", false, || tracing::info!(monotonic_counter.requests = 1, status = "200"));
}

fn config() -> Criterion {
    Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = spans, events }
criterion_main!(benches);
