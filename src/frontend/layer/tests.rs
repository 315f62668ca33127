//! The layer's misses of a thread's cache: which of them build a store key.

use std::sync::Arc;

use metrics::{Key, Label};
use tracing_subscriber::layer::SubscriberExt;

use super::key_buffers::built_on_this_thread;
use super::CountersLayerBuilder;
use crate::model::CounterType;
use crate::store::Store;

/// More label values than a thread's caches hold (4096 handles, 1024 spans' counters).
const VALUES: usize = 6000;

/// Runs `round` twice under a layer over a store of its own, on this thread, and returns how many keys the layer
/// built in each round, and the store.
fn keys_built_in_two_rounds(round: impl Fn(&[String])) -> ([usize; 2], Arc<Store>) {
    let store = Arc::new(Store::default());
    store.set_max_counters(4 * VALUES);
    let layer = CountersLayerBuilder::new(Arc::clone(&store), Arc::new(())).build();
    let values: Vec<String> = (0..VALUES).map(|i| format!("/items/{i}")).collect();
    let built = tracing::subscriber::with_default(tracing_subscriber::Registry::default().with(layer), || {
        [(); 2].map(|()| {
            let before = built_on_this_thread();
            round(&values);
            built_on_this_thread() - before
        })
    });
    (built, store)
}

#[test]
fn metric_events_past_the_cache_find_their_existing_counters_with_no_key_built() {
    let (built, store) = keys_built_in_two_rounds(|values| {
        for (i, value) in values.iter().enumerate() {
            tracing::event!(target: "app", tracing::Level::INFO, monotonic_counter.requests = 1, route = value.as_str());
            tracing::event!(target: "app", tracing::Level::INFO, histogram.latency = 12.5, route = value.as_str(), shard = i % 2);
        }
    });
    assert_eq!(built, [2 * VALUES, 0], "a key for each new counter, none for the existing ones");
    let route = |value: &str| Label::new("route", value.to_owned());
    let requests = Key::from_parts("requests", vec![route("/items/5999")]);
    assert_eq!(store.get(&requests).and_then(|c| c.count), Some(2), "both rounds counted");
    let latency = Key::from_parts("latency", vec![route("/items/5999"), Label::new("shard", "1")]);
    let latency = store.get(&latency).expect("the histogram's counter");
    assert_eq!((latency.counter_type, latency.count), (CounterType::Statistics, Some(2)), "both rounds sampled");
}

#[test]
fn labelled_spans_past_the_cache_find_their_existing_counters_with_no_key_built() {
    let (built, _store) = keys_built_in_two_rounds(|values| {
        for (i, value) in values.iter().enumerate() {
            let span = tracing::info_span!(target: "app", "request", route = value.as_str());
            if i % 3 == 0 {
                span.in_scope(|| tracing::error!(target: "app", "failed"));
            }
            drop(span);
        }
    });
    let errors = VALUES.div_ceil(3);
    assert_eq!(built, [VALUES + errors, 0], "a key for each new counter, none for the existing ones");
}

#[test]
fn properties_of_counters_the_store_refused_are_not_kept() {
    let store = Arc::new(Store::default());
    store.set_max_counters(1);
    store.cell(&Key::from_static_name("first"), CounterType::Increment);
    let layer = CountersLayerBuilder::new(Arc::clone(&store), Arc::new(()))
        .span_dimensions(["route"])
        .properties(["request_id"])
        .build();
    tracing::subscriber::with_default(tracing_subscriber::Registry::default().with(layer), || {
        for i in 0..100 {
            tracing::event!(target: "app", tracing::Level::INFO, monotonic_counter.hits = 1, route = i, request_id = "r");
            drop(tracing::info_span!(target: "app", "request", route = i, request_id = "r"));
            drop(tracing::info_span!(target: "app", "plain", request_id = "r"));
        }
    });
    assert_eq!(store.len(), 1, "every other counter refused past the cap");
    assert_eq!(store.properties_kept(), 0, "no dump takes a refused counter's properties");
}

#[test]
fn a_span_callsite_refused_past_the_cap_finds_its_counter_once_room_appears() {
    let idle = std::time::Duration::from_secs(10);
    let t0 = std::time::Instant::now();
    for room in ["the cap raised", "a counter expired"] {
        let store = Arc::new(Store::default());
        store.set_max_counters(1);
        store.cell(&Key::from_static_name("first"), CounterType::Increment).add(1);
        let layer = CountersLayerBuilder::new(Arc::clone(&store), Arc::new(())).build();
        let exec_time = Key::from_static_name("app.refused.exec_time");
        tracing::subscriber::with_default(tracing_subscriber::Registry::default().with(layer), || {
            let span = || drop(tracing::info_span!(target: "app", "refused"));
            span();
            assert!(store.get(&exec_time).is_none(), "{room}: refused at the cap");
            if room == "the cap raised" {
                store.set_max_counters(10);
            } else {
                for at in [t0, t0, t0 + idle] {
                    let all = store.take_all();
                    store.settle(&all.taken, |_| false);
                    store.expire_idle(&all, idle, at);
                }
                assert_eq!(store.len(), 0, "{room}");
            }
            span();
            let before = built_on_this_thread();
            (0..100).for_each(|_| span());
            assert_eq!(built_on_this_thread() - before, 0, "{room}: straight into its counter, no key built");
        });
        assert_eq!(store.get(&exec_time).and_then(|c| c.count), Some(101), "{room}: every span once room appeared");
    }
}
