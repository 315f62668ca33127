//! [`CounterHandle`]: a direct pointer to one counter's cell, for updates with no lookup and no allocation.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::model::CounterType;
use crate::store::cell::CounterCell;

/// A handle to one counter, obtained once (`CachedCounters::handle`) and then updated with atomics only.
///
/// Each method writes the fields its name says; a dump publishes the fields of the counter's type
/// ([`CounterHandle::counter_type`]), so use the methods that match it: `increment`/`set_count` for Increment,
/// `record` for Interval and Statistics, `set_last`/`add_last` for LastValue, `timestamp` for Timestamp.
/// Values CloudWatch cannot take (NaN, infinities, magnitudes beyond 2^360 or below 2^-360) are refused and
/// counted, never recorded; so are calls that do not match the counter's type.
///
/// A handle keeps working after its counter is cleared or replaced by another type, but what it records then
/// is no longer published ([`CounterHandle::is_detached`] tells); get a new handle.
#[derive(Clone)]
pub struct CounterHandle {
    cell: Arc<CounterCell>,
}

impl CounterHandle {
    pub(crate) fn new(cell: Arc<CounterCell>) -> CounterHandle {
        CounterHandle { cell }
    }

    /// The type of the counter this handle points at.
    pub fn counter_type(&self) -> CounterType {
        self.cell.kind()
    }

    /// Whether the counter was cleared or replaced since this handle was made.
    pub fn is_detached(&self) -> bool {
        self.cell.is_retired()
    }

    /// Increment: adds `value` (pip's `increment`); a period's sum past 2^62 - 1 (or -2^62) saturates and is counted.
    #[inline]
    pub fn increment(&self, value: i64) {
        self.cell.add(value);
    }

    /// Increment: sets the counter's absolute total, as a `metrics` counter's `absolute` does. Each dump
    /// publishes the change since the value the dump before it read (a lower value counts as a restart from 0;
    /// a negative one as 0); the change a failed save did not deliver goes out with the next dump.
    #[inline]
    pub fn set_count(&self, value: i64) {
        self.cell.set_absolute(u64::try_from(value).unwrap_or(0));
    }

    /// Interval / Statistics: records one sample (milliseconds for Interval), as pip's `stats` / `end_timing`.
    #[inline]
    pub fn record(&self, value: f64) {
        self.cell.sample(value);
    }

    /// LastValue: sets the value (pip's `last`).
    #[inline]
    pub fn set_last(&self, value: f64) {
        self.cell.set_last(value);
    }

    /// LastValue: adds `delta` to the value (an unset value counts as 0).
    #[inline]
    pub fn add_last(&self, delta: f64) {
        self.cell.add_last(delta);
    }

    /// Timestamp: sets the time (pip's `timestamp`).
    #[inline]
    pub fn timestamp(&self, time: SystemTime) {
        self.cell.set_time(time);
    }
}

impl fmt::Debug for CounterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterHandle")
            .field("type", &self.cell.kind())
            .field("detached", &self.cell.is_retired())
            .finish()
    }
}
