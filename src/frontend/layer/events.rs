//! Metric events: fields named as tracing-opentelemetry does (`monotonic_counter.X`, `counter.X`,
//! `histogram.X`, `gauge.X`) become counters, the event's other fields their dimensions; and the span field
//! that overrides a span's counter name.

use std::fmt;

use metrics::{Key, Label};
use tracing::field::{Field, Visit};
use tracing::Event;

use crate::model::{CounterType, MAX_LABELS};
use crate::store::Store;

/// The span field that overrides a span's counter base name.
pub const COUNTER_FIELD: &str = "counter";

/// Records the metric fields of `event` into `store`; its other fields (not `message`) become labels, at most
/// [`MAX_LABELS`], except those named in `properties`, which become the metrics' properties.
pub(crate) fn record_metric_event(store: &Store, event: &Event<'_>, properties: &[String]) {
    let mut visitor = MetricVisitor { properties_allowed: properties, ..MetricVisitor::default() };
    event.record(&mut visitor);
    if visitor.metrics.is_empty() {
        return;
    }
    if visitor.labels.len() > MAX_LABELS {
        let name = visitor.metrics.first().map_or("", |(name, _, _)| name.as_str());
        store.count_labels_cut(name, visitor.labels.len());
        visitor.labels.truncate(MAX_LABELS);
    }
    for (name, kind, value) in visitor.metrics {
        let key = Key::from_parts(name, visitor.labels.clone());
        if !visitor.properties.is_empty() {
            store.set_properties(&key, visitor.properties.clone());
        }
        let cell = store.cell(&key, kind);
        match kind {
            CounterType::Increment => match value {
                Value::Int(v) => cell.add(v),
                Value::Unsigned(v) => cell.add_unsigned(v),
                Value::Float(v) => cell.add_f64(v),
            },
            CounterType::Statistics => cell.sample(value.as_f64()),
            _ => cell.set_last(value.as_f64()),
        }
    }
}

/// The kind of counter a field name asks for, and the counter's name.
pub(crate) fn metric_field(field: &str) -> Option<(CounterType, &str)> {
    let (kind, name) = if let Some(name) = field.strip_prefix("monotonic_counter.") {
        (CounterType::Increment, name)
    } else if let Some(name) = field.strip_prefix("counter.") {
        (CounterType::Increment, name)
    } else if let Some(name) = field.strip_prefix("histogram.") {
        (CounterType::Statistics, name)
    } else if let Some(name) = field.strip_prefix("gauge.") {
        (CounterType::LastValue, name)
    } else {
        return None;
    };
    (!name.is_empty()).then_some((kind, name))
}

#[derive(Clone, Copy)]
enum Value {
    Int(i64),
    Unsigned(u64),
    Float(f64),
}

impl Value {
    fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Unsigned(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// Collects an event's metric fields and its other fields (as labels, or properties when allow-listed).
#[derive(Default)]
struct MetricVisitor<'a> {
    metrics: Vec<(String, CounterType, Value)>,
    labels: Vec<Label>,
    properties_allowed: &'a [String],
    properties: Vec<(String, String)>,
}

impl MetricVisitor<'_> {
    fn value(&mut self, field: &Field, value: Value) -> bool {
        match metric_field(field.name()) {
            Some((kind, name)) => {
                self.metrics.push((name.to_owned(), kind, value));
                true
            }
            None => false,
        }
    }

    fn label(&mut self, field: &Field, value: String) {
        if self.properties_allowed.iter().any(|p| p == field.name()) {
            self.properties.push((field.name().to_owned(), value));
        } else if field.name() != "message" {
            self.labels.push(Label::new(field.name(), value));
        }
    }
}

impl Visit for MetricVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.value(field, Value::Float(value)) {
            self.label(field, value.to_string());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !self.value(field, Value::Int(value)) {
            self.label(field, value.to_string());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.value(field, Value::Unsigned(value)) {
            self.label(field, value.to_string());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.label(field, value.to_string());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if metric_field(field.name()).is_none() {
            self.label(field, value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if metric_field(field.name()).is_none() {
            self.label(field, format!("{value:?}"));
        }
    }
}

/// Reads the `counter` field of a new span.
pub(crate) struct NameOverride(pub(crate) Option<String>);

impl Visit for NameOverride {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == COUNTER_FIELD && !value.is_empty() {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == COUNTER_FIELD {
            let text = format!("{value:?}");
            let text = text.trim_matches('"');
            if !text.is_empty() {
                self.0 = Some(text.to_owned());
            }
        }
    }
}
