//! pip-services style performance counters for Rust, published to AWS CloudWatch Metrics.
//!
//! Counters are pip's records — Interval (timings in ms), LastValue, Statistics, Timestamp and Increment —
//! kept in one lock-free store and dumped to a [`Sink`] on an interval.
//!
//! ```
//! use cloudwatch_counters::{Counters, CountersOptions, LogCounters};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), cloudwatch_counters::Error> {
//! let counters = LogCounters::new(CountersOptions::default());
//! counters.open().await?;
//! counters.increment("mycomponent.mymethod.calls", 1);
//! let timing = counters.begin_timing("mycomponent.mymethod.exec_time");
//! // ... the work ...
//! timing.end_timing();
//! counters.close().await?; // flushes: prints both counters
//! # Ok(()) }
//! ```
//!
//! On Lambda or with the CloudWatch agent, [`EmfCounters`] publishes the same counters as Embedded Metric
//! Format log lines (see the README's EMF section).
//!
//! In a service, `CloudWatchCounters::builder().namespace(..).install().await?` opens CloudWatch counters,
//! installs them as the global `metrics` recorder and `tracing` subscriber, and returns a guard that flushes on
//! close (see the README for wiring the layer into a subscriber of your own).
//!
//! # How it works
//! - The flow is one-way: the front-ends (the [`CountersLayer`], the [`CountersRecorder`], the pip [`Counters`]
//!   API and [`CounterHandle`]s) write the store; the exporter reads the store on an interval and hands counters to
//!   a [`Sink`] (CloudWatch, the log); the counters types ([`CachedCounters`], `CloudWatchCounters`,
//!   [`LogCounters`], ...) wire them together. ARCHITECTURE.md in the repository maps the modules.
//! - Every counter is a cell of atomics in a sharded `DashMap` keyed by `metrics::Key` (name + labels), looked up
//!   with the key's precomputed hash. A [`CounterHandle`] points straight at a cell: updates through it are a few
//!   atomic operations, with no lock and no allocation. The name-based [`Counters`] methods look the name up first.
//!   The recorder and metric events are served from per-thread caches of handles (a miss rewrites an evicted
//!   handle, so it does not allocate either); the layer finds a span's counter in a per-thread cache of
//!   callsites, keeps its start in a table of open spans by id and times it with quanta's clock (the CPU's time
//!   stamp counter where it is reliable). BENCHMARKS.md has the figures beside the peers.
//! - A dump takes each counter's period out of the store — what was added, the period's samples (count, sum,
//!   min, max), and the current level of gauges and timestamps — and hands it to the sink. A metrics backend
//!   (CloudWatch) receives exactly that ([`SinkView::Period`]): each value goes out in one dump, never again, so
//!   CloudWatch's sums and counts are the truth. This is a deliberate fix of pip-services, which re-sends running
//!   totals that CloudWatch then adds up. A save that fails puts its period back for the next dump.
//! - pip's running view stays what is read locally: [`CachedCounters::get`], `get_all` and [`LogCounters`]
//!   ([`SinkView::Totals`]) show totals since the start with `reset_timeout` 0, and since the last reset
//!   otherwise, for as long as a counter lives (with a period sink, one idle for `options.idle_timeout` leaves
//!   the store with its totals). The dump folds each period into these totals; recording pays nothing for them.
//! - Samples are recorded behind a writer/reader phaser (HdrHistogram's): a sample enters a phase, updates that
//!   phase's slot, and leaves; a take flips the phase and waits for the samples still inside, so each sample's
//!   count, sum, min, max and bucket land together in exactly one period.
//! - With `options.percentiles` on (the default for CloudWatch), each sample of a timing or histogram is also
//!   counted in a log-linear bucket (128 per power of two, at most 0.78% wide), and a period reaches CloudWatch
//!   as at most 150 Values/Counts, so that CloudWatch computes percentiles: SampleCount, Minimum and Maximum
//!   exact, Sum exact up to rounding, the period's p50/p90/p95/p99/p99.9/p99.99 within one bucket
//!   ([`Distribution`], [`Counter::percentile_values`]).
//! - [`CachedCounters::open`] runs dumps on a background interval task: on the current tokio runtime, or — in a
//!   program without one — on a small thread of its own. [`CachedCounters::close`] (or `close_blocking` in
//!   synchronous code) stops it and flushes. A runtime they are opened, flushed or closed in needs its time
//!   driver (`enable_all()` or `enable_time()`; `#[tokio::main]` has it): their interval and bounds are tokio
//!   timers, and tokio panics without one.
//!
//! # Limitations
//! - A name updated with another type replaces the counter and drops its data (pip's rule).
//! - Values CloudWatch cannot take (NaN, infinities, magnitudes beyond 2^360 or below 2^-360) are refused when
//!   recorded, counted (`Telemetry::values_rejected`) and warned about at most once a minute. Integer increments
//!   that would take one period's count past 2^62 - 1 (about 4.6e18; -2^62 below) saturate there, never wrapping
//!   (`Telemetry::values_saturated`); a float increment (a metric event's float, or an integer field wider than
//!   64 bits) is kept as a float, exact as one, within CloudWatch's range (the local `count` shows its whole
//!   part, at most `i64::MAX`; `sum` the value).
//! - A local read (`get`, `get_all`) racing a sample may see part of it; dumps never do.
//! - At most `options.max_counters` counters (default 10,000) live at once; updates to new keys past the cap
//!   are dropped, counted (`Telemetry::keys_dropped`) and warned about at most once a minute. Counters idle for
//!   `options.idle_timeout` (1 hour) leave the store; gauges and timestamps never do.
//! - The layer times spans at INFO and above of targets that are not excluded; span fields become dimensions
//!   only when allow-listed (see [`CountersLayerBuilder`]).
//! - A request that failed after it was sent (a timeout, a broken connection) is never sent again, since
//!   CloudWatch may hold it: if it did not, its data is lost, and counted (`Telemetry::datums_ambiguous`).
//! - `close()` takes at most `options.close_timeout`; a save it cuts off gives up what was being sent and keeps
//!   the rest in the counters.
//! - Dropping open counters without `close()` flushes best-effort (see [`CachedCounters`]); a global recorder
//!   or layer is never dropped, so call `close()` on shutdown.

#![forbid(unsafe_code)]

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

mod config;
mod counters;
mod error;
mod exporter;
mod frontend;
#[cfg(feature = "cloudwatch")]
mod install;
mod model;
mod publishing;
pub mod sink;
mod store;
mod warn;

/// The tracing layer's settings and constants: see [`CountersLayer`].
pub mod layer {
    pub use crate::frontend::layer::{
        CountersLayer, CountersLayerBuilder, NamingFn, COUNTER_FIELD, DEFAULT_EXCLUDED_TARGETS, DEFAULT_SPAN_DIMENSIONS,
    };
}

pub use config::DEFAULT_IDLE_TIMEOUT;
#[cfg(feature = "cloudwatch")]
pub use config::{CloudWatchSettings, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, MAX_BATCH_SIZE};
pub use config::{ConfigParams, CountersOptions, DEFAULT_CLOSE_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_MAX_COUNTERS};
pub use counters::{CachedCounters, CompositeCounters, LogCounters, NullCounters};
#[cfg(feature = "cloudwatch")]
pub use counters::{CloudWatchCounters, CloudWatchCountersBuilder};
pub use counters::{EmfCounters, EmfCountersBuilder, DEFAULT_AGENT_BUFFER, DEFAULT_AGENT_ENDPOINT};
pub use error::{ConfigError, Error, SaveError, Secret};
pub use exporter::{DumpReport, Telemetry, TELEMETRY_PREFIX};
pub use frontend::counters_api::Counters;
pub use frontend::handle::CounterHandle;
pub use frontend::layer::{CountersLayer, CountersLayerBuilder};
pub use frontend::recorder::CountersRecorder;
pub use frontend::timing::CounterTiming;
#[cfg(feature = "cloudwatch")]
pub use install::CountersGuard;
pub use model::{Bucket, Distribution, PercentileValues, KEPT_PERCENTILES};
pub use model::{Counter, CounterType, Dimensions, MAX_DIMENSIONS, MAX_LABELS, MAX_VALUE, MIN_VALUE};
pub use sink::{LogSink, SaveFuture, Sink, SinkCounts, SinkView, SkipReason};
