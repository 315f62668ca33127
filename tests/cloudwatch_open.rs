//! Opening CloudWatchCounters: clear, retryable errors; no network needed.

use aws_config::{BehaviorVersion, SdkConfig};
use cloudwatch_counters::{CloudWatchCounters, ConfigParams, Error};

#[tokio::test]
async fn a_missing_namespace_fails_open_and_leaves_it_closed_then_open_can_be_retried() {
    let counters = CloudWatchCounters::builder()
        .sdk_config(SdkConfig::builder().behavior_version(BehaviorVersion::latest()).build())
        .build()
        .unwrap();
    let err = counters.open().await.unwrap_err();
    assert!(err.to_string().contains("source"), "{err}");
    assert!(!counters.is_open());
    // Retry after fixing the namespace: now the region is what is missing, and it says so.
    counters.configure(&ConfigParams::from_tuples([("source", "MyApp")])).unwrap();
    let err = counters.open().await.unwrap_err();
    assert!(matches!(err, Error::NoRegion) && err.to_string().contains("region"), "{err}");
    assert!(!counters.is_open());
}

#[tokio::test]
async fn a_reserved_namespace_is_refused() {
    let counters = CloudWatchCounters::builder().namespace("AWS/EC2").build().unwrap();
    let err = counters.open().await.unwrap_err();
    assert!(err.to_string().contains("AWS/"), "{err}");
}

#[tokio::test]
async fn errors_and_debug_output_never_show_the_secret_key() {
    let counters = CloudWatchCounters::builder().credentials("AKIDEXAMPLE", "wJalrXUtnFEMI-SECRET").build().unwrap();
    let debug = format!("{counters:?}");
    assert!(!debug.contains("wJalrXUtnFEMI-SECRET") && debug.contains("AKIDEXAMPLE"), "{debug}");
    let err = counters.open().await.unwrap_err();
    assert!(!format!("{err} {err:?}").contains("SECRET"));
}

#[tokio::test]
async fn dumping_before_open_keeps_the_data() {
    let counters = CloudWatchCounters::builder().namespace("MyApp").build().unwrap();
    cloudwatch_counters::Counters::increment(&counters, "calls", 1);
    let err = counters.dump().await.unwrap_err();
    assert!(err.to_string().contains("not open"), "{err}");
    assert_eq!(counters.get("calls", cloudwatch_counters::CounterType::Increment).count, Some(1));
}

#[tokio::test]
async fn a_failed_put_returns_the_error_counts_it_and_keeps_the_data() {
    // Nothing listens on port 1: every request fails to connect (loopback only, no server needed).
    let counters = CloudWatchCounters::builder()
        .namespace("MyApp")
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url("http://127.0.0.1:1")
        .connect_timeout(std::time::Duration::from_millis(500))
        .options(cloudwatch_counters::CountersOptions::default().reset_timeout(std::time::Duration::from_nanos(1)))
        .build()
        .unwrap();
    counters.open().await.unwrap();
    cloudwatch_counters::Counters::increment(&counters, "calls", 3);
    let err = counters.dump().await.unwrap_err();
    assert!(matches!(err, Error::Save(_)), "{err}");
    assert!(err.to_string().contains("PutMetricData failed"), "{err}");
    assert_eq!(counters.telemetry().requests_failed, 1);
    // Reset mode took the values for the dump; the failure merged them back.
    assert_eq!(counters.get("calls", cloudwatch_counters::CounterType::Increment).count, Some(3));
    // close() reports the failed flush and stays connected so it can be retried.
    assert!(counters.close().await.is_err());
}

/// `configure` reads the keys it is given over the settings in effect: those set through `counters()` (pip's
/// `set_interval`, `set_options`) too, which a key it is not given leaves alone.
#[test]
fn configure_keeps_what_was_set_through_counters_where_its_keys_are_not_given() {
    use std::time::Duration;
    let cw = CloudWatchCounters::new();
    cw.counters().set_interval(Duration::from_secs(60));
    cw.counters().set_reset_timeout(Duration::from_secs(120));
    let options = cw.counters().options().max_counters(77);
    cw.counters().set_options(&options).unwrap();
    cw.configure(&ConfigParams::from_tuples([("source", "MyService"), ("options.close_timeout", "5000")])).unwrap();
    assert_eq!(cw.counters().interval(), Duration::from_secs(60));
    assert_eq!(cw.counters().reset_timeout(), Duration::from_secs(120));
    let settings = cw.settings();
    assert_eq!(settings.counters.get_max_counters(), 77);
    assert_eq!(settings.counters.get_close_timeout(), Duration::from_secs(5));
    assert_eq!(settings.counters.get_interval(), Duration::from_secs(60));
}
