//! `install()`: one call opens the counters and makes them the process's `metrics` recorder and `tracing`
//! subscriber; closing the guard flushes what both recorded into CloudWatch. One test binary, because both are
//! process-wide.

mod common;

use cloudwatch_counters::Error;
use common::localstack::{self, statistics, unique_namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn install_records_macros_and_spans_and_the_guard_flushes_them() {
    let ns = unique_namespace("install");
    let builder = || localstack::builder(&ns, "install-host");
    let guard = builder().install().await.expect("install");
    for _ in 0..3 {
        metrics::counter!("installed.orders").increment(2);
        let _span = tracing::info_span!(target: "install_test", "handle").entered();
    }
    // A second install finds both globals taken, says which (the subscriber, checked first), and leaves the first
    // one working; so does a second `install_recorder`.
    let err = builder().install().await.unwrap_err();
    assert!(matches!(err, Error::AlreadyInstalled("tracing subscriber")), "{err}");
    let err = builder().build().expect("valid").install_recorder().await.unwrap_err();
    assert!(matches!(err, Error::AlreadyInstalled("metrics recorder")), "{err}");
    metrics::counter!("installed.orders").increment(1);

    let report = guard.close().await.expect("close flushes");
    assert!(report.saved >= 2, "{report:?}");
    let reader = localstack::reader();
    let dims = [("InstanceID", "install-host")];
    let orders = statistics(&reader, &ns, "installed.orders", &dims).await;
    assert_eq!(orders.sum(), Some(7.0));
    let spans = statistics(&reader, &ns, "install_test.handle.exec_time", &dims).await;
    assert_eq!(spans.sample_count(), Some(3.0));
}
