//! A counting global allocator proves the update path does not allocate.

#![allow(unsafe_code)] // a counting global allocator cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::SystemTime;

mod common;

use cloudwatch_counters::{CachedCounters, CounterType, CountersOptions, LogSink};
use common::RecordingSink;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Held by the tests that make spans with dimensions: the labels threads hand each other are shared by the whole
/// process, and a test taking them while another measures could make that one allocate.
static LABELLED_SPANS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn labelled_spans_alone() -> std::sync::MutexGuard<'static, ()> {
    LABELLED_SPANS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Allocations made by this thread while `f` runs.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Runs `round` until three rounds in a row allocate nothing (within 80: the first rounds create counters, grow
/// this thread's caches and the buffers of the handles they rewrite), then asserts that three more allocate
/// nothing. Returns how many rounds ran. `what` names the calls of a round, for the failure messages.
fn rounds_until_warm_then_none(what: &str, round: impl Fn()) -> i64 {
    let (mut rounds, mut quiet) = (0, 0);
    while quiet < 3 {
        rounds += 1;
        quiet = if allocations_in(&round) == 0 { quiet + 1 } else { 0 };
        assert!(rounds < 80, "{what} still allocate after {rounds} rounds");
    }
    println!("{what}: no allocation in the last 3 of {rounds} rounds");
    for _ in 0..3 {
        assert_eq!(allocations_in(&round), 0, "allocations for a round of {what}");
    }
    rounds + 3
}

#[test]
fn updates_through_a_held_handle_never_allocate() {
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let inc = counters.handle("inc", CounterType::Increment);
    let stats = counters.handle("stats", CounterType::Statistics);
    let interval = counters.handle("interval", CounterType::Interval);
    let last = counters.handle("last", CounterType::LastValue);
    let time = counters.handle("time", CounterType::Timestamp);
    let now = SystemTime::now();
    // An absolute total lives in a small part of the counter allocated at its first use: warm it.
    inc.set_count(0);
    let n = allocations_in(|| {
        for i in 0..10_000 {
            let v = f64::from(i);
            inc.increment(1);
            inc.set_count(i.into());
            stats.record(v);
            interval.record(v);
            last.set_last(v);
            last.add_last(1.0);
            time.timestamp(now);
            stats.record(f64::NAN); // refused and counted, still no allocation
        }
    });
    assert_eq!(n, 0, "allocations on the update path");
    // The counting allocator does see allocations, so the zero above means something.
    assert!(allocations_in(|| drop(counters.handle(String::from("a new counter"), CounterType::Increment))) > 0);
}

#[test]
fn looking_up_an_existing_static_name_does_not_allocate() {
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    counters.handle("calls", CounterType::Increment).increment(1);
    let n = allocations_in(|| {
        for _ in 0..1_000 {
            counters.handle("calls", CounterType::Increment).increment(1);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn counter_macro_with_a_static_key_does_not_allocate() {
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let recorder = counters.recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("requests").increment(1);
        metrics::histogram!("latency").record(1.0);
        metrics::gauge!("inflight").set(0.0);
        let n = allocations_in(|| {
            for i in 0..1_000 {
                metrics::counter!("requests").increment(1);
                metrics::gauge!("inflight").set(f64::from(i));
                metrics::histogram!("latency").record(f64::from(i));
            }
        });
        assert_eq!(n, 0, "allocations for 3000 macro calls on known keys");
    });
}

#[test]
fn a_histogram_with_percentiles_allocates_only_when_a_new_range_of_values_is_first_used() {
    let sink = RecordingSink::with_percentiles();
    let counters = CachedCounters::new(sink.clone(), CountersOptions::default());
    let recorder = counters.recorder();
    metrics::with_local_recorder(&recorder, || {
        let latency = metrics::histogram!("latency");
        // Warm: the values below span 0.5 to 1024, eleven powers of two, each first touched here.
        let first = allocations_in(|| (0..2048).for_each(|i| latency.record(f64::from(i + 1) / 2.0)));
        assert!(first > 0, "the buckets of each power of two are allocated at first use");
        let n = allocations_in(|| {
            for i in 0..10_000 {
                metrics::histogram!("latency").record(f64::from(i % 2048 + 1) / 2.0);
                latency.record(0.0);
            }
        });
        assert_eq!(n, 0, "allocations for 20000 samples in known ranges");
    });
    counters.dump_blocking().expect("dump");
    let sent = common::find(&sink.last_save(), "latency").distribution.clone().expect("the period's buckets");
    assert_eq!(sent.count(), 22_048, "every sample was counted in a bucket");
    assert_eq!(sent.zeros(), 10_000);
}

#[test]
fn a_span_of_a_seen_callsite_does_not_allocate_from_creation_to_close() {
    use tracing_subscriber::layer::SubscriberExt;
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let subscriber = tracing_subscriber::Registry::default().with(counters.layer());
    tracing::subscriber::with_default(subscriber, || {
        let make = || tracing::info_span!("hot");
        let first = make(); // first sight of the callsite (and of a span entered on this thread)
        drop(first.enter());
        drop(first);
        let n = allocations_in(|| {
            for _ in 0..1_000 {
                let span = make();
                drop(span.enter());
                drop(span);
            }
        });
        assert_eq!(n, 0, "allocations for 1000 spans created, entered, exited and closed");
    });
    assert_eq!(counters.get("allocations.hot.exec_time", CounterType::Interval).count, Some(1001));
}

#[test]
fn registrations_that_miss_the_thread_cache_do_not_allocate_once_warm() {
    use metrics::{Key, Label, Recorder};
    let options = CountersOptions::default().max_counters(40_000);
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), options);
    let recorder = counters.recorder();
    // More keys than a thread's cache holds (4096), used round-robin: most registrations miss the cache.
    let names: Vec<&'static str> = (0..10_000).map(|i| &*Box::leak(format!("route.{i}").into_boxed_str())).collect();
    let labelled = |name: &'static str| -> Vec<Key> {
        (0..10_000).map(|i| Key::from_parts(name, vec![Label::new("route", format!("/items/{i}"))])).collect()
    };
    let (requests, latency) = (labelled("requests"), labelled("latency"));
    let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
    let round = || {
        metrics::with_local_recorder(&recorder, || {
            for name in &names {
                metrics::counter!(*name).increment(1);
            }
        });
        for (request, latency) in requests.iter().zip(&latency) {
            recorder.register_counter(request, &meta).increment(1);
            recorder.register_histogram(latency, &meta).record(1.0);
        }
    };
    // At its largest, missing on most lookups, this thread's cache caches one miss in eight (serving the others
    // from the store), so a handle, rewritten in place for one key after another, grows its buffers to the
    // longest key it is rewritten for over several rounds.
    let rounds = rounds_until_warm_then_none("30000 registrations, most of them cache misses", round);
    assert_eq!(counters.get("route.9999", CounterType::Increment).count, Some(rounds));
}

#[test]
fn metric_events_of_known_label_values_do_not_allocate() {
    use tracing_subscriber::layer::SubscriberExt;
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let subscriber = tracing_subscriber::Registry::default().with(counters.layer());
    tracing::subscriber::with_default(subscriber, || {
        let events = |i: u64| {
            tracing::info!(monotonic_counter.requests = 1);
            tracing::info!(monotonic_counter.requests = 1, status = 200 + i % 3, method = "GET");
            tracing::info!(histogram.latency = 12.5, route = ?"/items");
            tracing::info!(gauge.inflight = i, counter.bytes = 10_u64, shard = i % 2 == 0);
        };
        (0..6).for_each(events);
        let n = allocations_in(|| (0..1_000).for_each(events));
        assert_eq!(n, 0, "allocations for 4000 metric events of known callsites and label values");
    });
    assert_eq!(counters.get("requests", CounterType::Increment).count, Some(1006));
    let dims = |c: &cloudwatch_counters::Counter| c.dimensions().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
    let status_201 =
        counters.get_all().into_iter().find(|c| c.name() == "requests" && dims(c) == ["status=201", "method=GET"]);
    assert_eq!(status_201.and_then(|c| c.count), Some(335), "i % 3 == 1 for 335 of the 1006 events");
}

/// Counters that take up to 20,000 keys, a subscriber with their layer, and 6,000 routes (`/items/0` on): more
/// label values than a thread's caches of handles hold.
fn layer_and_routes() -> (CachedCounters, impl tracing::Subscriber + Send + Sync, Vec<String>) {
    use tracing_subscriber::layer::SubscriberExt;
    let options = CountersOptions::default().max_counters(20_000);
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), options);
    let subscriber = tracing_subscriber::Registry::default().with(counters.layer());
    (counters, subscriber, (0..6_000).map(|i| format!("/items/{i}")).collect())
}

#[test]
fn metric_events_that_miss_the_thread_cache_do_not_allocate_once_warm() {
    // More label values than a thread's cache holds (4096), used round-robin: most events miss the cache, and
    // their counter is looked up in the store by its parts (a key is built, in reused buffers, for a new one).
    let (counters, subscriber, routes) = layer_and_routes();
    let round = || {
        for (i, route) in routes.iter().enumerate() {
            tracing::info!(monotonic_counter.requests = 1, route = route.as_str());
            tracing::info!(histogram.latency = 12.5, route = route.as_str(), shard = i % 2);
        }
    };
    let rounds = tracing::subscriber::with_default(subscriber, || {
        rounds_until_warm_then_none("12000 metric events, most of them cache misses", round)
    });
    let last = counters
        .get_all()
        .into_iter()
        .find(|c| c.name() == "requests" && c.dimensions() == [(String::from("route"), String::from("/items/5999"))]);
    assert_eq!(last.and_then(|c| c.count), Some(rounds));
}

#[test]
fn a_labelled_span_of_seen_values_does_not_allocate() {
    use tracing_subscriber::layer::SubscriberExt;
    let _alone = labelled_spans_alone();
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let subscriber = tracing_subscriber::Registry::default().with(counters.layer());
    tracing::subscriber::with_default(subscriber, || {
        let request = |i: usize| {
            let route = if i % 2 == 0 { "/a" } else { "/b" };
            let span = tracing::info_span!("request", method = "GET", route, status = tracing::field::Empty);
            drop(span.enter());
            span.record("status", 200);
            if i % 4 < 2 {
                // A failed request: its error counted under the same values.
                span.in_scope(|| tracing::error!("failed"));
            }
            drop(span);
        };
        (0..4).for_each(request); // first sight of the callsite and of each set of values, with and without errors
        let n = allocations_in(|| (0..1_000).for_each(request));
        // Kept in the layer's own table, not in the span's extensions (which tracing-subscriber boxes); the
        // labels' storage is reused, and the counter of seen values found without building its key.
        assert_eq!(
            n, 0,
            "allocations for 1000 labelled spans created, recorded, entered, exited and closed, half failed"
        );
    });
    let all = counters.get_all();
    let count = |name: &str, route: &str| {
        all.iter().find(|c| c.name() == name && c.dimensions().any(|(_, v)| v == route)).and_then(|c| c.count)
    };
    let spans = |route| count("allocations.request.exec_time", route);
    let errors = |route| count("allocations.request.errors", route);
    assert_eq!((spans("/a"), spans("/b")), (Some(502), Some(502)));
    assert_eq!((errors("/a"), errors("/b")), (Some(251), Some(251)), "i % 4 == 0 fails on /a, i % 4 == 1 on /b");
}

#[test]
fn labelled_spans_that_miss_the_thread_cache_do_not_allocate_once_warm() {
    let _alone = labelled_spans_alone();
    // More routes than a thread's cache of them holds (1024), used round-robin: most spans miss the cache, and
    // their counter is looked up in the store by its parts (a key is built, in reused buffers, for a new one);
    // one in three fails (its error counter missed too).
    let (counters, subscriber, routes) = layer_and_routes();
    let round = || {
        for (i, route) in routes.iter().enumerate() {
            let span = tracing::info_span!("request", route = route.as_str());
            if i % 3 == 0 {
                span.in_scope(|| tracing::error!("failed"));
            }
            drop(span);
        }
    };
    let rounds = tracing::subscriber::with_default(subscriber, || {
        rounds_until_warm_then_none("6000 labelled spans, most of them cache misses", round)
    });
    let all = counters.get_all();
    let count = |name: &str, route: &str| {
        let route = [(String::from("route"), String::from(route))];
        all.iter().find(|c| c.name() == name && c.dimensions() == route).and_then(|c| c.count)
    };
    let (spans, errors) = ("allocations.request.exec_time", "allocations.request.errors");
    assert_eq!((count(spans, "/items/5997"), count(spans, "/items/5998")), (Some(rounds), Some(rounds)));
    assert_eq!(count(errors, "/items/5997"), Some(rounds), "5997 is a multiple of 3: failed in every round");
    assert_eq!(count(errors, "/items/5998"), None, "5998 is not: never failed");
}

#[test]
fn a_span_named_by_its_counter_field_does_not_allocate_once_its_name_was_seen() {
    use tracing_subscriber::layer::SubscriberExt;
    // A `span.record` takes spare labels, which this thread first takes from those other threads handed over
    // (allocating its list of them, once): only in the warm-up while no other test hands labels over.
    let _alone = labelled_spans_alone();
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let subscriber = tracing_subscriber::Registry::default().with(counters.layer());
    let rounds = tracing::subscriber::with_default(subscriber, || {
        let names = [String::from("orders.create"), String::from("orders.cancel")];
        let op = |i: usize| {
            let name = names[i % 2].as_str();
            tracing::info_span!("op", counter = name).in_scope(|| {});
            // Given as a `Debug` value: its quotes are not part of the name.
            tracing::info_span!("op_debug", counter = ?name).in_scope(|| {});
            // Named once the name is known, after the span was made.
            let span = tracing::info_span!("op_later", counter = tracing::field::Empty);
            span.record("counter", name);
            drop(span);
        };
        // Warm until quiet: a batch of spare labels that a thread of another test hands over as it ends may
        // reach this thread in its first rounds (taking it allocates, once).
        rounds_until_warm_then_none("3,000 spans named by their counter field", || {
            (0..1_000).for_each(op);
        })
    });
    let count = |name: &str| counters.get(name, CounterType::Interval).count;
    let each = Some(rounds * 1_500); // 3 spans a call, each name every other call
    assert_eq!((count("orders.create.exec_time"), count("orders.cancel.exec_time")), (each, each));
}

#[test]
fn labelled_spans_made_on_one_thread_and_closed_on_another_do_not_allocate_once_warm() {
    use std::sync::mpsc::sync_channel;
    use tracing_subscriber::layer::SubscriberExt;
    // As on a multi-thread runtime whose tasks move between workers: one thread makes the spans, another
    // records their status and closes them, so the closing thread is left with the labels the making thread
    // needs. The two take turns, a round of spans each, so that the count does not depend on their timing.
    const ROUND: usize = 50;
    const ROUNDS: usize = 60;
    const WARM_ROUNDS: usize = 30;
    let _alone = labelled_spans_alone();
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let dispatch = tracing::Dispatch::new(tracing_subscriber::Registry::default().with(counters.layer()));
    let (spans_tx, spans_rx) = sync_channel::<Vec<tracing::Span>>(1);
    let (done_tx, done_rx) = sync_channel::<(Vec<tracing::Span>, u64)>(1);
    let closer = {
        let dispatch = dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                // Ends when the maker drops its sender (done, or panicked).
                while let Ok(mut spans) = spans_rx.recv() {
                    let n = allocations_in(|| {
                        // The labelled spans are the even ones; every third gets no status, so that labels
                        // reused without being cleared would show as a status it never had.
                        for (j, span) in spans.drain(..).enumerate() {
                            if j % 6 != 0 {
                                span.record("status", 200);
                            }
                            drop(span.enter());
                            drop(span);
                        }
                    });
                    if done_tx.send((spans, n)).is_err() {
                        return;
                    }
                }
            });
        })
    };
    let (mut made_after_warm_up, mut closed_after_warm_up) = (0, 0);
    let mut spans = Vec::with_capacity(2 * ROUND);
    let names = [String::from("orders.create"), String::from("orders.cancel")];
    tracing::dispatcher::with_default(&dispatch, || {
        for round in 0..ROUNDS {
            let on_make = allocations_in(|| {
                for i in 0..ROUND {
                    let route = if i % 2 == 0 { "/a" } else { "/b" };
                    spans.push(tracing::info_span!("moved", method = "GET", route, status = tracing::field::Empty));
                    // And one named by its `counter` field.
                    spans.push(tracing::info_span!("op", counter = names[i % 2].as_str()));
                }
            });
            spans_tx.send(std::mem::take(&mut spans)).expect("the closer receives");
            // Bounded: the closer answers each round, or it panicked and dropped its sender.
            let (returned, on_close) = done_rx.recv().expect("the closer answers each round");
            spans = returned;
            if round >= WARM_ROUNDS {
                made_after_warm_up += on_make;
                closed_after_warm_up += on_close;
            }
        }
    });
    drop(spans_tx);
    closer.join().expect("the closer thread");
    let measured = (ROUNDS - WARM_ROUNDS) * ROUND;
    assert_eq!(made_after_warm_up, 0, "allocations making {measured} labelled and {measured} named spans");
    assert_eq!(closed_after_warm_up, 0, "allocations closing {measured} labelled and {measured} named spans");
    // Every labelled span under exactly its values: `i` is the span's place in its round (its index / 2 above).
    let mut expected = std::collections::BTreeMap::<Vec<(String, String)>, i64>::new();
    for i in 0..ROUND {
        let mut dims = vec![("method", "GET"), ("route", if i % 2 == 0 { "/a" } else { "/b" })];
        if (2 * i) % 6 != 0 {
            dims.push(("status", "200"));
        }
        let dims = dims.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        *expected.entry(dims).or_default() += ROUNDS as i64;
    }
    let seen: std::collections::BTreeMap<_, _> = counters
        .get_all()
        .into_iter()
        // (The callsite's counter without dimensions exists too, never updated.)
        .filter(|c| c.name() == "allocations.moved.exec_time" && c.count.is_some())
        .map(|c| (c.dimensions().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<_>>(), c.count.unwrap_or(0)))
        .collect();
    assert_eq!(seen, expected, "every labelled span counted under exactly its values");
    let half = Some((ROUNDS * ROUND / 2) as i64);
    let timed = |name: &str| counters.get(name, CounterType::Interval).count;
    assert_eq!((timed("orders.create.exec_time"), timed("orders.cancel.exec_time")), (half, half));
}

/// A sink that keeps nothing: it checks each record it is handed and counts them (its future is the only
/// allocation of a save).
struct Checking(std::sync::atomic::AtomicUsize);

impl cloudwatch_counters::Sink for Checking {
    fn save<'a>(&'a self, counters: &'a [cloudwatch_counters::Counter]) -> cloudwatch_counters::SaveFuture<'a> {
        let named = |c: &cloudwatch_counters::Counter| {
            let mut dimensions = c.dimensions();
            c.name().starts_with("dump.op")
                && dimensions.len() == 1
                && dimensions.next().is_some_and(|d| d.0 == "shard")
        };
        assert!(counters.iter().all(|c| named(c) && c.count == Some(1)), "every record its own name, label and count");
        self.0.fetch_add(counters.len(), std::sync::atomic::Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

#[test]
fn a_dump_of_ten_times_the_counters_allocates_no_more() {
    use metrics::{Key, Label};
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let dump_of = |n: usize| {
        let sink = std::sync::Arc::new(Checking(std::sync::atomic::AtomicUsize::new(0)));
        let options = CountersOptions::default().telemetry(false);
        let counters = CachedCounters::new(std::sync::Arc::clone(&sink), options);
        let key =
            |i: usize| Key::from_parts(format!("dump.op{}", i % 10), vec![Label::new("shard", (i / 10).to_string())]);
        let handles: Vec<_> = (0..n).map(|i| counters.handle_for_key(&key(i), CounterType::Increment)).collect();
        let touch = || handles.iter().for_each(|h| h.increment(1));
        // The first dumps size the dump's buffers.
        for _ in 0..2 {
            touch();
            runtime.block_on(counters.dump()).unwrap();
        }
        touch();
        let allocations = allocations_in(|| assert_eq!(runtime.block_on(counters.dump()).unwrap().saved, n));
        assert_eq!(sink.0.load(std::sync::atomic::Ordering::Relaxed), 3 * n, "every counter in every dump");
        allocations
    };
    let (small, large) = (dump_of(200), dump_of(2_000));
    println!("allocations of a dump: {small} for 200 counters, {large} for 2,000");
    assert!(large <= small + 4, "a dump of 2,000 counters allocated {large} times, one of 200 {small}");
    assert!(small < 50, "a dump of 200 counters allocated {small} times");
}

#[test]
fn events_and_spans_with_properties_do_not_allocate_once_warm() {
    use tracing_subscriber::layer::SubscriberExt;
    let _alone = labelled_spans_alone();
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), CountersOptions::default());
    let layer = counters.layer_builder().span_dimensions(["route"]).properties(["request_id"]).build();
    let ids: Vec<String> = (0..100).map(|i| format!("req-{i:04}")).collect();
    let round = || {
        // A new request id at every call, as a service's are: written over the one the period keeps.
        for (i, id) in ids.iter().enumerate() {
            let route = if i % 2 == 0 { "/a" } else { "/b" };
            tracing::info!(monotonic_counter.orders = 1, route, request_id = id.as_str());
            tracing::info!(monotonic_counter.logins = 1, request_id = id.as_str());
            drop(tracing::info_span!("request", route, request_id = id.as_str()));
            drop(tracing::info_span!("job", request_id = id.as_str()));
        }
    };
    let rounds = tracing::subscriber::with_default(tracing_subscriber::Registry::default().with(layer), || {
        rounds_until_warm_then_none("400 events and spans with a property", round)
    });
    let all = counters.get_all();
    let count = |name: &str| all.iter().filter(|c| c.name() == name).map(|c| c.count.unwrap_or(0)).sum::<i64>();
    assert_eq!(count("orders"), 100 * rounds);
    assert_eq!(count("logins"), 100 * rounds);
    assert_eq!(count("allocations.request.exec_time"), 100 * rounds);
    assert_eq!(count("allocations.job.exec_time"), 100 * rounds);
}
