//! What the fastest-batches examples (`recorder_cost`, `span_cost`) read from their batch times.

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
