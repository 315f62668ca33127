//! Where dumps go: the [`Sink`] seam and its implementations.

use std::future::Future;
use std::pin::Pin;

use crate::counter::Counter;
use crate::error::SaveError;
use crate::sink::limits::SkipReason;

pub mod cloudwatch;
pub mod datum;
pub mod limits;
pub mod log;

/// The future a [`Sink::save`] returns.
pub type SaveFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SaveError>> + Send + 'a>>;

/// A destination for dumped counters (pip's `_save`).
///
/// A dump hands the sink every non-empty counter at once. An `Err` keeps the data: cumulative counters are sent
/// again by the next dump, and counters taken for a reset are merged back into the store.
pub trait Sink: Send + Sync + 'static {
    /// Saves one dump's counters.
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a>;

    /// What the sink has done since it was made, for self-telemetry (all zero for sinks that do not count).
    fn counts(&self) -> SinkCounts {
        SinkCounts::default()
    }
}

/// A sink's running totals, read by [`Sink::counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
