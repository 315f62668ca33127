//! [`CountersLayerBuilder`]: what the layer ignores, how it names span counters, what it records.

use std::fmt;
use std::sync::Arc;

use tracing::{Level, Metadata};

use crate::frontend::Owner;
use crate::store::Store;

/// Targets the layer ignores by default: the libraries that publishing itself uses, and this crate. A target
/// matches a module and its submodules (`hyper` matches `hyper` and `hyper::client`, not `hyperion`); a trailing
/// `*` matches any target that starts with what comes before it (`aws_sdk_*`: every AWS SDK crate).
pub const DEFAULT_EXCLUDED_TARGETS: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_*",
    "aws_sigv4",
    "aws_smithy_*",
    "aws_types",
    "cloudwatch_counters",
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "rustls",
    "tokio",
    "tower",
];

/// Whether `target` is `pattern`'s module or one of its submodules (or, for a pattern ending in `*`, starts
/// with what comes before the `*`).
pub(crate) fn target_matches(target: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => target.starts_with(prefix),
        None => target.strip_prefix(pattern).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")),
    }
}

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
    pub(super) level: Level,
    pub(super) span_dimensions: Vec<String>,
    pub(super) properties: Vec<String>,
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
            level: Level::INFO,
            span_dimensions: super::DEFAULT_SPAN_DIMENSIONS.iter().map(|f| (*f).to_owned()).collect(),
            properties: Vec::new(),
        }
    }

    /// Also ignores spans and events of `target` and its submodules (`my_crate::db` also ignores
    /// `my_crate::db::pool`; end it with `*` to match any target that starts with it).
    pub fn exclude_target(mut self, target: impl Into<String>) -> Self {
        self.excluded.push(target.into());
        self
    }

    /// The most verbose level the layer acts on (default INFO, the level of `#[instrument]`): spans and metric
    /// events below it (DEBUG and TRACE by default) are neither timed nor counted. For the subscriber to skip
    /// those callsites entirely when no other layer wants them, give the layer a per-layer filter too
    /// (`.with_filter(LevelFilter::INFO)`).
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The span fields whose values become dimensions of the span's counters (default
    /// [`DEFAULT_SPAN_DIMENSIONS`](super::DEFAULT_SPAN_DIMENSIONS): `method`, `route`, `matched_path`, `status`
    /// and their OpenTelemetry names), whether recorded when the span is created or later with
    /// `span.record(..)`. Each distinct set of values is a counter (and a CloudWatch metric) under
    /// `options.max_counters`: allow only fields with few values.
    pub fn span_dimensions(mut self, fields: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.span_dimensions = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Span and metric-event fields that are context, not dimensions: their values go with the period's data as
    /// properties (EMF documents carry them as root members: a request id, a trace id, a customer) instead of
    /// becoming labels. A span's go with its own timing counter, an event's with its metrics (not with what
    /// `metrics` macros record inside the span). The last value of each wins in a period, across every event
    /// and span of that counter (flush per request, as a Lambda handler does, for one request's values). None
    /// by default.
    pub fn properties(mut self, fields: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.properties = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the list of ignored targets (the default is [`DEFAULT_EXCLUDED_TARGETS`]; same matching as
    /// [`exclude_target`](Self::exclude_target)).
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
            .field("level", &self.level)
            .field("span_dimensions", &self.span_dimensions)
            .field("properties", &self.properties)
            .finish_non_exhaustive()
    }
}
