//! Property tests: whatever the values, counters hold what a plain computation gives.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudwatch_counters::{CounterType, Counters};
use common::recording_counters as counters;
use fastrand::Rng;

/// Equal to 1e-9 relative to the magnitude of the samples (the mean itself may cancel to near zero).
fn close_to(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(f64::MIN_POSITIVE)
}

/// Runs `property` on 256 cases: 64 from each of four fixed seeds, each case with its own generator, so a run is
/// the same every time and a failing case names the seed that reproduces it.
fn check(property: impl Fn(&mut Rng)) {
    /// Names the failing case's seed when its property panics.
    struct Case(u64);
    impl Drop for Case {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!("failing case: Rng::with_seed({:#018x})", self.0);
            }
        }
    }
    for seed in [0x5eed_0001, 0xc0ff_ee00_d15e_a5e5, 0x0123_4567_89ab_cdef, 42] {
        let mut seeds = Rng::with_seed(seed);
        for _ in 0..64 {
            let case = Case(seeds.u64(..));
            property(&mut Rng::with_seed(case.0));
        }
    }
}

/// A vector with a length in `len`, of values from `value`.
fn vec_of<T>(rng: &mut Rng, len: std::ops::Range<usize>, mut value: impl FnMut(&mut Rng) -> T) -> Vec<T> {
    let n = rng.usize(len);
    (0..n).map(|_| value(rng)).collect()
}

/// A float uniform in `[low, high)`.
fn f64_in(rng: &mut Rng, low: f64, high: f64) -> f64 {
    low + rng.f64() * (high - low)
}

#[test]
fn sampled_counters_match_a_plain_computation() {
    check(|rng| {
        let values = vec_of(rng, 1..200, |rng| f64_in(rng, -1e12, 1e12));
        let c = counters();
        for &v in &values {
            c.stats("s", v);
            c.end_timing("t", v);
        }
        let n = values.len() as i64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // pip's running average, computed the way pip does it.
        let mut avg: Option<f64> = None;
        for (i, &v) in values.iter().enumerate() {
            avg = Some(match avg {
                None => v,
                Some(a) => (a * i as f64 + v) / (i + 1) as f64,
            });
        }
        for (name, kind) in [("s", CounterType::Statistics), ("t", CounterType::Interval)] {
            let got = c.get(name, kind);
            assert_eq!(got.count, Some(n));
            assert_eq!(got.min, Some(min));
            assert_eq!(got.max, Some(max));
            assert_eq!(got.last, values.last().copied());
            let mean = values.iter().sum::<f64>() / n as f64;
            let got_avg = got.average.unwrap();
            let scale = values.iter().fold(0f64, |m, v| m.max(v.abs()));
            assert!(close_to(got_avg, mean, scale), "average {got_avg} vs plain mean {mean}");
            assert!(
                close_to(got_avg, avg.unwrap(), scale),
                "average {} vs pip's running average {}",
                got_avg,
                avg.unwrap()
            );
        }
    });
}

#[test]
fn increments_sum_exactly() {
    check(|rng| {
        let values = vec_of(rng, 1..300, |rng| rng.i64(-1_000_000_000..1_000_000_000));
        let c = counters();
        for &v in &values {
            c.increment("i", v);
        }
        assert_eq!(c.get("i", CounterType::Increment).count, Some(values.iter().sum::<i64>()));
    });
}

#[test]
fn last_value_and_timestamp_keep_the_last() {
    check(|rng| {
        // Within CloudWatch's range (2^360): values beyond it are refused when recorded.
        let values = vec_of(rng, 1..50, |rng| f64_in(rng, -2e108, 2e108));
        let times = vec_of(rng, 1..50, |rng| rng.u64(0..4_000_000_000_000));
        let c = counters();
        for &v in &values {
            c.last("l", v);
        }
        for &t in &times {
            c.timestamp("ts", UNIX_EPOCH + Duration::from_micros(t));
        }
        assert_eq!(c.get("l", CounterType::LastValue).last, values.last().copied());
        let expected: Option<SystemTime> = times.last().map(|&t| UNIX_EPOCH + Duration::from_micros(t));
        assert_eq!(c.get("ts", CounterType::Timestamp).time, expected);
    });
}

#[test]
fn increment_one_adds_one_and_other_fields_stay_unset() {
    let c = counters();
    c.increment_one("calls");
    c.increment_one("calls");
    let got = c.get("calls", CounterType::Increment);
    assert_eq!(got.count, Some(2));
    assert_eq!((got.last, got.min, got.max, got.average, got.time), (None, None, None, None, None));
}
