//! CloudWatch's unit names for `metrics` units, where the two mean exactly the same thing (shared by the
//! CloudWatch and EMF sinks).

/// The CloudWatch unit name for a `metrics` unit; `None` for nanoseconds (CloudWatch has none) and for Kibibytes
/// and up (CloudWatch's Kilobytes, Megabytes, ... are not clearly binary).
pub(crate) fn unit_name(unit: metrics::Unit) -> Option<&'static str> {
    use metrics::Unit as M;
    Some(match unit {
        M::Count => "Count",
        M::Percent => "Percent",
        M::Seconds => "Seconds",
        M::Milliseconds => "Milliseconds",
        M::Microseconds => "Microseconds",
        M::Bytes => "Bytes",
        M::CountPerSecond => "Count/Second",
        M::BitsPerSecond => "Bits/Second",
        M::KilobitsPerSecond => "Kilobits/Second",
        M::MegabitsPerSecond => "Megabits/Second",
        M::GigabitsPerSecond => "Gigabits/Second",
        M::TerabitsPerSecond => "Terabits/Second",
        _ => return None,
    })
}
