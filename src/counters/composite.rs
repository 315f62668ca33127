//! [`CompositeCounters`]: pip's counters that fan every call out to several others.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::frontend::counters_api::Counters;
use crate::frontend::timing::CounterTiming;

/// Forwards every call to each of its children (pip's `CompositeCounters`), for example to log counters and
/// CloudWatch counters at once. A timing ends once for all children, with one elapsed time.
#[derive(Clone, Default)]
pub struct CompositeCounters {
    children: Vec<Arc<dyn Counters>>,
}

impl CompositeCounters {
    /// A composite of `children`.
    pub fn new(children: Vec<Arc<dyn Counters>>) -> CompositeCounters {
        CompositeCounters { children }
    }

    /// Adds a child.
    pub fn add(&mut self, child: Arc<dyn Counters>) {
        self.children.push(child);
    }

    /// The number of children.
    pub fn len(&self) -> usize {
        self.children.len()
    }

    /// Whether there are no children.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }
}

impl Counters for CompositeCounters {
    fn begin_timing(&self, name: &str) -> CounterTiming {
        CounterTiming::join(self.children.iter().map(|c| c.begin_timing(name)))
    }

    fn end_timing(&self, name: &str, elapsed_ms: f64) {
        self.children.iter().for_each(|c| c.end_timing(name, elapsed_ms));
    }

    fn stats(&self, name: &str, value: f64) {
        self.children.iter().for_each(|c| c.stats(name, value));
    }

    fn last(&self, name: &str, value: f64) {
        self.children.iter().for_each(|c| c.last(name, value));
    }

    fn timestamp_now(&self, name: &str) {
        // One clock read for all children, as NODE4 does.
        self.timestamp(name, SystemTime::now());
    }

    fn timestamp(&self, name: &str, value: SystemTime) {
        self.children.iter().for_each(|c| c.timestamp(name, value));
    }

    fn increment(&self, name: &str, value: i64) {
        self.children.iter().for_each(|c| c.increment(name, value));
    }
}

impl fmt::Debug for CompositeCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompositeCounters").field("children", &self.children.len()).finish()
    }
}
