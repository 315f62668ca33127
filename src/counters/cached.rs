//! [`CachedCounters`]: counters kept in the lock-free store and dumped to a [`Sink`] on an interval.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics::{Key, KeyName};

use crate::config::CountersOptions;
use crate::error::Error;
use crate::exporter::{DumpReport, Exporter, LastOwner, Telemetry};
use crate::frontend::counters_api::Counters;
use crate::frontend::handle::CounterHandle;
use crate::frontend::layer::{CountersLayer, CountersLayerBuilder};
use crate::frontend::recorder::CountersRecorder;
use crate::frontend::timing::CounterTiming;
use crate::frontend::Owner;
use crate::model::{Counter, CounterType};
use crate::sink::Sink;

/// Counters kept in memory and dumped to a [`Sink`] on an interval (pip's `CachedCounters`).
///
/// Cloning is cheap and shares the counters. [`open`](CachedCounters::open) starts the background dumps;
/// [`close`](CachedCounters::close) stops them and flushes what is left.
///
/// One counter exists per name (and label set) whatever its type. Updating a name with another type replaces
/// the counter, dropping its data, as in pip; updates through handles to the old counter are then refused and
/// counted (`Telemetry::values_rejected`), as are updates through handles of cleared counters.
///
/// **Shutdown.** Call `close()` (or `close_blocking()`): it flushes everything and reports errors. Dropping the last
/// clone (and every layer and recorder made from it) of open counters without `close()` closes them best-effort, as
/// `close` would: an interval dump under way may finish, then the rest is flushed, within `options.close_timeout`.
/// Outside async code, in a multi-thread runtime, and in a current-thread runtime that never ran their dumps while the
/// counters run on their own thread, the drop waits for that (the work runs on the counters' own thread, or a helper
/// thread, never on the caller's runtime); elsewhere in a current-thread runtime it cannot wait, so the close runs in
/// the background and completes only if the program goes on. A close that fails, times out or is dropped unfinished is
/// warned about, and so are values left unsaved by a `close()` that failed or was cancelled before the drop. Counters
/// never opened are not flushed.
#[derive(Clone)]
pub struct CachedCounters {
    exporter: Arc<Exporter>,
    /// Shared with every clone and front-end: its drop, the last owner's, closes open counters.
    owner: Arc<LastOwner>,
}

impl CachedCounters {
    /// Counters that dump to `sink` with `options`. Options are checked by [`open`](Self::open), which refuses
    /// options that break a rule ([`CountersOptions::validate`]) until [`set_options`](Self::set_options) sets
    /// good ones.
    pub fn new(sink: impl Sink, options: CountersOptions) -> CachedCounters {
        CachedCounters::with_shared_sink(Arc::new(sink), options)
    }

    /// Counters that dump to a shared sink.
    pub fn with_shared_sink(sink: Arc<dyn Sink>, options: CountersOptions) -> CachedCounters {
        let exporter = Arc::new(Exporter::new(sink, &options));
        CachedCounters { owner: Arc::new(LastOwner::new(Arc::clone(&exporter))), exporter }
    }

    /// A handle to the counter `name` (no labels) of type `counter_type`, created if needed.
    ///
    /// A `&'static str` name costs no allocation.
    pub fn handle(&self, name: impl Into<KeyName>, counter_type: CounterType) -> CounterHandle {
        self.handle_for_key(&Key::from_name(name), counter_type)
    }

    /// A handle to the counter with `key` (a name and labels; labels become CloudWatch dimensions).
    pub fn handle_for_key(&self, key: &Key, counter_type: CounterType) -> CounterHandle {
        CounterHandle::new(self.exporter.store().cell(key, counter_type))
    }

    /// The counter `name` of `counter_type` as it is now. As pip's `get`, a missing counter (or one of another
    /// type) is created empty, replacing the old one; empty counters are never sent.
    pub fn get(&self, name: &str, counter_type: CounterType) -> Counter {
        let key = Key::from_name(name.to_owned());
        let store = self.exporter.store();
        store.cell(&key, counter_type);
        store.get(&key).unwrap_or_else(|| Counter::new(name, counter_type))
    }

    /// Every counter as it is now, empty ones included (pip's `get_all`).
    pub fn get_all(&self) -> Vec<Counter> {
        self.exporter.store().read_all()
    }

    /// The number of live counters.
    pub fn len(&self) -> usize {
        self.exporter.store().len()
    }

    /// Whether there are no counters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the counter `name` (without labels). Its data is dropped.
    pub fn clear(&self, name: &str) {
        self.exporter.store().remove(&Key::from_name(name.to_owned()));
    }

    /// Removes every counter. Their data is dropped.
    pub fn clear_all(&self) {
        self.exporter.store().clear();
    }

    /// The dump interval (pip's `get_interval`).
    pub fn interval(&self) -> Duration {
        self.exporter.interval()
    }

    /// Changes the dump interval (a zero interval is raised to 1 ms); the background task takes it at once: its
    /// next dump is at the new interval's next phase, not after the wait the old interval set.
    pub fn set_interval(&self, interval: Duration) {
        self.exporter.set_interval(interval);
    }

    /// The reset timeout (zero = never reset).
    pub fn reset_timeout(&self) -> Duration {
        self.exporter.reset_timeout()
    }

    /// Changes the reset timeout (see [`CountersOptions::reset_timeout`]).
    pub fn set_reset_timeout(&self, reset_timeout: Duration) {
        self.exporter.set_reset_timeout(reset_timeout);
    }

    /// Most label names a counter keeps (see [`MAX_LABELS`](crate::MAX_LABELS)): 30 for a sink that adds no
    /// dimension of its own (no InstanceID).
    pub(crate) fn set_max_labels(&self, max: usize) {
        self.exporter.store().set_max_labels(max);
    }

    /// The options in effect: those the counters were made with or last given ([`set_options`](Self::set_options)),
    /// with the interval and reset timeout as last changed.
    pub fn options(&self) -> CountersOptions {
        self.exporter.options()
    }

    /// Applies `options`: interval, reset timeout, counter cap and telemetry switch.
    ///
    /// # Errors
    /// [`Error::Config`] when the options break a rule (see [`CountersOptions::validate`]); nothing changes then.
    pub fn set_options(&self, options: &CountersOptions) -> Result<(), Error> {
        options.validate()?;
        self.exporter.set_options(options);
        Ok(())
    }

    /// Makes the last owner's drop dump in place when no interval task runs (never opened, or closed; after a
    /// close that saved everything, only for what was recorded since besides the gauges' levels): for a sink that
    /// saves without waiting (EMF).
    pub(crate) fn dump_in_place_on_drop(&self) {
        self.exporter.dump_in_place_on_drop();
    }

    /// Makes the last owner's drop wait, within `options.close_timeout`, for what `drain` waits for (an EMF agent
    /// output's buffer to empty); `drain` returns what is still waiting.
    pub(crate) fn drain_output_on_drop(&self, drain: impl Fn(Duration) -> usize + Send + Sync + 'static) {
        self.exporter.drain_output_on_drop(Box::new(drain));
    }

    /// [`dump_blocking`](Self::dump_blocking) on this thread, for a sink that writes synchronously (EMF to a
    /// writer): no helper thread per call.
    pub(crate) fn dump_here(&self) -> Result<DumpReport, Error> {
        crate::exporter::block_on_here("flush_blocking", self.exporter.dump(), self.exporter.close_timeout())?
    }

    /// The bound on `close` and the `*_blocking` calls (`options.close_timeout`).
    pub(crate) fn close_timeout(&self) -> std::time::Duration {
        self.exporter.close_timeout()
    }

    /// Where in each interval the timer dumps, as a fraction of it: `options.dump_phase`, or the random phase
    /// these counters picked when they were made (see [`CountersOptions::dump_phase`](crate::CountersOptions::dump_phase)).
    pub fn dump_phase(&self) -> f64 {
        self.exporter.dump_phase()
    }

    /// What the counters and their sink did so far: datums sent and skipped, failed requests and dumps, keys
    /// dropped past the cap, values rejected.
    pub fn telemetry(&self) -> Telemetry {
        self.exporter.telemetry()
    }

    /// Dumps now: saves what every counter has to publish (what was recorded since the last dump, and the
    /// current value of every gauge and timestamp, sent at every dump while the counter lives), and resets the
    /// totals if a reset is due. With nothing recorded and no gauge or timestamp set, it saves nothing.
    ///
    /// # Errors
    /// [`Error::Save`] when the sink failed; nothing is lost: the data goes out with the next dump.
    pub async fn dump(&self) -> Result<DumpReport, Error> {
        self.exporter.dump().await
    }

    /// [`dump`](Self::dump) for synchronous code.
    ///
    /// # Errors
    /// As [`dump`](Self::dump); also [`Error::BlockingInRuntime`] inside async code.
    pub fn dump_blocking(&self) -> Result<DumpReport, Error> {
        let exporter = Arc::clone(&self.exporter);
        self.exporter.block_on("dump_blocking", async move { exporter.dump().await })?
    }

    /// Starts dumping every interval in the background. Idempotent.
    ///
    /// Inside a tokio runtime the task runs there; without one (a plain `main`), a small thread named
    /// `cloudwatch-counters` with its own single-threaded runtime is started.
    ///
    /// # Errors
    /// [`Error::Config`] when the options break a rule; [`Error::Thread`] when that thread cannot be started.
    #[allow(clippy::unused_async)] // async like every counters type's `open`, which may connect first
    pub async fn open(&self) -> Result<(), Error> {
        self.exporter.open()
    }

    /// [`open`](Self::open) for synchronous code (it never blocks for long: it only starts the timer).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_blocking(&self) -> Result<(), Error> {
        self.exporter.open()
    }

    /// Whether background dumps are running.
    pub fn is_open(&self) -> bool {
        self.exporter.is_open()
    }

    /// Stops background dumps (after a dump in progress) and flushes everything recorded so far.
    ///
    /// # Errors
    /// [`Error::Save`] when the final flush failed; the data is kept, and `dump` or `close` can be retried.
    pub async fn close(&self) -> Result<DumpReport, Error> {
        let report = self.exporter.close().await;
        self.exporter.stop_thread(None);
        report
    }

    /// [`close`](Self::close) for synchronous code.
    ///
    /// # Errors
    /// As [`close`](Self::close); also [`Error::BlockingInRuntime`] inside async code.
    pub fn close_blocking(&self) -> Result<DumpReport, Error> {
        let exporter = Arc::clone(&self.exporter);
        let deadline = self.exporter.call_deadline();
        let report = self.exporter.block_on("close_blocking", async move { exporter.close().await });
        if !matches!(report, Err(Error::BlockingInRuntime(_))) {
            // Closed (or timed out closing): our own runtime thread, if any, is no longer needed.
            self.exporter.stop_thread(Some(deadline));
        }
        report?
    }

    /// A `metrics::Recorder` recording into these counters:
    /// `metrics::set_global_recorder(counters.recorder())`.
    pub fn recorder(&self) -> CountersRecorder {
        CountersRecorder::new(Arc::clone(self.exporter.store()), self.owner())
    }

    /// A `tracing_subscriber::Layer` that times spans and counts metric events into these counters, with the
    /// default settings: `registry().with(counters.layer())`.
    pub fn layer(&self) -> CountersLayer {
        self.layer_builder().build()
    }

    /// Settings for the layer (excluded targets, naming, what to record); finish with `.build()`.
    pub fn layer_builder(&self) -> CountersLayerBuilder {
        CountersLayerBuilder::new(Arc::clone(self.exporter.store()), self.owner())
    }

    /// What a front-end holds to keep these counters publishing while it lives.
    fn owner(&self) -> Owner {
        Arc::clone(&self.owner) as Owner
    }

    #[cfg(feature = "cloudwatch")]
    /// Runs `future` from synchronous code on the runtime these counters were opened on, or a temporary one.
    pub(crate) fn block_on<F>(&self, what: &'static str, future: F) -> Result<F::Output, Error>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.exporter.block_on(what, future)
    }

    fn name_handle(&self, name: &str, counter_type: CounterType) -> CounterHandle {
        self.handle(name.to_owned(), counter_type)
    }
}

impl Counters for CachedCounters {
    fn begin_timing(&self, name: &str) -> CounterTiming {
        CounterTiming::named(self.exporter.store(), Key::from_name(name.to_owned()))
    }

    fn end_timing(&self, name: &str, elapsed_ms: f64) {
        self.name_handle(name, CounterType::Interval).record(elapsed_ms);
    }

    fn stats(&self, name: &str, value: f64) {
        self.name_handle(name, CounterType::Statistics).record(value);
    }

    fn last(&self, name: &str, value: f64) {
        self.name_handle(name, CounterType::LastValue).set_last(value);
    }

    fn timestamp(&self, name: &str, value: SystemTime) {
        self.name_handle(name, CounterType::Timestamp).timestamp(value);
    }

    fn increment(&self, name: &str, value: i64) {
        self.name_handle(name, CounterType::Increment).increment(value);
    }
}

impl fmt::Debug for CachedCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedCounters")
            .field("counters", &self.len())
            .field("interval", &self.interval())
            .field("open", &self.is_open())
            .finish()
    }
}

/// The counters API of a counters type that wraps [`CachedCounters`] in `self.counters`: the pip [`Counters`]
/// calls, handles, reads, the front-ends and on-demand dumps, forwarded. Opening and closing stay the type's own.
macro_rules! forward_counters_api {
    ($type:ty) => {
        impl $type {
            /// The underlying counters, for the rest of their API (`get_all`, `clear`, intervals, ...).
            pub fn counters(&self) -> &$crate::CachedCounters {
                &self.counters
            }

            /// A handle to the counter `name` (no labels); see [`CachedCounters::handle`](crate::CachedCounters::handle).
            pub fn handle(
                &self,
                name: impl Into<metrics::KeyName>,
                counter_type: $crate::CounterType,
            ) -> $crate::CounterHandle {
                self.counters.handle(name, counter_type)
            }

            /// A handle to the counter with `key` (a name and labels); see
            /// [`CachedCounters::handle_for_key`](crate::CachedCounters::handle_for_key).
            pub fn handle_for_key(
                &self,
                key: &metrics::Key,
                counter_type: $crate::CounterType,
            ) -> $crate::CounterHandle {
                self.counters.handle_for_key(key, counter_type)
            }

            /// The counter `name` as it is now; see [`CachedCounters::get`](crate::CachedCounters::get).
            pub fn get(&self, name: &str, counter_type: $crate::CounterType) -> $crate::Counter {
                self.counters.get(name, counter_type)
            }

            /// A `metrics::Recorder` recording into these counters.
            pub fn recorder(&self) -> $crate::CountersRecorder {
                self.counters.recorder()
            }

            /// A `tracing_subscriber::Layer` timing spans into these counters.
            pub fn layer(&self) -> $crate::CountersLayer {
                self.counters.layer()
            }

            /// Settings for the layer; finish with `.build()`.
            pub fn layer_builder(&self) -> $crate::CountersLayerBuilder {
                self.counters.layer_builder()
            }

            /// What publishing has done so far; see [`Telemetry`](crate::Telemetry).
            pub fn telemetry(&self) -> $crate::Telemetry {
                self.counters.telemetry()
            }

            /// Where in each interval the timer dumps; see
            /// [`CachedCounters::dump_phase`](crate::CachedCounters::dump_phase).
            pub fn dump_phase(&self) -> f64 {
                self.counters.dump_phase()
            }

            /// Dumps now; see [`CachedCounters::dump`](crate::CachedCounters::dump).
            ///
            /// # Errors
            /// [`Error::Save`](crate::Error::Save) when the save failed; the data is kept for the next dump.
            pub async fn dump(&self) -> Result<$crate::DumpReport, $crate::Error> {
                self.counters.dump().await
            }

            /// [`dump`](Self::dump) for synchronous code.
            ///
            /// # Errors
            /// As `dump`; also [`Error::BlockingInRuntime`](crate::Error::BlockingInRuntime) inside async code.
            pub fn dump_blocking(&self) -> Result<$crate::DumpReport, $crate::Error> {
                self.counters.dump_blocking()
            }
        }

        impl $crate::Counters for $type {
            fn begin_timing(&self, name: &str) -> $crate::CounterTiming {
                self.counters.begin_timing(name)
            }

            fn end_timing(&self, name: &str, elapsed_ms: f64) {
                self.counters.end_timing(name, elapsed_ms);
            }

            fn stats(&self, name: &str, value: f64) {
                self.counters.stats(name, value);
            }

            fn last(&self, name: &str, value: f64) {
                self.counters.last(name, value);
            }

            fn timestamp(&self, name: &str, value: std::time::SystemTime) {
                self.counters.timestamp(name, value);
            }

            fn increment(&self, name: &str, value: i64) {
                self.counters.increment(name, value);
            }
        }
    };
}

pub(crate) use forward_counters_api;
