//! Where dumps go: the [`Sink`] seam, what a sink reports ([`SinkCounts`], [`SkipReason`]), and the sinks.
//! Sinks see counters, never the store or the exporter.

use std::future::Future;
use std::pin::Pin;

use crate::error::SaveError;
use crate::model::Counter;

#[cfg(feature = "cloudwatch")]
pub(crate) mod cloudwatch;
mod dimensions;
pub(crate) mod emf;
// Some checks serve only the CloudWatch sink.
#[cfg_attr(not(feature = "cloudwatch"), allow(dead_code))]
pub(crate) mod limits;
mod log;
mod skip;
pub(crate) mod text;
pub(crate) mod units;

pub(crate) use dimensions::merge_labels;
pub use log::LogSink;
pub use skip::SkipReason;

/// The future a [`Sink::save`] returns.
pub type SaveFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SaveError>> + Send + 'a>>;

/// A destination for dumped counters (pip's `_save`).
///
/// A dump hands the sink its view of every counter at once ([`Sink::view`]). After an `Err`, what the sink says
/// was not saved ([`SaveError::partial`]; all of it if it does not say) goes back into the counters for the next
/// dump, unless the error is [ambiguous](SaveError::ambiguous): then what the destination may hold is not sent
/// again.
///
/// ```
/// use cloudwatch_counters::{Counter, SaveFuture, Sink};
///
/// /// Prints each counter's name, dimensions and count.
/// struct Print;
///
/// impl Sink for Print {
///     fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
///         for counter in counters {
///             let dimensions: Vec<String> = counter.dimensions().map(|(k, v)| format!("{k}={v}")).collect();
///             println!("{} [{}] {:?}", counter.name(), dimensions.join(","), counter.count);
///         }
///         Box::pin(async { Ok(()) })
///     }
/// }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Saves one dump's counters.
    ///
    /// # Errors
    /// A [`SaveError`] when some or all counters were not saved; [`SaveError::partial`] names those that were
    /// not, so that only they are kept for the next dump.
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a>;

    /// Which view of the counters the sink receives: [`SinkView::Period`] (the default) for a metrics backend,
    /// [`SinkView::Totals`] for a local report such as the log.
    fn view(&self) -> SinkView {
        SinkView::Period
    }

    /// Whether the sink publishes percentiles from [`Counter::distribution`]: only then (and with
    /// `options.percentiles` on) do Interval and Statistics counters count their samples in buckets. Default
    /// `false`.
    fn percentiles(&self) -> bool {
        false
    }

    /// For a save that was cut off before it finished (a bounded `close`): the indices (into the slice given to
    /// `save`) of the counters not to put back: those whose data may have reached the destination, because
    /// their request was sent or being sent, and those the sink dropped for good (skipped and counted). A sink
    /// that counts ambiguous requests counts the one in flight here, in [`SinkCounts::datums_ambiguous`]: what
    /// that count grows by is what the cut-off reports as unconfirmed. The others go back into the counters.
    /// `None` (the default): unknown, so all of it is taken as maybe delivered (and counted as ambiguous by the
    /// exporter), and none of it is sent again.
    fn maybe_delivered(&self) -> Option<Vec<usize>> {
        None
    }

    /// What the sink has done since it was made, for self-telemetry (all zero for sinks that do not count).
    fn counts(&self) -> SinkCounts {
        SinkCounts::default()
    }
}

/// Which view of the counters a dump hands a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SinkView {
    /// What happened since the previous dump: the increments and samples of the period, and the current level
    /// of gauges and timestamps. What a metrics backend (CloudWatch) adds up needs exactly this: nothing is sent
    /// twice.
    #[default]
    Period,
    /// pip's running view: totals since the start (or since the last reset, with `options.reset_timeout`), as
    /// `get_all()` shows them. For local reports.
    Totals,
}

/// A sink's running totals, read by [`Sink::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkCounts {
    /// Datums the destination accepted.
    pub datums_sent: u64,
    /// Requests the destination accepted.
    pub requests_sent: u64,
    /// Requests that failed (after the SDK's own retries).
    pub requests_failed: u64,
    /// Datums skipped because they break a limit, in the order of [`SkipReason::ALL`] (read with
    /// [`SinkCounts::skipped`]).
    pub(crate) skipped: [u64; SkipReason::ALL.len()],
    /// Counters whose duplicate dimension names were reduced to one (the last label of a name wins; a label
    /// named InstanceID replaces the instance dimension).
    pub dimensions_deduplicated: u64,
    /// Requests that failed after they were sent: the destination may have stored them, so they are not sent
    /// again (that would count them twice).
    pub requests_ambiguous: u64,
    /// The datums of those requests.
    pub datums_ambiguous: u64,
    /// Documents dropped because a bounded buffer (the EMF agent output's) was full.
    pub documents_dropped: u64,
}

impl SinkCounts {
    /// Datums skipped for `reason`.
    pub fn skipped(&self, reason: SkipReason) -> u64 {
        self.skipped[reason.index()]
    }

    /// These counts with `count` datums skipped for `reason` (for sinks of your own).
    pub fn with_skipped(mut self, reason: SkipReason, count: u64) -> SinkCounts {
        self.skipped[reason.index()] = count;
        self
    }
}

/// A shared sink saves through the sink it points at.
impl<T: Sink + ?Sized> Sink for std::sync::Arc<T> {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        (**self).save(counters)
    }

    fn view(&self) -> SinkView {
        (**self).view()
    }

    fn percentiles(&self) -> bool {
        (**self).percentiles()
    }

    fn maybe_delivered(&self) -> Option<Vec<usize>> {
        (**self).maybe_delivered()
    }

    fn counts(&self) -> SinkCounts {
        (**self).counts()
    }
}
