//! [`Counter::percentile_values`]: a period's [`Distribution`] as at most N values with counts (CloudWatch's
//! Values/Counts, EMF's Values/Counts), from which the destination computes percentiles by nearest rank.
//!
//! What is exact: SampleCount (the counts add up to it), Minimum and Maximum (each is a value of its own), and
//! Sum (up to floating-point rounding: each value is placed inside its bucket so that the values times their
//! counts add up to the recorded sum). Every other value stands for the samples of one bucket and is within
//! [`PercentileValues::max_relative_error`] of each of them.
//!
//! A period with more buckets than values allowed is compacted. The buckets that hold the nearest-rank p50,
//! p90, p95, p99, p99.9 and p99.99 samples of the period stay as they are (so those percentiles keep the
//! bucket precision, within 0.78%); the others are merged with their neighbours into the fewest groups of
//! equal relative width that fit, and the width that took is reported.

use super::distribution::Distribution;
use super::Counter;

/// The percentiles whose buckets a compaction never merges.
pub const KEPT_PERCENTILES: [f64; 6] = [0.5, 0.9, 0.95, 0.99, 0.999, 0.9999];

/// Values and counts that stand for a period's samples (see [`Counter::percentile_values`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PercentileValues {
    /// Distinct values, ascending: the minimum and maximum exactly, and one value per bucket or merged group.
    pub values: Vec<f64>,
    /// How many samples each value stands for; they add up to the SampleCount.
    pub counts: Vec<f64>,
    /// The largest relative error of a value against a sample it stands for: at most
    /// [`Distribution::BUCKET_WIDTH`] without compaction, more when buckets had to be merged.
    pub max_relative_error: f64,
}

/// A run of samples that one value will stand for: all within `lower..=upper`.
#[derive(Debug, Clone, Copy)]
struct Group {
    lower: f64,
    upper: f64,
    count: u64,
    /// A single known value: zero, the minimum, the maximum.
    exact: bool,
    /// A bucket holding one of the [`KEPT_PERCENTILES`].
    kept: bool,
}

impl Group {
    fn exact(value: f64, count: u64) -> Group {
        Group { lower: value, upper: value, count, exact: true, kept: false }
    }

    /// Never merged with a neighbour.
    fn fixed(&self) -> bool {
        self.exact || self.kept
    }
}

impl Counter {
    /// This period's samples as at most `max_values` distinct values and their counts, for a destination that
    /// computes percentiles from them (CloudWatch allows 150 per datum, EMF 100 per metric).
    ///
    /// `None` when there is nothing to build them from: no [`distribution`](Counter::distribution) (percentiles
    /// off, or another counter type), a period with negative samples (CloudWatch computes no percentiles for
    /// those: send the statistic set), a count, minimum, maximum or sum missing, or `max_values` below 3.
    pub fn percentile_values(&self, max_values: usize) -> Option<PercentileValues> {
        let distribution = self.distribution.as_ref()?;
        let count = u64::try_from(self.count?).ok().filter(|&n| n > 0)?;
        let (min, max, sum) = (self.min?, self.max?, self.sum?);
        if distribution.negatives() > 0 || distribution.count() != count || max_values < 3 || min < 0.0 {
            return None;
        }
        let mut groups = groups(distribution, min, max)?;
        if groups.len() > max_values {
            groups = compact(groups, count, max_values)?;
        }
        Some(place(&groups, sum))
    }
}

/// The distribution as groups in value order: zeros, the minimum alone, the buckets clamped to
/// `min..=max`, the maximum alone. `None` if the distribution does not fit `min` and `max`.
fn groups(distribution: &Distribution, min: f64, max: f64) -> Option<Vec<Group>> {
    let mut out = Vec::new();
    if distribution.zeros() > 0 {
        out.push(Group::exact(0.0, distribution.zeros()));
    }
    let mut positive: Vec<Group> = distribution
        .buckets()
        .filter(|b| b.upper > 0.0)
        .map(|b| Group { lower: b.lower.max(min), upper: b.upper.min(max), count: b.count, exact: false, kept: false })
        .collect();
    if positive.iter().any(|g| g.lower > g.upper) {
        return None; // a bucket outside min..=max: not this counter's distribution
    }
    let total: u64 = positive.iter().map(|g| g.count).sum();
    match total {
        0 => return Some(out),
        1 => {
            out.push(Group::exact(max, 1));
            return Some(out);
        }
        _ => {}
    }
    // The minimum and the maximum are samples of the first and last buckets: each becomes a value of its own.
    let smallest = if min > 0.0 {
        positive.first_mut()?.count -= 1;
        Some(Group::exact(min, 1))
    } else {
        None
    };
    positive.last_mut()?.count -= 1;
    out.extend(smallest);
    out.extend(positive.into_iter().filter(|g| g.count > 0));
    out.push(Group::exact(max, 1));
    Some(out)
}

/// Merges neighbouring groups until at most `max_values` remain. The exact values and the buckets holding the
/// kept percentiles stay apart (only the exact values, if that leaves too few values for the rest); the others
/// become the fewest runs no wider than the smallest ratio that fits.
fn compact(mut groups: Vec<Group>, count: u64, max_values: usize) -> Option<Vec<Group>> {
    let ranks: Vec<u64> = KEPT_PERCENTILES.iter().map(|p| ((p * count as f64).ceil() as u64).clamp(1, count)).collect();
    let mut cumulative = 0u64;
    for group in &mut groups {
        let first = cumulative + 1;
        cumulative += group.count;
        group.kept = ranks.iter().any(|&rank| (first..=cumulative).contains(&rank));
    }
    if let Some(compacted) = compact_free(&groups, max_values) {
        return Some(compacted);
    }
    for group in &mut groups {
        group.kept = false;
    }
    compact_free(&groups, max_values)
}

/// Merges the groups that are not fixed into the fewest runs of the smallest width ratio that leaves at most
/// `max_values` groups in all; `None` if even one run per stretch between fixed groups is too many.
fn compact_free(groups: &[Group], max_values: usize) -> Option<Vec<Group>> {
    let fits = |ratio: f64| count_merged(groups, ratio) <= max_values;
    let (lowest, highest) = groups
        .iter()
        .filter(|g| !g.fixed())
        .fold((f64::INFINITY, 0f64), |(lo, hi), g| (lo.min(g.lower), hi.max(g.upper)));
    if lowest.is_infinite() {
        return (groups.len() <= max_values).then(|| groups.to_vec());
    }
    // Wide enough for one run per stretch between fixed groups.
    let mut high = (highest / lowest).max(1.0) * 2.0;
    if !fits(high) {
        return None;
    }
    // To within 0.1% of the narrowest ratio that fits: a run's width is then at most 0.1% wider than it needs.
    let mut low = 1.0f64;
    while high / low > 1.001 {
        // The geometric mean, without the product (which overflows for periods spanning most of the range).
        let mid = low * (high / low).sqrt();
        if fits(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(merged(groups, high))
}

/// How many groups [`merged`] would leave, without building them.
fn count_merged(groups: &[Group], ratio: f64) -> usize {
    let mut count = 0;
    let mut run_lower: Option<f64> = None;
    for group in groups {
        if group.fixed() {
            count += 1;
            run_lower = None;
        } else if !run_lower.is_some_and(|lower| group.upper <= lower * ratio) {
            count += 1;
            run_lower = Some(group.lower);
        }
    }
    count
}

/// The groups with the free ones merged greedily, from the smallest up, into runs whose upper bound is at most
/// `ratio` times their lower bound. Fixed groups are never merged and end a run.
fn merged(groups: &[Group], ratio: f64) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::with_capacity(groups.len());
    let mut open = false;
    for &group in groups {
        if group.fixed() {
            out.push(group);
            open = false;
            continue;
        }
        match out.last_mut() {
            Some(run) if open && group.upper <= run.lower * ratio => {
                run.upper = group.upper;
                run.count += group.count;
            }
            _ => {
                out.push(group);
                open = true;
            }
        }
    }
    out
}

/// Significant bits kept in a value that stands for a group: 2^-12 (0.02%) is far inside a bucket, and values
/// with short mantissas compress well in a gzipped request.
const VALUE_BITS: u32 = 12;

/// `x` (positive) rounded to [`VALUE_BITS`] significant bits.
fn short(x: f64) -> f64 {
    let dropped = 52 - VALUE_BITS;
    f64::from_bits((x.to_bits() + (1 << (dropped - 1))) & !((1 << dropped) - 1))
}

/// One value per group, inside its bounds, placed so that the values times their counts add up to `sum`; equal
/// neighbouring values are joined.
///
/// Each value moves from its group's middle towards the bound on the side the sum needs, all by the same share of
/// the way (samples that all sit on their buckets' lower bounds, as small whole numbers do, need the whole way and
/// come out exact). Values are then kept to [`VALUE_BITS`] significant bits, and the rounding's remainder of the
/// sum goes to the groups with the most room.
fn place(groups: &[Group], sum: f64) -> PercentileValues {
    let middle = |g: &Group| if g.lower == g.upper { g.lower } else { (g.lower * g.upper).sqrt() };
    let (mut base, mut room_up, mut room_down) = (0.0, 0.0, 0.0);
    for g in groups {
        let (m, n) = (middle(g), g.count as f64);
        base += m * n;
        room_up += (g.upper - m) * n;
        room_down += (m - g.lower) * n;
    }
    let missing = sum - base;
    let share = |room: f64| {
        let share = if room > 0.0 { (missing.abs() / room).min(1.0) } else { 0.0 };
        if share > 1.0 - 1e-9 {
            1.0
        } else {
            share
        }
    };
    let (up, down) = if missing >= 0.0 { (share(room_up), 0.0) } else { (0.0, share(room_down)) };
    let mut placed: Vec<f64> = groups
        .iter()
        .map(|g| {
            if g.lower == g.upper {
                return g.lower;
            }
            let m = middle(g);
            let value =
                if down > 0.0 { g.lower + (1.0 - down) * (m - g.lower) } else { g.upper - (1.0 - up) * (g.upper - m) };
            short(value).clamp(g.lower, g.upper)
        })
        .collect();
    settle(groups, &mut placed, sum);
    let mut values: Vec<f64> = Vec::with_capacity(groups.len());
    let mut counts: Vec<f64> = Vec::with_capacity(groups.len());
    let mut max_relative_error = 0f64;
    for (g, &value) in groups.iter().zip(&placed) {
        if g.lower > 0.0 {
            max_relative_error = max_relative_error.max((value - g.lower) / g.lower).max((g.upper - value) / g.upper);
        }
        if values.last() == Some(&value) {
            *counts.last_mut().expect("a count per value") += g.count as f64;
        } else {
            values.push(value);
            counts.push(g.count as f64);
        }
    }
    PercentileValues { values, counts, max_relative_error }
}

/// Moves the values of the groups with the most room (count times width) within their bounds, as many as it
/// takes, until the values times their counts add up to `sum`. The rounding to [`VALUE_BITS`] can leave every
/// group off the same way (samples at the same place in each bucket), so a few groups may not have room enough.
fn settle(groups: &[Group], placed: &mut [f64], sum: f64) {
    let mut by_room: Vec<usize> = (0..groups.len()).filter(|&i| groups[i].lower < groups[i].upper).collect();
    by_room.sort_unstable_by(|&a, &b| {
        let room = |g: &Group| g.count as f64 * (g.upper - g.lower);
        room(&groups[b]).total_cmp(&room(&groups[a]))
    });
    let mut total: f64 = groups.iter().zip(placed.iter()).map(|(g, v)| g.count as f64 * v).sum();
    // Within rounding of the sum, the rest of the values keep their short form.
    let close_enough = sum.abs() * 1e-12;
    for i in by_room {
        let rest = sum - total;
        if rest.abs() <= close_enough {
            return;
        }
        let (g, before) = (&groups[i], placed[i]);
        placed[i] = (before + rest / g.count as f64).clamp(g.lower, g.upper);
        total += g.count as f64 * (placed[i] - before);
    }
}

#[cfg(test)]
mod tests;
