//! `install()` when a `tracing` subscriber is already set: it fails, says so, and leaves no `metrics` recorder
//! behind (one test binary, because both are process-wide).

use cloudwatch_counters::{CloudWatchCounters, Error};

#[tokio::test]
async fn an_install_that_finds_a_subscriber_set_installs_no_recorder() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry()).expect("the first subscriber");
    let err = CloudWatchCounters::builder()
        .namespace("InstallConflict")
        .region("us-east-1")
        .credentials("test", "test")
        // Never reached: the conflict is found before anything is sent.
        .endpoint_url("http://127.0.0.1:9")
        .install()
        .await
        .expect_err("a subscriber is already set");
    assert!(matches!(err, Error::AlreadyInstalled("tracing subscriber")), "{err}");
    assert!(metrics::set_global_recorder(metrics::NoopRecorder).is_ok(), "the failed install left no recorder set");
}
