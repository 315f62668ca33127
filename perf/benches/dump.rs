//! A dump of 10,000 counters: the store's snapshot plus encoding into PutMetricData requests (no network), which
//! must make exactly 10 requests of 1000 datums. For scale, the prometheus recorder rendering the same 10,000
//! counters in its exposition format runs in the same group (see BENCHMARKS.md).

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::config::{BehaviorVersion, Region};
use criterion::{criterion_group, criterion_main, Criterion};
use metrics::{Key, Label};
use metrics_exporter_prometheus::PrometheusBuilder;

use cloudwatch_counters::sink::cloudwatch::{CloudWatchSink, Connection};
use cloudwatch_counters::sink::{SaveFuture, Sink};
use cloudwatch_counters::{CachedCounters, Counter, CounterType, CountersOptions, MAX_BATCH_SIZE};

const COUNTERS: usize = 10_000;

/// A sink that encodes the requests a CloudWatch save would send, and counts them, without sending.
struct EncodeOnly {
    cloudwatch: CloudWatchSink,
    requests: AtomicUsize,
}

impl Sink for EncodeOnly {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        let requests = self.cloudwatch.encode_requests(counters);
        self.requests.store(requests.len(), Relaxed);
        Box::pin(async { Ok(()) })
    }
}

fn connection() -> Connection {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static("us-east-1"))
        .build();
    Connection {
        client: aws_sdk_cloudwatch::Client::from_conf(config),
        namespace: "bench".into(),
        instance: "bench-host".into(),
        batch_size: MAX_BATCH_SIZE,
        storage_resolution: 60,
    }
}

/// The i-th counter's key: one of 100 names, with a `shard` label that makes it unique.
fn key(i: usize) -> Key {
    Key::from_parts(format!("service.op{}.calls", i % 100), vec![Label::new("shard", (i / 100).to_string())])
}

fn dump(c: &mut Criterion) {
    let sink = Arc::new(EncodeOnly { cloudwatch: CloudWatchSink::default(), requests: AtomicUsize::new(0) });
    sink.cloudwatch.connect(connection());
    // Exactly the default cap of 10,000 counters; no self-telemetry, so every dump holds just them.
    let counters = CachedCounters::with_shared_sink(sink.clone(), CountersOptions::default().telemetry(false));
    let handles: Vec<_> = (0..COUNTERS).map(|i| counters.handle_for_key(&key(i), CounterType::Increment)).collect();
    handles.iter().for_each(|h| h.increment(1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let report = runtime.block_on(counters.dump()).expect("dump");
    assert_eq!(report.saved, COUNTERS);
    let requests = sink.requests.load(Relaxed);
    assert_eq!(requests, 10, "10,000 counters must make 10 PutMetricData requests");
    println!("dump_10k: {COUNTERS} counters -> {requests} PutMetricData requests");

    let prometheus = PrometheusBuilder::new().build_recorder();
    for i in 0..COUNTERS {
        metrics::Recorder::register_counter(
            &prometheus,
            &key(i),
            &metrics::Metadata::new("b", metrics::Level::INFO, None),
        )
        .increment(1);
    }
    let prometheus = prometheus.handle();

    let mut group = c.benchmark_group("dump_10k_counters");
    group.bench_function("ours_snapshot_and_encode", |b| {
        b.iter(|| {
            // A dump saves only when something changed since the last one.
            handles[0].increment(1);
            runtime.block_on(counters.dump()).expect("dump")
        })
    });
    group.bench_function("prometheus_render", |b| b.iter(|| prometheus.render()));
    group.finish();
    assert_eq!(sink.requests.load(Relaxed), 10);
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = dump }
criterion_main!(benches);
