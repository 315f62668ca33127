//! Every way a program holds the counters: no runtime at all, a runtime that is not driven, a runtime that shuts
//! down, a close in another runtime, `spawn_blocking`, and the root future of a runtime. In each the data recorded
//! reaches the sink exactly once, and no call hangs.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use cloudwatch_counters::{CachedCounters, Counters, CountersOptions, Error};
use common::{find, RecordingSink};

/// The bound on any one wait in these tests (the close timeout is 2 s: a close that works is far quicker).
const LIMIT: Duration = Duration::from_secs(10);

/// Counters with a recording sink, dumping every `interval`, closing within 2 s.
fn counters(interval: Duration) -> (CachedCounters, RecordingSink) {
    let sink = RecordingSink::default();
    let options = CountersOptions::default().interval(interval).close_timeout(Duration::from_secs(2));
    (CachedCounters::new(sink.clone(), options), sink)
}

/// Counters whose interval never comes within a test: only `dump` and `close` save.
fn hourly() -> (CachedCounters, RecordingSink) {
    counters(Duration::from_secs(3600))
}

/// The sum of the counts of `name` over every save of `sink`.
fn sent(sink: &RecordingSink, name: &str) -> i64 {
    sink.saves().iter().flatten().filter(|c| c.name() == name).filter_map(|c| c.count).sum()
}

/// Runs `f` on a plain thread (no runtime) and returns its result, failing if it takes longer than [`LIMIT`].
fn on_plain_thread<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIMIT).unwrap_or_else(|_| panic!("{what} did not return within {LIMIT:?}"))
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn without_any_runtime_counters_close_reopen_on_a_new_thread_and_dump_every_interval_again() {
    let (c, sink) = counters(Duration::from_millis(50));
    c.open_blocking().unwrap();
    c.increment("calls", 1);
    let closing = c.clone();
    on_plain_thread("close_blocking", move || closing.close_blocking()).unwrap();
    assert!(!c.is_open());
    assert_eq!(sent(&sink, "calls"), 1, "the close flushed the first increment");

    c.open_blocking().unwrap();
    assert!(c.is_open(), "open after close_blocking starts a new thread of our own");
    let before = sink.saves().len();
    c.increment("calls", 2);
    sink.wait_for_saves_blocking(before + 1, LIMIT); // the interval dump, on the new thread
    assert_eq!(sent(&sink, "calls"), 3, "the interval dump sent the second increment");
    c.increment("calls", 4);
    let closing = c.clone();
    on_plain_thread("close_blocking", move || closing.close_blocking()).unwrap();
    assert!(!c.is_open());
    assert_eq!(sent(&sink, "calls"), 7, "each increment saved exactly once across all saves");
}

#[test]
fn after_a_blocking_close_counters_reopen_in_a_runtime_and_dump_there() {
    let (c, sink) = counters(Duration::from_millis(50));
    c.open_blocking().unwrap();
    c.increment("calls", 1);
    let closing = c.clone();
    on_plain_thread("close_blocking", move || closing.close_blocking()).unwrap();
    assert_eq!(sent(&sink, "calls"), 1);

    // Our own runtime thread is stopped; the reopen happens in a runtime made after the close.
    let rt = current_thread_runtime();
    rt.block_on(async {
        c.open().await.unwrap();
        assert!(c.is_open());
        let before = sink.saves().len();
        c.increment("calls", 2);
        tokio::time::timeout(LIMIT, sink.wait_for_saves(before + 1)).await.expect("an interval dump ran");
        assert_eq!(sent(&sink, "calls"), 3);
        c.increment("calls", 4);
        tokio::time::timeout(LIMIT, c.close()).await.expect("close returned").unwrap();
    });
    assert!(!c.is_open());
    assert_eq!(sent(&sink, "calls"), 7, "each increment saved exactly once across all saves");
}

#[test]
fn close_blocking_returns_when_the_runtime_the_counters_were_opened_in_is_alive_but_not_driven() {
    let (c, sink) = hourly();
    let rt = current_thread_runtime();
    rt.block_on(c.open()).unwrap();
    // `rt` stays alive but nothing drives it again: the interval task spawned there never runs.
    c.increment("calls", 3);
    let closing = c.clone();
    let report = on_plain_thread("close_blocking", move || closing.close_blocking());
    assert!(report.is_ok(), "{report:?}");
    assert!(!c.is_open());
    assert_eq!(find(&sink.last_save(), "calls").count, Some(3));
    assert_eq!(sent(&sink, "calls"), 3);
    drop(rt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_thread_counters_dropped_inside_a_multi_thread_runtime_flush_on_their_thread() {
    let (c, sink) = hourly();
    let opening = c.clone();
    // Opened where there is no runtime: the counters run their own thread.
    on_plain_thread("open_blocking", move || opening.open_blocking()).unwrap();
    c.increment("calls", 3);
    let recorder = c.recorder();
    drop(c);
    assert!(sink.saves().is_empty(), "the recorder still holds the counters");
    drop(recorder); // the last owner, dropped in async code
    tokio::time::timeout(LIMIT, sink.wait_for_saves(1)).await.expect("the drop flushed");
    assert_eq!(find(&sink.last_save(), "calls").count, Some(3));
}

#[test]
fn own_thread_counters_dropped_in_a_runtime_that_then_stops_still_flush() {
    let (c, sink) = hourly();
    c.open_blocking().unwrap(); // no runtime here: the counters run their own thread
    c.increment("calls", 5);
    let rt = current_thread_runtime();
    rt.block_on(async move { drop(c) });
    drop(rt); // the flush must not need the runtime the drop happened in
    sink.wait_for_saves_blocking(1, LIMIT);
    assert_eq!(find(&sink.last_save(), "calls").count, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_blocking_and_close_blocking_work_inside_spawn_blocking() {
    for own_thread in [false, true] {
        let (c, sink) = hourly();
        if own_thread {
            let opening = c.clone();
            on_plain_thread("open_blocking", move || opening.open_blocking()).unwrap();
        } else {
            c.open().await.unwrap(); // the interval task runs on this runtime
        }
        let blocking = c.clone();
        let calls = tokio::task::spawn_blocking(move || {
            blocking.increment("calls", 2);
            let dumped = blocking.dump_blocking();
            blocking.increment("calls", 3);
            let closed = blocking.close_blocking();
            (dumped, closed)
        });
        let (dumped, closed) = tokio::time::timeout(LIMIT, calls).await.expect("the blocking calls returned").unwrap();
        assert!(dumped.is_ok(), "own thread: {own_thread}: {dumped:?}");
        assert!(closed.is_ok(), "own thread: {own_thread}: {closed:?}");
        assert!(!c.is_open());
        let saves = sink.saves();
        assert_eq!(saves.len(), 2, "own thread: {own_thread}: one dump, one close flush: {saves:?}");
        assert_eq!(find(&saves[0], "calls").count, Some(2), "own thread: {own_thread}");
        assert_eq!(find(&saves[1], "calls").count, Some(3), "own thread: {own_thread}");
    }
}

/// Opens counters in runtime A, records across an interval dump there, then closes them in runtime B, with A
/// shut down first or still running.
fn close_in_another_runtime(shut_down_a_first: bool) {
    let (c, sink) = counters(Duration::from_millis(50));
    let a = multi_thread_runtime();
    a.block_on(c.open()).unwrap();
    c.increment("calls", 1);
    sink.wait_for_saves_blocking(1, LIMIT); // the interval task runs on A
    c.increment("calls", 2);
    let a = if shut_down_a_first {
        drop(a); // the interval task is gone
        None
    } else {
        Some(a)
    };
    let b = current_thread_runtime();
    let report = b.block_on(async { tokio::time::timeout(LIMIT, c.close()).await.expect("close returned") });
    assert!(report.is_ok(), "{report:?}");
    assert!(!c.is_open());
    assert_eq!(sent(&sink, "calls"), 3, "each increment saved exactly once");
    if let Some(a) = a {
        let after_close = sink.saves().len();
        // A still runs: a timer that survived the close would dump this within a few intervals.
        c.increment("calls", 4);
        a.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
        assert_eq!(sink.saves().len(), after_close, "no dump after close");
    }
}

#[test]
fn counters_opened_in_a_runtime_that_shut_down_close_in_another_runtime() {
    close_in_another_runtime(true);
}

#[test]
fn counters_opened_in_a_live_runtime_close_in_another_runtime() {
    close_in_another_runtime(false);
}

#[tokio::test]
async fn close_blocking_in_the_root_future_of_a_runtime_is_refused_and_close_still_works() {
    let (c, sink) = hourly();
    c.open().await.unwrap();
    c.increment("calls", 3);
    let err = c.close_blocking().unwrap_err();
    assert!(matches!(err, Error::BlockingInRuntime("close_blocking")), "{err:?}");
    assert!(c.is_open(), "a refused close changes nothing");
    assert!(sink.saves().is_empty());
    let report = tokio::time::timeout(LIMIT, c.close()).await.expect("close returned");
    assert!(report.is_ok(), "{report:?}");
    assert!(!c.is_open());
    assert_eq!(find(&sink.last_save(), "calls").count, Some(3));
}

#[test]
fn a_refused_close_blocking_leaves_the_own_thread_dumping() {
    let (c, sink) = counters(Duration::from_millis(50));
    c.open_blocking().unwrap(); // no runtime here: the counters run their own thread
    let rt = current_thread_runtime();
    let err = rt.block_on(async { c.close_blocking().unwrap_err() });
    assert!(matches!(err, Error::BlockingInRuntime("close_blocking")), "{err:?}");
    drop(rt);
    assert!(c.is_open(), "a refused close changes nothing");
    c.increment("calls", 2);
    sink.wait_for_saves_blocking(1, LIMIT); // the interval dump, on our own thread
    assert_eq!(sent(&sink, "calls"), 2);
    let closing = c.clone();
    on_plain_thread("close_blocking", move || closing.close_blocking()).unwrap();
    assert_eq!(sent(&sink, "calls"), 2);
}

/// Opens counters dumping every 50 ms in `rt`, then shuts `rt` down: the interval task moves to a thread of the
/// counters' own, which goes on dumping every interval until a close from a plain thread.
fn runtime_shut_down_under_open_counters(rt: tokio::runtime::Runtime) {
    let (c, sink) = counters(Duration::from_millis(50));
    rt.block_on(c.open()).unwrap();
    drop(rt); // the interval task spawned there is dropped with it (nothing recorded yet: no save there)
    assert!(c.is_open(), "the counters stay open");
    c.increment("calls", 2);
    wait_until_sent(&sink, "calls", 2); // an interval dump, on the counters' own thread
    c.increment("calls", 4);
    wait_until_sent(&sink, "calls", 6); // and a later one
    let closing = c.clone();
    let report = on_plain_thread("close_blocking", move || closing.close_blocking());
    assert!(report.is_ok(), "{report:?}");
    assert!(!c.is_open());
    assert_eq!(sent(&sink, "calls"), 6, "each increment saved exactly once");
}

/// Waits, within [`LIMIT`], until the saves of `sink` add up to `n` for `name`.
fn wait_until_sent(sink: &RecordingSink, name: &str, n: i64) {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let saves = sink.saves().len();
        if sent(sink, name) >= n {
            return;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        sink.wait_for_saves_blocking(saves + 1, left); // panics once the time is up
    }
}

#[test]
fn counters_opened_in_a_current_thread_runtime_that_shut_down_go_on_dumping_every_interval() {
    runtime_shut_down_under_open_counters(current_thread_runtime());
}

#[test]
fn counters_opened_in_a_multi_thread_runtime_that_shut_down_go_on_dumping_every_interval() {
    runtime_shut_down_under_open_counters(multi_thread_runtime());
}

#[tokio::test(start_paused = true)]
async fn a_new_interval_takes_effect_at_once_not_after_the_old_wait() {
    let (c, sink) = counters(Duration::from_millis(50));
    c.open().await.unwrap();
    c.set_interval(Duration::from_secs(3600));
    // Tokio's clock is paused: it moves only while every task waits, straight to the next timer. Past any wait
    // the old interval set, the interval task now waits an hour.
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.increment("calls", 3);
    c.set_interval(Duration::from_millis(50));
    tokio::time::timeout(LIMIT, sink.wait_for_saves(1)).await.expect("a dump at the new interval, not in an hour");
    assert_eq!(sent(&sink, "calls"), 3);
    c.close().await.unwrap();
}

/// A sink whose saves take 20 ms of tokio's timers (so a save under way needs its runtime to go on), telling
/// `started` when each begins, and recording into `inner`.
struct SlowSink {
    inner: RecordingSink,
    started: std::sync::Mutex<mpsc::Sender<()>>,
}

impl cloudwatch_counters::Sink for SlowSink {
    fn save<'a>(&'a self, counters: &'a [cloudwatch_counters::Counter]) -> cloudwatch_counters::sink::SaveFuture<'a> {
        let _ = self.started.lock().unwrap().send(());
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.inner.save(counters).await
        })
    }
}

#[test]
fn close_blocking_in_a_task_of_a_one_worker_runtime_lets_an_interval_dump_under_way_finish() {
    let sink = RecordingSink::default();
    let (started, starts) = mpsc::channel();
    let slow = SlowSink { inner: sink.clone(), started: std::sync::Mutex::new(started) };
    let options = CountersOptions::default().interval(Duration::from_millis(50)).close_timeout(Duration::from_secs(2));
    let c = CachedCounters::new(slow, options);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(c.open()).unwrap(); // the interval task runs on the runtime's only worker
    c.increment("calls", 3);
    starts.recv_timeout(LIMIT).expect("an interval dump began");
    // The dump's save now waits on a timer of `rt`, whose only worker the close below blocks.
    let closing = c.clone();
    let closed = rt.block_on(async {
        let task = tokio::spawn(async move { closing.close_blocking() });
        tokio::time::timeout(LIMIT, task).await.expect("close_blocking returned").unwrap()
    });
    assert!(closed.is_ok(), "{closed:?}");
    assert!(!c.is_open());
    assert_eq!(sent(&sink, "calls"), 3, "saved exactly once");
}

#[test]
fn counters_opened_in_a_runtime_already_shutting_down_dump_every_interval_on_their_own_thread() {
    let (c, sink) = counters(Duration::from_millis(50));
    let rt = multi_thread_runtime();
    let (go, wait) = mpsc::channel::<()>();
    let (opened_tx, opened) = mpsc::channel();
    let opening = c.clone();
    // A blocking thread of `rt` opens the counters after `rt` began shutting down: the interval task spawned
    // there is dropped at once, inside `open`.
    rt.spawn_blocking(move || {
        wait.recv().unwrap();
        let _ = opened_tx.send(opening.open_blocking());
    });
    rt.shutdown_background();
    go.send(()).unwrap();
    let result = opened.recv_timeout(LIMIT).expect("open returned");
    assert!(result.is_ok(), "{result:?}");
    assert!(c.is_open());
    c.increment("calls", 2);
    sink.wait_for_saves_blocking(1, LIMIT); // an interval dump, on the counters' own thread
    assert_eq!(sent(&sink, "calls"), 2);
    let closing = c.clone();
    let report = on_plain_thread("close_blocking", move || closing.close_blocking());
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(sent(&sink, "calls"), 2);
}
