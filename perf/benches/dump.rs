//! Dumps through the public API: the store's snapshot, encoding into PutMetricData requests and sending them
//! through the AWS SDK to a fake HTTP client that answers every request with success (no network).
//!
//! - `dump_1k_counters`, `dump_10k_counters`, `dump_100k_counters`: n Increment counters with one label each (keys
//!   of one length at every size: see [`key`]), all updated (untimed) before each dump. Every dump must send
//!   exactly n / 1000 requests of 1000 datums. 100,000 counters are past the default cap
//!   (`options.max_counters`, 10,000), which that size raises; its group takes 10 samples (flat sampling) so
//!   that its run stays short. For scale, the prometheus recorder rendering the same n counters in its
//!   exposition format runs in the same group (see BENCHMARKS.md).
//! - `dump_100k_percent_of_10x_10k`: linearity, paired. Each sample times dumps of 100,000 counters and ten
//!   times as many dumps of 10,000 back to back and reports the first as a percentage of the second (100%:
//!   exactly 10x; see `paired`); the figure the linearity target is read from.
//! - `dump_1k_histograms`: 1,000 histograms of 1,000 spread samples each, with percentiles and as statistic sets.

mod answers;
mod paired;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatch::config::SharedHttpClient;
use aws_smithy_http_client::test_util::infallible_client_fn;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use metrics::{Key, Label};
use metrics_exporter_prometheus::PrometheusBuilder;

use paired::{percent_of, Order};

use cloudwatch_counters::{CloudWatchCounters, CounterType, CountersOptions, DEFAULT_MAX_COUNTERS, MAX_BATCH_SIZE};

/// A fake CloudWatch that answers every request with success, as CloudWatch's rpc-v2-cbor protocol does (an
/// empty CBOR map), and counts the requests it saw.
fn fake_cloudwatch() -> (SharedHttpClient, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&seen);
    let client = infallible_client_fn(move |_req| {
        counted.fetch_add(1, Relaxed);
        answers::success()
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

/// Counters that publish to the fake CloudWatch `http` under `options` (in requests of `batch_size` datums, or
/// the default), opened on a runtime of their own.
fn open_counters(
    http: SharedHttpClient,
    options: CountersOptions,
    batch_size: Option<usize>,
) -> (CloudWatchCounters, tokio::runtime::Runtime) {
    let mut builder = CloudWatchCounters::builder()
        .namespace("bench")
        .instance("bench-host")
        .region("us-east-1")
        .credentials("test", "test")
        .options(options)
        .sdk_config(sdk(http));
    if let Some(batch_size) = batch_size {
        builder = builder.batch_size(batch_size);
    }
    let counters = builder.build().expect("valid settings");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(counters.open()).expect("open");
    (counters, runtime)
}

/// The i-th counter's key: one of 100 names, with a `shard` label that makes it unique. The label's value has
/// three digits at every size (`000` to `999`), so that each counter's datum is as long in a dump of 100,000 as in
/// one of 10,000 and the linearity bench compares the same work per counter (unpadded, the larger dump's values
/// were a digit longer).
fn key(i: usize) -> Key {
    Key::from_parts(format!("service.op{}.calls", i % 100), vec![Label::new("shard", format!("{:03}", i / 100))])
}

/// `n` Increment counters (a multiple of 1000) published to the fake CloudWatch in requests of 1000 datums, with
/// the handles that touch them all before a dump.
struct Fixture {
    n: usize,
    counters: CloudWatchCounters,
    runtime: tokio::runtime::Runtime,
    handles: Vec<cloudwatch_counters::CounterHandle>,
    seen: Arc<AtomicU64>,
    /// Dumps timed since [`Fixture::new`]'s own, and the telemetry and requests seen then.
    dumps: Cell<u64>,
    before: cloudwatch_counters::Telemetry,
    seen_before: u64,
}

impl Fixture {
    /// The counters, opened, each touched and dumped once (checked: n / 1000 requests of 1000 datums).
    fn new(n: usize) -> Fixture {
        let requests_per_dump = (n / MAX_BATCH_SIZE) as u64;
        assert_eq!(requests_per_dump as usize * MAX_BATCH_SIZE, n);
        let (http, seen) = fake_cloudwatch();
        // No self-telemetry, so every dump holds just the bench's counters. The interval is an hour so that only
        // the bench's own dumps run. The default cap (10,000 counters) is raised only past it.
        let mut options = CountersOptions::default().telemetry(false).interval(Duration::from_secs(3600));
        if n > DEFAULT_MAX_COUNTERS {
            options = options.max_counters(n);
        }
        let (counters, runtime) = open_counters(http, options, Some(MAX_BATCH_SIZE));
        let handles: Vec<_> = (0..n).map(|i| counters.handle_for_key(&key(i), CounterType::Increment)).collect();
        assert!(handles.iter().all(|h| !h.is_detached()), "all {n} counters under the cap");
        let fixture = Fixture {
            n,
            counters,
            runtime,
            handles,
            seen,
            dumps: Cell::new(0),
            before: cloudwatch_counters::Telemetry::default(),
            seen_before: 0,
        };
        fixture.touch_all();
        let before = fixture.counters.telemetry();
        let report = fixture.runtime.block_on(fixture.counters.dump()).expect("dump");
        assert_eq!(report.saved, n);
        let after = fixture.counters.telemetry();
        let requests = after.requests_sent - before.requests_sent;
        assert_eq!(requests, requests_per_dump, "{n} counters must make {requests_per_dump} PutMetricData requests");
        assert_eq!(after.datums_sent - before.datums_sent, n as u64, "1000 datums a request");
        assert_eq!(fixture.seen.load(Relaxed), requests_per_dump, "the fake CloudWatch saw every request");
        println!("dump_{}k: {n} counters -> {requests} PutMetricData requests", n / 1000);
        Fixture { before: after, seen_before: fixture.seen.load(Relaxed), ..fixture }
    }

    /// Updates every counter, so that the next dump saves all of them with new values.
    fn touch_all(&self) {
        self.handles.iter().for_each(|h| h.increment(1));
    }

    /// One dump (timed by the caller).
    fn dump(&self) {
        self.dumps.set(self.dumps.get() + 1);
        let report = self.runtime.block_on(self.counters.dump()).expect("dump");
        assert_eq!(report.saved, self.n, "every counter saved");
    }

    /// `dumps` dumps, each after an untimed update of every counter: the time they took.
    fn timed_dumps(&self, dumps: u64) -> Duration {
        (0..dumps)
            .map(|_| {
                self.touch_all();
                let start = Instant::now();
                self.dump();
                start.elapsed()
            })
            .sum()
    }

    /// Checks that every dump since [`Fixture::new`] sent n / 1000 requests of 1000 datums and nothing failed,
    /// then closes the counters.
    fn check_and_close(self) {
        let after = self.counters.telemetry();
        let (dumps, requests_per_dump) = (self.dumps.get(), (self.n / MAX_BATCH_SIZE) as u64);
        assert_eq!(after.requests_sent - self.before.requests_sent, requests_per_dump * dumps, "n / 1000 a dump");
        assert_eq!(after.datums_sent - self.before.datums_sent, self.n as u64 * dumps, "1000 datums a request");
        assert_eq!(self.seen.load(Relaxed) - self.seen_before, requests_per_dump * dumps);
        assert_eq!((after.requests_failed, after.dumps_failed, after.skipped_total()), (0, 0, 0));
        self.runtime.block_on(self.counters.close()).expect("close");
    }
}

/// A dump of `n` counters (a multiple of 1000), and prometheus rendering them, in group `dump_<n/1000>k_counters`.
fn dump_counters(c: &mut Criterion, n: usize) {
    let fixture = Fixture::new(n);
    let prometheus = PrometheusBuilder::new().build_recorder();
    for i in 0..n {
        metrics::Recorder::register_counter(
            &prometheus,
            &key(i),
            &metrics::Metadata::new("b", metrics::Level::INFO, None),
        )
        .increment(1);
    }
    let prometheus = prometheus.handle();

    let mut group = c.benchmark_group(format!("dump_{}k_counters", n / 1000));
    group.throughput(Throughput::Elements(n as u64));
    if n > DEFAULT_MAX_COUNTERS {
        group.sample_size(10).sampling_mode(SamplingMode::Flat);
    }
    group.bench_function("ours_snapshot_encode_send", |b| {
        // Untimed: touch every counter, so the dump has something new to save.
        b.iter_batched(|| fixture.touch_all(), |()| fixture.dump(), BatchSize::PerIteration)
    });
    group.bench_function("prometheus_render", |b| b.iter(|| prometheus.render()));
    group.finish();
    fixture.check_and_close();
}

/// How the dump's cost grows from 10,000 to 100,000 counters, paired: each sample times dumps of 100,000 counters
/// and ten times as many dumps of 10,000 (one after the other, the order alternating), each after an untimed
/// update of every counter, and reports the first as a percentage of the second: 100% is exactly linear, the
/// target (<= 10x) is <= 100%.
fn dump_scaling(c: &mut Criterion) {
    let small = Fixture::new(10_000);
    let large = Fixture::new(100_000);
    let order = Order::default();
    let mut group = c.benchmark_group("dump_100k_percent_of_10x_10k");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(40));
    group.bench_function("paired", |b| {
        b.iter_custom(|iters| {
            percent_of(iters, &|iters| large.timed_dumps(iters), &|iters| small.timed_dumps(10 * iters), &order)
        })
    });
    group.finish();
    assert_eq!(small.dumps.get(), 10 * large.dumps.get(), "ten dumps of 10k for each of 100k");
    small.check_and_close();
    large.check_and_close();
}

fn dump(c: &mut Criterion) {
    for n in [1_000, 10_000, 100_000] {
        dump_counters(c, n);
    }
    dump_scaling(c);
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
        let (counters, runtime) = open_counters(http, options, None);
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
