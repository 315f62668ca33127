//! Where an EMF flush of 10,000 counters goes, beside metrics-cloudwatch-embedded's flush of the same counters:
//! ours through the EMF sink, ours through a sink that does nothing (the take, the `Counter` records and the
//! settle that every sink shares), and the peer's. BENCHMARKS.md uses these figures.
//!
//! ```text
//! cargo run --release -p cloudwatch-counters-perf --example emf_flush_split [FLUSHES]
//! ```
//!
//! The counters and the peer's are those of `perf/benches/emf.rs` (100 names times 100 values of a `shard`
//! label), every one updated (untimed) before each flush. Flushes alternate between the three, all on this
//! thread; each figure is the fastest flush of its kind (noise only ever adds time). It checks that every
//! flush of ours saved every counter and that the peer wrote a document per label set.
//!
//! `only emf|nowhere|peer FLUSHES` runs that kind's flushes alone, untimed, for an instruction count: under
//! `valgrind --tool=callgrind`, the total of `only emf 20` less that of `only emf 0`, divided by 20, is one flush
//! with its 10,000 updates (perf/HISTORY.md, "Run AA").

use std::time::{Duration, Instant};

use cloudwatch_counters::{CachedCounters, Counter, CounterType, CountersOptions, EmfCounters, SaveFuture, Sink};
use metrics::{Key, Label};

const COUNTERS: usize = 10_000;

fn name(i: usize) -> String {
    format!("service.op{}.calls", i % 100)
}

fn shard(i: usize) -> String {
    (i / 100).to_string()
}

/// A sink that saves nothing: a dump through it is the part every sink shares.
struct Nowhere;

impl Sink for Nowhere {
    fn save<'a>(&'a self, _counters: &'a [Counter]) -> SaveFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// A flush to time: its label, the untimed updates before it, and the flush.
type Run<'a> = (&'static str, &'a dyn Fn(), &'a dyn Fn());

/// Milliseconds `flush` took, after `touch` (untimed).
fn time(touch: &dyn Fn(), flush: &dyn Fn()) -> f64 {
    touch();
    let start = Instant::now();
    flush();
    start.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `only KIND FLUSHES`: that kind's flushes alone, untimed, for an instruction count.
    let only = (args.first().map(String::as_str) == Some("only")).then(|| match args.get(1).map(String::as_str) {
        Some("emf") => 0,
        Some("nowhere") => 1,
        Some("peer") => 2,
        other => panic!("only emf, nowhere or peer, not {other:?}"),
    });
    let flushes: usize = args.get(if only.is_some() { 2 } else { 0 }).and_then(|n| n.parse().ok()).unwrap_or(300);
    let keys: Vec<Key> = (0..COUNTERS).map(|i| Key::from_parts(name(i), vec![Label::new("shard", shard(i))])).collect();
    let options = CountersOptions::default().telemetry(false).interval(Duration::from_secs(3600));
    let emf = EmfCounters::builder()
        .namespace("bench")
        .writer(std::io::sink())
        .options(options.clone())
        .build()
        .expect("valid settings");
    let emf_handles: Vec<_> = keys.iter().map(|k| emf.handle_for_key(k, CounterType::Increment)).collect();
    let nowhere = CachedCounters::new(Nowhere, options);
    let nowhere_handles: Vec<_> = keys.iter().map(|k| nowhere.handle_for_key(k, CounterType::Increment)).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let theirs = metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace("bench").init().expect("installed");
    let their_handles: Vec<metrics::Counter> =
        (0..COUNTERS).map(|i| metrics::counter!(name(i), "shard" => shard(i))).collect();
    their_handles.iter().for_each(|h| h.increment(1));
    let mut out = Vec::new();
    theirs.flush(&mut out).expect("flush");
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 100, "a document per label set");

    let all_saved = |saved: usize| assert_eq!(saved, COUNTERS, "every counter saved");
    let runs: [Run<'_>; 3] = [
        ("ours, EMF sink", &|| emf_handles.iter().for_each(|h| h.increment(1)), &|| {
            all_saved(emf.flush_blocking().expect("flush").saved);
        }),
        ("ours, a sink that saves nothing", &|| nowhere_handles.iter().for_each(|h| h.increment(1)), &|| {
            all_saved(runtime.block_on(nowhere.dump()).expect("dump").saved);
        }),
        ("metrics-cloudwatch-embedded", &|| their_handles.iter().for_each(|h| h.increment(1)), &|| {
            theirs.flush(std::io::sink()).expect("flush");
        }),
    ];
    if let Some(kind) = only {
        let (_, touch, flush) = runs[kind];
        for _ in 0..flushes {
            touch();
            flush();
        }
        return;
    }
    let mut fastest = [f64::INFINITY; 3];
    for _ in 0..flushes {
        for (best, (_, touch, flush)) in fastest.iter_mut().zip(&runs) {
            *best = best.min(time(*touch, *flush));
        }
    }
    for ((label, _, _), best) in runs.iter().zip(fastest) {
        println!("{label:<34} {best:>7.3} ms  ({:.2}x the peer)", best / fastest[2]);
    }
}
