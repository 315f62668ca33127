//! Test helpers shared by the integration tests: a sink that records what it is given (and, in `http`, test HTTP
//! clients for the AWS SDK).
#![allow(dead_code, unreachable_pub)]

pub mod bytes_in_use;
#[cfg(feature = "cloudwatch")]
pub mod http;
#[cfg(feature = "cloudwatch")]
pub mod localstack;
pub mod proxy;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use cloudwatch_counters::sink::SaveFuture;
use cloudwatch_counters::{Counter, SaveError, Sink, SinkView};
use tokio::sync::watch;

/// Records every batch it saves; can be told to fail.
#[derive(Clone)]
pub struct RecordingSink {
    inner: Arc<Inner>,
}

struct Inner {
    view: SinkView,
    percentiles: bool,
    saves: Mutex<Vec<Vec<Counter>>>,
    fail: AtomicBool,
    saved: watch::Sender<usize>,
    saved_cv: Condvar,
}

impl Default for RecordingSink {
    fn default() -> Self {
        RecordingSink::with_view(SinkView::Period)
    }
}

impl RecordingSink {
    /// A recording sink that receives `view` of the counters (the default is the period view, as CloudWatch).
    pub fn with_view(view: SinkView) -> Self {
        RecordingSink {
            inner: Arc::new(Inner {
                view,
                percentiles: false,
                saves: Mutex::new(Vec::new()),
                fail: AtomicBool::new(false),
                saved: watch::channel(0).0,
                saved_cv: Condvar::new(),
            }),
        }
    }
}

impl RecordingSink {
    /// A recording sink with the period view that publishes percentiles, as CloudWatch's: with
    /// `options.percentiles` on, timings and histograms count their samples in buckets for it.
    pub fn with_percentiles() -> Self {
        let sink = RecordingSink::default();
        let inner = Arc::into_inner(sink.inner).expect("a new sink");
        RecordingSink { inner: Arc::new(Inner { percentiles: true, ..inner }) }
    }

    /// Makes every following save fail (true) or succeed (false).
    pub fn set_failing(&self, fail: bool) {
        self.inner.fail.store(fail, Ordering::SeqCst);
    }

    /// Every successful save so far.
    pub fn saves(&self) -> Vec<Vec<Counter>> {
        self.inner.saves.lock().unwrap().clone()
    }

    /// The last successful save.
    pub fn last_save(&self) -> Vec<Counter> {
        self.saves().last().cloned().unwrap_or_default()
    }

    /// Waits until at least `n` saves have succeeded.
    pub async fn wait_for_saves(&self, n: usize) {
        let mut rx = self.inner.saved.subscribe();
        rx.wait_for(|&count| count >= n).await.expect("sink dropped");
    }

    /// Waits until `done` holds of the successful saves so far (checked now and after each save).
    pub async fn wait_until(&self, done: impl Fn(&[Vec<Counter>]) -> bool) {
        let mut rx = self.inner.saved.subscribe();
        rx.wait_for(|_| done(&self.inner.saves.lock().unwrap())).await.expect("sink dropped");
    }
}

impl RecordingSink {
    /// Blocks until at least `n` saves have succeeded; panics after `limit` (a broken timer fails, not hangs).
    pub fn wait_for_saves_blocking(&self, n: usize, limit: Duration) {
        let saves = self.inner.saves.lock().unwrap();
        let (saves, timeout) = self.inner.saved_cv.wait_timeout_while(saves, limit, |s| s.len() < n).unwrap();
        assert!(!timeout.timed_out(), "only {} of {n} saves arrived within {limit:?}", saves.len());
    }
}

impl Sink for RecordingSink {
    fn view(&self) -> SinkView {
        self.inner.view
    }

    fn percentiles(&self) -> bool {
        self.inner.percentiles
    }

    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        Box::pin(async move {
            if self.inner.fail.load(Ordering::SeqCst) {
                return Err(SaveError::new("recording sink told to fail"));
            }
            let mut saves = self.inner.saves.lock().unwrap();
            saves.push(counters.to_vec());
            let n = saves.len();
            drop(saves);
            self.inner.saved_cv.notify_all();
            self.inner.saved.send_replace(n);
            Ok(())
        })
    }
}

/// A writer whose output the test reads back (for `LogCounters::to_writer`).
#[derive(Clone, Default)]
pub struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl SharedWriter {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines printed for the counter `name`, and forget everything written so far.
    pub fn take_lines(&self, name: &str) -> Vec<String> {
        let text = String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap();
        text.lines().filter(|l| l.starts_with(&format!("Counter {name} "))).map(str::to_owned).collect()
    }
}

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The counter called `name` in `counters`.
pub fn find<'a>(counters: &'a [Counter], name: &str) -> &'a Counter {
    counters.iter().find(|c| c.name() == name).unwrap_or_else(|| panic!("no counter {name} in {counters:?}"))
}

/// Counters with a recording sink and the default options.
pub fn recording_counters() -> cloudwatch_counters::CachedCounters {
    cloudwatch_counters::CachedCounters::new(RecordingSink::default(), cloudwatch_counters::CountersOptions::default())
}

/// The counter called `name` among all of `counters`' counters.
pub fn counter_named(counters: &cloudwatch_counters::CachedCounters, name: &str) -> Counter {
    counters.get_all().into_iter().find(|c| c.name() == name).unwrap_or_else(|| panic!("no counter {name}"))
}

/// Log output captured from this thread's `tracing` events (every level, every target).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The number of lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

thread_local! {
    /// Where this thread's log lines go while a capture is on.
    static CAPTURE: std::cell::RefCell<Option<Logs>> = const { std::cell::RefCell::new(None) };
}

/// Captures of every thread's log lines ([`capture_every_thread`]), each with its id.
static EVERY_THREAD: Mutex<Vec<(u64, Logs)>> = Mutex::new(Vec::new());

/// Writes to the capture of the thread it runs on, if there is one, and to every capture of every thread.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(logs) = &*capture.borrow() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        for (_, logs) in EVERY_THREAD.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            logs.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the `tracing` events of every thread (the crate's own threads included) until the guard is dropped:
/// other tests' lines too, so a test looks for lines only it can cause (its agent's address, say).
pub fn capture_every_thread() -> (EveryThreadGuard, Logs) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    install_capturing_subscriber();
    let (id, logs) = (NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed), Logs::default());
    EVERY_THREAD.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, logs.clone()));
    (EveryThreadGuard(id), logs)
}

/// Makes the process's global subscriber the one that writes to the captures (once).
fn install_capturing_subscriber() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadWriter)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the tests");
    });
}

/// Ends a capture of every thread when dropped.
pub struct EveryThreadGuard(u64);

impl Drop for EveryThreadGuard {
    fn drop(&mut self) {
        EVERY_THREAD.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|(id, _)| *id != self.0);
    }
}

/// Ends a capture when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

/// Captures every `tracing` event of the current thread (TRACE and up, every target) until the guard is dropped.
///
/// The subscriber is the process's global one, installed once: a scoped (`set_default`) subscriber can miss
/// events when other tests of the binary register the same callsites on threads without one.
pub fn capture_logs() -> (CaptureGuard, Logs) {
    install_capturing_subscriber();
    let logs = Logs::default();
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(logs.clone()));
    (CaptureGuard(()), logs)
}
