//! Span fields as dimensions: allow-listed fields, recorded when the span is created or later with
//! `span.record(..)`, label the span's counters; other fields do not; the values' cardinality stays under the cap.

mod common;

use cloudwatch_counters::{CachedCounters, CounterType, CountersOptions};
use common::{find, RecordingSink};
use tracing::field::Empty;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

fn labels(c: &cloudwatch_counters::Counter) -> Vec<(&str, &str)> {
    c.dimensions().collect()
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
    let latency: Vec<_> = saved.iter().filter(|x| x.name() == "api.request.exec_time").collect();
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
    let run = all.iter().find(|x| x.name() == "jobs.run.exec_time" && !x.dimensions().is_empty()).expect("labelled");
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
        all.iter().find(|x| x.name() == "api.request.exec_time" && labels(x) == wanted).and_then(|x| x.count)
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

#[test]
fn thousands_of_labelled_spans_open_at_once_are_each_counted_once_under_their_values_with_their_errors() {
    // More open labelled spans than the layer's table of spans with fields holds (2048): the rest are timed in
    // their extensions. Each is recorded later, some fail, and half are closed on another thread.
    const OPEN: usize = 5_000;
    let c = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    let dispatch = tracing::Dispatch::new(Registry::default().with(c.layer()));
    let mut spans: Vec<tracing::Span> = tracing::dispatcher::with_default(&dispatch, || {
        (0..OPEN)
            .map(|i| {
                let route = if i % 2 == 0 { "/even" } else { "/odd" };
                let span = tracing::info_span!(target: "api", "request", route, status = Empty);
                span.record("status", 200 + (i % 3) as u64);
                if i % 4 == 0 {
                    span.in_scope(|| tracing::error!("failed"));
                }
                span
            })
            .collect()
    });
    assert!(c.get_all().iter().all(|x| x.name() != "api.request.exec_time" || x.count.unwrap_or(0) == 0), "all open");
    let second = spans.split_off(OPEN / 2);
    std::thread::scope(|s| {
        s.spawn(move || drop(spans));
        s.spawn(move || drop(second));
    });
    let all = c.get_all();
    let count = |name: &str, route: &str, status: &str| {
        let wanted = vec![("route", route), ("status", status)];
        all.iter().find(|x| x.name() == name && labels(x) == wanted).and_then(|x| x.count).unwrap_or(0)
    };
    let expected = |route_rest: usize, status_rest: usize, every: usize| {
        (0..OPEN).filter(|i| i % 2 == route_rest && i % 3 == status_rest && i % every == 0).count() as i64
    };
    for (route_rest, route) in [(0, "/even"), (1, "/odd")] {
        for status_rest in 0..3 {
            let status = (200 + status_rest).to_string();
            let spans = count("api.request.exec_time", route, &status);
            assert_eq!(spans, expected(route_rest, status_rest, 1), "{route} {status}");
            let errors = count("api.request.errors", route, &status);
            assert_eq!(errors, expected(route_rest, status_rest, 4), "errors {route} {status}");
        }
    }
    let total: i64 = all.iter().filter(|x| x.name() == "api.request.exec_time").filter_map(|x| x.count).sum();
    assert_eq!(total, OPEN as i64, "each span counted once");
}

#[test]
fn a_field_value_that_logs_an_error_while_it_is_recorded_marks_its_span_without_a_deadlock() {
    /// A value whose `Debug` logs an ERROR, as a value that reports its own failure might.
    struct Logs;
    impl std::fmt::Debug for Logs {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::error!("formatting failed");
            f.write_str("logged")
        }
    }
    let c = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    let dispatch = tracing::Dispatch::new(Registry::default().with(c.layer()));
    let (done, finished) = std::sync::mpsc::channel();
    // On a thread of its own: a deadlock fails the test after the wait below instead of hanging it.
    let recording = std::thread::spawn(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            let span = tracing::info_span!(target: "api", "request", status = Empty);
            span.in_scope(|| span.record("status", tracing::field::debug(Logs)));
        });
        done.send(()).expect("the test waits");
    });
    finished.recv_timeout(std::time::Duration::from_secs(30)).expect("recording a value that logs must not deadlock");
    recording.join().expect("no panic");
    let all = c.get_all();
    let with_value =
        |name: &str| all.iter().find(|x| x.name() == name && labels(x) == [("status", "logged")]).and_then(|x| x.count);
    assert_eq!((with_value("api.request.exec_time"), with_value("api.request.errors")), (Some(1), Some(1)));
}

#[test]
fn errors_of_labelled_spans_go_into_the_new_counter_of_their_values_after_a_clear() {
    let c = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    let failed_request = |route: &str| {
        tracing::info_span!(target: "api", "request", route).in_scope(|| tracing::error!("failed"));
    };
    let errors = |route: &str| {
        let all = c.get_all();
        all.iter().find(|x| x.name() == "api.request.errors" && labels(x) == [("route", route)]).and_then(|x| x.count)
    };
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        (0..3).for_each(|_| failed_request("/a")); // the thread caches the errors counter of these values
        assert_eq!(errors("/a"), Some(3));
        c.clear_all();
        (0..2).for_each(|_| failed_request("/a"));
    });
    assert_eq!(errors("/a"), Some(2), "the cached counter was retired: the new one gets them");
    assert_eq!(c.telemetry().values_rejected, 0, "nothing added to a retired counter");
}

#[test]
fn field_values_of_every_kind_become_dimensions_as_their_text() {
    let c = CachedCounters::new(RecordingSink::default(), CountersOptions::default());
    let layer = c.layer_builder().span_dimensions(["code", "big", "ok", "ratio", "kind", "late"]).build();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        let span = tracing::info_span!(
            target: "jobs", "typed",
            code = -7_i64, big = u64::MAX, ok = true, ratio = 1.5, kind = ?Some(1), late = Empty
        );
        span.record("late", false);
        span.in_scope(|| {});
    });
    let all = c.get_all();
    let typed =
        all.iter().find(|x| x.name() == "jobs.typed.exec_time" && !x.dimensions().is_empty()).expect("labelled");
    assert_eq!(
        labels(typed),
        [
            ("code", "-7"),
            ("big", "18446744073709551615"),
            ("ok", "true"),
            ("ratio", "1.5"),
            ("kind", "Some(1)"),
            ("late", "false")
        ]
    );
    assert_eq!(typed.count, Some(1));
}
