//! Errors a user can act on.

use std::error::Error as StdError;
use std::fmt;

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key holds a value of the wrong form.
    #[error("configuration key `{key}` must be {expected}, but is {value:?}")]
    Invalid {
        /// The dotted key, as given.
        key: String,
        /// What the value must be.
        expected: &'static str,
        /// The value found (never a secret: secret keys are not reported by value).
        value: String,
    },
    /// A key that must be set is missing.
    #[error("configuration key `{key}` is missing: {why}")]
    Missing {
        /// The dotted key.
        key: &'static str,
        /// Why it is needed.
        why: &'static str,
    },
}

/// Why a sink could not save a batch of counters.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SaveError {
    message: String,
    throttled: bool,
    ambiguous: bool,
    failed: Option<Vec<usize>>,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl SaveError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> SaveError {
        SaveError { message: message.into(), throttled: false, ambiguous: false, failed: None, source: None }
    }

    /// A failure caused by `source`.
    pub fn with_source(message: impl Into<String>, source: impl StdError + Send + Sync + 'static) -> SaveError {
        SaveError {
            message: message.into(),
            throttled: false,
            ambiguous: false,
            failed: None,
            source: Some(Box::new(source)),
        }
    }

    /// Marks the failure as throttling: the exporter then waits longer before the next attempt.
    pub fn throttled(mut self) -> SaveError {
        self.throttled = true;
        self
    }

    /// Marks the failure as ambiguous: some data was sent and may have been stored, so it is not sent again
    /// (only what [`partial`](Self::partial) names is kept).
    pub fn ambiguous(mut self) -> SaveError {
        self.ambiguous = true;
        self
    }

    /// Whether some of the data may have been stored although the save failed (it is not sent again).
    pub fn is_ambiguous(&self) -> bool {
        self.ambiguous
    }

    /// Marks the failure as partial: only the counters at these indices (into the slice given to `save`) were
    /// not saved and go back into the counters for the next dump; the others were saved (or may have been, for
    /// an [ambiguous](Self::ambiguous) failure) and are not sent again.
    pub fn partial(mut self, failed: Vec<usize>) -> SaveError {
        self.failed = Some(failed);
        self
    }

    /// The indices of the counters that were not saved, or `None` when the failure did not say (then none was
    /// saved, unless the failure is [ambiguous](Self::ambiguous): then any may have been).
    pub fn failed(&self) -> Option<&[usize]> {
        self.failed.as_deref()
    }

    /// Whether the receiver asked us to slow down.
    pub fn is_throttled(&self) -> bool {
        self.throttled
    }
}

/// Any failure of this crate's public operations. Each variant is one cause; match on it to react.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A dump could not save its counters. What the destination surely did not store is kept and sent by the
    /// next dump; what it may have stored is not sent again ([`SaveError::is_ambiguous`]).
    #[error("saving counters failed: {0}")]
    Save(#[from] SaveError),
    /// A `*_blocking` call was made in the root future of an async runtime (`#[tokio::main]`'s body, `block_on`),
    /// where blocking would stall every task of the runtime.
    #[error("`{0}` blocks the calling thread and cannot be called from async code: use its async form")]
    BlockingInRuntime(&'static str),
    /// The background thread that drives dumps for programs without a tokio runtime could not be started.
    #[error("could not start the cloudwatch-counters background thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The background runtime stopped before the operation finished.
    #[error("the cloudwatch-counters background runtime has stopped")]
    RuntimeGone,
    /// `open` found no AWS region. Nothing was started; set one and call `open` again.
    #[error(
        "cannot open CloudWatch counters: no AWS region: set `connection.region` (or AWS_REGION / a profile's region)"
    )]
    NoRegion,
    /// `open` found no AWS credentials. Nothing was started; provide them and call `open` again. The message
    /// summarizes the credential chain's answer; [`source`](std::error::Error::source) has all of it.
    #[error(
        "cannot open CloudWatch counters: no AWS credentials ({summary}): set `credential.access_id` and \
         `credential.access_key`, or make them available to the default chain (environment, profile, IMDS)"
    )]
    NoCredentials {
        /// The first line of the credential chain's answer.
        summary: String,
        /// The credential chain's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Looking up credentials took longer than `options.connect_timeout`.
    #[error(
        "cannot open CloudWatch counters: looking up AWS credentials took longer than options.connect_timeout ({0:?})"
    )]
    CredentialsTimeout(std::time::Duration),
    /// The endpoint is plain `http://` to a host that is not this machine: signed requests and their data would
    /// cross the network unencrypted.
    #[error(
        "cannot open CloudWatch counters: refusing plain http to {host}: requests would leave this machine \
         unencrypted; use an https:// endpoint (plain http is only allowed to loopback servers)"
    )]
    InsecureEndpoint {
        /// The endpoint's host.
        host: String,
    },
    /// The endpoint URL cannot be used.
    #[error("cannot open CloudWatch counters: the endpoint {url:?} is not a usable URL: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `close` did not finish within `options.close_timeout` (the endpoint hangs, say). What was being sent
    /// then may or may not have arrived and is not sent again; what was not sent yet stays in the counters.
    #[error(
        "close did not finish within options.close_timeout ({timeout:?}): {datums_unconfirmed} datums were being \
         sent and are not confirmed (they are not sent again); anything not yet sent stays in the counters"
    )]
    CloseTimeout {
        /// The bound that passed.
        timeout: std::time::Duration,
        /// Datums whose save was under way when it was cut off: CloudWatch may or may not hold them.
        datums_unconfirmed: u64,
    },
    /// A `*_blocking` call did not finish within its bound (`options.close_timeout`).
    #[error("`{what}` did not finish within {timeout:?}")]
    Timeout {
        /// The call.
        what: &'static str,
        /// The bound that passed.
        timeout: std::time::Duration,
    },
    /// `install` found a global recorder or tracing subscriber already set.
    #[error("cannot install the counters: a global {0} is already set")]
    AlreadyInstalled(&'static str),
}

#[cfg(feature = "cloudwatch")]
/// The first line of an error's message, at most 200 characters: what a user needs to read, not the SDK's
/// whole debug output.
pub(crate) fn summarize(err: &dyn StdError) -> String {
    first_line(&err.to_string())
}

#[cfg(feature = "cloudwatch")]
/// The first line of `text`, at most 200 characters.
pub(crate) fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut summary: String = line.chars().take(200).collect();
    if summary.len() < line.len() {
        summary.push_str("...");
    }
    summary
}

/// `url` with any `user:password@` part hidden, for errors and `Debug` output.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// A string that hides its content in `Debug` and `Display` (for credentials).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself; call only where it is handed to the party that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::redact_userinfo;

    #[test]
    fn userinfo_is_hidden_and_the_rest_kept() {
        assert_eq!(redact_userinfo("http://user:pw@10.0.0.1:4566/x?y"), "http://***@10.0.0.1:4566/x?y");
        assert_eq!(redact_userinfo("https://monitoring.aws/p@th"), "https://monitoring.aws/p@th");
        assert_eq!(redact_userinfo("127.0.0.1:4566"), "127.0.0.1:4566");
    }
}
