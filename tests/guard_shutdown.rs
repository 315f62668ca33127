//! The `install` guard dropped with the task that held it, while its multi-thread runtime shuts down: the
//! guard's final flush stays bounded by `options.close_timeout` (the runtime no longer drives its timers). Its
//! own test binary, because the guard installs the global recorder.

mod common;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatch::config::SharedHttpClient;
use cloudwatch_counters::{CloudWatchCounters, Counters, CountersOptions};
use common::http::NeverClient;

#[test]
fn a_guard_dropped_while_its_runtime_shuts_down_closes_within_the_close_timeout() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let http = NeverClient::new();
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(http.clone()))
        .retry_config(RetryConfig::disabled())
        .build();
    let options = CountersOptions::default().interval(Duration::from_secs(3600)).close_timeout(Duration::from_secs(5));
    let guard = runtime
        .block_on(
            CloudWatchCounters::builder()
                .namespace("GuardShutdown")
                .region("us-east-1")
                .credentials("test", "test")
                .options(options)
                .sdk_config(sdk)
                .build()
                .expect("valid")
                .install_recorder(),
        )
        .expect("installed");
    guard.counters().increment("calls", 1);
    // The guard lives in a task: the runtime's shutdown drops it, on a worker.
    runtime.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(runtime);
        let _ = done.send(());
    });
    dropped.recv_timeout(Duration::from_secs(30)).expect("the runtime's drop returned: the guard's close was bounded");
    assert_eq!(http.num_calls(), 1, "the final flush was attempted");
}
