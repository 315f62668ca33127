//! One dump: snapshot the store (taking the contents when a reset is due), save through the sink, and keep the
//! data if the save failed; and the best-effort flush when the last owner is dropped without `close()`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

use super::{telemetry, Exporter};
use crate::error::Error;
use crate::publishing;

/// How long dropping open counters outside async code waits for their last flush.
pub(crate) const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What one dump did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DumpReport {
    /// Counters handed to the sink (0 when nothing was updated since the last dump).
    pub saved: usize,
    /// Whether this dump reset the counters (reset mode, once `reset_timeout` has passed).
    pub reset: bool,
    /// Non-finite values refused by the counters since the previous dump.
    pub rejected_values: u64,
}

impl Exporter {
    /// One dump: snapshot (taking the contents when a reset is due), save, then keep the data if the save failed.
    pub(crate) async fn dump(&self) -> Result<DumpReport, Error> {
        publishing::scope(self.dump_inner()).await
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
}

/// Dropping open counters (the last clone, layer and recorder included) without `close()` flushes best-effort:
/// outside async code it waits up to [`DROP_FLUSH_TIMEOUT`] for the save; inside async code it spawns the save
/// on the runtime, where it completes only if the runtime keeps running. A flush that cannot complete is warned
/// about.
impl Drop for Exporter {
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

impl Exporter {
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
            handle.spawn(publishing::scope(flush));
            return;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        handle.spawn(publishing::scope(async move {
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
