//! Events with metric fields become counters, their other fields dimensions (of at most 29 names).

mod common;

use cloudwatch_counters::CounterType;
use common::recording_counters as counters;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

#[test]
fn metric_fields_feed_the_matching_counter_types_with_other_fields_as_dimensions() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(monotonic_counter.orders = 2, region = "eu", "placed");
        tracing::info!(counter.orders = 3_i64, region = "eu");
        tracing::info!(histogram.order_value = 12.5, region = "eu");
        tracing::info!(histogram.order_value = 7.5, region = "eu");
        tracing::info!(gauge.queue_depth = 4.0);
        tracing::info!(gauge.queue_depth = 6.0);
    });
    let all = c.get_all();
    let find = |name: &str| all.iter().find(|x| x.name() == name).unwrap_or_else(|| panic!("{name}: {all:?}"));
    let orders = find("orders");
    assert_eq!((orders.counter_type, orders.count), (CounterType::Increment, Some(5)));
    assert_eq!(orders.dimensions(), vec![("region".to_owned(), "eu".to_owned())], "message is not a dimension");
    let value = find("order_value");
    assert_eq!((value.counter_type, value.count, value.sum), (CounterType::Statistics, Some(2), Some(20.0)));
    let depth = find("queue_depth");
    assert_eq!((depth.counter_type, depth.last), (CounterType::LastValue, Some(6.0)));
    assert!(depth.dimensions().is_empty());
}

#[test]
fn a_histogram_event_joins_a_metrics_histogram_of_its_name_described_in_milliseconds() {
    let c = counters();
    let recorder = c.recorder();
    let held = metrics::with_local_recorder(&recorder, || {
        metrics::describe_histogram!("db_query", metrics::Unit::Milliseconds, "query time");
        metrics::histogram!("db_query")
    });
    held.record(2.0);
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(histogram.db_query = 3.0);
    });
    held.record(4.0);
    let query = c.get_all().into_iter().find(|x| x.name() == "db_query").expect("the counter");
    assert_eq!((query.counter_type, query.count, query.sum), (CounterType::Interval, Some(3), Some(9.0)));
    c.dump_blocking().expect("dump");
    assert_eq!(c.telemetry().values_rejected, 0, "the held handle still records");
}

#[test]
fn a_histogram_event_of_a_name_described_in_seconds_is_kept_in_milliseconds_whichever_comes_first() {
    for event_first in [false, true] {
        let c = counters();
        let recorder = c.recorder();
        metrics::with_local_recorder(&recorder, || {
            metrics::describe_histogram!("db_query", metrics::Unit::Seconds, "query time");
        });
        let event = || {
            tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
                tracing::info!(histogram.db_query = 0.012, db = "orders");
                tracing::info!(histogram.db_query = 0.004);
            });
        };
        let metric = || {
            metrics::with_local_recorder(&recorder, || {
                metrics::histogram!("db_query", "db" => "orders").record(0.020);
                metrics::histogram!("db_query").record(0.002);
            });
        };
        if event_first {
            event();
            metric();
        } else {
            metric();
            event();
        }
        for (labels, sum) in [(1, 32.0), (0, 6.0)] {
            let query = c
                .get_all()
                .into_iter()
                .find(|x| x.name() == "db_query" && x.dimensions().len() == labels)
                .expect("the counter");
            let got = (query.counter_type, query.count, query.sum.map(|s| (s * 1e6).round() / 1e6));
            assert_eq!(got, (CounterType::Interval, Some(2), Some(sum)), "event first: {event_first}");
        }
    }
}

#[test]
fn a_metric_field_that_is_not_a_number_is_ignored_and_never_a_dimension() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(counter.requests = 1, gauge.up = true, histogram.size = "big", route = "/");
        tracing::info!(counter.plain = 1, gauge.up = true);
    });
    let all = c.get_all();
    let find = |name: &str| all.iter().find(|x| x.name() == name).unwrap_or_else(|| panic!("{name}: {all:?}"));
    assert_eq!(find("requests").dimensions(), vec![("route".to_owned(), "/".to_owned())]);
    assert!(find("plain").dimensions().is_empty());
    assert!(all.iter().all(|x| x.name() != "up" && x.name() != "size"), "{all:?}");
}

#[test]
fn every_metric_field_of_an_event_feeds_its_own_counter_past_the_fourth_too() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        for _ in 0..2 {
            tracing::info!(
                counter.m1 = 1,
                region = "eu",
                counter.m2 = 2,
                gauge.m3 = 3.0,
                counter.m4 = 4,
                monotonic_counter.m5 = 5,
                histogram.m6 = 6.0
            );
        }
    });
    let all = c.get_all();
    let find = |name: &str| all.iter().find(|x| x.name() == name).unwrap_or_else(|| panic!("{name}: {all:?}"));
    for (name, count) in [("m1", 2), ("m2", 4), ("m4", 8), ("m5", 10)] {
        assert_eq!((find(name).counter_type, find(name).count), (CounterType::Increment, Some(count)), "{name}");
    }
    assert_eq!((find("m3").counter_type, find("m3").last), (CounterType::LastValue, Some(3.0)));
    assert_eq!(
        (find("m6").counter_type, find("m6").count, find("m6").sum),
        (CounterType::Statistics, Some(2), Some(12.0))
    );
    assert!(all.iter().all(|x| x.dimensions() == [("region".to_owned(), "eu".to_owned())]), "{all:?}");
}

#[test]
fn event_dimensions_are_cut_to_29() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(
            counter.wide = 1,
            a0 = 0,
            a1 = 1,
            a2 = 2,
            a3 = 3,
            a4 = 4,
            a5 = 5,
            a6 = 6,
            a7 = 7,
            a8 = 8,
            a9 = 9,
            b0 = 0,
            b1 = 1,
            b2 = 2,
            b3 = 3,
            b4 = 4,
            b5 = 5,
            b6 = 6,
            b7 = 7,
            b8 = 8,
            b9 = 9,
            c0 = 0,
            c1 = 1,
            c2 = 2,
            c3 = 3,
            c4 = 4,
            c5 = 5,
            c6 = 6,
            c7 = 7,
            c8 = 8,
            c9 = 9,
        );
    });
    let all = c.get_all();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].dimensions().len(), 29);
}

#[test]
fn counter_events_keep_fractions_saturate_at_a_periods_limit_and_refuse_non_finite_values() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        // As tracing-opentelemetry: a float counter adds its exact value.
        tracing::info!(monotonic_counter.tokens = 0.5);
        tracing::info!(monotonic_counter.tokens = 0.25);
        tracing::info!(monotonic_counter.tokens = 2_u64);
        tracing::info!(monotonic_counter.tokens = f64::NAN);
        tracing::info!(counter.huge = u64::MAX);
        tracing::info!(counter.huge = 1_u64);
    });
    let tokens = c.get("tokens", CounterType::Increment);
    assert_eq!((tokens.count, tokens.sum), (Some(2), Some(2.75)));
    let huge = c.get("huge", CounterType::Increment);
    assert_eq!(huge.count, Some((1 << 62) - 1), "saturated at a period's limit, not wrapped to a negative count");
    let dump = futures_block_on(c.dump());
    assert_eq!(dump.rejected_values, 1, "the NaN");
    let t = c.telemetry();
    assert_eq!((t.values_rejected, t.values_saturated), (1, 2));
}

/// One event callsite with a label: each call's own counter.
fn hit(status: &str) {
    tracing::info!(monotonic_counter.hits = 1, status);
}

/// One event callsite without labels.
fn plain() {
    tracing::info!(monotonic_counter.plain = 1);
}

#[test]
fn one_callsite_changing_label_values_and_cleared_counters_records_each_event_into_its_own_counter() {
    let c = counters();
    let count = |name: &str, status: Option<&str>| {
        let dimensions: Vec<(String, String)> =
            status.map(|s| ("status".to_owned(), s.to_owned())).into_iter().collect();
        let all = c.get_all();
        all.iter().find(|x| x.name() == name && x.dimensions() == dimensions).and_then(|x| x.count)
    };
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        // The callsite's first label values, others, and the first again: each into its own counter.
        for status in ["200", "500", "200", "404", "200", "2000", "20"] {
            hit(status);
        }
        plain();
        plain();
        for (status, n) in [("200", 3), ("500", 1), ("404", 1), ("2000", 1), ("20", 1)] {
            assert_eq!(count("hits", Some(status)), Some(n), "status {status}");
        }
        assert_eq!(count("plain", None), Some(2));
        // Cleared: the handles this thread kept are retired, and the next events start new counters.
        c.clear_all();
        hit("500");
        hit("200");
        hit("200");
        plain();
    });
    assert_eq!(
        (count("hits", Some("200")), count("hits", Some("500")), count("hits", Some("404"))),
        (Some(2), Some(1), None)
    );
    assert_eq!(count("plain", None), Some(1));
}

/// A label value whose `Debug` emits metric events (of another callsite, and of its own) while the layer
/// records the event it is in.
struct Noisy;

impl std::fmt::Debug for Noisy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        tracing::info!(monotonic_counter.inner = 1);
        tracing::info!(monotonic_counter.outer = 1, value = "nested");
        f.write_str("noisy")
    }
}

fn noisy() {
    tracing::info!(monotonic_counter.outer = 1, value = ?Noisy);
}

#[test]
fn an_event_whose_label_emits_events_is_counted_once_with_its_label() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        // The first call decides the callsite's plan while its label is written, the others find it.
        for _ in 0..3 {
            noisy();
        }
    });
    let all = c.get_all();
    let outer: Vec<_> =
        all.iter().filter(|x| x.name() == "outer").map(|x| (x.dimensions().collect::<Vec<_>>(), x.count)).collect();
    assert_eq!(outer, [(vec![("value", "noisy")], Some(3))], "{all:?}");
    // tracing does not re-enter a dispatcher from inside it: the events the label emitted reach no subscriber.
    assert!(all.iter().all(|x| x.name() != "inner"), "{all:?}");
}

/// Runs a future to completion on a fresh current-thread runtime.
fn futures_block_on<F: std::future::Future<Output = Result<T, E>>, T, E: std::fmt::Debug>(future: F) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(future).expect("the dump succeeds")
}

#[test]
fn negative_monotonic_counters_are_refused_and_counted_while_counters_may_go_down() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(monotonic_counter.sent = 5);
        tracing::info!(monotonic_counter.sent = -3); // refused: a monotonic counter never goes down
        tracing::info!(monotonic_counter.sent = -0.5, queue = "a"); // with a label, too
        tracing::info!(monotonic_counter.sent = -2_i128);
        tracing::info!(counter.queued = 4);
        tracing::info!(counter.queued = -3); // an up-down counter, as tracing-opentelemetry's
    });
    assert_eq!(c.get("sent", CounterType::Increment).count, Some(5));
    assert_eq!(c.get("queued", CounterType::Increment).count, Some(1));
    assert_eq!(futures_block_on(c.dump()).rejected_values, 3, "the three negative monotonic values");
}

#[test]
fn wide_integer_fields_are_recorded_and_a_label_with_an_empty_value_is_no_dimension() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(monotonic_counter.bytes = 7_u128);
        tracing::info!(monotonic_counter.bytes = 3_u128, tenant = "acme");
        tracing::info!(histogram.offset = -4_i128);
        tracing::info!(counter.huge = u128::MAX); // past a u64: kept as a float, exact in `sum` as one
        tracing::info!(monotonic_counter.logins = 1, tenant = "");
        tracing::info!(monotonic_counter.logins = 1);
    });
    let all = c.get_all();
    let find = |name: &str, dimensions: usize| {
        all.iter()
            .find(|x| x.name() == name && x.dimensions().len() == dimensions)
            .unwrap_or_else(|| panic!("{name} with {dimensions} dimensions: {all:?}"))
    };
    assert_eq!((find("bytes", 0).count, find("bytes", 1).count), (Some(7), Some(3)));
    let offset = find("offset", 0);
    assert_eq!((offset.counter_type, offset.count, offset.sum), (CounterType::Statistics, Some(1), Some(-4.0)));
    assert_eq!(find("huge", 0).sum, Some(u128::MAX as f64));
    assert_eq!(find("logins", 0).count, Some(2), "the empty tenant is no dimension: one counter");
    assert_eq!(all.iter().filter(|x| x.name() == "logins").count(), 1);
    futures_block_on(c.dump());
    assert_eq!((c.telemetry().values_rejected, c.telemetry().values_saturated), (0, 0));
}

#[test]
fn a_metric_field_past_an_events_32nd_field_is_recorded_with_its_labels_cut() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info!(
            f0 = 0,
            f1 = 1,
            f2 = 2,
            f3 = 3,
            f4 = 4,
            f5 = 5,
            f6 = 6,
            f7 = 7,
            f8 = 8,
            f9 = 9,
            f10 = 10,
            f11 = 11,
            f12 = 12,
            f13 = 13,
            f14 = 14,
            f15 = 15,
            f16 = 16,
            f17 = 17,
            f18 = 18,
            f19 = 19,
            f20 = 20,
            f21 = 21,
            f22 = 22,
            f23 = 23,
            f24 = 24,
            f25 = 25,
            f26 = 26,
            f27 = 27,
            f28 = 28,
            f29 = 29,
            f30 = 30,
            f31 = 31,
            counter.late = 1
        );
    });
    let late = c.get_all().into_iter().find(|x| x.name() == "late").expect("the metric field past the 32nd");
    assert_eq!((late.counter_type, late.count), (CounterType::Increment, Some(1)));
    assert_eq!(late.dimensions().len(), 29, "labels past 29 are cut");
    c.dump_blocking().expect("dump");
    assert_eq!(c.telemetry().labels_cut, 1);
}

#[test]
fn a_field_name_repeated_among_more_than_29_fields_counts_once() {
    let c = counters();
    // `x` empty: no label (an empty value is no dimension).
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || event_of_29_names_and_x("", "b"));
    let all = c.get_all();
    let m = all.iter().find(|x| x.name() == "m").unwrap_or_else(|| panic!("{all:?}"));
    let k = m.dimensions().rev().find(|(n, _)| *n == "k").map(|(_, v)| v);
    assert_eq!((k, m.dimensions().len()), (Some("b"), 30), "30 fields of 29 names: none cut");
    assert_eq!(c.telemetry().labels_cut, 0);
}

/// One callsite of 32 fields: `counter.m`, `k`, 28 more names, `x` (the 30th name: cut, unless empty), then `k`
/// again (kept, and published).
fn event_of_29_names_and_x(x: &str, k: &str) {
    tracing::info!(
        counter.m = 1,
        k = "a",
        l01 = 1,
        l02 = 1,
        l03 = 1,
        l04 = 1,
        l05 = 1,
        l06 = 1,
        l07 = 1,
        l08 = 1,
        l09 = 1,
        l10 = 1,
        l11 = 1,
        l12 = 1,
        l13 = 1,
        l14 = 1,
        l15 = 1,
        l16 = 1,
        l17 = 1,
        l18 = 1,
        l19 = 1,
        l20 = 1,
        l21 = 1,
        l22 = 1,
        l23 = 1,
        l24 = 1,
        l25 = 1,
        l26 = 1,
        l27 = 1,
        l28 = 1,
        x = x,
        k = k
    );
}

#[test]
fn a_cut_labels_value_does_not_make_two_label_values_pass_for_each_other() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        // The values of `x` and the last `k` side by side read "pqr" in both events.
        event_of_29_names_and_x("pq", "r");
        event_of_29_names_and_x("p", "qr");
        event_of_29_names_and_x("p", "qr");
    });
    let all = c.get_all();
    let last_k =
        |x: &cloudwatch_counters::Counter| x.dimensions().rev().find(|(n, _)| *n == "k").map(|(_, v)| v.to_owned());
    let count_with = |value: &str| {
        let with_value = all.iter().filter(|x| x.name() == "m" && last_k(x).as_deref() == Some(value));
        with_value.map(|x| x.count).collect::<Vec<_>>()
    };
    assert_eq!((count_with("r"), count_with("qr")), (vec![Some(1)], vec![Some(2)]), "{all:?}");
    c.dump_blocking().expect("dump");
    assert_eq!(c.telemetry().labels_cut, 3, "each event's cut counted");
}
