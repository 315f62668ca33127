//! How long the interval task waits: until its phase of the next interval, or after throttling the interval,
//! doubled per consecutive throttled dump up to 8 intervals, with +-10% jitter so that instances throttled
//! together do not retry together.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wait from `now` until the next instant that is a wall-clock multiple of `interval` plus `phase` of it.
/// A wait shorter than a hundredth of the interval (a dump that just ran at its phase) goes to the next one.
pub(crate) fn until_phase(now: SystemTime, interval: Duration, phase: f64) -> Duration {
    let interval_ns = interval.as_nanos().max(1);
    let now_ns = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    let offset_ns = (phase.clamp(0.0, 1.0) * interval_ns as f64) as u128 % interval_ns;
    let into = now_ns % interval_ns;
    let mut wait = (offset_ns + interval_ns - into) % interval_ns;
    if wait < interval_ns / 100 {
        wait += interval_ns;
    }
    Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
}

/// How many times the wait doubles under repeated throttling (up to 2^3 = 8 intervals).
const MAX_BACKOFF_DOUBLINGS: u32 = 3;

/// The wait before the next dump after `throttled` throttled dumps in a row.
pub(crate) fn backoff(interval: Duration, throttled: u32) -> Duration {
    if throttled == 0 {
        return interval;
    }
    let factor = 1u32 << throttled.min(MAX_BACKOFF_DOUBLINGS);
    let base = interval.saturating_mul(factor);
    let jitter = (fastrand::f64() - 0.5) * 0.2;
    base.mul_f64(1.0 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_wait_for_their_phase_of_the_interval() {
        let minute = Duration::from_secs(60);
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        // 12:00:10 with phase 0.5: the next xx:xx:30.
        assert_eq!(until_phase(at(600 + 10), minute, 0.5), Duration::from_secs(20));
        // 12:00:40 with phase 0.5: past this minute's 30 s, so the next minute's.
        assert_eq!(until_phase(at(600 + 40), minute, 0.5), Duration::from_secs(50));
        // Right at the phase (a dump that just ran): a whole interval.
        assert_eq!(until_phase(at(600 + 30), minute, 0.5), minute);
        assert_eq!(until_phase(at(600), minute, 0.0), minute);
        assert!(until_phase(SystemTime::now(), minute, 0.999_999) <= minute + minute / 100);
    }

    #[test]
    fn backoff_doubles_under_throttling_and_is_capped() {
        let i = Duration::from_secs(10);
        assert_eq!(backoff(i, 0), i);
        let one = backoff(i, 1);
        assert!(one >= Duration::from_secs(18) && one <= Duration::from_secs(22), "{one:?}");
        let many = backoff(i, 30);
        assert!(many <= Duration::from_secs(88) && many >= Duration::from_secs(72), "{many:?}");
    }
}
