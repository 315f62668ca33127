//! [`CountersLayer`]: a `tracing_subscriber::Layer` that times spans into Interval counters and turns metric
//! events into counters.
//!
//! - Every span that closes records its wall duration (creation to close, in ms) into the Interval counter
//!   `<target with :: as .>.<span name>.exec_time` (`orders::api` + `create_order` ->
//!   `orders.api.create_order.exec_time`). A span field `counter = "name"` replaces the base name, also when it
//!   is recorded after the span was made (`counter = tracing::field::Empty`, then `span.record("counter", ..)`
//!   once the name is known, as a route is after routing): the last name recorded before the span closes
//!   counts, and an empty one gives the callsite's own name back (each name recorded makes its counter, empty
//!   and not published if no span closes under it). A naming function can replace the rule. A span that saw an
//!   ERROR event also adds 1 to `<base>.errors`: the innermost span around the event that the layer times (an
//!   ERROR inside a DEBUG span or a span of an excluded target counts on the timed span around it).
//! - Events with fields named as tracing-opentelemetry does: `monotonic_counter.X` / `counter.X` add to the
//!   Increment counter `X` (a negative `monotonic_counter.` value is refused and counted in `values_rejected`;
//!   `counter.` ones may go down), `histogram.X` records into Statistics `X` (an Interval in milliseconds when
//!   `X` was described with a time unit), `gauge.X` sets LastValue `X`; integers of any width and floats are
//!   numbers. The event's other fields (not `message`) become dimensions, of at most 29 names (30 with
//!   InstanceID; 30 names without it; a name repeated counts once, its last value published); one with an empty
//!   value is none (CloudWatch refuses an empty dimension value).
//! - Only spans and metric events at INFO or above are acted on by default (`#[instrument]`'s level; each timed
//!   callsite becomes a billed CloudWatch metric): DEBUG and TRACE ones are not. `layer_builder().level(..)`
//!   changes it. The layer gives no `max_level_hint` (a hint from a layer without a filter would silence other
//!   layers' debug logs); give it a per-layer filter (`.with_filter(LevelFilter::INFO)`) for DEBUG and TRACE
//!   callsites to cost nothing when no other layer wants them.
//! - Spans and events of the targets excluded by default (the AWS SDK, hyper, h2, rustls, tower, tokio, this
//!   crate) are ignored, so a dump never creates more data to dump. Targets match on module boundaries
//!   (`hyper` is not `hyperion`); a `log` record bridged by tracing-log is judged by its own target (its
//!   `log.target` field), not by `log`. The layer filters for itself, once per callsite and thread (cached), rather
//!   than through a per-layer `Filter`: `tracing_subscriber`'s `Filtered` looks the span up again on every
//!   enter, exit and close, which costs more than the layer's own work. It never disables a callsite for other
//!   layers. To choose spans the tracing-subscriber way, give it a per-layer filter:
//!   `counters.layer().with_filter(Targets::new().with_target("my_app", Level::INFO))`.
//! - An open span's start is kept in the layer's table of open spans (8192 entries, about 192 KiB, allocated at
//!   the first span), not in the span's extensions: a span costs no lookup and no allocation. Spans with
//!   dimensions, properties or a `counter` field are kept with their values in a second table (2048 entries,
//!   about 230 KiB, allocated at the first such span), and allocate nothing either once the thread has seen
//!   values as long and their counters (a thread reuses the labels of the spans it closes, and hands its
//!   surplus, a batch at a time, to threads that make more spans than they close, as a runtime's workers do when
//!   tasks move between them; at most 1024 labels wait there). A span past a full bucket of its table uses its
//!   extensions. The layer keeps
//!   each callsite's counters for its life (a few hundred bytes a callsite, and as much again each time the
//!   counters are cleared or the name is taken by another type).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use dashmap::DashMap;

use metrics::Key;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::frontend::Owner;
use crate::model::CounterType;
use crate::publishing::is_publishing;
use crate::store::cell::CounterCell;
use crate::store::{Fit, Store};
use events::EventPlan;
use open_spans::{CallsiteCells, OpenSpans};
use span_cache::{Callsites, SpanCells};

mod builder;
pub(crate) use builder::target_matches;
mod events;
mod key_buffers;
mod open_spans;
mod span_cache;
mod span_fields;
mod spans_with_fields;
#[cfg(test)]
mod tests;

pub use builder::{CountersLayerBuilder, NamingFn, DEFAULT_EXCLUDED_TARGETS};
pub use events::COUNTER_FIELD;
pub use span_fields::DEFAULT_SPAN_DIMENSIONS;
use span_fields::{LabelVisitor, SpanLabels};
use spans_with_fields::SpansWithFields;

/// The field in which tracing-log's bridged `log` records carry their own target.
const LOG_TARGET: &str = "log.target";

/// One layer's timing of a span, from creation to close.
struct SpanTiming {
    /// The layer's id: several counters layers can time the same span.
    layer: u64,
    /// A raw reading of the layer's clock.
    start: u64,
    cells: Arc<SpanCells>,
    error: bool,
    /// The span's allow-listed field values, for a callsite that has such fields.
    labels: Option<SpanLabels>,
    /// The span's property field values, for a callsite that has such fields.
    properties: Option<SpanLabels>,
}

impl SpanTiming {
    /// Gives its labels' buffers to this thread's next spans.
    fn recycle(mut self) {
        self.labels.take().into_iter().chain(self.properties.take()).for_each(SpanLabels::recycle);
    }
}

/// Kept in a span's extensions: the timing of each counters layer of the subscriber (extensions hold one value
/// per type, so the layers share this one). The first layer's timing is inline: one layer costs no allocation.
struct SpanTimings {
    first: SpanTiming,
    more: Vec<SpanTiming>,
}

impl SpanTimings {
    fn holds(&self, layer: u64) -> bool {
        self.first.layer == layer || self.more.iter().any(|t| t.layer == layer)
    }

    fn get_mut(&mut self, layer: u64) -> Option<&mut SpanTiming> {
        std::iter::once(&mut self.first).chain(self.more.iter_mut()).find(|t| t.layer == layer)
    }
}

/// The layer itself; see the module docs. Made by `counters.layer()` or `counters.layer_builder().build()`.
pub struct CountersLayer {
    store: Arc<Store>,
    _owner: Owner,
    naming: Option<NamingFn>,
    excluded: Vec<String>,
    level: Level,
    span_dimensions: Vec<String>,
    properties: Vec<String>,
    time_spans: bool,
    count_events: bool,
    callsites: Arc<Callsites>,
    /// Every callsite's cells, by the index open spans refer to them with.
    callsite_cells: CallsiteCells,
    /// The timings of open spans without dimensions, properties or a `counter` field.
    open: OpenSpans,
    /// The timings and field values of open spans with dimensions, properties or a `counter` field.
    with_fields: SpansWithFields<SpanTiming>,
    /// Open spans timed in their extensions instead (past a full bucket of either table): while there are none,
    /// closing a span in neither table costs no lookup of the span.
    in_extensions: AtomicUsize,
    /// Whether a span of a callsite that declares a `counter` field was timed: until then, a `span.record(..)`
    /// is not read for a new name.
    nameable_spans: AtomicBool,
    /// Tells this layer's entries apart in the per-thread callsite caches (never reused, unlike an address).
    id: u64,
    /// The time stamp counter where it is reliable (a read costs about 11 ns on the benches' VM, against about
    /// 30 for `Instant::now` through its vDSO clock), else the OS's monotonic clock.
    clock: quanta::Clock,
    /// The clock's scale as one factor: elapsed ticks times this is milliseconds (one multiplication where
    /// `Clock::delta_as_nanos` does a 128-bit one and a shift).
    ms_per_tick: f64,
}

impl CountersLayer {
    fn is_excluded(&self, target: &str) -> bool {
        self.excluded.iter().any(|pattern| target_matches(target, pattern))
    }

    /// Whether the layer acts on a span or event of `meta`'s level at all.
    fn wants_level(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.level
    }

    /// What the layer does with events of `meta`'s callsite (an ERROR marks its span; a metric event is
    /// recorded), for targets that are not excluded: worked out once per callsite and thread.
    fn decide_event_plan(&self, meta: &'static Metadata<'static>) -> EventPlan {
        let wanted = |level_ok: bool| level_ok && !self.is_excluded(meta.target());
        let error = wanted(self.time_spans && *meta.level() == Level::ERROR);
        EventPlan::of(meta, error, self.count_events && wanted(self.wants_level(meta)))
    }

    /// Whether `event` is a `log` record bridged by tracing-log (target `log`, which no exclusion names) whose own
    /// target, in its `log.target` field, is excluded: a hyper or AWS SDK error logged through the `log` crate
    /// does not mark the application's span as failed. Read per event, only for ERROR events (rare).
    fn is_excluded_log_record(&self, event: &Event<'_>) -> bool {
        struct LogTarget<'a>(&'a CountersLayer, bool);
        impl Visit for LogTarget<'_> {
            fn record_str(&mut self, field: &Field, value: &str) {
                if field.name() == LOG_TARGET {
                    self.1 = self.0.is_excluded(value);
                }
            }
            fn record_debug(&mut self, _field: &Field, _value: &dyn fmt::Debug) {}
        }
        let meta = event.metadata();
        if meta.target() != "log" || meta.fields().field(LOG_TARGET).is_none() {
            return false;
        }
        let mut target = LogTarget(self, false);
        event.record(&mut target);
        target.1
    }

    /// Marks the innermost span `event` is in that this layer times as having seen an ERROR: spans it does not
    /// time (of an excluded target, below its level, or disabled by a per-layer filter) are passed over, as a
    /// per-layer filter passes over the spans it disables.
    fn mark_error<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.is_excluded_log_record(event) {
            return;
        }
        // ERROR events are rare enough for the lookups.
        let Some(leaf) = ctx.event_span(event) else { return };
        for span in leaf.scope() {
            let id = span.id().into_u64();
            if self.open.mark_error(id) || self.with_fields.update(id, |timing| timing.error = true).is_some() {
                return;
            }
            if self.in_extensions.load(Relaxed) > 0 {
                let mut extensions = span.extensions_mut();
                if let Some(timing) = extensions.get_mut::<SpanTimings>().and_then(|t| t.get_mut(self.id)) {
                    timing.error = true;
                    return;
                }
            }
        }
    }

    fn base_name(&self, meta: &Metadata<'_>) -> String {
        match &self.naming {
            Some(naming) => naming(meta),
            // tower-http's TraceLayer with its default span maker.
            None if meta.target() == "tower_http::trace::make_span" && meta.name() == "request" => {
                "http.request".to_owned()
            }
            None => format!("{}.{}", meta.target().replace("::", "."), meta.name()),
        }
    }

    /// The cells of spans named `base`; kept at `index` of `callsite_cells` when it is given.
    fn new_cells(&self, base: String, meta: &Metadata<'_>, index: Option<u32>) -> Arc<SpanCells> {
        let labelled = meta.fields().iter().any(|f| self.span_dimensions.iter().any(|d| d == f.name()));
        let with_properties = meta.fields().iter().any(|f| self.properties.iter().any(|p| p == f.name()));
        let exec_name = format!("{base}.exec_time");
        // A histogram's counter of the name (Statistics) takes the spans' samples too, as a histogram takes the
        // spans' counter.
        let exec_time = self.store.scaled_cell(&Key::from_name(exec_name.clone()), CounterType::Interval, 1.0);
        let errors_name = format!("{base}.errors");
        let errors = std::sync::OnceLock::new();
        Arc::new(SpanCells { base, exec_name, errors_name, labelled, with_properties, exec_time, errors, index })
    }

    /// The cells of spans of `meta`'s callsite that their `counter` field names `name`: this thread's, or new
    /// ones (cached in this thread until the store retires a cell: the name's counters may have been cleared).
    fn named_cells(&self, name: &str, meta: &'static Metadata<'static>) -> Arc<SpanCells> {
        let retirements = self.store.retirements();
        let callsite = meta.callsite();
        let hash = events::text_hash(span_cache::hash(&callsite), name);
        if let Some(cells) = span_cache::named(self.id, &callsite, name, hash, retirements) {
            return cells;
        }
        let cells = self.new_cells(name.to_owned(), meta, None);
        span_cache::remember_named(self.id, callsite, hash, retirements, Arc::clone(&cells));
        cells
    }

    /// The cells a `span.record(..)` of the span's `counter` field names: those of the named counter, or the
    /// callsite's own for an empty name; `None` when the record holds no `counter` field or this layer does not
    /// time the span (`in_table`: it is in the table of spans with fields; else its extensions are read, only
    /// then). The span's callsite declares the field, since the record has it.
    fn renamed_cells<S>(
        &self,
        id: &Id,
        in_table: bool,
        values: &tracing::span::Record<'_>,
        ctx: &Context<'_, S>,
    ) -> Option<Arc<SpanCells>>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        events::with_counter_field(values, |name| {
            let span = ctx.span(id)?;
            // A span this layer times is of a level and target it wants.
            if !(in_table || span.extensions().get::<SpanTimings>().is_some_and(|t| t.holds(self.id))) {
                return None;
            }
            let meta = span.metadata();
            match name {
                Some(name) => Some(self.named_cells(name, meta)),
                None => self.plan_cells(self.callsite_plan(meta)),
            }
        })
        .flatten()
    }

    /// The cells a callsite's `plan` times its spans into (`None` for a callsite the layer ignores).
    fn plan_cells(&self, plan: Plan) -> Option<Arc<SpanCells>> {
        match plan {
            Plan::Ignore => None,
            Plan::Table(index) => self.callsite_cells.get(index).map(Arc::clone),
            Plan::Extensions(cells) => Some(cells),
        }
    }

    /// Keeps a closing span's property values for the period of its counter `key`, whose cell is `cell` (see
    /// [`Store::set_properties`]): before its sample, so that the period holding it has them.
    fn record_properties(&self, timing: &SpanTiming, key: &Key, cell: &CounterCell) {
        if let Some(properties) = timing.properties.as_ref().filter(|p| !p.is_empty()) {
            self.store.set_properties(key, cell, properties.pairs_iter());
        }
    }

    /// Records a closing span with dimensions into the counter of its labels (and counts its error there). The
    /// counters of label values this thread closed a span with lately are found in a per-thread cache, by the
    /// values' text: no `Key` is built and nothing is allocated; the others are looked up in the store.
    fn record_labelled(&self, timing: &SpanTiming, span_labels: &SpanLabels, elapsed_ms: f64) {
        let (cells, error) = (&timing.cells, timing.error);
        let max_labels = self.store.max_labels();
        let cacheable = span_labels.len() <= max_labels && timing.properties.as_ref().is_none_or(SpanLabels::is_empty);
        let timed = cacheable
            && span_labels.with_cached_cell(self.id, CounterType::Interval, &cells.exec_name, |cell| {
                cell.sample_unless_retired(elapsed_ms)
            }) == Some(true);
        let counted = !error
            || cacheable
                && span_labels.with_cached_cell(
                    self.id,
                    CounterType::Increment,
                    &cells.errors_name,
                    CounterCell::add_one_unless_retired,
                ) == Some(true);
        if timed && counted {
            return;
        }
        self.record_labelled_uncached(timing, span_labels, elapsed_ms, (timed, counted), cacheable);
    }

    /// The part of [`record_labelled`](Self::record_labelled) the thread's cache did not serve (whether the span
    /// was already `timed`, its error `counted`): the counters looked up in the store, then cached if `cacheable`
    /// and the cache admits them. An existing counter is found by its name and label values as they are, with no
    /// key built; otherwise the key is built in buffers reused from miss to miss: no allocation once they are
    /// large enough.
    #[cold]
    fn record_labelled_uncached(
        &self,
        timing: &SpanTiming,
        span_labels: &SpanLabels,
        elapsed_ms: f64,
        (timed, counted): (bool, bool),
        cacheable: bool,
    ) {
        let cells = &timing.cells;
        let max_labels = self.store.max_labels();
        if span_labels.len() > max_labels {
            self.store.count_labels_cut(&cells.base, span_labels.len());
        }
        // Open across a clear (the callsite's cells were retired meanwhile): a counter of another type that took
        // the name since is left alone, and the span's update refused and counted (on a retired cell), as for a
        // span without dimensions. Otherwise another type is replaced (pip's rule).
        let open_across_clear = cells.exec_time.is_retired();
        // An existing counter is found by its parts, with no key built; a new one (or one with properties, which
        // are kept by key) with a key built in reused buffers, handed back with the cell.
        let resolve = |kind, name: &str| {
            let labels = span_labels.named_values().take(max_labels);
            let existing =
                cacheable.then(|| self.store.existing_by_parts(name, labels.clone(), kind, Fit::EitherSampled));
            let (cell, key) = if let Some(cell) = existing.flatten() {
                (cell, None)
            } else {
                let key = key_buffers::key(key_buffers::Name::Copied(name), labels);
                let cell = if open_across_clear {
                    self.store.cell_after_retire(&key, kind, Fit::EitherSampled, &cells.exec_time)
                } else {
                    self.store.scaled_cell(&key, kind, 1.0)
                };
                (cell, Some(key))
            };
            if cacheable && !cell.is_retired() {
                span_labels.cache_cell(self.id, kind, name, &cell);
            }
            (cell, key)
        };
        if !timed {
            let (cell, key) = resolve(CounterType::Interval, &cells.exec_name);
            // A key is built for every counter with properties (they are not cacheable).
            if let Some(key) = &key {
                self.record_properties(timing, key, &cell);
            }
            cell.sample(elapsed_ms);
        } // the key dropped here: its buffers, for the next miss
        if !counted {
            // On the retired cell of a refused error, counted as a refused update (not an Interval's call).
            resolve(CounterType::Increment, &cells.errors_name).0.add(1);
        }
    }

    /// What to do with a new span of `meta`'s callsite: from this thread's recent callsites, its cache of
    /// callsites, or the map all threads share; looked up again once the store has retired any cell since (its
    /// counters may have been cleared or replaced). The recent callsites are read inline, the rest in a call.
    #[inline]
    fn callsite_plan(&self, meta: &'static Metadata<'static>) -> Plan {
        // Read before the lookups: a retirement during them makes the next span look the callsite up again.
        let retirements = self.store.retirements();
        match span_cache::recent(self.id, &meta.callsite(), retirements) {
            Some(span_cache::IGNORED) => Plan::Ignore,
            Some(index) => Plan::Table(index),
            None => self.cached_callsite_plan(meta, retirements),
        }
    }

    /// [`CountersLayer::callsite_plan`] past the thread's recent callsites.
    #[inline(never)]
    fn cached_callsite_plan(&self, meta: &'static Metadata<'static>, retirements: u64) -> Plan {
        let id = meta.callsite();
        let plan = |cells: Option<&Arc<SpanCells>>| match cells {
            None => Plan::Ignore,
            Some(cells) => cells.plain().map_or_else(|| Plan::Extensions(Arc::clone(cells)), Plan::Table),
        };
        let known = if let Some(known) = span_cache::get(self.id, &id, retirements, plan) {
            known
        } else {
            let cells = self.shared_callsite_cells(meta);
            let known = plan(cells.as_ref());
            span_cache::put(self.id, id.clone(), retirements, cells);
            known
        };
        // Kept among the thread's recent callsites when a span of it needs nothing but numbers.
        match known {
            Plan::Ignore => span_cache::remember(self.id, &id, retirements, span_cache::IGNORED),
            Plan::Table(index) if index != span_cache::IGNORED => {
                span_cache::remember(self.id, &id, retirements, index);
            }
            Plan::Table(_) | Plan::Extensions(_) => {}
        }
        known
    }

    /// The cells of a span callsite (`None` for an excluded target or level) from the map all threads share.
    fn shared_callsite_cells(&self, meta: &'static Metadata<'static>) -> Option<Arc<SpanCells>> {
        let id = meta.callsite();
        if let Some(cells) = self.callsites.get(&id) {
            match &*cells {
                None => return None,
                Some(cells) if !cells.exec_time.is_retired() => return Some(Arc::clone(cells)),
                Some(_) => {}
            }
        }
        let wanted = self.wants_level(meta) && !self.is_excluded(meta.target());
        let cells = wanted.then(|| {
            let base = self.base_name(meta);
            let kept = self.callsite_cells.push(|index| self.new_cells(base.clone(), meta, Some(index)));
            kept.unwrap_or_else(|| self.new_cells(base, meta, None))
        });
        self.callsites.insert(id, cells.clone());
        cells
    }

    /// Adds 1 to the span's `<base>.errors` counter (resolved once, again only if it was cleared or replaced).
    fn count_error(&self, cells: &SpanCells) {
        let key = || key_buffers::key(key_buffers::Name::Copied(&cells.errors_name), std::iter::empty());
        let cell = cells.errors.get_or_init(|| self.store.cell(&key(), CounterType::Increment));
        if cell.is_retired() {
            // Cleared (or replaced) while the span was open: into the counter that has the name now, unless
            // another type took it (then refused, and counted on the retired cell).
            self.store.cell_after_retire(&key(), CounterType::Increment, Fit::Exact, cell).add(1);
        } else {
            cell.add(1);
        }
    }
}

impl CountersLayerBuilder {
    /// The layer, ready for `registry().with(...)`.
    pub fn build(self) -> CountersLayer {
        let clock = quanta::Clock::new();
        CountersLayer {
            store: self.store,
            _owner: self.owner,
            naming: self.naming,
            excluded: self.excluded,
            level: self.level,
            span_dimensions: self.span_dimensions,
            properties: self.properties,
            time_spans: self.time_spans,
            count_events: self.count_events,
            callsites: Arc::new(DashMap::default()),
            callsite_cells: CallsiteCells::default(),
            open: OpenSpans::default(),
            with_fields: SpansWithFields::default(),
            in_extensions: AtomicUsize::new(0),
            nameable_spans: AtomicBool::new(false),
            id: crate::store::thread_cache::next_owner(),
            // Calibrated here, once, so that no span pays for it.
            ms_per_tick: ms_per_tick(&clock),
            clock,
        }
    }
}

/// Milliseconds per tick of `clock`: its scale, read from one long delta (exact to about 1e-12).
fn ms_per_tick(clock: &quanta::Clock) -> f64 {
    let ticks = 1u64 << 40;
    clock.delta_as_nanos(0, ticks) as f64 / ticks as f64 * 1e-6
}

impl CountersLayer {
    /// Records into the counter that has the span's name now (see [`Store::cell_after_retire`]).
    #[cold]
    fn record_after_clear(&self, cells: &SpanCells, elapsed_ms: f64) {
        self.cell_after_clear(cells).sample(elapsed_ms);
    }

    /// The cell of the counter that has the span's name now (see [`Store::cell_after_retire`]).
    #[cold]
    fn cell_after_clear(&self, cells: &SpanCells) -> Arc<CounterCell> {
        let key = key_buffers::key(key_buffers::Name::Copied(&cells.exec_name), std::iter::empty());
        self.store.cell_after_retire(&key, CounterType::Interval, Fit::EitherSampled, &cells.exec_time)
    }

    /// Takes this layer's timing out of a closing span's extensions (one map operation for a single counters
    /// layer); the other layers' timings stay.
    fn take_timing(&self, extensions: &mut tracing_subscriber::registry::ExtensionsMut<'_>) -> Option<SpanTiming> {
        let mut timings = extensions.remove::<SpanTimings>()?;
        let mine = if timings.first.layer == self.id {
            match timings.more.pop() {
                // Another layer's timing takes the inline place.
                Some(other) => Some(std::mem::replace(&mut timings.first, other)),
                None => return Some(timings.first),
            }
        } else {
            let i = timings.more.iter().position(|t| t.layer == self.id);
            i.map(|i| timings.more.swap_remove(i))
        };
        extensions.insert(timings);
        mine
    }
}

/// What the layer does with a new span of a callsite.
enum Plan {
    Ignore,
    /// Time it in the open-spans table, with the cells at this index.
    Table(u32),
    /// Time it with its field values (it has dimensions or properties): in the table of spans with fields, or in
    /// its extensions past a full bucket there.
    Extensions(Arc<SpanCells>),
}

impl CountersLayer {
    /// Times a new span with its field values: one with dimensions, properties or a `counter` field, or whose
    /// bucket of the plain spans' table is full. Kept in the table of spans with fields, or in the span's
    /// extensions past a full bucket there.
    fn time_with_fields<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>, cells: Arc<SpanCells>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let labels = cells.labelled.then(|| {
            let mut labels = SpanLabels::spare();
            attrs.record(&mut LabelVisitor { allowed: &self.span_dimensions, labels: &mut labels });
            labels
        });
        let properties = cells.with_properties.then(|| {
            let mut properties = SpanLabels::spare();
            attrs.record(&mut LabelVisitor { allowed: &self.properties, labels: &mut properties });
            properties
        });
        let timing = SpanTiming { layer: self.id, start: self.clock.raw(), cells, error: false, labels, properties };
        let Err(timing) = self.with_fields.insert(id.into_u64(), timing) else { return };
        let Some(span) = ctx.span(id) else { return timing.recycle() };
        let mut extensions = span.extensions_mut();
        self.in_extensions.fetch_add(1, Relaxed);
        // One map operation for the usual single counters layer; another layer's timings, if any, are kept.
        if let Some(mut others) = extensions.replace(SpanTimings { first: timing, more: Vec::new() }) {
            if let Some(timings) = extensions.get_mut::<SpanTimings>() {
                timings.more.push(others.first);
                timings.more.append(&mut others.more);
            }
        }
    }

    /// A `span.record(..)`'s allow-listed values: its dimensions and its properties, in spare labels.
    fn recorded_values(&self, values: &tracing::span::Record<'_>) -> (SpanLabels, SpanLabels) {
        let record = |allowed: &[String]| {
            if allowed.is_empty() {
                return SpanLabels::default();
            }
            let mut labels = SpanLabels::spare();
            values.record(&mut LabelVisitor { allowed, labels: &mut labels });
            labels
        };
        (record(&self.span_dimensions), record(&self.properties))
    }

    /// Milliseconds since the clock read `start` (0 if the clock reads earlier now, as `delta_as_nanos` gives).
    #[inline]
    fn elapsed_ms(&self, start: u64) -> f64 {
        // As an i64: one conversion instruction where a u64 takes several (ticks never reach 2^63).
        let ticks = i64::try_from(self.clock.raw().saturating_sub(start)).unwrap_or(i64::MAX);
        ticks as f64 * self.ms_per_tick
    }

    /// Records a span closed out of the open-spans table.
    fn close_from_table(&self, open: open_spans::OpenSpan) {
        let Some(cells) = self.callsite_cells.get(open.cells) else { return };
        let elapsed_ms = self.elapsed_ms(open.start);
        if !cells.exec_time.sample_unless_retired(elapsed_ms) {
            self.record_after_clear(cells, elapsed_ms);
        }
        if open.error {
            self.count_error(cells);
        }
    }

    /// Records a span closed out of its extensions.
    fn record_closed(&self, timing: &SpanTiming, elapsed_ms: f64) {
        if let Some(labels) = timing.labels.as_ref().filter(|l| !l.is_empty()) {
            self.record_labelled(timing, labels, elapsed_ms);
            return;
        }
        // Properties go with the counter that takes the sample: the name's counter now, when the callsite's was
        // cleared or refused while the span was open.
        let cells = &timing.cells;
        let now = (timing.properties.is_some() && cells.exec_time.is_retired()).then(|| self.cell_after_clear(cells));
        if timing.properties.is_some() {
            let key = key_buffers::key(key_buffers::Name::Copied(&cells.exec_name), std::iter::empty());
            self.record_properties(timing, &key, now.as_ref().unwrap_or(&cells.exec_time));
        }
        match now {
            Some(cell) => cell.sample(elapsed_ms),
            // The counters were cleared (or the name taken by another type) while the span was open: record into
            // the counter that has the name now.
            None if !cells.exec_time.sample_unless_retired(elapsed_ms) => self.record_after_clear(cells, elapsed_ms),
            None => {}
        }
        if timing.error {
            self.count_error(cells);
        }
    }
}

impl<S> Layer<S> for CountersLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// Always: for a layer without a per-layer filter, `never` would disable the callsite for every other layer
    /// of the subscriber too (a layer's interest is a veto). The layer ignores what it does not want per
    /// callsite, once; give it a per-layer filter (`.with_filter(..)`) for the subscriber to skip callsites that
    /// no layer wants.
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::always()
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !self.time_spans || is_publishing() {
            return;
        }
        let meta = attrs.metadata();
        // A span whose callsite declares a `counter` field can be named (or renamed) by `span.record(..)` until
        // it closes: it is kept with the spans with fields, where its cells can change.
        let nameable =
            meta.fields().field(COUNTER_FIELD).is_some() && self.wants_level(meta) && !self.is_excluded(meta.target());
        let named = if nameable {
            if !self.nameable_spans.load(Relaxed) {
                self.nameable_spans.store(true, Relaxed);
            }
            events::with_counter_field(attrs, |name| name.map(|name| self.named_cells(name, meta))).flatten()
        } else {
            None
        };
        let cells = match named {
            Some(cells) => cells,
            None => match self.callsite_plan(meta) {
                Plan::Ignore => return,
                Plan::Table(index) if !nameable && self.open.insert(id.into_u64(), self.clock.raw(), index) => return,
                // A span that may be named later, or one whose bucket is full: with the spans with fields.
                plan => match self.plan_cells(plan) {
                    Some(cells) => cells,
                    None => return,
                },
            },
        };
        self.time_with_fields(attrs, id, &ctx, cells);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        events::with_event_plan(
            self.id,
            meta.callsite(),
            || self.decide_event_plan(meta),
            // Inlined into the plan's lookup (see `with_event_plan`).
            #[inline(always)]
            |plan, memo| {
                if !(plan.error || plan.metric) || is_publishing() {
                    return;
                }
                if plan.error {
                    self.mark_error(event, &ctx);
                }
                if plan.metric {
                    if plan.labelled {
                        events::record_metric_event(&self.store, self.id, event, &self.properties, &plan.roles, memo);
                    } else {
                        events::record_unlabelled_metric_event(&self.store, self.id, event, &plan.roles, memo);
                    }
                }
            },
        );
    }

    fn on_record(&self, id: &Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        let in_table = self.with_fields.holds(id.into_u64());
        if !in_table && self.in_extensions.load(Relaxed) == 0 {
            return;
        }
        // Recorded with no lock held (a field's `Debug` may log, and an ERROR event marks this span), then
        // copied in under the entry's lock or the span's extensions.
        let (labels, properties) = self.recorded_values(values);
        // A `counter` field recorded now names the span from here on: its cells, found with no lock held.
        let renamed =
            if self.nameable_spans.load(Relaxed) { self.renamed_cells(id, in_table, values, &ctx) } else { None };
        let merge = |timing: &mut SpanTiming| {
            timing.labels.iter_mut().for_each(|l| l.merge(&labels));
            timing.properties.iter_mut().for_each(|p| p.merge(&properties));
            if let Some(cells) = &renamed {
                timing.cells = Arc::clone(cells);
            }
        };
        if labels.is_empty() && properties.is_empty() && renamed.is_none() {
            // Nothing to copy.
        } else if in_table {
            self.with_fields.update(id.into_u64(), merge);
        } else if let Some(span) = ctx.span(id) {
            if let Some(timing) = span.extensions_mut().get_mut::<SpanTimings>().and_then(|t| t.get_mut(self.id)) {
                merge(timing);
            }
        }
        SpanLabels::recycle(labels);
        SpanLabels::recycle(properties);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(open) = self.open.take(id.into_u64()) {
            self.close_from_table(open);
            return;
        }
        let timing = match self.with_fields.take(id.into_u64()) {
            Some(timing) => timing,
            None if self.in_extensions.load(Relaxed) == 0 => return,
            None => {
                let Some(span) = ctx.span(&id) else { return };
                let Some(timing) = self.take_timing(&mut span.extensions_mut()) else { return };
                self.in_extensions.fetch_sub(1, Relaxed);
                timing
            }
        };
        let elapsed_ms = self.elapsed_ms(timing.start);
        self.record_closed(&timing, elapsed_ms);
        timing.recycle();
    }
}

impl fmt::Debug for CountersLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountersLayer")
            .field("callsites", &self.callsites.len())
            .field("time_spans", &self.time_spans)
            .field("count_events", &self.count_events)
            .finish_non_exhaustive()
    }
}
