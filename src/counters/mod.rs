//! The counters types users hold, as in pip's `count` package: [`CachedCounters`] (the store and its
//! exporter), [`CloudWatchCounters`], [`LogCounters`], [`CompositeCounters`] and [`NullCounters`]. They wire the
//! front-ends, the exporter and a sink together; nothing below imports them.

mod cached;
#[cfg(feature = "cloudwatch")]
mod cloudwatch;
mod composite;
mod emf;
mod log;
mod null;

pub use cached::CachedCounters;
#[cfg(feature = "cloudwatch")]
pub use cloudwatch::{CloudWatchCounters, CloudWatchCountersBuilder};
pub use composite::CompositeCounters;
pub use emf::{EmfCounters, EmfCountersBuilder, DEFAULT_AGENT_BUFFER, DEFAULT_AGENT_ENDPOINT};
pub use log::LogCounters;
pub use null::NullCounters;
