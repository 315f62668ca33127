//! Resolving CloudWatch settings into a ready [`Connection`]: namespace and instance checked, region and
//! credentials found (and probed), the endpoint checked, timeouts set.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_cloudwatch::config::{Credentials, ProvideCredentials, Region, SharedCredentialsProvider};
use aws_sdk_cloudwatch::Client;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::service_config::ServiceConfigKey;

use super::Connection;
use crate::config::{invalid, CloudWatchSettings};
use crate::error::{summarize, ConfigError, Error, Secret};
use crate::sink::limits::{check_dimension, check_namespace};

/// Where the CloudWatch client comes from.
#[derive(Debug, Clone, Default)]
pub(crate) enum ClientSource {
    /// Built from the settings and aws-config's default chain.
    #[default]
    Settings,
    /// Built from an `SdkConfig` the user handed in (settings still override region, endpoint and timeouts).
    SdkConfig(Box<SdkConfig>),
    /// A ready client the user handed in.
    Client(Box<Client>),
}

/// Resolves the settings into a ready connection.
pub(crate) async fn connect(settings: &CloudWatchSettings, source: ClientSource) -> Result<Connection, Error> {
    let namespace = settings.namespace.clone().ok_or(ConfigError::Missing {
        key: "source",
        why: "it is the CloudWatch namespace every metric is published under",
    })?;
    check_namespace(&namespace).map_err(|expected| invalid("source", expected, &namespace))?;
    let instance = match &settings.instance {
        Some(instance) if instance.is_empty() => None,
        Some(instance) => Some(instance.clone()),
        None => Some(gethostname::gethostname().to_string_lossy().into_owned()),
    };
    if let Some(instance) = &instance {
        check_dimension("InstanceID", instance)
            .map_err(|_| invalid("instance", "1-1024 ASCII characters without control characters", instance))?;
    }
    for (name, value) in &settings.dimensions {
        check_dimension(name, value).map_err(|_| {
            invalid("dimensions", "names and values of 1-255 / 1-1024 ASCII characters", &format!("{name}={value}"))
        })?;
    }
    let room = crate::MAX_DIMENSIONS - usize::from(instance.is_some());
    if settings.dimensions.len() > room {
        let given = format!("{} dimensions", settings.dimensions.len());
        let expected = if instance.is_some() { "at most 29 (InstanceID is the 30th)" } else { "at most 30" };
        return Err(invalid("dimensions", expected, &given).into());
    }
    let client = match source {
        ClientSource::Client(client) => *client,
        ClientSource::SdkConfig(sdk) => client_from(settings, *sdk).await?,
        ClientSource::Settings => client_from(settings, load_sdk_config(settings).await).await?,
    };
    // A client handed in keeps the timeouts it sets; those it leaves unset are the settings', so that no attempt
    // waits forever (a hung endpoint would hold every later dump).
    let mut timeouts = client.config().timeout_config().cloned().unwrap_or_else(|| TimeoutConfig::builder().build());
    timeouts.take_defaults_from(&settings_timeouts(settings));
    Ok(Connection {
        client,
        timeouts,
        namespace,
        instance,
        batch_size: settings.batch_size,
        storage_resolution: settings.storage_resolution,
        high_resolution: settings.high_resolution.clone().into(),
        dimensions: settings.dimensions.clone().into(),
        rollup: settings.rollup,
        rollups: settings.rollups.clone().into(),
    })
}

/// The settings' timeouts: `connect_timeout` for the connection, and an attempt bounded by it plus
/// `request_timeout`.
fn settings_timeouts(settings: &CloudWatchSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .operation_attempt_timeout(settings.connect_timeout.saturating_add(settings.request_timeout))
        .build()
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
    let timeouts = settings_timeouts(settings);
    let region = settings.region.clone().map(Region::new).or_else(|| sdk.region().cloned());
    let Some(region) = region else {
        return Err(Error::NoRegion);
    };
    // A region from the environment or a profile, checked as the settings' own is.
    crate::config::check_region(region.as_ref()).map_err(Error::Config)?;
    let provider = match &settings.credentials {
        Some((id, key)) => Some(SharedCredentialsProvider::new(static_credentials(id, key))),
        None => sdk.credentials_provider(),
    };
    let Some(provider) = provider else {
        return Err(Error::NoCredentials {
            summary: "no credentials provider is configured".to_owned(),
            source: "no credentials provider is configured".into(),
        });
    };
    if let Some(url) = effective_endpoint(settings, &sdk) {
        check_endpoint(&url)?;
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
        Ok(Err(err)) => Err(Error::NoCredentials { summary: summarize(&err), source: Box::new(err) }),
        Err(_) => Err(Error::CredentialsTimeout(settings.connect_timeout)),
    }
}

/// The endpoint URL the CloudWatch client will use, resolved as the SDK resolves it: the settings' (builder or
/// pip keys), else one set in code on the `SdkConfig`, else CloudWatch's own (`AWS_ENDPOINT_URL_CLOUDWATCH`, a
/// profile's `services` section), else the general one (`AWS_ENDPOINT_URL`, a profile's `endpoint_url`). `None`:
/// AWS's own https endpoint.
fn effective_endpoint(settings: &CloudWatchSettings, sdk: &SdkConfig) -> Option<String> {
    if let Some(url) = &settings.endpoint_url {
        return Some(url.clone());
    }
    if sdk.get_origin("endpoint_url").is_client_config() {
        return sdk.endpoint_url().map(str::to_owned);
    }
    let key =
        ServiceConfigKey::builder().service_id("CloudWatch").env("AWS_ENDPOINT_URL").profile("endpoint_url").build();
    key.ok().and_then(|key| sdk.service_config()?.load_config(key)).or_else(|| sdk.endpoint_url().map(str::to_owned))
}

/// Checks an endpoint URL: it must parse as an absolute `http(s)://host...` URL, and plain `http://` is refused
/// to anything but this machine (signed requests and their data would cross the network unencrypted).
/// `https://` endpoints and loopback servers (`localhost`, `127.0.0.0/8`, `[::1]`) are accepted.
pub(crate) fn check_endpoint(url: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidEndpoint { url: crate::error::redact_userinfo(url), reason };
    let uri: http::Uri = url.parse().map_err(|_| invalid("it does not parse as a URL"))?;
    let scheme = uri
        .scheme_str()
        .ok_or_else(|| invalid("it has no scheme: start it with https:// (or http:// for a local server)"))?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| invalid("it has no host"))?;
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(());
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(invalid("its scheme is neither https nor http"));
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(Error::InsecureEndpoint { host: bare.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;
    use crate::error::Error;

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

    #[test]
    fn a_malformed_endpoint_is_an_error_that_says_why() {
        for bad in ["127.0.0.1:4566", "http:/x", "not a url", "ftp://127.0.0.1"] {
            let err = check_endpoint(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidEndpoint { .. }), "{bad}: {err}");
        }
    }
}
