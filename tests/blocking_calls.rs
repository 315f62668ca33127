//! Blocking calls of counters that run their own runtime thread: `close_blocking` is bounded even when a save
//! blocks that thread, and a `close_blocking` does not cut off another blocking call that runs beside it.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use cloudwatch_counters::{CachedCounters, Counter, Counters, CountersOptions, Error, LogCounters, SaveFuture, Sink};

/// Adds up the `count` of the counter "a" once each save has waited `delay`; counts the saves begun.
#[derive(Clone)]
struct SlowSink {
    total_a: Arc<AtomicI64>,
    saves_begun: Arc<AtomicUsize>,
    delay: Duration,
}

impl Sink for SlowSink {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        Box::pin(async move {
            self.saves_begun.fetch_add(1, SeqCst);
            tokio::time::sleep(self.delay).await;
            let a: i64 = counters.iter().filter(|c| c.name() == "a").filter_map(|c| c.count).sum();
            self.total_a.fetch_add(a, SeqCst);
            Ok(())
        })
    }
}

/// Open counters on their own thread (no runtime here) saving into a [`SlowSink`] of 200 ms a save.
fn slow_counters() -> (CachedCounters, SlowSink) {
    let sink = SlowSink { total_a: Arc::default(), saves_begun: Arc::default(), delay: Duration::from_millis(200) };
    let options = CountersOptions::default()
        .interval(Duration::from_secs(3600))
        .close_timeout(Duration::from_secs(5))
        .telemetry(false);
    let counters = CachedCounters::new(sink.clone(), options);
    counters.open_blocking().expect("open on a thread of their own");
    (counters, sink)
}

/// Waits (polling, at most 10 s) until `done`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

#[test]
fn a_close_blocking_beside_another_blocking_call_cuts_neither_off() {
    for other in ["dump_blocking", "close_blocking"] {
        let (counters, sink) = slow_counters();
        counters.increment("a", 1);
        let (tx, rx) = mpsc::channel();
        let (closing, first) = (counters.clone(), tx.clone());
        std::thread::spawn(move || first.send(("close_blocking", closing.close_blocking().map(|_| ()))));
        wait_until("the close's save", || sink.saves_begun.load(SeqCst) == 1);
        counters.increment("a", 10); // recorded while the close's save is under way: for the other call
        let second = counters.clone();
        std::thread::spawn(move || {
            let result = if other == "dump_blocking" { second.dump_blocking() } else { second.close_blocking() };
            tx.send((other, result.map(|_| ())))
        });
        let results: Vec<_> = (0..2).map(|_| rx.recv_timeout(Duration::from_secs(20)).expect("bounded")).collect();
        assert!(results.iter().all(|(_, r)| r.is_ok()), "beside {other}: {results:?}");
        assert_eq!(sink.total_a.load(SeqCst), 11, "beside {other}: every value saved once");
        assert_eq!(counters.telemetry().datums_ambiguous, 0, "beside {other}");
    }
}

/// A writer whose writes block until `release` sends (or 20 s pass), as stdout does on a pipe nobody reads.
struct BlockingWriter(Mutex<mpsc::Receiver<()>>);

impl std::io::Write for BlockingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.lock().unwrap().recv_timeout(Duration::from_secs(20));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn close_blocking_returns_within_its_bound_while_a_save_blocks_the_counters_thread() {
    let (release, released) = mpsc::channel();
    let options = CountersOptions::default().interval(Duration::from_secs(3600)).close_timeout(Duration::from_secs(3));
    let counters = LogCounters::to_writer(BlockingWriter(Mutex::new(released)), options);
    counters.open_blocking().expect("open on a thread of their own");
    counters.increment("a", 1);
    let (tx, rx) = mpsc::channel();
    let closing = counters.clone();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let result = closing.close_blocking().map(|_| ());
        tx.send((result, started.elapsed()))
    });
    let returned = rx.recv_timeout(Duration::from_secs(20));
    let _ = release.send(());
    let (result, took) = returned.expect("close_blocking returned");
    // Its bound is close_timeout and a second (4 s), the wait for the blocked thread to end included: not
    // another close_timeout on top (7 s).
    assert!(took < Duration::from_secs(6), "close_blocking took {took:?}: past close_timeout (3 s) and a second");
    assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
}
