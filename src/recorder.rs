//! [`CountersRecorder`]: a `metrics::Recorder` whose handles point straight at counter cells.
//!
//! `counter!` -> Increment (`increment` adds, `absolute` sets); `gauge!` -> LastValue (`set`, `increment`,
//! `decrement`); `histogram!` -> Statistics, or Interval in milliseconds when the histogram was described with a
//! time unit (seconds, milliseconds, microseconds or nanoseconds; samples are converted to ms). Labels become
//! CloudWatch dimensions; past 29 labels (30 with InstanceID) the rest are cut, counted (`Telemetry::labels_cut`)
//! and warned about at most once a minute.
//! Describe a histogram before its first use for the time unit to apply.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::counter::CounterType;
use crate::exporter::Shared;
use crate::sink::limits::MAX_DIMENSIONS;

/// Most labels a `metrics` key keeps: CloudWatch allows 30 dimensions and InstanceID is one.
pub const MAX_LABELS: usize = MAX_DIMENSIONS - 1;

/// A `metrics::Recorder` that records into `CachedCounters` (`counters.recorder()`).
///
/// Install it with `metrics::set_global_recorder(counters.recorder())`. A registration for a known key costs one
/// shard read lock and a lookup by the key's precomputed hash, and returns a handle to the cell: no allocation.
#[derive(Clone)]
pub struct CountersRecorder {
    shared: Arc<Shared>,
}

impl CountersRecorder {
    pub(crate) fn new(shared: Arc<Shared>) -> CountersRecorder {
        CountersRecorder { shared }
    }

    fn cell(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<crate::cell::Cell> {
        if key.labels().len() <= MAX_LABELS {
            return self.shared.store.scaled_cell(key, kind, scale);
        }
        self.cut_labels(key, kind, scale)
    }

    #[cold]
    fn cut_labels(&self, key: &Key, kind: CounterType, scale: f64) -> Arc<crate::cell::Cell> {
        self.shared.labels_cut(key.name(), key.labels().len());
        let cut = Key::from_parts(key.name().to_owned(), key.labels().take(MAX_LABELS).cloned().collect::<Vec<_>>());
        self.shared.store.scaled_cell(&cut, kind, scale)
    }

    fn describe(&self, key: KeyName, unit: Option<Unit>) {
        if let Some(unit) = unit {
            self.shared.store.describe(key.as_str(), unit);
        }
    }
}

/// For a histogram described with a time unit: the factor to milliseconds.
fn to_millis(unit: Unit) -> Option<f64> {
    match unit {
        Unit::Seconds => Some(1000.0),
        Unit::Milliseconds => Some(1.0),
        Unit::Microseconds => Some(1e-3),
        Unit::Nanoseconds => Some(1e-6),
        _ => None,
    }
}

impl Recorder for CountersRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        self.describe(key, unit);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key, CounterType::Increment, 1.0))
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key, CounterType::LastValue, 1.0))
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        let timed =
            self.shared.store.has_units().then(|| self.shared.store.unit(key.name()).and_then(to_millis)).flatten();
        let cell = match timed {
            Some(scale) => self.cell(key, CounterType::Interval, scale),
            None => self.cell(key, CounterType::Statistics, 1.0),
        };
        Histogram::from_arc(cell)
    }
}

impl std::fmt::Debug for CountersRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountersRecorder").field("counters", &self.shared.store.len()).finish()
    }
}
