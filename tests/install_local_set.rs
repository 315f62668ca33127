//! The `install` guard dropped at the end of a `LocalSet` driven on a multi-thread runtime (the shape for
//! `!Send` futures), where tokio forbids `block_in_place`: the drop closes the counters without a panic, and
//! what was recorded reaches CloudWatch. Its own test binary, because the guard installs the global recorder.

mod common;

use common::localstack::{self, statistics, unique_namespace};

#[test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
fn dropping_the_guard_in_a_local_set_on_a_multi_thread_runtime_flushes_without_a_panic() {
    let ns = unique_namespace("install-local-set");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let guard = localstack::builder(&ns, "local-set-host")
            .build()
            .expect("valid")
            .install_recorder()
            .await
            .expect("install");
        metrics::counter!("local_set.orders").increment(3);
        drop(guard); // waits for the flush, within options.close_timeout
    });
    let orders = runtime.block_on(statistics(
        &localstack::reader(),
        &ns,
        "local_set.orders",
        &[("InstanceID", "local-set-host")],
    ));
    assert_eq!(orders.sum(), Some(3.0));
}
