//! [`CloudWatchSettings`]: everything `CloudWatchCounters` reads from configuration.

use std::time::Duration;

use super::{check_positive, invalid, ConfigParams, CountersOptions};
use crate::error::{ConfigError, Secret};

/// pip's default `options.connect_timeout`: 30 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// What one PutMetricData attempt may take beyond the connect timeout (default `options.request_timeout`): an
/// attempt is bounded by the two together.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// CloudWatch's limit of datums per PutMetricData request, the default batch size.
pub const MAX_BATCH_SIZE: usize = 1000;

/// Everything `CloudWatchCounters` reads from configuration.
///
/// Keys, pip's spelling first and the seed page's second (both work; for each setting the last listed key that is
/// set wins): `connection.region` / `connections.region`; `connection.uri` / `connection.endpoint_url` /
/// `connections.uri` / `connections.endpoint_url` (for local servers); `connection.access_id` / `credential.access_id` /
/// `credential.client_id` / `credentials.access_id`; `connection.access_key` / `credential.access_key` /
/// `credential.client_key` / `credentials.access_key`;
/// `source` (the namespace); `instance` (the InstanceID dimension; set empty for none); `dimensions.<name>`
/// (dimensions of every datum); `options.rollup` (true: each metric also without InstanceID); `options.rollups`
/// (more dimension sets: `service;service,route`); `options.interval`, `options.reset_timeout`,
/// `options.connect_timeout`, `options.request_timeout` (or `options.timeout`), `options.close_timeout` (ms); `options.batch_size` (datums per request, 1..=1000);
/// `options.storage_resolution` (60, or 1 for high resolution); `options.high_resolution` (comma-separated metric
/// name prefixes published at 1-second resolution whatever `options.storage_resolution` says). pip's discovery
/// and credential stores (`connection.discovery_key`, `credential.store_key` and their seed-page spellings) are
/// not supported and refused; named sections (`connections.<name>.region`) are not read.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct CloudWatchSettings {
    /// The AWS region; `None` = from aws-config's default chain.
    pub region: Option<String>,
    /// An endpoint URL to use instead of AWS's (a local CloudWatch); `None` = from the chain (`AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Static credentials: access key id and secret key. `None` = aws-config's default chain.
    pub credentials: Option<(String, Secret)>,
    /// The CloudWatch namespace (pip's `source`).
    pub namespace: Option<String>,
    /// The value of the `InstanceID` dimension (pip's `instance`); `None` = the host name; empty = no InstanceID
    /// dimension at all (one metric for the whole fleet instead of one per instance).
    pub instance: Option<String>,
    /// Dimensions every datum carries after InstanceID, before the counter's own labels (which win over them):
    /// `dimensions.<name>=<value>` keys, or the builder's `dimension`.
    pub dimensions: Vec<(String, String)>,
    /// Also publishes each metric without its InstanceID dimension (`options.rollup`): CloudWatch then has a
    /// fleet-wide metric beside each instance's, whose statistics and percentiles cover every instance.
    pub rollup: bool,
    /// More dimension sets each metric is also published with, as EMF's DimensionSets (`options.rollups`:
    /// `service;service,route`): a set is used for the metrics that have every dimension it names.
    pub rollups: Vec<Vec<String>>,
    /// How long connecting to CloudWatch may take (pip's `options.connect_timeout`). A connection that was never
    /// made sent nothing, so the SDK retries it and the data is kept.
    pub connect_timeout: Duration,
    /// What one PutMetricData attempt may take beyond the connect timeout (`options.request_timeout`): each
    /// attempt is bounded by both timeouts together, however quickly it connected (a server that accepts the
    /// connection and never answers holds an attempt for both). An attempt that times out after sending may
    /// have been stored, so it is neither retried nor sent again (it is counted as ambiguous).
    pub request_timeout: Duration,
    /// Datums per PutMetricData request (1..=1000).
    pub batch_size: usize,
    /// StorageResolution of every datum: 60 (standard) or 1 (high resolution).
    pub storage_resolution: i32,
    /// Metric name prefixes published at StorageResolution 1 whatever `storage_resolution` says (an empty
    /// prefix matches every metric).
    pub high_resolution: Vec<String>,
    /// Interval and reset timeout.
    pub counters: CountersOptions,
}

/// Secrets and any `user:password@` part of the endpoint are hidden.
impl std::fmt::Debug for CloudWatchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchSettings")
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url.as_deref().map(crate::error::redact_userinfo))
            .field("credentials", &self.credentials)
            .field("namespace", &self.namespace)
            .field("instance", &self.instance)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("batch_size", &self.batch_size)
            .field("storage_resolution", &self.storage_resolution)
            .field("high_resolution", &self.high_resolution)
            .field("dimensions", &self.dimensions)
            .field("rollup", &self.rollup)
            .field("rollups", &self.rollups)
            .field("counters", &self.counters)
            .finish()
    }
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
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            batch_size: MAX_BATCH_SIZE,
            storage_resolution: 60,
            high_resolution: Vec::new(),
            dimensions: Vec::new(),
            rollup: false,
            rollups: Vec::new(),
            counters: CountersOptions::default(),
        }
    }
}

const ACCESS_ID_KEYS: &[&str] =
    &["connection.access_id", "credential.access_id", "credential.client_id", "credentials.access_id"];
const ACCESS_KEY_KEYS: &[&str] =
    &["connection.access_key", "credential.access_key", "credential.client_key", "credentials.access_key"];

impl CloudWatchSettings {
    /// Reads the settings from pip-style keys (see the type's docs for the list).
    ///
    /// # Errors
    /// [`ConfigError`] naming the key whose value cannot be used.
    pub fn from_config(config: &ConfigParams) -> Result<CloudWatchSettings, ConfigError> {
        let mut settings = CloudWatchSettings::default();
        settings.apply_config(config)?;
        Ok(settings)
    }

    /// Reads pip-style keys over these settings: keys that are not set keep their value. The one way
    /// configuration is read, by [`from_config`](Self::from_config), `CloudWatchCounters::configure` and the
    /// builder's `config`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key whose value cannot be used; the settings are then unchanged.
    pub fn apply_config(&mut self, config: &ConfigParams) -> Result<(), ConfigError> {
        let mut s = self.clone();
        // Resolved by pip's discovery services and credential stores, which this crate does not have: refused,
        // rather than left to the default AWS chain without a word.
        for key in
            ["connection.discovery_key", "connections.discovery_key", "credential.store_key", "credentials.store_key"]
        {
            if let Some(value) = config.get(key) {
                let expected = "not supported: set connection.region (and endpoint_url) and credential.access_id / \
                                access_key, or leave them to the default AWS chain";
                return Err(invalid(key, expected, value));
            }
        }
        let text = |target: &mut Option<String>, keys: &[&str]| {
            if let Some(value) = config.get_string(keys) {
                *target = Some(value);
            }
        };
        text(&mut s.region, &["connection.region", "connections.region"]);
        text(
            &mut s.endpoint_url,
            &["connection.uri", "connection.endpoint_url", "connections.uri", "connections.endpoint_url"],
        );
        text(&mut s.namespace, &["source"]);
        text(&mut s.instance, &["instance"]);
        if config.get("instance").is_some_and(|v| v.trim().is_empty()) {
            s.instance = Some(String::new()); // set empty: no InstanceID dimension
        }
        for (name, value) in config.get_section("dimensions").iter() {
            super::set_pair(&mut s.dimensions, name, value);
        }
        if let Some(on) = config.get_bool(&["rollup", "options.rollup"])? {
            s.rollup = on;
        }
        if let Some(sets) = config.get_last_of(&["rollups", "options.rollups"]).map(|(_, v)| v) {
            s.rollups = super::rollup_sets(sets);
        }
        s.counters.apply_config(config)?;
        let id = config.get_string(ACCESS_ID_KEYS);
        // The secret is never echoed back in an error, so it is read without get_last_of's value.
        let key = config.get_string(ACCESS_KEY_KEYS);
        match (id, key) {
            (Some(id), Some(key)) => s.credentials = Some((id, Secret::new(key))),
            (None, None) => {}
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
        }
        if let Some(t) = config.get_positive_millis(&["connect_timeout", "options.connect_timeout"])? {
            s.connect_timeout = t;
        }
        if let Some(t) =
            config.get_positive_millis(&["timeout", "options.timeout", "request_timeout", "options.request_timeout"])?
        {
            s.request_timeout = t;
        }
        if let Some(n) = config.get_usize(&["batch_size", "options.batch_size"])? {
            s.batch_size = n;
        }
        if let Some((key, value)) = config.get_last_of(&["storage_resolution", "options.storage_resolution"]) {
            s.storage_resolution = match value.trim() {
                "60" => 60,
                "1" => 1,
                _ => return Err(invalid(key, "60 or 1", value)),
            };
        }
        if let Some(prefixes) = config.get_last_of(&["high_resolution", "options.high_resolution"]).map(|(_, v)| v) {
            s.high_resolution =
                prefixes.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
        }
        s.validate()?;
        *self = s;
        Ok(())
    }

    /// Checks the rules every way of setting these shares: `options.batch_size` 1 to 1000,
    /// `options.storage_resolution` 60 or 1, a non-zero `options.connect_timeout`, and the counters' options.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the setting that breaks a rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(invalid("options.batch_size", "between 1 and 1000", &self.batch_size.to_string()));
        }
        if self.storage_resolution != 60 && self.storage_resolution != 1 {
            return Err(invalid("options.storage_resolution", "60 or 1", &self.storage_resolution.to_string()));
        }
        check_positive(&[
            ("options.connect_timeout", self.connect_timeout),
            ("options.request_timeout", self.request_timeout),
        ])?;
        if let Some(region) = &self.region {
            check_region(region)?;
        }
        self.counters.validate()
    }
}

/// Whether `region` can be an AWS region's name, as the SDK's endpoint rules require (a host label: 1 to 63
/// ASCII letters, digits and hyphens, not beginning or ending with a hyphen). A name that cannot be one would
/// let the counters open and then fail every request.
pub(crate) fn check_region(region: &str) -> Result<(), ConfigError> {
    let label = region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if label && (1..=63).contains(&region.len()) && !region.starts_with('-') && !region.ends_with('-') {
        Ok(())
    } else {
        Err(invalid("connection.region", "an AWS region such as us-east-1 (letters, digits and hyphens)", region))
    }
}

#[cfg(test)]
mod cloudwatch_tests {
    use super::*;

    #[test]
    fn pips_discovery_and_credential_store_keys_are_refused_not_ignored() {
        for key in
            ["connection.discovery_key", "connections.discovery_key", "credential.store_key", "credentials.store_key"]
        {
            let config = ConfigParams::from_tuples([("connection.region", "us-east-1"), (key, "aws")]);
            let err = CloudWatchSettings::from_config(&config).expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_last_listed_endpoint_key_wins() {
        let config = ConfigParams::from_tuples([
            ("connection.endpoint_url", "http://127.0.0.1:1"),
            ("connection.uri", "http://127.0.0.1:2"),
        ]);
        let s = CloudWatchSettings::from_config(&config).unwrap();
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:1"), "endpoint_url is listed after uri");
    }

    #[test]
    fn a_region_that_cannot_be_one_is_refused() {
        for region in ["us-east-1", "cn-north-1", "us-gov-west-1", "eu-isoe-west-1", "local"] {
            assert!(check_region(region).is_ok(), "{region}");
        }
        for region in ["", "us east 1", "-us-east-1", "us-east-1-", "us_east_1", "us-east-1/x", "é", &"a".repeat(64)] {
            let settings = CloudWatchSettings { region: Some(region.to_owned()), ..CloudWatchSettings::default() };
            let err = settings.validate().expect_err(region);
            assert!(err.to_string().contains("connection.region"), "{region}: {err}");
        }
    }

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
        // The seed page's own example puts the keys under `connection.`.
        let seed_example = ConfigParams::from_tuples([
            ("connection.region", "us-east-1"),
            ("connection.access_id", "AKID"),
            ("connection.access_key", "SECRET"),
        ]);
        for config in [pip, seed, seed_example] {
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
            ("options.high_resolution", "api., checkout,"),
        ]);
        let s = CloudWatchSettings::from_config(&c).unwrap();
        assert_eq!(s.high_resolution, ["api.", "checkout"]);
        let fleet = ConfigParams::from_tuples([
            ("instance", ""),
            ("dimensions.service", "checkout"),
            ("dimensions.env", "prod"),
            ("options.rollup", "true"),
            ("options.rollups", "service; service, route"),
        ]);
        let f = CloudWatchSettings::from_config(&fleet).unwrap();
        assert_eq!(f.instance.as_deref(), Some(""), "empty: no InstanceID dimension");
        assert_eq!(
            f.dimensions,
            [("env".to_owned(), "prod".to_owned()), ("service".to_owned(), "checkout".to_owned())]
        );
        assert!(f.rollup);
        assert_eq!(f.rollups, [vec!["service".to_owned()], vec!["service".to_owned(), "route".to_owned()]]);
        for empty in ["", " ", "service;", "; ;service"] {
            let c = ConfigParams::from_tuples([("options.rollups", empty)]);
            let sets = CloudWatchSettings::from_config(&c).unwrap().rollups;
            assert!(sets.iter().all(|set| !set.is_empty()), "{empty:?}: no set of no dimensions, {sets:?}");
        }
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
