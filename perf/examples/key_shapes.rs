//! What the recorder's cache hit costs for each shape of `metrics` key: ours' part of a `counter!` call (ours
//! minus the same call through `metrics::NoopRecorder`), from a key the macro builds once at compile time to
//! keys built, hashed and dropped by every call. It sizes what the recorder targets' workloads (2 dynamic
//! labels, a `format!`ted name) pay beyond a static key. BENCHMARKS.md uses these figures.
//!
//! ```text
//! cargo run --release -p cloudwatch-counters-perf --example key_shapes [BATCHES [SHAPE]]
//! ```
//!
//! SHAPE keeps the shapes whose name contains it. Batches through ours and through the no-op recorder alternate;
//! each side's figure is its fastest batch (noise only ever adds time). It checks that ours recorded every call.

use std::cell::Cell;

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};

#[allow(dead_code, reason = "the fastest-batches examples' shared module: each uses part of it")]
mod batches;

use batches::{recorder_batch, CALLS};

/// Eight `&'static str` names, for the shapes that cycle through keys.
const NAMES: [&str; 8] = ["shape.0", "shape.1", "shape.2", "shape.3", "shape.4", "shape.5", "shape.6", "shape.7"];

/// A shape's name and one call of it.
type Shape<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// The next of `n` indices, round-robin.
fn next(at: &Cell<usize>, n: usize) -> usize {
    let i = at.get();
    at.set((i + 1) % n);
    i
}

fn main() {
    let batches: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(3_000);
    let only = std::env::args().nth(2).unwrap_or_default();
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let ours = counters.recorder();
    let owned: Vec<String> = NAMES.iter().map(|&name| name.to_owned()).collect();
    let at = Cell::new(0);
    let shapes: Vec<Shape<'_>> = vec![
        // The key is a `static` the macro builds at compile time, its hash a constant.
        ("static key", Box::new(|| metrics::counter!("shape.static").increment(1))),
        // A `&'static str` name that is not a literal: the key is built and hashed at each call.
        ("static name, key built per call", Box::new(|| metrics::counter!(NAMES[next(&at, 1)]).increment(1))),
        ("8 static names round-robin", Box::new(|| metrics::counter!(NAMES[next(&at, 8)]).increment(1))),
        ("2 static labels", Box::new(|| metrics::counter!("shape.labels", "a" => "GET", "b" => "200").increment(1))),
        (
            "2 owned label values",
            Box::new(|| {
                let (a, b) = (String::from("GET"), String::from("200"));
                metrics::counter!("shape.labels", "a" => a, "b" => b).increment(1);
            }),
        ),
        ("owned name", Box::new(|| metrics::counter!(owned[0].clone()).increment(1))),
        ("8 owned names round-robin", Box::new(|| metrics::counter!(owned[next(&at, 8)].clone()).increment(1))),
    ];
    println!("{:<34} {:>9} {:>9} {:>10}", "shape", "ours", "no-op", "ours' part");
    for (name, op) in shapes.iter().filter(|(name, _)| name.contains(only.as_str())) {
        let recorded = || counters.get_all().iter().filter_map(|c| c.count).sum::<i64>();
        let before = recorded();
        let (mut mine, mut noop) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..batches {
            mine = mine.min(recorder_batch(&ours, &**op));
            noop = noop.min(recorder_batch(&metrics::NoopRecorder, &**op));
        }
        assert_eq!(recorded() - before, (batches as u64 * CALLS) as i64, "{name}: ours recorded every call");
        println!("{name:<34} {mine:>6.2} ns {noop:>6.2} ns {:>7.2} ns", mine - noop);
    }
}
