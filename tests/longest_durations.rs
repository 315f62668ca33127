//! The longest durations a user may pass (`Duration::MAX` for "never" or "no bound") work as such: no panic in the
//! caller's thread or in the counters' own tasks. Its own test binary, because it counts every panic of the process.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use cloudwatch_counters::{CachedCounters, Counters, CountersOptions, EmfCounters};
use common::{RecordingSink, SharedWriter};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn calls_saved(sink: &RecordingSink) -> i64 {
    sink.saves().iter().filter_map(|save| save.iter().find(|c| c.name() == "calls")?.count).sum()
}

#[test]
fn duration_max_everywhere_means_no_bound_with_no_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, SeqCst);
        report(info);
    }));
    let options = CountersOptions::default()
        .interval(Duration::MAX)
        .reset_timeout(Duration::MAX)
        .idle_timeout(Duration::MAX)
        .close_timeout(Duration::MAX)
        .telemetry(false);

    // Async, on a runtime: open (the interval task waits for its phase), dump, close.
    let sink = RecordingSink::default();
    let counters = CachedCounters::new(sink.clone(), options.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        counters.open().await.expect("open");
        counters.increment("calls", 2);
        counters.dump().await.expect("dump");
        counters.increment("calls", 3);
        counters.close().await.expect("close");
    });
    drop(counters);
    drop(runtime);
    assert_eq!(calls_saved(&sink), 5);

    // Blocking, on a thread of their own, then dropped open (the drop's close is bounded by the same timeout).
    let sink = RecordingSink::default();
    let counters = CachedCounters::new(sink.clone(), options.clone());
    counters.open_blocking().expect("open");
    counters.increment("calls", 4);
    counters.dump_blocking().expect("dump");
    counters.increment("calls", 6);
    drop(counters);
    assert_eq!(calls_saved(&sink), 10, "the drop flushed the rest");

    // EMF, blocking: its flush and close bound their waits by the same timeout.
    let out = SharedWriter::default();
    let emf = EmfCounters::builder().namespace("Longest").writer(out.clone()).options(options).build().unwrap();
    emf.open_blocking().expect("open");
    emf.increment("calls", 1);
    emf.flush_blocking().expect("flush");
    emf.increment("calls", 1);
    emf.close_blocking().expect("close");
    assert_eq!(out.text().lines().filter(|line| line.contains("\"calls\"")).count(), 2, "{}", out.text());

    assert_eq!(PANICS.load(SeqCst), 0, "no panic, in any thread");
}
