//! Faults injected through test HTTP clients plugged into the AWS SDK (tests/common/http.rs): server errors,
//! throttling and timeouts. The clock is tokio's paused clock, so back-offs and timeouts take no real time and are
//! checked exactly.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_sdk_cloudwatch::config::SharedHttpClient;
use cloudwatch_counters::{
    CloudWatchCounters, CloudWatchCountersBuilder, ConfigParams, Counters, CountersOptions, Error, SkipReason,
};
use common::http::{
    cbor_response, gate, infallible_client_fn, real_http_client, Intercepted, NeverClient, UnopenablePort,
};
use tokio::time::Instant;

/// What the fake CloudWatch saw: each request's time and URI.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(Instant, String)>>>);

impl Seen {
    fn times(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A response as CloudWatch's rpc-v2-cbor protocol sends it: `None` = success, else an error code and status.
fn response(error: Option<(&str, u16)>) -> http::Response<Vec<u8>> {
    cbor_response(error)
}

/// A fake CloudWatch answering the `n`th request (from 0) with `script(n)`.
fn scripted(script: impl Fn(usize) -> Option<(&'static str, u16)> + Send + Sync + 'static) -> (SharedHttpClient, Seen) {
    let seen = Seen::default();
    let log = seen.clone();
    let client = infallible_client_fn(move |req| {
        let mut log = log.0.lock().unwrap();
        let n = log.len();
        log.push((Instant::now(), req.uri().to_string()));
        response(script(n))
    });
    (client, seen)
}

/// An SDK configuration that sends through `http`, retrying as `retries` says.
fn sdk(http: SharedHttpClient, retries: RetryConfig) -> SdkConfig {
    SdkConfig::builder().behavior_version(BehaviorVersion::latest()).http_client(http).retry_config(retries).build()
}

fn counters(http: SharedHttpClient, retries: RetryConfig, options: CountersOptions) -> CloudWatchCounters {
    counters_on(sdk(http, retries), options)
}

/// Counters that send through the SDK configuration `sdk`.
fn counters_on(sdk: SdkConfig, options: CountersOptions) -> CloudWatchCounters {
    CloudWatchCounters::builder()
        .namespace("faults")
        .instance("test-host")
        .region("us-east-1")
        .credentials("test", "test")
        .connect_timeout(Duration::from_secs(2))
        .options(options)
        .sdk_config(sdk)
        .build()
        .expect("valid settings")
}

fn hour() -> CountersOptions {
    CountersOptions::default().interval(Duration::from_secs(3600))
}

/// Two attempts, the retry 10 s after the first.
fn retry_after_ten_seconds() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(2)
        .with_initial_backoff(Duration::from_secs(10))
        .with_use_static_exponential_base(true)
}

/// The local view of the counter `name`'s count.
fn count_of(c: &CloudWatchCounters, name: &str) -> Option<i64> {
    c.counters().get_all().iter().find(|x| x.name() == name).and_then(|x| x.count)
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_backoff_and_the_dump_succeeds() {
    let (http, seen) = scripted(|n| (n < 2).then_some(("InternalServiceError", 503)));
    let c = counters(http, RetryConfig::standard().with_max_attempts(3), hour());
    c.open().await.unwrap();
    c.increment("calls", 3);
    let report = c.dump().await.expect("the third attempt succeeds");
    assert_eq!(report.saved, 1);
    assert_eq!(seen.count(), 3, "two 503s, then success");
    let t = seen.times();
    assert!(t[1] > t[0] && t[2] > t[1], "each retry waits first: {t:?}");
    let telemetry = c.telemetry();
    assert_eq!((telemetry.requests_sent, telemetry.requests_failed, telemetry.dumps_failed), (1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn persistent_server_errors_fail_the_dump_and_keep_every_value() {
    let (http, seen) = scripted(|n| (n < 3).then_some(("InternalServiceError", 500)));
    let options = hour().reset_timeout(Duration::from_millis(1));
    let c = counters(http, RetryConfig::standard().with_max_attempts(3), options);
    c.open().await.unwrap();
    c.increment("calls", 5);
    tokio::time::advance(Duration::from_millis(5)).await;
    let err = c.dump().await.expect_err("three 500s exhaust the retries");
    assert!(matches!(&err, Error::Save(e) if !e.is_throttled()), "{err}");
    assert_eq!(seen.count(), 3);
    c.increment("calls", 2);
    assert_eq!(count_of(&c, "calls"), Some(7), "nothing was lost");
    assert_eq!(c.dump().await.unwrap().saved, 3, "calls, and the telemetry's requests_failed and dumps_failed");
    assert_eq!(count_of(&c, "calls"), None, "reset after the save");
    let telemetry = c.telemetry();
    assert_eq!((telemetry.requests_failed, telemetry.dumps_failed, telemetry.datums_sent), (1, 1, 3));
}

#[tokio::test(start_paused = true)]
async fn throttling_backs_off_two_four_eight_intervals_with_jitter() {
    // Four throttled dumps, then success; the SDK's own retries are off so each request is one dump.
    let (http, seen) = scripted(|n| (n < 4).then_some(("Throttling", 400)));
    let interval = Duration::from_secs(10);
    let c = counters(http, RetryConfig::disabled(), CountersOptions::default().interval(interval));
    c.open().await.unwrap();
    c.increment("calls", 1);
    let start = Instant::now();
    let five_requests = async {
        while seen.count() < 5 {
            tokio::time::sleep(Duration::from_millis(100)).await; // paused clock: advances instantly
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), five_requests).await.expect("five requests within an hour");
    let mut times = vec![start];
    times.extend(seen.times());
    let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    // The first dump waits for the instance's phase of the interval (at most one interval and a hundredth).
    assert!(gaps[0] <= 10.1 + 0.11, "gaps {gaps:?}");
    let nominal = [20.0, 40.0, 80.0, 80.0];
    for (gap, want) in gaps[1..].iter().zip(nominal) {
        assert!((gap - want).abs() <= want * 0.1 + 0.11, "gaps {gaps:?}, expected about {nominal:?}");
    }
    assert!(gaps[1..].iter().zip(&nominal).any(|(g, w)| (g - w).abs() > 0.11), "no jitter in {gaps:?}");
    assert_eq!(c.telemetry().dumps_failed, 4);
    let telemetry = c.telemetry();
    assert_eq!((telemetry.requests_failed, telemetry.requests_sent), (4, 1));
    assert_eq!(telemetry.datums_sent, 3, "the fifth attempt delivered the kept counter and two telemetry counters");
    c.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failure_that_is_not_throttling_ends_the_back_off() {
    // Throttled once, then a 500, then success: the back-off of 2 intervals follows the throttling only.
    let (http, seen) = scripted(|n| [("Throttling", 400), ("InternalServiceError", 500)].get(n).copied());
    let interval = Duration::from_secs(10);
    let c = counters(http, RetryConfig::disabled(), CountersOptions::default().interval(interval));
    c.open().await.unwrap();
    c.increment("calls", 1);
    let three_requests = async {
        while seen.count() < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await; // paused clock: advances instantly
        }
    };
    tokio::time::timeout(Duration::from_secs(3600), three_requests).await.expect("three requests within an hour");
    let times = seen.times();
    let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    assert!((gaps[0] - 20.0).abs() <= 2.0 + 0.11, "2 intervals after the throttling: {gaps:?}");
    assert!(gaps[1] <= 10.0 + 0.11, "at most an interval after the 500 (back at the phase): {gaps:?}");
    c.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_times_out_and_the_request_is_not_sent_again() {
    let http = NeverClient::new();
    // Standard retries: the SDK would retry a timeout, but this request may have been stored.
    let c = counters(SharedHttpClient::new(http.clone()), RetryConfig::standard().with_max_attempts(3), hour());
    c.open().await.unwrap();
    c.increment("calls", 1);
    let start = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(600), c.dump()).await.expect("no timeout applied").unwrap_err();
    let bound = Duration::from_secs(2) + cloudwatch_counters::DEFAULT_REQUEST_TIMEOUT;
    assert_eq!(start.elapsed(), bound, "connect and request timeouts bound each attempt: {err}");
    assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
    assert_eq!(http.num_calls(), 1, "not retried by the SDK");
    let t = c.telemetry();
    assert_eq!((t.requests_ambiguous, t.datums_ambiguous), (1, 1));
    assert_eq!(c.dump().await.unwrap().saved, 0, "not sent again by the next dump");
    assert_eq!(http.num_calls(), 1);
    assert_eq!(c.counters().get_all()[0].count, Some(1), "the local view still counts it");
}

#[tokio::test(start_paused = true)]
async fn a_client_handed_in_keeps_its_own_attempt_timeout_and_gets_the_settings_where_it_has_none() {
    // Its own attempt timeout, or none: then the settings' connect_timeout + request_timeout (12 s).
    for (own, bound) in [(None, 12), (Some(5), 5)] {
        let http = NeverClient::new();
        let mut config = aws_sdk_cloudwatch::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(SharedHttpClient::new(http.clone()))
            .retry_config(RetryConfig::disabled());
        if let Some(secs) = own {
            config = config
                .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_secs(secs)).build());
        }
        let c = CloudWatchCounters::builder()
            .namespace("faults")
            .instance("test-host")
            .client(aws_sdk_cloudwatch::Client::from_conf(config.build()))
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(10))
            .options(hour().telemetry(false))
            .build()
            .expect("valid settings");
        c.open().await.unwrap();
        c.increment("calls", 1);
        let start = Instant::now();
        let dump = tokio::time::timeout(Duration::from_secs(600), c.dump()).await;
        let err = dump.expect("the attempt timed out").unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(bound), "{own:?}: {err}");
        assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
        assert_eq!(http.num_calls(), 1);
    }
}

/// Counters whose requests go through the SDK's real HTTP client to `port`, whose connections never open,
/// each connection given up after `connect_timeout`; not retried.
fn unopenable_builder(port: &UnopenablePort, connect_timeout: Duration) -> CloudWatchCountersBuilder {
    CloudWatchCounters::builder()
        .namespace("faults")
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url(port.endpoint())
        .connect_timeout(connect_timeout)
        .sdk_config(sdk(real_http_client(), RetryConfig::disabled()))
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_never_opens_times_out_after_connect_timeout() {
    // The SDK's real HTTP client, connecting to a loopback port whose connections never open.
    let port = UnopenablePort::listen();
    let timeout = Duration::from_millis(1500);
    let c = unopenable_builder(&port, timeout).options(hour()).build().unwrap();
    c.open().await.unwrap();
    c.increment("calls", 1);
    let start = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(600), c.dump()).await.expect("no timeout applied").unwrap_err();
    assert_eq!(start.elapsed(), timeout, "{err}");
    assert!(format!("{err:?}").to_lowercase().contains("timeout"), "{err:?}");
    // The attempt timeout is 1.5 s too: only the HTTP client's connect timeout says so.
    assert!(format!("{err:?}").contains("HTTP connect timeout"), "the connect timeout fired: {err:?}");
}

#[tokio::test(start_paused = true)]
async fn close_cut_off_while_the_connection_is_still_being_made_keeps_its_data() {
    // The SDK's real HTTP client, connecting to a loopback port whose connections never open: nothing is sent.
    let port = UnopenablePort::listen();
    let options = hour().close_timeout(Duration::from_secs(1)).telemetry(false);
    let c = unopenable_builder(&port, Duration::from_secs(30)).options(options).build().unwrap();
    c.open().await.unwrap();
    c.increment("calls", 3);
    let (_capture, logs) = common::capture_logs();
    let err = c.close().await.unwrap_err();
    assert!(matches!(err, Error::CloseTimeout { datums_unconfirmed: 0, .. }), "nothing left the machine: {err}");
    assert_eq!((c.telemetry().requests_ambiguous, c.telemetry().datums_ambiguous), (0, 0));
    // Kept, not written off: dropped now, the counters say these values are lost.
    drop(c);
    assert_eq!(logs.lines_with("their close() failed or was cancelled"), 1, "{}", logs.text());
}

#[tokio::test]
async fn requests_to_aws_use_https() {
    let (http, seen) = scripted(|_| None);
    let c = counters(http, RetryConfig::disabled(), hour());
    c.open().await.unwrap();
    c.increment("calls", 1);
    c.close().await.unwrap();
    let uri = seen.0.lock().unwrap()[0].1.clone();
    assert!(uri.starts_with("https://monitoring.us-east-1.amazonaws.com"), "{uri}");
}

#[tokio::test]
async fn plain_http_to_a_remote_endpoint_is_refused_at_open() {
    let c = CloudWatchCounters::builder()
        .namespace("faults")
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url("http://monitoring.example.com")
        .build()
        .unwrap();
    let err = c.open().await.unwrap_err().to_string();
    assert!(err.contains("https://") && !c.is_open(), "{err}");
}

#[tokio::test]
async fn credentials_never_show_in_logs_errors_or_debug_output() {
    const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-SECRET";
    let (logs_guard, logs) = common::capture_logs(); // every level of every target, the AWS SDK's included
    let (http, _seen) = scripted(|n| (n > 0).then_some(("SignatureDoesNotMatch", 403)));
    let config = ConfigParams::from_tuples([
        ("source", "secrets"),
        ("connection.region", "us-east-1"),
        ("credential.access_id", "AKIDEXAMPLE"),
        ("credential.access_key", SECRET),
    ]);
    let counters =
        CloudWatchCounters::builder().config(&config).sdk_config(sdk(http, RetryConfig::disabled())).build().unwrap();
    counters.open().await.unwrap();
    counters.increment("calls", 1);
    counters.dump().await.expect("the first request is accepted");
    counters.increment("calls", 1);
    let err = counters.dump().await.expect_err("the second is refused");
    drop(logs_guard);
    let shown = [
        logs.text(),
        format!("{err} {err:?}"),
        format!("{counters:?} {:?} {config:?}", counters.settings()),
        format!("{:?}", counters.telemetry()),
    ];
    assert!(logs.text().contains("PutMetricData"), "the SDK's logs were captured");
    for text in shown {
        assert!(!text.contains(SECRET), "the secret key shows in: {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_400_about_the_whole_request_keeps_the_data_instead_of_splitting_and_dropping_it() {
    // Access denied (or an expired signature) is about the request, not a datum: no split, nothing dropped.
    let (http, seen) = scripted(|n| (n == 0).then_some(("AccessDeniedException", 400)));
    let c = counters(http, RetryConfig::disabled(), hour());
    c.open().await.unwrap();
    c.increment("a", 1);
    c.increment("b", 2);
    let err = c.dump().await.unwrap_err();
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "{err}");
    assert_eq!(seen.count(), 1, "one request, not split");
    assert_eq!(c.telemetry().skipped_total(), 0, "nothing dropped");
    let report = c.dump().await.unwrap();
    assert!(report.saved >= 2, "the kept counters go out with the next dump: {report:?}");
    assert_eq!(c.telemetry().datums_sent, report.saved as u64);
}

#[tokio::test(start_paused = true)]
async fn a_success_answer_whose_body_cannot_be_read_is_not_retried() {
    let seen = Seen::default();
    let log = seen.clone();
    let http = infallible_client_fn(move |req| {
        log.0.lock().unwrap().push((Instant::now(), req.uri().to_string()));
        http::Response::builder()
            .status(200)
            .header("smithy-protocol", "rpc-v2-cbor")
            .header("content-type", "application/cbor")
            .body(vec![0xff, 0x00, 0xff])
            .unwrap()
    });
    let c = counters(http, RetryConfig::standard().with_max_attempts(3), hour());
    c.open().await.unwrap();
    c.increment("calls", 1);
    let result = c.dump().await;
    assert_eq!(seen.count(), 1, "CloudWatch answered 200: it stored the request, so it is never sent again");
    if let Err(err) = result {
        assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
    }
    assert_eq!(c.dump().await.unwrap().saved, 0, "nor by the next dump");
    assert_eq!(seen.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn close_cut_off_mid_save_gives_up_only_what_was_sent_and_keeps_the_rest() {
    let http = NeverClient::new();
    let c = one_counter_a_request(SharedHttpClient::new(http.clone()), false);
    c.open().await.unwrap();
    c.increment("first", 1);
    c.increment("second", 2);
    // The first request never gets an answer; close is cut off after 1 s, before the second is sent.
    let err = c.close().await.unwrap_err();
    assert!(matches!(err, Error::CloseTimeout { datums_unconfirmed: 1, .. }), "{err}");
    assert_eq!(http.num_calls(), 1);
    assert_eq!(c.telemetry().datums_ambiguous, 1, "only the one sent");
    // The second was kept: the next dump sends it (and only it).
    let err = c.dump().await.unwrap_err();
    assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
    assert_eq!(http.num_calls(), 2, "the kept counter, alone");
    assert_eq!(c.telemetry().datums_ambiguous, 2);
}

/// Credentials that cannot be had while `down` is set (an expired SSO token, an STS outage).
#[derive(Debug)]
struct Flaky(Arc<AtomicBool>);

impl ProvideCredentials for Flaky {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(if self.0.load(SeqCst) {
            Err(CredentialsError::provider_error("the credentials service is down"))
        } else {
            Ok(Credentials::new("test", "test", None, None, "flaky"))
        })
    }
}

/// Counters on a client of `config` (its credentials and HTTP client, with no retries), in requests of one counter
/// each, open, holding `first`, `second` and `third`.
async fn three_counters_on_a_client(config: aws_sdk_cloudwatch::config::Builder) -> CloudWatchCounters {
    let config = config
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .retry_config(RetryConfig::disabled());
    let c = CloudWatchCounters::builder()
        .namespace("faults")
        .instance("test-host")
        .client(aws_sdk_cloudwatch::Client::from_conf(config.build()))
        .batch_size(1)
        .options(hour().telemetry(false))
        .build()
        .expect("valid settings");
    open_holding_three(c).await
}

/// `c`, open, holding `first`, `second` and `third` (1 each).
async fn open_holding_three(c: CloudWatchCounters) -> CloudWatchCounters {
    c.open().await.unwrap();
    for name in ["first", "second", "third"] {
        c.increment(name, 1);
    }
    c
}

#[tokio::test(start_paused = true)]
async fn a_request_that_fails_for_its_credentials_sent_nothing_and_keeps_the_dumps_data() {
    let (http, seen) = scripted(|_| None);
    let down = Arc::new(AtomicBool::new(true));
    let config = aws_sdk_cloudwatch::Config::builder().credentials_provider(Flaky(Arc::clone(&down)));
    let c = three_counters_on_a_client(config.http_client(http)).await;
    let err = c.dump().await.expect_err("no credentials");
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "nothing was sent: {err}");
    assert_eq!((seen.count(), c.telemetry().requests_ambiguous), (0, 0));
    assert_eq!(c.telemetry().requests_failed, 1, "the first request only: the rest is kept without trying");
    down.store(false, SeqCst);
    assert_eq!(c.dump().await.expect("credentials again").saved, 3, "the kept counters go out");
    assert_eq!(seen.count(), 3);
}

/// Counters through `http` (two attempts, 10 s apart) that recorded `calls` 3 and were closed with a 1 s bound:
/// the close is cut off during the wait before the retry, and reports no datum unconfirmed.
async fn closed_during_a_retry_wait(http: SharedHttpClient) -> CloudWatchCounters {
    let c = counters(http, retry_after_ten_seconds(), hour().close_timeout(Duration::from_secs(1)).telemetry(false));
    c.open().await.unwrap();
    c.increment("calls", 3);
    let err = c.close().await.unwrap_err();
    assert!(matches!(err, Error::CloseTimeout { datums_unconfirmed: 0, .. }), "{err}");
    c
}

#[tokio::test(start_paused = true)]
async fn close_cut_off_while_a_request_waits_to_retry_after_an_error_answer_keeps_its_data() {
    let (http, seen) = scripted(|n| (n == 0).then_some(("InternalServiceError", 503)));
    // The first attempt is answered 503; close is cut off during the 10 s wait before the retry.
    let c = closed_during_a_retry_wait(http).await;
    assert_eq!((seen.count(), c.telemetry().requests_ambiguous), (1, 0), "CloudWatch refused it: stored nothing");
    assert_eq!(c.dump().await.expect("the retry's answer is a success").saved, 1, "the kept counter goes out");
    assert_eq!(seen.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn close_cut_off_while_a_request_waits_to_retry_after_a_refused_connection_keeps_its_data() {
    // The first attempt's connection is refused (it was handed to the HTTP client, and no byte left); the
    // retry would reach the server.
    let (http, seen, attempts) = first_attempt(|| Intercepted::Refuse);
    let c = closed_during_a_retry_wait(http).await;
    assert_eq!((attempts.load(SeqCst), seen.count()), (1, 0), "one attempt, refused before the server saw it");
    assert_eq!(c.telemetry().requests_ambiguous, 0, "nothing left this machine");
    assert_eq!(c.dump().await.expect("the server answers now").saved, 1, "the kept counter goes out");
    assert_eq!(seen.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_operation_timeout_while_a_request_waits_to_retry_after_an_error_answer_keeps_its_data() {
    let (http, seen) = scripted(|n| (n == 0).then_some(("InternalServiceError", 503)));
    // The user's SDK configuration bounds the whole operation at 5 s; the retry after the 503 waits 10 s.
    let operation = TimeoutConfig::builder().operation_timeout(Duration::from_secs(5)).build();
    let sdk = sdk(http, retry_after_ten_seconds()).into_builder().timeout_config(operation).build();
    let c = counters_on(sdk, hour().telemetry(false));
    c.open().await.unwrap();
    c.increment("calls", 3);
    let err = c.dump().await.expect_err("the operation times out before the retry");
    assert_eq!(seen.count(), 1, "one attempt, answered 503: CloudWatch stored nothing");
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "{err}");
    assert_eq!(c.telemetry().datums_ambiguous, 0, "{err}");
    assert_eq!(count_of(&c, "calls"), Some(3), "kept for the next dump");
    assert_eq!(c.dump().await.expect("the server answers now").saved, 1, "the kept counter goes out");
    assert_eq!(seen.count(), 2);
}

/// Counters that send through `http` in requests of one counter each, with no retries, and whose `close` is
/// cut off after 1 s.
fn one_counter_a_request(http: SharedHttpClient, rollup: bool) -> CloudWatchCounters {
    one_counter_a_request_on(sdk(http, RetryConfig::disabled()), rollup)
}

/// [`one_counter_a_request`] through the SDK configuration `sdk`.
fn one_counter_a_request_on(sdk: SdkConfig, rollup: bool) -> CloudWatchCounters {
    CloudWatchCounters::builder()
        .namespace("faults")
        .instance("test-host")
        .region("us-east-1")
        .credentials("test", "test")
        .connect_timeout(Duration::from_secs(2))
        .batch_size(1)
        .rollup(rollup)
        .options(hour().close_timeout(Duration::from_secs(1)).telemetry(false))
        .sdk_config(sdk)
        .build()
        .unwrap()
}

/// A server that answers every request but the first attempt, which `how` fails on the way; what it saw, and
/// how many attempts were made.
fn first_attempt(how: fn() -> Intercepted) -> (SharedHttpClient, Seen, Arc<AtomicUsize>) {
    let (server, seen) = scripted(|_| None);
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    (gate(server, move |_| (counted.fetch_add(1, SeqCst) == 0).then(how)), seen, attempts)
}

/// [`one_counter_a_request`] without rollups, open, holding `first`, `second` and `third`.
async fn three_counters_a_request_each(http: SharedHttpClient) -> CloudWatchCounters {
    open_holding_three(one_counter_a_request(http, false)).await
}

#[tokio::test(start_paused = true)]
async fn after_a_request_that_timed_out_unconfirmed_the_rest_of_the_dump_is_kept_for_the_next() {
    // The first request hangs (it times out, sent and unconfirmed); every later one is answered at once.
    let never = NeverClient::new();
    let answered = Arc::new(AtomicUsize::new(0));
    let (seen, counted) = (never.clone(), Arc::clone(&answered));
    let http = gate(SharedHttpClient::new(never.clone()), move |_| {
        (seen.num_calls() > 0).then(|| {
            counted.fetch_add(1, SeqCst);
            Intercepted::Respond(cbor_response(None))
        })
    });
    let c = three_counters_a_request_each(http).await;
    let err = c.dump().await.expect_err("the first request timed out");
    assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
    let t = c.telemetry();
    assert_eq!((never.num_calls(), answered.load(SeqCst)), (1, 0), "nothing sent after the timeout");
    assert_eq!((t.requests_ambiguous, t.datums_ambiguous), (1, 1), "only the hung request is written off");
    assert_eq!(c.dump().await.expect("the endpoint answers again").saved, 2, "the two kept go out next");
    assert_eq!((never.num_calls(), answered.load(SeqCst)), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn after_a_connection_that_could_not_be_made_the_rest_of_the_dump_is_kept_for_the_next() {
    // Every connection is refused (the server never sees the request) until `down` is cleared.
    let (server, seen) = scripted(|_| None);
    let (down, refused) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicUsize::new(0)));
    let (gate_down, counted) = (Arc::clone(&down), Arc::clone(&refused));
    let http = gate(server, move |_| {
        gate_down.load(SeqCst).then(|| {
            counted.fetch_add(1, SeqCst);
            Intercepted::Refuse
        })
    });
    let c = three_counters_a_request_each(http).await;
    let err = c.dump().await.expect_err("no connection could be made");
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "{err}");
    assert_eq!((refused.load(SeqCst), seen.count()), (1, 0), "the first request only: the rest is not tried");
    assert_eq!((c.telemetry().requests_failed, c.telemetry().requests_ambiguous), (1, 0));
    down.store(false, SeqCst);
    assert_eq!(c.dump().await.expect("the endpoint answers now").saved, 3, "all three go out, once");
    assert_eq!((refused.load(SeqCst), seen.count()), (1, 3));
}

#[tokio::test(start_paused = true)]
async fn after_a_request_that_ran_out_of_time_waiting_to_retry_the_rest_of_the_dump_is_kept_for_the_next() {
    let (http, seen) = scripted(|n| (n == 0).then_some(("InternalServiceError", 503)));
    // The operation is bounded at 5 s; the retry after the first request's 503 would wait 10 s.
    let operation = TimeoutConfig::builder().operation_timeout(Duration::from_secs(5)).build();
    let sdk = sdk(http, retry_after_ten_seconds()).into_builder().timeout_config(operation).build();
    let c = open_holding_three(one_counter_a_request_on(sdk, false)).await;
    let start = Instant::now();
    let err = c.dump().await.expect_err("the first request runs out of time");
    assert_eq!(start.elapsed(), Duration::from_secs(5), "one operation's bound, not one a request: {err}");
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "{err}");
    assert_eq!(seen.count(), 1, "the first request's first attempt only");
    assert_eq!(c.dump().await.expect("the server answers now").saved, 3, "all three go out, once");
    assert_eq!(seen.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_dump_throttled_after_another_failure_is_throttled_and_keeps_the_rest() {
    // The first request is answered 500, the second throttled; the third is kept without being tried.
    let (http, seen) = scripted(|n| [("InternalServiceError", 500), ("Throttling", 400)].get(n).copied());
    let c = three_counters_a_request_each(http).await;
    let err = c.dump().await.expect_err("both requests failed");
    assert!(matches!(&err, Error::Save(e) if e.is_throttled()), "the dumps back off: {err}");
    assert_eq!(seen.count(), 2, "nothing sent after the throttling");
    assert_eq!(c.dump().await.expect("the server answers now").saved, 3, "all three were kept, and go out once");
    assert_eq!(seen.count(), 5);
}

#[tokio::test(start_paused = true)]
async fn counters_kept_without_being_tried_are_not_counted_until_they_are_built_to_be_sent() {
    // Every connection refused until `down` is cleared; three counters whose labels repeat a name, each counted
    // once in `dimensions_deduplicated` when it is built for a request.
    let (server, seen) = scripted(|_| None);
    let down = Arc::new(AtomicBool::new(true));
    let gate_down = Arc::clone(&down);
    let http = gate(server, move |_| gate_down.load(SeqCst).then_some(Intercepted::Refuse));
    let c = one_counter_a_request(http, false);
    c.open().await.unwrap();
    metrics::with_local_recorder(&c.recorder(), || {
        for name in ["first", "second", "third"] {
            metrics::counter!(name, "k" => "a", "k" => "b").increment(1);
        }
    });
    c.dump().await.expect_err("no connection could be made");
    assert_eq!(c.telemetry().dimensions_deduplicated, 1, "the one request tried");
    down.store(false, SeqCst);
    assert_eq!(c.dump().await.expect("the endpoint answers now").saved, 3);
    assert_eq!(seen.count(), 3);
    assert_eq!(c.telemetry().dimensions_deduplicated, 4, "that one again (it failed), and the two kept");
}

/// A user's interceptor that refuses the first request it sees, before it is transmitted (a check of its own).
#[derive(Debug, Default)]
struct RefuseFirst(AtomicUsize);

impl aws_sdk_cloudwatch::config::Intercept for RefuseFirst {
    fn name(&self) -> &'static str {
        "refuse-first"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_cloudwatch::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_cloudwatch::config::RuntimeComponents,
        _cfg: &mut aws_sdk_cloudwatch::config::ConfigBag,
    ) -> Result<(), aws_sdk_cloudwatch::error::BoxError> {
        if self.0.fetch_add(1, SeqCst) == 0 {
            Err("refused by the user's own check".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_a_users_interceptor_refused_does_not_hold_back_the_rest() {
    // Refused before sending, for the request's own sake: kept (not written off as maybe stored), and the rest of
    // the dump goes on.
    let (http, seen) = scripted(|_| None);
    let config = aws_sdk_cloudwatch::Config::builder()
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .interceptor(RefuseFirst::default());
    let c = three_counters_on_a_client(config.http_client(http)).await;
    let err = c.dump().await.expect_err("the first request was refused");
    assert!(err.to_string().contains("refused by the user's own check"), "{err}");
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "nothing of it left the machine: {err}");
    assert_eq!(c.telemetry().datums_ambiguous, 0);
    assert_eq!(seen.count(), 2, "the other two were sent");
    assert_eq!(c.dump().await.expect("the interceptor lets it through now").saved, 1, "the refused one, kept");
    assert_eq!(seen.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn after_a_connection_that_never_opened_the_rest_of_the_dump_is_kept_for_the_next() {
    // The SDK's real HTTP client, connecting to a loopback port whose connections never open: three requests
    // would wait `connect_timeout` each.
    let port = UnopenablePort::listen();
    let timeout = Duration::from_millis(1500);
    let c = unopenable_builder(&port, timeout).batch_size(1).options(hour().telemetry(false)).build().unwrap();
    let c = open_holding_three(c).await;
    let start = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(600), c.dump()).await.expect("no timeout applied").unwrap_err();
    assert_eq!(start.elapsed(), timeout, "one connect timeout, not one a request: {err}");
    assert!(matches!(&err, Error::Save(e) if !e.is_ambiguous()), "nothing was sent: {err}");
    assert_eq!(c.telemetry().requests_failed, 1, "the first request only");
    for name in ["first", "second", "third"] {
        assert_eq!(count_of(&c, name), Some(1), "{name} is kept for the next dump");
    }
}

#[tokio::test]
async fn after_a_request_whose_connection_broke_unconfirmed_the_rest_of_the_close_goes_on() {
    // The first request's connection is reset after it was sent; the endpoint answers every later one.
    let (http, seen, _) = first_attempt(|| Intercepted::Reset);
    let c = three_counters_a_request_each(http).await;
    let err = c.close().await.expect_err("the first request is unconfirmed");
    assert!(matches!(&err, Error::Save(e) if e.is_ambiguous()), "{err}");
    let t = c.telemetry();
    assert_eq!((seen.count(), t.requests_sent, t.datums_ambiguous), (2, 2, 1), "the other two delivered by the close");
}

#[tokio::test(start_paused = true)]
async fn close_cut_off_reports_as_unconfirmed_the_datums_in_flight_not_those_already_accepted() {
    // The first request is accepted, the second never answered.
    let http = NeverClient::answering_first(1);
    let c = one_counter_a_request(SharedHttpClient::new(http.clone()), false);
    c.open().await.unwrap();
    c.increment("first", 1);
    c.increment("second", 2);
    let err = c.close().await.unwrap_err();
    assert_eq!(http.num_calls(), 2);
    assert!(matches!(err, Error::CloseTimeout { datums_unconfirmed: 1, .. }), "{err}");
    let t = c.telemetry();
    assert_eq!((t.datums_sent, t.datums_ambiguous), (1, 1));

    // With the rollup, the one counter in flight is two datums (its own and the rollup's).
    let http = NeverClient::new();
    let c = one_counter_a_request(SharedHttpClient::new(http.clone()), true);
    c.open().await.unwrap();
    c.increment("calls", 1);
    let err = c.close().await.unwrap_err();
    assert!(matches!(err, Error::CloseTimeout { datums_unconfirmed: 2, .. }), "{err}");
    assert_eq!(c.telemetry().datums_ambiguous, 2);
}

#[tokio::test(start_paused = true)]
async fn close_cut_off_does_not_put_back_a_counter_the_save_skipped_so_it_is_counted_once() {
    let http = NeverClient::new();
    let c = one_counter_a_request(SharedHttpClient::new(http.clone()), false);
    c.open().await.unwrap();
    c.increment(&"n".repeat(300), 1); // past CloudWatch's 255 characters: skipped and counted
    c.increment("calls", 2);
    let err = c.close().await.unwrap_err();
    assert!(matches!(err, Error::CloseTimeout { datums_unconfirmed: 1, .. }), "{err}");
    assert_eq!((http.num_calls(), c.telemetry().skipped(SkipReason::MetricName)), (1, 1));
    // Nothing went back: the next dump has nothing to save, and counts nothing again.
    assert_eq!(c.dump().await.expect("nothing to send").saved, 0);
    assert_eq!((http.num_calls(), c.telemetry().skipped(SkipReason::MetricName)), (1, 1));
}
