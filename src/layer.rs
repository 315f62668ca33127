//! [`CountersLayer`]: a `tracing_subscriber::Layer` that times spans into Interval counters and turns metric
//! events into counters.
//!
//! - Every span that closes records its wall duration (creation to close, in ms) into the Interval counter
//!   `<target with :: as .>.<span name>.exec_time` (`orders::api` + `create_order` ->
//!   `orders.api.create_order.exec_time`). A span field `counter = "name"` replaces the base name; a naming
//!   function can replace the rule. A span that saw an ERROR event also adds 1 to `<base>.errors`.
//! - Events with fields named as tracing-opentelemetry does: `monotonic_counter.X` / `counter.X` add to the
//!   Increment counter `X`, `histogram.X` records into Statistics `X`, `gauge.X` sets LastValue `X`. The event's
//!   other fields (not `message`) become dimensions, at most 29 (30 with InstanceID).
//! - Spans and events of the targets excluded by default (the AWS SDK, hyper, h2, rustls, tower, tokio, this
//!   crate) are ignored, so a dump never creates more data to dump. The layer filters for itself, once per span
//!   callsite (cached) and with a quick level/field check per event, rather than through a per-layer `Filter`:
//!   `tracing_subscriber`'s `Filtered` looks the span up again on every enter, exit and close, which cost more
//!   than the layer's own work. It never disables a callsite for other layers.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use dashmap::DashMap;
use metrics::{Key, Label};
use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::cell::Cell;
use crate::counter::CounterType;
use crate::exporter::{is_publishing, Shared};
use crate::recorder::MAX_LABELS;
use crate::span_cache;

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

/// The span field that overrides a span's counter base name.
pub const COUNTER_FIELD: &str = "counter";

/// A function that names a span's counter base (without `.exec_time`).
pub type NamingFn = Arc<dyn Fn(&Metadata<'_>) -> String + Send + Sync>;

/// Settings of the layer (`counters.layer_builder()`).
#[derive(Clone)]
pub struct CountersLayerBuilder {
    shared: Arc<Shared>,
    excluded: Vec<String>,
    naming: Option<NamingFn>,
    time_spans: bool,
    count_events: bool,
}

impl CountersLayerBuilder {
    pub(crate) fn new(shared: Arc<Shared>) -> CountersLayerBuilder {
        CountersLayerBuilder {
            shared,
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

    /// The layer, ready for `registry().with(...)`.
    pub fn build(self) -> CountersLayer {
        CountersLayer {
            shared: self.shared,
            naming: self.naming,
            excluded: Arc::from(self.excluded),
            time_spans: self.time_spans,
            count_events: self.count_events,
            callsites: Arc::new(DashMap::default()),
            id: NEXT_LAYER_ID.fetch_add(1, Relaxed),
            // Calibrated here, once, so that no span pays for it.
            clock: quanta::Clock::new(),
        }
    }
}

/// The next layer's id.
static NEXT_LAYER_ID: AtomicU64 = AtomicU64::new(0);

/// Hashes a callsite `Identifier` (a `&'static dyn Callsite`: its address, then its vtable's) with a
/// multiplication per word, instead of SipHash. Both words are mixed in: callsites of one type share the vtable.
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high bits into the low ones, which hash tables use for their bucket index.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, word: usize) {
        self.0 = (self.0 ^ word as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// What the layer does with spans of one callsite: time them into these cells, or ignore them (`None`).
type Callsites = DashMap<Identifier, Option<Arc<SpanCells>>, BuildHasherDefault<AddressHasher>>;

/// The counters of one span callsite.
pub(crate) struct SpanCells {
    base: String,
    pub(crate) exec_time: Arc<Cell>,
    errors: std::sync::OnceLock<Arc<Cell>>,
}

/// Kept in a span's extensions from creation to close.
struct SpanTiming {
    /// A raw reading of the layer's clock.
    start: u64,
    cells: Arc<SpanCells>,
    error: bool,
}

/// The layer itself; see the module docs. Made by `counters.layer()` or `counters.layer_builder().build()`.
pub struct CountersLayer {
    shared: Arc<Shared>,
    naming: Option<NamingFn>,
    excluded: Arc<[String]>,
    time_spans: bool,
    count_events: bool,
    callsites: Arc<Callsites>,
    /// Tells this layer's entries apart in the per-thread callsite caches (never reused, unlike an address).
    id: u64,
    /// The time stamp counter where it is reliable (a read costs a few ns, against ~23 for `Instant::now` on a
    /// VM's vDSO clock), else the OS's monotonic clock.
    clock: quanta::Clock,
}

impl CountersLayer {
    fn is_excluded(&self, target: &str) -> bool {
        self.excluded.iter().any(|prefix| target.starts_with(prefix.as_str()))
    }

    /// Whether an event is one the layer acts on: an ERROR (inside a timed span) or a metric event, of a target
    /// that is not excluded. The cheap checks come first: most events are neither.
    fn wants_event(&self, meta: &Metadata<'_>) -> bool {
        let wanted = (self.time_spans && *meta.level() == Level::ERROR)
            || (self.count_events && meta.fields().iter().any(|f| metric_field(f.name()).is_some()));
        wanted && !self.is_excluded(meta.target())
    }

    fn base_name(&self, meta: &Metadata<'_>) -> String {
        match &self.naming {
            Some(naming) => naming(meta),
            None => format!("{}.{}", meta.target().replace("::", "."), meta.name()),
        }
    }

    fn new_cells(&self, base: String) -> Arc<SpanCells> {
        let key = Key::from_name(format!("{base}.exec_time"));
        let exec_time = self.shared.store.cell(&key, CounterType::Interval);
        Arc::new(SpanCells { base, exec_time, errors: std::sync::OnceLock::new() })
    }

    /// The cells of a span callsite (`None` for an excluded target), cached; re-resolved when the counters were
    /// cleared or replaced.
    fn callsite_cells(&self, meta: &'static Metadata<'static>) -> Option<Arc<SpanCells>> {
        let id = meta.callsite();
        if let Some(known) = span_cache::get(self.id, &id) {
            return known;
        }
        let cells = self.shared_callsite_cells(meta);
        span_cache::put(self.id, id, cells.clone());
        cells
    }

    /// [`callsite_cells`](Self::callsite_cells) from the map all threads share.
    fn shared_callsite_cells(&self, meta: &'static Metadata<'static>) -> Option<Arc<SpanCells>> {
        let id = meta.callsite();
        if let Some(cells) = self.callsites.get(&id) {
            match &*cells {
                None => return None,
                Some(cells) if !cells.exec_time.is_retired() => return Some(Arc::clone(cells)),
                Some(_) => {}
            }
        }
        let cells = (!self.is_excluded(meta.target())).then(|| self.new_cells(self.base_name(meta)));
        self.callsites.insert(id, cells.clone());
        cells
    }

    /// Adds 1 to the span's `<base>.errors` counter (resolved once, again only if it was cleared or replaced).
    fn count_error(&self, cells: &SpanCells) {
        let resolve =
            || self.shared.store.cell(&Key::from_name(format!("{}.errors", cells.base)), CounterType::Increment);
        let cell = cells.errors.get_or_init(resolve);
        if cell.is_retired() {
            resolve().add(1);
        } else {
            cell.add(1);
        }
    }

    fn record_metric_event(&self, event: &Event<'_>) {
        if !self.count_events {
            return;
        }
        let mut visitor = MetricVisitor::default();
        event.record(&mut visitor);
        if visitor.metrics.is_empty() {
            return;
        }
        if visitor.labels.len() > MAX_LABELS {
            let name = visitor.metrics.first().map_or("", |(name, _, _)| name.as_str());
            self.shared.labels_cut(name, visitor.labels.len());
            visitor.labels.truncate(MAX_LABELS);
        }
        for (name, kind, value) in visitor.metrics {
            let key = Key::from_parts(name, visitor.labels.clone());
            let cell = self.shared.store.cell(&key, kind);
            match kind {
                CounterType::Increment => match value {
                    Value::Int(v) => cell.add(v),
                    Value::Float(v) => cell.add(v as i64),
                },
                CounterType::Statistics => cell.sample(value.as_f64()),
                _ => cell.set_last(value.as_f64()),
            }
        }
    }
}

impl<S> Layer<S> for CountersLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.time_spans || is_publishing() {
            return;
        }
        let meta = attrs.metadata();
        let mut name = NameOverride(None);
        if meta.fields().field(COUNTER_FIELD).is_some() && !self.is_excluded(meta.target()) {
            attrs.record(&mut name);
        }
        let cells = match name.0 {
            Some(base) => self.new_cells(base),
            None => match self.callsite_cells(meta) {
                Some(cells) => cells,
                None => return,
            },
        };
        let Some(span) = ctx.span(id) else { return };
        span.extensions_mut().insert(SpanTiming { start: self.clock.raw(), cells, error: false });
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !self.wants_event(event.metadata()) || is_publishing() {
            return;
        }
        if *event.metadata().level() == Level::ERROR {
            if let Some(span) = ctx.event_span(event) {
                if let Some(timing) = span.extensions_mut().get_mut::<SpanTiming>() {
                    timing.error = true;
                }
            }
        }
        self.record_metric_event(event);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(timing) = span.extensions_mut().remove::<SpanTiming>() else { return };
        let elapsed_ms = self.clock.delta_as_nanos(timing.start, self.clock.raw()) as f64 / 1e6;
        timing.cells.exec_time.sample(elapsed_ms);
        if timing.error {
            self.count_error(&timing.cells);
        }
    }
}

impl fmt::Debug for CountersLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountersLayer").field("callsites", &self.callsites.len()).finish()
    }
}

/// The kind of counter a field name asks for, and the counter's name.
fn metric_field(field: &str) -> Option<(CounterType, &str)> {
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
    Float(f64),
}

impl Value {
    fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Float(v) => v,
        }
    }
}

/// Collects an event's metric fields and its other fields (as labels).
#[derive(Default)]
struct MetricVisitor {
    metrics: Vec<(String, CounterType, Value)>,
    labels: Vec<Label>,
}

impl MetricVisitor {
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
        if field.name() != "message" {
            self.labels.push(Label::new(field.name(), value));
        }
    }
}

impl Visit for MetricVisitor {
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
        if !self.value(field, Value::Int(i64::try_from(value).unwrap_or(i64::MAX))) {
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
struct NameOverride(Option<String>);

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

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use tracing::callsite::{Callsite, Identifier};
    use tracing::subscriber::Interest;
    use tracing::Metadata;

    use super::AddressHasher;

    struct Site(#[allow(dead_code)] u8);

    impl Callsite for Site {
        fn set_interest(&self, _: Interest) {}

        fn metadata(&self) -> &Metadata<'_> {
            unimplemented!("not called by hashing")
        }
    }

    static A: Site = Site(1);
    static B: Site = Site(2);

    #[test]
    fn callsites_of_one_type_hash_apart() {
        let hash =
            |site: &'static Site| std::hash::BuildHasherDefault::<AddressHasher>::default().hash_one(Identifier(site));
        assert_ne!(hash(&A), hash(&B), "the vtable, shared by both, must not be all that is hashed");
    }
}
