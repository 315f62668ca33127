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

    /// What the sink has done since it was made, for self-telemetry (all zero for sinks that do not count).
    fn counts(&self) -> SinkCounts {
        SinkCounts::default()
    }
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
}

/// A shared sink saves through the sink it points at.
impl<T: Sink + ?Sized> Sink for std::sync::Arc<T> {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        (**self).save(counters)
    }

    fn counts(&self) -> SinkCounts {
        (**self).counts()
    }
}
