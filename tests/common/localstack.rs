//! Helpers for tests against the local CloudWatch (LocalStack) that `scripts/test.sh` starts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_cloudwatch::config::ConfigBag;
use aws_sdk_cloudwatch::config::{BehaviorVersion, Credentials, Intercept, Region, RuntimeComponents};
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataInput;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Datapoint, Dimension, MetricDatum, Statistic};
use aws_sdk_cloudwatch::Client;

/// The reason printed for CloudWatch tests skipped by a plain `cargo test`.
pub const NEEDS_SERVER: &str = "needs the local CloudWatch: run scripts/test.sh";

/// The endpoint of the local CloudWatch. Fails loudly when the tests were asked to run without one.
pub fn endpoint() -> String {
    std::env::var("CLOUDWATCH_TEST_ENDPOINT").unwrap_or_else(|_| {
        panic!("CLOUDWATCH_TEST_ENDPOINT is not set: these tests need the local CloudWatch; run scripts/test.sh")
    })
}

/// A namespace no other test (or earlier run) uses.
pub fn unique_namespace(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("cwc-test/{test}/{nanos}")
}

/// What the interceptor saw of each PutMetricData request.
#[derive(Clone, Default)]
pub struct Requests {
    count: Arc<AtomicUsize>,
    encodings: Arc<Mutex<Vec<Option<String>>>>,
    datums: Arc<Mutex<Vec<MetricDatum>>>,
}

impl Requests {
    /// Requests sent.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Every datum the SDK was given to encode, in order.
    pub fn datums(&self) -> Vec<MetricDatum> {
        self.datums.lock().unwrap().clone()
    }

    /// Each request's Content-Encoding header.
    pub fn encodings(&self) -> Vec<Option<String>> {
        self.encodings.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct Recorder(Requests);

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Requests({})", self.count())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "test-request-recorder"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_cloudwatch::error::BoxError> {
        if let Some(input) = context.input().downcast_ref::<PutMetricDataInput>() {
            self.0.datums.lock().unwrap().extend(input.metric_data().iter().cloned());
        }
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_cloudwatch::error::BoxError> {
        let encoding = context.request().headers().get("content-encoding").map(str::to_owned);
        self.0.encodings.lock().unwrap().push(encoding);
        self.0.count.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn config() -> aws_sdk_cloudwatch::config::Builder {
    config_at(&endpoint())
}

fn config_at(endpoint: &str) -> aws_sdk_cloudwatch::config::Builder {
    aws_sdk_cloudwatch::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
}

/// A client for reading data back.
pub fn reader() -> Client {
    Client::from_conf(config().build())
}

/// Puts one datum (in a namespace of its own) with the SDK's default timeouts: the local CloudWatch's first
/// PutMetricData after it starts takes seconds (it loads its handlers then), more than the tight timeouts of the
/// tests that make an endpoint hang would let any request take.
pub async fn warm_up() {
    let datum = MetricDatum::builder().metric_name("warm-up").value(1.0).build();
    let put = reader().put_metric_data().namespace("cwc-test/warm-up").metric_data(datum).send().await;
    put.expect("the local CloudWatch takes a datum");
}

/// A client that records the requests it sends, to hand to the crate.
pub fn recording_client() -> (Client, Requests) {
    let requests = Requests::default();
    (Client::from_conf(config().interceptor(Recorder(requests.clone())).build()), requests)
}

/// The one datapoint holding everything put for `metric` in the last hours (one bucket, minute-aligned).
pub async fn statistics(client: &Client, namespace: &str, metric: &str, dims: &[(&str, &str)]) -> Datapoint {
    let points = datapoints(client, namespace, metric, dims).await.expect("GetMetricStatistics");
    assert_eq!(points.len(), 1, "one bucket expected for {metric}: {points:?}");
    points[0].clone()
}

/// The datapoints of `metric` from an hour ago on, in two-hour buckets (minute-aligned): at most one.
pub async fn datapoints(
    client: &Client,
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
) -> Result<Vec<Datapoint>, aws_sdk_cloudwatch::Error> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let start = (now - 3600) / 60 * 60;
    let dimensions: Vec<Dimension> =
        dims.iter().map(|(k, v)| Dimension::builder().name(*k).value(*v).build()).collect();
    let out = client
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(dimensions))
        .start_time(DateTime::from_secs(start as i64))
        .end_time(DateTime::from_secs((start + 2 * 3600) as i64))
        .period(2 * 3600)
        .statistics(Statistic::SampleCount)
        .statistics(Statistic::Sum)
        .statistics(Statistic::Minimum)
        .statistics(Statistic::Maximum)
        .statistics(Statistic::Average)
        .send()
        .await?;
    Ok(out.datapoints().to_vec())
}

/// Every metric name in `namespace`, following pagination.
pub async fn metric_names(client: &Client, namespace: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut pages = client.list_metrics().namespace(namespace).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListMetrics");
        names.extend(page.metrics().iter().filter_map(|m| m.metric_name().map(str::to_owned)));
    }
    names.sort();
    names.dedup();
    names
}

/// How long the crate's client may take per request in these tests.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Counters for `namespace`, with InstanceID `instance`, publishing to the local CloudWatch when a test dumps or
/// closes them (their interval is an hour).
pub fn builder(namespace: &str, instance: &str) -> cloudwatch_counters::CloudWatchCountersBuilder {
    cloudwatch_counters::CloudWatchCounters::builder()
        .namespace(namespace)
        .instance(instance)
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url(endpoint())
        .options(cloudwatch_counters::CountersOptions::default().interval(Duration::from_secs(3600)))
}

/// Reset-mode counters for `namespace`, with InstanceID `instance`, publishing to the local CloudWatch at
/// `endpoint` every `interval`: their builder.
pub fn reset_mode_builder(
    namespace: &str,
    instance: &str,
    endpoint: &str,
    interval: Duration,
) -> cloudwatch_counters::CloudWatchCountersBuilder {
    let options =
        cloudwatch_counters::CountersOptions::default().interval(interval).reset_timeout(Duration::from_nanos(1));
    cloudwatch_counters::CloudWatchCounters::builder()
        .namespace(namespace)
        .instance(instance)
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url(endpoint)
        .connect_timeout(TIMEOUT)
        .options(options)
}

/// A client for reading data back from the local CloudWatch at `endpoint`.
pub fn reader_at(endpoint: &str) -> Client {
    Client::from_conf(config_at(endpoint).build())
}
