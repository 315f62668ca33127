//! Timings and histograms reach CloudWatch as distributions: the Values/Counts the SDK encoded give the
//! nearest-rank p50/p90/p99/p99.9 of what was recorded within 1%, and the local CloudWatch's SampleCount,
//! Minimum and Maximum equal the recorded ones exactly (Sum up to floating-point rounding). LocalStack computes
//! no percentiles, so those are computed from the request, as CloudWatch documents it (nearest rank).

mod common;

use std::time::Duration;

use aws_sdk_cloudwatch::types::MetricDatum;
use cloudwatch_counters::{CloudWatchCounters, ConfigParams, Counters, CountersOptions};
use common::localstack::{recording_client, statistics, unique_namespace, Requests};

const INSTANCE: &str = "percentile-host";

async fn open_counters(namespace: &str, options: CountersOptions) -> (CloudWatchCounters, Requests) {
    let (client, requests) = recording_client();
    let counters = CloudWatchCounters::builder()
        .namespace(namespace)
        .instance(INSTANCE)
        .options(options.interval(Duration::from_secs(3600)).telemetry(false))
        .client(client)
        .build()
        .expect("valid settings");
    counters.open().await.expect("open");
    (counters, requests)
}

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let (u, v) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The distributions recorded, by metric name.
fn distributions() -> Vec<(&'static str, Vec<f64>)> {
    let mut rng = fastrand::Rng::with_seed(2026);
    vec![
        ("uniform", (0..50_000).map(|_| 1.0 + 999.0 * rng.f64()).collect()),
        ("log_normal", (0..50_000).map(|_| (3.0 + normal(&mut rng)).exp()).collect()),
        (
            "bimodal",
            (0..50_000)
                .map(|i| if i % 4 == 0 { 300.0 + 20.0 * normal(&mut rng) } else { 20.0 + 2.0 * normal(&mut rng) })
                .map(f64::abs)
                .collect(),
        ),
        ("one_sample", vec![12.345]),
        ("million", (0..1_000_000).map(|_| (1.0 + 1.2 * normal(&mut rng)).exp()).collect()),
    ]
}

/// The value of nearest rank `k` (1-based) in what a datum sent.
fn value_at_rank(values: &[f64], counts: &[f64], k: u64) -> f64 {
    let mut seen = 0.0;
    for (value, count) in values.iter().zip(counts) {
        seen += count;
        if seen >= k as f64 {
            return *value;
        }
    }
    panic!("rank {k} is past the counts");
}

fn the_datum<'a>(datums: &'a [MetricDatum], name: &str) -> &'a MetricDatum {
    let mine: Vec<_> = datums.iter().filter(|d| d.metric_name() == Some(name)).collect();
    assert_eq!(mine.len(), 1, "one datum for {name}");
    mine[0]
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn sent_values_give_the_percentiles_and_statistics_of_what_was_recorded() {
    let namespace = unique_namespace("percentiles");
    let (counters, requests) = open_counters(&namespace, CountersOptions::default()).await;
    let recorder = counters.recorder();
    let truth = distributions();
    metrics::with_local_recorder(&recorder, || {
        for (name, samples) in &truth {
            let histogram = metrics::histogram!(*name);
            for &v in samples {
                histogram.record(v);
            }
        }
    });
    counters.dump().await.expect("dump");

    let datums = requests.datums();
    let reader = common::localstack::reader();
    for (name, samples) in truth {
        let datum = the_datum(&datums, name);
        assert!(datum.statistic_values().is_none(), "{name}: sent as values, not a statistic set");
        let (values, counts) = (datum.values(), datum.counts());
        assert!(!values.is_empty() && values.len() <= 150, "{name}: {} values", values.len());
        assert_eq!(values.len(), counts.len());
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        assert_eq!(counts.iter().sum::<f64>(), n as f64, "{name}: SampleCount");
        for p in [0.5, 0.9, 0.99, 0.999] {
            let k = ((p * n as f64).ceil() as u64).clamp(1, n as u64);
            let (sent, truth) = (value_at_rank(values, counts, k), sorted[k as usize - 1]);
            assert!((sent - truth).abs() <= truth * 0.01, "{name}: p{} sent {sent}, recorded {truth}", p * 100.0);
        }

        let stored = statistics(&reader, &namespace, name, &[("InstanceID", INSTANCE)]).await;
        let sum: f64 = samples.iter().sum();
        assert_eq!(stored.sample_count(), Some(n as f64), "{name}: SampleCount stored");
        assert_eq!(stored.minimum(), Some(sorted[0]), "{name}: Minimum stored");
        assert_eq!(stored.maximum(), Some(sorted[n - 1]), "{name}: Maximum stored");
        let stored_sum = stored.sum().expect("Sum");
        assert!((stored_sum - sum).abs() <= sum * 1e-9, "{name}: Sum stored {stored_sum}, recorded {sum}");
    }
    counters.close().await.expect("close");
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn percentiles_off_and_negative_samples_send_pip_statistic_values() {
    let namespace = unique_namespace("percentiles-off");
    let config = ConfigParams::from_tuples([("options.percentiles", "false")]);
    let off = CountersOptions::from_config(&config).expect("a valid key");
    let (counters, requests) = open_counters(&namespace, off).await;
    counters.stats("latency", 3.0);
    counters.stats("latency", 5.5);
    counters.dump().await.expect("dump");
    let (on, on_requests) = open_counters(&namespace, CountersOptions::default()).await;
    on.stats("temperature", -4.0);
    on.stats("temperature", 21.5);
    on.dump().await.expect("dump");

    let reader = common::localstack::reader();
    for (requests, name, (count, sum, min, max)) in
        [(&requests, "latency", (2.0, 8.5, 3.0, 5.5)), (&on_requests, "temperature", (2.0, 17.5, -4.0, 21.5))]
    {
        let datums = requests.datums();
        let datum = the_datum(&datums, name);
        assert!(datum.values().is_empty(), "{name}: no values");
        let set = datum.statistic_values().expect("a statistic set");
        assert_eq!(
            (set.sample_count(), set.sum(), set.minimum(), set.maximum()),
            (Some(count), Some(sum), Some(min), Some(max))
        );
        let stored = statistics(&reader, &namespace, name, &[("InstanceID", INSTANCE)]).await;
        assert_eq!(
            (stored.sample_count(), stored.sum(), stored.minimum(), stored.maximum()),
            (Some(count), Some(sum), Some(min), Some(max)),
            "{name} stored"
        );
    }
    counters.close().await.expect("close");
    on.close().await.expect("close");
}
