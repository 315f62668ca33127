//! Outage: a local CloudWatch of the test's own (on its own port, so other tests are not disturbed) is stopped
//! in the middle of a run and started again. Recording never blocks, `dump()` reports the error, and once the
//! server is back the next tick delivers everything recorded meanwhile, exactly. While its connections are
//! refused, a dump tries its first request only and keeps the rest. Run by `scripts/test.sh`.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use cloudwatch_counters::Counters;
use common::localstack::{self, unique_namespace};

/// A LocalStack started with `scripts/localstack.sh` on a free port; stopped when dropped.
struct Server {
    port: u16,
}

impl Server {
    fn script(&self, command: &str) -> std::process::Output {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/localstack.sh");
        let out = Command::new(script).arg(command).env("LOCALSTACK_PORT", self.port.to_string()).output().unwrap();
        assert!(out.status.success(), "localstack.sh {command}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn start(&self) -> String {
        let out = self.script("start");
        String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_owned()
    }

    fn stop(&self) {
        self.script("stop");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The sum of everything put for `metric` so far, or `None` before anything arrived.
async fn sum(client: &aws_sdk_cloudwatch::Client, ns: &str, metric: &str) -> Option<(f64, f64)> {
    let points = localstack::datapoints(client, ns, metric, &[("InstanceID", "outage-host")]).await.ok()?;
    let p = points.first()?;
    Some((p.sample_count()?, p.sum()?))
}

/// Waits (polling, up to a minute) until `metric`'s sum is `want`; returns (sample count, sum) as they are last.
async fn wait_for(client: &aws_sdk_cloudwatch::Client, ns: &str, metric: &str, want: f64) -> Option<(f64, f64)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = sum(client, ns, metric).await;
        if got.is_some_and(|(_, sum)| sum == want) || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn an_outage_loses_nothing_and_the_next_tick_delivers_it_all() {
    let server = Server { port: free_port() };
    let endpoint = tokio::task::block_in_place(|| server.start());
    let reader = localstack::reader_at(&endpoint);
    let ns = unique_namespace("outage");
    // A request a datum: a dump is several requests (the telemetry's datums too).
    let counters = localstack::reset_mode_builder(&ns, "outage-host", &endpoint, Duration::from_millis(200))
        .batch_size(1)
        .build()
        .unwrap();
    counters.open().await.unwrap();

    // Before: delivered on the next tick.
    counters.increment("orders", 10);
    counters.stats("latency", 1.0);
    assert_eq!(wait_for(&reader, &ns, "orders", 10.0).await, Some((1.0, 10.0)));

    // The server goes away: recording goes on, dumps report the error and keep everything.
    tokio::task::block_in_place(|| server.stop());
    let before = counters.telemetry();
    let failed_before = before.dumps_failed;
    counters.increment("orders", 5);
    counters.stats("latency", 4.0);
    let mut recorded = 5;
    let err = counters.dump().await.expect_err("the server is down");
    println!("dump during the outage: {err}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while counters.telemetry().dumps_failed < failed_before + 3 {
        assert!(tokio::time::Instant::now() < deadline, "the timer's dumps did not fail (or run) during the outage");
        counters.increment("orders", 1); // recording goes on while the timer's dumps fail
        recorded += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Refused connections: each failed dump tried its first request only and kept the rest without trying. A
    // dump under way at either end may add one more request (one whose connection the stop broke, one whose
    // dump has not ended yet).
    let during = counters.telemetry();
    let (dumps, requests) = (during.dumps_failed - failed_before, during.requests_failed - before.requests_failed);
    assert!(requests <= dumps + 2, "{requests} failed requests in {dumps} failed dumps");
    counters.increment("orders", 7);
    counters.stats("latency", 5.0);
    recorded += 7;
    let extra = f64::from(recorded);

    // The server is back (empty: a restarted LocalStack keeps nothing). The next tick delivers it all.
    tokio::task::block_in_place(|| server.start());
    let orders = wait_for(&reader, &ns, "orders", extra).await.map(|(_, sum)| sum);
    assert_eq!(orders, Some(extra), "every increment since the outage began");
    let latency = wait_for(&reader, &ns, "latency", 9.0).await;
    assert_eq!(latency, Some((2.0, 9.0)), "both samples of the outage, none from before it");
    counters.close().await.unwrap();
    let after_close = sum(&reader, &ns, "orders").await.map(|(_, sum)| sum);
    assert_eq!(after_close, Some(extra), "nothing sent twice");
    let t = counters.telemetry();
    println!(
        "outage: {} failed dumps, {} failed requests; delivered {extra} orders and 2 latency samples after it",
        t.dumps_failed - failed_before,
        t.requests_failed
    );
}
