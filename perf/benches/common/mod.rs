//! What `recorder.rs` (recorders reached through `metrics::with_local_recorder`) and `recorder_global.rs` (each
//! recorder installed with `metrics::set_global_recorder`) share: the single-thread workloads, the timing loop,
//! the checks that a workload did its work, and the criterion settings.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::Criterion;

use cloudwatch_counters::CachedCounters;

/// Histogram samples recorded between two prometheus upkeeps (its histograms keep every sample until then); the
/// bench runs the upkeep untimed.
pub const UPKEEP_EVERY: u64 = 1 << 16;

/// Samples recorded into a metrics-cloudwatch-embedded histogram between two flushes (run untimed): it keeps at
/// most 100 per histogram (the most an EMF document holds) and drops the rest with a `tracing` error, so a user
/// flushes at least that often (a Lambda invocation's end).
pub const EMBEDDED_FLUSH_EVERY: u64 = 100;

/// Keys of `counter_1000_static_keys`.
pub const ROUTES: usize = 1000;

/// Keys of `counter_6000_static_keys`: more than a thread's cache of handles holds (4,096).
pub const PATHS: usize = 6000;

/// The value every `gauge_set` call sets.
pub const GAUGE_VALUE: f64 = 3.0;

/// `route.0` .. `route.999`, built once and leaked (see [`leaked_names`]).
pub fn route_names() -> &'static [&'static str; ROUTES] {
    static NAMES: OnceLock<[&'static str; ROUTES]> = OnceLock::new();
    NAMES.get_or_init(|| leaked_names("route"))
}

/// `path.0` .. `path.5999`, built once and leaked (see [`leaked_names`]).
pub fn path_names() -> &'static [&'static str; PATHS] {
    static NAMES: OnceLock<[&'static str; PATHS]> = OnceLock::new();
    NAMES.get_or_init(|| leaked_names("path"))
}

/// `{prefix}.0` .. `{prefix}.{N - 1}`, leaked: `&'static str` names, as literals are.
fn leaked_names<const N: usize>(prefix: &str) -> [&'static str; N] {
    std::array::from_fn(|i| &*Box::leak(format!("{prefix}.{i}").into_boxed_str()))
}

/// `counter!` over `names`, one after the other, a name a call.
fn round_robin<const N: usize>(names: &'static [&'static str; N]) -> Box<dyn Fn()> {
    let next = Cell::new(0_usize);
    Box::new(move || {
        let i = next.get();
        next.set(if i + 1 == N { 0 } else { i + 1 });
        metrics::counter!(names[i]).increment(1);
    })
}

/// What a workload records.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One single-thread workload: a criterion group of the same name, one bench per recorder.
pub struct Workload {
    pub group: &'static str,
    pub kind: Kind,
    /// Whether one of our counters is one the workload records into, by name and number of labels.
    pub ours: fn(&str, usize) -> bool,
    /// Text that prometheus' rendering holds once the workload ran.
    pub prometheus: &'static str,
    /// A metric name (quoted) that metrics-cloudwatch-embedded's EMF documents hold once the workload ran.
    pub embedded: &'static str,
    pub op: Box<dyn Fn()>,
}

/// `counter!` with a static key, with two dynamic labels, with 1,000 and with 6,000 static keys round-robin, with
/// a name formatted each call; `gauge!` set; `histogram!` record, of one value and of values spread over 15 powers
/// of two.
pub fn workloads() -> Vec<Workload> {
    let method = String::from("GET");
    let status = String::from("200");
    let next_name = Cell::new(0_u64);
    let next_sample = Cell::new(0_u32);
    vec![
        Workload {
            group: "counter_static",
            kind: Kind::Counter,
            ours: |name, labels| name == "requests" && labels == 0,
            prometheus: "\nrequests ",
            embedded: "\"requests\"",
            op: Box::new(|| metrics::counter!("requests").increment(1)),
        },
        Workload {
            group: "counter_2_labels",
            kind: Kind::Counter,
            ours: |name, labels| name == "requests" && labels == 2,
            prometheus: "requests{method=\"GET\",status=\"200\"} ",
            embedded: "\"requests\"",
            // Two `String` label values cloned per call, which every recorder pays.
            op: Box::new(move || {
                metrics::counter!("requests", "method" => method.clone(), "status" => status.clone()).increment(1)
            }),
        },
        Workload {
            group: "gauge_set",
            kind: Kind::Gauge,
            ours: |name, labels| name == "inflight" && labels == 0,
            prometheus: "\ninflight 3\n",
            embedded: "\"inflight\"",
            op: Box::new(|| metrics::gauge!("inflight").set(std::hint::black_box(GAUGE_VALUE))),
        },
        Workload {
            group: "histogram_record",
            kind: Kind::Histogram,
            ours: |name, labels| name == "latency" && labels == 0,
            prometheus: "\nlatency_count ",
            embedded: "\"latency\"",
            op: Box::new(|| metrics::histogram!("latency").record(std::hint::black_box(12.5))),
        },
        Workload {
            // Latencies spread over 0.1 ms to 1.6 s (15 powers of two): every sample in another bucket.
            group: "histogram_record_spread",
            kind: Kind::Histogram,
            ours: |name, labels| name == "latency" && labels == 0,
            prometheus: "\nlatency_count ",
            embedded: "\"latency\"",
            op: Box::new(move || {
                let i = next_sample.get().wrapping_add(1);
                next_sample.set(i);
                metrics::histogram!("latency").record(0.1 * f64::from(1 + (i.wrapping_mul(2_654_435_761) >> 18)));
            }),
        },
        Workload {
            // 1,000 distinct `&'static str` keys, one after the other: the key lookup misses the caches that one
            // hot key keeps warm.
            group: "counter_1000_static_keys",
            kind: Kind::Counter,
            ours: |name, labels| name.starts_with("route.") && labels == 0,
            prometheus: "\nroute_",
            embedded: "\"route.",
            op: round_robin(route_names()),
        },
        Workload {
            // 6,000 distinct `&'static str` keys, one after the other: more than a thread's cache of handles
            // holds (4,096), so ours misses it at almost every call.
            group: "counter_6000_static_keys",
            kind: Kind::Counter,
            ours: |name, labels| name.starts_with("path.") && labels == 0,
            prometheus: "\npath_",
            embedded: "\"path.",
            op: round_robin(path_names()),
        },
        Workload {
            // An owned name formatted every call (8 names): the `format!` is paid by every recorder alike.
            group: "counter_format_name",
            kind: Kind::Counter,
            ours: |name, labels| name.starts_with("requests.") && labels == 0,
            prometheus: "\nrequests_",
            embedded: "\"requests.",
            op: Box::new(move || {
                let i = next_name.get();
                next_name.set(i.wrapping_add(1));
                metrics::counter!(format!("requests.{}", i % 8)).increment(1);
            }),
        },
    ]
}

impl Workload {
    /// The increments (counters) or samples (histograms) our `counters` hold for this workload's keys; for a
    /// gauge, how many of its gauges hold [`GAUGE_VALUE`].
    pub fn ours_total(&self, counters: &CachedCounters) -> i64 {
        let mine = counters.get_all().into_iter().filter(|c| (self.ours)(c.name(), c.dimensions().len()));
        match self.kind {
            Kind::Gauge => mine.filter(|c| c.last == Some(GAUGE_VALUE)).count() as i64,
            Kind::Counter | Kind::Histogram => mine.map(|c| c.count.unwrap_or(0)).sum(),
        }
    }

    /// Asserts that our `counters` saw every one of the `runs` calls since [`ours_total`](Self::ours_total)
    /// was `before`, unless the bench did not run (filtered out).
    pub fn check_ours(&self, counters: &CachedCounters, before: i64, runs: u64, peer: &str) {
        if runs == 0 {
            return;
        }
        let after = self.ours_total(counters);
        match self.kind {
            Kind::Gauge => assert_eq!(after, 1, "{}/{peer}: the gauge holds the value set", self.group),
            Kind::Counter | Kind::Histogram => {
                assert_eq!(after - before, runs as i64, "{}/{peer}: every call recorded", self.group)
            }
        }
    }

    /// Asserts that prometheus' rendering holds the workload's metric, unless the bench did not run.
    pub fn check_prometheus(&self, runs: u64, rendered: &str) {
        if runs == 0 {
            return;
        }
        assert!(rendered.contains(self.prometheus), "{}/prometheus: {:?} rendered", self.group, self.prometheus);
    }

    /// How often the metrics-cloudwatch-embedded bench flushes (untimed).
    pub fn embedded_flush_every(&self) -> u64 {
        if self.kind == Kind::Histogram {
            EMBEDDED_FLUSH_EVERY
        } else {
            u64::MAX
        }
    }
}

/// Flushes a metrics-cloudwatch-embedded collector into a buffer and remembers whether a flush wrote a metric.
pub struct EmbeddedFlush<'a> {
    collector: &'static metrics_cloudwatch_embedded::Collector,
    metric: &'a str,
    out: std::cell::RefCell<Vec<u8>>,
    flushed: Cell<bool>,
    seen: Cell<bool>,
}

impl<'a> EmbeddedFlush<'a> {
    pub fn new(collector: &'static metrics_cloudwatch_embedded::Collector, workload: &'a Workload) -> Self {
        // Whatever earlier workloads left is written now, so that a later flush shows this workload's metric.
        collector.flush(std::io::sink()).expect("flush");
        EmbeddedFlush {
            collector,
            metric: workload.embedded,
            out: Default::default(),
            flushed: Cell::new(false),
            seen: Cell::new(false),
        }
    }

    pub fn flush(&self) {
        let mut out = self.out.borrow_mut();
        out.clear();
        self.collector.flush(&mut *out).expect("flush");
        self.flushed.set(true);
        if !self.seen.get() && out.windows(self.metric.len()).any(|w| w == self.metric.as_bytes()) {
            self.seen.set(true);
        }
    }

    /// Asserts that a flush wrote the workload's metric, unless the bench did not run (nothing flushed).
    pub fn check(&self, group: &str) {
        assert!(self.seen.get() || !self.flushed.get(), "{group}/metrics_cloudwatch_embedded: {} flushed", self.metric);
    }
}

/// Times `iters` calls of `op`, running `between` untimed after every `chunk` calls (and after the last), and
/// adds `iters` to `runs`. One chunk (`u64::MAX`) is a plain timed loop.
pub fn timed_in_chunks(iters: u64, op: &dyn Fn(), chunk: u64, between: &dyn Fn(), runs: &Cell<u64>) -> Duration {
    runs.set(runs.get() + iters);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(chunk);
        let start = Instant::now();
        for _ in 0..n {
            op();
        }
        total += start.elapsed();
        between();
        left -= n;
    }
    total
}

pub fn config() -> Criterion {
    Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}
