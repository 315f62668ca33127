//! Dumps run at each instance's own phase of the interval (wall-clock multiples of the interval plus the phase),
//! picked at random when the counters are made, so that a fleet deployed together spreads its requests.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cloudwatch_counters::{CachedCounters, Counters, CountersOptions};
use common::RecordingSink;

#[test]
fn two_instances_made_together_pick_different_phases_from_a_seeded_source() {
    fastrand::seed(7);
    let a = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    let b = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    fastrand::seed(7);
    let again = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    assert_ne!(a.dump_phase(), b.dump_phase());
    assert_eq!(a.dump_phase(), again.dump_phase(), "the phase comes from the seeded source");
    assert!((0.0..1.0).contains(&a.dump_phase()) && (0.0..1.0).contains(&b.dump_phase()));
    let fixed = CachedCounters::new(RecordingSink::default(), CountersOptions::default().dump_phase(0.25));
    assert_eq!(fixed.dump_phase(), 0.25);
}

/// With tokio's clock paused, the first timer dump happens exactly when the phase says: the next wall-clock
/// multiple of the interval plus the phase.
#[tokio::test(start_paused = true)]
async fn the_first_timer_dump_waits_for_the_instances_phase() {
    let interval = Duration::from_secs(60);
    let sink = RecordingSink::default();
    let counters = CachedCounters::new(sink.clone(), CountersOptions::default().interval(interval).dump_phase(0.75));
    // The interval task reads the wall clock again when it first runs: later by the real time that passes until
    // then, which the test's own wait cannot exceed.
    let real = std::time::Instant::now();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let interval_ns = interval.as_nanos();
    let expected_ns = (interval_ns * 3 / 4 + interval_ns - now % interval_ns) % interval_ns;
    let mut expected = expected_ns as f64 / 1e9;
    if expected < interval.as_secs_f64() / 100.0 {
        expected += interval.as_secs_f64();
    }
    let start = tokio::time::Instant::now();
    counters.open().await.expect("open");
    counters.increment("calls", 1);
    sink.wait_for_saves(1).await;
    let waited = start.elapsed().as_secs_f64();
    let late_read = real.elapsed().as_secs_f64();
    assert!(
        (waited - expected).abs() <= late_read + 0.005,
        "first dump after {waited} s of the interval, expected {expected} s (less up to {late_read} s)"
    );
    counters.close().await.expect("close");
}
