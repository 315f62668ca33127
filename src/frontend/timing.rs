//! [`CounterTiming`]: pip's `begin_timing` / `end_timing` as a guard.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use metrics::Key;

use crate::model::CounterType;
use crate::store::cell::CounterCell;
use crate::store::{Fit, Store};

/// Where a timing's elapsed milliseconds go.
enum Target {
    Nowhere,
    /// The Interval counter `key` names: the cell found when the timing began, or, when that one was cleared or
    /// replaced before the end, the counter of that name then (pip's `end_timing` looks the name up at the end).
    Named {
        cell: Arc<CounterCell>,
        key: Key,
        store: Arc<Store>,
        /// The store refused the name when the timing began (its cell was retired at birth).
        refused: bool,
    },
    Callback(Box<dyn FnOnce(f64) + Send>),
    Many(Vec<Target>),
}

impl Target {
    fn deliver(self, elapsed_ms: f64) {
        match self {
            Target::Nowhere => {}
            Target::Named { cell, key, store, refused } => {
                if refused {
                    // Refused at the start (an empty name, the cap) and counted then: not looked up again.
                    cell.sample(elapsed_ms);
                } else if !cell.sample_unless_retired(elapsed_ms) {
                    store.cell_after_retire(&key, CounterType::Interval, Fit::Exact, &cell).sample(elapsed_ms);
                }
            }
            Target::Callback(callback) => callback(elapsed_ms),
            Target::Many(targets) => targets.into_iter().for_each(|t| t.deliver(elapsed_ms)),
        }
    }
}

/// A running timing, returned by `begin_timing`. Ending it records the elapsed milliseconds into an Interval
/// counter once: call [`CounterTiming::end_timing`], or drop it (an un-ended timing records when dropped, so a
/// `?` or a panic inside the timed code is still measured).
///
/// `begin_timing` finds the counter when the timing begins (creating it, empty until the end, or replacing a
/// counter of another type, as pip's `end_timing` does at the end). If it is cleared or replaced before the end,
/// the timing records into the Interval counter the name has then; if a counter of another type took the name
/// meanwhile, the sample is refused and counted (`values_rejected`) rather than replacing that newer counter.
#[must_use = "a timing records when it is ended or dropped; dropping it at once records ~0 ms"]
pub struct CounterTiming {
    start: Instant,
    target: Target,
}

impl CounterTiming {
    /// A timing for the Interval counter `key` in `store`.
    pub(crate) fn named(store: &Arc<Store>, key: Key) -> CounterTiming {
        let cell = store.cell(&key, CounterType::Interval);
        let refused = cell.is_retired();
        CounterTiming { start: Instant::now(), target: Target::Named { cell, key, store: Arc::clone(store), refused } }
    }

    /// A timing that records nothing (pip's `CounterTiming()` without a callback, as `NullCounters` returns).
    pub fn none() -> CounterTiming {
        CounterTiming { start: Instant::now(), target: Target::Nowhere }
    }

    /// A timing that hands the elapsed milliseconds to `callback` (pip's `ICounterTimingCallback`).
    pub fn with_callback(callback: impl FnOnce(f64) + Send + 'static) -> CounterTiming {
        CounterTiming { start: Instant::now(), target: Target::Callback(Box::new(callback)) }
    }

    /// One timing that ends all of `timings` with the same elapsed time (what `CompositeCounters` returns).
    pub fn join(timings: impl IntoIterator<Item = CounterTiming>) -> CounterTiming {
        let mut start = Instant::now();
        let targets = timings
            .into_iter()
            .map(|mut t| {
                start = start.min(t.start);
                std::mem::replace(&mut t.target, Target::Nowhere)
            })
            .collect();
        CounterTiming { start, target: Target::Many(targets) }
    }

    /// Milliseconds since the timing began.
    pub fn elapsed_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    /// Ends the timing and records the elapsed milliseconds, which it also returns.
    pub fn end_timing(mut self) -> f64 {
        self.finish()
    }

    fn finish(&mut self) -> f64 {
        let elapsed = self.elapsed_ms();
        std::mem::replace(&mut self.target, Target::Nowhere).deliver(elapsed);
        elapsed
    }
}

impl Drop for CounterTiming {
    fn drop(&mut self) {
        if !matches!(self.target, Target::Nowhere) {
            self.finish();
        }
    }
}

impl fmt::Debug for CounterTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterTiming").field("elapsed_ms", &self.elapsed_ms()).finish()
    }
}
