//! The exporter: reads the store on an interval or on demand and hands the counters to a [`Sink`].
//!
//! - [`dump`]: one dump — take the periods, save, commit or put back.
//! - [`last_owner`]: what the user's side holds; its drop closes open counters best-effort.
//! - [`driver`]: the background interval task, the thread of our own for programs without a runtime, and the
//!   bridge that runs async work from synchronous code.
//! - [`backoff`]: how long to wait after throttling.
//! - [`telemetry`]: what the counters and their sink did, readable and published.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// The tokio clock: the same as std's, but it can be paused and advanced in tests.
use tokio::time::Instant;

use crate::config::CountersOptions;
use crate::error::ConfigError;
use crate::sink::Sink;
use crate::store::Store;
use crate::warn::WarnEvery;

pub(crate) mod backoff;
pub(crate) mod driver;
pub(crate) use driver::block_on_here;
pub(crate) mod dump;
mod last_owner;
pub(crate) use last_owner::LastOwner;
pub(crate) mod telemetry;

pub use dump::DumpReport;
pub use telemetry::{Telemetry, TELEMETRY_PREFIX};

/// What the dumps of one set of counters share: the last reset, whether the last save failed, and the
/// telemetry already published.
#[derive(Debug)]
struct DumpState {
    last_reset: Instant,
    /// The telemetry totals already added to the telemetry counters.
    published: Telemetry,
}

/// Reads one store and publishes it through one sink: the state a `CachedCounters` and its background task
/// share. The front-ends never see it.
pub(crate) struct Exporter {
    store: Arc<Store>,
    sink: Arc<dyn Sink>,
    interval_ms: AtomicU64,
    /// Notified when the interval changes, so that the interval task takes the new one at once.
    interval_changed: Arc<tokio::sync::Notify>,
    idle_timeout_ns: AtomicU64,
    /// Where in each interval the timer dumps, as a fraction of it (`f64` bits).
    phase: AtomicU64,
    reset_timeout_ns: AtomicU64,
    publish_telemetry: AtomicBool,
    values_rejected: AtomicU64,
    values_saturated: AtomicU64,
    dumps_failed: AtomicU64,
    /// Saves cut off by a bounded `close` while under way, of sinks that cannot say what they sent (all their
    /// datums count as ambiguous).
    requests_abandoned: AtomicU64,
    datums_abandoned: AtomicU64,
    /// Datums a cut-off save may have delivered (for `close`'s error), whatever the sink.
    cut_off_datums: AtomicU64,
    close_timeout_ms: AtomicU64,
    /// Set by `close`: the interval task starts no more dumps (it checks under the dump lock).
    closing: AtomicBool,
    /// Blocking calls (`*_blocking`) under way: our own runtime thread is not stopped under them.
    blocking_calls: std::sync::atomic::AtomicUsize,
    /// Set by `close` when its final dump saved everything, for the drop (see `dump_in_place_on_drop`).
    close_saved: AtomicBool,
    /// The sink saves without waiting on anything (EMF): dropped with no interval task to flush them (never
    /// opened, or closed), the counters dump in place; after a close that saved everything, only when something
    /// besides the gauges' levels was recorded since.
    dump_in_place_on_drop: AtomicBool,
    /// For a sink that hands its output to a thread of its own (EMF to the agent): waits, at most the time given,
    /// for that output to go out, and says how much is still waiting. The last owner's drop waits with it.
    drain_output: std::sync::OnceLock<DrainOutput>,
    warn_rejected: WarnEvery,
    /// Warns about dumps cut off during their save (by a bounded `close`, a runtime that stopped, a caller that
    /// gave up on them).
    warn_cut_off: WarnEvery,
    /// The runtimes dumps of these counters ran on, which matter to the last owner's drop in a current-thread
    /// runtime: the sink may keep work there (the AWS SDK's pooled connections are tasks of the runtime that made
    /// them), and a drop that blocked that runtime's only thread would wait on them in vain (see `last_owner`).
    dumped_on: Mutex<Vec<tokio::runtime::Id>>,
    /// The sizes of the last dump's buffers, for the next one.
    last_sizes: dump::LastSizes,
    state: tokio::sync::Mutex<DumpState>,
    driver: Mutex<driver::Driver>,
    /// What was wrong with the options the counters were made with, refused by `open` until options that pass
    /// are set (`new` cannot fail).
    invalid_options: Mutex<Option<ConfigError>>,
    /// The options last set (their interval and reset timeout may have changed since: those are read from above).
    options: Mutex<CountersOptions>,
}

/// Waits, at most the time given, for a sink's output to leave its own thread; returns how much is still waiting.
pub(crate) type DrainOutput = Box<dyn Fn(Duration) -> usize + Send + Sync>;

impl Exporter {
    pub(crate) fn new(sink: Arc<dyn Sink>, options: &CountersOptions) -> Exporter {
        let exporter = Exporter {
            store: Arc::new(Store::with_max_counters(options.get_max_counters())),
            sink,
            interval_ms: AtomicU64::new(0),
            interval_changed: Arc::new(tokio::sync::Notify::new()),
            idle_timeout_ns: AtomicU64::new(0),
            phase: AtomicU64::new(options.get_dump_phase().unwrap_or_else(fastrand::f64).to_bits()),
            reset_timeout_ns: AtomicU64::new(0),
            publish_telemetry: AtomicBool::new(true),
            values_rejected: AtomicU64::new(0),
            values_saturated: AtomicU64::new(0),
            dumps_failed: AtomicU64::new(0),
            requests_abandoned: AtomicU64::new(0),
            datums_abandoned: AtomicU64::new(0),
            cut_off_datums: AtomicU64::new(0),
            close_timeout_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            blocking_calls: std::sync::atomic::AtomicUsize::new(0),
            close_saved: AtomicBool::new(false),
            dump_in_place_on_drop: AtomicBool::new(false),
            drain_output: std::sync::OnceLock::new(),
            warn_rejected: WarnEvery::default(),
            warn_cut_off: WarnEvery::default(),
            dumped_on: Mutex::new(Vec::new()),
            last_sizes: dump::LastSizes::default(),
            state: tokio::sync::Mutex::new(DumpState { last_reset: Instant::now(), published: Telemetry::default() }),
            driver: Mutex::new(driver::Driver::default()),
            invalid_options: Mutex::new(None),
            options: Mutex::new(options.clone()),
        };
        exporter.set_options(options);
        exporter
    }

    /// The error of the options last set, if they break a rule (see [`CountersOptions::validate`]).
    pub(crate) fn invalid_options(&self) -> Option<ConfigError> {
        self.invalid_options.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Makes a drop of counters with no interval task running dump in place (for a sink that saves without
    /// waiting).
    pub(crate) fn dump_in_place_on_drop(&self) {
        self.dump_in_place_on_drop.store(true, Relaxed);
    }

    /// Makes the last owner's drop wait, within `options.close_timeout`, for the output the sink hands to a thread
    /// of its own (see `drain_output`).
    pub(crate) fn drain_output_on_drop(&self, drain: DrainOutput) {
        let _ = self.drain_output.set(drain);
    }

    /// The store this exporter reads.
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Applies the interval, reset timeout, counter cap, percentiles and telemetry switches.
    pub(crate) fn set_options(&self, options: &CountersOptions) {
        *self.invalid_options.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = options.validate().err();
        *self.lock_options() = options.clone();
        self.set_interval(options.get_interval());
        self.idle_timeout_ns.store(u64::try_from(options.get_idle_timeout().as_nanos()).unwrap_or(u64::MAX), Relaxed);
        if let Some(phase) = options.get_dump_phase() {
            self.phase.store(phase.to_bits(), Relaxed);
        }
        self.set_reset_timeout(options.get_reset_timeout());
        self.store.set_max_counters(options.get_max_counters());
        self.store.set_percentiles(options.get_percentiles() && self.sink.percentiles());
        self.publish_telemetry.store(options.get_telemetry(), Relaxed);
        self.set_close_timeout(options.get_close_timeout());
    }

    /// How long `close` (and every `*_blocking` call) may take.
    pub(crate) fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.close_timeout_ms.load(Relaxed))
    }

    pub(crate) fn set_close_timeout(&self, timeout: Duration) {
        self.close_timeout_ms.store(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1), Relaxed);
    }

    /// Datums that saves cut off by a bounded `close` may have delivered, so far.
    pub(crate) fn cut_off_datums(&self) -> u64 {
        self.cut_off_datums.load(Relaxed)
    }

    /// The running totals of what the counters and their sink did.
    pub(crate) fn telemetry(&self) -> Telemetry {
        Telemetry::new(
            self.sink.counts(),
            telemetry::StoreCounts {
                keys_dropped: self.store.dropped(),
                values_rejected: self.values_rejected.load(Relaxed),
                values_saturated: self.values_saturated.load(Relaxed),
                dumps_failed: self.dumps_failed.load(Relaxed),
                labels_cut: self.store.labels_cut(),
                names_empty: self.store.names_empty(),
                requests_abandoned: self.requests_abandoned.load(Relaxed),
                datums_abandoned: self.datums_abandoned.load(Relaxed),
                counters_expired: self.store.expired(),
            },
        )
    }

    /// Where in each interval the timer dumps, as a fraction of it.
    pub(crate) fn dump_phase(&self) -> f64 {
        f64::from_bits(self.phase.load(Relaxed))
    }

    /// How long a counter may go without an update before it leaves the store (zero: never).
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_nanos(self.idle_timeout_ns.load(Relaxed))
    }

    pub(crate) fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Relaxed))
    }

    /// Sets the interval; a running interval task schedules its next dump by it at once.
    pub(crate) fn set_interval(&self, interval: Duration) {
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX).max(1);
        if self.interval_ms.swap(ms, Relaxed) != ms {
            self.interval_changed.notify_one();
        }
    }

    /// The options in effect (see [`CachedCounters::options`](crate::CachedCounters::options)): those last set,
    /// with the interval and reset timeout as they are now.
    pub(crate) fn options(&self) -> CountersOptions {
        self.lock_options().clone().interval(self.interval()).reset_timeout(self.reset_timeout())
    }

    fn lock_options(&self) -> std::sync::MutexGuard<'_, CountersOptions> {
        self.options.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn reset_timeout(&self) -> Duration {
        Duration::from_nanos(self.reset_timeout_ns.load(Relaxed))
    }

    pub(crate) fn set_reset_timeout(&self, reset_timeout: Duration) {
        self.reset_timeout_ns.store(u64::try_from(reset_timeout.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }
}
