//! Fleets, read back from the local CloudWatch: two instances with rollup on give a fleet-wide metric whose
//! statistics are the sum of both; without InstanceID a metric has only its other dimensions; a counter idle past
//! `idle_timeout` frees its place for a new key, and a handle kept across the expiry still reaches CloudWatch.

mod common;

use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use cloudwatch_counters::{CloudWatchCounters, CounterType, Counters, CountersOptions};
use common::localstack::{self, statistics, unique_namespace};

fn builder(namespace: &str, options: CountersOptions) -> cloudwatch_counters::CloudWatchCountersBuilder {
    CloudWatchCounters::builder()
        .namespace(namespace)
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url(localstack::endpoint())
        .connect_timeout(localstack::TIMEOUT)
        .options(options.interval(Duration::from_secs(3600)).telemetry(false))
}

/// Every dimension set `metric` has in `namespace`, each as sorted names.
async fn dimension_sets(reader: &Client, namespace: &str, metric: &str) -> Vec<Vec<String>> {
    let listed = reader.list_metrics().namespace(namespace).metric_name(metric).send().await.expect("ListMetrics");
    let mut sets: Vec<Vec<String>> = listed
        .metrics()
        .iter()
        .map(|m| {
            let mut names: Vec<String> = m.dimensions().iter().filter_map(|d| d.name().map(str::to_owned)).collect();
            names.sort();
            names
        })
        .collect();
    sets.sort();
    sets.dedup();
    sets
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn two_instances_with_rollup_publish_a_fleet_metric_that_adds_both_up() {
    let ns = unique_namespace("fleet");
    let open = |instance: &'static str| {
        builder(&ns, CountersOptions::default())
            .instance(instance)
            .dimension("service", "checkout")
            .rollup(true)
            .build()
    };
    let (a, b) = (open("fleet-a").expect("valid"), open("fleet-b").expect("valid"));
    a.open().await.expect("open");
    b.open().await.expect("open");
    for ms in [10.0, 20.0, 30.0] {
        a.end_timing("checkout.latency", ms);
    }
    for ms in [5.0, 400.0] {
        b.end_timing("checkout.latency", ms);
    }
    a.increment("checkout.orders", 3);
    b.increment("checkout.orders", 2);
    a.close().await.expect("close");
    b.close().await.expect("close");

    let reader = localstack::reader();
    let stats = |dims: &'static [(&'static str, &'static str)], metric: &'static str| {
        let (reader, ns) = (reader.clone(), ns.clone());
        async move {
            let p = statistics(&reader, &ns, metric, dims).await;
            (p.sample_count().unwrap_or(0.0), p.sum().unwrap_or(0.0), p.minimum(), p.maximum())
        }
    };
    let a = stats(&[("InstanceID", "fleet-a"), ("service", "checkout")], "checkout.latency").await;
    let b = stats(&[("InstanceID", "fleet-b"), ("service", "checkout")], "checkout.latency").await;
    assert_eq!((a.0, a.1, b.0, b.1), (3.0, 60.0, 2.0, 405.0), "each instance's own metric");
    // The local CloudWatch matches dimensions as a subset (CloudWatch matches the exact set): asked for
    // `service` alone, it adds up the rollup's datums and the instances' own. The rollup is the difference.
    let service = stats(&[("service", "checkout")], "checkout.latency").await;
    let rollup = (service.0 - a.0 - b.0, service.1 - a.1 - b.1);
    assert_eq!(rollup, (5.0, 465.0), "the rollup holds both instances' samples");
    assert_eq!((service.2, service.3), (Some(5.0), Some(400.0)));
    let orders = stats(&[("service", "checkout")], "checkout.orders").await;
    assert_eq!(orders.1, 10.0, "3 + 2 by instance, and 5 in the rollup");
    assert_eq!(
        dimension_sets(&reader, &ns, "checkout.latency").await,
        [vec!["InstanceID".to_owned(), "service".to_owned()], vec!["service".to_owned()]]
    );
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn without_instance_id_a_metric_has_only_its_other_dimensions() {
    let ns = unique_namespace("no-instance");
    let c =
        builder(&ns, CountersOptions::default()).without_instance().dimension("env", "prod").build().expect("valid");
    c.open().await.expect("open");
    c.end_timing("api.latency", 12.0);
    c.close().await.expect("close");
    let reader = localstack::reader();
    assert_eq!(dimension_sets(&reader, &ns, "api.latency").await, [vec!["env".to_owned()]]);
    let stored = statistics(&reader, &ns, "api.latency", &[("env", "prod")]).await;
    assert_eq!((stored.sample_count(), stored.sum()), (Some(1.0), Some(12.0)));
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn an_expired_key_frees_its_place_and_a_kept_handle_still_reaches_cloudwatch() {
    let ns = unique_namespace("expiry");
    // One place; a counter expires at the second dump in a row that finds it idle.
    let options = CountersOptions::default().max_counters(1).idle_timeout(Duration::from_nanos(1));
    let c = builder(&ns, options).instance("expiry-host").build().expect("valid");
    c.open().await.expect("open");
    let kept = c.handle("jobs.done", CounterType::Increment);
    kept.increment(2);
    c.dump().await.expect("dump");
    c.dump().await.expect("dump");
    c.dump().await.expect("dump");
    assert_eq!(c.telemetry().counters_expired, 1);
    c.increment("jobs.new", 7); // takes the freed place
    kept.increment(3);
    c.close().await.expect("close");
    assert_eq!(c.telemetry().keys_dropped, 0);
    let reader = localstack::reader();
    let host = [("InstanceID", "expiry-host")];
    let done = statistics(&reader, &ns, "jobs.done", &host).await;
    assert_eq!((done.sample_count(), done.sum()), (Some(2.0), Some(5.0)), "2, then 3 after the expiry");
    assert_eq!(statistics(&reader, &ns, "jobs.new", &host).await.sum(), Some(7.0));
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn only_the_spans_a_service_means_to_measure_reach_cloudwatch() {
    use tracing_subscriber::layer::SubscriberExt;
    let ns = unique_namespace("span-selection");
    let c = builder(&ns, CountersOptions::default()).instance("spans-host").build().expect("valid");
    c.open().await.expect("open");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(c.layer()), || {
        tracing::info_span!(target: "shop::api", "checkout").in_scope(|| {});
        tracing::debug_span!(target: "shop::api", "parse").in_scope(|| {});
        tracing::info_span!(target: "hyperion::x", "call").in_scope(|| {});
        tracing::info_span!(target: "hyper::x", "call").in_scope(|| {});
    });
    c.close().await.expect("close");
    let reader = localstack::reader();
    assert_eq!(
        localstack::metric_names(&reader, &ns).await,
        ["hyperion.x.call.exec_time", "shop.api.checkout.exec_time"],
        "no DEBUG span, nothing of hyper"
    );
}
