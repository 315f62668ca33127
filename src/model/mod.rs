//! The plain data every layer shares: pip-services' `Counter` record and `CounterType`, the dimension limit
//! that front-ends and sinks both apply, and a period's [`Distribution`] with the values and counts that stand
//! for it.

use std::fmt;
use std::time::SystemTime;

mod counter;
pub(crate) mod distribution;
pub(crate) mod dump_text;
mod percentiles;

pub use counter::{Counter, Dimensions};
pub use distribution::{Bucket, Distribution};
pub use percentiles::{PercentileValues, KEPT_PERCENTILES};

/// The prefix of this crate's own counters (self-telemetry); do not use it for yours.
pub const TELEMETRY_PREFIX: &str = "cloudwatch_counters.";

/// Most dimensions one CloudWatch datum (or EMF metric) may carry, InstanceID included.
pub const MAX_DIMENSIONS: usize = 30;

/// Most labels a counter keeps where an InstanceID dimension is published (CloudWatch's default):
/// [`MAX_DIMENSIONS`] less that one; without it (`without_instance()`, EMF), [`MAX_DIMENSIONS`]. Labels of one
/// name count once (the sinks publish the last one's value).
pub const MAX_LABELS: usize = MAX_DIMENSIONS - 1;

/// Which of `labels` (named by `name`) a counter keeps, when they have more than `max` names: those whose name
/// is one of the first `max` (a name repeated later counts once, and the sinks publish its last value). `None`
/// when every label is kept.
pub(crate) fn labels_kept<T>(labels: &[T], max: usize, name: impl Fn(&T) -> &str) -> Option<Vec<bool>> {
    if labels.len() <= max {
        return None;
    }
    let mut names: Vec<&str> = Vec::with_capacity(max);
    let kept: Vec<bool> = labels
        .iter()
        .map(|label| {
            let name = name(label);
            if names.contains(&name) {
                return true;
            }
            let room = names.len() < max;
            if room {
                names.push(name);
            }
            room
        })
        .collect();
    kept.contains(&false).then_some(kept)
}

/// The largest magnitude CloudWatch accepts for a value: 2^360. Samples and levels beyond it are refused when
/// they are recorded, so that one bad value never makes a counter unpublishable.
pub const MAX_VALUE: f64 = 2.348_542_582_773_833_2e108;

/// The smallest non-zero magnitude CloudWatch accepts for a value: 2^-360.
pub const MIN_VALUE: f64 = 4.257_959_840_008_151e-109;

/// Milliseconds since the Unix epoch (UTC), negative before it: a Timestamp counter's published value.
pub(crate) fn epoch_millis(time: SystemTime) -> f64 {
    match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as f64,
        Err(e) => -(e.duration().as_millis() as f64),
    }
}

/// Whether CloudWatch accepts `value`: finite, zero or within 2^-360 to 2^360 in magnitude.
#[inline]
pub(crate) fn in_range(value: f64) -> bool {
    let magnitude = value.abs();
    magnitude <= MAX_VALUE && (magnitude >= MIN_VALUE || magnitude == 0.0)
}

/// The kind of a counter, numbered as in every pip-services port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum CounterType {
    /// Timings in milliseconds (`begin_timing` / `end_timing`, timed spans): count, min, max, average, last.
    Interval = 0,
    /// A value that is set, not accumulated (`last`, gauges): only `last`.
    LastValue = 1,
    /// Samples of any value (`stats`, histograms): count, min, max, average, last.
    Statistics = 2,
    /// A point in time (`timestamp`, `timestamp_now`): only `time`.
    Timestamp = 3,
    /// A running total (`increment`, counters): only `count`.
    Increment = 4,
}

impl CounterType {
    /// All types, in pip's numbering order.
    pub const ALL: [CounterType; 5] = [
        CounterType::Interval,
        CounterType::LastValue,
        CounterType::Statistics,
        CounterType::Timestamp,
        CounterType::Increment,
    ];

    /// pip's numeric value (Interval = 0 ... Increment = 4).
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// The type for pip's numeric value, or `None` for anything outside 0..=4.
    pub fn from_u8(value: u8) -> Option<CounterType> {
        CounterType::ALL.get(usize::from(value)).copied()
    }

    /// Whether counters of this type keep count/min/max/average/last of samples.
    pub fn is_sampled(self) -> bool {
        matches!(self, CounterType::Interval | CounterType::Statistics)
    }
}

/// pip's `CounterType.to_string` names: `INTERVAL`, `LAST`, `STATS`, `TIME`, `COUNT`.
impl fmt::Display for CounterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CounterType::Interval => "INTERVAL",
            CounterType::LastValue => "LAST",
            CounterType::Statistics => "STATS",
            CounterType::Timestamp => "TIME",
            CounterType::Increment => "COUNT",
        })
    }
}
