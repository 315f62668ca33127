//! The pip counters API ([`Counters`], pip's `ICounters`) and [`CachedCounters`], which keeps counters in the
//! lock-free store and dumps them to a [`Sink`] on an interval.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics::{Key, KeyName};

use crate::config::CountersOptions;
use crate::counter::{Counter, CounterType};
use crate::error::Error;
use crate::exporter::{DumpReport, Shared};
use crate::handle::CounterHandle;
use crate::sink::Sink;
use crate::timing::CounterTiming;

/// pip-services' `ICounters`: the operations every counters component offers.
///
/// Names are looked up on each call; on a hot path, hold a [`CounterHandle`] instead
/// ([`CachedCounters::handle`]), which updates with no lookup and no allocation.
pub trait Counters: Send + Sync {
    /// Starts timing; ending (or dropping) the returned guard records the elapsed milliseconds into the
    /// Interval counter `name`.
    fn begin_timing(&self, name: &str) -> CounterTiming;
    /// Records `elapsed_ms` into the Interval counter `name`.
    fn end_timing(&self, name: &str, elapsed_ms: f64);
    /// Records a sample into the Statistics counter `name`.
    fn stats(&self, name: &str, value: f64);
    /// Sets the LastValue counter `name`.
    fn last(&self, name: &str, value: f64);
    /// Sets the Timestamp counter `name` to now.
    fn timestamp_now(&self, name: &str) {
        self.timestamp(name, SystemTime::now());
    }
    /// Sets the Timestamp counter `name`.
    fn timestamp(&self, name: &str, value: SystemTime);
    /// Adds 1 to the Increment counter `name`.
    fn increment_one(&self, name: &str) {
        self.increment(name, 1);
    }
    /// Adds `value` to the Increment counter `name`.
    fn increment(&self, name: &str, value: i64);
}

/// Counters kept in memory and dumped to a [`Sink`] on an interval (pip's `CachedCounters`).
///
/// Cloning is cheap and shares the counters. [`open`](CachedCounters::open) starts the background dumps;
/// [`close`](CachedCounters::close) stops them and flushes what is left.
///
/// One counter exists per name (and label set) whatever its type. Updating a name with another type replaces
/// the counter, dropping its data, as in pip; handles to the old counter then record into a detached cell.
///
/// **Shutdown.** Call `close()` (or `close_blocking()`): it flushes everything and reports errors. Dropping the
/// last clone (and every layer and recorder made from it) of open counters without `close()` flushes
/// best-effort: outside async code it waits up to 5 s for the save; inside async code it spawns the save on the
/// runtime, which completes only if the runtime keeps running. A flush that fails or times out is warned about.
/// Counters never opened are not flushed.
#[derive(Clone)]
pub struct CachedCounters {
    pub(crate) shared: Arc<Shared>,
}

impl CachedCounters {
    /// Counters that dump to `sink` with `options`.
    pub fn new(sink: impl Sink, options: CountersOptions) -> CachedCounters {
        CachedCounters::with_shared_sink(Arc::new(sink), options)
    }

    /// Counters that dump to a shared sink.
    pub fn with_shared_sink(sink: Arc<dyn Sink>, options: CountersOptions) -> CachedCounters {
        let options = &options;
        let shared = Shared::new(sink, options);
        CachedCounters { shared: Arc::new(shared) }
    }

    /// A handle to the counter `name` (no labels) of type `counter_type`, created if needed.
    ///
    /// A `&'static str` name costs no allocation.
    pub fn handle(&self, name: impl Into<KeyName>, counter_type: CounterType) -> CounterHandle {
        self.handle_for_key(&Key::from_name(name), counter_type)
    }

    /// A handle to the counter with `key` (a name and labels; labels become CloudWatch dimensions).
    pub fn handle_for_key(&self, key: &Key, counter_type: CounterType) -> CounterHandle {
        CounterHandle::new(self.shared.store.cell(key, counter_type))
    }

    /// The counter `name` of `counter_type` as it is now. As pip's `get`, a missing counter (or one of another
    /// type) is created empty, replacing the old one; empty counters are never sent.
    pub fn get(&self, name: &str, counter_type: CounterType) -> Counter {
        let key = Key::from_name(name.to_owned());
        self.shared.store.cell(&key, counter_type);
        self.shared.store.get(&key).unwrap_or_else(|| Counter::new(name, counter_type))
    }

    /// Every counter as it is now, empty ones included (pip's `get_all`).
    pub fn get_all(&self) -> Vec<Counter> {
        self.shared.store.read_all()
    }

    /// The number of live counters.
    pub fn len(&self) -> usize {
        self.shared.store.len()
    }

    /// Whether there are no counters.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the counter `name` (without labels). Its data is dropped.
    pub fn clear(&self, name: &str) {
        self.shared.store.remove(&Key::from_name(name.to_owned()));
    }

    /// Removes every counter. Their data is dropped.
    pub fn clear_all(&self) {
        self.shared.store.clear();
    }

    /// The dump interval (pip's `get_interval`).
    pub fn interval(&self) -> Duration {
        self.shared.interval()
    }

    /// Changes the dump interval; the background task uses it from its next wait on.
    pub fn set_interval(&self, interval: Duration) {
        self.shared.set_interval(interval);
    }

    /// The reset timeout (zero = never reset).
    pub fn reset_timeout(&self) -> Duration {
        self.shared.reset_timeout()
    }

    /// Changes the reset timeout (see [`CountersOptions::reset_timeout`]).
    pub fn set_reset_timeout(&self, reset_timeout: Duration) {
        self.shared.set_reset_timeout(reset_timeout);
    }

    /// Applies `options`: interval, reset timeout, counter cap and telemetry switch.
    pub fn set_options(&self, options: &CountersOptions) {
        self.shared.set_options(options);
    }

    /// What the counters and their sink did so far: datums sent and skipped, failed requests and dumps, keys
    /// dropped past the cap, values rejected.
    pub fn telemetry(&self) -> crate::Telemetry {
        self.shared.telemetry()
    }

    /// Dumps now: saves every counter if any was updated since the last dump (and resets them if a reset is
    /// due). On error nothing is lost: the data goes out with the next dump.
    pub async fn dump(&self) -> Result<DumpReport, Error> {
        self.shared.dump().await
    }

    /// [`dump`](Self::dump) for synchronous code. Fails with [`Error::BlockingInRuntime`] inside async code.
    pub fn dump_blocking(&self) -> Result<DumpReport, Error> {
        let shared = Arc::clone(&self.shared);
        self.shared.block_on("dump_blocking", async move { shared.dump().await })?
    }

    /// Starts dumping every interval in the background. Idempotent.
    ///
    /// Inside a tokio runtime the task runs there; without one (a plain `main`), a small thread named
    /// `cloudwatch-counters` with its own single-threaded runtime is started.
    pub fn open(&self) -> Result<(), Error> {
        self.shared.open()
    }

    /// Whether background dumps are running.
    pub fn is_open(&self) -> bool {
        self.shared.is_open()
    }

    /// Stops background dumps (after a dump in progress) and flushes everything recorded so far.
    pub async fn close(&self) -> Result<DumpReport, Error> {
        let report = self.shared.close().await;
        self.shared.stop_thread(false);
        report
    }

    /// [`close`](Self::close) for synchronous code. Fails with [`Error::BlockingInRuntime`] inside async code.
    pub fn close_blocking(&self) -> Result<DumpReport, Error> {
        let shared = Arc::clone(&self.shared);
        let report = self.shared.block_on("close_blocking", async move { shared.close().await });
        self.shared.stop_thread(true);
        report?
    }

    /// A `metrics::Recorder` recording into these counters:
    /// `metrics::set_global_recorder(counters.recorder())`.
    pub fn recorder(&self) -> crate::recorder::CountersRecorder {
        crate::recorder::CountersRecorder::new(Arc::clone(&self.shared))
    }

    /// A `tracing_subscriber::Layer` that times spans and counts metric events into these counters, with the
    /// default settings: `registry().with(counters.layer())`.
    pub fn layer(&self) -> crate::layer::CountersLayer {
        self.layer_builder().build()
    }

    /// Settings for the layer (excluded targets, naming, what to record); finish with `.build()`.
    pub fn layer_builder(&self) -> crate::layer::CountersLayerBuilder {
        crate::layer::CountersLayerBuilder::new(Arc::clone(&self.shared))
    }

    fn name_handle(&self, name: &str, counter_type: CounterType) -> CounterHandle {
        self.handle(name.to_owned(), counter_type)
    }
}

impl Counters for CachedCounters {
    fn begin_timing(&self, name: &str) -> CounterTiming {
        CounterTiming::to_handle(self.name_handle(name, CounterType::Interval))
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
