//! The `install` guard dropped at the end of a multi-thread runtime's code, as `let _guard = ...` in `main`
//! leaves it: the drop closes the counters on a helper thread and waits, and what was recorded reaches
//! CloudWatch. Its own test binary, because the guard installs the global recorder.

mod common;

use std::time::Duration;

use cloudwatch_counters::{CloudWatchCounters, CountersOptions};
use common::localstack::{self, statistics, unique_namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn dropping_the_guard_in_a_multi_thread_runtime_flushes_what_was_recorded() {
    let ns = unique_namespace("install-drop");
    let guard = CloudWatchCounters::builder()
        .namespace(ns.clone())
        .instance("drop-host")
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url(localstack::endpoint())
        .options(CountersOptions::default().interval(Duration::from_secs(3600)))
        .build()
        .expect("valid")
        .install_recorder()
        .await
        .expect("install");
    metrics::counter!("dropped.orders").increment(3);
    drop(guard); // waits for the flush, within options.close_timeout
    let orders = statistics(&localstack::reader(), &ns, "dropped.orders", &[("InstanceID", "drop-host")]).await;
    assert_eq!(orders.sum(), Some(3.0));
}
