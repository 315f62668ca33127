//! The `install` guard dropped at the end of a multi-thread runtime's code, as `let _guard = ...` in `main`
//! leaves it: the drop closes the counters on a helper thread and waits, and what was recorded reaches
//! CloudWatch. Its own test binary, because the guard installs the global recorder.

mod common;

use common::localstack::{self, statistics, unique_namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn dropping_the_guard_in_a_multi_thread_runtime_flushes_what_was_recorded() {
    let ns = unique_namespace("install-drop");
    let guard =
        localstack::builder(&ns, "drop-host").build().expect("valid").install_recorder().await.expect("install");
    metrics::counter!("dropped.orders").increment(3);
    drop(guard); // waits for the flush, within options.close_timeout
    let orders = statistics(&localstack::reader(), &ns, "dropped.orders", &[("InstanceID", "drop-host")]).await;
    assert_eq!(orders.sum(), Some(3.0));
}
