//! Flushes of 10,000 counters in a loop, of one kind, for an instruction count (BENCHMARKS.md, "Run AA"):
//! `emf` (ours through the EMF sink), `nowhere` (ours through a sink that saves nothing: the part every sink
//! shares) or `peer` (metrics-cloudwatch-embedded's flush). The counters are those of `emf_flush_split`, every one
//! updated before each flush.
//!
//! ```text
//! cargo build --release -p cloudwatch-counters-perf --example flush_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/flush_loop emf 0
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/flush_loop emf 20
//! ```
//!
//! The difference of the two totals divided by 20 is one flush (with its 10,000 updates).

use std::time::Duration;

use cloudwatch_counters::{CachedCounters, Counter, CounterType, CountersOptions, EmfCounters, SaveFuture, Sink};
use metrics::{Key, Label};

const COUNTERS: usize = 10_000;

/// A sink that saves nothing.
struct Nowhere;

impl Sink for Nowhere {
    fn save<'a>(&'a self, _counters: &'a [Counter]) -> SaveFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

fn name(i: usize) -> String {
    format!("service.op{}.calls", i % 100)
}

fn shard(i: usize) -> String {
    (i / 100).to_string()
}

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_else(|| String::from("emf"));
    let flushes: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(100);
    let keys: Vec<Key> = (0..COUNTERS).map(|i| Key::from_parts(name(i), vec![Label::new("shard", shard(i))])).collect();
    let options = CountersOptions::default().telemetry(false).interval(Duration::from_secs(3600));
    match kind.as_str() {
        "emf" => {
            let emf = EmfCounters::builder()
                .namespace("bench")
                .writer(std::io::sink())
                .options(options)
                .build()
                .expect("valid settings");
            let handles: Vec<_> = keys.iter().map(|k| emf.handle_for_key(k, CounterType::Increment)).collect();
            for _ in 0..flushes {
                handles.iter().for_each(|h| h.increment(1));
                assert_eq!(emf.flush_blocking().expect("flush").saved, COUNTERS);
            }
        }
        "nowhere" => {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let nowhere = CachedCounters::new(Nowhere, options);
            let handles: Vec<_> = keys.iter().map(|k| nowhere.handle_for_key(k, CounterType::Increment)).collect();
            for _ in 0..flushes {
                handles.iter().for_each(|h| h.increment(1));
                assert_eq!(runtime.block_on(nowhere.dump()).expect("dump").saved, COUNTERS);
            }
        }
        "peer" => {
            let theirs =
                metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace("bench").init().expect("installed");
            let handles: Vec<metrics::Counter> =
                (0..COUNTERS).map(|i| metrics::counter!(name(i), "shard" => shard(i))).collect();
            for _ in 0..flushes {
                handles.iter().for_each(|h| h.increment(1));
                theirs.flush(std::io::sink()).expect("flush");
            }
        }
        other => panic!("unknown kind {other}: emf, nowhere or peer"),
    }
}
