//! Delivery that neither loses nor double-counts, against the local CloudWatch behind a proxy: an endpoint that
//! hangs and then resumes (every request sent during the hang is stored when it resumes: CloudWatch must end up
//! with exactly what was recorded), a response lost after the server stored the request, `close()` bounded
//! while the endpoint hangs, and counters dropped while an interval dump waits on a slow endpoint.

mod common;

use std::time::Duration;

use cloudwatch_counters::{CloudWatchCounters, Counters, CountersOptions, Error};
use common::localstack::{self, statistics, unique_namespace};
use common::proxy::{Mode, Proxy};

/// Past a request's bound (`connect_timeout` + `request_timeout`), with room for a first attempt.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(8);

fn counters_through(proxy: &Proxy, namespace: &str, interval: Duration) -> CloudWatchCounters {
    CloudWatchCounters::builder()
        .namespace(namespace)
        .instance("delivery-host")
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url(proxy.endpoint())
        // Well past what the local CloudWatch takes on a loaded machine: only a hung endpoint times out.
        .connect_timeout(Duration::from_secs(1))
        .request_timeout(Duration::from_secs(5))
        .options(CountersOptions::default().interval(interval).close_timeout(CLOSE_TIMEOUT))
        .build()
        .expect("valid settings")
}

/// Waits (bounded) until `condition` holds for the counters' telemetry.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what} within 30 s"));
}

/// Waits (bounded) until CloudWatch's Sum for `metric` reaches `expected`, and returns the datapoint then.
async fn sum_reaches(namespace: &str, metric: &str, expected: f64) -> aws_sdk_cloudwatch::types::Datapoint {
    let reader = localstack::reader();
    let dims = [("InstanceID", "delivery-host")];
    for _ in 0..150 {
        let points = localstack::datapoints(&reader, namespace, metric, &dims).await.expect("GetMetricStatistics");
        if let Some(point) = points.first().filter(|p| p.sum() >= Some(expected)) {
            return point.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    statistics(&reader, namespace, metric, &dims).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn a_hung_endpoint_that_resumes_ends_with_exactly_what_was_recorded_and_close_stays_bounded() {
    localstack::warm_up().await;
    let proxy = Proxy::start(&localstack::endpoint()).await;
    let ns = unique_namespace("hang");
    let counters = counters_through(&proxy, &ns, Duration::from_millis(300));
    counters.open().await.expect("open");
    let (mut orders, mut samples) = (0u64, 0u64);
    let mut record = |n: u64| {
        for i in 0..n {
            counters.increment("orders", 1);
            counters.end_timing("latency", (i % 50) as f64);
        }
        orders += n;
        samples += n;
    };
    record(100);
    wait_for("a timer dump", || counters.telemetry().datums_sent > 0).await;

    proxy.set(Mode::Hang);
    record(100);
    wait_for("a timer dump that timed out after sending", || counters.telemetry().requests_ambiguous > 0).await;
    record(100);
    let closed =
        tokio::time::timeout(CLOSE_TIMEOUT * 3, counters.close()).await.expect("close returns within its bound");
    // Cut off at the bound, or its own request timed out after sending first: either way it says what is not
    // confirmed.
    match closed {
        Err(Error::CloseTimeout { timeout, .. }) => assert_eq!(timeout, CLOSE_TIMEOUT),
        Err(Error::Save(e)) if e.is_ambiguous() => assert!(e.to_string().contains("not confirmed"), "{e}"),
        other => panic!("close during the hang: {other:?}"),
    }
    let t = counters.telemetry();
    assert!(t.requests_ambiguous >= 1 && t.datums_ambiguous >= 1, "{t:?}");

    // The endpoint resumes: what it held is stored now; what was never sent goes with the next close.
    proxy.set(Mode::Forward);
    counters.close().await.expect("close after the hang flushes the rest");
    proxy.wait_until_nothing_is_held(Duration::from_secs(30)).await;
    let point = sum_reaches(&ns, "orders", orders as f64).await;
    assert_eq!(point.sum(), Some(orders as f64), "orders: exactly what was recorded, nothing counted twice");
    let latency = sum_reaches(&ns, "latency", 0.0).await;
    assert_eq!(latency.sample_count(), Some(samples as f64), "latency samples: exactly what was recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn a_response_lost_after_the_server_stored_the_request_is_not_sent_again() {
    localstack::warm_up().await;
    let proxy = Proxy::start(&localstack::endpoint()).await;
    let ns = unique_namespace("lost-response");
    let counters = counters_through(&proxy, &ns, Duration::from_secs(3600));
    counters.open().await.expect("open");
    counters.increment("orders", 7);
    proxy.set(Mode::DropResponses);
    let err = counters.dump().await.expect_err("no answer came back");
    assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
    let t = counters.telemetry();
    assert_eq!((t.requests_ambiguous, t.datums_ambiguous), (1, 1), "{t:?}");
    proxy.set(Mode::Forward);
    counters.increment("orders", 5);
    counters.close().await.expect("close");
    let point = sum_reaches(&ns, "orders", 12.0).await;
    assert_eq!(
        point.sum(),
        Some(12.0),
        "the lost-response request was stored once: neither the SDK nor the next dump sent it again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn counters_dropped_while_an_interval_dump_waits_on_a_slow_endpoint_have_delivered_everything_when_the_drop_returns(
) {
    localstack::warm_up().await;
    let proxy = Proxy::start(&localstack::endpoint()).await;
    let ns = unique_namespace("drop-slow");
    let counters = counters_through(&proxy, &ns, Duration::from_millis(200));
    counters.open().await.expect("open");
    proxy.set(Mode::Hang);
    counters.increment("orders", 1);
    wait_for("an interval dump held by the hanging endpoint", || proxy.holds()).await;
    counters.increment("orders", 10);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // The endpoint answers after 300 ms (well within the request timeout): a slow one, not a dead one.
            std::thread::sleep(Duration::from_millis(300));
            proxy.set(Mode::Forward);
        });
        // As at the end of `#[tokio::main]`: the runtime stops right after, so the drop must not leave the rest
        // to the interval task.
        drop(counters);
    });
    let orders = statistics(&localstack::reader(), &ns, "orders", &[("InstanceID", "delivery-host")]).await;
    assert_eq!(orders.sum(), Some(11.0), "the held dump's 1 and the 10 recorded during it, each once");
}
