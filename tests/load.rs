//! Load: 8 threads hammer counters, stats, timings, metrics macros and spans while the counters dump to the local
//! CloudWatch in reset mode every 3 ms (or as soon as the server has answered the previous dump), with
//! percentiles off (pip's statistic sets) and on (values and counts). What CloudWatch holds afterwards must equal
//! what was recorded, exactly. Run by `scripts/test.sh`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloudwatch_counters::{CloudWatchCounters, Counters, CountersOptions};
use common::localstack::{self, statistics, unique_namespace};
use tracing_subscriber::layer::SubscriberExt;

const THREADS: usize = 8;
/// How long the threads hammer (the workload's length, not a limit on anything measured).
const RUN_FOR: Duration = Duration::from_secs(3);
/// How long the threads go on recording, at most, waiting for the dumps a run asks for to have completed.
const DUMPS_WITHIN: Duration = Duration::from_secs(60);

/// What one thread recorded.
#[derive(Default, Clone, Copy)]
struct Recorded {
    calls: u64,
    size_sum: u64,
    op_sum: u64,
    spans: u64,
}

fn hammer(counters: &CloudWatchCounters, stop: &AtomicBool) -> Recorded {
    let subscriber = tracing_subscriber::registry().with(counters.layer());
    let recorder = counters.recorder();
    let mut r = Recorded::default();
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            while !stop.load(Ordering::Relaxed) {
                let i = r.calls;
                counters.increment("load.calls", 1);
                counters.stats("load.size", (i % 10) as f64);
                counters.end_timing("load.op", (i % 5) as f64);
                metrics::counter!("load.macro_calls", "kind" => "a").increment(1);
                {
                    let _span = tracing::info_span!("work").entered();
                }
                r.calls += 1;
                r.size_sum += i % 10;
                r.op_sum += i % 5;
                r.spans += 1;
                if i % 256 == 0 {
                    // 8 threads on a 2-core machine: leave the dumps and the server some CPU.
                    std::thread::yield_now();
                }
            }
        });
    });
    r
}

/// Percentiles off, then on (one after the other: the machine has 2 cores). The local CloudWatch stores each of a
/// datum's samples as a row of its own, so dumps of values and counts take it longer and fewer of them complete
/// while the threads record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn eight_threads_with_dumps_every_few_milliseconds_lose_nothing() {
    run(false, 10).await;
    run(true, 2).await;
}

async fn run(percentiles: bool, min_dumps: u64) {
    let ns = unique_namespace("load");
    let options = CountersOptions::default()
        .interval(Duration::from_millis(3))
        .reset_timeout(Duration::from_nanos(1))
        .percentiles(percentiles);
    let counters = CloudWatchCounters::builder()
        .namespace(&ns)
        .instance("load-host")
        .region("us-east-1")
        .credentials("test", "test")
        .endpoint_url(localstack::endpoint())
        .connect_timeout(localstack::TIMEOUT)
        .options(options)
        .build()
        .expect("valid settings");
    let counters = Arc::new(counters);
    counters.open().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (counters, stop) = (Arc::clone(&counters), Arc::clone(&stop));
            std::thread::spawn(move || hammer(&counters, &stop))
        })
        .collect();
    // Record for RUN_FOR, and on until `min_dumps` requests have completed while the threads record (a loaded
    // 2-core machine can starve the local server), but never past DUMPS_WITHIN.
    let started = Instant::now();
    tokio::time::sleep(RUN_FOR).await;
    while counters.telemetry().requests_sent < min_dumps && started.elapsed() < DUMPS_WITHIN {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = Recorded::default();
    for t in threads {
        let r = t.join().expect("a recording thread panicked");
        total.calls += r.calls;
        total.size_sum += r.size_sum;
        total.op_sum += r.op_sum;
        total.spans += r.spans;
    }
    let ran = started.elapsed();
    let while_recording = counters.telemetry().requests_sent;
    counters.close().await.unwrap();
    let telemetry = counters.telemetry();
    println!(
        "{THREADS} threads, {ran:?}: {} iterations, {while_recording} PutMetricData requests while recording ({} in \
         all), {} datums, {} failed dumps",
        total.calls, telemetry.requests_sent, telemetry.datums_sent, telemetry.dumps_failed
    );
    // The timer asks for a dump every 3 ms; how many complete depends on how fast the server answers, so the
    // threads recorded until enough had (or DUMPS_WITHIN passed).
    assert!(while_recording >= min_dumps, "dumps ran while recording: {while_recording}");

    let reader = localstack::reader();
    let host = [("InstanceID", "load-host")];
    let n = total.calls as f64;
    let calls = statistics(&reader, &ns, "load.calls", &host).await;
    assert_eq!(calls.sum(), Some(n), "every increment arrived");
    let size = statistics(&reader, &ns, "load.size", &host).await;
    assert_eq!((size.sample_count(), size.sum()), (Some(n), Some(total.size_sum as f64)));
    let op = statistics(&reader, &ns, "load.op", &host).await;
    assert_eq!((op.sample_count(), op.sum()), (Some(n), Some(total.op_sum as f64)));
    let macro_calls = statistics(&reader, &ns, "load.macro_calls", &[host[0], ("kind", "a")]).await;
    assert_eq!(macro_calls.sum(), Some(n));
    let spans = statistics(&reader, &ns, "load.work.exec_time", &host).await;
    assert_eq!(spans.sample_count(), Some(total.spans as f64), "every span was timed once");
}
