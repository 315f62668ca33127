//! Bad input, one table: each row records a bad value, name, label set or timestamp twice (in two dumps) beside
//! a good counter, against the local CloudWatch. Each row must be refused, skipped or corrected as documented,
//! counted twice, warned about once, published as self-telemetry, and the good counter must arrive both times.
//! Run by `scripts/test.sh`.

mod common;

use std::time::{Duration, SystemTime};

use cloudwatch_counters::SkipReason;
use cloudwatch_counters::{CloudWatchCounters, CounterType, Counters, Telemetry};
use common::capture_logs;
use common::localstack::{self, statistics, unique_namespace};
use metrics::{Key, Label};

/// What must become of a row's input.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Refused when recorded (not finite): counted in `values_rejected`.
    Rejected,
    /// Skipped at send time for this reason.
    Skipped(SkipReason),
    /// Refused at the call, as pip's "Counter name was not set": counted in `names_empty`.
    NameEmpty,
    /// Sent with its labels cut to 29: counted in `labels_cut`; arrives with 30 dimensions.
    LabelsCut,
    /// Valid for CloudWatch as it is: arrives unchanged under these dimensions.
    Arrives(&'static str, &'static [(&'static str, &'static str)]),
}

struct Row {
    what: &'static str,
    record: fn(&CloudWatchCounters),
    outcome: Outcome,
}

fn labels(n: usize) -> Vec<Label> {
    (0..n).map(|i| Label::new(format!("k{i:02}"), "v")).collect()
}

const ROWS: &[Row] = &[
    Row { what: "NaN", record: |c| c.stats("nan", f64::NAN), outcome: Outcome::Rejected },
    Row { what: "+Inf", record: |c| c.last("inf", f64::INFINITY), outcome: Outcome::Rejected },
    Row { what: "-Inf", record: |c| c.end_timing("neg_inf", f64::NEG_INFINITY), outcome: Outcome::Rejected },
    Row { what: "1e400", record: |c| c.stats("huge", "1e400".parse().unwrap()), outcome: Outcome::Rejected },
    Row { what: "beyond 2^360", record: |c| c.stats("big", 1e109), outcome: Outcome::Rejected },
    Row { what: "below 2^-360", record: |c| c.last("tiny", 1e-109), outcome: Outcome::Rejected },
    Row { what: "empty name", record: |c| c.increment("", 1), outcome: Outcome::NameEmpty },
    Row {
        what: "256-char name",
        record: |c| c.increment(&"n".repeat(256), 1),
        outcome: Outcome::Skipped(SkipReason::MetricName),
    },
    Row {
        what: "31 labels through metrics",
        record: |c| metrics::with_local_recorder(&c.recorder(), || metrics::counter!("wide", labels(31)).increment(1)),
        outcome: Outcome::LabelsCut,
    },
    Row {
        what: "31 labels on a handle",
        record: |c| c.handle_for_key(&Key::from_parts("wide", labels(31)), CounterType::Increment).increment(1),
        outcome: Outcome::Skipped(SkipReason::TooManyDimensions),
    },
    Row {
        what: "1025-char dimension value",
        record: |c| {
            let key = Key::from_parts("long_value", vec![Label::new("k", "v".repeat(1025))]);
            c.handle_for_key(&key, CounterType::Increment).increment(1);
        },
        outcome: Outcome::Skipped(SkipReason::DimensionValue),
    },
    Row {
        what: "= in name and value",
        record: |c| {
            let key = Key::from_parts("a=b", vec![Label::new("k", "x=y")]);
            c.handle_for_key(&key, CounterType::Increment).increment(1);
        },
        outcome: Outcome::Arrives("a=b", &[("k", "x=y")]),
    },
    Row {
        what: "non-ASCII name",
        record: |c| c.increment("caf\u{e9}.calls", 1),
        outcome: Outcome::Skipped(SkipReason::MetricName),
    },
    Row {
        what: "non-ASCII dimension value",
        record: |c| {
            let key = Key::from_parts("city", vec![Label::new("name", "Z\u{fc}rich")]);
            c.handle_for_key(&key, CounterType::Increment).increment(1);
        },
        outcome: Outcome::Skipped(SkipReason::DimensionValue),
    },
    Row {
        what: "Timestamp three weeks old",
        record: |c| c.timestamp("old", SystemTime::now() - Duration::from_secs(21 * 24 * 3600)),
        outcome: Outcome::Skipped(SkipReason::TooOld),
    },
];

/// How often the row's outcome was counted, and the line its warning carries.
fn counted(outcome: Outcome, t: &Telemetry) -> (u64, &'static str) {
    match outcome {
        Outcome::Rejected => (t.values_rejected, "were passed to counters and not recorded"),
        Outcome::NameEmpty => (t.names_empty, "Counter name was not set"),
        Outcome::Skipped(reason) => (t.skipped(reason), "a datum was not sent to CloudWatch"),
        Outcome::LabelsCut => (t.labels_cut, "labels of more names than CloudWatch"),
        Outcome::Arrives(..) => (2, ""),
    }
}

type Dims = Vec<(&'static str, &'static str)>;

/// The self-telemetry counter that publishes the row's count, and the total published after two dumps: a count
/// made while dumping goes out with the next dump (so only the first is sent), one made while recording goes
/// out with the dump that follows it (both are sent).
fn telemetry_metric(outcome: Outcome) -> Option<(&'static str, Dims, f64)> {
    match outcome {
        Outcome::Rejected => Some(("cloudwatch_counters.values_rejected", vec![], 1.0)),
        Outcome::Skipped(reason) => {
            Some(("cloudwatch_counters.datums_skipped", vec![("reason", reason.as_str())], 1.0))
        }
        Outcome::LabelsCut => Some(("cloudwatch_counters.labels_cut", vec![], 2.0)),
        Outcome::NameEmpty => Some(("cloudwatch_counters.names_empty", vec![], 2.0)),
        Outcome::Arrives(..) => None,
    }
}

#[tokio::test]
#[ignore = "needs the local CloudWatch: run scripts/test.sh"]
async fn every_bad_input_is_refused_skipped_or_corrected_counted_and_warned_once() {
    let reader = localstack::reader();
    for row in ROWS {
        let ns = unique_namespace("bad-input");
        // Reset mode: each dump sends what happened since the previous one.
        let hour = Duration::from_secs(3600);
        let counters =
            localstack::reset_mode_builder(&ns, "bad-input-host", &localstack::endpoint(), hour).build().unwrap();
        counters.open().await.unwrap();
        let (logs_guard, logs) = capture_logs();
        for _ in 0..2 {
            (row.record)(&counters);
            counters.increment("good", 1);
            counters.dump().await.unwrap_or_else(|e| panic!("{}: the dump failed: {e}", row.what));
        }
        drop(logs_guard);
        let (count, warning) = counted(row.outcome, &counters.telemetry());
        assert_eq!(count, 2, "{}: counted twice", row.what);
        if !warning.is_empty() {
            assert_eq!(logs.lines_with(warning), 1, "{}: warned once:\n{}", row.what, logs.text());
        }
        assert!(!logs.text().contains("panicked"), "{}", row.what);

        let host = [("InstanceID", "bad-input-host")];
        let good = statistics(&reader, &ns, "good", &host).await;
        assert_eq!((good.sample_count(), good.sum()), (Some(2.0), Some(2.0)), "{}: the good counter arrives", row.what);
        if let Some((metric, extra, published)) = telemetry_metric(row.outcome) {
            // Self-telemetry is one metric for the fleet: no InstanceID.
            let p = statistics(&reader, &ns, metric, &extra).await;
            assert_eq!(p.sum(), Some(published), "{}: {metric} published", row.what);
        }
        match row.outcome {
            Outcome::LabelsCut => {
                let labels: Vec<(String, String)> = (0..29).map(|i| (format!("k{i:02}"), "v".to_owned())).collect();
                let mut dims: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                dims.push(host[0]);
                let p = statistics(&reader, &ns, "wide", &dims).await;
                assert_eq!(p.sum(), Some(2.0), "{}: both calls arrive under 30 dimensions", row.what);
            }
            Outcome::Arrives(metric, extra) => {
                let dims: Vec<_> = host.iter().copied().chain(extra.iter().copied()).collect();
                let p = statistics(&reader, &ns, metric, &dims).await;
                assert_eq!(p.sum(), Some(2.0), "{}: arrives unchanged", row.what);
            }
            _ => {}
        }
        counters.close().await.unwrap();
    }
}

/// LastValue and Timestamp counters both hold one level, of different meanings: a handle's call of the other
/// type is refused and counted, as every call that does not match the counter's type, never written.
#[test]
fn a_level_call_of_the_other_level_type_is_refused_and_counted() {
    let c = common::recording_counters();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let gauge = c.handle("queue.depth", CounterType::LastValue);
    gauge.set_last(5.0);
    gauge.timestamp(at);
    let time = c.handle("backup.at", CounterType::Timestamp);
    time.timestamp(at);
    time.set_last(1.5);
    time.add_last(1.0);
    assert_eq!(c.get("queue.depth", CounterType::LastValue).last, Some(5.0));
    assert_eq!(c.get("backup.at", CounterType::Timestamp).time, Some(at));
    assert_eq!(c.dump_blocking().unwrap().rejected_values, 3);
}
