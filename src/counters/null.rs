//! [`NullCounters`]: pip's counters that record nothing.

use std::time::SystemTime;

use crate::frontend::counters_api::Counters;
use crate::frontend::timing::CounterTiming;

/// Counters that do nothing (pip's `NullCounters`): a stand-in where counters are optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullCounters;

impl Counters for NullCounters {
    fn begin_timing(&self, _name: &str) -> CounterTiming {
        CounterTiming::none()
    }
    fn end_timing(&self, _name: &str, _elapsed_ms: f64) {}
    fn stats(&self, _name: &str, _value: f64) {}
    fn last(&self, _name: &str, _value: f64) {}
    fn timestamp(&self, _name: &str, _value: SystemTime) {}
    fn increment(&self, _name: &str, _value: i64) {}
}
