//! One counter's live state: a handful of atomics, updated lock-free on the hot path, and what each dump takes
//! out of it (the period) and keeps for local reads (the totals).
//!
//! Per type:
//! - **Increment**: `period` holds what `increment` added since the last take (an `i64`, saturating at
//!   [`PERIOD_LIMIT`] and [`PERIOD_MIN`], never wrapping, even for a take racing an add). Fractional
//!   increments (tracing events such as `monotonic_counter.x = 0.5`) and `absolute` values (a `metrics`
//!   counter's `absolute`) live in a small box allocated the first time one is used, so a plain counter stays
//!   48 bytes.
//! - **Interval / Statistics**: two slots of sum, min and max behind a writer/reader phaser (HdrHistogram's
//!   `WriterReaderPhaser`): a sample enters the phase (one `fetch_add`), updates the slot of that phase, and
//!   leaves it (one `fetch_add`, whose count is the period's SampleCount). A take flips the phase and waits for
//!   the samples still inside the old one, so every sample lands whole in exactly one period: count, sum, min
//!   and max together, and with percentiles on its bucket count (see `buckets`).
//! - **LastValue / Timestamp**: one level, never taken: a gauge's `increment`/`decrement` keep working across
//!   dumps and failed saves, and the level is published at every dump while the counter lives.
//!
//! The totals (pip's running view, for `get()`, `get_all()` and `LogCounters`) are folded in by the dump when it
//! takes a period, not by the hot path. Takes, commits and undos run one at a time (the store's take lock).

use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8,
    Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst},
};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::buckets::Buckets;
use crate::model::{in_range, Counter, CounterType, Distribution};

/// The most an Increment period holds (2^62 - 1, about 4.6e18; and [`PERIOD_MIN`], -2^62, the least: a 63-bit
/// integer's range, which one overflow check on the doubled sum tests); an add past it saturates, counted. The
/// headroom below `i64::MAX` lets the hot path add with one `fetch_add` and repair an overshoot after it: an
/// add larger than [`FAST_ADD`] takes a compare-and-swap instead, so a period is past the limit by at most 2^53
/// for each add still repairing, and a take that finds it there takes the limit. Only more than 512 such adds
/// in flight at once, each between its `fetch_add` and its repair, could wrap it.
pub(crate) const PERIOD_LIMIT: i64 = (1 << 62) - 1;
/// The least an Increment period holds: -2^62 (see [`PERIOD_LIMIT`]).
pub(crate) const PERIOD_MIN: i64 = -(1 << 62);

/// The largest add (either way) that takes the hot path's `fetch_add`; larger ones take a compare-and-swap.
const FAST_ADD: u64 = 1 << 53;

/// The bit pattern of an unset level (a NaN payload no arithmetic produces; levels are finite).
const UNSET: u64 = 0x7ff8_0000_dead_beef;
/// Powers of ten, for a cell's histogram scale exponent.
const POWERS_OF_TEN: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// `flags`: an Increment cell was updated since the last take.
const DIRTY: u8 = 1;
/// `flags`: an Increment cell was ever updated (pip's `count` is not null, even at 0).
const USED: u8 = 2;
/// `flags`: one of the crate's own counters (self-telemetry), which never makes a dump send on its own.
const RESERVED: u8 = 4;
/// `flags`: the cell was removed from the store (cleared or replaced by another type).
const RETIRED: u8 = 8;
/// `flags`: a sampled cell counts its samples in buckets too, for percentiles.
const PERCENTILES: u8 = 16;

/// The live state of one counter.
#[derive(Debug)]
pub(crate) struct CounterCell {
    kind: CounterType,
    /// `metrics` histogram samples are multiplied by 10^scale (3 for a histogram described in seconds, kept in ms).
    scale: i8,
    flags: AtomicU8,
    /// Values refused since the last take: not finite, or beyond CloudWatch's range (saturating, never wrapping).
    rejected: AtomicU32,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Increment(Increment),
    Level(AtomicU64),
    Sampled(Box<Sampled>),
}

#[derive(Debug, Default)]
struct Increment {
    /// What `increment` added since the last take.
    period: AtomicI64,
    /// The local running total: everything taken since the last local reset (dump path only).
    total: AtomicI64,
    /// Fractional increments, `absolute` values and saturation counts, allocated the first time one is needed.
    extra: OnceLock<Box<IncrementExtra>>,
}

#[derive(Debug, Default)]
struct IncrementExtra {
    /// Fractional increments since the last take (`f64` bits).
    fraction: AtomicU64,
    /// The fractional part of the local total (`f64` bits; dump path only).
    fraction_total: AtomicU64,
    /// The last `absolute` value.
    absolute: AtomicU64,
    has_absolute: AtomicBool,
    /// The absolute value the next take works its change out from (dump path only): the last one a take read
    /// and whose change was published, or put back as an amount by a failed save.
    published: AtomicU64,
    /// The absolute value whose change the local total or the current period already holds: the one a take
    /// read. A local read adds only the change since.
    folded: AtomicU64,
    /// Increments that would have taken a period past [`PERIOD_LIMIT`] (or [`PERIOD_MIN`]) and were saturated,
    /// since the last take.
    saturated: AtomicU32,
}

/// Samples of an Interval or Statistics counter: two slots behind a writer/reader phaser.
#[derive(Debug)]
struct Sampled {
    /// Samples enter here: the even phase counts up from 0, the odd one from `i64::MIN`; the sign picks the slot.
    start: AtomicI64,
    /// Samples that left each slot's phase, counted from the phase's start value.
    end: [AtomicI64; 2],
    slots: [Slot; 2],
    /// The latest sample (a level, never taken).
    last: AtomicU64,
    /// Bucket counts for percentiles, allocated at the first sample with percentiles on.
    buckets: OnceLock<Box<Buckets>>,
    /// Totals and a failed save's period (dump path and local reads only).
    view: Mutex<SampledView>,
}

#[derive(Debug)]
struct Slot {
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            sum: AtomicU64::new(0f64.to_bits()),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
        }
    }
}

#[derive(Debug, Default)]
struct SampledView {
    totals: Stats,
    /// A period taken for a save that failed: it goes out with the next take.
    pending: SampledPeriod,
}

/// Count, sum, min and max of some samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Stats {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Stats {
    fn merge(&mut self, other: &Stats) {
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    fn merged(mut self, other: &Stats) -> Stats {
        self.merge(other);
        self
    }
}

/// The samples of an Interval or Statistics period.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct SampledPeriod {
    pub(crate) stats: Stats,
    /// Their buckets, when percentiles were on for the whole period (it holds exactly `stats.count` samples).
    pub(crate) distribution: Option<Distribution>,
}

impl SampledPeriod {
    /// Adds `other`'s samples; the buckets stay only if both sides have them for all their samples.
    fn merge(&mut self, other: &SampledPeriod) {
        self.distribution = match (self.distribution.take(), &other.distribution) {
            (Some(mut mine), Some(theirs)) => {
                mine.merge(theirs);
                Some(mine)
            }
            (mine, None) if other.stats.count == 0 => mine,
            (None, Some(theirs)) if self.stats.count == 0 => Some(theirs.clone()),
            _ => None,
        };
        self.stats.merge(&other.stats);
    }
}

/// What one take moved out of a cell: the period's data, and what a commit or an undo needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Period {
    /// Increment: what was added in the period.
    Increment(IncrementPeriod),
    /// Interval / Statistics: the period's samples.
    Sampled(SampledPeriod),
    /// LastValue / Timestamp: the level when taken (never moved out).
    Level,
}

/// What an Increment counter took for one period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct IncrementPeriod {
    /// Whole increments.
    whole: i64,
    /// Fractional increments.
    fraction: f64,
    /// The absolute value read, which becomes the published baseline once the save succeeds.
    absolute: Option<u64>,
    /// The change of the absolute value since the last publish.
    absolute_delta: i64,
    /// Whether the counter was updated in the period (an `increment(0)` publishes 0).
    updated: bool,
}

impl IncrementPeriod {
    /// Whole increments and the absolute change, saturating.
    fn whole_total(&self) -> i64 {
        self.whole.saturating_add(self.absolute_delta)
    }
}

impl Period {
    /// Whether the period holds nothing to publish. A level that was set is never empty.
    pub(crate) fn is_empty(&self, level: Option<u64>) -> bool {
        match self {
            Period::Increment(p) => !p.updated && p.whole == 0 && p.fraction == 0.0 && p.absolute_delta == 0,
            Period::Sampled(sampled) => sampled.stats.count == 0,
            Period::Level => level.is_none_or(|bits| bits == UNSET),
        }
    }
}

impl CounterCell {
    pub(crate) fn new(kind: CounterType) -> CounterCell {
        let body = match kind {
            CounterType::Increment => Body::Increment(Increment::default()),
            CounterType::LastValue | CounterType::Timestamp => Body::Level(AtomicU64::new(UNSET)),
            CounterType::Interval | CounterType::Statistics => Body::Sampled(Box::new(Sampled {
                start: AtomicI64::new(0),
                end: [AtomicI64::new(0), AtomicI64::new(i64::MIN)],
                slots: [Slot::new(), Slot::new()],
                last: AtomicU64::new(UNSET),
                buckets: OnceLock::new(),
                view: Mutex::new(SampledView::default()),
            })),
        };
        CounterCell { kind, scale: 0, flags: AtomicU8::new(0), rejected: AtomicU32::new(0), body }
    }

    /// A cell whose `metrics` histogram samples are multiplied by `scale`, a power of ten from 1e-9 to 1e9.
    pub(crate) fn with_scale(kind: CounterType, scale: f64) -> CounterCell {
        let exponent = scale.log10().round().clamp(-9.0, 9.0) as i8;
        debug_assert!((10f64.powi(exponent.into()) - scale).abs() <= scale * 1e-12, "a scale is a power of ten");
        CounterCell { scale: exponent, ..CounterCell::new(kind) }
    }

    /// Whether `other` multiplies its `metrics` histogram samples as this cell does (their samples are in the same
    /// unit).
    pub(crate) fn same_scale(&self, other: &CounterCell) -> bool {
        self.scale == other.scale
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
        self.flags.load(Relaxed) & RETIRED != 0
    }

    pub(crate) fn retire(&self) {
        self.flags.fetch_or(RETIRED, Relaxed);
    }

    /// Interval/Statistics: whether samples are also counted in buckets for percentiles (from the next sample
    /// on; a period that had them only in part is sent as a statistic set).
    pub(crate) fn set_percentiles(&self, on: bool) {
        if self.kind.is_sampled() {
            if on {
                self.flags.fetch_or(PERCENTILES, Relaxed);
            } else {
                self.flags.fetch_and(!PERCENTILES, Relaxed);
            }
        }
    }

    /// Marks one of the crate's own counters: it never makes a dump send on its own, and takes no place under
    /// the cap. Whether it was not marked yet.
    pub(crate) fn reserve(&self) -> bool {
        self.flags.fetch_or(RESERVED, Relaxed) & RESERVED == 0
    }

    /// Whether this is one of the crate's own counters.
    pub(crate) fn is_reserved(&self) -> bool {
        self.flags.load(Relaxed) & RESERVED != 0
    }

    /// Whether an update may be recorded: a cell removed from the store (cleared, replaced by another type, or
    /// refused past the cap) is read by nobody, so an update through a stale handle is counted as rejected
    /// instead (one load of the flags, which `mark` needs anyway).
    #[inline]
    fn accepts_updates(&self) -> bool {
        if self.flags.load(Relaxed) & RETIRED == 0 {
            true
        } else {
            self.reject();
            false
        }
    }

    #[inline]
    fn mark(&self, flags: u8) {
        // A plain load first: the cache line stays shared while the flags are already set.
        if self.flags.load(Relaxed) & flags != flags {
            self.flags.fetch_or(flags, Release);
        }
    }

    /// Counts a value that was refused (not finite, or beyond CloudWatch's range, or one a front-end refuses
    /// for the counter, as a negative `monotonic_counter.` event), saturating.
    #[cold]
    pub(crate) fn reject(&self) {
        count_one(&self.rejected);
    }

    /// Increment: adds `value`. A sum that would pass [`PERIOD_LIMIT`] (or [`PERIOD_MIN`]) saturates and is counted.
    #[inline]
    pub(crate) fn add(&self, value: i64) {
        if value.unsigned_abs() <= FAST_ADD {
            self.add_small(value);
        } else {
            self.add_large(value);
        }
    }

    /// Increment: adds a `u64` (a `metrics` counter's `increment`); a period's sum past [`PERIOD_LIMIT`]
    /// saturates and is counted.
    #[inline]
    pub(crate) fn add_unsigned(&self, value: u64) {
        if value <= FAST_ADD {
            self.add_small(i64::try_from(value).unwrap_or_default());
        } else {
            self.add_large(i64::try_from(value).unwrap_or(i64::MAX));
        }
    }

    /// [`add`](Self::add) of at most [`FAST_ADD`]: one `fetch_add`, and a repair in the rare case it took the
    /// period past the limit.
    #[inline]
    fn add_small(&self, value: i64) {
        if !self.add_small_unless_retired(value) {
            self.reject();
        }
    }

    /// [`add_small`](Self::add_small), except that a retired cell neither adds nor counts the value: `false`.
    #[inline]
    fn add_small_unless_retired(&self, value: i64) -> bool {
        let Body::Increment(inc) = &self.body else {
            self.reject();
            return true;
        };
        // One load of the flags serves both checks: a hot counter's line is contended. Seen a little early, a
        // DIRTY flag a take is clearing only matters for `add(0)`: any other amount makes its period non-empty.
        let flags = self.flags.load(Relaxed);
        if flags & RETIRED != 0 {
            return false;
        }
        let after = inc.period.fetch_add(value, Relaxed).wrapping_add(value);
        // Outside the 63-bit range exactly when doubling it overflows: one add and a jump on its flag.
        if after.checked_add(after).is_none() {
            inc.saturate();
        }
        if flags & (DIRTY | USED) != DIRTY | USED {
            self.flags.fetch_or(DIRTY | USED, Release);
        }
        true
    }

    /// [`add`](Self::add) of more than [`FAST_ADD`]: in one compare-and-swap, saturating at the limit (counted).
    #[cold]
    fn add_large(&self, value: i64) {
        let Body::Increment(inc) = &self.body else { return self.reject() };
        if !self.accepts_updates() {
            return;
        }
        inc.add_large(value);
        self.mark(DIRTY | USED);
    }

    /// Increment: adds a possibly fractional `value` (tracing metric events); whole values take the integer
    /// path, a fraction is kept exactly beside it. A non-finite or out-of-range value is refused and counted.
    pub(crate) fn add_f64(&self, value: f64) {
        if !in_range(value) {
            return self.reject();
        }
        if value.fract() == 0.0 && value.abs() < 9.0e18 {
            return self.add(value as i64);
        }
        let Body::Increment(inc) = &self.body else { return self.reject() };
        if !self.accepts_updates() {
            return;
        }
        update_f64(&inc.extra().fraction, |f| Some(f + value));
        self.mark(DIRTY | USED);
    }

    /// Increment: sets the counter's absolute total (a `metrics` counter's `absolute`); each period publishes
    /// the change since the value the last take read (a value lower than that counts as a restart from 0).
    pub(crate) fn set_absolute(&self, value: u64) {
        let Body::Increment(inc) = &self.body else { return self.reject() };
        if !self.accepts_updates() {
            return;
        }
        let extra = inc.extra();
        extra.absolute.store(value, Relaxed);
        extra.has_absolute.store(true, Release);
        self.mark(DIRTY | USED);
    }

    /// Interval/Statistics: records one sample; a non-finite or out-of-range one is refused and counted.
    #[inline]
    pub(crate) fn sample(&self, value: f64) {
        if !self.sample_unless_retired(value) {
            self.reject();
        }
    }

    /// [`CounterCell::sample`], except that a retired cell neither records nor counts the sample: `false`, for
    /// the caller to record it where the counter's name is now (one read of the flags serves both). Inlined
    /// into its callers: as a call, its prologue and epilogue were a tenth of a span's added cost.
    #[allow(clippy::inline_always, reason = "measured with perf/examples/span_cost.rs (see above)")]
    #[inline(always)]
    pub(crate) fn sample_unless_retired(&self, value: f64) -> bool {
        let flags = self.flags.load(Relaxed);
        if flags & RETIRED != 0 {
            return false;
        }
        let Body::Sampled(s) = &self.body else {
            self.reject();
            return true;
        };
        if !in_range(value) {
            self.reject();
            return true;
        }
        let slot = s.enter();
        s.record(slot, value);
        if flags & PERCENTILES != 0 {
            s.buckets.get_or_init(Box::default).record(slot, value);
        }
        s.leave(slot);
        s.last.store(value.to_bits(), Relaxed);
        true
    }

    /// Increment: adds 1, unless the cell is retired: `false` then, for the caller to add it where the counter's
    /// name is now.
    pub(crate) fn add_one_unless_retired(&self) -> bool {
        self.add_small_unless_retired(1)
    }

    /// Interval/Statistics: records one `metrics` histogram sample, multiplied by the cell's scale.
    #[inline]
    pub(crate) fn sample_scaled(&self, value: f64) {
        self.sample(self.scaled(value));
    }

    /// LastValue: sets the level; a non-finite or out-of-range one is refused and counted.
    #[inline]
    pub(crate) fn set_last(&self, value: f64) {
        // A Timestamp holds a level too, of another meaning: refused as any call of another type.
        let (Body::Level(level), CounterType::LastValue) = (&self.body, self.kind) else { return self.reject() };
        if !self.accepts_updates() {
            return;
        }
        if !in_range(value) {
            return self.reject();
        }
        level.store(value.to_bits(), Relaxed);
    }

    /// LastValue: adds `delta` to the level (a `metrics` gauge's `increment` / `decrement`; an unset level
    /// counts as 0). A delta that is not finite, or a level it would take out of range, is refused and counted.
    #[inline]
    pub(crate) fn add_last(&self, delta: f64) {
        let (Body::Level(level), CounterType::LastValue) = (&self.body, self.kind) else { return self.reject() };
        if !self.accepts_updates() {
            return;
        }
        if !delta.is_finite() {
            return self.reject();
        }
        let mut refused = false;
        let _ = level.fetch_update(Relaxed, Relaxed, |bits| {
            let now = if bits == UNSET { delta } else { f64::from_bits(bits) + delta };
            refused = !in_range(now);
            (!refused).then(|| now.to_bits())
        });
        if refused {
            self.reject();
        }
    }

    /// Timestamp: sets the time.
    #[inline]
    pub(crate) fn set_time(&self, time: SystemTime) {
        let (Body::Level(level), CounterType::Timestamp) = (&self.body, self.kind) else { return self.reject() };
        if !self.accepts_updates() {
            return;
        }
        // UNSET read as an i64 is a time 292,000 years from now; such a time is kept one microsecond earlier.
        let micros = epoch_micros(time) as u64;
        level.store(if micros == UNSET { UNSET - 1 } else { micros }, Relaxed);
    }

    /// Whether the cell holds something a take would publish: an Increment updated (or a failed save's amount put
    /// back), samples in the current phase or a failed save's pending ones. Levels never count as activity.
    pub(crate) fn has_activity(&self) -> bool {
        match &self.body {
            Body::Increment(inc) => self.flags.load(Acquire) & DIRTY != 0 || inc.period.load(Relaxed) != 0,
            Body::Sampled(s) => s.read_current().count > 0 || s.view().pending.stats.count > 0,
            Body::Level(_) => false,
        }
    }

    /// Whether the cell keeps state across periods that a new cell would not have: an `absolute` baseline, or a
    /// level. Such cells never expire.
    pub(crate) fn holds_state(&self) -> bool {
        match &self.body {
            Body::Increment(inc) => inc.extra.get().is_some_and(|e| e.has_absolute.load(Acquire)),
            Body::Sampled(_) => false,
            Body::Level(_) => true,
        }
    }

    /// The values refused since the last call.
    pub(crate) fn take_rejected(&self) -> u64 {
        if self.rejected.load(Relaxed) == 0 {
            0
        } else {
            u64::from(self.rejected.swap(0, Relaxed))
        }
    }

    /// The increments saturated since the last call.
    pub(crate) fn take_saturated(&self) -> u64 {
        match &self.body {
            Body::Increment(inc) => inc.extra.get().map_or(0, |e| u64::from(e.saturated.swap(0, Relaxed))),
            _ => 0,
        }
    }

    /// Takes the period: moves what was recorded since the last take out of the cell and folds it into the
    /// local totals. The caller publishes it, then calls [`commit`](Self::commit) or [`undo`](Self::undo).
    pub(crate) fn take(&self) -> Period {
        match &self.body {
            Body::Increment(inc) => {
                let updated = self.flags.fetch_and(!DIRTY, Acquire) & DIRTY != 0;
                // Past the limit only while an add that overshot it is being repaired: its excess is saturated
                // (that add counts it).
                let whole = clamp_period(inc.period.swap(0, Acquire));
                let mut period = IncrementPeriod { whole, updated, ..Default::default() };
                if let Some(extra) = inc.extra.get() {
                    period.fraction = f64::from_bits(extra.fraction.swap(0f64.to_bits(), Relaxed));
                    if let Some((now, delta)) = extra.absolute_change(&extra.published) {
                        extra.folded.store(now, Relaxed);
                        period.absolute = Some(now);
                        period.absolute_delta = delta;
                    }
                    update_f64(&extra.fraction_total, |f| Some(f + period.fraction));
                }
                let _ = inc.total.fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_add(period.whole_total())));
                // An amount taken is a use, whatever the flags said: an `add` that saw them set before a take and
                // a reset cleared them does not set them again.
                if (period.whole != 0 || period.fraction != 0.0) && self.flags.load(Relaxed) & USED == 0 {
                    self.flags.fetch_or(USED, Relaxed);
                }
                Period::Increment(period)
            }
            Body::Sampled(s) => {
                let (stats, distribution) = s.flip();
                let distribution =
                    distribution.filter(|d| self.flags.load(Relaxed) & PERCENTILES != 0 && d.count() == stats.count);
                let mut view = s.view();
                view.totals.merge(&stats);
                let mut period = std::mem::take(&mut view.pending);
                period.merge(&SampledPeriod { stats, distribution });
                Period::Sampled(period)
            }
            Body::Level(_) => Period::Level,
        }
    }

    /// The save of `period` succeeded: an absolute value becomes the published baseline.
    ///
    /// Only a period with an absolute value reads the cell: a dump larger than the caches commits the others
    /// without waiting on their cells' memory.
    pub(crate) fn commit(&self, period: &Period) {
        if let Period::Increment(IncrementPeriod { absolute: Some(absolute), .. }) = period {
            if let Body::Increment(inc) = &self.body {
                if let Some(extra) = inc.extra.get() {
                    extra.published.store(*absolute, Relaxed);
                }
            }
        }
    }

    /// The save of `period` failed: the period goes back, to be published with the next take (the local totals
    /// already hold it and are not counted twice).
    pub(crate) fn undo(&self, period: &Period) {
        match (&self.body, period) {
            (Body::Increment(inc), Period::Increment(p)) => {
                let _ = inc.total.fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_sub(p.whole_total())));
                // An absolute value's change goes back as an amount, and the reading it was worked out from
                // becomes the baseline: a source that restarts from 0 before the next take is then seen as a
                // restart against that reading, and the change read here is published all the same.
                inc.add_large(p.whole_total());
                if let Some(extra) = inc.extra.get() {
                    update_f64(&extra.fraction, |f| Some(f + p.fraction));
                    update_f64(&extra.fraction_total, |f| Some(f - p.fraction));
                    if let Some(absolute) = p.absolute {
                        extra.published.store(absolute, Relaxed);
                        extra.folded.store(absolute, Relaxed);
                    }
                }
                if p.updated {
                    self.mark(DIRTY);
                }
            }
            (Body::Sampled(s), Period::Sampled(sampled)) => s.view().pending.merge(sampled),
            _ => {}
        }
    }

    /// Moves `period`, taken from another cell of this counter (one kept aside after its idle expiry, beside this
    /// newer one), into this cell's next take and local totals, so that a dump publishes the counter once; the
    /// caller commits it on the cell it came from (an absolute value's change moves as an amount). `false`, and
    /// nothing moved, for a period of another kind.
    pub(crate) fn absorb(&self, period: &Period) -> bool {
        match (&self.body, period) {
            (Body::Increment(inc), Period::Increment(p)) => {
                inc.add_large(p.whole_total());
                if p.fraction != 0.0 {
                    update_f64(&inc.extra().fraction, |f| Some(f + p.fraction));
                }
                self.mark(DIRTY | USED);
                true
            }
            (Body::Sampled(s), Period::Sampled(sampled)) => {
                let mut view = s.view();
                // A take adds its own samples to the totals, not the pending ones (a failed save's, already in).
                view.totals.merge(&sampled.stats);
                view.pending.merge(sampled);
                true
            }
            _ => false,
        }
    }

    /// Resets the local totals (pip's reset after `reset_timeout`).
    pub(crate) fn reset_totals(&self) {
        match &self.body {
            Body::Increment(inc) => {
                // As pip's reset, which removes the counters: unused until the next update, unless an update
                // the next take will fold into the totals came since the last take (DIRTY, or an amount in the
                // period: an `add` that saw the flags set before that take does not set them again).
                let pending = inc.period.load(Relaxed) != 0;
                let _ =
                    self.flags.fetch_update(Relaxed, Relaxed, |f| (f & DIRTY == 0 && !pending).then_some(f & !USED));
                inc.total.store(0, Relaxed);
                if let Some(extra) = inc.extra.get() {
                    extra.fraction_total.store(0f64.to_bits(), Relaxed);
                }
            }
            Body::Sampled(s) => s.view().totals = Stats::default(),
            Body::Level(_) => {}
        }
    }

    /// The level (LastValue value or Timestamp time bits), `None` for other types.
    fn level_bits(&self) -> Option<u64> {
        match &self.body {
            Body::Level(level) => Some(level.load(Relaxed)),
            _ => None,
        }
    }

    /// Whether `period` holds nothing to publish.
    pub(crate) fn is_empty_period(&self, period: &Period) -> bool {
        period.is_empty(self.level_bits())
    }

    /// Fills `counter` with the period view of `period`: what happened in it, and the current level.
    pub(crate) fn fill_period(&self, period: &Period, counter: &mut Counter) {
        match period {
            Period::Increment(p) => fill_increment(counter, p.whole_total(), p.fraction),
            Period::Sampled(sampled) => {
                self.fill_stats(counter, &sampled.stats);
                counter.distribution.clone_from(&sampled.distribution);
            }
            Period::Level => self.fill_level(counter),
        }
    }

    /// Fills `counter` with the local totals (pip's running view), after a take has folded its period in.
    pub(crate) fn fill_totals(&self, counter: &mut Counter) {
        match &self.body {
            Body::Increment(inc) => {
                if self.flags.load(Relaxed) & USED != 0 {
                    let fraction = inc.extra.get().map_or(0.0, |e| f64::from_bits(e.fraction_total.load(Relaxed)));
                    fill_increment(counter, inc.total.load(Relaxed), fraction);
                }
            }
            Body::Sampled(s) => {
                let totals = s.view().totals;
                self.fill_stats(counter, &totals);
            }
            Body::Level(_) => self.fill_level(counter),
        }
    }

    /// Fills `counter` with the local view as it is now: the totals plus what the current period holds so far
    /// (a read racing a sample may see part of it).
    pub(crate) fn fill_live(&self, counter: &mut Counter) {
        match &self.body {
            Body::Increment(inc) => {
                let period = inc.period.load(Relaxed);
                if self.flags.load(Relaxed) & USED != 0 || period != 0 {
                    let mut whole = inc.total.load(Relaxed).saturating_add(period);
                    let mut fraction = 0.0;
                    if let Some(extra) = inc.extra.get() {
                        fraction = f64::from_bits(extra.fraction_total.load(Relaxed))
                            + f64::from_bits(extra.fraction.load(Relaxed));
                        if let Some((_, delta)) = extra.absolute_change(&extra.folded) {
                            whole = whole.saturating_add(delta);
                        }
                    }
                    fill_increment(counter, whole, fraction);
                }
            }
            Body::Sampled(s) => {
                let view = s.view();
                let live = view.totals.merged(&s.read_current());
                drop(view);
                self.fill_stats(counter, &live);
            }
            Body::Level(_) => self.fill_level(counter),
        }
    }

    fn fill_stats(&self, counter: &mut Counter, stats: &Stats) {
        if stats.count == 0 {
            return;
        }
        counter.count = Some(i64::try_from(stats.count).unwrap_or(i64::MAX));
        counter.sum = Some(stats.sum);
        counter.average = Some(stats.sum / stats.count as f64);
        counter.min = Some(stats.min);
        counter.max = Some(stats.max);
        if let Body::Sampled(s) = &self.body {
            counter.last = unset_to_none(s.last.load(Relaxed));
        }
    }

    fn fill_level(&self, counter: &mut Counter) {
        let Some(bits) = self.level_bits().filter(|&bits| bits != UNSET) else { return };
        match self.kind {
            CounterType::Timestamp => counter.time = Some(from_epoch_micros(bits as i64)),
            _ => counter.last = Some(f64::from_bits(bits)),
        }
    }
}

/// An Increment's `count` (whole, saturating) and, when fractions were added, the exact value in `sum`.
fn fill_increment(counter: &mut Counter, whole: i64, fraction: f64) {
    if fraction == 0.0 {
        counter.count = Some(whole);
    } else {
        counter.count = Some(whole.saturating_add(fraction.trunc() as i64));
        counter.sum = Some(whole as f64 + fraction);
    }
}

impl Increment {
    /// The rarely used part, allocated the first time it is needed.
    #[cold]
    fn extra(&self) -> &IncrementExtra {
        self.extra.get_or_init(Box::default)
    }

    #[cold]
    fn count_saturated(&self) {
        count_one(&self.extra().saturated);
    }

    /// Adds `value` in one compare-and-swap, saturating at the limit (counted): a large add, or an amount put back
    /// into the period.
    fn add_large(&self, value: i64) {
        let before = self.period.fetch_update(Relaxed, Relaxed, |p| Some(clamp_period(p.saturating_add(value))));
        if before.is_ok_and(|p| beyond_period(p.saturating_add(value))) {
            self.count_saturated();
        }
    }

    /// Brings back within the limit a period that an add took past it (a take may have taken the excess
    /// already, clamping it), and counts the add as saturated.
    #[cold]
    fn saturate(&self) {
        let _ = self.period.fetch_update(Relaxed, Relaxed, |p| Some(clamp_period(p)));
        self.count_saturated();
    }
}

/// Whether `sum` is outside a period's range.
fn beyond_period(sum: i64) -> bool {
    sum != clamp_period(sum)
}

/// `period` within [`PERIOD_MIN`] ..= [`PERIOD_LIMIT`].
fn clamp_period(period: i64) -> i64 {
    period.clamp(PERIOD_MIN, PERIOD_LIMIT)
}

impl IncrementExtra {
    /// The absolute value set and its change since `base` (the value the last take read, or what the totals
    /// hold; a value lower than that counts as a restart from 0), if an absolute value was ever set.
    fn absolute_change(&self, base: &AtomicU64) -> Option<(u64, i64)> {
        if !self.has_absolute.load(Acquire) {
            return None;
        }
        let (now, base) = (self.absolute.load(Relaxed), base.load(Relaxed));
        let delta = if now >= base { now - base } else { now };
        Some((now, i64::try_from(delta).unwrap_or(i64::MAX)))
    }
}

impl Sampled {
    fn view(&self) -> std::sync::MutexGuard<'_, SampledView> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A sample enters the current phase; the sign of its ticket says which slot it writes.
    #[inline]
    fn enter(&self) -> usize {
        usize::from(self.start.fetch_add(1, AcqRel) < 0)
    }

    /// Adds one sample to `slot`'s sum, min and max.
    #[inline]
    fn record(&self, slot: usize, value: f64) {
        let cells = &self.slots[slot];
        update_f64(&cells.sum, |sum| Some(sum + value));
        update_f64(&cells.min, |min| (value < min).then_some(value));
        update_f64(&cells.max, |max| (value > max).then_some(value));
    }

    /// The sample leaves its phase: the leavers of a phase are its SampleCount, and a take waits for them all.
    #[inline]
    fn leave(&self, slot: usize) {
        self.end[slot].fetch_add(1, Release);
    }

    /// Starts a take: new samples go to the other slot from here on.
    fn begin_flip(&self) -> Flip {
        let old = usize::from(self.start.load(Acquire) < 0);
        let new = 1 - old;
        // No sample writes the new slot yet: its leavers are counted from its start value.
        self.end[new].store(phase_start(new), Relaxed);
        let entered = self.start.swap(phase_start(new), SeqCst);
        Flip { old, entered }
    }

    /// Ends a take once every sample that entered the old phase has left it: takes the old slot's contents
    /// (and its bucket counts, if any). `None` while a sample is still inside.
    fn try_finish(&self, flip: &Flip) -> Option<(Stats, Option<Distribution>)> {
        if self.end[flip.old].load(Acquire) != flip.entered {
            return None;
        }
        let slot = &self.slots[flip.old];
        let stats = Stats {
            count: flip.entered.wrapping_sub(phase_start(flip.old)) as u64,
            sum: f64::from_bits(slot.sum.swap(0f64.to_bits(), Relaxed)),
            min: f64::from_bits(slot.min.swap(f64::INFINITY.to_bits(), Relaxed)),
            max: f64::from_bits(slot.max.swap(f64::NEG_INFINITY.to_bits(), Relaxed)),
        };
        Some((stats, self.buckets.get().map(|b| b.take(flip.old))))
    }

    /// Takes the current period: flips, and waits for the samples still inside the old phase (a few
    /// instructions each; it yields if one's thread was preempted there).
    fn flip(&self) -> (Stats, Option<Distribution>) {
        let flip = self.begin_flip();
        let mut spins = 0u32;
        loop {
            if let Some(taken) = self.try_finish(&flip) {
                return taken;
            }
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            spins = spins.saturating_add(1);
        }
    }

    /// What the current period holds so far, without taking it (a local read).
    fn read_current(&self) -> Stats {
        let current = usize::from(self.start.load(Acquire) < 0);
        let slot = &self.slots[current];
        Stats {
            count: self.end[current].load(Acquire).wrapping_sub(phase_start(current)) as u64,
            sum: f64::from_bits(slot.sum.load(Relaxed)),
            min: f64::from_bits(slot.min.load(Relaxed)),
            max: f64::from_bits(slot.max.load(Relaxed)),
        }
    }
}

/// A take in progress: the phase it closed and how many samples entered it.
#[derive(Debug)]
struct Flip {
    old: usize,
    entered: i64,
}

/// Where a slot's tickets start: 0 for the even slot, `i64::MIN` for the odd one (whose tickets are negative).
fn phase_start(slot: usize) -> i64 {
    if slot == 0 {
        0
    } else {
        i64::MIN
    }
}

/// Adds one to a per-period event count, stopping at `u32::MAX` instead of wrapping.
fn count_one(count: &AtomicU32) {
    let _ = count.fetch_update(Relaxed, Relaxed, |n| n.checked_add(1));
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

/// The time `micros` microseconds from the Unix epoch.
pub(crate) fn from_epoch_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests;
