//! The background machinery: the interval task on the current tokio runtime (or on a thread of our own for
//! programs without one), stopping it, and running async work from synchronous code.

use std::future::Future;
use std::sync::{Arc, Weak};

use tokio::runtime::Handle;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::{backoff, DumpReport, Exporter};
use crate::error::Error;
use crate::warn::WarnEvery;

/// The runtime handle used, the interval task, and our own thread for programs without a tokio runtime.
#[derive(Debug, Default)]
pub(crate) struct Driver {
    pub(crate) handle: Option<Handle>,
    pub(crate) timer: Option<(Arc<Notify>, JoinHandle<()>)>,
    pub(crate) thread: Option<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Exporter {
    pub(crate) fn is_open(&self) -> bool {
        self.lock_driver().timer.is_some()
    }

    pub(super) fn lock_driver(&self) -> std::sync::MutexGuard<'_, Driver> {
        self.driver.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts the interval task on the current tokio runtime, or on a thread of our own when there is none.
    pub(crate) fn open(self: &Arc<Exporter>) -> Result<(), Error> {
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
        if let Some(handle) = handle {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            handle.spawn(async move {
                let _ = tx.send(future.await);
            });
            rx.recv().map_err(|_| Error::RuntimeGone)
        } else {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Error::Thread)?;
            Ok(runtime.block_on(future))
        }
    }
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
async fn run_timer(exporter: Weak<Exporter>, stop: Arc<Notify>) {
    let mut throttled: u32 = 0;
    let mut failed_in_a_row: u64 = 0;
    let warn = WarnEvery::default();
    loop {
        let Some(interval) = exporter.upgrade().map(|s| s.interval()) else {
            return;
        };
        let delay = backoff::backoff(interval, throttled);
        tokio::select! {
            () = stop.notified() => return,
            () = tokio::time::sleep(delay) => {}
        }
        let Some(exporter) = exporter.upgrade() else {
            return;
        };
        match exporter.dump().await {
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
