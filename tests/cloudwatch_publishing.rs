//! Publishing to a real local CloudWatch and reading the data back through the CloudWatch API.
//! Run by `scripts/test.sh`; a plain `cargo test` lists these as ignored, with the reason.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::StandardUnit;
use cloudwatch_counters::SkipReason;
use cloudwatch_counters::{CloudWatchCounters, CounterType, Counters, CountersOptions};
use common::localstack::{self, metric_names, recording_client, statistics, unique_namespace};
use metrics::{Key, Label};

async fn open_counters(namespace: &str) -> (CloudWatchCounters, localstack::Requests) {
    let (client, requests) = recording_client();
    let counters = CloudWatchCounters::builder()
        .namespace(namespace)
        .instance("test-host-1")
        .options(CountersOptions::default().interval(Duration::from_secs(3600)))
        .client(client)
        .build()
        .unwrap();
    counters.open().await.expect("open");
    (counters, requests)
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn every_counter_type_arrives_with_exact_statistics_and_unit() {
    let ns = unique_namespace("types");
    let (counters, requests) = open_counters(&ns).await;
    counters.increment("calls", 4);
    counters.increment("calls", 3);
    for ms in [10.0, 20.0, 30.0] {
        counters.end_timing("op.exec_time", ms);
    }
    for v in [-2.0, 8.0] {
        counters.stats("payload", v);
    }
    counters.last("queue", 42.5);
    let when = SystemTime::now() - Duration::from_secs(30);
    counters.timestamp("backup", when);
    let report = counters.close().await.unwrap();
    assert_eq!(report.saved, 5);
    assert_eq!(requests.count(), 1);

    let reader = localstack::reader();
    let dims = [("InstanceID", "test-host-1")];
    let p = statistics(&reader, &ns, "calls", &dims).await;
    assert_eq!((p.sample_count(), p.sum(), p.unit()), (Some(1.0), Some(7.0), Some(&StandardUnit::Count)));

    let p = statistics(&reader, &ns, "op.exec_time", &dims).await;
    assert_eq!(
        (p.sample_count(), p.sum(), p.minimum(), p.maximum(), p.average()),
        (Some(3.0), Some(60.0), Some(10.0), Some(30.0), Some(20.0))
    );
    assert_eq!(p.unit(), Some(&StandardUnit::Milliseconds));

    let p = statistics(&reader, &ns, "payload", &dims).await;
    assert_eq!(
        (p.sample_count(), p.sum(), p.minimum(), p.maximum(), p.average()),
        (Some(2.0), Some(6.0), Some(-2.0), Some(8.0), Some(3.0))
    );
    assert_eq!(p.unit(), Some(&StandardUnit::None));

    let p = statistics(&reader, &ns, "queue", &dims).await;
    assert_eq!(
        (p.sample_count(), p.sum(), p.maximum(), p.unit()),
        (Some(1.0), Some(42.5), Some(42.5), Some(&StandardUnit::None))
    );

    let p = statistics(&reader, &ns, "backup", &dims).await;
    let epoch_ms = when.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as f64;
    assert_eq!((p.sample_count(), p.sum()), (Some(1.0), Some(epoch_ms)));
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn labels_arrive_as_dimensions_beside_instance_id() {
    let ns = unique_namespace("labels");
    let (counters, _requests) = open_counters(&ns).await;
    let key = Key::from_parts("http.requests", vec![Label::new("route", "/orders"), Label::new("status", "201")]);
    counters.handle_for_key(&key, CounterType::Increment).increment(9);
    counters.close().await.unwrap();

    let reader = localstack::reader();
    let listed = reader.list_metrics().namespace(&ns).send().await.unwrap();
    let metric = &listed.metrics()[0];
    let mut dims: Vec<(String, String)> =
        metric.dimensions().iter().map(|d| (d.name().unwrap().to_owned(), d.value().unwrap().to_owned())).collect();
    dims.sort();
    assert_eq!(
        dims,
        [("InstanceID", "test-host-1"), ("route", "/orders"), ("status", "201")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let p = statistics(
        &reader,
        &ns,
        "http.requests",
        &[("InstanceID", "test-host-1"), ("route", "/orders"), ("status", "201")],
    )
    .await;
    assert_eq!(p.sum(), Some(9.0));
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn one_dump_of_2500_counters_arrives_complete_in_3_gzip_requests() {
    let ns = unique_namespace("bulk");
    let (counters, requests) = open_counters(&ns).await;
    for i in 0..2500 {
        counters.increment(&format!("bulk.counter.{i:04}"), i64::from(i) + 1);
    }
    let report = counters.close().await.unwrap();
    assert_eq!(report.saved, 2500);
    assert_eq!(requests.count(), 3, "1000 + 1000 + 500 datums");
    // Each body is far over 10 KiB: the SDK gzips it, once.
    assert_eq!(requests.encodings(), vec![Some("gzip".to_owned()); 3]);
    assert_eq!(counters.telemetry().datums_sent, 2500);

    let reader = localstack::reader();
    let names = metric_names(&reader, &ns).await;
    assert_eq!(names.len(), 2500);
    // Spot-check values through the API: gzip did not damage the payload.
    for i in [0, 999, 1000, 2499] {
        let p = statistics(&reader, &ns, &format!("bulk.counter.{i:04}"), &[("InstanceID", "test-host-1")]).await;
        assert_eq!(p.sum(), Some(f64::from(i) + 1.0));
    }
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn a_datum_breaking_a_limit_is_skipped_and_the_rest_of_the_batch_arrives() {
    let ns = unique_namespace("skips");
    let (counters, requests) = open_counters(&ns).await;
    counters.increment("good.before", 1);
    counters.increment(&"x".repeat(256), 1);
    counters.timestamp("stale", SystemTime::now() - Duration::from_secs(21 * 24 * 3600));
    counters.increment("good.after", 2);
    let report = counters.close().await.unwrap();
    assert_eq!(report.saved, 4, "all four handed to the sink");
    assert_eq!(requests.count(), 1);
    let telemetry = counters.telemetry();
    assert_eq!(telemetry.skipped(SkipReason::MetricName), 1);
    assert_eq!(telemetry.skipped(SkipReason::TooOld), 1);
    let reader = localstack::reader();
    assert_eq!(metric_names(&reader, &ns).await, vec!["good.after".to_owned(), "good.before".to_owned()]);
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn configured_from_pip_keys_with_an_endpoint_it_publishes() {
    let ns = unique_namespace("configured");
    let counters = CloudWatchCounters::new();
    counters
        .configure(&cloudwatch_counters::ConfigParams::from_tuples([
            ("connections.region", "us-east-1"),
            ("connection.endpoint_url", localstack::endpoint().as_str()),
            ("credentials.access_id", "test"),
            ("credentials.access_key", "test"),
            ("source", ns.as_str()),
            ("instance", "pip-configured"),
            ("options.interval", "3600000"),
        ]))
        .unwrap();
    counters.open().await.unwrap();
    assert!(counters.is_open());
    counters.increment_one("pip.calls");
    counters.close().await.unwrap();
    assert!(!counters.is_open());
    let p = statistics(&localstack::reader(), &ns, "pip.calls", &[("InstanceID", "pip-configured")]).await;
    assert_eq!(p.sum(), Some(1.0));
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn publishing_never_feeds_the_layer_its_own_sdk_spans() {
    use tracing_subscriber::layer::SubscriberExt;
    let ns = unique_namespace("no-feedback");
    let (counters, requests) = open_counters(&ns).await;
    let _guard = tracing::subscriber::set_default(tracing_subscriber::Registry::default().with(counters.layer()));
    tracing::info_span!(target: "app", "work").in_scope(|| {});
    for _ in 0..3 {
        counters.increment("app.calls", 1);
        counters.dump().await.unwrap();
    }
    assert_eq!(requests.count(), 3, "three real PutMetricData calls went through the SDK");
    let mut names: Vec<String> = counters
        .counters()
        .get_all()
        .into_iter()
        .map(|c| c.name().to_owned())
        .filter(|name| !name.starts_with(cloudwatch_counters::TELEMETRY_PREFIX))
        .collect();
    names.sort();
    assert_eq!(names, vec!["app.calls".to_owned(), "app.work.exec_time".to_owned()], "no SDK spans counted");
    counters.close().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn metrics_named_with_a_high_resolution_prefix_are_sent_at_one_second_resolution() {
    let ns = unique_namespace("resolution");
    let (client, requests) = recording_client();
    let counters = CloudWatchCounters::builder()
        .namespace(&ns)
        .instance("test-host-1")
        .high_resolution_for("api.")
        .client(client)
        .build()
        .unwrap();
    counters.open().await.expect("open");
    counters.end_timing("api.checkout", 12.0);
    counters.end_timing("batch.nightly", 40.0);
    counters.close().await.unwrap();
    let resolution = |name: &str| {
        let datums = requests.datums();
        datums
            .iter()
            .find(|d| d.metric_name() == Some(name))
            .and_then(aws_sdk_cloudwatch::types::MetricDatum::storage_resolution)
    };
    assert_eq!(resolution("api.checkout"), Some(1));
    assert_eq!(resolution("batch.nightly"), None, "60, CloudWatch's default, is left out");
    let reader = localstack::reader();
    for (name, ms) in [("api.checkout", 12.0), ("batch.nightly", 40.0)] {
        let p = statistics(&reader, &ns, name, &[("InstanceID", "test-host-1")]).await;
        assert_eq!((p.sample_count(), p.sum()), (Some(1.0), Some(ms)), "{name} stored");
    }
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn a_label_named_as_a_default_dimension_takes_its_place_among_29_labels() {
    let ns = unique_namespace("default-dimension-label");
    let counters = localstack::builder(&ns, "room-host").dimension("service", "checkout").build().unwrap();
    counters.open().await.expect("open");
    let mut labels: Vec<Label> = (0..28).map(|i| Label::new(format!("k{i:02}"), "v")).collect();
    labels.push(Label::new("service", "payments"));
    metrics::with_local_recorder(&counters.recorder(), || metrics::counter!("wide", labels).increment(1));
    counters.close().await.expect("closed");
    let t = counters.telemetry();
    assert_eq!((t.labels_cut, t.skipped_total()), (0, 0), "29 names: nothing cut, nothing skipped");
    // InstanceID, the label's value in the default dimension's place and the other 28 labels: 30 dimensions.
    let names: Vec<String> = (0..28).map(|i| format!("k{i:02}")).collect();
    let mut dims: Vec<(&str, &str)> = names.iter().map(|k| (k.as_str(), "v")).collect();
    dims.extend([("InstanceID", "room-host"), ("service", "payments")]);
    let point = statistics(&localstack::reader(), &ns, "wide", &dims).await;
    assert_eq!(point.sum(), Some(1.0));
}

#[tokio::test]
async fn more_default_dimensions_than_a_datum_takes_are_refused_at_open() {
    // InstanceID takes one of the 30 dimensions; without it (`instance("")`) the defaults may take all 30.
    for (instance, most) in [("host", 29), ("", 30)] {
        let with = |n: usize| {
            let builder = CloudWatchCounters::builder()
                .namespace("too-many-dimensions")
                .instance(instance)
                .region("us-east-1")
                .credentials("test", "test")
                .endpoint_url("http://127.0.0.1:9");
            (0..n).fold(builder, |b, i| b.dimension(format!("d{i:02}"), "v")).build().unwrap()
        };
        let err = with(most + 1).open().await.expect_err("too many dimensions");
        assert!(err.to_string().contains("dimensions"), "{err}");
        let counters = with(most);
        counters.open().await.unwrap_or_else(|e| panic!("{most} default dimensions are allowed: {e}"));
    }
}
