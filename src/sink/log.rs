//! [`LogSink`]: pip's `LogCounters` output, one line per counter to stdout or any writer.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::SaveError;
use crate::model::{Counter, CounterType};
use crate::sink::{SaveFuture, Sink, SinkView};

/// Writes each dump as pip's LogCounters does: counters sorted by name, one line each, only the fields that are
/// set: `Counter orders.create.exec_time { "type": INTERVAL, "last": 51.2, "count": 3, "min": 50.1, "max": 52.9, "avg": 51.4 }`.
/// Dimensions follow the name in brackets: `Counter http.requests[status=200] { ... }`.
pub struct LogSink {
    writer: Mutex<Box<dyn Write + Send>>,
}

impl LogSink {
    /// A sink that writes to standard output.
    pub fn stdout() -> LogSink {
        LogSink::to_writer(std::io::stdout())
    }

    /// A sink that writes to `writer`.
    pub fn to_writer(writer: impl Write + Send + 'static) -> LogSink {
        LogSink { writer: Mutex::new(Box::new(writer)) }
    }
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink").finish_non_exhaustive()
    }
}

/// The log shows pip's running view: totals since the start, or since the last reset.
impl Sink for LogSink {
    fn view(&self) -> SinkView {
        SinkView::Totals
    }

    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        Box::pin(async move {
            let mut sorted: Vec<&Counter> = counters.iter().collect();
            sorted.sort_by(|a, b| a.name().cmp(b.name()).then_with(|| a.dimensions().cmp(b.dimensions())));
            let text: String = sorted.into_iter().map(format_counter).collect();
            let mut writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            writer
                .write_all(text.as_bytes())
                .and_then(|()| writer.flush())
                .map_err(|e| SaveError::with_source("writing counters to the log failed", e))
        })
    }
}

/// One counter as a log line (with its trailing newline). Control characters in its name and dimensions (a label
/// value taken from a request may hold a newline) are escaped, so that a counter never writes more than its line.
pub(crate) fn format_counter(counter: &Counter) -> String {
    let mut line = String::from("Counter ");
    push_escaped(&mut line, counter.name());
    for (i, (key, value)) in counter.dimensions().enumerate() {
        line.push(if i == 0 { '[' } else { ',' });
        push_escaped(&mut line, key);
        line.push('=');
        push_escaped(&mut line, value);
    }
    if !counter.dimensions().is_empty() {
        line.push(']');
    }
    let _ = write!(line, " {{ \"type\": {}", counter.counter_type);
    let fields = [
        ("last", counter.last),
        // A fractional Increment total (tracing events) is exact in `sum`; pip's count is a number.
        (
            "count",
            if counter.counter_type == CounterType::Increment { counter.sum } else { None }
                .or(counter.count.map(|c| c as f64)),
        ),
        ("min", counter.min),
        ("max", counter.max),
        ("avg", counter.average),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            let _ = write!(line, ", \"{name}\": {value}");
        }
    }
    if let Some(time) = counter.time {
        let _ = write!(line, ", \"time\": {}", format_time(time));
    }
    line.push_str(" }\n");
    line
}

/// `text`, its control characters escaped (`\n`, `\u{1b}`, ...).
fn push_escaped(line: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_control() {
            line.extend(c.escape_default());
        } else {
            line.push(c);
        }
    }
}

/// `time` as milliseconds since the Unix epoch, the value CloudWatchCounters publishes for Timestamp counters.
fn format_time(time: SystemTime) -> String {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis().to_string(),
        Err(e) => format!("-{}", e.duration().as_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_list_only_the_fields_that_are_set() {
        let mut c = Counter::new("a.calls", CounterType::Increment);
        c.count = Some(3);
        assert_eq!(format_counter(&c), "Counter a.calls { \"type\": COUNT, \"count\": 3 }\n");
        let mut t = Counter::new("a.time", CounterType::Timestamp);
        t.time = Some(UNIX_EPOCH + Duration::from_millis(1_234));
        t.set_dimensions(vec![("k", "v")]);
        assert_eq!(format_counter(&t), "Counter a.time[k=v] { \"type\": TIME, \"time\": 1234 }\n");
    }

    #[test]
    fn a_counter_never_writes_more_than_its_line() {
        let mut c = Counter::new("a\ncalls", CounterType::Increment);
        c.count = Some(1);
        c.set_dimensions(vec![("k", "v\nCounter forged { \"type\": COUNT, \"count\": 999 }"), ("j\r", "\u{1b}[31m")]);
        let line = format_counter(&c);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.starts_with("Counter a\\ncalls[k=v\\nCounter forged"), "{line}");
        assert!(line.contains(",j\\r=\\u{1b}[31m]"), "{line}");
    }
}
