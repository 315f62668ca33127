//! Paired batches, for the ratios BENCHMARKS.md's targets are stated in: each sample times the same number of
//! calls through ours and through a peer back to back and reports ours' time as a percentage of the peer's. A
//! slow phase of this VM (they last from milliseconds to seconds) moves both batches of a pair, so the median
//! of the pairs' percentages holds steadier than the ratio of two benches' figures taken seconds apart.
//!
//! Criterion shows the percentage as a time per iteration: `52.0 ns` is ours taking 52% of the peer's time
//! (0.52x).

use std::cell::Cell;
use std::time::Duration;

/// Which side of a pair runs first: it alternates from sample to sample, so neither always runs in the other's
/// wake (its caches, its allocations).
#[derive(Default)]
pub struct Order(Cell<bool>);

/// One sample: `iters` calls timed by `ours`, then `iters` by `peer` (or the other way round, alternately),
/// returned as criterion's measurement of `iters` iterations lasting ours' percentage of the peer's time, in ns,
/// each.
pub fn percent_of(
    iters: u64,
    ours: &dyn Fn(u64) -> Duration,
    peer: &dyn Fn(u64) -> Duration,
    order: &Order,
) -> Duration {
    let ours_first = !order.0.replace(!order.0.get());
    let (mine, theirs) = if ours_first {
        let mine = ours(iters);
        (mine, peer(iters))
    } else {
        let theirs = peer(iters);
        (ours(iters), theirs)
    };
    let percent = 100.0 * mine.as_secs_f64() / theirs.as_secs_f64().max(f64::MIN_POSITIVE);
    Duration::from_secs_f64(percent * 1e-9 * iters as f64)
}
