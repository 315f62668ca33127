//! [`WarnEvery`]: at most one warning a minute for a recurring condition, so a bad input repeated a million
//! times costs one log line, not a million.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time between two warnings about the same condition.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(60);

/// Tells whether a warning about one condition may be logged now: the first time, then once a minute.
#[derive(Debug, Default)]
pub(crate) struct WarnEvery {
    last: Mutex<Option<Instant>>,
}

impl WarnEvery {
    /// True the first time and then at most once every [`WARN_EVERY`]; each `true` starts a new minute.
    pub(crate) fn ready(&self) -> bool {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            *last = Some(Instant::now());
            true
        } else {
            false
        }
    }
}

/// A metric name as a warning shows it: at most 80 characters, control and non-ASCII characters escaped.
pub(crate) fn shown_name(name: &str) -> String {
    name.chars().take(80).collect::<String>().escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_then_stays_quiet_within_the_minute() {
        let warn = WarnEvery::default();
        assert!(warn.ready());
        assert!((0..1000).all(|_| !warn.ready()));
    }
}
