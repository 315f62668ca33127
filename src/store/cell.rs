//! One counter's live state: a handful of atomics, updated lock-free on the hot path.
//!
//! A cell never allocates after creation. `f64` fields are stored as bit patterns in `AtomicU64`s and updated
//! with compare-and-swap loops. The layout is kept small (64 bytes with its `Arc`), as a store holds one cell per
//! counter: a Timestamp keeps its time in the `last` slot, and the histogram scale is a power-of-ten exponent. A snapshot either reads the cell (cumulative mode) or takes its contents and leaves
//! it empty (reset mode); a taken snapshot can be merged back when the save fails, so nothing is lost.

use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::{Counter, CounterType};

/// The bit pattern of an unset `last` (a NaN payload no arithmetic produces; samples are finite).
const UNSET: u64 = 0x7ff8_0000_dead_beef;
/// Powers of ten, for a cell's histogram scale exponent.
const POWERS_OF_TEN: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// `flags`: the cell was updated since the last snapshot.
const DIRTY: u8 = 1;
/// `flags`: an Increment cell holds a value (pip's `count` is not null).
const PRESENT: u8 = 2;

/// The measurements taken out of a cell: what a failed save merges back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Taken {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// `last` for sampled and LastValue cells, microseconds since the Unix epoch for Timestamp; UNSET if unset.
    last: u64,
    present: bool,
}

/// The live state of one counter.
#[derive(Debug)]
pub(crate) struct CounterCell {
    kind: CounterType,
    /// `metrics` histogram samples are multiplied by 10^scale (3 for a histogram described in seconds, kept in ms).
    scale: i8,
    flags: AtomicU8,
    retired: AtomicBool,
    /// Samples refused because they were not finite (wraps past 2^32 between two dumps).
    rejected: AtomicU32,
    /// Increment: the running total (an `i64` stored as `u64`). Interval/Statistics: the number of samples.
    count: AtomicU64,
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// Sampled and LastValue: the last value. Timestamp: microseconds since the Unix epoch (an `i64`).
    last: AtomicU64,
}

impl CounterCell {
    pub(crate) fn new(kind: CounterType) -> CounterCell {
        CounterCell {
            kind,
            scale: 0,
            flags: AtomicU8::new(0),
            retired: AtomicBool::new(false),
            rejected: AtomicU32::new(0),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            last: AtomicU64::new(UNSET),
        }
    }

    /// A cell whose `metrics` histogram samples are multiplied by `scale`, a power of ten from 1e-9 to 1e9.
    pub(crate) fn with_scale(kind: CounterType, scale: f64) -> CounterCell {
        let exponent = scale.log10().round().clamp(-9.0, 9.0) as i8;
        debug_assert!(
            (10f64.powi(exponent.into()) - scale).abs() <= scale * 1e-12,
            "a histogram scale is a power of ten"
        );
        CounterCell { scale: exponent, ..CounterCell::new(kind) }
    }

    /// `value` times the cell's histogram scale (a division for a negative exponent, which is exact where the
    /// result is representable).
    #[inline]
    fn scaled(&self, value: f64) -> f64 {
        let power = POWERS_OF_TEN[usize::from(self.scale.unsigned_abs())];
        if self.scale >= 0 {
            value * power
        } else {
            value / power
        }
    }

    pub(crate) fn kind(&self) -> CounterType {
        self.kind
    }

    /// Whether the cell was removed from the store (cleared or replaced by another type).
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Relaxed)
    }

    pub(crate) fn retire(&self) {
        self.retired.store(true, Relaxed);
    }

    #[inline]
    fn mark(&self, flags: u8) {
        // A plain load first: the cache line stays shared while the flag is already set.
        if self.flags.load(Relaxed) & flags != flags {
            self.flags.fetch_or(flags, Release);
        }
    }

    /// Increment: adds to the running total.
    #[inline]
    pub(crate) fn add(&self, value: i64) {
        self.count.fetch_add(value as u64, Relaxed);
        self.mark(DIRTY | PRESENT);
    }

    /// Increment: replaces the running total (a `metrics` counter's `absolute`).
    #[inline]
    pub(crate) fn set_count(&self, value: i64) {
        self.count.store(value as u64, Relaxed);
        self.mark(DIRTY | PRESENT);
    }

    /// Counts a value that was refused because it was not finite (NaN or infinite).
    #[cold]
    fn reject(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    /// The number of refused values since the last call.
    pub(crate) fn take_rejected(&self) -> u64 {
        if self.rejected.load(Relaxed) == 0 {
            0
        } else {
            u64::from(self.rejected.swap(0, Relaxed))
        }
    }

    /// Interval/Statistics: records one sample; a non-finite one is refused and counted.
    #[inline]
    pub(crate) fn sample(&self, value: f64) {
        if !value.is_finite() {
            return self.reject();
        }
        update_f64(&self.sum, |sum| Some(sum + value));
        update_f64(&self.min, |min| (value < min).then_some(value));
        update_f64(&self.max, |max| (value > max).then_some(value));
        self.last.store(value.to_bits(), Relaxed);
        // Counted last, with Release: whoever sees the count also sees the sample's sum, min and max.
        self.count.fetch_add(1, Release);
        self.mark(DIRTY);
    }

    /// Interval/Statistics: records one `metrics` histogram sample, multiplied by the cell's scale.
    #[inline]
    pub(crate) fn sample_scaled(&self, value: f64) {
        self.sample(self.scaled(value));
    }

    /// LastValue: sets the value; a non-finite one is refused and counted.
    #[inline]
    pub(crate) fn set_last(&self, value: f64) {
        if !value.is_finite() {
            return self.reject();
        }
        self.last.store(value.to_bits(), Relaxed);
        self.mark(DIRTY);
    }

    /// LastValue: adds to the value (a `metrics` gauge's `increment` / `decrement`); a non-finite delta is
    /// refused and counted.
    #[inline]
    pub(crate) fn add_last(&self, delta: f64) {
        if !delta.is_finite() {
            return self.reject();
        }
        update_f64(&self.last, |last| Some(if last.to_bits() == UNSET { delta } else { last + delta }));
        self.mark(DIRTY);
    }

    /// Timestamp: sets the time.
    #[inline]
    pub(crate) fn set_time(&self, time: SystemTime) {
        // UNSET read as an i64 is a time 292,000 years from now; such a time is kept one microsecond earlier.
        let micros = epoch_micros(time) as u64;
        self.last.store(if micros == UNSET { UNSET - 1 } else { micros }, Relaxed);
        self.mark(DIRTY);
    }

    /// Clears the dirty flag; returns whether the cell was updated since the previous call.
    pub(crate) fn take_dirty(&self) -> bool {
        self.flags.fetch_and(!DIRTY, Acquire) & DIRTY != 0
    }

    /// Reads the cell without changing it (cumulative mode).
    pub(crate) fn read(&self) -> Taken {
        Taken {
            present: self.flags.load(Acquire) & PRESENT != 0,
            count: self.count.load(Acquire),
            sum: f64::from_bits(self.sum.load(Relaxed)),
            min: f64::from_bits(self.min.load(Relaxed)),
            max: f64::from_bits(self.max.load(Relaxed)),
            last: self.last.load(Relaxed),
        }
    }

    /// Takes the cell's contents, leaving it empty (reset mode).
    ///
    /// Every update lands in exactly one take: each field is swapped out atomically, and the flags are cleared
    /// first so a concurrent update marks the cell again.
    pub(crate) fn take(&self) -> Taken {
        let present = self.flags.swap(0, Acquire) & PRESENT != 0;
        Taken {
            present,
            count: self.count.swap(0, AcqRel),
            sum: f64::from_bits(self.sum.swap(0f64.to_bits(), Relaxed)),
            min: f64::from_bits(self.min.swap(f64::INFINITY.to_bits(), Relaxed)),
            max: f64::from_bits(self.max.swap(f64::NEG_INFINITY.to_bits(), Relaxed)),
            last: self.last.swap(UNSET, Relaxed),
        }
    }

    /// Puts taken contents back after a failed save, combining them with whatever arrived since.
    pub(crate) fn merge(&self, taken: &Taken) {
        self.count.fetch_add(taken.count, Relaxed);
        if taken.sum != 0.0 {
            update_f64(&self.sum, |sum| Some(sum + taken.sum));
        }
        update_f64(&self.min, |min| (taken.min < min).then_some(taken.min));
        update_f64(&self.max, |max| (taken.max > max).then_some(taken.max));
        // Newer values win: restore `last` (or a Timestamp's time) only where nothing was set since.
        let _ = self.last.compare_exchange(UNSET, taken.last, Relaxed, Relaxed);
        self.mark(if taken.present { DIRTY | PRESENT } else { DIRTY });
    }
}

impl Taken {
    /// Whether a take raced with a sample half-way through being recorded: the sample's count and its
    /// sum/min/max landed on different sides of the take. Such contents go back into the cell (merge) and are
    /// published with the next take, where the rest of the sample is; totals stay exact either way.
    pub(crate) fn is_torn(&self, kind: CounterType) -> bool {
        if !kind.is_sampled() {
            return false;
        }
        let has_values = self.sum != 0.0 || self.min.is_finite() || self.max.is_finite() || self.last != UNSET;
        if self.count == 0 {
            has_values
        } else {
            !(self.min.is_finite() && self.max.is_finite() && self.last != UNSET)
        }
    }

    /// Whether there is nothing to publish.
    pub(crate) fn is_empty(&self, kind: CounterType) -> bool {
        match kind {
            CounterType::Increment => !self.present,
            CounterType::Interval | CounterType::Statistics => self.count == 0,
            CounterType::LastValue | CounterType::Timestamp => self.last == UNSET,
        }
    }

    /// Fills the fields of `counter` that its type uses, as pip does.
    pub(crate) fn fill(&self, counter: &mut Counter) {
        match counter.counter_type {
            CounterType::Increment => counter.count = self.present.then_some(self.count as i64),
            CounterType::Interval | CounterType::Statistics => {
                if self.count > 0 {
                    counter.count = Some(self.count as i64);
                    counter.sum = Some(self.sum);
                    counter.average = Some(self.sum / self.count as f64);
                    counter.min = Some(self.min);
                    counter.max = Some(self.max);
                    counter.last = unset_to_none(self.last);
                }
            }
            CounterType::LastValue => counter.last = unset_to_none(self.last),
            CounterType::Timestamp => {
                counter.time = (self.last != UNSET).then(|| from_epoch_micros(self.last as i64));
            }
        }
    }
}

#[cfg(test)]
impl Taken {
    /// Drops everything but the count, as a take that raced with a half-recorded sample would.
    pub(crate) fn clear_values_for_test(&mut self) {
        self.sum = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
        self.last = UNSET;
    }
}

fn unset_to_none(bits: u64) -> Option<f64> {
    (bits != UNSET).then(|| f64::from_bits(bits))
}

/// Applies `f` to the `f64` stored in `cell` until the CAS succeeds; `f` returning `None` leaves it unchanged.
#[inline]
fn update_f64(cell: &AtomicU64, f: impl Fn(f64) -> Option<f64>) {
    let _ = cell.fetch_update(Relaxed, Relaxed, |bits| f(f64::from_bits(bits)).map(f64::to_bits));
}

/// Microseconds since the Unix epoch (negative before it), saturating far outside the representable range.
pub(crate) fn epoch_micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN + 1, |us| -us),
    }
}

fn from_epoch_micros(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(cell: &CounterCell, taken: &Taken) -> Counter {
        let mut c = Counter::new("c", cell.kind());
        taken.fill(&mut c);
        c
    }

    #[test]
    fn take_then_merge_restores_everything() {
        let cell = CounterCell::new(CounterType::Statistics);
        for v in [3.0, -1.0, 7.5] {
            cell.sample(v);
        }
        let before = cell.read();
        let taken = cell.take();
        assert_eq!(before, taken);
        assert!(cell.read().is_empty(CounterType::Statistics));
        cell.sample(10.0);
        cell.merge(&taken);
        let c = counter(&cell, &cell.read());
        assert_eq!(c.count, Some(4));
        assert_eq!(c.sum, Some(19.5));
        assert_eq!(c.min, Some(-1.0));
        assert_eq!(c.max, Some(10.0));
        // The newer sample stays the last one.
        assert_eq!(c.last, Some(10.0));
    }

    #[test]
    fn increment_presence_survives_zero() {
        let cell = CounterCell::new(CounterType::Increment);
        assert!(cell.read().is_empty(CounterType::Increment));
        cell.add(0);
        assert_eq!(counter(&cell, &cell.read()).count, Some(0));
        let taken = cell.take();
        assert!(cell.read().is_empty(CounterType::Increment));
        cell.merge(&taken);
        assert_eq!(counter(&cell, &cell.read()).count, Some(0));
    }

    #[test]
    fn dirty_flag_is_set_by_updates_and_cleared_once() {
        let cell = CounterCell::new(CounterType::LastValue);
        assert!(!cell.take_dirty());
        cell.set_last(1.0);
        assert!(cell.take_dirty());
        assert!(!cell.take_dirty());
        cell.add_last(2.0);
        assert!(cell.take_dirty());
        assert_eq!(counter(&cell, &cell.read()).last, Some(3.0));
    }

    #[test]
    fn non_finite_values_are_refused_and_counted() {
        let cell = CounterCell::new(CounterType::Statistics);
        cell.sample(f64::NAN);
        cell.sample(f64::INFINITY);
        cell.set_last(f64::NEG_INFINITY);
        cell.sample(2.0);
        assert_eq!(cell.take_rejected(), 3);
        assert_eq!(cell.take_rejected(), 0);
        assert_eq!(counter(&cell, &cell.read()).count, Some(1));
    }

    #[test]
    fn a_cell_with_its_arc_fits_in_64_bytes() {
        assert!(std::mem::size_of::<CounterCell>() + 2 * std::mem::size_of::<usize>() <= 64);
    }

    #[test]
    fn a_timestamp_survives_take_and_merge_and_scales_are_exact() {
        let cell = CounterCell::new(CounterType::Timestamp);
        assert!(cell.read().is_empty(CounterType::Timestamp));
        let when = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        cell.set_time(when);
        let taken = cell.take();
        assert!(cell.read().is_empty(CounterType::Timestamp));
        cell.merge(&taken);
        assert_eq!(counter(&cell, &cell.read()).time, Some(when));
        for (scale, sample, ms) in [(1e3, 0.25, 250.0), (1e-3, 1500.0, 1.5), (1e-6, 2_500_000.0, 2.5), (1.0, 7.0, 7.0)]
        {
            let cell = CounterCell::with_scale(CounterType::Interval, scale);
            cell.sample_scaled(sample);
            assert_eq!(counter(&cell, &cell.read()).last, Some(ms), "scale {scale}");
        }
    }

    #[test]
    fn epoch_micros_round_trips_before_and_after_the_epoch() {
        for t in [UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456), UNIX_EPOCH - Duration::from_micros(5)] {
            assert_eq!(from_epoch_micros(epoch_micros(t)), t);
        }
    }
}
