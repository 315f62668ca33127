//! Self-telemetry: what the counters and their sink did ([`Telemetry`]), readable through the API and
//! published as Increment counters under the reserved prefix [`TELEMETRY_PREFIX`] (unless turned off with
//! `options.telemetry = false`).
//!
//! | counter                                       | counts                                              |
//! |-----------------------------------------------|-----------------------------------------------------|
//! | `cloudwatch_counters.datums_sent`             | datums the destination accepted                     |
//! | `cloudwatch_counters.requests_sent`           | requests the destination accepted                   |
//! | `cloudwatch_counters.requests_failed`         | requests that failed (after the SDK's retries)      |
//! | `cloudwatch_counters.datums_skipped`, `reason`| datums skipped for breaking a limit, per reason     |
//! | `cloudwatch_counters.keys_dropped`            | new keys refused past `options.max_counters`        |
//! | `cloudwatch_counters.values_rejected`         | values refused: not finite, out of range, wrong type|
//! | `cloudwatch_counters.values_saturated`        | increments past a period's range, 2^62 - 1 and -2^62|
//! | `cloudwatch_counters.names_empty`             | updates of counters without a name                  |
//! | `cloudwatch_counters.dumps_failed`            | dumps whose save failed (the data was kept)         |
//! | `cloudwatch_counters.labels_cut`              | metrics whose labels past 29 were cut               |
//! | `cloudwatch_counters.dimensions_deduplicated` | datums whose duplicate dimension names were merged  |
//! | `cloudwatch_counters.requests_ambiguous`      | requests that failed after being sent (not re-sent) |
//! | `cloudwatch_counters.datums_ambiguous`        | the datums of those requests                        |
//! | `cloudwatch_counters.documents_dropped`       | EMF documents dropped: the agent's buffer was full  |
//! | (local only) `counters_expired`, `datums_sent`, `requests_sent` | idle expirations; what was sent   |
//!
//! A dump adds what happened since the previous one; the new counts never make a dump send on their own, they
//! go out with the next save of the service's own counters.
//!
//! What it costs: only problems are published, and only when they happen. `datums_sent` and `requests_sent`
//! (which change at every dump) stay local ([`Telemetry`]); the others are published only in a period in which
//! they grew. The CloudWatch sink publishes them without InstanceID (with the default dimensions), so a healthy
//! fleet creates no telemetry metric, and each kind of problem creates one metric for the whole fleet.

use metrics::{Key, Label};

use crate::model::CounterType;
use crate::sink::{SinkCounts, SkipReason};
use crate::store::Store;

pub use crate::model::TELEMETRY_PREFIX;

/// Running totals of what the counters and their sink did, since they were made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Telemetry {
    /// Datums the destination accepted (EMF: metrics written, or taken into the agent output's buffer).
    pub datums_sent: u64,
    /// Requests the destination accepted (EMF: documents written, or taken into the agent output's buffer; not
    /// those [dropped](Self::documents_dropped)).
    pub requests_sent: u64,
    /// Requests that failed (after the SDK's own retries).
    pub requests_failed: u64,
    /// Registrations of new keys refused because `options.max_counters` live counters existed (one at each
    /// refusal: a key refused twice counts twice). The values recorded through them are counted in
    /// `values_rejected` too.
    pub keys_dropped: u64,
    /// Values refused by counters (counted at each dump): not finite, beyond CloudWatch's range (2^-360 to
    /// 2^360 in magnitude), not fitting the counter's type, or recorded into a counter that no longer records
    /// (a key refused past `options.max_counters`, or a handle kept across a clear or a type change).
    pub values_rejected: u64,
    /// Increments that would have taken a period's count past 2^62 - 1 (or -2^62) and saturated there instead
    /// of wrapping.
    pub values_saturated: u64,
    /// Updates refused because the counter's name was empty (pip's "Counter name was not set").
    pub names_empty: u64,
    /// Dumps whose save failed; their data was kept for the next one.
    pub dumps_failed: u64,
    /// Metric registrations (or metric events) whose labels past 29 were cut to fit CloudWatch's 30 dimensions.
    pub labels_cut: u64,
    /// Datums whose duplicate dimension names were merged (the last label of a name wins; a label named
    /// InstanceID replaces the instance dimension).
    pub dimensions_deduplicated: u64,
    /// Requests that failed after they were sent: CloudWatch may have stored them, so they were not sent again
    /// (that would count them twice); if it did not, their data is lost.
    pub requests_ambiguous: u64,
    /// The datums of those requests.
    pub datums_ambiguous: u64,
    /// Counters that left the store after `options.idle_timeout` without an update (kept local, not published).
    pub counters_expired: u64,
    /// EMF documents dropped because the agent output's buffer was full (the agent was away too long).
    pub documents_dropped: u64,
    skipped: [u64; SkipReason::ALL.len()],
}

/// What the store and the exporter counted, for [`Telemetry::new`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StoreCounts {
    pub(crate) keys_dropped: u64,
    pub(crate) values_rejected: u64,
    pub(crate) values_saturated: u64,
    pub(crate) dumps_failed: u64,
    pub(crate) labels_cut: u64,
    pub(crate) names_empty: u64,
    pub(crate) requests_abandoned: u64,
    pub(crate) datums_abandoned: u64,
    pub(crate) counters_expired: u64,
}

impl Telemetry {
    pub(crate) fn new(sink: SinkCounts, store: StoreCounts) -> Telemetry {
        Telemetry {
            datums_sent: sink.datums_sent,
            requests_sent: sink.requests_sent,
            requests_failed: sink.requests_failed,
            keys_dropped: store.keys_dropped,
            values_rejected: store.values_rejected,
            values_saturated: store.values_saturated,
            names_empty: store.names_empty,
            dumps_failed: store.dumps_failed,
            labels_cut: store.labels_cut,
            dimensions_deduplicated: sink.dimensions_deduplicated,
            requests_ambiguous: sink.requests_ambiguous + store.requests_abandoned,
            datums_ambiguous: sink.datums_ambiguous + store.datums_abandoned,
            counters_expired: store.counters_expired,
            documents_dropped: sink.documents_dropped,
            skipped: sink.skipped,
        }
    }

    /// Datums skipped for `reason`: a counter that cannot be sent at all (or that CloudWatch refused alone)
    /// counts once, whatever rollup datums it would have made; a rollup datum left out on its own counts once.
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped[reason.index()]
    }

    /// Datums skipped for any reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// The totals of the plain counters, in the order of [`PLAIN_NAMES`].
    fn plain(&self) -> [u64; PLAIN_NAMES.len()] {
        [
            self.datums_sent,
            self.requests_sent,
            self.requests_failed,
            self.keys_dropped,
            self.values_rejected,
            self.dumps_failed,
            self.labels_cut,
            self.values_saturated,
            self.names_empty,
            self.dimensions_deduplicated,
            self.requests_ambiguous,
            self.datums_ambiguous,
            self.counters_expired,
            self.documents_dropped,
        ]
    }
}

/// The names of the published counters without dimensions.
const PLAIN_NAMES: [&str; 14] = [
    "cloudwatch_counters.datums_sent",
    "cloudwatch_counters.requests_sent",
    "cloudwatch_counters.requests_failed",
    "cloudwatch_counters.keys_dropped",
    "cloudwatch_counters.values_rejected",
    "cloudwatch_counters.dumps_failed",
    "cloudwatch_counters.labels_cut",
    "cloudwatch_counters.values_saturated",
    "cloudwatch_counters.names_empty",
    "cloudwatch_counters.dimensions_deduplicated",
    "cloudwatch_counters.requests_ambiguous",
    "cloudwatch_counters.datums_ambiguous",
    "cloudwatch_counters.counters_expired",
    "cloudwatch_counters.documents_dropped",
];

/// Counts that change at every dump: kept local, never published (they would cost a metric per instance).
const LOCAL_ONLY: [&str; 3] =
    ["cloudwatch_counters.datums_sent", "cloudwatch_counters.requests_sent", "cloudwatch_counters.counters_expired"];

/// Adds to the telemetry counters in `store` what happened between `published` and `now`. They are reserved
/// counters: telemetry alone never makes a dump send.
pub(crate) fn record_deltas(store: &Store, published: &Telemetry, now: &Telemetry) {
    let plain = PLAIN_NAMES.iter().zip(now.plain().into_iter().zip(published.plain()));
    for (name, (now, before)) in plain.filter(|(name, _)| !LOCAL_ONLY.contains(name)) {
        add_delta(store, || Key::from_static_name(name), now.saturating_sub(before));
    }
    let skipped = SkipReason::ALL.iter().zip(now.skipped.into_iter().zip(published.skipped));
    for (reason, (now, before)) in skipped {
        let key = || {
            let label = Label::from_static_parts("reason", reason.as_str());
            Key::from_parts("cloudwatch_counters.datums_skipped", vec![label])
        };
        add_delta(store, key, now.saturating_sub(before));
    }
}

/// Adds `delta` to the reserved Increment counter `key` (built only when there is something to add).
fn add_delta(store: &Store, key: impl FnOnce() -> Key, delta: u64) {
    if delta > 0 {
        store.reserved_cell(&key(), CounterType::Increment).add_unsigned(delta);
    }
}
