//! [`LogCounters`]: pip's `LogCounters`, counters dumped one line each to stdout or any writer.

use std::fmt;
use std::io::Write;

use super::cached::{forward_counters_api, CachedCounters};
use crate::config::CountersOptions;
use crate::error::Error;
use crate::exporter::DumpReport;
use crate::sink::LogSink;

/// pip's `LogCounters`: [`CachedCounters`] that dump to a [`LogSink`], sorted by name, one line per counter:
/// `Counter orders.create.exec_time { "type": INTERVAL, "last": 51.2, "count": 3, ... }`.
#[derive(Clone)]
pub struct LogCounters {
    counters: CachedCounters,
}

impl LogCounters {
    /// Log counters that write to standard output.
    pub fn new(options: CountersOptions) -> LogCounters {
        LogCounters { counters: CachedCounters::new(LogSink::stdout(), options) }
    }

    /// Log counters that write to `writer`.
    pub fn to_writer(writer: impl Write + Send + 'static, options: CountersOptions) -> LogCounters {
        LogCounters { counters: CachedCounters::new(LogSink::to_writer(writer), options) }
    }

    /// Starts the interval dumps; see [`CachedCounters::open`].
    ///
    /// # Errors
    /// As [`CachedCounters::open`].
    pub async fn open(&self) -> Result<(), Error> {
        self.counters.open().await
    }

    /// [`open`](Self::open) for synchronous code.
    ///
    /// # Errors
    /// As [`CachedCounters::open`].
    pub fn open_blocking(&self) -> Result<(), Error> {
        self.counters.open_blocking()
    }

    /// Whether the interval dumps are running.
    pub fn is_open(&self) -> bool {
        self.counters.is_open()
    }

    /// Stops the interval dumps and prints what is left; see [`CachedCounters::close`].
    ///
    /// # Errors
    /// As [`CachedCounters::close`].
    pub async fn close(&self) -> Result<DumpReport, Error> {
        self.counters.close().await
    }

    /// [`close`](Self::close) for synchronous code.
    ///
    /// # Errors
    /// As [`CachedCounters::close_blocking`].
    pub fn close_blocking(&self) -> Result<DumpReport, Error> {
        self.counters.close_blocking()
    }
}

forward_counters_api!(LogCounters);

impl fmt::Debug for LogCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LogCounters").field(&self.counters).finish()
    }
}
