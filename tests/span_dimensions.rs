//! Span fields as dimensions: allow-listed fields, recorded when the span is created or later with
//! `span.record(..)`, label the span's counters; other fields do not; the values' cardinality stays under the cap.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType, CountersOptions};
use common::{find, RecordingSink};
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn labels(c: &cloudwatch_counters::Counter) -> Vec<(&str, &str)> {
    c.dimensions.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn allow_listed_fields_label_the_span_counter_including_those_recorded_later() {
    let sink = RecordingSink::default();
    let c = CachedCounters::new(sink.clone(), CountersOptions::default());
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        for (route, status, ok) in [("/orders", 201, true), ("/orders", 201, true), ("/orders", 422, false)] {
            let span = tracing::info_span!(target: "api", "request", method = "POST", route, uri = "/orders?x=1", status = Empty);
            span.in_scope(|| {
                if !ok {
                    tracing::error!("rejected");
                }
            });
            span.record("status", status);
        }
        tracing::info_span!(target: "api", "request", method = %"GET", route = "/orders", status = 200_u16)
            .in_scope(|| {});
    });
    c.dump_blocking().expect("dump");
    let saved = sink.last_save();
    let latency: Vec<_> = saved.iter().filter(|x| x.name == "api.request.exec_time").collect();
    let mut seen: Vec<_> = latency.iter().map(|x| (labels(x), x.count)).collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (vec![("method", "GET"), ("route", "/orders"), ("status", "200")], Some(1)),
            (vec![("method", "POST"), ("route", "/orders"), ("status", "201")], Some(2)),
            (vec![("method", "POST"), ("route", "/orders"), ("status", "422")], Some(1)),
        ],
        "uri is not allow-listed; status was recorded after the span was created"
    );
    let errors = find(&saved, "api.request.errors");
    assert_eq!(
        (labels(errors), errors.count),
        (vec![("method", "POST"), ("route", "/orders"), ("status", "422")], Some(1))
    );
}

#[test]
fn the_allow_list_is_the_users_and_a_span_without_such_fields_keeps_its_plain_counter() {
    let c = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    let layer = c.layer_builder().span_dimensions(["tenant"]).build();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::info_span!(target: "jobs", "run", tenant = "acme", method = "GET").in_scope(|| {});
        tracing::info_span!(target: "jobs", "plain").in_scope(|| {});
    });
    let all = c.get_all();
    let run = all.iter().find(|x| x.name == "jobs.run.exec_time" && !x.dimensions.is_empty()).expect("labelled");
    assert_eq!(labels(run), [("tenant", "acme")]);
    assert_eq!(c.get("jobs.plain.exec_time", CounterType::Interval).count, Some(1));
}

#[test]
fn span_field_values_past_the_cap_are_refused_and_counted() {
    let options = CountersOptions::default().max_counters(5);
    let c = CachedCounters::new(RecordingSink::default(), options);
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        for status in 0..20 {
            tracing::info_span!(target: "api", "request", status).in_scope(|| {});
        }
    });
    assert_eq!(c.len(), 5, "the callsite's plain counter and four status values");
    assert_eq!(c.telemetry().keys_dropped, 16);
}

#[test]
fn labelled_spans_closed_after_a_clear_go_into_the_new_counter_of_their_values() {
    let c = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    let request = |route: &str, status: u16| {
        let span = tracing::info_span!(target: "api", "request", route, status = Empty);
        span.record("status", status);
        drop(span);
    };
    let count = |route: &str, status: &str| {
        let all = c.get_all();
        let wanted = vec![("route", route), ("status", status)];
        all.iter().find(|x| x.name == "api.request.exec_time" && labels(x) == wanted).and_then(|x| x.count)
    };
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        for _ in 0..3 {
            request("/a", 200);
            request("/a", 500);
        }
        assert_eq!((count("/a", "200"), count("/a", "500")), (Some(3), Some(3)));
        c.clear_all();
        request("/a", 200); // the thread's cached counter was retired: the new one gets it
        request("/b", 200);
        request("/a", 200);
    });
    assert_eq!((count("/a", "200"), count("/a", "500"), count("/b", "200")), (Some(2), None, Some(1)));
    assert_eq!(c.telemetry().values_rejected, 0, "nothing recorded into a retired counter");
}
