//! Configuration: pip-style dotted keys ([`ConfigParams`]) and the typed [`CountersOptions`] they are read into.
//!
//! This is the only module that parses configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ConfigError;

/// Dotted configuration keys and string values, as pip-services' `ConfigParams`.
///
/// ```
/// use cloudwatch_counters::ConfigParams;
/// let config = ConfigParams::from_tuples([("options.interval", "5000"), ("options.reset_timeout", "0")]);
/// assert_eq!(config.get("options.interval"), Some("5000"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigParams {
    values: BTreeMap<String, String>,
}

impl ConfigParams {
    /// Builds parameters from `(key, value)` pairs; a later pair with the same key wins.
    pub fn from_tuples<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> ConfigParams {
        ConfigParams { values: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Sets one key.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// The value of the last of `keys` that is set (pip reads `interval`, then `options.interval`: the later wins),
    /// with the key it came from.
    pub fn get_last_of<'a>(&self, keys: &[&'a str]) -> Option<(&'a str, &str)> {
        keys.iter().rev().find_map(|k| self.get(k).map(|v| (*k, v)))
    }

    /// A duration in milliseconds from the last of `keys` that is set; `Ok(None)` if none is.
    pub fn get_millis(&self, keys: &[&str]) -> Result<Option<Duration>, ConfigError> {
        let Some((key, value)) = self.get_last_of(keys) else { return Ok(None) };
        let ms: f64 = value.trim().parse().map_err(|_| invalid(key, "a number of milliseconds", value))?;
        if !(0.0..=1e15).contains(&ms) {
            return Err(invalid(key, "a number of milliseconds between 0 and 10^15", value));
        }
        Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
    }

    /// An unsigned integer from the last of `keys` that is set.
    pub fn get_usize(&self, keys: &[&str]) -> Result<Option<usize>, ConfigError> {
        let Some((key, value)) = self.get_last_of(keys) else { return Ok(None) };
        value.trim().parse().map(Some).map_err(|_| invalid(key, "a non-negative integer", value))
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, any case) from the last of `keys` that is set.
    pub fn get_bool(&self, keys: &[&str]) -> Result<Option<bool>, ConfigError> {
        let Some((key, value)) = self.get_last_of(keys) else { return Ok(None) };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(invalid(key, "true or false", value)),
        }
    }

    /// A non-empty string from the last of `keys` that is set.
    pub fn get_string(&self, keys: &[&str]) -> Option<String> {
        self.get_last_of(keys).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty())
    }
}

pub(crate) fn invalid(key: &str, expected: &'static str, value: &str) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), expected, value: value.to_owned() }
}

/// pip's default dump interval: 5 minutes.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(300_000);

/// How a `CachedCounters` dumps and resets.
///
/// ```
/// use std::time::Duration;
/// use cloudwatch_counters::CountersOptions;
/// let options = CountersOptions::default().interval(Duration::from_secs(60)).reset_timeout(Duration::from_secs(60));
/// assert_eq!(options.get_interval(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountersOptions {
    interval: Duration,
    reset_timeout: Duration,
}

impl Default for CountersOptions {
    fn default() -> Self {
        CountersOptions { interval: DEFAULT_INTERVAL, reset_timeout: Duration::ZERO }
    }
}

impl CountersOptions {
    /// Reads pip's keys: `interval` / `options.interval` (ms, default 300000) and
    /// `reset_timeout` / `options.reset_timeout` (ms, default 0 = never reset). The `options.` form wins.
    pub fn from_config(config: &ConfigParams) -> Result<CountersOptions, ConfigError> {
        let mut options = CountersOptions::default();
        if let Some(interval) = config.get_millis(&["interval", "options.interval"])? {
            if interval.is_zero() {
                let (key, value) = config.get_last_of(&["interval", "options.interval"]).unwrap_or_default();
                return Err(invalid(key, "a positive number of milliseconds", value));
            }
            options.interval = interval;
        }
        if let Some(reset) = config.get_millis(&["reset_timeout", "options.reset_timeout"])? {
            options.reset_timeout = reset;
        }
        Ok(options)
    }

    /// Sets how often counters are dumped (pip's `options.interval`). A zero interval is raised to 1 ms.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// Sets how long counters accumulate before they are reset (pip's `options.reset_timeout`).
    ///
    /// Zero (the default) never resets: every dump sends the totals since the start. A non-zero value resets the
    /// counters right after the first successful dump once that much time has passed since the last reset;
    /// `reset_timeout` equal to `interval` therefore publishes per-interval deltas.
    pub fn reset_timeout(mut self, reset_timeout: Duration) -> Self {
        self.reset_timeout = reset_timeout;
        self
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
        assert_eq!(o.get_interval(), Duration::from_millis(300_000));
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
    fn bad_values_name_the_key() {
        for (key, value) in [("options.interval", "soon"), ("options.interval", "0"), ("options.reset_timeout", "-5")] {
            let err = CountersOptions::from_config(&ConfigParams::from_tuples([(key, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
