//! How long the interval task waits after throttling: the interval, doubled per consecutive throttled dump up
//! to 8 intervals, with +-10% jitter so that instances throttled together do not retry together.

use std::time::Duration;

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
    fn backoff_doubles_under_throttling_and_is_capped() {
        let i = Duration::from_secs(10);
        assert_eq!(backoff(i, 0), i);
        let one = backoff(i, 1);
        assert!(one >= Duration::from_secs(18) && one <= Duration::from_secs(22), "{one:?}");
        let many = backoff(i, 30);
        assert!(many <= Duration::from_secs(88) && many >= Duration::from_secs(72), "{many:?}");
    }
}
