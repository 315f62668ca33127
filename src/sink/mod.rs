//! Where dumps go: the [`Sink`] seam and its implementations.

use std::future::Future;
use std::pin::Pin;

use crate::counter::Counter;
use crate::error::SaveError;

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
}

/// A shared sink saves through the sink it points at.
impl<T: Sink + ?Sized> Sink for std::sync::Arc<T> {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        (**self).save(counters)
    }
}
