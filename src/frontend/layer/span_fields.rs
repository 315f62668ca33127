//! Span fields as dimensions: the values of a span's allow-listed fields (`method`, `route`, `status`, ...),
//! recorded when the span is created and by `span.record(..)` later (tower-http records the status on
//! response), become the labels of the span's counters when it closes.

use std::fmt;

use metrics::Label;
use tracing::field::{Field, Visit};

/// The span fields that become dimensions by default: the usual HTTP ones, by their plain names and by
/// OpenTelemetry's semantic conventions. A URI or id field is not among them: every value is a metric.
pub const DEFAULT_SPAN_DIMENSIONS: &[&str] =
    &["method", "route", "matched_path", "status", "http.request.method", "http.route", "http.response.status_code"];

/// The values of one span's allow-listed fields, as recorded so far.
#[derive(Debug, Default)]
pub(crate) struct SpanLabels(Vec<(&'static str, String)>);

impl SpanLabels {
    /// The labels, in the order the fields were first recorded.
    pub(crate) fn labels(&self) -> Vec<Label> {
        self.0.iter().map(|(name, value)| Label::new(*name, value.clone())).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names and values, as properties.
    pub(crate) fn pairs(&self) -> Vec<(String, String)> {
        self.0.iter().map(|(name, value)| ((*name).to_owned(), value.clone())).collect()
    }

    fn set(&mut self, name: &'static str, value: String) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

/// Records the allow-listed fields a span (or a `span.record`) carries into its labels.
pub(crate) struct LabelVisitor<'a> {
    pub(crate) allowed: &'a [String],
    pub(crate) labels: &'a mut SpanLabels,
}

impl LabelVisitor<'_> {
    fn wants(&self, field: &Field) -> bool {
        self.allowed.iter().any(|name| name == field.name())
    }

    fn put(&mut self, field: &Field, value: String) {
        if self.wants(field) && !value.is_empty() {
            self.labels.set(field.name(), value);
        }
    }
}

impl Visit for LabelVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.wants(field) {
            self.put(field, value.to_owned());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.wants(field) {
            self.put(field, value.to_string());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.wants(field) {
            self.put(field, value.to_string());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.wants(field) {
            self.put(field, value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.wants(field) {
            self.put(field, format!("{value:?}"));
        }
    }
}
