//! Metric events: fields named as tracing-opentelemetry does (`monotonic_counter.X`, `counter.X`,
//! `histogram.X`, `gauge.X`) become counters, the event's other fields their dimensions; and the span field
//! that overrides a span's counter name.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::sync::Arc;

use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::Event;
use tracing_subscriber::field::RecordFields;

use super::{key_buffers, span_cache};

use crate::frontend::cached_cell::{CachedCell, EventLabels};
use crate::model::{labels_kept, CounterType};
use crate::store::cell::CounterCell;
use crate::store::thread_cache::{self, Slots};
use crate::store::{Fit::EitherSampled, Store};

/// The span field that overrides a span's counter base name: given when the span is made, or recorded later
/// with `span.record(COUNTER_FIELD, ..)` (the last name recorded before the span closes counts).
pub const COUNTER_FIELD: &str = "counter";

thread_local! {
    /// The handles of the counters this thread's metric events recorded into lately, by name and label values.
    static CACHE: RefCell<Slots<Arc<CachedCell>>> = const { RefCell::new(Slots::new(64, 4096)) };
    /// Where an event's fields are collected, reused from event to event.
    static SCRATCH: RefCell<Fields> = const { RefCell::new(Fields::new()) };
}

/// Records the metric fields of `event` into `store`; its other fields (not `message`) become labels, of at most
/// [`Store::max_labels`] names, except those named in `properties`, which become the metrics'
/// properties. `layer` tells the layer's cached handles apart.
///
/// An event whose counters and label values this thread recorded lately costs no allocation and builds no
/// `Key`: its fields are written into a reused buffer, and the counters are found in a per-thread cache by a
/// hash of their name and label values. Otherwise an existing counter is found in the store by its name and
/// label values as they are, still with no `Key` built; a new one (or one with properties) with a `Key` built in
/// buffers reused from miss to miss, so that it allocates nothing once they are large enough.
pub(crate) fn record_metric_event(
    store: &Store,
    layer: u64,
    event: &Event<'_>,
    properties: &[String],
    roles: &FieldRoles,
    memo: &Memo,
) {
    let record = |fields: &mut Fields| {
        fields.clear();
        event.record(&mut MetricVisitor { properties_allowed: properties, roles, fields: &mut *fields });
        fields.record(store, layer, memo);
    };
    let recorded = SCRATCH.try_with(|scratch| scratch.try_borrow_mut().map(|mut fields| record(&mut fields)).is_ok());
    if recorded != Ok(true) {
        // Re-entered (a field's `Debug` emitted an event) or the thread is ending: a buffer of its own.
        record(&mut Fields::default());
    }
}

/// Records the metric fields of `event`, an event without labels or properties, each as it is visited.
pub(crate) fn record_unlabelled_metric_event(
    store: &Store,
    layer: u64,
    event: &Event<'_>,
    roles: &FieldRoles,
    memo: &Memo,
) {
    event.record(&mut DirectVisitor { store, layer, roles, memo });
}

/// Records an unlabelled event's metric fields straight into their cells.
struct DirectVisitor<'a> {
    store: &'a Store,
    layer: u64,
    roles: &'a FieldRoles,
    memo: &'a Memo,
}

/// Each metric field's value goes from the visit to its cell without a call: the calls between them
/// (`DirectVisitor::record`, `FieldRoles::metric`, `Value::record` and the recording closure) were about a
/// fifth of an unlabelled metric event's profile, not inlined on their own.
impl DirectVisitor<'_> {
    #[allow(
        clippy::inline_always,
        reason = "one of the calls of an unlabelled metric event, inlined (see `DirectVisitor`)"
    )]
    #[inline(always)]
    fn record(&self, field: &Field, value: Value) {
        /// The fields of an event without labels or properties.
        static NO_LABELS: Fields = Fields::new();
        if let Some((kind, name)) = self.roles.metric(field) {
            with_cell(
                self.store,
                self.layer,
                name,
                kind,
                &NO_LABELS,
                self.memo,
                #[inline(always)]
                |cell| value.record(cell, kind),
            );
        }
    }
}

impl Visit for DirectVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(field, Value::Float(value).checked(field));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, Value::Int(value).checked(field));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, Value::Unsigned(value));
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.record(field, Value::wide(value).checked(field));
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.record(field, Value::wide_unsigned(value));
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
}

/// An event's metric fields and labels: the label values in one string.
#[derive(Default)]
struct Fields {
    metrics: Vec<(&'static str, CounterType, Value)>,
    /// Each label's name and where its value is in `text`.
    labels: Vec<(&'static str, usize, usize)>,
    text: String,
    /// Each property's name and where its value is in `properties_text`.
    properties: Vec<(&'static str, usize, usize)>,
    properties_text: String,
}

impl Fields {
    const fn new() -> Fields {
        Fields {
            metrics: Vec::new(),
            labels: Vec::new(),
            text: String::new(),
            properties: Vec::new(),
            properties_text: String::new(),
        }
    }

    fn clear(&mut self) {
        self.metrics.clear();
        self.labels.clear();
        self.text.clear();
        self.properties.clear();
        self.properties_text.clear();
    }

    /// The properties' names and values.
    fn properties(&self) -> impl Iterator<Item = (&str, &str)> {
        let text = &self.properties_text;
        self.properties.iter().map(|&(name, start, end)| (name, text.get(start..end).unwrap_or_default()))
    }

    fn record(&mut self, store: &Store, layer: u64, memo: &Memo) {
        if self.metrics.is_empty() {
            return;
        }
        if let Some(kept) = labels_kept(&self.labels, store.max_labels(), |&(name, _, _)| name) {
            store.count_labels_cut(self.metrics[0].0, self.labels.len());
            self.keep_labels(&kept);
        }
        for &(name, kind, value) in &self.metrics {
            with_cell(store, layer, name, kind, self, memo, |cell| value.record(cell, kind));
        }
    }

    /// Keeps the labels `kept` says, and only their values in `text`, each starting where the one before it
    /// ends: a cached handle knows the values by their ends and the whole text, so a cut value left in between
    /// would let `x = "pq", y = "r"` pass for `x = "p", y = "qr"` once `x` is cut.
    #[cold]
    fn keep_labels(&mut self, kept: &[bool]) {
        let mut removed = 0;
        let mut kept = kept.iter();
        self.labels.retain_mut(|(_, start, end)| {
            let (from, to) = (*start - removed, *end - removed);
            if kept.next().copied().unwrap_or(false) {
                (*start, *end) = (from, to);
                true
            } else {
                self.text.replace_range(from..to, "");
                removed += to - from;
                false
            }
        });
    }
}

/// The handle of the counter an event callsite recorded into first, kept with the callsite's plan in this
/// thread: an event of that counter and label values (every event, for a callsite with one metric field and
/// no labels) finds it there with no hash and no second lookup.
pub(crate) type Memo = Cell<Option<Arc<CachedCell>>>;

/// Runs `record` on the cell of the counter `name` with the labels of `fields`: the callsite's `memo`, else
/// this thread's cached one, else the store's (then cached, unless this thread's cache thrashes and turns it
/// away: see `thread_cache::admits`). An empty `memo` keeps the handle found. With properties, the counter's
/// properties are kept too (and neither cache serves it).
fn with_cell(
    store: &Store,
    layer: u64,
    name: &'static str,
    kind: CounterType,
    fields: &Fields,
    memo: &Memo,
    record: impl Fn(&CounterCell),
) {
    let labels = EventLabels { labels: &fields.labels, text: &fields.text };
    let serves = |c: &Arc<CachedCell>| c.serves_event(kind, name, labels);
    // A counter with properties keeps them at every event: no cache serves it.
    let cacheable = fields.properties.is_empty();
    if cacheable {
        let memoed = memo.take();
        if let Some(handle) = memoed.as_ref().filter(|handle| serves(handle)) {
            record(&handle.cell);
            return memo.set(memoed);
        }
        // A handle of other label values stays; a retired one goes, for the next handle found to replace it.
        memo.set(memoed.filter(|handle| !handle.cell.is_retired()));
    }
    // Past the memo: the cache's hash, worked out once for the lookup and the insert.
    let hash = fields.labels.iter().fold(name_hash(name), |hash, &(label, start, end)| {
        text_hash(hash ^ name_hash(label), fields.text.get(start..end).unwrap_or_default())
    });
    let found = |c: &Arc<CachedCell>| {
        record(&c.cell);
        keep_first(memo, c);
    };
    if cacheable && thread_cache::lookup(&CACHE, layer, hash, serves, found).is_some() {
        return;
    }
    let (cell, kind) = store_cell(store, name, kind, fields, cacheable);
    record(&cell);
    // A thread cycling through more counters than its cache holds: most misses are turned away, served uncached.
    if cacheable && !cell.is_retired() && thread_cache::admits(&CACHE, hash) {
        let make = |evicted| CachedCell::reuse_for_event(evicted, cell, kind, name, labels);
        thread_cache::insert_with(&CACHE, layer, hash, make, |c| keep_first(memo, c));
    }
}

/// The store's cell for the counter `name` with the labels of `fields` (a miss of both caches), and the type
/// a handle to it is cached as. An existing counter is found by its parts, with no key built (most misses: a
/// thread cycling through more counters than its cache holds); a new one, or one with properties (kept by key,
/// so never `cacheable`), with a key built in reused buffers. Out of line: not part of a hit's code.
#[inline(never)]
fn store_cell(
    store: &Store,
    name: &'static str,
    kind: CounterType,
    fields: &Fields,
    cacheable: bool,
) -> (Arc<CounterCell>, CounterType) {
    let labels_text =
        fields.labels.iter().map(|&(label, start, end)| (label, fields.text.get(start..end).unwrap_or_default()));
    if cacheable {
        if let Some(cell) = store.existing_by_parts(name, labels_text.clone(), kind, EitherSampled) {
            return (cell, kind);
        }
    }
    let key = key_buffers::key(key_buffers::Name::Static(name), labels_text);
    // As the cache's hits: a histogram's samples go into the name's sampled counter of either type (one a
    // `metrics` histogram described with a time unit made an Interval), never replacing it, and scaled as its
    // samples are. A new one is what a `metrics` histogram of the name would get.
    let (kind, scale) = if kind == CounterType::Statistics { store.histogram_kind(name) } else { (kind, 1.0) };
    let cell = store.scaled_cell(&key, kind, scale);
    // Before the value is recorded, so that the period holding it has them.
    if !fields.properties.is_empty() {
        store.set_properties(&key, &cell, fields.properties());
    }
    (cell, kind)
}

/// Keeps `handle` in `memo` if it is empty.
fn keep_first(memo: &Memo, handle: &Arc<CachedCell>) {
    let kept = memo.take();
    memo.set(kept.or_else(|| Some(Arc::clone(handle))));
}

/// A hash of a metric's or label's name, a field name: `'static`, so its address identifies it, with no hashing
/// of text.
pub(super) fn name_hash(name: &'static str) -> u64 {
    (name.as_ptr() as u64 ^ name.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `hash` mixed with a label value's text, for the per-thread cache (a hit compares the text).
#[inline]
pub(super) fn text_hash(mut hash: u64, part: &str) -> u64 {
    const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunks = part.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(MIX);
    }
    hash = (hash.rotate_left(5) ^ tail_word(chunks.remainder())).wrapping_mul(MIX);
    (hash.rotate_left(5) ^ part.len() as u64).wrapping_mul(MIX)
}

/// The last (fewer than 8) bytes of a text gathered into a word by at most two loads, not byte by byte: two
/// overlapping 4-byte loads, or the first, middle and last byte; with the length mixed in after, different
/// tails give different words.
#[inline]
fn tail_word(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let half = |at: usize| {
        bytes.get(at..at + 4).map_or(0, |w| u64::from(u32::from_le_bytes(w.try_into().unwrap_or_default())))
    };
    let byte = |at: usize| bytes.get(at).copied().map_or(0, u64::from);
    match n {
        4.. => half(0) | half(n - 4) << 32,
        1..=3 => byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16,
        0 => 0,
    }
}

/// The field-name prefixes that make a field a metric (tracing-opentelemetry's names), and the counter type each
/// makes.
const METRIC_PREFIXES: [(&str, CounterType); 4] = [
    ("monotonic_counter.", CounterType::Increment),
    ("counter.", CounterType::Increment),
    ("histogram.", CounterType::Statistics),
    ("gauge.", CounterType::LastValue),
];

/// The kind of counter a field name asks for, and the counter's name (after the prefix).
fn metric_field(field: &'static str) -> Option<(CounterType, &'static str)> {
    let (kind, name) = METRIC_PREFIXES.iter().find_map(|&(prefix, kind)| Some((kind, field.strip_prefix(prefix)?)))?;
    (!name.is_empty()).then_some((kind, name))
}

/// What each of a callsite's first 32 fields is, worked out once: [`FieldRoles::LABEL`], [`FieldRoles::MESSAGE`],
/// or a metric: [`FieldRoles::METRIC`] plus its place among the callsite's first four metrics, whose kinds and
/// names are kept (an event then reads no field name), or [`FieldRoles::MORE_METRICS`] past them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldRoles {
    roles: [u8; 32],
    metrics: [(CounterType, &'static str); 4],
}

impl FieldRoles {
    const LABEL: u8 = 0;
    const MESSAGE: u8 = 1;
    const METRIC: u8 = 2;
    /// A metric past the callsite's fourth: its kind and name are worked out from the field's name each time.
    const MORE_METRICS: u8 = Self::METRIC + 4;

    fn of(meta: &tracing::Metadata<'static>) -> FieldRoles {
        let mut known = FieldRoles { roles: [Self::LABEL; 32], metrics: [(CounterType::Increment, ""); 4] };
        let mut metrics = 0;
        for (role, field) in known.roles.iter_mut().zip(meta.fields()) {
            *role = match metric_field(field.name()) {
                Some(metric) if metrics < known.metrics.len() => {
                    known.metrics[metrics] = metric;
                    metrics += 1;
                    Self::METRIC + (metrics - 1) as u8
                }
                Some(_) => Self::MORE_METRICS,
                None if field.name() == "message" => Self::MESSAGE,
                None => Self::LABEL,
            };
        }
        known
    }

    /// What `field` is: from the table for a callsite's first 32 fields, from its name past them.
    fn role(&self, field: &Field) -> u8 {
        self.roles.get(field.index()).copied().unwrap_or_else(|| match metric_field(field.name()) {
            Some(_) => Self::MORE_METRICS,
            None if field.name() == "message" => Self::MESSAGE,
            None => Self::LABEL,
        })
    }

    /// Whether `field` is the event's `message`.
    #[inline]
    fn is_message(&self, field: &Field) -> bool {
        self.roles.get(field.index()).map_or(field.name() == "message", |&role| role == Self::MESSAGE)
    }

    /// The counter `field` records into (its kind and name), if it is a metric field.
    #[allow(
        clippy::inline_always,
        reason = "one of the calls of an unlabelled metric event, inlined (see `DirectVisitor`)"
    )]
    #[inline(always)]
    fn metric(&self, field: &Field) -> Option<(CounterType, &'static str)> {
        match self.roles.get(field.index()) {
            Some(&role) if role < Self::METRIC => None,
            Some(&role) if role < Self::MORE_METRICS => self.metrics.get(usize::from(role - Self::METRIC)).copied(),
            _ => metric_field(field.name()),
        }
    }
}

/// What a layer does with the events of one callsite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventPlan {
    /// An ERROR event of a target that is not excluded: it marks its span.
    pub(crate) error: bool,
    /// A metric event the layer records.
    pub(crate) metric: bool,
    /// It has fields other than its metrics and `message` (labels or properties).
    pub(crate) labelled: bool,
    /// What each of its fields is.
    pub(crate) roles: FieldRoles,
}

impl EventPlan {
    /// The plan for events of `meta`'s callsite: `error` and `metric` say whether the layer wants them (level,
    /// target) as an ERROR and as a metric event, if they are one.
    pub(crate) fn of(meta: &'static tracing::Metadata<'static>, error: bool, metric: bool) -> EventPlan {
        let roles = FieldRoles::of(meta);
        let has = |wanted: fn(u8) -> bool| meta.fields().iter().any(|f| wanted(roles.role(&f)));
        EventPlan {
            error,
            metric: metric && has(|role| role >= FieldRoles::METRIC),
            labelled: has(|role| role == FieldRoles::LABEL),
            roles,
        }
    }
}

/// A callsite's plan in this thread's cache, and the handle its events recorded into first.
struct KnownCallsite {
    callsite: Identifier,
    plan: EventPlan,
    memo: Memo,
}

thread_local! {
    static PLANS: RefCell<Slots<KnownCallsite>> = const { RefCell::new(Slots::new(64, 1024)) };
}

/// Runs `act` with what `layer` decided about events of `callsite` in this thread (deciding it with `decide`
/// the first time) and the callsite's [`Memo`].
#[inline]
pub(crate) fn with_event_plan<R>(
    layer: u64,
    callsite: Identifier,
    decide: impl FnOnce() -> EventPlan,
    act: impl FnOnce(&EventPlan, &Memo) -> R,
) -> R {
    let hash = span_cache::hash(&callsite);
    let mut act = Some(act);
    let found = thread_cache::lookup(
        &PLANS,
        layer,
        hash,
        |known| known.callsite == callsite,
        // Inlined into the lookup (with `act`, which callers mark the same way): otherwise two closure calls
        // were about a tenth of a metric event's time.
        #[inline(always)]
        |known: &KnownCallsite| act.take().map(|act| act(&known.plan, &known.memo)),
    );
    if let Some(Some(done)) = found {
        return done;
    }
    let make = |_| KnownCallsite { callsite, plan: decide(), memo: Memo::default() };
    let done = thread_cache::insert_with(&PLANS, layer, hash, make, |known: &KnownCallsite| {
        act.take().map(|act| act(&known.plan, &known.memo))
    });
    done.unwrap_or_else(|| unreachable!("a callsite not found in the cache is acted on once it is"))
}

#[derive(Clone, Copy)]
enum Value {
    Int(i64),
    Unsigned(u64),
    Float(f64),
    /// Refused by the front-end (a negative `monotonic_counter.`): counted, not recorded.
    Refused,
}

/// The prefix of the fields whose values must not be negative (tracing-opentelemetry's monotonic counters).
const MONOTONIC: &str = "monotonic_counter.";

impl Value {
    /// An `i128` field's value: exact while it fits an `i64` or a `u64`, else as a float (which a counter
    /// saturates and counts).
    fn wide(value: i128) -> Value {
        i64::try_from(value)
            .map(Value::Int)
            .or_else(|_| u64::try_from(value).map(Value::Unsigned))
            .unwrap_or(Value::Float(value as f64))
    }

    /// A `u128` field's value, as [`Value::wide`].
    fn wide_unsigned(value: u128) -> Value {
        u64::try_from(value).map_or(Value::Float(value as f64), Value::Unsigned)
    }

    /// The value, refused when it is negative and `field` is a monotonic counter's (tracing-opentelemetry
    /// documents those as non-negative: a negative one is a mistake, not a decrement).
    #[inline]
    fn checked(self, field: &Field) -> Value {
        let negative = match self {
            Value::Int(v) => v < 0,
            Value::Float(v) => v < 0.0,
            Value::Unsigned(_) | Value::Refused => false,
        };
        if negative && field.name().starts_with(MONOTONIC) {
            Value::Refused
        } else {
            self
        }
    }

    /// Records the value into `cell`, a counter of type `kind`.
    #[allow(
        clippy::inline_always,
        reason = "one of the calls of an unlabelled metric event, inlined (see `DirectVisitor`)"
    )]
    #[inline(always)]
    fn record(self, cell: &CounterCell, kind: CounterType) {
        if let Value::Refused = self {
            return cell.reject();
        }
        match kind {
            CounterType::Increment => match self {
                Value::Int(v) => cell.add(v),
                Value::Unsigned(v) => cell.add_unsigned(v),
                Value::Float(v) => cell.add_f64(v),
                Value::Refused => {}
            },
            // In the unit the cell's samples are kept in (milliseconds for a histogram described with a time unit).
            CounterType::Statistics | CounterType::Interval => cell.sample_scaled(self.as_f64()),
            _ => cell.set_last(self.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Unsigned(v) => v as f64,
            Value::Float(v) => v,
            // Never recorded (see `Value::record`); not a number if it were.
            Value::Refused => f64::NAN,
        }
    }
}

/// Collects an event's metric fields and its other fields (as labels, or properties when allow-listed).
struct MetricVisitor<'a> {
    properties_allowed: &'a [String],
    roles: &'a FieldRoles,
    fields: &'a mut Fields,
}

impl MetricVisitor<'_> {
    fn value(&mut self, field: &Field, value: Value) -> bool {
        match self.roles.metric(field) {
            Some((kind, name)) => {
                self.fields.metrics.push((name, kind, value));
                true
            }
            None => false,
        }
    }

    /// A label (or property) whose value `write` appends to a string.
    fn label(&mut self, field: &Field, write: impl FnOnce(&mut String) -> fmt::Result) {
        // Writing into a `String` does not fail.
        if self.properties_allowed.iter().any(|p| p == field.name()) {
            let start = self.fields.properties_text.len();
            let _ = write(&mut self.fields.properties_text);
            self.fields.properties.push((field.name(), start, self.fields.properties_text.len()));
        } else if !self.roles.is_message(field) {
            let start = self.fields.text.len();
            let _ = write(&mut self.fields.text);
            // An empty value is no dimension (CloudWatch refuses one, with the whole datum), as for spans.
            if self.fields.text.len() > start {
                self.fields.labels.push((field.name(), start, self.fields.text.len()));
            }
        }
    }
}

impl Visit for MetricVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if !self.value(field, Value::Float(value).checked(field)) {
            self.label(field, |text| write!(text, "{value}"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if !self.value(field, Value::Int(value).checked(field)) {
            self.label(field, |text| write!(text, "{value}"));
        }
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        if !self.value(field, Value::wide(value).checked(field)) {
            self.label(field, |text| write!(text, "{value}"));
        }
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        if !self.value(field, Value::wide_unsigned(value)) {
            self.label(field, |text| write!(text, "{value}"));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if !self.value(field, Value::Unsigned(value)) {
            self.label(field, |text| write!(text, "{value}"));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        // A metric field with a value that is not a number is ignored, as without labels; never a dimension.
        if self.roles.metric(field).is_none() {
            self.label(field, |text| write!(text, "{value}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.roles.metric(field).is_none() {
            self.label(field, |text| text.write_str(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.roles.metric(field).is_none() {
            self.label(field, |text| write!(text, "{value:?}"));
        }
    }
}

/// Reads the `counter` field of a span's fields into `text` (this thread's buffer, taken at the first `counter`
/// field: fields without one leave it alone): `range` is where the name is in it (a non-empty one).
struct NameOverride {
    text: Option<String>,
    range: Option<std::ops::Range<usize>>,
}

impl NameOverride {
    /// The buffer, emptied. Taken out of [`NAME`] while in use: a span made by a field's `Debug` gets a buffer
    /// of its own.
    fn text(&mut self) -> &mut String {
        let text = self.text.get_or_insert_with(|| NAME.try_with(Cell::take).unwrap_or_default());
        text.clear();
        text
    }
}

impl Visit for NameOverride {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == COUNTER_FIELD {
            self.text().push_str(value);
            self.range = (!value.is_empty()).then_some(0..value.len());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == COUNTER_FIELD {
            let text = self.text();
            // Writing into a `String` does not fail.
            let _ = write!(text, "{value:?}");
            let start = text.len() - text.trim_start_matches('"').len();
            let end = text.trim_end_matches('"').len();
            self.range = (start < end).then_some(start..end);
        }
    }
}

thread_local! {
    /// The text of the last `counter` field a thread read, whose buffer serves the next one.
    static NAME: Cell<String> = const { Cell::new(String::new()) };
}

/// What `with` makes of the name the `counter` field of a new span's `fields` (or of a `span.record(..)`'s)
/// gives (`None`: an empty one), read into a buffer this thread reuses: no allocation once it has held a name
/// as long. `None` when the fields hold no `counter` field.
pub(crate) fn with_counter_field<R>(fields: &impl RecordFields, with: impl FnOnce(Option<&str>) -> R) -> Option<R> {
    let mut visitor = NameOverride { text: None, range: None };
    fields.record(&mut visitor);
    let text = visitor.text?;
    let result = with(visitor.range.and_then(|range| text.get(range)));
    let _ = NAME.try_with(|name| name.set(text));
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_that_differ_in_any_byte_hash_apart() {
        let values =
            ["", "2", "20", "200", "201", "300", "2000", "2001", "1001", "GET", "POST", "/items/7", "/items/8"];
        let mut values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        // Every length up to 17, differing only in the last byte, or only in the first.
        for n in 1..=17 {
            values.push("a".repeat(n));
            values.push(format!("{}b", "a".repeat(n - 1)));
            values.push(format!("b{}", "a".repeat(n - 1)));
        }
        values.sort();
        values.dedup();
        let mut hashes: Vec<u64> = values.iter().map(|v| text_hash(0, v)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), values.len(), "two of {values:?} hash alike");
    }
}
