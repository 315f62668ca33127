//! Configuration: pip-style dotted keys ([`ConfigParams`]) and the typed [`CountersOptions`] they are read into.
//!
//! This is the only module that parses configuration.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{redact_userinfo, ConfigError};

/// Dotted configuration keys and string values, as pip-services' `ConfigParams`.
///
/// ```
/// use cloudwatch_counters::ConfigParams;
/// let config = ConfigParams::from_tuples([("options.interval", "5000"), ("options.reset_timeout", "0")]);
/// assert_eq!(config.get("options.interval"), Some("5000"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfigParams {
    values: BTreeMap<String, String>,
}

/// Keys whose values are secrets: `Debug` shows `***` for them.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["access_key", "client_key", "secret", "password", "token"].iter().any(|s| key.contains(s))
}

impl std::fmt::Debug for ConfigParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A URL's user and password (`https://user:password@host`) show as `***` too.
        let shown = self.values.iter().map(|(k, v)| {
            let v: Cow<'_, str> = match v {
                _ if is_secret_key(k) => "***".into(),
                url if url.contains("://") => redact_userinfo(url).into(),
                plain => plain.as_str().into(),
            };
            (k, v)
        });
        f.debug_map().entries(shown).finish()
    }
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
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value is not a number of milliseconds from 0 to 10^15.
    pub fn get_millis(&self, keys: &[&str]) -> Result<Option<Duration>, ConfigError> {
        let Some((key, value)) = self.get_last_of(keys) else {
            return Ok(None);
        };
        let ms: f64 = value.trim().parse().map_err(|_| invalid(key, "a number of milliseconds", value))?;
        if !(0.0..=1e15).contains(&ms) {
            return Err(invalid(key, "a number of milliseconds between 0 and 10^15", value));
        }
        Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
    }

    /// [`get_millis`](Self::get_millis) for a duration of at least 1 ms.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value is not a number of milliseconds from 1 to 10^15.
    pub fn get_positive_millis(&self, keys: &[&str]) -> Result<Option<Duration>, ConfigError> {
        match self.get_millis(keys)? {
            Some(d) if d < Duration::from_millis(1) => {
                let (key, value) = self.get_last_of(keys).unwrap_or_default();
                Err(invalid(key, POSITIVE_MILLIS, value))
            }
            other => Ok(other),
        }
    }

    /// [`get_usize`](Self::get_usize) for a count that must not be zero.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value is not a positive integer.
    pub fn get_positive_usize(&self, keys: &[&str]) -> Result<Option<usize>, ConfigError> {
        match self.get_usize(keys) {
            Ok(Some(0)) | Err(_) => {
                let (key, value) = self.get_last_of(keys).unwrap_or_default();
                Err(invalid(key, POSITIVE_COUNT, value))
            }
            other => other,
        }
    }

    /// An unsigned integer from the last of `keys` that is set.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value is not a non-negative integer.
    pub fn get_usize(&self, keys: &[&str]) -> Result<Option<usize>, ConfigError> {
        let Some((key, value)) = self.get_last_of(keys) else {
            return Ok(None);
        };
        value.trim().parse().map(Some).map_err(|_| invalid(key, "a non-negative integer", value))
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, any case) from the last of `keys` that is set.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the value is not a boolean.
    pub fn get_bool(&self, keys: &[&str]) -> Result<Option<bool>, ConfigError> {
        let Some((key, value)) = self.get_last_of(keys) else {
            return Ok(None);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(invalid(key, "true or false", value)),
        }
    }

    /// The keys under `section.` with that prefix removed, as pip's `getSection` (`dimensions.service` is
    /// `service` in the section `dimensions`).
    pub fn get_section(&self, section: &str) -> ConfigParams {
        let prefix = format!("{section}.");
        ConfigParams {
            values: self
                .values
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|rest| (rest.to_owned(), v.clone())))
                .collect(),
        }
    }

    /// Every key and value, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// A non-empty string from the last of `keys` set to one: an empty value (as a template leaves a key it has
    /// nothing for) does not hide an earlier key's.
    pub fn get_string(&self, keys: &[&str]) -> Option<String> {
        keys.iter().rev().filter_map(|key| self.get(key)).map(str::trim).find(|v| !v.is_empty()).map(str::to_owned)
    }
}

/// The dimension sets of an `options.rollups` value (`a,b;c`). An empty set (an empty value, a trailing `;`) is
/// left out: it would publish every metric once more with no dimensions at all (`rollup_dimensions([])` on a
/// builder asks for that explicitly).
pub(crate) fn rollup_sets(value: &str) -> Vec<Vec<String>> {
    value
        .split(';')
        .map(|set| set.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect())
        .filter(|set: &Vec<String>| !set.is_empty())
        .collect()
}

/// Sets `name` to `value` in `pairs` (dimensions, properties): written over the value's string where the name is
/// there (no allocation while it is long enough), else added last.
pub(crate) fn set_pair(pairs: &mut Vec<(String, String)>, name: &str, value: &str) {
    match pairs.iter_mut().find(|(n, _)| n == name) {
        Some((_, kept)) => {
            kept.clear();
            kept.push_str(value);
        }
        None => pairs.push((name.to_owned(), value.to_owned())),
    }
}

/// What a duration setting that must not be zero expects.
const POSITIVE_MILLIS: &str = "a number of milliseconds of at least 1";
/// What a count setting that must not be zero expects.
const POSITIVE_COUNT: &str = "a positive integer";

/// Checks that each of these duration settings is at least 1 ms.
pub(crate) fn check_positive(settings: &[(&str, Duration)]) -> Result<(), ConfigError> {
    match settings.iter().find(|(_, d)| *d < Duration::from_millis(1)) {
        Some((key, d)) => Err(invalid(key, POSITIVE_MILLIS, &format!("{d:?}"))),
        None => Ok(()),
    }
}

pub(crate) fn invalid(key: &str, expected: &'static str, value: &str) -> ConfigError {
    ConfigError::Invalid { key: key.to_owned(), expected, value: value.to_owned() }
}

#[cfg(feature = "cloudwatch")]
mod cloudwatch;
mod options;

#[cfg(feature = "cloudwatch")]
pub(crate) use cloudwatch::check_region;
#[cfg(feature = "cloudwatch")]
pub use cloudwatch::{CloudWatchSettings, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, MAX_BATCH_SIZE};
pub use options::{
    CountersOptions, DEFAULT_CLOSE_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_INTERVAL, DEFAULT_MAX_COUNTERS,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_value_does_not_hide_an_earlier_keys() {
        let c = ConfigParams::from_tuples([("connection.region", "us-east-1"), ("connections.region", " ")]);
        assert_eq!(c.get_string(&["connection.region", "connections.region"]).as_deref(), Some("us-east-1"));
        let later =
            ConfigParams::from_tuples([("connection.region", "us-east-1"), ("connections.region", "eu-west-1")]);
        assert_eq!(later.get_string(&["connection.region", "connections.region"]).as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn debug_output_shows_no_secret_and_no_password_in_a_url() {
        let c = ConfigParams::from_tuples([
            ("credential.access_key", "SECRET-1"),
            ("connection.uri", "https://user:SECRET-2@monitoring.example.com/path?x=1"),
            ("connection.endpoint", "http://127.0.0.1:4566"),
        ]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("https://***@monitoring.example.com/path?x=1"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:4566"), "{shown}");
    }
}
