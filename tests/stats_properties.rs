//! Property tests: whatever the values, counters hold what a plain computation gives.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudwatch_counters::{CounterType, Counters};
use common::recording_counters as counters;
use proptest::prelude::*;

/// Equal to 1e-9 relative to the magnitude of the samples (the mean itself may cancel to near zero).
fn close_to(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(f64::MIN_POSITIVE)
}

proptest! {
    #[test]
    fn sampled_counters_match_a_plain_computation(values in prop::collection::vec(-1e12f64..1e12, 1..200)) {
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
            avg = Some(match avg { None => v, Some(a) => (a * i as f64 + v) / (i + 1) as f64 });
        }
        for (name, kind) in [("s", CounterType::Statistics), ("t", CounterType::Interval)] {
            let got = c.get(name, kind);
            prop_assert_eq!(got.count, Some(n));
            prop_assert_eq!(got.min, Some(min));
            prop_assert_eq!(got.max, Some(max));
            prop_assert_eq!(got.last, values.last().copied());
            let mean = values.iter().sum::<f64>() / n as f64;
            let got_avg = got.average.unwrap();
            let scale = values.iter().fold(0f64, |m, v| m.max(v.abs()));
            prop_assert!(close_to(got_avg, mean, scale), "average {} vs plain mean {}", got_avg, mean);
            prop_assert!(close_to(got_avg, avg.unwrap(), scale),
                "average {} vs pip's running average {}", got_avg, avg.unwrap());
        }
    }

    #[test]
    fn increments_sum_exactly(values in prop::collection::vec(-1_000_000_000i64..1_000_000_000, 1..300)) {
        let c = counters();
        for &v in &values {
            c.increment("i", v);
        }
        prop_assert_eq!(c.get("i", CounterType::Increment).count, Some(values.iter().sum::<i64>()));
    }

    #[test]
    fn last_value_and_timestamp_keep_the_last(values in prop::collection::vec(-1e300f64..1e300, 1..50),
                                              times in prop::collection::vec(0u64..4_000_000_000_000, 1..50)) {
        let c = counters();
        for &v in &values {
            c.last("l", v);
        }
        for &t in &times {
            c.timestamp("ts", UNIX_EPOCH + Duration::from_micros(t));
        }
        prop_assert_eq!(c.get("l", CounterType::LastValue).last, values.last().copied());
        let expected: Option<SystemTime> = times.last().map(|&t| UNIX_EPOCH + Duration::from_micros(t));
        prop_assert_eq!(c.get("ts", CounterType::Timestamp).time, expected);
    }
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
