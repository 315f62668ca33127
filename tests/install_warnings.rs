//! `install()` sets the only subscriber, so nothing else would show the crate's warnings: it writes them to
//! standard error. The program under test is this test binary run again as a child process (its own globals),
//! whose standard error the test reads.

use std::process::Command;
use std::time::Duration;

use cloudwatch_counters::{CloudWatchCounters, CountersOptions};

/// Set in the child process: run the program, not the test.
const CHILD: &str = "CLOUDWATCH_COUNTERS_INSTALL_WARNINGS_CHILD";

/// The child: installs counters that publish nowhere (a closed loopback port), records a value CloudWatch
/// cannot take, and closes, which warns about the refused value.
fn child() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let options =
            CountersOptions::default().interval(Duration::from_secs(3600)).close_timeout(Duration::from_secs(2));
        let guard = CloudWatchCounters::builder()
            .namespace("install-warnings")
            .region("us-east-1")
            .credentials("test", "test")
            .endpoint_url("http://127.0.0.1:1")
            .options(options)
            .install()
            .await
            .expect("install");
        metrics::histogram!("latency").record(f64::NAN);
        tracing::warn!(target: "some_other_crate", "not ours: not shown");
        let _ = guard.close().await; // the port refuses: the dump fails, after warning about the NaN
    });
}

#[test]
fn install_writes_the_crates_own_warnings_to_standard_error_and_nothing_else() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "install_writes_the_crates_own_warnings_to_standard_error_and_nothing_else", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .expect("the child ran");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|line| line.contains("WARN")).collect();
    assert!(
        warnings.iter().any(|line| line.contains("cloudwatch_counters") && line.contains("not finite")),
        "the refused value's warning: {stderr}"
    );
    assert!(!stderr.contains("not ours"), "another crate's events are left to the application: {stderr}");
}
