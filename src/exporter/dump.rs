//! One dump: take every counter's period out of the store, save the sink's view of it, commit what was saved
//! and put back what was not.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use metrics::Key;
use tokio::time::Instant;

use super::{telemetry, DumpState, Exporter};
use crate::error::Error;
use crate::model::dump_text::DumpTextWriter;
use crate::model::Counter;
use crate::publishing;
use crate::sink::SinkView;
use crate::store::cell::Period;
use crate::store::{TakeAll, Taken};

/// What one dump did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DumpReport {
    /// Counters handed to the sink; 0 when nothing was saved: nothing updated since the last dump and no gauge
    /// (LastValue, Timestamp) set, which every dump publishes again, or only the crate's own telemetry changed.
    pub saved: usize,
    /// Whether this dump reset the local totals (`options.reset_timeout` had passed).
    pub reset: bool,
    /// Updates refused by the counters since the previous dump: values not finite or beyond CloudWatch's range,
    /// calls that do not fit the counter's type, and updates through handles of counters that were cleared,
    /// replaced or refused past `options.max_counters`.
    pub rejected_values: u64,
}

/// The periods of a dump in progress. A dump that is dropped before it settled them (a bounded `close` cancelled
/// it) settles them here: put back when nothing was handed to the sink yet, else counted as ambiguous and never
/// sent again, since the save was under way and CloudWatch may hold them.
struct InFlight<'a> {
    exporter: &'a Exporter,
    taken: &'a [Taken],
    prepared: &'a Prepared,
    sending: bool,
    settled: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if !self.sending {
            self.exporter.settle(self.taken, self.prepared, |_| true);
            return;
        }
        // Cut off during the save: what the sink had sent (or was sending) may have arrived and is not sent
        // again, nor is what it dropped for good; the rest goes back into the counters. Unconfirmed: what the
        // sink counted as ambiguous for the request it was sending (those it had settled are not).
        let sink = &self.exporter.sink;
        let ambiguous_before = sink.counts().datums_ambiguous;
        let sources = &self.prepared.sources;
        let (mut done, unconfirmed): (Vec<usize>, u64) = if let Some(done) = sink.maybe_delivered() {
            let unconfirmed = sink.counts().datums_ambiguous.saturating_sub(ambiguous_before);
            (done.iter().filter_map(|&i| sources.get(i).copied()).collect(), unconfirmed)
        } else {
            // A sink that cannot say: all of it may have arrived, and nothing else counted it.
            self.exporter.requests_abandoned.fetch_add(1, Relaxed);
            self.exporter.datums_abandoned.fetch_add(sources.len() as u64, Relaxed);
            (sources.clone(), sources.len() as u64)
        };
        done.sort_unstable();
        self.exporter.settle(self.taken, self.prepared, |i| done.binary_search(&i).is_err());
        self.exporter.cut_off_datums.fetch_add(unconfirmed, Relaxed);
        // Said whatever cut it off: a `close` (which says so in its error too), a runtime shutting down, a caller
        // giving up on `dump()`.
        if unconfirmed > 0 && self.exporter.warn_cut_off.ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                datums = unconfirmed,
                "a dump was dropped while its save was under way (a close cut it off, its runtime stopped, or its \
                 caller gave up on it): the destination may hold these datums, so they are not sent again; if it \
                 does not, they are lost"
            );
        }
    }
}

/// What started a dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// A call (`dump`, `close`, a flush), or the drop of counters never opened or whose close failed.
    Call,
    /// The interval task: no dump once `close` has begun.
    Timer,
    /// The drop of counters whose `close` saved everything: a dump only for what was recorded since (the
    /// gauges' levels alone, which the close published, would go twice).
    DropAfterClose,
}

/// What a dump hands the sink: the counters, and for each the index of the period it came from.
#[derive(Debug, Default)]
struct Prepared {
    counters: Vec<Counter>,
    sources: Vec<usize>,
    /// Whether anything but the crate's own telemetry has something to publish.
    worth_saving: bool,
    /// Whether anything but the crate's own telemetry and the gauges' levels (which every dump publishes again
    /// while they are set) has something to publish.
    beyond_levels: bool,
    /// The counters that carry properties (their index in `counters`) and their keys: a period that goes back
    /// takes its properties back with it.
    with_properties: Vec<(usize, Key)>,
}

/// The sizes of the last dump's buffers: the next dump makes room for as much at once (growing a vector of
/// 10,000 records copied each of them about twice more).
#[derive(Debug, Default)]
pub(super) struct LastSizes {
    /// Records prepared for the sink.
    records: AtomicUsize,
    /// The records' text, in bytes (see `DumpTextWriter::size`).
    text_bytes: AtomicUsize,
    /// The bounds of the parts of that text.
    text_bounds: AtomicUsize,
}

impl Exporter {
    /// One dump: take every counter's period, hand the sink its view of them, then commit what was saved and
    /// put back what was not (it goes out with the next dump; nothing is sent twice).
    pub(crate) async fn dump(&self) -> Result<DumpReport, Error> {
        self.dump_for(Trigger::Call).await
    }

    /// A dump of the interval task: none once `close` has begun.
    pub(crate) async fn timer_dump(&self) -> Result<DumpReport, Error> {
        self.dump_for(Trigger::Timer).await
    }

    /// A dump `trigger` started, marked as publishing (see `publishing`).
    pub(super) async fn dump_for(&self, trigger: Trigger) -> Result<DumpReport, Error> {
        self.dump_with(trigger, None).await
    }

    /// [`dump_for`](Self::dump_for) under the dump lock: `locked` where the caller took it already, else taken here.
    pub(super) async fn dump_with(
        &self,
        trigger: Trigger,
        locked: Option<tokio::sync::MutexGuard<'_, DumpState>>,
    ) -> Result<DumpReport, Error> {
        self.dumping_on_this_runtime();
        publishing::scope(async {
            let state = match locked {
                Some(state) => state,
                None => self.state.lock().await,
            };
            self.dump_locked(trigger, state).await
        })
        .await
    }

    /// [`dump_for`](Self::dump_for) under the dump lock `state`, already taken.
    async fn dump_locked(
        &self,
        trigger: Trigger,
        mut state: tokio::sync::MutexGuard<'_, DumpState>,
    ) -> Result<DumpReport, Error> {
        if trigger == Trigger::Timer && self.closing.load(Relaxed) {
            return Ok(DumpReport::default());
        }
        if self.publish_telemetry.load(Relaxed) {
            let now = self.telemetry();
            telemetry::record_deltas(&self.store, &state.published, &now);
            state.published = now;
        }
        let reset_timeout = self.reset_timeout();
        // Measured from the start of the dump that last reset, within a hundredth: with `reset_timeout` equal to
        // the interval, every timer dump resets, whatever its save took or its wake-up was late.
        let started = Instant::now();
        let reset = !reset_timeout.is_zero()
            && started.saturating_duration_since(state.last_reset) + reset_timeout / 100 >= reset_timeout;
        let (all, prepared) = self.take_and_prepare();
        self.count_refused(&all);
        let mut report = DumpReport { saved: 0, reset: false, rejected_values: all.rejected };
        let mut flight =
            InFlight { exporter: self, taken: &all.taken, prepared: &prepared, sending: false, settled: false };
        if !prepared.worth_saving || (trigger == Trigger::DropAfterClose && !prepared.beyond_levels) {
            // Only the crate's own telemetry changed (or, in the drop after a clean close, the gauges' levels): it
            // waits for the next save of the service's counters.
            drop(flight); // puts the periods back
            self.expire_idle(&all);
            return Ok(report);
        }
        flight.sending = true;
        let result = self.sink.save(&prepared.counters).await;
        flight.settled = true;
        let mut failed: Vec<usize> = match &result {
            Ok(()) => Vec::new(),
            Err(err) => match err.failed() {
                Some(failed) => failed.iter().filter_map(|&i| prepared.sources.get(i).copied()).collect(),
                // The destination may hold all of it: none of it is sent again.
                None if err.is_ambiguous() => Vec::new(),
                None => prepared.sources.clone(),
            },
        };
        failed.sort_unstable();
        self.settle(&all.taken, &prepared, |i| failed.binary_search(&i).is_ok());
        self.expire_idle(&all);
        match result {
            Ok(()) => {
                if reset {
                    self.store.reset_totals();
                    state.last_reset = started;
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

    /// How many counters hold something to publish that no dump saved (the gauges' levels alone, which every
    /// dump publishes again, do not count), if any: every period is taken and put back, as by a failed save.
    /// For the drop of counters that are not dumped any more.
    pub(super) fn unsaved(&self) -> Option<usize> {
        let (all, prepared) = self.take_and_prepare();
        self.settle(&all.taken, &prepared, |_| true);
        prepared.beyond_levels.then_some(prepared.counters.len())
    }

    /// Idle expiry after a dump. Not for a sink of pip's running view (the log): its totals would go.
    fn expire_idle(&self, all: &TakeAll) {
        if self.sink.view() != SinkView::Totals {
            self.store.expire_idle(all, self.idle_timeout(), std::time::Instant::now());
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
                    "values that are not finite or beyond CloudWatch's range (2^-360 to 2^360), that do not fit the \
                     counter's type, or that went through handles of counters cleared, replaced or refused past \
                     options.max_counters were passed to counters and not recorded"
                );
            }
        }
    }

    /// Takes every counter's period and prepares the sink's view of each as it is taken ([`SinkView::Period`]:
    /// what happened in the period and the current levels; [`SinkView::Totals`]: pip's running totals).
    fn take_and_prepare(&self) -> (TakeAll, Prepared) {
        let view = self.sink.view();
        let mut prepared = Prepared::default();
        let last = &self.last_sizes;
        let expected = last.records.load(Relaxed);
        prepared.counters.reserve(expected);
        prepared.sources.reserve(expected);
        let mut text = DumpTextWriter::with_capacity((last.text_bytes.load(Relaxed), last.text_bounds.load(Relaxed)));
        let all = self.store.take_all_with(|i, key, t| self.prepare(&mut prepared, &mut text, view, i, key, t));
        last.records.store(prepared.counters.len(), Relaxed);
        let (bytes, bounds) = text.size();
        last.text_bytes.store(bytes, Relaxed);
        last.text_bounds.store(bounds, Relaxed);
        text.finish();
        (all, prepared)
    }

    /// Adds the sink's view of the period `t` (the `i`th taken, of the counter `key`) to `prepared`, its name and
    /// dimensions written into the dump's `text`, unless there is nothing to send.
    fn prepare(
        &self,
        prepared: &mut Prepared,
        text: &mut DumpTextWriter,
        view: SinkView,
        i: usize,
        key: &Key,
        t: &Taken,
    ) {
        let empty = t.cell.is_empty_period(&t.period);
        prepared.worth_saving |= !empty && !t.cell.is_reserved();
        prepared.beyond_levels |= !empty && !t.cell.is_reserved() && !matches!(t.period, Period::Level);
        if empty && view != SinkView::Totals {
            // Nothing happened in the period: no counter to build (most of a large store, most dumps).
            return;
        }
        let at = prepared.counters.len();
        let counter = self.store.push_record(&mut prepared.counters, key, &t.cell, text);
        match view {
            SinkView::Totals => t.cell.fill_totals(counter),
            _ => t.cell.fill_period(&t.period, counter),
        }
        if counter.is_empty() {
            prepared.counters.pop();
            return;
        }
        counter.properties = self.store.take_properties(key);
        if !counter.properties.is_empty() {
            prepared.with_properties.push((at, key.clone()));
        }
        prepared.sources.push(i);
    }

    /// Commits the periods of `taken` or puts them back (`undone(i)`: the `i`th goes back, to be published with
    /// the next dump), with the properties of the counters `prepared` built from those that go back.
    fn settle(&self, taken: &[Taken], prepared: &Prepared, undone: impl Fn(usize) -> bool) {
        self.store.settle(taken, &undone);
        for (counter, key) in &prepared.with_properties {
            if prepared.sources.get(*counter).is_some_and(|&i| undone(i)) {
                self.store.restore_properties(key, prepared.counters[*counter].properties.clone());
            }
        }
    }
}

/// The exporter goes when the last owner (see `last_owner`) and the last task using it are gone: the owner's drop
/// has closed it (or left it to close in the background). What is left to stop: an interval task the owner's
/// drop could not (a background close dropped unfinished with its runtime), and our own runtime thread.
impl Drop for Exporter {
    fn drop(&mut self) {
        let driver = std::mem::take(&mut *self.lock_driver());
        if let Some((stop, _task)) = &driver.timer {
            stop.notify_one();
        }
        if let Some(own) = driver.own {
            own.stop(None);
        }
    }
}
