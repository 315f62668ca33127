//! One dump: take every counter's period out of the store, save the sink's view of it, commit what was saved
//! and put back what was not; and the best-effort flush when the last owner is dropped without `close()`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;

use super::{telemetry, Exporter};
use crate::error::Error;
use crate::model::Counter;
use crate::publishing;
use crate::sink::SinkView;
use crate::store::{TakeAll, Taken};

/// How long dropping open counters outside async code waits for their last flush.
pub(crate) const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What one dump did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DumpReport {
    /// Counters handed to the sink (0 when nothing was updated since the last dump).
    pub saved: usize,
    /// Whether this dump reset the local totals (`options.reset_timeout` had passed).
    pub reset: bool,
    /// Values refused by the counters since the previous dump (not finite, or beyond CloudWatch's range).
    pub rejected_values: u64,
}

/// What a dump hands the sink: the counters, and for each the index of the period it came from.
#[derive(Debug, Default)]
struct Prepared {
    counters: Vec<Counter>,
    sources: Vec<usize>,
    /// Whether anything but the crate's own telemetry has something to publish.
    worth_saving: bool,
}

impl Exporter {
    /// One dump: take every counter's period, hand the sink its view of them, then commit what was saved and
    /// put back what was not (it goes out with the next dump; nothing is sent twice).
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
        let all = self.store.take_all();
        self.count_refused(&all);
        let mut report = DumpReport { saved: 0, reset: false, rejected_values: all.rejected };
        let prepared = self.prepare(&all.taken);
        if !prepared.worth_saving {
            // Only the crate's own telemetry changed: it waits for the next save of the service's counters.
            self.store.undo(&all.taken);
            return Ok(report);
        }
        let result = self.sink.save(&prepared.counters).await;
        let mut failed: Vec<usize> = match &result {
            Ok(()) => Vec::new(),
            Err(err) => match err.failed() {
                Some(failed) => failed.iter().filter_map(|&i| prepared.sources.get(i).copied()).collect(),
                None => prepared.sources.clone(),
            },
        };
        failed.sort_unstable();
        let (undone, committed): (Vec<_>, Vec<_>) =
            all.taken.iter().enumerate().partition(|(i, _)| failed.binary_search(i).is_ok());
        self.store.undo(undone.into_iter().map(|(_, t)| t));
        self.store.commit(committed.into_iter().map(|(_, t)| t));
        match result {
            Ok(()) => {
                if reset {
                    self.store.reset_totals();
                    state.last_reset = Instant::now();
                    report.reset = true;
                }
                report.saved = prepared.counters.len();
                Ok(report)
            }
            Err(err) => {
                self.dumps_failed.fetch_add(1, Relaxed);
                Err(Error::Save(err))
            }
        }
    }

    /// Counts (and warns about, once a minute) the values the counters refused since the previous dump.
    fn count_refused(&self, all: &TakeAll) {
        if all.saturated > 0 {
            self.values_saturated.fetch_add(all.saturated, Relaxed);
        }
        if all.rejected > 0 {
            let total = self.values_rejected.fetch_add(all.rejected, Relaxed) + all.rejected;
            if self.warn_rejected.ready() {
                tracing::warn!(
                    target: "cloudwatch_counters",
                    rejected = all.rejected,
                    rejected_so_far = total,
                    "values that are not finite or beyond CloudWatch's range (2^-360 to 2^360), or that do not fit \
                     the counter's type, were passed to counters and not recorded"
                );
            }
        }
    }

    /// The sink's view of the taken periods ([`SinkView::Period`]: what happened in the period and the current
    /// levels; [`SinkView::Totals`]: pip's running totals).
    fn prepare(&self, taken: &[Taken]) -> Prepared {
        let view = self.sink.view();
        let mut prepared = Prepared::default();
        for (i, t) in taken.iter().enumerate() {
            let empty = t.cell.is_empty_period(&t.period);
            prepared.worth_saving |= !empty && !t.cell.is_reserved();
            let mut counter = self.store.counter_for(&t.key, &t.cell);
            match view {
                SinkView::Totals => t.cell.fill_totals(&mut counter),
                _ if empty => continue,
                _ => t.cell.fill_period(&t.period, &mut counter),
            }
            if !counter.is_empty() {
                prepared.counters.push(counter);
                prepared.sources.push(i);
            }
        }
        prepared
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
        let all = self.store.take_all();
        let prepared = self.prepare(&all.taken);
        if !prepared.worth_saving {
            return;
        }
        let sink = Arc::clone(&self.sink);
        let counters = prepared.counters;
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
