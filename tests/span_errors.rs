//! A span that saw an ERROR event counts `<base>.errors`.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType};
use common::recording_counters as counters;
use tracing::instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn subscriber(counters: &CachedCounters) -> impl tracing::Subscriber + Send + Sync {
    Registry::default().with(counters.layer())
}

#[instrument(err)]
fn fails(fail: bool) -> Result<(), String> {
    if fail {
        Err("boom".into())
    } else {
        Ok(())
    }
}

#[test]
fn a_span_that_saw_an_error_event_counts_an_error() {
    let c = counters();
    tracing::subscriber::with_default(subscriber(&c), || {
        let _ = fails(true);
        let _ = fails(false);
        let _ = fails(true);
    });
    assert_eq!(c.get("span_errors.fails.exec_time", CounterType::Interval).count, Some(3));
    assert_eq!(c.get("span_errors.fails.errors", CounterType::Increment).count, Some(2));
}
