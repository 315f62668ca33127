//! [`Counters`]: pip-services' `ICounters`, the operations every counters type offers.

use std::time::SystemTime;

use super::timing::CounterTiming;

/// pip-services' `ICounters`: the operations every counters component offers.
///
/// Names are looked up on each call; on a hot path, hold a [`CounterHandle`](crate::CounterHandle) instead
/// ([`CachedCounters::handle`](crate::CachedCounters::handle)), which updates with no lookup and no allocation.
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
