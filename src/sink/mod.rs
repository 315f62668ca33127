//! Where dumps go: the [`Sink`] seam, what a sink reports ([`SinkCounts`], [`SkipReason`]), and the sinks.
//! Sinks see counters, never the store or the exporter.

use std::future::Future;
use std::pin::Pin;

use crate::error::SaveError;
use crate::model::Counter;

#[cfg(feature = "cloudwatch")]
pub(crate) mod cloudwatch;
#[cfg(feature = "cloudwatch")]
pub(crate) mod limits;
mod log;
mod skip;

pub use log::LogSink;
pub use skip::SkipReason;

/// The future a [`Sink::save`] returns.
pub type SaveFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SaveError>> + Send + 'a>>;

/// A destination for dumped counters (pip's `_save`).
///
/// A dump hands the sink every non-empty counter at once. An `Err` keeps the data: cumulative counters are sent
/// again by the next dump, and counters taken for a reset are merged back into the store.
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
    /// Datums skipped because they break a limit, in the order of [`SkipReason::ALL`].
    pub skipped: [u64; SkipReason::ALL.len()],
    /// Counters whose duplicate dimension names were reduced to one (the last label of a name wins; a label
    /// named InstanceID replaces the instance dimension).
    pub dimensions_deduplicated: u64,
    /// Requests that failed after they were sent: the destination may have stored them, so they are not sent
    /// again (that would count them twice).
    pub requests_ambiguous: u64,
    /// The datums of those requests.
    pub datums_ambiguous: u64,
}

/// A shared sink saves through the sink it points at.
impl<T: Sink + ?Sized> Sink for std::sync::Arc<T> {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        (**self).save(counters)
    }

    fn view(&self) -> SinkView {
        (**self).view()
    }

    fn counts(&self) -> SinkCounts {
        (**self).counts()
    }
}
