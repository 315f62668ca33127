//! The drop of the last owner (every clone of the counters, and every layer and recorder made from them): open
//! counters close best-effort, counters of a sink that saves without waiting (EMF) dump in place.
//!
//! The owners are the user's side alone. The interval task holds the exporter during each of its dumps, so the
//! exporter's own drop may run at the end of such a dump, inside that task, where nothing can wait: the flush is
//! decided here, when the user lets go, and a dump under way is waited for as `close` waits for it.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::driver::{letting_the_runtime_go_on, run_and_wait, shutting_down, Deadline};
use super::dump::Trigger;
use super::Exporter;
use crate::error::Error;

/// Held (shared) by every clone of the counters and every front-end made from them; its drop is the last
/// owner's.
pub(crate) struct LastOwner(Arc<Exporter>);

impl LastOwner {
    pub(crate) fn new(exporter: Arc<Exporter>) -> LastOwner {
        LastOwner(exporter)
    }
}

/// Dropping open counters (the last clone, layer and recorder included) without `close()` closes them best-effort, as
/// `close` does: a dump under way may finish, then the rest is flushed, within `options.close_timeout`. Outside async
/// code, in a multi-thread runtime, and in a current-thread runtime that ran none of their dumps while the counters run
/// on our own runtime thread, the drop waits for it (on that thread if the counters run one, else on a helper thread:
/// never on the caller's runtime). Elsewhere in a current-thread runtime (its tasks and its blocking threads alike) it
/// cannot wait, as the close would need that runtime (the interval task's, or one the sink keeps work on, such as the
/// SDK's pooled connections): the close runs in the background and completes only if the program goes on (warned about
/// when that runtime is ending), but for a sink that saves without waiting (EMF), which flushes right there. A close
/// that fails, times out or is dropped unfinished is warned about.
/// For a sink that hands its output to a thread of its own (EMF to the CloudWatch agent), the drop then waits,
/// within the same `options.close_timeout`, for that output to go out (in a current-thread runtime, in a blocking
/// task of the runtime, which its shutdown waits for), and warns about what is still waiting: a program that ends
/// right after the drop would lose it.
///
/// Dropping counters that are not open stops their own thread, if any. Those of a sink that saves without
/// waiting dump in place (see [`Exporter::dump_in_place`]); the others, after a `close` that failed or was
/// cancelled, warn about what it left unsaved.
impl Drop for LastOwner {
    fn drop(&mut self) {
        let exporter = &self.0;
        // Until when the drop waits for the sink's output (its `drain` may wait less: see `EmfCounters`).
        let deadline = Deadline::after(exporter.close_timeout());
        let (open, mut own) = {
            let driver = exporter.lock_driver();
            (driver.timer.is_some(), driver.own.as_ref().map(|own| own.handle.clone()))
        };
        let in_place = exporter.dump_in_place_on_drop.load(Relaxed);
        if !open {
            exporter.stop_thread(None);
            let closed_clean = exporter.closing.load(Relaxed) && exporter.close_saved.load(Relaxed);
            if in_place {
                // After a `close` that saved everything, only what was recorded since: a dump of the gauges'
                // levels alone would send them twice. After one that failed, what it kept, gauges and all.
                exporter.dump_in_place(if closed_clean { Trigger::DropAfterClose } else { Trigger::Call }, None);
                drain_output_after_drop(exporter, deadline);
            } else if exporter.closing.load(Relaxed) && !closed_clean {
                if let Some(counters) = exporter.unsaved() {
                    warn_lost(counters, &"their close() failed or was cancelled");
                }
            }
            return;
        }
        // No more interval dumps, and no restart of the interval task on a thread of its own should its runtime
        // stop before the close below runs.
        exporter.closing.store(true, Relaxed);
        let counters = exporter.store().len();
        if let Ok(current) = Handle::try_current() {
            if current.runtime_flavor() == RuntimeFlavor::CurrentThread {
                if in_place && exporter.close_in_place() {
                    drain_output_after_drop(exporter, deadline);
                    return;
                }
                // Shutting down, this runtime runs none of its tasks again (the interval task, if it runs here, is
                // dropped before or after this drop, in no set order): the close needs our own thread.
                let ending = shutting_down(&current);
                if ending && own.is_none() {
                    own = exporter.lock_driver().own_handle().ok();
                }
                if own.is_none() || exporter.dumped_on(&current) {
                    close_in_the_background(exporter, own, ending, current, counters, deadline);
                    return;
                }
                // On our own thread, and with nothing of the sink's on this runtime (no dump ran here), the close
                // needs nothing of it: waited for below. Run in the background, it would be lost without a word
                // when this runtime is ending, and the program with it.
            }
        }
        let closing = Arc::clone(exporter);
        let close = async move { closing.close().await };
        let bound = exporter.call_deadline();
        let result = run_and_wait(own, "dropping the counters", close, exporter.close_timeout());
        exporter.stop_thread(Some(bound));
        match result {
            Ok(Ok(_)) => drain_output_after_drop(exporter, deadline),
            Err(err @ Error::Timeout { .. }) => tracing::warn!(
                target: "cloudwatch_counters",
                counters,
                "counters were dropped without close(), and their close did not finish in time: {err}; it goes on in the background, and what it holds is lost if the program ends first"
            ),
            Ok(Err(err)) | Err(err) => warn_lost(counters, &err),
        }
    }
}

impl Exporter {
    /// Closes counters of a sink that saves without waiting right here, with no runtime: stops the interval
    /// task and dumps in place. Not when a dump is under way (on our own thread): `false` then, nothing done.
    fn close_in_place(&self) -> bool {
        let Ok(idle) = self.state.try_lock() else {
            return false;
        };
        if let Some((stop, task)) = self.lock_driver().timer.take() {
            stop.notify_one();
            task.abort();
        }
        // Under the lock taken above: an interval dump woken meanwhile on our own thread waits for this one (and
        // then, closing, does nothing).
        self.dump_in_place(Trigger::Call, Some(idle));
        self.stop_thread(None);
        true
    }
}

/// The close of counters dropped in a current-thread runtime (`current`), which cannot wait for it: when it runs on
/// their interval task's runtime, or when their dumps ran on this one (their sink may need it, blocked by a wait).
/// Spawned on our own runtime thread (`own`) if they run one, else on the runtime their interval task runs on.
/// Where this runtime is `ending` (shutting down), the program may end with it: warned about, as the close goes on
/// in the background.
fn close_in_the_background(
    exporter: &Arc<Exporter>,
    own: Option<Handle>,
    ending: bool,
    current: Handle,
    counters: usize,
    deadline: Deadline,
) {
    if own.is_some() && ending {
        tracing::warn!(target: "cloudwatch_counters", counters, "counters were dropped without close() while the runtime that ran their dumps shuts down: their close goes on in the background, on a thread of their own, and what it holds is lost if the program ends first; call close().await before the runtime ends");
    } else {
        tracing::debug!(target: "cloudwatch_counters", counters, "counters dropped without close() in a current-thread runtime: closing in the background");
    }
    let runtime = match own {
        Some(own) => own,
        None => exporter.lock_driver().handle.clone().unwrap_or(current),
    };
    let exporter = Arc::clone(exporter);
    // Armed outside the task: a task its runtime drops before it ever runs warns too.
    let unfinished = Unfinished(Some(Arc::clone(&exporter)));
    drop(runtime.spawn(async move {
        let mut unfinished = unfinished;
        match exporter.close().await {
            Ok(_) => {
                let draining = Arc::clone(&exporter);
                let _ = tokio::task::spawn_blocking(move || draining.drain_output(deadline)).await;
            }
            Err(err) => warn_lost(counters, &err),
        }
        unfinished.0 = None;
        exporter.stop_thread(None);
    }));
}

/// Warns, when dropped armed, that a drop's close never finished (its runtime stopped first), if the counters
/// hold something no dump saved.
struct Unfinished(Option<Arc<Exporter>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(counters) = self.0.take().and_then(|exporter| exporter.unsaved()) {
            warn_lost(counters, &"the runtime stopped before the flush finished");
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

/// After the last dump of dropped counters: waits for the output their sink hands to a thread of its own (see
/// `Exporter::drain_output`), where waiting holds up no runtime: in a current-thread runtime, in a blocking task of
/// that runtime (its shutdown waits for it, within the deadline); on a multi-thread runtime's worker, in
/// `block_in_place`; elsewhere, right here.
fn drain_output_after_drop(exporter: &Arc<Exporter>, deadline: Deadline) {
    if exporter.drain_output.get().is_none() {
        return;
    }
    match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::CurrentThread => {
            let exporter = Arc::clone(exporter);
            drop(current.spawn_blocking(move || exporter.drain_output(deadline)));
        }
        _ => letting_the_runtime_go_on(|| exporter.drain_output(deadline)),
    }
}

impl Exporter {
    /// Waits, until `deadline`, for the output the sink hands to a thread of its own to go out (see
    /// `drain_output_on_drop`); warns about what is still waiting then.
    fn drain_output(&self, deadline: Deadline) {
        let Some(drain) = self.drain_output.get() else { return };
        let waiting = drain(deadline.left());
        if waiting > 0 {
            tracing::warn!(
                target: "cloudwatch_counters",
                documents = waiting,
                "counters were dropped and the CloudWatch agent did not take their last EMF documents within \
                 options.close_timeout: they go out if it comes back while the program runs, and are lost if it ends"
            );
        }
    }

    /// The last dump of counters dropped with no interval task running (never opened, or closed), right here:
    /// their sink saves without waiting on anything (EMF: written, or buffered for its agent), so the dump
    /// completes at its first poll, with no runtime. One that fails (or would wait) is warned about: what it held
    /// is lost.
    fn dump_in_place(&self, trigger: Trigger, locked: Option<tokio::sync::MutexGuard<'_, super::DumpState>>) {
        let mut dump = std::pin::pin!(self.dump_with(trigger, locked));
        let why = match std::future::Future::poll(
            dump.as_mut(),
            &mut std::task::Context::from_waker(std::task::Waker::noop()),
        ) {
            std::task::Poll::Ready(Ok(_)) => return,
            std::task::Poll::Ready(Err(err)) => err.to_string(),
            std::task::Poll::Pending => "the dump would have had to wait".to_owned(),
        };
        tracing::warn!(target: "cloudwatch_counters", "counters were dropped holding values no close() saved, and their last dump failed, so what it held is lost: {why}");
    }
}
