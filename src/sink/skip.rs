//! [`SkipReason`]: why a sink skipped a counter instead of sending it.

use std::fmt;

/// Why a datum was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The metric name is empty, longer than 255 characters, not ASCII, or has control characters.
    MetricName,
    /// More than 30 dimensions.
    TooManyDimensions,
    /// A dimension name is empty, longer than 255 characters, starts with `:`, is not ASCII or has control
    /// characters.
    DimensionName,
    /// A dimension value is empty, longer than 1024 characters, not ASCII or has control characters.
    DimensionValue,
    /// A value is NaN, infinite, or beyond +-2^360.
    Value,
    /// A statistic set with no samples.
    EmptyStatistics,
    /// A timestamp more than two weeks old.
    TooOld,
    /// A timestamp more than two hours ahead.
    InFuture,
    /// A storage resolution other than 1 or 60.
    StorageResolution,
    /// The destination refused the datum itself (CloudWatch answered 400 for a request holding only it).
    Rejected,
    /// An EMF document of this metric alone, without properties, is larger than the destination takes (256 KB;
    /// 65,000 bytes in a UDP datagram): its dimensions and dimension sets are too long. For CloudWatch, a rollup
    /// datum left out because the counter's datums (its own, then its rollups, which travel in one request) would
    /// pass one request's limits (1 MB, 1000 datums): one count per datum left out.
    TooLarge,
}

impl SkipReason {
    /// Every reason, in a fixed order.
    pub const ALL: [SkipReason; 11] = [
        SkipReason::MetricName,
        SkipReason::TooManyDimensions,
        SkipReason::DimensionName,
        SkipReason::DimensionValue,
        SkipReason::Value,
        SkipReason::EmptyStatistics,
        SkipReason::TooOld,
        SkipReason::InFuture,
        SkipReason::StorageResolution,
        SkipReason::Rejected,
        SkipReason::TooLarge,
    ];

    /// A short snake_case name, used in warnings and self-telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::MetricName => "metric_name",
            SkipReason::TooManyDimensions => "too_many_dimensions",
            SkipReason::DimensionName => "dimension_name",
            SkipReason::DimensionValue => "dimension_value",
            SkipReason::Value => "value",
            SkipReason::EmptyStatistics => "empty_statistics",
            SkipReason::TooOld => "too_old",
            SkipReason::InFuture => "in_future",
            SkipReason::StorageResolution => "storage_resolution",
            SkipReason::Rejected => "rejected",
            SkipReason::TooLarge => "too_large",
        }
    }

    /// The position of this reason in [`SkipReason::ALL`].
    pub(crate) fn index(self) -> usize {
        SkipReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }

    /// Why CloudWatch refuses such a datum, for warnings.
    pub fn explain(self) -> &'static str {
        match self {
            SkipReason::MetricName => "metric names must be 1-255 ASCII characters without control characters",
            SkipReason::TooManyDimensions => "a datum may have at most 30 dimensions, InstanceID included",
            SkipReason::DimensionName => {
                "dimension names must be 1-255 ASCII characters, without control characters, not starting with ':'"
            }
            SkipReason::DimensionValue => "dimension values must be 1-1024 ASCII characters without control characters",
            SkipReason::Value => "values must be finite and within +-2^360",
            SkipReason::EmptyStatistics => "a statistic set needs at least one sample",
            SkipReason::TooOld => "timestamps may be at most two weeks old",
            SkipReason::InFuture => "timestamps may be at most two hours ahead",
            SkipReason::StorageResolution => "storage resolution must be 1 or 60",
            SkipReason::Rejected => "the destination refused the datum (a validation error for it alone)",
            SkipReason::TooLarge => {
                "an EMF document may be at most 256 KB (65,000 bytes over UDP), and this metric's alone, without \
                 properties, is larger; or a metric's datums and rollups pass one PutMetricData request's limits \
                 (1 MB, 1000 datums), and the rollups that do not fit are left out"
            }
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
