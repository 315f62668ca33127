//! The single-thread workloads of `recorder.rs` (`common::workloads`) through recorders installed as the
//! process's global recorder, each as its README installs it: what a user gets, with no local recorder.
//!
//! A process has one global recorder, so the process measures one recorder, named by `BENCH_RECORDER`:
//! - `ours`: `metrics::set_global_recorder(counters.recorder())` (our README), `counters` a `CachedCounters` over
//!   a `LogSink` writing to `io::sink()`;
//! - `ours_percentiles`: the same line with a `CloudWatchCounters` (never opened: nothing is sent), percentiles
//!   on, as CloudWatch users record;
//! - `prometheus`: `PrometheusBuilder::new().install_recorder()` (metrics-exporter-prometheus' crate docs: "let
//!   handle = builder.install_recorder()"; `install()` also starts an HTTP listener, a feature this bench leaves
//!   off), with its upkeep run untimed every 65,536 calls;
//! - `metrics_cloudwatch`: `Builder::new().cloudwatch_namespace(..).init_async(client, metrics::set_global_recorder)`
//!   and its driver spawned on a one-worker tokio runtime (its README), the client an `aws_sdk_cloudwatch::Client`
//!   whose HTTP client answers every request with success (no network), its other settings the defaults;
//! - `metrics_cloudwatch_embedded` (or `embedded`): `Builder::new().cloudwatch_namespace(..).init()` (its
//!   README), flushed untimed every 100 histogram samples (it keeps at most 100 between flushes).
//!
//! One process per recorder rather than one process with a forwarding global recorder that dispatches to a
//! selectable target: the forwarder would add a call through a `dyn` and a load of the selector to every
//! recorder, and its registration would not be the peer's own; a process per recorder measures exactly what a
//! user of that recorder gets.
//!
//! Without `BENCH_RECORDER` (as under a plain `cargo bench`) the binary runs itself once per recorder, with the
//! same arguments, one after the other; `perf/run-global.sh` does the same through cargo and prints the results.
//! Criterion groups are `global_<workload>` and bench ids the recorder's name, so the results of the runs land
//! side by side in `target/criterion/global_<workload>/<recorder>/`.
//!
//! The checks after each bench are those of `recorder.rs`: ours must hold every call, prometheus' rendering and
//! metrics-cloudwatch-embedded's documents the metric.

mod common;

mod answers;

use std::cell::Cell;
use std::process::Command;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatch::config::{Credentials, Region, SharedCredentialsProvider};
use aws_smithy_http_client::test_util::infallible_client_fn;
use criterion::Criterion;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use cloudwatch_counters::{CachedCounters, CloudWatchCounters, CountersOptions, LogSink};
use common::{timed_in_chunks, EmbeddedFlush, Workload, UPKEEP_EVERY};

/// The recorders, by the name `BENCH_RECORDER` gives and their benches carry.
const RECORDERS: [&str; 5] =
    ["ours", "ours_percentiles", "prometheus", "metrics_cloudwatch", "metrics_cloudwatch_embedded"];

/// The installed recorder, and what the checks read.
enum Installed {
    Ours(CachedCounters),
    OursPercentiles(Box<CloudWatchCounters>),
    Prometheus(PrometheusHandle),
    MetricsCloudwatch {
        /// Runs metrics_cloudwatch's driver.
        _runtime: tokio::runtime::Runtime,
    },
    Embedded(&'static metrics_cloudwatch_embedded::Collector),
}

impl Installed {
    fn install(name: &str) -> Installed {
        match name {
            "ours" => {
                let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
                metrics::set_global_recorder(counters.recorder()).expect("installed");
                Installed::Ours(counters)
            }
            "ours_percentiles" => {
                let counters = CloudWatchCounters::builder()
                    .namespace("bench")
                    .region("us-east-1")
                    .credentials("bench", "bench")
                    .build()
                    .expect("valid settings");
                metrics::set_global_recorder(counters.recorder()).expect("installed");
                Installed::OursPercentiles(Box::new(counters))
            }
            "prometheus" => Installed::Prometheus(PrometheusBuilder::new().install_recorder().expect("installed")),
            "metrics_cloudwatch" => {
                let runtime =
                    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
                let client = aws_sdk_cloudwatch::Client::new(&null_cloudwatch_sdk());
                let driver = runtime
                    .block_on(
                        metrics_cloudwatch::Builder::new()
                            .cloudwatch_namespace("bench")
                            .init_async(client, metrics::set_global_recorder),
                    )
                    .expect("installed");
                runtime.spawn(driver);
                Installed::MetricsCloudwatch { _runtime: runtime }
            }
            "metrics_cloudwatch_embedded" | "embedded" => Installed::Embedded(
                metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace("bench").init().expect("installed"),
            ),
            other => panic!("BENCH_RECORDER={other}: expected one of {RECORDERS:?}"),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Installed::Ours(_) => "ours",
            Installed::OursPercentiles(_) => "ours_percentiles",
            Installed::Prometheus(_) => "prometheus",
            Installed::MetricsCloudwatch { .. } => "metrics_cloudwatch",
            Installed::Embedded(_) => "metrics_cloudwatch_embedded",
        }
    }

    /// Benches `workload` through the global recorder in group `global_<workload>`, then checks it.
    fn bench(&self, c: &mut Criterion, workload: &Workload) {
        let mut group = c.benchmark_group(format!("global_{}", workload.group));
        let name = self.name();
        let op = &*workload.op;
        let runs = Cell::new(0);
        let mut timed = |chunk: u64, between: &dyn Fn()| {
            group.bench_function(name, |b| b.iter_custom(|iters| timed_in_chunks(iters, op, chunk, between, &runs)));
        };
        match self {
            Installed::Ours(counters) => {
                let before = workload.ours_total(counters);
                timed(u64::MAX, &|| {});
                workload.check_ours(counters, before, runs.get(), name);
            }
            Installed::OursPercentiles(counters) => {
                let before = workload.ours_total(counters.counters());
                timed(u64::MAX, &|| {});
                workload.check_ours(counters.counters(), before, runs.get(), name);
            }
            Installed::Prometheus(handle) => {
                timed(UPKEEP_EVERY, &|| handle.run_upkeep());
                workload.check_prometheus(runs.get(), &handle.render());
            }
            Installed::MetricsCloudwatch { .. } => timed(u64::MAX, &|| {}),
            Installed::Embedded(collector) => {
                let flush = EmbeddedFlush::new(collector, workload);
                timed(workload.embedded_flush_every(), &|| flush.flush());
                flush.check(workload.group);
            }
        }
        group.finish();
    }
}

/// An SDK configuration whose HTTP client answers every request with success, as CloudWatch's rpc-v2-cbor
/// protocol does (an empty CBOR map), with static credentials and no retries.
fn null_cloudwatch_sdk() -> SdkConfig {
    let http = infallible_client_fn(|_req| answers::success());
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("bench", "bench", None, None, "bench")))
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .build()
}

fn main() {
    let Ok(recorder) = std::env::var("BENCH_RECORDER") else {
        // One process per recorder, each with the arguments cargo gave this one.
        let exe = std::env::current_exe().expect("this bench's path");
        for recorder in RECORDERS {
            let status = Command::new(&exe)
                .args(std::env::args_os().skip(1))
                .env("BENCH_RECORDER", recorder)
                .status()
                .expect("run the bench");
            assert!(status.success(), "BENCH_RECORDER={recorder}: {status}");
        }
        return;
    };
    let installed = Installed::install(&recorder);
    let mut c = common::config().configure_from_args();
    for workload in common::workloads() {
        installed.bench(&mut c, &workload);
    }
    c.final_summary();
}
