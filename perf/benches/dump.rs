//! A dump of 10,000 counters through the public API: the store's snapshot, encoding into PutMetricData requests
//! and sending them through the AWS SDK to a fake HTTP client that answers every request with success (no
//! network). Every dump must send exactly 10 requests of 1000 datums. For scale, the prometheus recorder
//! rendering the same 10,000 counters in its exposition format runs in the same group (see BENCHMARKS.md).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatch::config::SharedHttpClient;
use aws_smithy_http_client::test_util::infallible_client_fn;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use metrics::{Key, Label};
use metrics_exporter_prometheus::PrometheusBuilder;

use cloudwatch_counters::{CloudWatchCounters, CounterType, CountersOptions, MAX_BATCH_SIZE};

const COUNTERS: usize = 10_000;
/// PutMetricData requests one dump of [`COUNTERS`] counters must send.
const REQUESTS_PER_DUMP: u64 = 10;

/// A fake CloudWatch that answers every request with success, as CloudWatch's rpc-v2-cbor protocol does (an
/// empty CBOR map), and counts the requests it saw.
fn fake_cloudwatch() -> (SharedHttpClient, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&seen);
    let client = infallible_client_fn(move |_req| {
        counted.fetch_add(1, Relaxed);
        http::Response::builder()
            .status(200)
            .header("smithy-protocol", "rpc-v2-cbor")
            .header("content-type", "application/cbor")
            .body(vec![0xa0])
            .expect("a valid response")
    });
    (client, seen)
}

/// An SDK configuration that sends through `http`, without retries.
fn sdk(http: SharedHttpClient) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .build()
}

/// The i-th counter's key: one of 100 names, with a `shard` label that makes it unique.
fn key(i: usize) -> Key {
    Key::from_parts(format!("service.op{}.calls", i % 100), vec![Label::new("shard", (i / 100).to_string())])
}

fn dump(c: &mut Criterion) {
    let (http, seen) = fake_cloudwatch();
    // Exactly the default cap of 10,000 counters; no self-telemetry, so every dump holds just them. The interval
    // is an hour so that only the bench's own dumps run.
    let options = CountersOptions::default().telemetry(false).interval(Duration::from_secs(3600));
    let counters = CloudWatchCounters::builder()
        .namespace("bench")
        .instance("bench-host")
        .region("us-east-1")
        .credentials("test", "test")
        .batch_size(MAX_BATCH_SIZE)
        .options(options)
        .sdk_config(sdk(http))
        .build()
        .expect("valid settings");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(counters.open()).expect("open");
    let handles: Vec<_> = (0..COUNTERS).map(|i| counters.handle_for_key(&key(i), CounterType::Increment)).collect();
    // Every counter updated since the last dump, so every dump saves all of them with new values.
    let touch_all = || handles.iter().for_each(|h| h.increment(1));
    touch_all();

    let before = counters.telemetry();
    let report = runtime.block_on(counters.dump()).expect("dump");
    assert_eq!(report.saved, COUNTERS);
    let after = counters.telemetry();
    let requests = after.requests_sent - before.requests_sent;
    assert_eq!(requests, REQUESTS_PER_DUMP, "10,000 counters must make 10 PutMetricData requests");
    assert_eq!(after.datums_sent - before.datums_sent, COUNTERS as u64, "1000 datums a request");
    assert_eq!(seen.load(Relaxed), REQUESTS_PER_DUMP, "the fake CloudWatch saw every request");
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

    let before = counters.telemetry();
    let seen_before = seen.load(Relaxed);
    let dumps = Cell::new(0_u64);
    let mut group = c.benchmark_group("dump_10k_counters");
    group.bench_function("ours_snapshot_encode_send", |b| {
        b.iter_batched(
            // Untimed: touch every counter, so the dump has something new to save.
            touch_all,
            |()| {
                dumps.set(dumps.get() + 1);
                runtime.block_on(counters.dump()).expect("dump")
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("prometheus_render", |b| b.iter(|| prometheus.render()));
    group.finish();

    let after = counters.telemetry();
    let dumps = dumps.get();
    assert_eq!(after.requests_sent - before.requests_sent, REQUESTS_PER_DUMP * dumps, "10 requests every dump");
    assert_eq!(after.datums_sent - before.datums_sent, COUNTERS as u64 * dumps, "1000 datums a request");
    assert_eq!(seen.load(Relaxed) - seen_before, REQUESTS_PER_DUMP * dumps);
    assert_eq!((after.requests_failed, after.dumps_failed, after.skipped_total()), (0, 0, 0));
    runtime.block_on(counters.close()).expect("close");
}

/// Histograms in the dump of [`dump_histograms`], and samples each records between two dumps.
const HISTOGRAMS: usize = 1_000;
const SAMPLES: usize = 1_000;

/// A dump of 1,000 histograms, each with 1,000 samples spread over 0.1 ms to 1.6 s since the last dump (untimed:
/// recording them): with percentiles (the default), taking every histogram's buckets, compacting each to at most
/// 150 values and counts, encoding, gzipping (the SDK's request compression) and sending; and with percentiles
/// off (statistic sets), for scale.
fn dump_histograms(c: &mut Criterion) {
    let mut group = c.benchmark_group("dump_1k_histograms");
    for (name, percentiles) in [("ours_percentiles", true), ("ours_statistic_sets", false)] {
        let (http, _seen) = fake_cloudwatch();
        let options =
            CountersOptions::default().percentiles(percentiles).telemetry(false).interval(Duration::from_secs(3600));
        let counters = CloudWatchCounters::builder()
            .namespace("bench")
            .instance("bench-host")
            .region("us-east-1")
            .credentials("test", "test")
            .options(options)
            .sdk_config(sdk(http))
            .build()
            .expect("valid settings");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(counters.open()).expect("open");
        let handles: Vec<_> = (0..HISTOGRAMS)
            .map(|i| {
                let key = Key::from_parts(format!("service.op{i}.latency"), Vec::<Label>::new());
                counters.handle_for_key(&key, CounterType::Statistics)
            })
            .collect();
        let record_all = || {
            for (h, handle) in handles.iter().enumerate() {
                for i in 0..SAMPLES as u32 {
                    let spread = (i.wrapping_add(h as u32).wrapping_mul(2_654_435_761)) >> 18;
                    handle.record(0.1 * f64::from(1 + spread));
                }
            }
        };
        let before = counters.telemetry();
        let dumps = Cell::new(0_u64);
        group.bench_function(name, |b| {
            b.iter_batched(
                record_all,
                |()| {
                    dumps.set(dumps.get() + 1);
                    runtime.block_on(counters.dump()).expect("dump")
                },
                BatchSize::PerIteration,
            )
        });
        let after = counters.telemetry();
        assert_eq!(after.datums_sent - before.datums_sent, HISTOGRAMS as u64 * dumps.get(), "one datum a histogram");
        assert_eq!((after.requests_failed, after.dumps_failed, after.skipped_total()), (0, 0, 0));
        runtime.block_on(counters.close()).expect("close");
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4))
}

criterion_group! { name = benches; config = config(); targets = dump, dump_histograms }
criterion_main!(benches);
