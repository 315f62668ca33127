//! [`CloudWatchCounters`]: pip's CloudWatchCounters — CachedCounters that publish to CloudWatch Metrics.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatch::config::{Credentials, ProvideCredentials, Region, SharedCredentialsProvider};
use aws_sdk_cloudwatch::Client;
use aws_smithy_types::timeout::TimeoutConfig;

use crate::config::{CloudWatchSettings, ConfigParams, CountersOptions};
use crate::counters::CachedCounters;
use crate::error::{ConfigError, Error, Secret};
use crate::exporter::DumpReport;
use crate::sink::cloudwatch::{CloudWatchSink, Connection};
use crate::sink::limits::{check_dimension, check_namespace};

/// Where the CloudWatch client comes from.
#[derive(Debug, Clone, Default)]
enum ClientSource {
    /// Built from the settings and aws-config's default chain.
    #[default]
    Settings,
    /// Built from an `SdkConfig` the user handed in (settings still override region, endpoint and timeouts).
    SdkConfig(Box<SdkConfig>),
    /// A ready client the user handed in.
    Client(Box<Client>),
}

/// Counters published to AWS CloudWatch Metrics with PutMetricData (pip's `CloudWatchCounters`).
///
/// Configure with pip's keys ([`configure`](Self::configure)) or the typed [`builder`](Self::builder), then
/// [`open`](Self::open): it checks the settings, builds the client and starts the interval dumps. Derefs to
/// [`CachedCounters`] for the counters API; use [`close`](Self::close) (not `CachedCounters::close`) to flush and
/// disconnect.
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
        CloudWatchCounters { counters, sink, setup: Mutex::new((settings, source)) }
    }

    /// Reads pip-style configuration (see [`CloudWatchSettings`] for the keys). Takes effect at the next `open`;
    /// the interval and reset timeout take effect at once.
    pub fn configure(&self, config: &ConfigParams) -> Result<(), ConfigError> {
        let settings = CloudWatchSettings::from_config(config)?;
        self.counters.set_options(&settings.counters);
        self.lock_setup().0 = settings;
        Ok(())
    }

    fn lock_setup(&self) -> std::sync::MutexGuard<'_, (CloudWatchSettings, ClientSource)> {
        self.setup.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current settings.
    pub fn settings(&self) -> CloudWatchSettings {
        self.lock_setup().0.clone()
    }

    /// Checks the settings, builds the CloudWatch client and starts the interval dumps. Idempotent.
    ///
    /// Fails — and stays closed, so it can be called again — when the namespace (`source`) is missing or
    /// invalid, no region is known, or no credentials can be found.
    pub async fn open(&self) -> Result<(), Error> {
        if self.is_open() {
            return Ok(());
        }
        let (settings, source) = self.lock_setup().clone();
        let connection = connect(&settings, source).await?;
        self.start(connection)
    }

    /// Connects the sink and starts the interval dumps; a failed start leaves it disconnected.
    fn start(&self, connection: Connection) -> Result<(), Error> {
        self.sink.connect(connection);
        self.counters.open().inspect_err(|_| self.sink.disconnect())
    }

    /// [`open`](Self::open) for synchronous code (fails with [`Error::BlockingInRuntime`] inside async code).
    pub fn open_blocking(&self) -> Result<(), Error> {
        if self.is_open() {
            return Ok(());
        }
        let (settings, source) = self.lock_setup().clone();
        let connect = async move { connect(&settings, source).await };
        let connection = self.counters.shared.block_on("open_blocking", connect)??;
        self.start(connection)
    }

    /// Whether the counters are open (connected, with interval dumps running).
    pub fn is_open(&self) -> bool {
        self.sink.is_connected() && self.counters.is_open()
    }

    /// Stops the interval dumps, flushes everything recorded, then disconnects. If the flush fails the error is
    /// returned and the counters stay connected (but without interval dumps), so `dump` or `close` can be retried.
    pub async fn close(&self) -> Result<DumpReport, Error> {
        let report = self.counters.close().await?;
        self.sink.disconnect();
        Ok(report)
    }

    /// [`close`](Self::close) for synchronous code.
    pub fn close_blocking(&self) -> Result<DumpReport, Error> {
        let report = self.counters.close_blocking()?;
        self.sink.disconnect();
        Ok(report)
    }

    /// What publishing has done so far: datums and requests sent, failed requests, skipped datums by reason,
    /// keys dropped past the cap, values rejected, failed dumps.
    pub fn telemetry(&self) -> crate::Telemetry {
        self.counters.telemetry()
    }

    /// The underlying counters.
    pub fn counters(&self) -> &CachedCounters {
        &self.counters
    }
}

impl Deref for CloudWatchCounters {
    type Target = CachedCounters;

    fn deref(&self) -> &CachedCounters {
        &self.counters
    }
}

impl std::fmt::Debug for CloudWatchCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchCounters")
            .field("settings", &self.lock_setup().0)
            .field("counters", &self.counters)
            .field("open", &self.is_open())
            .finish()
    }
}

/// Resolves the settings into a ready connection.
async fn connect(settings: &CloudWatchSettings, source: ClientSource) -> Result<Connection, Error> {
    let namespace = settings.namespace.clone().ok_or(ConfigError::Missing {
        key: "source",
        why: "it is the CloudWatch namespace every metric is published under",
    })?;
    check_namespace(&namespace).map_err(|expected| crate::config::invalid("source", expected, &namespace))?;
    let instance = match &settings.instance {
        Some(instance) => instance.clone(),
        None => gethostname::gethostname().to_string_lossy().into_owned(),
    };
    check_dimension("InstanceID", &instance).map_err(|_| {
        crate::config::invalid("instance", "1-1024 ASCII characters without control characters", &instance)
    })?;
    let client = match source {
        ClientSource::Client(client) => *client,
        ClientSource::SdkConfig(sdk) => client_from(settings, *sdk).await?,
        ClientSource::Settings => client_from(settings, load_sdk_config(settings).await).await?,
    };
    Ok(Connection {
        client,
        namespace,
        instance,
        batch_size: settings.batch_size,
        storage_resolution: settings.storage_resolution,
    })
}

async fn load_sdk_config(settings: &CloudWatchSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some((id, key)) = &settings.credentials {
        loader = loader.credentials_provider(static_credentials(id, key));
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader.load().await
}

fn static_credentials(id: &str, key: &Secret) -> Credentials {
    Credentials::new(id, key.expose(), None, None, "cloudwatch-counters")
}

/// A CloudWatch client from `sdk`, with the settings' region, endpoint, credentials and timeouts on top; checks
/// that a region and credentials are there.
async fn client_from(settings: &CloudWatchSettings, sdk: SdkConfig) -> Result<Client, Error> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .operation_attempt_timeout(settings.connect_timeout.max(Duration::from_secs(1)))
        .build();
    let region = settings.region.clone().map(Region::new).or_else(|| sdk.region().cloned());
    let Some(region) = region else {
        return Err(Error::Open(
            "no AWS region: set `connection.region` (or AWS_REGION / a profile's region)".to_owned(),
        ));
    };
    let provider = match &settings.credentials {
        Some((id, key)) => Some(SharedCredentialsProvider::new(static_credentials(id, key))),
        None => sdk.credentials_provider(),
    };
    let Some(provider) = provider else {
        return Err(Error::Open("no AWS credentials provider is configured".to_owned()));
    };
    if let Some(url) = settings.endpoint_url.as_deref().or(sdk.endpoint_url()) {
        check_endpoint(url)?;
    }
    let mut config = aws_sdk_cloudwatch::config::Builder::from(&sdk)
        .timeout_config(timeouts)
        .region(region)
        .credentials_provider(provider.clone());
    if let Some(url) = &settings.endpoint_url {
        config = config.endpoint_url(url);
    }
    let config = config.build();
    let probe = tokio::time::timeout(settings.connect_timeout, provider.provide_credentials()).await;
    match probe {
        Ok(Ok(_)) => Ok(Client::from_conf(config)),
        Ok(Err(err)) => Err(Error::Open(format!(
            "no AWS credentials: set `credential.access_id` and `credential.access_key`, or make them available \
             to the default chain (environment, profile, IMDS): {}",
            aws_sdk_cloudwatch::error::DisplayErrorContext(&err)
        ))),
        Err(_) => Err(Error::Open(format!(
            "looking up AWS credentials took longer than options.connect_timeout ({:?})",
            settings.connect_timeout
        ))),
    }
}

/// Refuses plain `http://` to anything but this machine: signed requests and their data would cross the network
/// unencrypted. `https://` endpoints and loopback servers (`localhost`, `127.0.0.0/8`, `[::1]`) are accepted.
fn check_endpoint(url: &str) -> Result<(), Error> {
    let Some(rest) = url.get(..7).filter(|s| s.eq_ignore_ascii_case("http://")).map(|_| &url[7..]) else {
        return Ok(());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(Error::Open(format!(
            "refusing plain http to {host}: requests would leave this machine unencrypted; use an https:// endpoint \
             (plain http is only allowed to loopback servers)"
        )))
    }
}

/// A typed builder for [`CloudWatchCounters`].
#[derive(Debug, Default)]
pub struct CloudWatchCountersBuilder {
    settings: CloudWatchSettings,
    source: ClientSource,
}

impl CloudWatchCountersBuilder {
    /// Starts from pip-style configuration; later builder calls override it.
    pub fn config(mut self, config: &ConfigParams) -> Result<Self, ConfigError> {
        self.settings = CloudWatchSettings::from_config(config)?;
        Ok(self)
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

    /// The AWS region.
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

    /// The dump interval and reset timeout.
    pub fn options(mut self, options: CountersOptions) -> Self {
        self.settings.counters = options;
        self
    }

    /// The connect and per-attempt timeout (pip's `options.connect_timeout`, default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Datums per PutMetricData request, clamped to 1..=1000 (default 1000).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.settings.batch_size = batch_size.clamp(1, crate::config::MAX_BATCH_SIZE);
        self
    }

    /// Publishes with StorageResolution 1 (high resolution) instead of 60.
    pub fn high_resolution(mut self, high: bool) -> Self {
        self.settings.storage_resolution = if high { 1 } else { 60 };
        self
    }

    /// Builds the client from this `SdkConfig` (the settings still override region, endpoint and credentials).
    pub fn sdk_config(mut self, sdk: SdkConfig) -> Self {
        self.source = ClientSource::SdkConfig(Box::new(sdk));
        self
    }

    /// Uses this ready client as it is.
    pub fn client(mut self, client: Client) -> Self {
        self.source = ClientSource::Client(Box::new(client));
        self
    }

    /// The counters, not yet open.
    pub fn build(self) -> CloudWatchCounters {
        CloudWatchCounters::with_settings(self.settings, self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn plain_http_is_only_allowed_to_loopback() {
        for ok in [
            "https://monitoring.us-east-1.amazonaws.com",
            "http://127.0.0.1:4566",
            "http://localhost:4566/",
            "HTTP://[::1]:4566",
            "http://127.8.9.10",
        ] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in ["http://monitoring.us-east-1.amazonaws.com", "http://10.0.0.5:4566", "http://user@example.com/"] {
            let err = check_endpoint(bad).unwrap_err().to_string();
            assert!(err.contains("https://"), "{bad}: {err}");
        }
    }
}
