//! [`CloudWatchCounters`]: pip's CloudWatchCounters — counters published to CloudWatch Metrics — and its
//! typed builder.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::Client;

use super::cached::{forward_counters_api, CachedCounters};
use crate::config::{CloudWatchSettings, ConfigParams, CountersOptions};
use crate::error::{ConfigError, Error, Secret};
use crate::exporter::DumpReport;
use crate::publishing;
use crate::sink::cloudwatch::connect::{connect, ClientSource};
use crate::sink::cloudwatch::{CloudWatchSink, Connection};

/// Counters published to AWS CloudWatch Metrics with PutMetricData (pip's `CloudWatchCounters`).
///
/// Configure with pip's keys ([`configure`](Self::configure)) or the typed [`builder`](Self::builder), then
/// [`open`](Self::open): it checks the settings, builds the client and starts the interval dumps.
/// [`close`](Self::close) flushes and disconnects. The counters API (pip's [`Counters`](crate::Counters) calls,
/// handles, the layer and the recorder) is on this type; the rest of [`CachedCounters`]' reads are behind
/// [`counters`](Self::counters).
///
/// ```no_run
/// use cloudwatch_counters::{CloudWatchCounters, ConfigParams, Counters};
/// # async fn run() -> Result<(), cloudwatch_counters::Error> {
/// let counters = CloudWatchCounters::new();
/// counters.configure(&ConfigParams::from_tuples([
///     ("connection.region", "us-east-1"),
///     ("source", "MyService"),
///     ("options.interval", "60000"),
/// ]))?;
/// counters.open().await?;
/// counters.increment("mycomponent.mymethod.calls", 1);
/// counters.close().await?;
/// # Ok(()) }
/// ```
pub struct CloudWatchCounters {
    counters: CachedCounters,
    sink: Arc<CloudWatchSink>,
    setup: Mutex<(CloudWatchSettings, ClientSource)>,
}

impl Default for CloudWatchCounters {
    fn default() -> Self {
        CloudWatchCounters::with_settings(CloudWatchSettings::default(), ClientSource::Settings)
    }
}

/// Most label names a counter keeps: all the dimensions a datum takes but InstanceID, unless it is not published
/// (`instance` set empty).
fn label_room(settings: &CloudWatchSettings) -> usize {
    if settings.instance.as_deref() == Some("") {
        crate::MAX_DIMENSIONS
    } else {
        crate::MAX_LABELS
    }
}

impl CloudWatchCounters {
    /// Counters with pip's defaults (5 minute interval, no reset), not yet configured or open.
    pub fn new() -> CloudWatchCounters {
        CloudWatchCounters::default()
    }

    /// A typed builder.
    pub fn builder() -> CloudWatchCountersBuilder {
        CloudWatchCountersBuilder::default()
    }

    fn with_settings(settings: CloudWatchSettings, source: ClientSource) -> CloudWatchCounters {
        let sink = Arc::new(CloudWatchSink::default());
        let counters = CachedCounters::new(Arc::clone(&sink), settings.counters.clone());
        counters.set_max_labels(label_room(&settings));
        CloudWatchCounters { counters, sink, setup: Mutex::new((settings, source)) }
    }

    /// Reads pip-style configuration (see [`CloudWatchSettings`] for the keys) over the current settings: keys
    /// that are not set keep their value. Takes effect at the next `open`; the interval and reset timeout take
    /// effect at once.
    ///
    /// # Errors
    /// [`ConfigError`] naming the key whose value cannot be used; the settings are then unchanged.
    pub fn configure(&self, config: &ConfigParams) -> Result<(), ConfigError> {
        let mut setup = self.lock_setup();
        let mut settings = setup.0.clone();
        // Over the options in effect: set through `counters()` too (its interval, its options).
        settings.counters = self.counters.options();
        settings.apply_config(config)?;
        self.counters.set_options(&settings.counters).map_err(|err| match err {
            Error::Config(err) => err,
            other => unreachable!("set_options fails only on configuration: {other}"),
        })?;
        self.counters.set_max_labels(label_room(&settings));
        setup.0 = settings;
        Ok(())
    }

    fn lock_setup(&self) -> MutexGuard<'_, (CloudWatchSettings, ClientSource)> {
        self.setup.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current settings.
    pub fn settings(&self) -> CloudWatchSettings {
        let mut settings = self.lock_setup().0.clone();
        settings.counters = self.counters.options();
        settings
    }

    /// Checks the settings, builds the CloudWatch client and starts the interval dumps. Idempotent.
    ///
    /// # Errors
    /// Fails — and stays closed, so it can be called again — with [`Error::Config`] when the namespace
    /// (`source`) is missing or invalid, [`Error::NoRegion`], [`Error::NoCredentials`] or
    /// [`Error::CredentialsTimeout`] when the AWS chain has no region or credentials, and
    /// [`Error::InsecureEndpoint`] / [`Error::InvalidEndpoint`] for an endpoint that cannot be used.
    pub async fn open(&self) -> Result<(), Error> {
        if self.is_open() {
            return Ok(());
        }
        let (settings, source) = self.lock_setup().clone();
        // Marked as publishing, as the dumps are: the SDK's own spans and events while it sets up are not timed.
        let connection = publishing::scope(connect(&settings, source)).await?;
        self.start(connection).await
    }

    /// Connects the sink and starts the interval dumps; a failed start leaves it disconnected.
    async fn start(&self, connection: Connection) -> Result<(), Error> {
        self.sink.connect(connection);
        self.counters.open().await.inspect_err(|_| self.sink.disconnect())
    }

    /// [`open`](Self::open) for synchronous code.
    ///
    /// # Errors
    /// As [`open`](Self::open); also [`Error::BlockingInRuntime`] inside async code.
    pub fn open_blocking(&self) -> Result<(), Error> {
        if self.is_open() {
            return Ok(());
        }
        let (settings, source) = self.lock_setup().clone();
        let connect = publishing::scope(async move { connect(&settings, source).await });
        let connection = self.counters.block_on("open_blocking", connect)??;
        self.sink.connect(connection);
        self.counters.open_blocking().inspect_err(|_| self.sink.disconnect())
    }

    /// Whether the counters are open (connected, with interval dumps running).
    pub fn is_open(&self) -> bool {
        self.sink.is_connected() && self.counters.is_open()
    }

    /// Stops the interval dumps, flushes everything recorded, then disconnects.
    ///
    /// # Errors
    /// [`Error::Save`] when the flush failed: the counters then stay connected (without interval dumps), so
    /// `dump` or `close` can be retried.
    pub async fn close(&self) -> Result<DumpReport, Error> {
        let report = self.counters.close().await?;
        self.sink.disconnect();
        Ok(report)
    }

    /// [`close`](Self::close) for synchronous code.
    ///
    /// # Errors
    /// As [`close`](Self::close); also [`Error::BlockingInRuntime`] inside async code.
    pub fn close_blocking(&self) -> Result<DumpReport, Error> {
        let report = self.counters.close_blocking()?;
        self.sink.disconnect();
        Ok(report)
    }
}

forward_counters_api!(CloudWatchCounters);

impl fmt::Debug for CloudWatchCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudWatchCounters")
            .field("settings", &self.lock_setup().0)
            .field("counters", &self.counters)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

/// A typed builder for [`CloudWatchCounters`]. Every setter overrides only what it names; [`build`](Self::build)
/// checks the result with the same rules as pip-style configuration.
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct CloudWatchCountersBuilder {
    settings: CloudWatchSettings,
    source: ClientSource,
    error: Option<ConfigError>,
}

impl CloudWatchCountersBuilder {
    /// Applies pip-style configuration over what was set so far: keys that are not set keep their value. An
    /// unusable value is reported by [`build`](Self::build).
    pub fn config(mut self, config: &ConfigParams) -> Self {
        if let Err(err) = self.settings.apply_config(config) {
            self.error.get_or_insert(err);
        }
        self
    }

    /// The namespace every metric is published under (pip's `source`). Required.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.settings.namespace = Some(namespace.into());
        self
    }

    /// The InstanceID dimension's value (pip's `instance`; default: the host name).
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.settings.instance = Some(instance.into());
        self
    }

    /// No InstanceID dimension (as `instance` set empty): every instance publishes the same metrics, which
    /// CloudWatch aggregates into one per name and dimensions, and a new instance creates no new metrics.
    pub fn without_instance(mut self) -> Self {
        self.settings.instance = Some(String::new());
        self
    }

    /// A dimension every datum carries after InstanceID (`dimensions.<name>` keys): service, environment, ...
    /// A counter's own label of the same name wins.
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        crate::config::set_pair(&mut self.settings.dimensions, &name.into(), &value.into());
        self
    }

    /// Also publishes each metric without its InstanceID dimension (`options.rollup`): a fleet-wide metric beside
    /// each instance's (statistics and percentiles over every instance). Each rollup is a datum of its own in the
    /// request (1000 datums a request) and a CloudWatch metric of its own.
    pub fn rollup(mut self, on: bool) -> Self {
        self.settings.rollup = on;
        self
    }

    /// Also publishes each metric that has all these dimensions with only them (`options.rollups`, as EMF's
    /// DimensionSets; an empty set gives a metric without dimensions). Can be called more than once.
    pub fn rollup_dimensions(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.settings.rollups.push(names.into_iter().map(Into::into).collect());
        self
    }

    /// The AWS region. A name that cannot be one (empty, or other than ASCII letters, digits and inner hyphens)
    /// is refused by [`build`](Self::build); one from the environment or a profile, by `open`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.settings.region = Some(region.into());
        self
    }

    /// An endpoint URL instead of AWS's, for a local CloudWatch-compatible server.
    pub fn endpoint_url(mut self, url: impl Into<String>) -> Self {
        self.settings.endpoint_url = Some(url.into());
        self
    }

    /// Static credentials instead of aws-config's default chain.
    pub fn credentials(mut self, access_id: impl Into<String>, access_key: impl Into<String>) -> Self {
        self.settings.credentials = Some((access_id.into(), Secret::new(access_key)));
        self
    }

    /// The dump interval, reset timeout, counter cap and telemetry switch.
    pub fn options(mut self, options: CountersOptions) -> Self {
        self.settings.counters = options;
        self
    }

    /// How long connecting to CloudWatch may take (pip's `options.connect_timeout`, default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// What one PutMetricData attempt may take beyond the connect timeout (`options.request_timeout`, default
    /// 10 s): an attempt is bounded by the connect and request timeouts together, however quickly it connected
    /// (a server that accepts the connection and never answers holds it for both).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// Datums per PutMetricData request, 1 to 1000 (default 1000).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.settings.batch_size = batch_size;
        self
    }

    /// Publishes with StorageResolution 1 (high resolution) instead of 60 (CloudWatch's default, which the datums
    /// leave out).
    pub fn high_resolution(mut self, high: bool) -> Self {
        self.settings.storage_resolution = if high { 1 } else { 60 };
        self
    }

    /// Publishes the metrics whose names start with `prefix` at StorageResolution 1 (1-second periods, and
    /// CloudWatch's high-resolution price), whatever [`high_resolution`](Self::high_resolution) says for the
    /// rest (`options.high_resolution`, comma-separated). Can be called more than once.
    pub fn high_resolution_for(mut self, prefix: impl Into<String>) -> Self {
        self.settings.high_resolution.push(prefix.into());
        self
    }

    /// Builds the client from this `SdkConfig` (the settings still override region, endpoint and credentials).
    pub fn sdk_config(mut self, sdk: SdkConfig) -> Self {
        self.source = ClientSource::SdkConfig(Box::new(sdk));
        self
    }

    /// Uses this ready client as it is, but for the timeouts it leaves unset: those are the settings'
    /// (`connect_timeout`, and each attempt bounded by `connect_timeout` plus `request_timeout`), so that an
    /// endpoint that never answers cannot hold the dumps forever.
    pub fn client(mut self, client: Client) -> Self {
        self.source = ClientSource::Client(Box::new(client));
        self
    }

    /// The counters, not yet open.
    ///
    /// # Errors
    /// [`ConfigError`] for a value that breaks a rule (see [`CloudWatchSettings::validate`]) or a configuration
    /// key given to [`config`](Self::config) that could not be read.
    pub fn build(self) -> Result<CloudWatchCounters, ConfigError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        self.settings.validate()?;
        Ok(CloudWatchCounters::with_settings(self.settings, self.source))
    }
}
