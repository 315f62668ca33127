//! [`CounterTiming`]: pip's `begin_timing` / `end_timing` as a guard.

use std::fmt;
use std::time::Instant;

use super::handle::CounterHandle;

/// Where a timing's elapsed milliseconds go.
enum Target {
    Nowhere,
    Handle(CounterHandle),
    Callback(Box<dyn FnOnce(f64) + Send>),
    Many(Vec<Target>),
}

impl Target {
    fn deliver(self, elapsed_ms: f64) {
        match self {
            Target::Nowhere => {}
            Target::Handle(handle) => handle.record(elapsed_ms),
            Target::Callback(callback) => callback(elapsed_ms),
            Target::Many(targets) => targets.into_iter().for_each(|t| t.deliver(elapsed_ms)),
        }
    }
}

/// A running timing, returned by `begin_timing`. Ending it records the elapsed milliseconds into an Interval
/// counter once: call [`CounterTiming::end_timing`], or drop it (an un-ended timing records when dropped, so a
/// `?` or a panic inside the timed code is still measured).
#[must_use = "a timing records when it is ended or dropped; dropping it at once records ~0 ms"]
pub struct CounterTiming {
    start: Instant,
    target: Target,
}

impl CounterTiming {
    pub(crate) fn to_handle(handle: CounterHandle) -> CounterTiming {
        CounterTiming { start: Instant::now(), target: Target::Handle(handle) }
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
