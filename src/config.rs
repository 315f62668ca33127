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
        let shown = self.values.iter().map(|(k, v)| (k, if is_secret_key(k) { "***" } else { v.as_str() }));
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

    /// An unsigned integer from the last of `keys` that is set.
    pub fn get_usize(&self, keys: &[&str]) -> Result<Option<usize>, ConfigError> {
        let Some((key, value)) = self.get_last_of(keys) else {
            return Ok(None);
        };
        value.trim().parse().map(Some).map_err(|_| invalid(key, "a non-negative integer", value))
    }

    /// A boolean (`true`/`false`, `1`/`0`, `yes`/`no`, any case) from the last of `keys` that is set.
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
pub struct CountersOptions {
    interval: Duration,
    reset_timeout: Duration,
    max_counters: usize,
    telemetry: bool,
}

impl Default for CountersOptions {
    fn default() -> Self {
        CountersOptions {
            interval: DEFAULT_INTERVAL,
            reset_timeout: Duration::ZERO,
            max_counters: DEFAULT_MAX_COUNTERS,
            telemetry: true,
        }
    }
}

impl CountersOptions {
    /// Reads pip's keys: `interval` / `options.interval` (ms, default 300000) and
    /// `reset_timeout` / `options.reset_timeout` (ms, default 0 = never reset), and this crate's
    /// `options.max_counters` (default 10000) and `options.telemetry` (default true). The `options.` form wins.
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
        if let Some(max) = config.get_usize(&["max_counters", "options.max_counters"])? {
            options.max_counters = max;
        }
        if let Some(on) = config.get_bool(&["telemetry", "options.telemetry"])? {
            options.telemetry = on;
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

    /// Caps the number of live counters (default [`DEFAULT_MAX_COUNTERS`]). Past the cap, updates to new keys
    /// are dropped, counted (`Telemetry::keys_dropped`) and warned about once a minute; existing counters go on.
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
    fn cap_and_telemetry_are_read() {
        let o = CountersOptions::from_config(&ConfigParams::default()).unwrap();
        assert_eq!((o.get_max_counters(), o.get_telemetry()), (DEFAULT_MAX_COUNTERS, true));
        let c = ConfigParams::from_tuples([("options.max_counters", "50"), ("options.telemetry", "false")]);
        let o = CountersOptions::from_config(&c).unwrap();
        assert_eq!((o.get_max_counters(), o.get_telemetry()), (50, false));
        let bad = ConfigParams::from_tuples([("options.telemetry", "maybe")]);
        assert!(CountersOptions::from_config(&bad).unwrap_err().to_string().contains("options.telemetry"));
    }

    #[test]
    fn bad_values_name_the_key() {
        for (key, value) in [("options.interval", "soon"), ("options.interval", "0"), ("options.reset_timeout", "-5")] {
            let err = CountersOptions::from_config(&ConfigParams::from_tuples([(key, value)])).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}

/// pip's default `options.connect_timeout`: 30 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// CloudWatch's limit of datums per PutMetricData request, the default batch size.
pub const MAX_BATCH_SIZE: usize = 1000;

/// Everything `CloudWatchCounters` reads from configuration.
///
/// Keys, pip's spelling first and the seed page's second (both work; for each setting the last listed key that is
/// set wins): `connection.region` / `connections.region`; `connection.endpoint_url` / `connection.uri` /
/// `connections.endpoint_url` (for local servers); `credential.access_id` / `credential.client_id` /
/// `credentials.access_id`; `credential.access_key` / `credential.client_key` / `credentials.access_key`;
/// `source` (the namespace); `instance` (the InstanceID dimension); `options.interval`, `options.reset_timeout`,
/// `options.connect_timeout` (ms); `options.batch_size` (datums per request, 1..=1000);
/// `options.storage_resolution` (60, or 1 for high resolution).
#[derive(Debug, Clone, PartialEq)]
pub struct CloudWatchSettings {
    /// The AWS region; `None` = from aws-config's default chain.
    pub region: Option<String>,
    /// An endpoint URL to use instead of AWS's (a local CloudWatch); `None` = from the chain (`AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Static credentials: access key id and secret key. `None` = aws-config's default chain.
    pub credentials: Option<(String, crate::error::Secret)>,
    /// The CloudWatch namespace (pip's `source`).
    pub namespace: Option<String>,
    /// The value of the `InstanceID` dimension (pip's `instance`); `None` = the host name.
    pub instance: Option<String>,
    /// Connect and per-attempt timeout for CloudWatch requests.
    pub connect_timeout: Duration,
    /// Datums per PutMetricData request (1..=1000).
    pub batch_size: usize,
    /// StorageResolution of every datum: 60 (standard) or 1 (high resolution).
    pub storage_resolution: i32,
    /// Interval and reset timeout.
    pub counters: CountersOptions,
}

impl Default for CloudWatchSettings {
    fn default() -> Self {
        CloudWatchSettings {
            region: None,
            endpoint_url: None,
            credentials: None,
            namespace: None,
            instance: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            batch_size: MAX_BATCH_SIZE,
            storage_resolution: 60,
            counters: CountersOptions::default(),
        }
    }
}

const ACCESS_ID_KEYS: &[&str] = &["credential.access_id", "credential.client_id", "credentials.access_id"];
const ACCESS_KEY_KEYS: &[&str] = &["credential.access_key", "credential.client_key", "credentials.access_key"];

impl CloudWatchSettings {
    /// Reads the settings from pip-style keys (see the type's docs for the list).
    pub fn from_config(config: &ConfigParams) -> Result<CloudWatchSettings, ConfigError> {
        let mut s = CloudWatchSettings {
            region: config.get_string(&["connection.region", "connections.region"]),
            endpoint_url: config.get_string(&[
                "connection.uri",
                "connection.endpoint_url",
                "connections.uri",
                "connections.endpoint_url",
            ]),
            namespace: config.get_string(&["source"]),
            instance: config.get_string(&["instance"]),
            counters: CountersOptions::from_config(config)?,
            ..CloudWatchSettings::default()
        };
        let id = config.get_string(ACCESS_ID_KEYS);
        // The secret is never echoed back in an error, so it is read without get_last_of's value.
        let key = config.get_string(ACCESS_KEY_KEYS);
        s.credentials = match (id, key) {
            (Some(id), Some(key)) => Some((id, crate::error::Secret::new(key))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    key: "credential.access_key",
                    why: "an access id is configured without its access key",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    key: "credential.access_id",
                    why: "an access key is configured without its access id",
                })
            }
        };
        if let Some(t) = config.get_millis(&["connect_timeout", "options.connect_timeout"])? {
            s.connect_timeout = t;
        }
        if let Some(n) = config.get_usize(&["batch_size", "options.batch_size"])? {
            if !(1..=MAX_BATCH_SIZE).contains(&n) {
                return Err(invalid("options.batch_size", "between 1 and 1000", &n.to_string()));
            }
            s.batch_size = n;
        }
        if let Some((key, value)) = config.get_last_of(&["storage_resolution", "options.storage_resolution"]) {
            s.storage_resolution = match value.trim() {
                "60" => 60,
                "1" => 1,
                _ => return Err(invalid(key, "60 or 1", value)),
            };
        }
        Ok(s)
    }
}

#[cfg(test)]
mod cloudwatch_tests {
    use super::*;

    #[test]
    fn pip_keys_and_seed_page_keys_both_work() {
        let pip = ConfigParams::from_tuples([
            ("connection.region", "us-east-1"),
            ("credential.access_id", "AKID"),
            ("credential.access_key", "SECRET"),
        ]);
        let seed = ConfigParams::from_tuples([
            ("connections.region", "us-east-1"),
            ("credentials.access_id", "AKID"),
            ("credentials.access_key", "SECRET"),
        ]);
        for config in [pip, seed] {
            let s = CloudWatchSettings::from_config(&config).unwrap();
            assert_eq!(s.region.as_deref(), Some("us-east-1"));
            let (id, key) = s.credentials.unwrap();
            assert_eq!((id.as_str(), key.expose()), ("AKID", "SECRET"));
        }
    }

    #[test]
    fn a_missing_half_of_the_credentials_names_the_key() {
        let only_id = ConfigParams::from_tuples([("credential.access_id", "AKID")]);
        let err = CloudWatchSettings::from_config(&only_id).unwrap_err();
        assert!(err.to_string().contains("credential.access_key"), "{err}");
        let only_key = ConfigParams::from_tuples([("credentials.access_key", "SECRET")]);
        let err = CloudWatchSettings::from_config(&only_key).unwrap_err();
        assert!(err.to_string().contains("credential.access_id"), "{err}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }

    #[test]
    fn source_instance_and_options_are_strings_and_millis() {
        let c = ConfigParams::from_tuples([
            ("source", "my-svc"),
            ("instance", "i-abc"),
            ("options.connect_timeout", "1500"),
            ("options.batch_size", "20"),
            ("options.storage_resolution", "1"),
        ]);
        let s = CloudWatchSettings::from_config(&c).unwrap();
        assert_eq!(s.namespace.as_deref(), Some("my-svc"), "pip read these as integers and lost them");
        assert_eq!(s.instance.as_deref(), Some("i-abc"));
        assert_eq!(s.connect_timeout, Duration::from_millis(1500));
        assert_eq!((s.batch_size, s.storage_resolution), (20, 1));
        for (k, v) in [("options.batch_size", "1001"), ("options.batch_size", "0"), ("options.storage_resolution", "5")]
        {
            assert!(CloudWatchSettings::from_config(&ConfigParams::from_tuples([(k, v)])).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let c = ConfigParams::from_tuples([("credential.access_id", "AKID"), ("credential.access_key", "TOPSECRET")]);
        let s = CloudWatchSettings::from_config(&c).unwrap();
        assert!(!format!("{s:?}").contains("TOPSECRET"));
        assert!(!format!("{c:?}").contains("TOPSECRET"));
        assert!(format!("{c:?}").contains("AKID"), "only secrets are hidden");
    }
}
