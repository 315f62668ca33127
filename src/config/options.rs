//! [`CountersOptions`]: how counters dump, reset and cap, read from pip keys or set with a builder.

use std::time::Duration;

use super::{check_positive, invalid, ConfigParams, POSITIVE_COUNT};
use crate::error::ConfigError;

/// The default bound on `close()` and every `*_blocking` call: one CloudWatch request attempt at the default
/// timeouts (connect 30 s, request 10 s) and 5 s more.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(45);

/// The default `options.idle_timeout`: a counter not updated for an hour leaves the store.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// pip's default dump interval: 5 minutes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// The default cap on live counters: 10 full PutMetricData requests a dump. Each CloudWatch metric is billed, so
/// a label fed from unbounded input (user ids, URLs) is stopped here instead of on the invoice.
pub const DEFAULT_MAX_COUNTERS: usize = 10_000;

/// How a `CachedCounters` dumps and resets.
///
/// ```
/// use std::time::Duration;
/// use cloudwatch_counters::CountersOptions;
/// let options = CountersOptions::default().interval(Duration::from_secs(60)).reset_timeout(Duration::from_secs(60));
/// assert_eq!(options.get_interval(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CountersOptions {
    interval: Duration,
    reset_timeout: Duration,
    max_counters: usize,
    telemetry: bool,
    close_timeout: Duration,
    percentiles: bool,
    idle_timeout: Duration,
    /// Where in each interval dumps run, in millionths of it; `None`: a random place per counters instance.
    dump_phase_ppm: Option<u32>,
}

impl Default for CountersOptions {
    fn default() -> Self {
        CountersOptions {
            interval: DEFAULT_INTERVAL,
            reset_timeout: Duration::ZERO,
            max_counters: DEFAULT_MAX_COUNTERS,
            telemetry: true,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            percentiles: true,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            dump_phase_ppm: None,
        }
    }
}

impl CountersOptions {
    /// Reads pip's keys: `interval` / `options.interval` (ms, default 300000) and
    /// `reset_timeout` / `options.reset_timeout` (ms, default 0 = never reset), and this crate's
    /// `options.max_counters` (default 10000), `options.telemetry` (default true), `options.close_timeout`
    /// (ms, default 45000) and `options.percentiles` (default true). The `options.` form wins.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key whose value cannot be used.
    pub fn from_config(config: &ConfigParams) -> Result<CountersOptions, ConfigError> {
        let mut options = CountersOptions::default();
        options.apply_config(config)?;
        Ok(options)
    }

    /// Reads the keys [`from_config`](Self::from_config) knows over these options: keys that are not set keep
    /// their value.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key whose value cannot be used; the options are then unchanged.
    pub fn apply_config(&mut self, config: &ConfigParams) -> Result<(), ConfigError> {
        let mut next = self.clone();
        if let Some(interval) = config.get_positive_millis(&["interval", "options.interval"])? {
            next.interval = interval;
        }
        if let Some(reset) = config.get_millis(&["reset_timeout", "options.reset_timeout"])? {
            next.reset_timeout = reset;
        }
        if let Some(max) = config.get_positive_usize(&["max_counters", "options.max_counters"])? {
            next.max_counters = max;
        }
        if let Some(on) = config.get_bool(&["telemetry", "options.telemetry"])? {
            next.telemetry = on;
        }
        if let Some(timeout) = config.get_positive_millis(&["close_timeout", "options.close_timeout"])? {
            next.close_timeout = timeout;
        }
        if let Some(idle) = config.get_millis(&["idle_timeout", "options.idle_timeout"])? {
            next.idle_timeout = idle;
        }
        if let Some(on) = config.get_bool(&["percentiles", "options.percentiles"])? {
            next.percentiles = on;
        }
        if let Some((key, value)) = config.get_last_of(&["dump_phase", "options.dump_phase"]) {
            let phase: f64 = value.trim().parse().map_err(|_| invalid(key, "a fraction from 0 to 1", value))?;
            if !(0.0..1.0).contains(&phase) {
                return Err(invalid(key, "a fraction from 0 to 1 (1 excluded)", value));
            }
            next = next.dump_phase(phase);
        }
        *self = next;
        Ok(())
    }

    /// Checks the rules every way of setting options shares: the interval and the close timeout are at least 1 ms,
    /// and at least one counter may live (`max_counters` 0 would drop every key).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting that breaks a rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_positive(&[("options.interval", self.interval), ("options.close_timeout", self.close_timeout)])?;
        if self.max_counters == 0 {
            return Err(invalid("options.max_counters", POSITIVE_COUNT, "0"));
        }
        Ok(())
    }

    /// Sets how often counters are dumped (pip's `options.interval`; at least 1 ms, checked by
    /// [`validate`](Self::validate)).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets how long the local totals accumulate before they are reset (pip's `options.reset_timeout`).
    ///
    /// The local totals are what `get`, `get_all` and the log's running view show; CloudWatch and EMF receive
    /// what happened in each period whatever this says. Zero (the default) never resets them: they count since
    /// the start. A non-zero value resets them right after the first successful dump that starts once that much
    /// time has passed since the start of the dump that last reset them (within a hundredth, for timer jitter);
    /// `reset_timeout` equal to `interval` therefore makes them per-interval.
    pub fn reset_timeout(mut self, reset_timeout: Duration) -> Self {
        self.reset_timeout = reset_timeout;
        self
    }

    /// Whether timings and histograms (Interval and Statistics counters) are published so that CloudWatch
    /// computes percentiles (default on, pip's `options.percentiles` style key): each sample is also counted in
    /// a log-linear bucket, and a period goes out as Values/Counts with exact SampleCount, Minimum, Maximum and
    /// Sum. Off, a period goes out as pip's StatisticValues exactly. Sinks that publish no percentiles (the
    /// log) never count buckets.
    pub fn percentiles(mut self, on: bool) -> Self {
        self.percentiles = on;
        self
    }

    /// How long a counter may go without an update before it leaves the store (`options.idle_timeout`, default
    /// [`DEFAULT_IDLE_TIMEOUT`], zero: never): it is published no more and frees its place under
    /// `options.max_counters`, so that rotating label values and retired routes do not fill the store. Only
    /// Increment, Interval and Statistics counters expire; a gauge or timestamp holds a level (set once, it still
    /// has its value) and stays until removed. A handle kept across the expiry goes on recording into the same
    /// counter, which comes back at its next update (`Telemetry::counters_expired` counts expirations).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a counter may go without an update before it leaves the store (zero: never).
    pub fn get_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Where in each interval the dumps run, as a fraction of it from 0 to 1 (`options.dump_phase`): dumps run at
    /// multiples of the interval on the wall clock plus this much of it. By default each counters instance picks a
    /// random phase when it is made and keeps it, so that a fleet deployed together spreads its PutMetricData
    /// requests over the interval instead of sending them in one burst (CloudWatch's quota is per account and
    /// region). Values outside 0..1 are wrapped into it.
    pub fn dump_phase(mut self, fraction: f64) -> Self {
        let fraction = if fraction.is_finite() { fraction.rem_euclid(1.0) } else { 0.0 };
        self.dump_phase_ppm = Some(((fraction * 1e6) as u32).min(999_999));
        self
    }

    /// The phase set with [`dump_phase`](Self::dump_phase), if any.
    pub fn get_dump_phase(&self) -> Option<f64> {
        self.dump_phase_ppm.map(|ppm| f64::from(ppm) / 1e6)
    }

    /// Whether timings and histograms are published with percentiles.
    pub fn get_percentiles(&self) -> bool {
        self.percentiles
    }

    /// Caps the number of live counters (default [`DEFAULT_MAX_COUNTERS`]; at least 1, checked by
    /// [`validate`](Self::validate)); the crate's own telemetry counters take no place under it. Past the cap,
    /// updates to new keys are dropped, counted (`Telemetry::keys_dropped`) and warned about once a minute;
    /// existing counters go on.
    pub fn max_counters(mut self, max: usize) -> Self {
        self.max_counters = max;
        self
    }

    /// Publishes this crate's own counts (see [`Telemetry`](crate::Telemetry)) as counters named
    /// `cloudwatch_counters.*` (default true).
    pub fn telemetry(mut self, on: bool) -> Self {
        self.telemetry = on;
        self
    }

    /// Bounds `close()`, the flush of dropped counters, and every `*_blocking` call (pip-style key
    /// `options.close_timeout`, ms; default [`DEFAULT_CLOSE_TIMEOUT`]). A dump under way when `close` is called may
    /// finish within it; then it is cut off and `close` returns [`Error::CloseTimeout`](crate::Error::CloseTimeout)
    /// naming what was not confirmed. For CloudWatch, allow one request attempt (connect and request timeouts)
    /// and a few seconds more.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The bound on `close()` and every `*_blocking` call.
    pub fn get_close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// The cap on live counters.
    pub fn get_max_counters(&self) -> usize {
        self.max_counters
    }

    /// Whether self-telemetry is published.
    pub fn get_telemetry(&self) -> bool {
        self.telemetry
    }

    /// The dump interval.
    pub fn get_interval(&self) -> Duration {
        self.interval
    }

    /// The reset timeout (zero = never reset).
    pub fn get_reset_timeout(&self) -> Duration {
        self.reset_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pips() {
        let o = CountersOptions::from_config(&ConfigParams::default()).unwrap();
        assert_eq!(o.get_interval(), Duration::from_secs(300));
        assert_eq!(o.get_reset_timeout(), Duration::ZERO);
    }

    #[test]
    fn options_prefix_wins_over_plain_key() {
        let c = ConfigParams::from_tuples([("interval", "1000"), ("options.interval", "2500"), ("reset_timeout", "7")]);
        let o = CountersOptions::from_config(&c).unwrap();
        assert_eq!(o.get_interval(), Duration::from_millis(2500));
        assert_eq!(o.get_reset_timeout(), Duration::from_millis(7));
    }

    #[test]
    fn a_zero_interval_or_close_timeout_set_in_code_is_refused_by_validate() {
        assert!(CountersOptions::default().validate().is_ok());
        let err = CountersOptions::default().close_timeout(Duration::ZERO).validate().unwrap_err();
        assert!(err.to_string().contains("options.close_timeout"), "{err}");
        let err = CountersOptions::default().interval(Duration::ZERO).validate().unwrap_err();
        assert!(err.to_string().contains("options.interval"), "{err}");
    }

    #[test]
    fn a_sub_millisecond_interval_or_timeout_is_refused_where_it_is_read_as_validate_would() {
        for key in ["options.interval", "options.close_timeout"] {
            let c = ConfigParams::from_tuples([(key, "0.5")]);
            let err = CountersOptions::from_config(&c).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("at least 1"), "{err}");
            let one = CountersOptions::from_config(&ConfigParams::from_tuples([(key, "1")])).unwrap();
            assert!(one.validate().is_ok(), "{key} of 1 ms");
        }
    }

    #[test]
    fn cap_and_telemetry_are_read() {
        let o = CountersOptions::from_config(&ConfigParams::default()).unwrap();
        assert_eq!((o.get_max_counters(), o.get_telemetry()), (DEFAULT_MAX_COUNTERS, true));
        let c = ConfigParams::from_tuples([("options.max_counters", "50"), ("options.telemetry", "false")]);
        let o = CountersOptions::from_config(&c).unwrap();
        assert_eq!((o.get_max_counters(), o.get_telemetry()), (50, false));
        for zero in ["0", " 0", "-1", "many"] {
            let c = ConfigParams::from_tuples([("options.max_counters", zero)]);
            let err = CountersOptions::from_config(&c).unwrap_err().to_string();
            assert!(err.contains("options.max_counters") && err.contains("positive"), "{zero}: {err}");
        }
        let err = CountersOptions::default().max_counters(0).validate().unwrap_err().to_string();
        assert!(err.contains("options.max_counters"), "a cap of 0 set in code is refused too: {err}");
        let bad = ConfigParams::from_tuples([("options.telemetry", "maybe")]);
        assert!(CountersOptions::from_config(&bad).unwrap_err().to_string().contains("options.telemetry"));
        assert!(CountersOptions::default().get_percentiles(), "percentiles are on by default");
        let off = ConfigParams::from_tuples([("options.percentiles", "false")]);
        assert!(!CountersOptions::from_config(&off).unwrap().get_percentiles());
        assert!(!CountersOptions::from_config(&ConfigParams::from_tuples([("percentiles", "false")]))
            .unwrap()
            .get_percentiles());
        let bad = ConfigParams::from_tuples([("options.percentiles", "p99")]);
        assert!(CountersOptions::from_config(&bad).unwrap_err().to_string().contains("options.percentiles"));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (key, value) in [
            ("options.interval", "soon"),
            ("options.interval", "0"),
            ("interval", "0"),
            ("options.reset_timeout", "-5"),
            ("options.close_timeout", "0"),
        ] {
            let err = CountersOptions::from_config(&ConfigParams::from_tuples([(key, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
