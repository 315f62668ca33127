//! CloudWatch's documented PutMetricData limits, checked before sending, and the counted skips of datums that
//! break them. Emulators do not enforce these limits; CloudWatch rejects the whole request if one datum breaks
//! one, so each datum is checked here and only the bad one is dropped.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

use super::SkipReason;
use crate::warn::{shown_name, WarnEvery};

/// Longest metric name, namespace or dimension name, in characters.
pub(crate) const MAX_NAME_LEN: usize = 255;
/// Longest dimension value, in characters.
pub(crate) const MAX_DIMENSION_VALUE_LEN: usize = 1024;
#[cfg(test)]
use crate::model::MAX_VALUE;
/// Oldest a datum's timestamp may be.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);
/// Furthest in the future a datum's timestamp may be.
pub(crate) const MAX_AHEAD: Duration = Duration::from_secs(2 * 3600);

/// Whether `s` is non-empty, at most `max` characters, ASCII, and free of control characters.
pub(crate) fn valid_text(s: &str, max: usize) -> bool {
    fits(s, max) && super::text::printable_ascii(s)
}

/// Whether `s` is non-empty and at most `max` bytes long.
fn fits(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max
}

/// [`valid_text`], and not blank. The space is the only whitespace `valid_text` lets through (the others are
/// control characters), so this looks for a byte that is not one instead of trimming.
pub(crate) fn valid_nonblank(s: &str, max: usize) -> bool {
    valid_text(s, max) && not_blank(s)
}

/// [`valid_nonblank`] read in the same pass as whether `s` is free of what a JSON string escapes: `None` when it
/// is not valid, else whether it is plain.
#[inline]
pub(crate) fn valid_nonblank_plain(s: &str, max: usize) -> Option<bool> {
    super::text::printable_ascii_plain(s).filter(|_| fits(s, max) && not_blank(s))
}

/// Whether `s` has a byte that is not a space.
fn not_blank(s: &str) -> bool {
    s.bytes().any(|b| b != b' ')
}

/// Checks a metric name.
pub(crate) fn check_metric_name(name: &str) -> Result<(), SkipReason> {
    if valid_nonblank(name, MAX_NAME_LEN) {
        Ok(())
    } else {
        Err(SkipReason::MetricName)
    }
}

/// Checks one dimension.
pub(crate) fn check_dimension(name: &str, value: &str) -> Result<(), SkipReason> {
    if !valid_nonblank(name, MAX_NAME_LEN) || name.starts_with(':') {
        return Err(SkipReason::DimensionName);
    }
    if !valid_nonblank(value, MAX_DIMENSION_VALUE_LEN) {
        return Err(SkipReason::DimensionValue);
    }
    Ok(())
}

/// Checks a value: finite, zero or within 2^-360 to 2^360 in magnitude.
pub(crate) fn check_value(value: f64) -> Result<f64, SkipReason> {
    if crate::model::in_range(value) {
        Ok(value)
    } else {
        Err(SkipReason::Value)
    }
}

/// A period's sum as CloudWatch takes it: every sample was in range when recorded, but their sum can pass
/// 2^360 (two samples of 2e108) or cancel to below 2^-360 without being zero; it is then the nearest value in
/// range (+-2^360, or 0), so that the period's count, minimum and maximum still go out.
pub(crate) fn sum_in_range(sum: f64) -> f64 {
    use crate::model::{MAX_VALUE, MIN_VALUE};
    if sum.abs() > MAX_VALUE {
        MAX_VALUE.copysign(sum)
    } else if sum.abs() < MIN_VALUE {
        0.0
    } else {
        sum
    }
}

/// Checks a timestamp against `now`.
pub(crate) fn check_timestamp(time: SystemTime, now: SystemTime) -> Result<SystemTime, SkipReason> {
    match now.duration_since(time) {
        Ok(age) if age > MAX_AGE => Err(SkipReason::TooOld),
        Err(ahead) if ahead.duration() > MAX_AHEAD => Err(SkipReason::InFuture),
        Ok(_) | Err(_) => Ok(time),
    }
}

/// Checks a namespace (at configuration time: a bad one makes every request fail).
pub(crate) fn check_namespace(namespace: &str) -> Result<(), &'static str> {
    if !valid_text(namespace, MAX_NAME_LEN) {
        Err("1-255 ASCII characters without control characters")
    } else if namespace.starts_with("AWS/") {
        Err("a namespace not starting with `AWS/` (reserved for AWS services)")
    } else if namespace.starts_with(':') {
        Err("a namespace not starting with ':'")
    } else {
        Ok(())
    }
}

/// Counts of skipped datums by reason, with warnings rate-limited to one per reason per minute.
#[derive(Debug, Default)]
pub(crate) struct SkipCounts {
    counts: [AtomicU64; SkipReason::ALL.len()],
    warn: [WarnEvery; SkipReason::ALL.len()],
}

impl SkipCounts {
    /// Counts one skipped datum and warns (at most once a minute per reason), naming the metric.
    pub(crate) fn skip(&self, reason: SkipReason, metric: &str) {
        self.skip_because(reason, metric, reason.explain());
    }

    /// [`skip`](Self::skip), with the warning saying `why` (the destination's own message).
    pub(crate) fn skip_because(&self, reason: SkipReason, metric: &str, why: &str) {
        let i = reason.index();
        let total = self.counts[i].fetch_add(1, Relaxed) + 1;
        if self.warn[i].ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                reason = reason.as_str(),
                metric = %shown_name(metric),
                skipped_so_far = total,
                "a datum was not sent to CloudWatch: {why}; the rest of the batch is sent",
            );
        }
    }

    /// How many datums were skipped for `reason`.
    #[cfg(test)]
    pub(crate) fn get(&self, reason: SkipReason) -> u64 {
        self.counts[reason.index()].load(Relaxed)
    }

    /// How many datums were skipped in all.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The counts, in the order of [`SkipReason::ALL`].
    pub(crate) fn to_array(&self) -> [u64; SkipReason::ALL.len()] {
        std::array::from_fn(|i| self.counts[i].load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_value_is_two_to_the_360() {
        assert_eq!(MAX_VALUE, 2f64.powi(360));
        assert!(check_value(MAX_VALUE).is_ok());
        assert_eq!(check_value(MAX_VALUE * 1.000_001), Err(SkipReason::Value));
        assert_eq!(check_value(-MAX_VALUE * 2.0), Err(SkipReason::Value));
    }

    #[test]
    fn blank_names_and_values_are_refused_and_spaces_inside_are_kept() {
        for blank in [" ", "    "] {
            assert_eq!(check_metric_name(blank), Err(SkipReason::MetricName), "{blank:?}");
            assert_eq!(check_dimension(blank, "v"), Err(SkipReason::DimensionName), "{blank:?}");
            assert_eq!(check_dimension("k", blank), Err(SkipReason::DimensionValue), "{blank:?}");
        }
        for text in [" a", "a ", " a b ", "x"] {
            assert_eq!(check_metric_name(text), Ok(()), "{text:?}");
            assert_eq!(check_dimension(text, text), Ok(()), "{text:?}");
        }
        // Other whitespace is a control character, refused as such.
        assert_eq!(check_metric_name("\t"), Err(SkipReason::MetricName));
        assert_eq!(check_dimension("k", " \n "), Err(SkipReason::DimensionValue));
    }

    #[test]
    fn texts_must_be_ascii_without_controls_and_within_length() {
        assert!(valid_text("a.b-c_d/e:f g", 255));
        assert!(!valid_text("", 255));
        assert!(!valid_text(&"x".repeat(256), 255));
        assert!(valid_text(&"x".repeat(255), 255));
        assert!(!valid_text("caf\u{e9}", 255));
        assert!(!valid_text("a\tb", 255));
        assert!(!valid_text("a\u{7f}", 255));
        // The same checks with whether the text has something a JSON string escapes.
        for s in ["a.b", "a\"b", "a\\b", "   ", "", "a\tb", "caf\u{e9}", "a longer \"quoted\" name"] {
            let plain = valid_nonblank(s, 255).then(|| !crate::sink::text::needs_json_escape(s));
            assert_eq!(valid_nonblank_plain(s, 255), plain, "{s:?}");
        }
        assert_eq!(valid_nonblank_plain(&"x".repeat(256), 255), None);
    }

    #[test]
    fn namespaces_may_not_start_with_aws() {
        assert!(check_namespace("MyApp/Orders").is_ok());
        assert!(check_namespace("AWS/EC2").is_err());
        assert!(check_namespace("").is_err());
    }

    #[test]
    fn skips_are_counted_per_reason() {
        let counts = SkipCounts::default();
        counts.skip(SkipReason::Value, "m");
        counts.skip(SkipReason::Value, "m");
        counts.skip(SkipReason::TooOld, "m");
        assert_eq!((counts.get(SkipReason::Value), counts.get(SkipReason::TooOld), counts.total()), (2, 1, 3));
    }
}
