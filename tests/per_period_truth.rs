//! What CloudWatch shows equals what happened: every recorded value lands in exactly one published period,
//! whatever mix of timer dumps, on-demand dumps, failed saves and `close()` — in the default configuration
//! (pip's `reset_timeout` 0, whose running totals CloudWatch would add up) and with a reset timeout. Read back
//! from the local CloudWatch and compared exactly. A 400 for one datum, duplicate dimension names and values
//! CloudWatch cannot take each deliver the rest and are counted.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_cloudwatch::Client;
use cloudwatch_counters::{CloudWatchCounters, Counters, CountersOptions, SkipReason, TELEMETRY_PREFIX};
use common::http::{cbor_response, gate, real_http_client, Intercepted};
use common::localstack::{self, metric_names, statistics, unique_namespace};

/// A client to the local CloudWatch through `http`, without retries or compression (so that a gate can read
/// request bodies).
fn client_through(http: SharedHttpClient) -> Client {
    let config = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(localstack::endpoint())
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .disable_request_compression(true)
        .build();
    Client::from_conf(config)
}

/// Counters publishing to the local CloudWatch through a gate that refuses every request while `down` is set
/// (a refused connection: CloudWatch surely did not store it).
fn counters_with_outage(namespace: &str, options: CountersOptions) -> (CloudWatchCounters, Arc<AtomicBool>) {
    let down = Arc::new(AtomicBool::new(false));
    let gate_down = Arc::clone(&down);
    let http = gate(real_http_client(), move |_| gate_down.load(SeqCst).then_some(Intercepted::Refuse));
    let counters = CloudWatchCounters::builder()
        .namespace(namespace)
        .instance("period-host")
        .options(options)
        .client(client_through(http))
        .build()
        .expect("valid settings");
    (counters, down)
}

/// What the scenario recorded, to compare with what CloudWatch holds.
#[derive(Debug, Default)]
struct Recorded {
    orders: u64,
    latency_count: u64,
    latency_sum: f64,
    sizes_count: u64,
    sizes_sum: f64,
}

/// Records rounds of operations between dumps of every kind: on-demand, timer, failed (outage), and the close
/// flush; a gauge moves up and down across them and an absolute counter climbs.
async fn run_scenario(counters: &CloudWatchCounters, down: &AtomicBool) -> Recorded {
    let metrics_recorder = counters.recorder();
    let (orders, latency, queue, bytes) = metrics::with_local_recorder(&metrics_recorder, || {
        metrics::describe_histogram!("latency", metrics::Unit::Milliseconds, "request latency");
        (
            metrics::counter!("orders"),
            metrics::histogram!("latency"),
            metrics::gauge!("queue"),
            metrics::counter!("bytes_total"),
        )
    });
    let mut recorded = Recorded::default();
    let mut absolute = 0u64;
    for round in 0..8u64 {
        for i in 0..50u64 {
            orders.increment(1 + i % 3);
            recorded.orders += 1 + i % 3;
            let ms = (round * 50 + i) % 97 + 1;
            latency.record(ms as f64);
            recorded.latency_count += 1;
            recorded.latency_sum += ms as f64;
            counters.stats("sizes", (i % 10) as f64);
            recorded.sizes_count += 1;
            recorded.sizes_sum += (i % 10) as f64;
        }
        // The gauge goes up in even rounds and back down in odd ones: its level is 0 or 3, never below.
        if round % 2 == 0 {
            queue.increment(3.0);
        } else {
            queue.decrement(3.0);
        }
        absolute += 10 + round;
        bytes.absolute(absolute);
        match round % 4 {
            0 => {
                counters.dump().await.expect("an on-demand dump");
            }
            1 => {
                down.store(true, SeqCst);
                assert!(counters.dump().await.is_err(), "a dump during the outage fails and keeps its data");
                down.store(false, SeqCst);
            }
            2 => {
                // Wait for the timer to publish (bounded): a condition, not a sleep.
                let before = counters.telemetry().requests_sent;
                tokio::time::timeout(Duration::from_secs(30), async {
                    while counters.telemetry().requests_sent == before {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
                .await
                .expect("a timer dump within 30 s");
            }
            _ => {}
        }
    }
    counters.close().await.expect("close flushes the rest");
    let t = counters.telemetry();
    assert!(t.dumps_failed >= 2, "the outage made dumps fail: {t:?}");
    recorded
}

async fn check_cloudwatch_holds(namespace: &str, recorded: &Recorded) {
    let reader = localstack::reader();
    let dims = [("InstanceID", "period-host")];
    let orders = statistics(&reader, namespace, "orders", &dims).await;
    assert_eq!(orders.sum(), Some(recorded.orders as f64), "orders: CloudWatch's Sum is what was recorded");
    let latency = statistics(&reader, namespace, "latency", &dims).await;
    assert_eq!(
        (latency.sample_count(), latency.sum()),
        (Some(recorded.latency_count as f64), Some(recorded.latency_sum)),
        "latency: SampleCount and Sum"
    );
    assert_eq!((latency.minimum(), latency.maximum()), (Some(1.0), Some(97.0)));
    let sizes = statistics(&reader, namespace, "sizes", &dims).await;
    assert_eq!(
        (sizes.sample_count(), sizes.sum()),
        (Some(recorded.sizes_count as f64), Some(recorded.sizes_sum)),
        "sizes: SampleCount and Sum"
    );
    let queue = statistics(&reader, namespace, "queue", &dims).await;
    assert_eq!((queue.minimum(), queue.maximum()), (Some(0.0), Some(3.0)), "the gauge's level, never below 0");
    let bytes = statistics(&reader, namespace, "bytes_total", &dims).await;
    let last_absolute: u64 = (0..8).map(|round| 10 + round).sum();
    assert_eq!(bytes.sum(), Some(last_absolute as f64), "absolute: the changes add up to the last value");
    println!(
        "{namespace}\n  metric   recorded            CloudWatch\n  orders   Sum {:<15} Sum {:?}\n  latency  n {} Sum {:<10} \
         SampleCount {:?} Sum {:?}\n  sizes    n {} Sum {:<10} SampleCount {:?} Sum {:?}\n  bytes    last {:<14} Sum {:?}",
        recorded.orders,
        orders.sum(),
        recorded.latency_count,
        recorded.latency_sum,
        latency.sample_count(),
        latency.sum(),
        recorded.sizes_count,
        recorded.sizes_sum,
        sizes.sample_count(),
        sizes.sum(),
        last_absolute,
        bytes.sum(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn default_configuration_publishes_each_value_in_exactly_one_period() {
    let ns = unique_namespace("per-period-default");
    let (counters, down) = counters_with_outage(&ns, CountersOptions::default().interval(Duration::from_millis(300)));
    counters.open().await.expect("open");
    let recorded = run_scenario(&counters, &down).await;
    check_cloudwatch_holds(&ns, &recorded).await;
    // pip's running totals stay the local view (reset_timeout 0).
    let orders = counters.counters().get_all().into_iter().find(|c| c.name() == "orders").expect("orders");
    assert_eq!(orders.count, Some(recorded.orders as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn reset_mode_publishes_each_value_in_exactly_one_period() {
    let ns = unique_namespace("per-period-reset");
    let interval = Duration::from_millis(300);
    let (counters, down) =
        counters_with_outage(&ns, CountersOptions::default().interval(interval).reset_timeout(interval));
    counters.open().await.expect("open");
    let recorded = run_scenario(&counters, &down).await;
    check_cloudwatch_holds(&ns, &recorded).await;
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn a_400_for_one_datum_in_a_full_batch_delivers_the_other_999_and_counts_it() {
    let ns = unique_namespace("rejected-datum");
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&requests);
    // CloudWatch refuses a whole request when one datum is invalid: play that for requests holding "poison".
    let http = gate(real_http_client(), move |request| {
        seen.fetch_add(1, SeqCst);
        let body = request.body().bytes().expect("an in-memory body");
        let poisoned = body.windows(6).any(|w| w == b"poison");
        poisoned.then(|| Intercepted::Respond(cbor_response(Some(("InvalidParameterValue", 400)))))
    });
    let counters = CloudWatchCounters::builder()
        .namespace(ns.as_str())
        .instance("batch-host")
        .options(CountersOptions::default().interval(Duration::from_secs(3600)).telemetry(false))
        .client(client_through(http))
        .build()
        .expect("valid settings");
    counters.open().await.expect("open");
    for i in 0..1000 {
        let name = if i == 500 { "poison.500".to_owned() } else { format!("m.{i:03}") };
        counters.increment(&name, i + 1);
    }
    let report = counters.dump().await.expect("the batch is delivered, less the refused datum");
    assert_eq!(report.saved, 1000);
    let t = counters.telemetry();
    assert_eq!(t.skipped(SkipReason::Rejected), 1);
    assert_eq!(t.datums_sent, 999);
    // One full request, then halves down to the datum at fault: two requests per level, ten levels.
    let sent = requests.load(SeqCst);
    assert!((10..=25).contains(&sent), "{sent} requests");
    // The next dump does not send the refused datum again: it was dropped, not kept.
    assert_eq!(counters.dump().await.expect("nothing left").saved, 0);

    let reader = localstack::reader();
    let names: Vec<String> =
        metric_names(&reader, &ns).await.into_iter().filter(|n| !n.starts_with(TELEMETRY_PREFIX)).collect();
    assert_eq!(names.len(), 999, "every datum but the refused one");
    assert!(!names.iter().any(|n| n.starts_with("poison")));
    for (name, value) in [("m.000", 1.0), ("m.499", 500.0), ("m.501", 502.0), ("m.999", 1000.0)] {
        let point = statistics(&reader, &ns, name, &[("InstanceID", "batch-host")]).await;
        assert_eq!(point.sum(), Some(value), "{name}");
    }
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn duplicate_labels_overflow_and_out_of_range_values_deliver_the_rest_and_are_counted() {
    let ns = unique_namespace("bad-values");
    let counters = localstack::builder(&ns, "values-host").build().expect("valid settings");
    counters.open().await.expect("open");
    let recorder = counters.recorder();
    metrics::with_local_recorder(&recorder, || {
        // The last label of a repeated name wins; a label named InstanceID replaces the instance dimension.
        metrics::counter!("dup", "k" => "a", "k" => "b").increment(1);
        metrics::counter!("own_instance", "InstanceID" => "mine").increment(2);
        // Past a period's limit (2^62 - 1): saturates instead of wrapping to a negative count.
        metrics::counter!("big").increment(u64::MAX);
        metrics::counter!("big").increment(5);
        // Beyond CloudWatch's range: refused at record time, so the rest of the histogram is published.
        metrics::histogram!("h").record(1e200);
        metrics::histogram!("h").record(5.0);
        metrics::histogram!("h").record(1e-200);
    });
    counters.increment("", 7); // pip's "Counter name was not set": refused, counted
    counters.close().await.expect("close");

    let t = counters.telemetry();
    assert_eq!(t.dimensions_deduplicated, 2);
    assert_eq!(t.values_saturated, 2);
    assert_eq!(t.values_rejected, 2);
    assert_eq!(t.names_empty, 1);
    assert_eq!(t.skipped_total(), 0, "nothing was left for the sink to skip");

    let reader = localstack::reader();
    let dup = statistics(&reader, &ns, "dup", &[("InstanceID", "values-host"), ("k", "b")]).await;
    assert_eq!(dup.sum(), Some(1.0));
    let own = statistics(&reader, &ns, "own_instance", &[("InstanceID", "mine")]).await;
    assert_eq!(own.sum(), Some(2.0));
    let big = statistics(&reader, &ns, "big", &[("InstanceID", "values-host")]).await;
    assert_eq!(big.sum(), Some(((1_i64 << 62) - 1) as f64));
    let h = statistics(&reader, &ns, "h", &[("InstanceID", "values-host")]).await;
    assert_eq!((h.sample_count(), h.sum()), (Some(1.0), Some(5.0)));
}

/// Builds and runs an example to its end against the local CloudWatch; returns what it printed.
fn run_example(name: &str, env: &[(&str, &str)]) -> String {
    let build = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(build.success(), "building the {name} example failed");
    let exe = std::env::current_exe().expect("the test's path");
    let path = exe.parent().and_then(|deps| deps.parent()).expect("target/debug").join("examples").join(name);
    let output = std::process::Command::new(&path)
        .envs(env.iter().copied())
        .env("AWS_ENDPOINT_URL", localstack::endpoint())
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{name} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn the_service_example_publishes_each_request_once_across_its_dumps() {
    // A service as a new user runs it: default configuration (reset_timeout 0), a dump every second, 100
    // requests over about two seconds, then the close flush. pip's running totals would be added up by
    // CloudWatch at every dump.
    let instance = format!("service-{}", std::process::id());
    let output = run_example("service", &[("SERVICE_ORDERS", "100"), ("SERVICE_INSTANCE", &instance)]);
    let reader = localstack::reader();
    let ns = "cloudwatch-counters/service-example";
    let host = [("InstanceID", instance.as_str())];
    let spans = statistics(&reader, ns, "service.create_order.exec_time", &host).await;
    let errors = statistics(&reader, ns, "service.create_order.errors", &host).await;
    let values = statistics(&reader, ns, "orders.value", &host).await;
    let mut created = 0.0;
    for channel in ["web", "app"] {
        let dims = [host[0], ("channel", channel)];
        created += statistics(&reader, ns, "orders.created", &dims).await.sum().unwrap_or_default();
    }
    let requests: u64 = output
        .lines()
        .find_map(|l| l.strip_prefix("-- published: ")?.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no report of what was published in:\n{output}"));
    assert!(requests >= 2, "several dumps ran ({requests} requests), so re-sent totals would show");
    println!(
        "service example, 100 requests, {requests} PutMetricData requests:\n  metric                          recorded  CloudWatch\n  \
         service.create_order.exec_time  n 100     SampleCount {:?}\n  service.create_order.errors     15        Sum {:?}\n  \
         orders.created                  100       Sum {created}\n  orders.value                    n 100     SampleCount {:?}",
        spans.sample_count(),
        errors.sum(),
        values.sample_count(),
    );
    assert_eq!(spans.sample_count(), Some(100.0), "one span per request");
    assert_eq!(errors.sum(), Some(15.0), "orders 0, 7, ..., 98 are rejected");
    assert_eq!(created, 100.0);
    assert_eq!(values.sample_count(), Some(100.0));

    // tower-http's request spans: one latency metric per method, route and status.
    for (method, route, status, n) in
        [("POST", "/orders/{id}", "201", 85.0), ("POST", "/orders/{id}", "422", 15.0), ("GET", "/orders", "200", 100.0)]
    {
        let dims = [host[0], ("method", method), ("route", route), ("status", status)];
        let latency = statistics(&reader, ns, "http.request.exec_time", &dims).await;
        assert_eq!(latency.sample_count(), Some(n), "{method} {route} {status}");
    }
    // What one instance costs: every metric carrying its InstanceID.
    let listed = reader
        .list_metrics()
        .namespace(ns)
        .dimensions(aws_sdk_cloudwatch::types::DimensionFilter::builder().name("InstanceID").value(&instance).build())
        .send()
        .await
        .expect("ListMetrics");
    let mut metrics: Vec<String> = listed
        .metrics()
        .iter()
        .map(|m| {
            let dims: Vec<String> = m
                .dimensions()
                .iter()
                .filter(|d| d.name() != Some("InstanceID"))
                .map(|d| format!("{}={}", d.name().unwrap_or_default(), d.value().unwrap_or_default()))
                .collect();
            format!("{} {}", m.metric_name().unwrap_or_default(), dims.join(","))
        })
        .collect();
    metrics.sort();
    metrics.dedup();
    println!(
        "CloudWatch metrics of one instance of the service example ({}):\n  {}",
        metrics.len(),
        metrics.join("\n  ")
    );
    assert_eq!(metrics.len(), 10, "7 of the handlers, 3 of the HTTP requests, no telemetry: {metrics:?}");
}
