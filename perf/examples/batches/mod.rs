//! What the fastest-batches examples (`recorder_cost`, `span_cost`, `key_shapes`) share: a batch of recorder
//! calls, and what they read from their batch times.

use std::time::Instant;

/// Calls per batch of recorder calls.
pub const CALLS: u64 = 2_000;

/// One batch of [`CALLS`] calls of `op` under `recorder`: nanoseconds per call.
pub fn recorder_batch(recorder: &dyn metrics::Recorder, op: &dyn Fn()) -> f64 {
    metrics::with_local_recorder(recorder, || {
        let start = Instant::now();
        for _ in 0..CALLS {
            op();
        }
        start.elapsed().as_nanos() as f64 / CALLS as f64
    })
}

/// The `q` quantile of `sorted` (0.0: the fastest).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// The median of `ours[i] / theirs[i]`, each pair of batches having run back to back (both in run order): the
/// machine's slow phases slow both batches of a pair, so this moves far less than a ratio of medians.
pub fn median_pair_ratio(ours: &[f64], theirs: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = ours.iter().zip(theirs).map(|(ours, theirs)| ours / theirs).collect();
    ratios.sort_by(f64::total_cmp);
    quantile(&ratios, 0.5)
}
