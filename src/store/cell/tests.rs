//! The cell's per-period semantics, with the interleavings of recording and taking that matter played out step
//! by step (deterministically), then under real concurrent load.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn period_counter(cell: &CounterCell, period: &Period) -> Counter {
    let mut counter = Counter::new("c", cell.kind());
    cell.fill_period(period, &mut counter);
    counter
}

fn totals_counter(cell: &CounterCell) -> Counter {
    let mut counter = Counter::new("c", cell.kind());
    cell.fill_totals(&mut counter);
    counter
}

fn live_counter(cell: &CounterCell) -> Counter {
    let mut counter = Counter::new("c", cell.kind());
    cell.fill_live(&mut counter);
    counter
}

fn sampled(cell: &CounterCell) -> &Sampled {
    match &cell.body {
        Body::Sampled(s) => s,
        _ => panic!("not a sampled cell"),
    }
}

fn increment(cell: &CounterCell) -> &Increment {
    match &cell.body {
        Body::Increment(inc) => inc,
        _ => panic!("not an increment cell"),
    }
}

#[test]
fn each_period_publishes_what_happened_in_it_and_totals_keep_running() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.add(3);
    cell.add(4);
    let first = cell.take();
    cell.commit(&first);
    assert_eq!(period_counter(&cell, &first).count, Some(7));
    cell.add(5);
    let second = cell.take();
    cell.commit(&second);
    assert_eq!(period_counter(&cell, &second).count, Some(5), "not 12: the first period is not sent again");
    assert_eq!(totals_counter(&cell).count, Some(12), "pip's running total for local reads");
    let third = cell.take();
    assert!(cell.is_empty_period(&third), "nothing happened");
    cell.reset_totals();
    assert_eq!(totals_counter(&cell).count, None, "as pip's reset, which removes the counters");
}

#[test]
fn an_add_between_a_take_and_the_reset_shows_in_the_totals_after_the_next_take() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.add(3);
    let first = cell.take();
    cell.commit(&first);
    cell.add(5); // while the dump that will reset the totals is saving
    cell.reset_totals();
    let second = cell.take();
    cell.commit(&second);
    assert_eq!(period_counter(&cell, &second).count, Some(5));
    assert_eq!(totals_counter(&cell).count, Some(5), "the local view shows the update, as pip's would");
}

#[test]
fn an_add_that_saw_its_flags_before_a_take_still_shows_in_the_totals_after_a_reset() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.add(1);
    let first = cell.take();
    // An `add` that loaded the flags (both set) before that take lands its amount after it, without setting
    // them again.
    increment(&cell).period.fetch_add(5, Relaxed);
    cell.commit(&first);
    cell.reset_totals();
    let second = cell.take();
    cell.commit(&second);
    assert_eq!(totals_counter(&cell).count, Some(5));
}

#[test]
fn an_increment_of_zero_publishes_zero_and_a_failed_save_goes_out_once_with_the_next() {
    let cell = CounterCell::new(CounterType::Increment);
    assert_eq!(live_counter(&cell).count, None, "never used: pip's count is null");
    cell.add(0);
    let zero = cell.take();
    assert!(!cell.is_empty_period(&zero));
    assert_eq!(period_counter(&cell, &zero).count, Some(0));
    cell.add(2);
    let failed = cell.take();
    cell.undo(&failed);
    assert_eq!(live_counter(&cell).count, Some(2), "the local view neither loses nor doubles it");
    cell.add(1);
    let next = cell.take();
    cell.commit(&next);
    assert_eq!(period_counter(&cell, &next).count, Some(3));
    assert_eq!(totals_counter(&cell).count, Some(3));
}

#[test]
fn an_add_whose_count_lands_before_its_flag_is_taken_once() {
    // add = [count += v][flags |= DIRTY]; take = [flags &= !DIRTY][count := 0]. Play the take between the two
    // halves of the add: the count goes in this period (not dropped as "not updated"), the late flag only makes
    // the next period publish 0.
    let cell = CounterCell::new(CounterType::Increment);
    increment(&cell).period.fetch_add(5, Relaxed);
    let first = cell.take();
    assert!(!cell.is_empty_period(&first));
    assert_eq!(period_counter(&cell, &first).count, Some(5));
    cell.mark(DIRTY | USED);
    let second = cell.take();
    assert_eq!(period_counter(&cell, &second).count, Some(0));
}

#[test]
fn increments_saturate_instead_of_wrapping_and_are_counted() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.add(PERIOD_LIMIT - 1);
    cell.add(5);
    cell.add_unsigned(u64::MAX);
    cell.add(i64::MAX);
    let period = cell.take();
    assert_eq!(period_counter(&cell, &period).count, Some(PERIOD_LIMIT));
    assert_eq!(cell.take_saturated(), 3);
    assert_eq!(cell.take_saturated(), 0);
    cell.add(-3);
    cell.add(i64::MIN);
    cell.add(-1);
    let period = cell.take();
    assert_eq!(period_counter(&cell, &period).count, Some(PERIOD_MIN));
    assert_eq!(cell.take_saturated(), 2, "the large add and the one after it");
    cell.add(PERIOD_LIMIT);
    cell.add(-PERIOD_LIMIT);
    assert_eq!(period_counter(&cell, &cell.take()).count, Some(0));
    assert_eq!(cell.take_saturated(), 0, "large adds within the limit are exact");
}

#[test]
fn a_take_between_an_add_past_the_limit_and_its_repair_takes_the_limit_not_a_wrapped_sum() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.add(PERIOD_LIMIT - 1);
    // What an add of 100 leaves before it repairs the overshoot: the take comes in between.
    increment(&cell).period.fetch_add(100, Relaxed);
    let period = cell.take();
    assert_eq!(period_counter(&cell, &period).count, Some(PERIOD_LIMIT));
    increment(&cell).saturate();
    assert_eq!(period_counter(&cell, &cell.take()).count, Some(0), "the repair finds nothing left to clamp");
    assert_eq!(cell.take_saturated(), 1);
    // A failed save puts the period back; past the limit with what came since, it saturates and counts.
    cell.add(10);
    cell.undo(&period);
    assert_eq!(period_counter(&cell, &cell.take()).count, Some(PERIOD_LIMIT));
    assert_eq!(cell.take_saturated(), 1);
}

#[test]
fn periods_near_the_limit_never_wrap_under_concurrent_adds_and_takes() {
    // Adds of 2^53 (the largest the fetch_add path takes) keep the period at the limit while a thread takes:
    // every period taken is between 0 and the limit. (Saturating at i64::MAX with the same repair after the
    // add, a take between an add and its repair published a negative sum.)
    let cell = Arc::new(CounterCell::new(CounterType::Increment));
    let adders: Vec<_> = (0..2)
        .map(|_| {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    cell.add(1 << 53);
                }
            })
        })
        .collect();
    let mut takes = 0u64;
    while takes < 2_000_000 && !adders.iter().all(std::thread::JoinHandle::is_finished) {
        let count = period_counter(&cell, &cell.take()).count.unwrap_or(0);
        assert!((0..=PERIOD_LIMIT).contains(&count), "take {takes}: {count}");
        takes += 1;
    }
    for adder in adders {
        adder.join().expect("adder");
    }
    let count = period_counter(&cell, &cell.take()).count.unwrap_or(0);
    assert!((0..=PERIOD_LIMIT).contains(&count), "last take: {count}");
}

#[test]
fn fractional_increments_are_kept_exactly() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.add_f64(0.5);
    cell.add_f64(2.0);
    cell.add_f64(0.25);
    cell.add_f64(f64::NAN);
    let period = cell.take();
    let counter = period_counter(&cell, &period);
    assert_eq!((counter.count, counter.sum), (Some(2), Some(2.75)));
    assert_eq!(cell.take_rejected(), 1);
}

#[test]
fn absolute_publishes_the_change_since_the_last_successful_publish() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.set_absolute(10);
    let first = cell.take();
    cell.commit(&first);
    assert_eq!(period_counter(&cell, &first).count, Some(10));
    cell.set_absolute(12);
    let failed = cell.take();
    assert_eq!(period_counter(&cell, &failed).count, Some(2));
    cell.undo(&failed);
    cell.set_absolute(15);
    let retried = cell.take();
    cell.commit(&retried);
    assert_eq!(period_counter(&cell, &retried).count, Some(5), "12 after a failed save, then 15: 5 since 10");
    assert_eq!(totals_counter(&cell).count, Some(15));
    cell.set_absolute(4);
    let restarted = cell.take();
    assert_eq!(period_counter(&cell, &restarted).count, Some(4), "a lower value is a restart from 0");
}

#[test]
fn levels_are_never_taken_so_gauges_move_across_dumps_and_failed_saves() {
    let cell = CounterCell::new(CounterType::LastValue);
    assert!(cell.is_empty_period(&cell.take()), "never set: nothing to publish");
    cell.add_last(3.0);
    let first = cell.take();
    assert_eq!(period_counter(&cell, &first).last, Some(3.0));
    cell.undo(&first);
    cell.add_last(-3.0);
    let second = cell.take();
    assert_eq!(period_counter(&cell, &second).last, Some(0.0), "not -3: the level is not reset by a dump");
    assert!(!cell.is_empty_period(&second), "a level is published at every dump");
    cell.set_last(f64::INFINITY);
    cell.set_last(1e300);
    cell.add_last(1e300);
    assert_eq!(cell.take_rejected(), 3);
    assert_eq!(live_counter(&cell).last, Some(0.0));
}

#[test]
fn samples_take_whole_periods_with_exact_statistics() {
    let cell = CounterCell::new(CounterType::Statistics);
    for v in [3.0, -1.0, 7.5] {
        cell.sample(v);
    }
    let first = cell.take();
    let c = period_counter(&cell, &first);
    assert_eq!((c.count, c.sum, c.min, c.max, c.last), (Some(3), Some(9.5), Some(-1.0), Some(7.5), Some(7.5)));
    cell.sample(10.0);
    let second = cell.take();
    let c = period_counter(&cell, &second);
    assert_eq!((c.count, c.sum, c.min, c.max), (Some(1), Some(10.0), Some(10.0), Some(10.0)));
    let t = totals_counter(&cell);
    assert_eq!((t.count, t.sum, t.min, t.max), (Some(4), Some(19.5), Some(-1.0), Some(10.0)));
    assert!(cell.is_empty_period(&cell.take()));
}

#[test]
fn a_failed_period_goes_out_with_the_next_one_and_totals_count_it_once() {
    let cell = CounterCell::new(CounterType::Interval);
    cell.sample(2.0);
    let failed = cell.take();
    cell.undo(&failed);
    cell.sample(4.0);
    let next = cell.take();
    let c = period_counter(&cell, &next);
    assert_eq!((c.count, c.sum, c.min, c.max), (Some(2), Some(6.0), Some(2.0), Some(4.0)));
    assert_eq!(totals_counter(&cell).count, Some(2));
}

#[test]
fn out_of_range_samples_are_refused_like_nan() {
    let cell = CounterCell::new(CounterType::Statistics);
    for bad in [f64::NAN, f64::INFINITY, 1e109, -1e109, 1e-109] {
        cell.sample(bad);
    }
    cell.sample(0.0);
    cell.sample(crate::model::MAX_VALUE);
    assert_eq!(cell.take_rejected(), 5);
    assert_eq!(period_counter(&cell, &cell.take()).count, Some(2));
}

#[test]
fn a_sample_inside_its_phase_when_the_take_flips_is_waited_for_and_taken_whole() {
    let cell = CounterCell::new(CounterType::Statistics);
    let s = sampled(&cell);
    cell.sample(1.0);
    let slot = s.enter();
    let flip = s.begin_flip();
    assert_eq!(s.try_finish(&flip), None, "the take waits while a sample is inside the old phase");
    s.record(slot, 5.0);
    assert_eq!(s.try_finish(&flip), None);
    s.leave(slot);
    let (taken, _) = s.try_finish(&flip).expect("every sample left");
    assert_eq!((taken.count, taken.sum, taken.min, taken.max), (2, 6.0, 1.0, 5.0));
    assert_eq!(s.flip().0.count, 0, "nothing of it is left for the next period");
}

#[test]
fn a_sample_that_enters_after_the_flip_goes_whole_to_the_next_period() {
    let cell = CounterCell::new(CounterType::Statistics);
    let s = sampled(&cell);
    cell.sample(1.0);
    let flip = s.begin_flip();
    let slot = s.enter();
    s.record(slot, 9.0);
    let (taken, _) = s.try_finish(&flip).expect("the late sample is not in the old phase");
    assert_eq!((taken.count, taken.sum, taken.max), (1, 1.0, 1.0));
    s.leave(slot);
    let (next, _) = s.flip();
    assert_eq!((next.count, next.sum, next.min, next.max), (1, 9.0, 9.0, 9.0));
    // And the slots alternate cleanly: a third period starts empty.
    cell.sample(2.0);
    assert_eq!(s.flip().0, Stats { count: 1, sum: 2.0, min: 2.0, max: 2.0 });
}

#[test]
fn under_concurrent_samples_every_sample_lands_whole_in_exactly_one_period() {
    const THREADS: u64 = 4;
    const SAMPLES: u64 = 50_000;
    let cell = Arc::new(CounterCell::new(CounterType::Statistics));
    cell.set_percentiles(true);
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let cell = Arc::clone(&cell);
            std::thread::spawn(move || {
                for i in 0..SAMPLES {
                    // Whole numbers: every sum is exact, so totals can be compared exactly.
                    cell.sample(((t * SAMPLES + i) % 1000) as f64);
                }
            })
        })
        .collect();
    let mut total = Stats::default();
    let mut periods = 0u32;
    while writers.iter().any(|w| !w.is_finished()) || periods == 0 {
        let Period::Sampled(SampledPeriod { stats: p, distribution }) = cell.take() else { panic!("a sampled period") };
        if p.count > 0 {
            // The same samples were counted in the buckets as in the statistics.
            assert_eq!(distribution.as_ref().map(Distribution::count), Some(p.count));
            // A whole period: its min and max are among its own samples, and its sum fits between them.
            assert!(p.min <= p.max && p.sum >= p.min * p.count as f64 && p.sum <= p.max * p.count as f64, "{p:?}");
        }
        total.merge(&p);
        periods += 1;
    }
    for writer in writers {
        writer.join().expect("writer");
    }
    let Period::Sampled(rest) = cell.take() else { panic!("a sampled period") };
    total.merge(&rest.stats);
    let expected_sum: u64 = (0..THREADS * SAMPLES).map(|n| n % 1000).sum();
    assert_eq!(total.count, THREADS * SAMPLES);
    assert_eq!(total.sum, expected_sum as f64);
    assert_eq!((total.min, total.max), (0.0, 999.0));
    assert!(periods > 1, "the takes ran while the writers did");
}

#[test]
fn a_plain_counter_cell_with_its_arc_fits_in_64_bytes() {
    assert!(std::mem::size_of::<CounterCell>() + 2 * std::mem::size_of::<usize>() <= 64);
}

#[test]
fn a_timestamp_is_a_level_and_scales_are_exact() {
    let cell = CounterCell::new(CounterType::Timestamp);
    assert!(cell.is_empty_period(&cell.take()));
    let when = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
    cell.set_time(when);
    let period = cell.take();
    assert_eq!(period_counter(&cell, &period).time, Some(when));
    assert_eq!(totals_counter(&cell).time, Some(when));
    for (scale, sample, ms) in [(1e3, 0.25, 250.0), (1e-3, 1500.0, 1.5), (1e-6, 2_500_000.0, 2.5), (1.0, 7.0, 7.0)] {
        let cell = CounterCell::with_scale(CounterType::Interval, scale);
        cell.sample_scaled(sample);
        assert_eq!(live_counter(&cell).last, Some(ms), "scale {scale}");
    }
}

#[test]
fn epoch_micros_round_trips_before_and_after_the_epoch() {
    for t in [UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456), UNIX_EPOCH - Duration::from_micros(5)] {
        assert_eq!(from_epoch_micros(epoch_micros(t)), t);
    }
}

#[test]
fn calls_of_another_type_are_refused_and_counted_not_recorded() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.sample(1.0);
    cell.set_last(1.0);
    assert_eq!(cell.take_rejected(), 2);
    assert!(cell.is_empty_period(&cell.take()));
}

#[test]
fn with_percentiles_a_period_carries_its_buckets_and_a_failed_save_keeps_them() {
    let cell = CounterCell::new(CounterType::Interval);
    cell.set_percentiles(true);
    for v in [1.0, 2.0, 2.0, 0.0] {
        cell.sample(v);
    }
    let first = cell.take();
    let Period::Sampled(p) = &first else { panic!("a sampled period") };
    let buckets: Vec<_> = p.distribution.as_ref().expect("buckets").buckets().map(|b| (b.lower, b.count)).collect();
    assert_eq!(buckets, [(0.0, 1), (1.0, 1), (2.0, 2)]);
    let mut counter = Counter::new("t", CounterType::Interval);
    cell.fill_period(&first, &mut counter);
    assert_eq!(counter.distribution, p.distribution, "the period view carries them");
    cell.undo(&first);
    cell.sample(8.0);
    let Period::Sampled(p) = cell.take() else { panic!("a sampled period") };
    assert_eq!(p.stats.count, 5);
    assert_eq!(p.distribution.map(|d| d.count()), Some(5), "the failed period's buckets joined the next");
}

#[test]
fn a_period_with_percentiles_on_for_only_part_of_it_goes_out_without_buckets() {
    let cell = CounterCell::new(CounterType::Statistics);
    cell.sample(1.0);
    cell.set_percentiles(true);
    cell.sample(2.0);
    let Period::Sampled(p) = cell.take() else { panic!("a sampled period") };
    assert_eq!((p.stats.count, p.distribution), (2, None), "one sample was not counted in a bucket");
    cell.sample(3.0);
    let Period::Sampled(p) = cell.take() else { panic!("a sampled period") };
    assert_eq!(p.distribution.map(|d| d.count()), Some(1), "the next period is whole");
    cell.sample(4.0);
    cell.set_percentiles(false);
    let Period::Sampled(p) = cell.take() else { panic!("a sampled period") };
    assert_eq!((p.stats.count, p.distribution), (1, None), "off: statistics only");
    let plain = CounterCell::new(CounterType::Increment);
    plain.set_percentiles(true);
    assert_eq!(plain.flags.load(Relaxed) & PERCENTILES, 0, "only sampled counters count buckets");
}

#[test]
fn a_retired_cell_hands_a_sample_back_uncounted_and_refuses_and_counts_it_otherwise() {
    let cell = CounterCell::new(CounterType::Interval);
    assert!(cell.sample_unless_retired(2.0));
    assert!(cell.sample_unless_retired(f64::NAN), "refused and counted, not handed back");
    assert_eq!(cell.take_rejected(), 1);
    cell.retire();
    assert!(!cell.sample_unless_retired(3.0), "handed back, for the counter that has the name now");
    assert_eq!(cell.take_rejected(), 0);
    cell.sample(3.0);
    assert_eq!(cell.take_rejected(), 1, "sample() refuses and counts it");
    assert_eq!(period_counter(&cell, &cell.take()).count, Some(1), "only the sample before the retirement");
}

#[test]
fn an_add_that_saw_the_flags_set_before_a_take_and_a_reset_still_shows_in_the_totals() {
    let cell = CounterCell::new(CounterType::Increment);
    cell.add(1);
    let period = cell.take();
    cell.commit(&period);
    // An add loads the flags (DIRTY | USED: set, nothing to do)... a take, its save and a reset run...
    let period = cell.take();
    cell.commit(&period);
    cell.reset_totals();
    // ...and its amount lands without setting the flags again.
    increment(&cell).period.fetch_add(5, Relaxed);
    let period = cell.take();
    assert_eq!(period_counter(&cell, &period).count, Some(5), "published");
    cell.commit(&period);
    assert_eq!(totals_counter(&cell).count, Some(5), "and in the local totals");
}
