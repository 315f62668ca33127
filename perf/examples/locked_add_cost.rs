//! What one locked read-modify-write costs on this machine, beside the plain read and write it replaces: the
//! floor under every recorder workload. A `counter!` hit makes three of them that the design cannot drop (the
//! `Arc` clone and drop that `metrics::Counter` forces, and the counter's `fetch_add`); a span's sample makes
//! three (entering and leaving its period, adding to the sum). BENCHMARKS.md uses these figures.
//!
//! ```text
//! cargo run --release -p cloudwatch-counters-perf --example locked_add_cost [BATCHES]
//! ```
//!
//! Prints the fastest batch of each, per operation, measured like the other examples (alternating batches,
//! the low end of many), each operation depending on the one before it as on the hot paths.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Operations per batch.
const OPS: u32 = 10_000;

/// One batch of `op`: nanoseconds per operation.
fn batch(op: &dyn Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..OPS {
        op();
    }
    start.elapsed().as_nanos() as f64 / f64::from(OPS)
}

fn main() {
    let batches: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let counter = AtomicU64::new(0);
    let handle = Arc::new(0_u64);
    let ops: [(&str, &dyn Fn()); 3] = [
        ("fetch_add (lock xadd)", &|| {
            black_box(&counter).fetch_add(1, Relaxed);
        }),
        ("load + store (no lock)", &|| {
            let counter = black_box(&counter);
            counter.store(counter.load(Relaxed) + 1, Relaxed);
        }),
        ("Arc clone + drop (2 locked)", &|| drop(black_box(Arc::clone(black_box(&handle))))),
    ];
    let mut fastest = [f64::INFINITY; 3];
    for _ in 0..batches {
        for ((_, op), fastest) in ops.iter().zip(&mut fastest) {
            *fastest = fastest.min(batch(*op));
        }
    }
    let expected = u64::from(OPS) * batches as u64 * 2;
    assert_eq!(counter.load(Relaxed), expected, "every add landed");
    assert_eq!(Arc::strong_count(&handle), 1, "every clone dropped");
    for ((name, _), fastest) in ops.iter().zip(fastest) {
        println!("{name:<28} {fastest:>6.2} ns");
    }
}
