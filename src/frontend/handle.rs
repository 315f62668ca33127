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
/// Non-finite values (NaN, infinities) are refused and counted, never recorded.
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

    /// Increment: adds `value` to the running total (pip's `increment`).
    #[inline]
    pub fn increment(&self, value: i64) {
        self.cell.add(value);
    }

    /// Increment: replaces the running total.
    #[inline]
    pub fn set_count(&self, value: i64) {
        self.cell.set_count(value);
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
