//! The background machinery: the interval task on the current tokio runtime (or on a thread of our own for
//! programs without one), stopping it, and running async work from synchronous code.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::{backoff, DumpReport, Exporter};
use crate::error::Error;
use crate::warn::WarnEvery;

/// The interval task, the runtime it runs on, and our own runtime thread for programs without a tokio runtime.
#[derive(Debug, Default)]
pub(crate) struct Driver {
    /// The runtime the interval task runs on (the caller's, or our own).
    pub(crate) handle: Option<Handle>,
    pub(crate) timer: Option<(Arc<Notify>, JoinHandle<()>)>,
    pub(crate) own: Option<OwnRuntime>,
    /// Which interval task is the current one (each start counts one): a task whose runtime shut down under it
    /// is started again on our own thread only while it is still the current one.
    generation: u64,
}

/// A current-thread runtime on a thread of its own, driven until `stop` fires.
#[derive(Debug)]
pub(crate) struct OwnRuntime {
    pub(crate) handle: Handle,
    pub(crate) stop: oneshot::Sender<()>,
    join: std::thread::JoinHandle<()>,
    /// Disconnected once the thread has dropped its runtime (a bounded join).
    ended: std::sync::mpsc::Receiver<()>,
}

impl Exporter {
    pub(crate) fn is_open(&self) -> bool {
        self.lock_driver().timer.is_some()
    }

    pub(super) fn lock_driver(&self) -> std::sync::MutexGuard<'_, Driver> {
        self.driver.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the interval task on the current tokio runtime, or, in a program without one, on a thread of our
    /// own (started again if an earlier `close` stopped it).
    pub(crate) fn open(self: &Arc<Exporter>) -> Result<(), Error> {
        if let Some(invalid) = self.invalid_options() {
            return Err(Error::Config(invalid));
        }
        let mut driver = self.lock_driver();
        if driver.timer.is_some() {
            return Ok(());
        }
        let handle = match Handle::try_current() {
            Ok(current) => current,
            Err(_) => driver.own_handle()?,
        };
        self.closing.store(false, std::sync::atomic::Ordering::Relaxed);
        self.start_timer(&mut driver, handle);
        Ok(())
    }

    /// Spawns a new interval task on `handle`, as the current one.
    fn start_timer(self: &Arc<Exporter>, driver: &mut Driver, handle: Handle) {
        driver.generation += 1;
        let stop = Arc::new(Notify::new());
        let gone = TimerGone { exporter: Arc::downgrade(self), generation: driver.generation };
        let task = handle.spawn(run_timer(gone, Arc::clone(&stop), Arc::clone(&self.interval_changed)));
        driver.handle = Some(handle);
        driver.timer = Some((stop, task));
    }

    /// [`timer_gone`](Self::timer_gone), unless the driver is locked (then `false`, and nothing done).
    fn timer_gone_unless_locked(self: &Arc<Exporter>, generation: u64) -> bool {
        let driver = match self.driver.try_lock() {
            Ok(driver) => driver,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        self.timer_gone(driver, generation);
        true
    }

    /// The current interval task's runtime shut down under it (its future was dropped while the counters stay
    /// open): the task starts again on a thread of our own, so that the counters go on dumping every interval.
    fn timer_gone(self: &Arc<Exporter>, mut driver: std::sync::MutexGuard<'_, Driver>, generation: u64) {
        let current = driver.timer.is_some() && driver.generation == generation;
        if !current || self.closing.load(std::sync::atomic::Ordering::Relaxed) {
            return; // closed, or stopped by the counters' drop, or a newer task runs
        }
        match driver.own_handle() {
            Ok(handle) => self.start_timer(&mut driver, handle),
            Err(err) => {
                driver.timer = None; // not open any more: `open` may try again
                warn_no_timer_thread(&err);
                return;
            }
        }
        tracing::info!(target: "cloudwatch_counters", "the runtime the counters were opened in shut down: they now dump every interval on a thread of their own");
    }

    /// Stops the interval task (waiting for a dump in progress) and flushes what is left.
    /// Within `options.close_timeout`: a dump in progress may finish, then it is cut off (its periods are
    /// settled: put back, or counted as ambiguous if its save was under way), and the final flush gets what is
    /// left of the time.
    pub(crate) async fn close(&self) -> Result<DumpReport, Error> {
        let timeout = self.close_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        let cut_off_before = self.cut_off_datums();
        self.closing.store(true, std::sync::atomic::Ordering::Relaxed);
        self.close_saved.store(false, std::sync::atomic::Ordering::Relaxed);
        let timer = self.lock_driver().timer.take();
        if let Some((stop, mut task)) = timer {
            stop.notify_one();
            let abort = task.abort_handle();
            // An idle timer (between dumps) holds nothing: stop it at once, even on a runtime nobody drives. A
            // dump under way may finish within the bound; a dump cut off settles its periods itself, when the
            // runtime drops its future after the abort: that is waited for (briefly: a runtime nobody drives
            // never does it), so that the count below includes what it was sending.
            let idle = self.state.try_lock().is_ok();
            if idle {
                abort.abort();
            } else if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                abort.abort();
                let _ = tokio::time::timeout(SETTLE_AFTER_ABORT, task).await;
            }
        }
        let cut_off = || Error::CloseTimeout {
            timeout,
            datums_unconfirmed: self.cut_off_datums().saturating_sub(cut_off_before),
        };
        if tokio::time::Instant::now() >= deadline {
            // No time left: the final dump is not started (a save begun now would only be cut off at once).
            return Err(cut_off());
        }
        let result = tokio::time::timeout_at(deadline, self.dump()).await.unwrap_or_else(|_| Err(cut_off()));
        self.close_saved.store(result.is_ok(), std::sync::atomic::Ordering::Relaxed);
        result
    }

    /// Stops our own runtime thread, if there is one, no timer runs on it (an `open` that came between a
    /// `close` and this call keeps it; a later `open` starts a new one) and no other blocking call runs on it (a
    /// `dump_blocking` beside a `close_blocking`: the last `close` or the drop stops it then). `join_by` waits
    /// for it to end, until then at most (what is left of the caller's bound: a thread a save still blocks is not
    /// waited for past it).
    pub(crate) fn stop_thread(&self, join_by: Option<Deadline>) {
        let own = {
            let mut driver = self.lock_driver();
            if driver.timer.is_some() || self.blocking_calls.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                return;
            }
            driver.own.take()
        };
        if let Some(own) = own {
            own.stop(join_by.map(Deadline::left));
        }
    }

    /// The bound of a blocking call made now ([`run_and_wait`]'s): `options.close_timeout` and a second.
    pub(crate) fn call_deadline(&self) -> Deadline {
        Deadline::after(self.close_timeout().saturating_add(RUN_AND_WAIT_MARGIN))
    }

    /// Runs `future` to completion from synchronous code, within `options.close_timeout` (and a second more): on
    /// our own runtime thread when the counters run one, else on a helper thread with a runtime of its own, so
    /// that it never needs the caller's runtime (which a blocked caller may be driving). Refused in the root
    /// future of a runtime (`#[tokio::main]`'s body, `block_on`), where blocking stalls every task; allowed in
    /// `spawn_blocking` and in plain threads (a thread that entered a runtime with `Handle::enter` counts as its
    /// root future). In a task on a worker of a multi-thread runtime, the worker hands its other tasks on while
    /// it waits (see [`letting_the_runtime_go_on`]). Tokio cannot tell a task of a current-thread runtime from
    /// `spawn_blocking`, so there it blocks the runtime's only thread: an interval dump under way on it, or a
    /// pooled connection of the SDK, then waits too, and the call may take all of `close_timeout` and fail: use
    /// the async forms in async code.
    pub(crate) fn block_on<F>(&self, what: &'static str, future: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if Handle::try_current().is_ok() && tokio::task::try_id().is_none() {
            return Err(Error::BlockingInRuntime(what));
        }
        let own = {
            // Counted under the driver's lock, which `stop_thread` reads it under: the thread is not stopped
            // under a call that runs on it.
            let driver = self.lock_driver();
            self.blocking_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            driver.own.as_ref().map(|own| own.handle.clone())
        };
        let output = run_and_wait(own, what, future, self.close_timeout());
        self.blocking_calls.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        output
    }
}

/// What [`run_and_wait`] waits past its timeout, for the future's output to reach the caller.
const RUN_AND_WAIT_MARGIN: Duration = Duration::from_secs(1);

/// When a wait bounded by `options.close_timeout` must end by: a blocking call, or the drop's wait for a sink's
/// output (`None`: past what an `Instant` holds, no bound).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// What is left of it.
    pub(crate) fn left(self) -> Duration {
        self.0.map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// Runs `future` on `runtime`, or with none on a helper thread of its own ([`spawn_on_helper_thread`]), and waits
/// for its output by the wall clock, at most `timeout` and a second: bounded even when the caller's runtime
/// drives nothing.
pub(crate) fn run_and_wait<F>(
    runtime: Option<Handle>,
    what: &'static str,
    future: F,
    timeout: Duration,
) -> Result<F::Output, Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let run = async move {
        let _ = tx.send(future.await);
    };
    if let Some(handle) = runtime {
        drop(handle.spawn(run));
    } else {
        spawn_on_helper_thread("cloudwatch-counters-blocking", run)?;
    }
    letting_the_runtime_go_on(|| rx.recv_timeout(timeout + RUN_AND_WAIT_MARGIN)).map_err(|err| match err {
        std::sync::mpsc::RecvTimeoutError::Timeout => Error::Timeout { what, timeout },
        // The runtime running it stopped (a `close` elsewhere) before it finished.
        std::sync::mpsc::RecvTimeoutError::Disconnected => Error::RuntimeGone,
    })
}

/// Runs `future` on this thread, parking it while the future waits, within `timeout`: for futures that need no
/// runtime (a dump whose sink writes synchronously), without a helper thread per call.
pub(crate) fn block_on_here<F: Future>(what: &'static str, future: F, timeout: Duration) -> Result<F::Output, Error> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    if Handle::try_current().is_ok() && tokio::task::try_id().is_none() {
        return Err(Error::BlockingInRuntime(what));
    }
    letting_the_runtime_go_on(|| {
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Ok(output);
            }
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return Err(Error::Timeout { what, timeout });
            };
            std::thread::park_timeout(left);
        }
    })
}

/// Runs `wait` (a blocking wait) so that the caller's runtime goes on: in a task on a worker of a multi-thread
/// runtime, the worker first hands its other tasks to another thread (`block_in_place`), so that an interval dump
/// under way on that runtime, which the wait may be for, can finish even when every other worker is busy or there
/// is none. Elsewhere (a plain thread, `spawn_blocking`, a runtime's root future) it just waits; a task of a
/// current-thread runtime cannot hand its runtime on, and blocks it (see [`Exporter::block_on`]).
pub(crate) fn letting_the_runtime_go_on<T>(wait: impl FnOnce() -> T) -> T {
    if on_a_multi_thread_worker() {
        tokio::task::block_in_place(wait)
    } else {
        wait()
    }
}

/// Whether this thread runs a task on a worker of a multi-thread runtime, where `block_in_place` is allowed.
/// Elsewhere inside a runtime tokio refuses it with a panic: a `LocalSet`'s task driven by `block_on` on another
/// thread, a current-thread runtime's task with a multi-thread runtime's handle entered. Tokio does not say which
/// threads are its workers; they are known by its default thread names (`#[tokio::main]`'s). Workers named
/// otherwise just wait: never a panic, at worst a runtime of one worker that waits with the caller.
fn on_a_multi_thread_worker() -> bool {
    Handle::try_current().is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        && tokio::task::try_id().is_some()
        && std::thread::current().name().is_some_and(|name| TOKIO_WORKER_NAMES.contains(&name))
}

/// The names tokio gives the threads of a runtime built without `thread_name`: the current one, and the one
/// older versions gave.
const TOKIO_WORKER_NAMES: [&str; 2] = ["tokio-rt-worker", "tokio-runtime-worker"];

/// Runs `future` on a new thread with a current-thread runtime of its own: for work that must not need the
/// caller's runtime, which may be blocked or driven by nobody.
pub(crate) fn spawn_on_helper_thread<F>(name: &str, future: F) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Thread)?;
    std::thread::Builder::new().name(name.into()).spawn(move || runtime.block_on(future)).map_err(Error::Thread)?;
    Ok(())
}

impl Driver {
    /// Our own runtime thread's handle, starting the thread if there is none.
    pub(super) fn own_handle(&mut self) -> Result<Handle, Error> {
        let own = match &mut self.own {
            Some(own) => own,
            None => self.own.insert(OwnRuntime::start()?),
        };
        Ok(own.handle.clone())
    }
}

impl OwnRuntime {
    fn start() -> Result<OwnRuntime, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Thread)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ending, ended) = std::sync::mpsc::channel::<()>();
        let join = std::thread::Builder::new()
            .name("cloudwatch-counters".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                drop(runtime);
                drop(ending);
            })
            .map_err(Error::Thread)?;
        Ok(OwnRuntime { handle, stop, join, ended })
    }

    /// Stops the thread; with `join_within`, waits for it to end, for at most that long: a save that blocks the
    /// thread (a writer on a full pipe) is not waited for past it, and the thread ends on its own when it returns.
    pub(crate) fn stop(self, join_within: Option<Duration>) {
        let _ = self.stop.send(());
        if let Some(limit) = join_within {
            if matches!(self.ended.recv_timeout(limit), Err(std::sync::mpsc::RecvTimeoutError::Disconnected)) {
                let _ = self.join.join();
            }
        }
    }
}

/// Most runtimes an exporter remembers dumps on (the oldest forgotten first).
const RUNTIMES_REMEMBERED: usize = 16;

impl Exporter {
    /// The runtimes dumps ran on, locked.
    fn dumped_on_runtimes(&self) -> std::sync::MutexGuard<'_, Vec<tokio::runtime::Id>> {
        self.dumped_on.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes the runtime a dump runs on, if any.
    pub(crate) fn dumping_on_this_runtime(&self) {
        let Ok(runtime) = Handle::try_current() else { return };
        let mut seen = self.dumped_on_runtimes();
        if !seen.contains(&runtime.id()) {
            if seen.len() == RUNTIMES_REMEMBERED {
                seen.remove(0);
            }
            seen.push(runtime.id());
        }
    }

    /// Whether a dump of these counters ran on `runtime`.
    pub(crate) fn dumped_on(&self, runtime: &Handle) -> bool {
        self.dumped_on_runtimes().contains(&runtime.id())
    }
}

/// Whether `runtime` is shutting down (it takes no more tasks: a task spawned now is cancelled at once). Its
/// shutdown drops its tasks in no set order, so this is asked of the runtime, not inferred from which of them went.
pub(crate) fn shutting_down(runtime: &Handle) -> bool {
    let mut probe = std::pin::pin!(runtime.spawn(async {}));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    // Ran already (from a blocking thread of that runtime), or not yet: Ok or pending, not shutting down.
    matches!(probe.as_mut().poll(&mut cx), std::task::Poll::Ready(Err(err)) if err.is_cancelled())
}

/// How long `close` waits for a cut-off timer dump to settle after aborting it.
const SETTLE_AFTER_ABORT: Duration = Duration::from_secs(1);

/// Held by an interval task's future: dropped while its task is still the current one (its runtime shut down
/// and dropped it), it starts the task again on our own thread.
struct TimerGone {
    exporter: Weak<Exporter>,
    generation: u64,
}

impl Drop for TimerGone {
    fn drop(&mut self) {
        let Some(exporter) = self.exporter.upgrade() else {
            return; // the counters are being dropped
        };
        if exporter.closing.load(std::sync::atomic::Ordering::Relaxed) {
            return; // stopped by `close`
        }
        let generation = self.generation;
        if exporter.timer_gone_unless_locked(generation) {
            return;
        }
        // The driver is locked, maybe by this very thread: a spawn onto a runtime that is shutting down drops the
        // task at once, inside `open`. Decided on a thread of its own, once the lock is free.
        let decide = move || {
            let driver = exporter.lock_driver();
            exporter.timer_gone(driver, generation);
        };
        if let Err(err) = std::thread::Builder::new().name("cloudwatch-counters".into()).spawn(decide) {
            warn_no_timer_thread(&err);
        }
    }
}

/// The warning when the interval task cannot go on on a thread of our own after its runtime shut down.
fn warn_no_timer_thread(err: &dyn std::fmt::Display) {
    tracing::warn!(target: "cloudwatch_counters", error = %err, "the runtime the counters were opened in shut down, and no thread could be started to dump them every interval: call open() again, or close() to flush");
}

/// The interval task: dump at the exporter's phase of every interval (wall-clock multiples of the interval plus
/// the phase), by the interval of the moment (`changed` is notified when it changes); after throttling back off
/// exponentially (with jitter) up to 8 intervals.
async fn run_timer(gone: TimerGone, stop: Arc<Notify>, changed: Arc<Notify>) {
    // Dropped after the loop's locals: a dump cut off with the task has settled its periods before the task
    // starts again.
    let exporter = gone.exporter.clone();
    let _gone = gone;
    let mut throttled: u32 = 0;
    let mut failed_in_a_row: u64 = 0;
    let warn = WarnEvery::default();
    // The schedule is kept on tokio's clock, aligned to the wall clock once (and again after throttling).
    let aligned = |exporter: &Exporter| {
        tokio::time::Instant::now()
            + backoff::until_phase(SystemTime::now(), exporter.interval(), exporter.dump_phase())
    };
    let Some(mut deadline) = exporter.upgrade().map(|e| aligned(&e)) else {
        return;
    };
    loop {
        tokio::select! {
            () = stop.notified() => return,
            () = changed.notified() => {
                // A new interval: the next dump at its phase, not after the wait the old one set.
                let Some(exporter) = exporter.upgrade() else { return };
                deadline = aligned(&exporter);
                continue;
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
        let Some(exporter) = exporter.upgrade() else {
            return;
        };
        let result = exporter.timer_dump().await;
        let was_throttled = throttled > 0;
        match result {
            Ok(_) => {
                if failed_in_a_row > 0 {
                    tracing::info!(target: "cloudwatch_counters", failed_in_a_row, "dumping counters works again; the kept data was sent");
                }
                throttled = 0;
                failed_in_a_row = 0;
            }
            Err(err) => {
                // Back off while throttled; any other failure ends the back-off (the next dump is at the phase).
                throttled =
                    if matches!(&err, Error::Save(e) if e.is_throttled()) { throttled.saturating_add(1) } else { 0 };
                failed_in_a_row += 1;
                if warn.ready() {
                    tracing::warn!(target: "cloudwatch_counters", error = %err, failed_in_a_row, "dumping counters failed; the data is kept and retried at the next interval (warned at most once a minute)");
                }
            }
        }
        let interval = exporter.interval();
        deadline = if throttled > 0 {
            tokio::time::Instant::now() + backoff::backoff(interval, throttled)
        } else if was_throttled {
            aligned(&exporter)
        } else {
            next_deadline(deadline, interval, tokio::time::Instant::now())
        };
    }
}

/// The first of `deadline` plus whole intervals that is more than a hundredth of an interval after `now` (a dump
/// that overran its interval skips the deadlines it missed).
fn next_deadline(
    deadline: tokio::time::Instant,
    interval: Duration,
    now: tokio::time::Instant,
) -> tokio::time::Instant {
    let interval = interval.max(Duration::from_millis(1));
    let mut next = deadline + interval;
    if next <= now + interval / 100 {
        let behind = now.saturating_duration_since(next).as_nanos() / interval.as_nanos() + 1;
        let skipped = u32::try_from(behind).ok().and_then(|n| interval.checked_mul(n));
        next = skipped.map_or(now + interval, |skipped| next + skipped);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CountersOptions;
    use crate::sink::LogSink;

    #[test]
    fn an_open_between_a_close_and_the_stop_of_the_own_thread_keeps_its_timer_running() {
        let options = CountersOptions::default().interval(Duration::from_millis(10));
        let exporter = Arc::new(Exporter::new(Arc::new(LogSink::to_writer(std::io::sink())), &options));
        exporter.open().expect("open, on a thread of its own");
        let closing = Arc::clone(&exporter);
        exporter.block_on("close", async move { closing.close().await }).expect("ran").expect("closed");
        exporter.open().expect("open again, on the same thread");
        exporter.stop_thread(Some(exporter.call_deadline()));
        assert!(exporter.lock_driver().own.is_some(), "the thread the timer runs on is kept");
        let task = exporter.lock_driver().timer.as_ref().map(|(_, task)| task.is_finished());
        assert_eq!(task, Some(false), "the timer is alive");
        let closing = Arc::clone(&exporter);
        exporter.block_on("close", async move { closing.close().await }).expect("ran").expect("closed");
        exporter.stop_thread(Some(exporter.call_deadline()));
        assert!(exporter.lock_driver().own.is_none(), "stopped once nothing runs on it");
    }
}
