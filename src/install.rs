//! [`CloudWatchCounters::install`]: the one-liner that opens the counters and makes them the process's
//! `metrics` recorder and `tracing` subscriber, returning a [`CountersGuard`] that flushes and closes on drop.

use std::fmt;
use std::sync::Arc;

use tokio::runtime::{Handle, RuntimeFlavor};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

use crate::counters::{CloudWatchCounters, CloudWatchCountersBuilder};
use crate::error::Error;
use crate::exporter::driver::run_and_wait;
use crate::exporter::DumpReport;
use crate::frontend::layer::target_matches;

impl CloudWatchCounters {
    /// Opens the counters, installs their recorder as the global `metrics` recorder and
    /// `registry().with(counters.layer())` as the global `tracing` subscriber, and returns a guard: keep it for
    /// the life of the program, and call [`CountersGuard::close`] (or drop it) on shutdown to flush.
    ///
    /// To combine the layer with other layers (a `fmt` layer, filters), use [`install_recorder`](Self::install_recorder)
    /// and add `guard.counters().layer()` to your own subscriber.
    ///
    /// The subscriber is set with `tracing::subscriber::set_global_default`: nothing else (no `log` logger) is
    /// installed. Since nothing would show them otherwise, it also writes the crate's own warnings (target
    /// `cloudwatch_counters`, WARN and up: failed dumps, refused values, data a shutdown could not flush) to
    /// standard error.
    ///
    /// # Errors
    /// As [`open`](Self::open); [`Error::AlreadyInstalled`] when a global recorder or subscriber is already set
    /// (the counters are closed again then). A subscriber already set is found before the recorder is
    /// installed, so that a failed `install` leaves neither behind (barring another thread setting a subscriber
    /// at the same moment).
    pub async fn install(self) -> Result<CountersGuard, Error> {
        if tracing::dispatcher::has_been_set() {
            return Err(Error::AlreadyInstalled("tracing subscriber"));
        }
        let layer = self.layer();
        let guard = self.install_recorder().await?;
        let subscriber = tracing_subscriber::registry().with(layer).with(OwnWarnings);
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            // Closed through the guard, which then does not close again when dropped.
            let _ = guard.close().await;
            return Err(Error::AlreadyInstalled("tracing subscriber"));
        }
        Ok(guard)
    }

    /// Opens the counters and installs their recorder as the global `metrics` recorder (the tracing layer is
    /// left to you: `registry().with(guard.counters().layer()).with(...)`).
    ///
    /// # Errors
    /// As [`open`](Self::open); [`Error::AlreadyInstalled`] when a global recorder is already set.
    pub async fn install_recorder(self) -> Result<CountersGuard, Error> {
        self.open().await?;
        if metrics::set_global_recorder(self.recorder()).is_err() {
            let _ = self.close().await;
            return Err(Error::AlreadyInstalled("metrics recorder"));
        }
        Ok(CountersGuard { counters: Arc::new(self), closed: false })
    }
}

impl CloudWatchCountersBuilder {
    /// [`build`](Self::build), then [`CloudWatchCounters::install`]:
    /// `let _guard = CloudWatchCounters::builder().namespace("MyService").install().await?;`
    ///
    /// # Errors
    /// As [`build`](Self::build) and [`CloudWatchCounters::install`].
    pub async fn install(self) -> Result<CountersGuard, Error> {
        self.build()?.install().await
    }
}

/// Installed counters: [`close`](Self::close) flushes and closes them. Dropping the guard does the same,
/// best-effort: outside async code and in a multi-threaded runtime it waits for the flush (bounded by
/// `options.close_timeout`); in a current-thread runtime it cannot wait and warns: call `close().await` there.
#[must_use = "dropping the guard closes the counters at once"]
pub struct CountersGuard {
    /// Shared with the helper thread that closes them when the guard is dropped in a multi-thread runtime.
    counters: Arc<CloudWatchCounters>,
    closed: bool,
}

impl CountersGuard {
    /// The installed counters (for `layer()`, `telemetry()`, handles, ...).
    pub fn counters(&self) -> &CloudWatchCounters {
        &self.counters
    }

    /// Flushes everything recorded and closes the counters. Recording goes on into the store afterwards, but
    /// nothing more is published.
    ///
    /// # Errors
    /// As [`CloudWatchCounters::close`].
    pub async fn close(mut self) -> Result<DumpReport, Error> {
        self.closed = true;
        self.counters.close().await
    }
}

impl Drop for CountersGuard {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let result = match Handle::try_current() {
            Err(_) => self.counters.close_blocking(),
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                drop(handle);
                // On a helper thread with a runtime of its own, waited for by the wall clock: a guard dropped
                // with its task while the runtime shuts down finds no one driving that runtime's timers, which
                // `close` is bounded by. A worker hands its tasks on while it waits (never in a `LocalSet`, where
                // tokio forbids it).
                self.close_on_helper_thread()
            }
            Ok(_) => {
                warn_unflushed(&"a current-thread runtime cannot wait in drop: call `guard.close().await`");
                return;
            }
        };
        if let Err(err) = result {
            warn_unflushed(&err);
        }
    }
}

impl CountersGuard {
    /// Closes the counters on a helper thread, waiting at most `options.close_timeout` (and a second).
    fn close_on_helper_thread(&self) -> Result<DumpReport, Error> {
        let counters = Arc::clone(&self.counters);
        let timeout = counters.counters().close_timeout();
        run_and_wait(None, "dropping the install guard", async move { counters.close().await }, timeout)?
    }
}

fn warn_unflushed(why: &dyn fmt::Display) {
    tracing::warn!(target: "cloudwatch_counters", "installed counters were dropped and their final flush did not complete: {why}");
}

impl fmt::Debug for CountersGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountersGuard").field("counters", &self.counters).field("closed", &self.closed).finish()
    }
}

/// Writes the crate's own warnings (target `cloudwatch_counters`, WARN and up) to standard error, a line each:
/// `WARN cloudwatch_counters: <message> <field>=<value> ...`. A plain layer that looks at events only: a
/// per-layer filter (or tracing-subscriber's `fmt` layer, which keeps every span's fields) would cost every
/// span of the application tens of nanoseconds.
struct OwnWarnings;

impl<S: Subscriber> Layer<S> for OwnWarnings {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !target_matches(meta.target(), "cloudwatch_counters") || *meta.level() > Level::WARN {
            return;
        }
        let mut line = Line { text: format!("{} {}:", meta.level(), meta.target()) };
        event.record(&mut line);
        eprintln!("{}", line.text);
    }
}

/// An event's fields as one line: the message first as it comes, then `name=value` pairs.
struct Line {
    text: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use std::fmt::Write;
        let _ = if field.name() == "message" {
            write!(self.text, " {value:?}")
        } else {
            write!(self.text, " {}={value:?}", field.name())
        };
    }
}
