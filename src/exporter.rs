//! The dump machinery: snapshot the store, hand the counters to the sink, reset or merge back, and the
//! background interval task that does it on a timer.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;
// The tokio clock: the same as std's, but it can be paused and advanced in tests.
use tokio::time::Instant;

use crate::config::CountersOptions;
use crate::error::Error;
use crate::sink::Sink;
use crate::store::Store;
use crate::telemetry::{self, Telemetry};
use crate::warn::{shown_name, WarnEvery};

tokio::task_local! {
    /// Set while a dump runs, so the tracing layer never times or counts the work of publishing.
    static PUBLISHING: ();
}

/// Whether the current task is publishing counters (the layer ignores spans and events there).
pub(crate) fn is_publishing() -> bool {
    PUBLISHING.try_with(|_| ()).is_ok()
}

/// How many times the wait doubles under repeated throttling (up to 2^3 = 8 intervals).
const MAX_BACKOFF_DOUBLINGS: u32 = 3;

/// How long dropping open counters outside async code waits for their last flush.
pub(crate) const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What one dump did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DumpReport {
    /// Counters handed to the sink (0 when nothing was updated since the last dump).
    pub saved: usize,
    /// Whether this dump reset the counters (reset mode, once `reset_timeout` has passed).
    pub reset: bool,
    /// Non-finite values refused by the counters since the previous dump.
    pub rejected_values: u64,
}

struct DumpState {
    last_reset: Instant,
    /// The previous save failed: send again even if nothing changed since.
    retry: bool,
    /// The telemetry totals already added to the telemetry counters.
    published: Telemetry,
}

/// State shared by a `CachedCounters`, its handles' owners (layer, recorder) and its background task.
pub(crate) struct Shared {
    pub(crate) store: Store,
    sink: Arc<dyn Sink>,
    interval_ms: AtomicU64,
    reset_timeout_ns: AtomicU64,
    publish_telemetry: AtomicBool,
    values_rejected: AtomicU64,
    dumps_failed: AtomicU64,
    labels_cut: AtomicU64,
    warn_rejected: WarnEvery,
    warn_labels: WarnEvery,
    state: tokio::sync::Mutex<DumpState>,
    driver: Mutex<Driver>,
}

/// The background machinery: the runtime handle used, the interval task, and our own thread for programs
/// without a tokio runtime.
#[derive(Default)]
struct Driver {
    handle: Option<Handle>,
    timer: Option<(Arc<Notify>, JoinHandle<()>)>,
    thread: Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Shared {
    pub(crate) fn new(sink: Arc<dyn Sink>, options: &CountersOptions) -> Shared {
        let shared = Shared {
            store: Store::with_max_counters(options.get_max_counters()),
            sink,
            interval_ms: AtomicU64::new(0),
            reset_timeout_ns: AtomicU64::new(0),
            publish_telemetry: AtomicBool::new(true),
            values_rejected: AtomicU64::new(0),
            dumps_failed: AtomicU64::new(0),
            labels_cut: AtomicU64::new(0),
            warn_rejected: WarnEvery::default(),
            warn_labels: WarnEvery::default(),
            state: tokio::sync::Mutex::new(DumpState {
                last_reset: Instant::now(),
                retry: false,
                published: Telemetry::default(),
            }),
            driver: Mutex::new(Driver::default()),
        };
        shared.set_options(options);
        shared
    }

    /// Applies the interval, reset timeout, counter cap and telemetry switch.
    pub(crate) fn set_options(&self, options: &CountersOptions) {
        self.set_interval(options.get_interval());
        self.set_reset_timeout(options.get_reset_timeout());
        self.store.set_max_counters(options.get_max_counters());
        self.publish_telemetry.store(options.get_telemetry(), Relaxed);
    }

    /// The running totals of what the counters and their sink did.
    pub(crate) fn telemetry(&self) -> Telemetry {
        Telemetry::new(
            self.sink.counts(),
            self.store.dropped(),
            self.values_rejected.load(Relaxed),
            self.dumps_failed.load(Relaxed),
            self.labels_cut.load(Relaxed),
        )
    }

    /// Counts (and warns about, once a minute) a metric whose labels were cut to fit CloudWatch's dimensions.
    #[cold]
    pub(crate) fn labels_cut(&self, metric: &str, labels: usize) {
        let total = self.labels_cut.fetch_add(1, Relaxed) + 1;
        if self.warn_labels.ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                metric = %shown_name(metric),
                labels,
                cut_so_far = total,
                "metric has more labels than CloudWatch's 30 dimensions allow (InstanceID included); labels after the first {} are dropped",
                crate::recorder::MAX_LABELS
            );
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Relaxed))
    }

    pub(crate) fn set_interval(&self, interval: Duration) {
        self.interval_ms.store(millis(interval), Relaxed);
    }

    pub(crate) fn reset_timeout(&self) -> Duration {
        Duration::from_nanos(self.reset_timeout_ns.load(Relaxed))
    }

    pub(crate) fn set_reset_timeout(&self, reset_timeout: Duration) {
        self.reset_timeout_ns.store(u64::try_from(reset_timeout.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    /// One dump: snapshot (taking the contents when a reset is due), save, then keep the data if the save failed.
    pub(crate) async fn dump(&self) -> Result<DumpReport, Error> {
        PUBLISHING.scope((), self.dump_inner()).await
    }

    async fn dump_inner(&self) -> Result<DumpReport, Error> {
        let mut state = self.state.lock().await;
        if self.publish_telemetry.load(Relaxed) {
            let now = self.telemetry();
            telemetry::record_deltas(&self.store, &state.published, &now);
            state.published = now;
        }
        let reset_timeout = self.reset_timeout();
        let reset = !reset_timeout.is_zero() && state.last_reset.elapsed() >= reset_timeout;
        let snap = self.store.snapshot(reset);
        if snap.rejected > 0 {
            let total = self.values_rejected.fetch_add(snap.rejected, Relaxed) + snap.rejected;
            if self.warn_rejected.ready() {
                tracing::warn!(
                    target: "cloudwatch_counters",
                    rejected = snap.rejected,
                    rejected_so_far = total,
                    "non-finite values (NaN or infinite) were passed to counters and not recorded"
                );
            }
        }
        let mut report = DumpReport { saved: 0, reset, rejected_values: snap.rejected };
        if !snap.needs_save(state.retry || reset) {
            if reset {
                state.last_reset = Instant::now();
            }
            return Ok(report);
        }
        match self.sink.save(&snap.counters).await {
            Ok(()) => {
                state.retry = false;
                if reset {
                    state.last_reset = Instant::now();
                }
                report.saved = snap.counters.len();
                Ok(report)
            }
            Err(err) => {
                snap.merge_back(err.failed());
                state.retry = true;
                self.dumps_failed.fetch_add(1, Relaxed);
                Err(Error::Save(err))
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.lock_driver().timer.is_some()
    }

    fn lock_driver(&self) -> std::sync::MutexGuard<'_, Driver> {
        self.driver.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the interval task on the current tokio runtime, or on a thread of our own when there is none.
    pub(crate) fn open(self: &Arc<Shared>) -> Result<(), Error> {
        let mut driver = self.lock_driver();
        if driver.timer.is_some() {
            return Ok(());
        }
        let handle = match (Handle::try_current(), &driver.handle) {
            (Ok(current), _) => current,
            (Err(_), Some(own)) => own.clone(),
            (Err(_), None) => {
                let (handle, stop, join) = own_runtime()?;
                driver.thread = Some((stop, join));
                handle
            }
        };
        let stop = Arc::new(Notify::new());
        let task = handle.spawn(run_timer(Arc::downgrade(self), Arc::clone(&stop)));
        driver.handle = Some(handle);
        driver.timer = Some((stop, task));
        Ok(())
    }

    /// Stops the interval task (waiting for a dump in progress) and flushes what is left.
    pub(crate) async fn close(&self) -> Result<DumpReport, Error> {
        let timer = self.lock_driver().timer.take();
        if let Some((stop, task)) = timer {
            stop.notify_one();
            let _ = task.await;
        }
        self.dump().await
    }

    /// Stops our own runtime thread, if there is one. `join` waits for it to end.
    pub(crate) fn stop_thread(&self, join: bool) {
        let thread = self.lock_driver().thread.take();
        if let Some((stop, thread)) = thread {
            let _ = stop.send(());
            if join {
                let _ = thread.join();
            }
        }
    }

    /// Runs `future` to completion from synchronous code: on the runtime the counters were opened on, or on a
    /// temporary one. Refuses to run inside an async runtime, where blocking would stall it.
    pub(crate) fn block_on<F>(&self, what: &'static str, future: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if Handle::try_current().is_ok() {
            return Err(Error::BlockingInRuntime(what));
        }
        let handle = self.lock_driver().handle.clone();
        match handle {
            Some(handle) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                handle.spawn(async move {
                    let _ = tx.send(future.await);
                });
                rx.recv().map_err(|_| Error::RuntimeGone)
            }
            None => {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Thread)?;
                Ok(runtime.block_on(future))
            }
        }
    }
}

/// Dropping open counters (the last clone, layer and recorder included) without `close()` flushes best-effort:
/// outside async code it waits up to [`DROP_FLUSH_TIMEOUT`] for the save; inside async code it spawns the save
/// on the runtime, where it completes only if the runtime keeps running. A flush that cannot complete is warned
/// about.
impl Drop for Shared {
    fn drop(&mut self) {
        let driver = std::mem::take(&mut *self.lock_driver());
        if let Some((stop, _task)) = &driver.timer {
            stop.notify_one();
        }
        if driver.timer.is_some() {
            if let Some(handle) = &driver.handle {
                self.flush_on_drop(handle);
            }
        }
        if let Some((stop, _thread)) = driver.thread {
            let _ = stop.send(());
        }
    }
}

impl Shared {
    fn flush_on_drop(&mut self, handle: &Handle) {
        let retry = self.state.get_mut().retry;
        let snap = self.store.snapshot(false);
        if !snap.needs_save(retry) {
            return;
        }
        let sink = Arc::clone(&self.sink);
        let counters = snap.counters;
        let n = counters.len();
        let flush = async move {
            let result = sink.save(&counters).await;
            if let Err(err) = &result {
                warn_lost(n, err);
            }
            result
        };
        if Handle::try_current().is_ok() {
            tracing::debug!(target: "cloudwatch_counters", counters = n, "counters dropped without close(): flushing in the background");
            handle.spawn(PUBLISHING.scope((), flush));
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        handle.spawn(PUBLISHING.scope((), async move {
            let _ = tx.send(flush.await);
        }));
        if rx.recv_timeout(DROP_FLUSH_TIMEOUT).is_err() {
            warn_lost(n, &format!("the flush did not finish within {DROP_FLUSH_TIMEOUT:?}"));
        }
    }
}

fn warn_lost(counters: usize, why: &dyn std::fmt::Display) {
    tracing::warn!(
        target: "cloudwatch_counters",
        counters,
        "counters were dropped without close() and their last flush failed, so these values are lost: {why}"
    );
}

/// A current-thread runtime on a thread of its own, driven until `stop` fires.
fn own_runtime() -> Result<(Handle, oneshot::Sender<()>, std::thread::JoinHandle<()>), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Thread)?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let join = std::thread::Builder::new()
        .name("cloudwatch-counters".into())
        .spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        })
        .map_err(Error::Thread)?;
    Ok((handle, stop, join))
}

/// The interval task: dump every interval; after a failure wait one interval, and after throttling back off
/// exponentially (with jitter) up to 8 intervals.
async fn run_timer(shared: Weak<Shared>, stop: Arc<Notify>) {
    let mut throttled: u32 = 0;
    let mut failed_in_a_row: u64 = 0;
    let warn = WarnEvery::default();
    loop {
        let Some(interval) = shared.upgrade().map(|s| s.interval()) else {
            return;
        };
        let delay = backoff(interval, throttled);
        tokio::select! {
            _ = stop.notified() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match shared.dump().await {
            Ok(_) => {
                if failed_in_a_row > 0 {
                    tracing::info!(target: "cloudwatch_counters", failed_in_a_row, "dumping counters works again; the kept data was sent");
                }
                throttled = 0;
                failed_in_a_row = 0;
            }
            Err(err) => {
                if matches!(&err, Error::Save(e) if e.is_throttled()) {
                    throttled = throttled.saturating_add(1);
                }
                failed_in_a_row += 1;
                if warn.ready() {
                    tracing::warn!(target: "cloudwatch_counters", error = %err, failed_in_a_row, "dumping counters failed; the data is kept and retried at the next interval (warned at most once a minute)");
                }
            }
        }
    }
}

/// The wait before the next dump: the interval, doubled per consecutive throttling (capped), with +-10% jitter.
pub(crate) fn backoff(interval: Duration, throttled: u32) -> Duration {
    if throttled == 0 {
        return interval;
    }
    let factor = 1u32 << throttled.min(MAX_BACKOFF_DOUBLINGS);
    let base = interval.saturating_mul(factor);
    let jitter = (jitter_unit() - 0.5) * 0.2;
    base.mul_f64(1.0 + jitter)
}

/// A number in [0, 1) that varies between calls; good enough to spread retries apart.
fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::Instant::now().elapsed().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_under_throttling_and_is_capped() {
        let i = Duration::from_secs(10);
        assert_eq!(backoff(i, 0), i);
        let one = backoff(i, 1);
        assert!(one >= Duration::from_secs(18) && one <= Duration::from_secs(22), "{one:?}");
        let many = backoff(i, 30);
        assert!(many <= Duration::from_secs(88) && many >= Duration::from_secs(72), "{many:?}");
    }
}
