use super::*;
use crate::model::distribution::bucket_index;
use crate::model::CounterType;

/// A Statistics counter's period holding `samples`, as the store would build it.
fn counter_of(samples: &[f64]) -> Counter {
    let mut c = Counter::new("latency", CounterType::Statistics);
    let (zeros, negatives) =
        (samples.iter().filter(|&&v| v == 0.0).count(), samples.iter().filter(|&&v| v < 0.0).count());
    let buckets = samples.iter().filter(|&&v| v > 0.0).map(|&v| (bucket_index(v), 1)).collect();
    c.distribution = Some(Distribution::from_parts(zeros as u64, negatives as u64, buckets));
    c.count = Some(samples.len() as i64);
    c.sum = Some(samples.iter().sum());
    c.min = Some(samples.iter().copied().fold(f64::INFINITY, f64::min));
    c.max = Some(samples.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    c
}

/// The nearest-rank value of rank `k` (1-based) among `values` with `counts`, as CloudWatch computes it.
fn value_at_rank(sent: &PercentileValues, k: u64) -> f64 {
    let mut seen = 0.0;
    for (value, count) in sent.values.iter().zip(&sent.counts) {
        seen += count;
        if seen >= k as f64 {
            return *value;
        }
    }
    panic!("rank {k} past the counts");
}

fn nearest_rank(p: f64, n: usize) -> u64 {
    ((p * n as f64).ceil() as u64).clamp(1, n as u64)
}

fn normal(rng: &mut fastrand::Rng) -> f64 {
    let (u, v) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Checks everything promised of what is sent for `samples`: at most `max` ascending distinct values; counts
/// adding up to the sample count; min and max exact; the sum exact up to rounding; the kept percentiles within
/// one bucket of the truth; every rank within the reported error. Returns the reported error.
fn check(name: &str, mut samples: Vec<f64>, max: usize) -> f64 {
    let counter = counter_of(&samples);
    let sent = counter.percentile_values(max).unwrap_or_else(|| panic!("{name}: values"));
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    assert!(sent.values.len() <= max, "{name}: {} values", sent.values.len());
    assert_eq!(sent.values.len(), sent.counts.len());
    assert!(sent.values.windows(2).all(|w| w[0] < w[1]), "{name}: ascending and distinct");
    assert_eq!(sent.counts.iter().sum::<f64>(), n as f64, "{name}: SampleCount exact");
    assert_eq!(sent.values[0], samples[0], "{name}: Minimum exact");
    assert_eq!(*sent.values.last().unwrap(), samples[n - 1], "{name}: Maximum exact");
    let sum: f64 = sent.values.iter().zip(&sent.counts).map(|(v, c)| v * c).sum();
    let truth = counter.sum.unwrap();
    assert!((sum - truth).abs() <= truth.abs() * 1e-9, "{name}: Sum {sum} vs {truth}");
    for p in KEPT_PERCENTILES {
        let k = nearest_rank(p, n);
        let (got, want) = (value_at_rank(&sent, k), samples[k as usize - 1]);
        assert!((got - want).abs() <= want * Distribution::BUCKET_WIDTH, "{name}: p{p} {got} vs {want}");
    }
    let step = (n / 5000).max(1);
    for k in (1..=n).step_by(step) {
        let (got, want) = (value_at_rank(&sent, k as u64), samples[k - 1]);
        let error = if want == 0.0 { got } else { (got - want).abs() / want };
        assert!(error <= sent.max_relative_error * (1.0 + 1e-9) + 1e-15, "{name}: rank {k}: {got} vs {want}");
    }
    sent.max_relative_error
}

#[test]
fn known_distributions_keep_their_percentiles_within_one_bucket() {
    let mut rng = fastrand::Rng::with_seed(7);
    let uniform: Vec<f64> = (0..100_000).map(|_| 1.0 + 99.0 * rng.f64()).collect();
    let log_normal: Vec<f64> = (0..100_000).map(|_| (3.0 + 1.0 * normal(&mut rng)).exp()).collect();
    let bimodal: Vec<f64> = (0..100_000)
        .map(|i| if i % 5 == 0 { 250.0 + 10.0 * normal(&mut rng) } else { 12.0 + normal(&mut rng) })
        .map(|v: f64| v.abs())
        .collect();
    let million: Vec<f64> = (0..1_000_000).map(|_| (0.5 + 1.5 * normal(&mut rng)).exp()).collect();
    for (name, samples) in
        [("uniform", uniform), ("log-normal", log_normal), ("bimodal", bimodal), ("10^6 log-normal", million)]
    {
        let error = check(name, samples, 150);
        eprintln!("{name}: values within {:.2}% of their samples", error * 100.0);
        assert!(error < 0.2, "{name}: the merged width stays modest ({error})");
    }
    check("one sample", vec![42.5], 150);
    check("two equal samples", vec![3.0, 3.0], 150);
    check("zeros and values", vec![0.0, 0.0, 5.0, 7.0, 7.5], 150);
    check("only zeros", vec![0.0; 4], 150);
}

#[test]
fn a_narrow_period_is_sent_bucket_by_bucket() {
    let samples: Vec<f64> = (0..1000).map(|i| 100.0 + f64::from(i) * 0.05).collect();
    let error = check("narrow", samples, 150);
    assert!(error <= Distribution::BUCKET_WIDTH, "no merging: {error}");
}

#[test]
fn fewer_values_allowed_still_give_exact_count_min_max_and_sum() {
    let mut rng = fastrand::Rng::with_seed(3);
    let samples: Vec<f64> = (0..20_000).map(|_| (2.0 * normal(&mut rng)).exp()).collect();
    check("EMF's 100", samples.clone(), 100);
    let tight = counter_of(&samples).percentile_values(5).expect("5 values: min, max and 3 runs");
    assert!(tight.values.len() <= 5);
    assert_eq!(tight.counts.iter().sum::<f64>(), 20_000.0);
}

#[test]
fn a_period_spanning_most_of_the_range_is_compacted_into_few_values() {
    let counter = counter_of(&[1e-100, 2e-100, 1e100, 2e100]);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ =
            done.send(counter.percentile_values(3).map(|sent| (sent.values.len(), sent.counts.iter().sum::<f64>())));
    });
    let sent = finished.recv_timeout(std::time::Duration::from_secs(20)).expect("finished");
    assert!(sent.is_some_and(|(values, count)| values <= 3 && count == 4.0), "{sent:?}");
}

#[test]
fn nothing_is_built_without_a_usable_distribution() {
    let mut with_negative = counter_of(&[-1.0, 2.0, 3.0]);
    with_negative.min = Some(-1.0);
    assert_eq!(with_negative.percentile_values(150), None, "negative samples: the statistic set instead");
    let mut off = counter_of(&[1.0, 2.0]);
    off.distribution = None;
    assert_eq!(off.percentile_values(150), None);
    let mut short = counter_of(&[1.0, 2.0]);
    short.count = Some(3);
    assert_eq!(short.percentile_values(150), None, "a distribution that does not hold the period's samples");
    assert_eq!(counter_of(&[1.0, 2.0]).percentile_values(2), None);
}

#[test]
fn small_whole_numbers_are_sent_as_themselves() {
    let samples: Vec<f64> = (0..10_000).map(|i| f64::from(i % 10)).collect();
    let sent = counter_of(&samples).percentile_values(150).expect("values");
    assert_eq!(sent.values, (0..10).map(f64::from).collect::<Vec<_>>());
    assert_eq!(sent.counts, [1000.0; 10]);
    let ms: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(counter_of(&ms).percentile_values(150).expect("values").values, ms);
}

#[test]
fn the_sum_stays_exact_when_every_sample_sits_at_the_same_place_in_its_bucket() {
    // Each value rounded to its significant bits is off the same way in every group: the remainders add up
    // instead of cancelling, and more groups than a few must take their share back.
    for offset in [0.1, 0.3, 0.5, 0.7, 0.9] {
        for buckets in [40_u32, 126, 600] {
            let samples: Vec<f64> = (0..buckets).map(|j| 1.0 + (f64::from(j) + offset) / 128.0).collect();
            let name = format!("{buckets} buckets at {offset} of their width");
            let sent = counter_of(&samples).percentile_values(150).expect("values");
            check(&name, samples, 150);
            // Only as many values as the sum needs leave their short form (which compresses well).
            let moved = sent.values.iter().filter(|&&v| short(v) != v).count();
            assert!(moved <= 8, "{name}: {moved} values moved");
        }
    }
}
