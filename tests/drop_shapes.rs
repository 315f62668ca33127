//! The last owner's drop in the runtime shapes where tokio refuses to block or a runtime stops right after: no
//! panic, flushed where the drop can wait, and warned about (never silently lost) where it cannot.

mod common;

use std::time::Duration;

use cloudwatch_counters::{CachedCounters, Counter, Counters, CountersOptions, EmfCounters, SaveFuture, Sink};
use common::{capture_logs, RecordingSink, SharedWriter};

fn hourly(sink: &RecordingSink) -> CachedCounters {
    let options = CountersOptions::default().interval(Duration::from_secs(3600)).telemetry(false);
    CachedCounters::new(sink.clone(), options.close_timeout(Duration::from_secs(5)))
}

fn calls_saved(sink: &RecordingSink) -> i64 {
    sink.saves().iter().filter_map(|save| save.iter().find(|c| c.name() == "calls")?.count).sum()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn dropped_in_a_local_set_task_on_a_multi_thread_runtime_they_flush_without_a_panic() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    let local = tokio::task::LocalSet::new();
    local.block_on(&multi_thread(), async move {
        counters.open().await.unwrap();
        counters.increment("calls", 3);
        // tokio panics at `block_in_place` here: the drop must not call it.
        tokio::task::spawn_local(async move { drop(counters) }).await.expect("the drop did not panic");
    });
    assert_eq!(calls_saved(&sink), 3, "flushed once the drop returned");
}

#[test]
fn close_blocking_in_a_local_set_task_on_a_multi_thread_runtime_closes_without_a_panic() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    let local = tokio::task::LocalSet::new();
    let closed = local.block_on(&multi_thread(), async move {
        counters.open().await.unwrap();
        counters.increment("calls", 3);
        tokio::task::spawn_local(async move { counters.close_blocking().map(|report| report.saved) }).await
    });
    assert_eq!(closed.expect("no panic").expect("closed"), 1);
    assert_eq!(calls_saved(&sink), 3);
}

#[test]
fn dropped_in_a_current_thread_task_with_a_multi_thread_handle_entered_they_flush_without_a_panic() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    let runtime = multi_thread();
    runtime.block_on(counters.open()).unwrap();
    counters.increment("calls", 3);
    let handle = runtime.handle().clone();
    current_thread().block_on(async move {
        let dropping = tokio::spawn(async move {
            let _entered = handle.enter();
            drop(counters);
        });
        dropping.await.expect("the drop did not panic");
    });
    assert_eq!(calls_saved(&sink), 3);
}

/// The end of `#[tokio::main(flavor = "current_thread")]`: open counters holding 3 calls (dumped first, or not)
/// dropped as the body's last statement, then the runtime ends, so the drop's close never gets to run. What the
/// sink saved, and what was logged.
fn current_thread_main_dropping_counters(dump_first: bool) -> (i64, String) {
    let (_capture, logs) = capture_logs();
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    let runtime = current_thread();
    runtime.block_on(async move {
        counters.open().await.unwrap();
        counters.increment("calls", 3);
        if dump_first {
            counters.dump().await.expect("dumped");
        }
        drop(counters);
    });
    drop(runtime);
    (calls_saved(&sink), logs.text())
}

#[test]
fn a_current_thread_runtime_that_ends_right_after_the_drop_warns_that_the_values_are_lost() {
    let (saved, logs) = current_thread_main_dropping_counters(false);
    assert_eq!(saved, 0);
    assert!(logs.contains("these values are lost"), "{logs}");
    assert!(!logs.contains("on a thread of their own"), "counters nobody owns do not go on dumping: {logs}");
}

#[test]
fn a_current_thread_runtime_that_ends_after_everything_was_dumped_warns_of_nothing() {
    let (saved, logs) = current_thread_main_dropping_counters(true);
    assert_eq!(saved, 3);
    assert!(!logs.contains("lost"), "nothing was left to save: {logs}");
}

/// The sum of the `calls` values in EMF documents.
fn emf_calls(out: &SharedWriter) -> f64 {
    let text = out.text();
    let documents = text.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok());
    documents.filter_map(|document| document.get("calls")?.as_f64()).sum()
}

#[test]
fn emf_counters_dropped_open_in_a_current_thread_runtime_never_lose_the_race_with_their_own_interval_dump() {
    let (_capture, logs) = capture_logs();
    let out = SharedWriter::default();
    let runtime = current_thread();
    let rounds = 1000;
    for _ in 0..rounds {
        // A dump every millisecond on the counters' own thread, racing the drop's close in place.
        let options = CountersOptions::default().interval(Duration::from_millis(1)).telemetry(false);
        let counters = EmfCounters::builder().namespace("Drop").writer(out.clone()).options(options).build().unwrap();
        counters.open_blocking().unwrap();
        for _ in 0..20 {
            counters.increment("calls", 1);
            std::thread::sleep(Duration::from_micros(100));
        }
        runtime.block_on(async move { drop(counters) });
    }
    assert_eq!(emf_calls(&out), f64::from(rounds * 20), "{}", logs.text());
    assert!(!logs.text().contains("lost"), "{}", logs.text());
}

#[test]
fn emf_counters_dropped_open_in_a_current_thread_runtime_write_their_documents_right_there() {
    let out = SharedWriter::default();
    let runtime = current_thread();
    runtime.block_on(async {
        let options = CountersOptions::default().interval(Duration::from_secs(3600)).telemetry(false);
        let counters = EmfCounters::builder().namespace("Drop").writer(out.clone()).options(options).build().unwrap();
        counters.open().await.unwrap();
        counters.increment("calls", 3);
        drop(counters);
    });
    drop(runtime);
    let documents = out.text().lines().filter(|line| line.contains("\"calls\"")).count();
    assert_eq!(documents, 1, "{}", out.text());
}

/// A sink whose saves take a while, saying when each starts.
struct Slow(RecordingSink, tokio::sync::mpsc::UnboundedSender<()>);

impl Sink for Slow {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        let _ = self.1.send(());
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            self.0.save(counters).await
        })
    }
}

/// A sink whose saves wait until the test lets them through (a permit of the semaphore), saying when each starts.
struct Gated(RecordingSink, tokio::sync::mpsc::UnboundedSender<()>, std::sync::Arc<tokio::sync::Semaphore>);

impl Sink for Gated {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        let _ = self.1.send(());
        Box::pin(async move {
            let _let_through = self.2.acquire().await;
            self.0.save(counters).await
        })
    }
}

/// Which of the interval task and the counters' last holder a current-thread runtime's shutdown drops first.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dropped {
    IntervalTaskFirst,
    HolderFirst,
}

/// Spawns empty tasks on the current runtime until the last one's id is `residue` modulo 4. A current-thread
/// runtime's shutdown drops its tasks by their id's residue modulo 4 (its task list's shard), then oldest first:
/// this sets the residue the next task spawned likely gets (other tests spawn tasks at the same time).
fn spend_task_ids_to(residue: u64) {
    for _ in 0..64 {
        let id: u64 = tokio::spawn(async {}).id().to_string().parse().expect("a task id is a number");
        if id % 4 == residue {
            return;
        }
    }
}

/// Counters through a slow sink (saves of 500 ms) opened in a current-thread runtime, holding 3 calls (dumped on
/// that runtime first, or not), then 4 more, whose last owner is a task: the runtime ends, dropping its tasks,
/// the interval task and the holder in the `order` asked for (the interval task, dropped first, goes on on a
/// thread of our own). What the sink saved once the runtime is gone, and what was logged. Tried again (up to 20
/// times) while other tests' tasks upset the order.
fn held_by_a_task_as_a_current_thread_runtime_ends(dump_first: bool, order: Dropped) -> (i64, String) {
    for _ in 0..20 {
        let (_capture, logs) = capture_logs();
        let sink = RecordingSink::default();
        let (started, _saves) = tokio::sync::mpsc::unbounded_channel();
        let counters = CachedCounters::new(Slow(sink.clone(), started), CountersOptions::default().telemetry(false));
        let runtime = current_thread();
        runtime.block_on(async move {
            spend_task_ids_to(0);
            counters.open().await.unwrap(); // the interval task: 1 modulo 4
            counters.increment("calls", 3);
            if dump_first {
                counters.dump().await.expect("dumped");
            }
            counters.increment("calls", 4);
            spend_task_ids_to(if order == Dropped::HolderFirst { 3 } else { 1 });
            drop(tokio::spawn(async move {
                let _held = counters;
                std::future::pending::<()>().await;
            }));
            tokio::task::yield_now().await;
        });
        drop(runtime);
        let text = logs.text();
        let moved = text.contains("they now dump every interval on a thread of their own");
        if moved == (order == Dropped::IntervalTaskFirst) {
            return (calls_saved(&sink), text);
        }
    }
    panic!("the runtime never dropped its tasks in the order {order:?}");
}

#[test]
fn counters_a_task_holds_when_a_current_thread_runtime_ends_are_flushed_before_it_is_gone() {
    for order in [Dropped::IntervalTaskFirst, Dropped::HolderFirst] {
        let (saved, logs) = held_by_a_task_as_a_current_thread_runtime_ends(false, order);
        // The program could end here: the drop waited for the close on that thread.
        assert_eq!(saved, 7, "{order:?}: {logs}");
        assert!(!logs.contains("lost"), "{order:?}: {logs}");
    }
}

#[test]
fn counters_a_task_holds_after_dumping_on_an_ending_current_thread_runtime_warn_that_the_close_may_be_lost() {
    // A dump ran on the runtime: the sink may keep work there (the AWS SDK's pooled connections), which a drop
    // that blocked the runtime's only thread would wait on in vain. The drop does not wait, and says so.
    for order in [Dropped::IntervalTaskFirst, Dropped::HolderFirst] {
        let (_, logs) = held_by_a_task_as_a_current_thread_runtime_ends(true, order);
        assert_eq!(logs.matches("is lost if the program ends first").count(), 1, "{order:?}: {logs}");
        assert!(!logs.contains("the runtime stopped before the flush finished"), "{order:?}: {logs}");
    }
}

#[test]
fn counters_dropped_after_a_close_the_caller_gave_up_on_warn_that_the_values_are_lost() {
    let (_capture, logs) = capture_logs();
    let sink = RecordingSink::default();
    let (started, mut saves) = tokio::sync::mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let gated = Gated(sink.clone(), started, std::sync::Arc::clone(&gate));
    let counters = CachedCounters::new(gated, CountersOptions::default().telemetry(false));
    multi_thread().block_on(async move {
        counters.open().await.unwrap();
        counters.increment("calls", 3);
        let dumping = counters.clone();
        let dump = tokio::spawn(async move { dumping.dump().await.map(|report| report.saved) });
        tokio::time::timeout(Duration::from_secs(30), saves.recv()).await.expect("the dump started saving");
        // The close waits for that dump before its own: the caller gives up first, with 4 not saved.
        counters.increment("calls", 4);
        let closed = tokio::time::timeout(Duration::from_millis(100), counters.close()).await;
        assert!(closed.is_err(), "the caller gave up on the close");
        gate.add_permits(1);
        assert_eq!(dump.await.unwrap().expect("dumped"), 1);
        drop(counters);
    });
    assert_eq!(calls_saved(&sink), 3);
    assert_eq!(logs.lines_with("their close() failed or was cancelled"), 1, "{}", logs.text());
}

/// Counters opened on their own thread holding 3 calls and a gauge's level, closed (through a sink that fails,
/// or not) and dropped: what they logged.
fn closed_then_dropped(sink: &RecordingSink, close_fails: bool) -> String {
    let (_capture, logs) = capture_logs();
    let counters = hourly(sink);
    counters.open_blocking().unwrap();
    counters.increment("calls", 3);
    counters.last("level", 2.0); // a gauge's level is published again at every dump: never a loss
    sink.set_failing(close_fails);
    assert_eq!(counters.close_blocking().is_err(), close_fails);
    drop(counters);
    logs.text()
}

#[test]
fn counters_dropped_after_a_failed_close_warn_that_the_values_are_lost() {
    let logs = closed_then_dropped(&RecordingSink::default(), true);
    assert_eq!(logs.lines().filter(|line| line.contains("their close() failed or was cancelled")).count(), 1, "{logs}");
}

#[test]
fn counters_dropped_after_a_clean_close_warn_of_nothing() {
    let sink = RecordingSink::default();
    let logs = closed_then_dropped(&sink, false);
    assert_eq!(calls_saved(&sink), 3);
    assert!(!logs.contains("lost"), "{logs}");
}

#[test]
fn dropped_in_a_task_on_workers_named_by_the_user_they_flush_without_a_panic() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("service-worker")
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        counters.open().await.unwrap();
        counters.increment("calls", 3);
        tokio::spawn(async move { drop(counters) }).await.expect("the drop did not panic");
    });
    assert_eq!(calls_saved(&sink), 3, "flushed once the drop returned");
}
