//! [`CountersLayerBuilder`]: what the layer ignores, how it names span counters, what it records.

use std::fmt;
use std::sync::Arc;

use tracing::Metadata;

use crate::frontend::Owner;
use crate::store::Store;

/// Targets the layer ignores by default: the libraries that publishing itself uses, and this crate.
pub const DEFAULT_EXCLUDED_TARGETS: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_",
    "aws_sigv4",
    "aws_smithy_",
    "aws_types",
    "cloudwatch_counters",
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "rustls",
    "tokio",
    "tower",
    "tower_http",
];

/// A function that names a span's counter base (without `.exec_time`).
pub type NamingFn = Arc<dyn Fn(&Metadata<'_>) -> String + Send + Sync>;

/// Settings of the layer (`counters.layer_builder()`).
#[derive(Clone)]
#[must_use = "a layer builder does nothing until `.build()`"]
pub struct CountersLayerBuilder {
    pub(super) store: Arc<Store>,
    pub(super) owner: Owner,
    pub(super) excluded: Vec<String>,
    pub(super) naming: Option<NamingFn>,
    pub(super) time_spans: bool,
    pub(super) count_events: bool,
}

impl CountersLayerBuilder {
    pub(crate) fn new(store: Arc<Store>, owner: Owner) -> CountersLayerBuilder {
        CountersLayerBuilder {
            store,
            owner,
            excluded: DEFAULT_EXCLUDED_TARGETS.iter().map(|t| (*t).to_owned()).collect(),
            naming: None,
            time_spans: true,
            count_events: true,
        }
    }

    /// Also ignores spans and events whose target starts with `prefix`.
    pub fn exclude_target(mut self, prefix: impl Into<String>) -> Self {
        self.excluded.push(prefix.into());
        self
    }

    /// Replaces the list of ignored target prefixes (the default is [`DEFAULT_EXCLUDED_TARGETS`]).
    pub fn excluded_targets(mut self, prefixes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.excluded = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Names span counters with `naming` (its result gets `.exec_time` / `.errors` appended). A span's
    /// `counter` field still takes precedence.
    pub fn naming(mut self, naming: impl Fn(&Metadata<'_>) -> String + Send + Sync + 'static) -> Self {
        self.naming = Some(Arc::new(naming));
        self
    }

    /// Whether spans are timed (default true).
    pub fn time_spans(mut self, on: bool) -> Self {
        self.time_spans = on;
        self
    }

    /// Whether metric events become counters (default true).
    pub fn count_events(mut self, on: bool) -> Self {
        self.count_events = on;
        self
    }
}

impl fmt::Debug for CountersLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountersLayerBuilder")
            .field("excluded", &self.excluded)
            .field("naming", &self.naming.is_some())
            .field("time_spans", &self.time_spans)
            .field("count_events", &self.count_events)
            .finish_non_exhaustive()
    }
}
