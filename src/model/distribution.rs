//! [`Distribution`]: a period's samples counted in log-linear buckets, the data CloudWatch percentiles (and EMF
//! values arrays) are built from.
//!
//! A positive sample falls in the bucket named by its exponent and the top [`SUB_BITS`] bits of its mantissa
//! (HdrHistogram's log-linear layout, read straight from the `f64` bits): 128 buckets per power of two, each
//! at most 2^-7 (0.78%) of its lower bound wide. Zero has a bucket of its own; negative samples are only
//! counted, since CloudWatch computes no percentiles for a metric with negative values.

/// Mantissa bits that pick a bucket inside a power of two: 2^7 = 128 buckets per octave.
pub(crate) const SUB_BITS: u32 = 7;

/// How far a bucket index sits in an `f64`'s bits: the exponent and the top [`SUB_BITS`] bits of the mantissa.
const INDEX_SHIFT: u32 = 52 - SUB_BITS;

/// The bucket index of a positive, finite `value`.
#[inline]
pub(crate) fn bucket_index(value: f64) -> u32 {
    (value.to_bits() >> INDEX_SHIFT) as u32
}

/// The smallest value of bucket `index`.
pub(crate) fn bucket_lower(index: u32) -> f64 {
    f64::from_bits(u64::from(index) << INDEX_SHIFT)
}

/// The first value past bucket `index` (the lower bound of the next one).
pub(crate) fn bucket_upper(index: u32) -> f64 {
    f64::from_bits(u64::from(index + 1) << INDEX_SHIFT)
}

/// One period's samples of an Interval or Statistics counter, counted in log-linear buckets.
///
/// Filled by the store when `options.percentiles` is on (the default for sinks that publish percentiles), and
/// carried by [`Counter::distribution`](crate::Counter::distribution) in a period view. A sink turns it into the
/// values and counts it publishes with
/// [`Counter::percentile_values`](crate::Counter::percentile_values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Distribution {
    zeros: u64,
    negatives: u64,
    /// Positive samples: (bucket index, count), by index, no zero counts.
    buckets: Vec<(u32, u64)>,
}

/// One bucket of a [`Distribution`]: the samples `lower <= x < upper` (the zero bucket: `lower == upper == 0`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Bucket {
    /// The smallest value the bucket holds.
    pub lower: f64,
    /// The first value past the bucket (equal to `lower` for the zero bucket).
    pub upper: f64,
    /// How many samples fell in it.
    pub count: u64,
}

impl Distribution {
    /// The widest a bucket is, relative to its lower bound: 2^-7 (0.78%). A value inside a bucket is within
    /// this of every sample the bucket holds.
    pub const BUCKET_WIDTH: f64 = 1.0 / 128.0;

    /// A distribution from its parts: `buckets` are (bucket index, count) in any order, repeats added up.
    pub(crate) fn from_parts(zeros: u64, negatives: u64, mut buckets: Vec<(u32, u64)>) -> Distribution {
        buckets.retain(|&(_, count)| count > 0);
        buckets.sort_unstable_by_key(|&(index, _)| index);
        buckets.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.saturating_add(later.1);
            }
            same
        });
        Distribution { zeros, negatives, buckets }
    }

    /// Adds `other`'s samples to this one (a failed save's period joins the next one).
    pub(crate) fn merge(&mut self, other: &Distribution) {
        let mut buckets = std::mem::take(&mut self.buckets);
        buckets.extend_from_slice(&other.buckets);
        *self = Distribution::from_parts(
            self.zeros.saturating_add(other.zeros),
            self.negatives.saturating_add(other.negatives),
            buckets,
        );
    }

    /// Samples counted: zeros, positive and negative ones.
    pub fn count(&self) -> u64 {
        self.buckets.iter().fold(self.zeros.saturating_add(self.negatives), |n, &(_, c)| n.saturating_add(c))
    }

    /// Negative samples (only counted: CloudWatch computes no percentiles for them).
    pub fn negatives(&self) -> u64 {
        self.negatives
    }

    /// Samples equal to zero.
    pub fn zeros(&self) -> u64 {
        self.zeros
    }

    /// The zero bucket (when it holds samples), then the positive buckets from the smallest up.
    pub fn buckets(&self) -> impl Iterator<Item = Bucket> + '_ {
        let zero = (self.zeros > 0).then_some(Bucket { lower: 0.0, upper: 0.0, count: self.zeros });
        zero.into_iter().chain(self.buckets.iter().map(|&(index, count)| Bucket {
            lower: bucket_lower(index),
            upper: bucket_upper(index),
            count,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_holds_its_values_and_is_at_most_one_128th_wide() {
        for value in [1e-100, 0.001, 0.5, 1.0, 1.5, 3.0, 999.999, 1e6, 123_456.789, 1e100] {
            let index = bucket_index(value);
            let (lower, upper) = (bucket_lower(index), bucket_upper(index));
            assert!(lower <= value && value < upper, "{lower} <= {value} < {upper}");
            assert!((upper - lower) / lower <= Distribution::BUCKET_WIDTH, "{value}");
            assert_eq!(bucket_index(upper), index + 1, "buckets are contiguous");
        }
        assert_eq!(bucket_lower(bucket_index(1.0)), 1.0);
        assert_eq!(bucket_upper(bucket_index(1.0)), 1.0 + 1.0 / 128.0);
    }

    #[test]
    fn parts_are_sorted_added_up_and_merged() {
        let a = Distribution::from_parts(1, 0, vec![(9, 1), (3, 2), (9, 4), (5, 0)]);
        assert_eq!(a.buckets, [(3, 2), (9, 5)]);
        assert_eq!(a.count(), 8);
        let mut b = Distribution::from_parts(0, 2, vec![(3, 1), (4, 1)]);
        b.merge(&a);
        assert_eq!((b.zeros, b.negatives, b.buckets.clone()), (1, 2, vec![(3, 3), (4, 1), (9, 5)]));
        let buckets: Vec<_> = b.buckets().map(|b| b.count).collect();
        assert_eq!(buckets, [1, 3, 1, 5], "the zero bucket first");
    }
}
