//! Memory held per live counter, measured with a counting global allocator: the bytes still allocated after
//! creating 1,000, 10,000 and 100,000 labelled counters through the `metrics` macros, divided by their number;
//! a thread's cache of handles at its largest; and per histogram with percentiles. Run with `--nocapture` to see
//! the figures.

mod common;

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};
use common::bytes_in_use::{in_use, BytesInUse};
use common::RecordingSink;

/// The most bytes one counter may hold (key, labels, cell and its share of the map).
const BUDGET: usize = 256;
const COUNTERS: usize = 100_000;

#[global_allocator]
static GLOBAL: BytesInUse = BytesInUse;

/// Runs `f` on a thread of its own and waits until that thread has ended (its thread-locals, the caches of
/// handles among them, freed): measurements never include, and are never disturbed by, a test thread's caches.
fn on_a_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("the thread ran"))
}

/// The allocator counts every thread's memory: one measurement at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_labelled_counter_holds_at_most_256_bytes_at_100k_counters() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // The map's tables grow in powers of two, so their share of a counter depends on where the count falls (at
    // 1,000 and 10,000 counters, just past a doubling, it is larger): those figures are printed, and the budget
    // is held at 100,000.
    for counters in [COUNTERS / 100, COUNTERS / 10, COUNTERS] {
        let per_counter = bytes_per_counter(counters);
        assert!(
            per_counter <= BUDGET || counters < COUNTERS,
            "{per_counter} bytes per counter at {counters}, over the budget of {BUDGET}"
        );
        // The allocator does see the store's memory, so the figure above means something.
        assert!(per_counter > 0);
    }
}

/// Bytes held per counter after creating `n` counters through `counter!`.
fn bytes_per_counter(n: usize) -> usize {
    let options = CountersOptions::default().max_counters(usize::MAX); // past the default cap of 10,000
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), options);
    let recorder = counters.recorder();
    // Warm up whatever the first registration sets up once (lazily built state).
    on_a_thread(|| metrics::with_local_recorder(&recorder, || metrics::counter!("warm.up").increment(1)));
    let before = in_use();
    // On a thread of their own, which then ends: what stays is the counters, not that thread's cache of handles
    // (measured below).
    on_a_thread(|| {
        metrics::with_local_recorder(&recorder, || {
            for i in 0..n {
                // Half the counters have one label, half two; every label set is distinct.
                let route = format!("/items/{i}");
                if i % 2 == 0 {
                    metrics::counter!("http.requests", "route" => route).increment(1);
                } else {
                    metrics::counter!("http.requests", "route" => route, "method" => "GET").increment(1);
                }
            }
        });
    });
    let held = usize::try_from(in_use() - before).expect("memory was freed, not held");
    assert_eq!(counters.len(), n + 1);
    let per_counter = held / n;
    println!("memory per counter: {per_counter} bytes ({held} bytes for {n} counters with 1-2 labels)");
    drop(counters);
    per_counter
}

/// The most bytes a thread's cache of handles may hold at its largest (4096 handles): about 300 bytes a handle
/// with one label, of which the store's copy of the key (56 bytes, held so that the key's parts can be matched
/// by their addresses) and those parts' addresses (16 bytes each) are the price of a faster labelled lookup.
const THREAD_CACHE_BUDGET: usize = 1280 * 1024;

#[test]
fn a_threads_cache_of_handles_holds_at_most_1_25_mib() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let options = CountersOptions::default().max_counters(usize::MAX);
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), options);
    let recorder = counters.recorder();
    let keys: Vec<metrics::Key> = (0..COUNTERS / 10)
        .map(|i| metrics::Key::from_parts("http.requests", vec![metrics::Label::new("route", format!("/items/{i}"))]))
        .collect();
    let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
    let (with_cache, after) = std::thread::scope(|s| {
        let thread = s.spawn(|| {
            // Round-robin over 10,000 keys grows the cache to its largest.
            for _ in 0..4 {
                for key in &keys {
                    metrics::Recorder::register_counter(&recorder, key, &meta).increment(1);
                }
            }
            in_use()
        });
        let with_cache = thread.join().expect("the thread ran");
        (with_cache, in_use())
    });
    let cache = usize::try_from(with_cache - after).expect("the ended thread freed its cache");
    println!("a thread's cache of handles at its largest: {cache} bytes");
    assert!(cache <= THREAD_CACHE_BUDGET, "{cache} bytes");
    assert!(cache > 4096 * 24, "4096 handles are held: the figure means something");
    drop(counters);
}

/// The most bytes a histogram with percentiles may hold when its samples span ten powers of two (a latency from
/// 1 ms to 1 s): the counter, the bucket table and ten octaves of bucket counts.
const DISTRIBUTION_BUDGET: usize = 16 * 1024;

#[test]
fn a_histogram_with_percentiles_over_ten_powers_of_two_holds_at_most_16_kib() {
    const HISTOGRAMS: usize = 1_000;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let counters = CachedCounters::new(RecordingSink::with_percentiles(), CountersOptions::default());
    let recorder = counters.recorder();
    on_a_thread(|| metrics::with_local_recorder(&recorder, || metrics::histogram!("warm.up").record(1.0)));
    let before = in_use();
    on_a_thread(|| {
        metrics::with_local_recorder(&recorder, || {
            for i in 0..HISTOGRAMS {
                let histogram = metrics::histogram!("latency", "route" => format!("/items/{i}"));
                // 1 ms to 1 s: every power of two from 2^0 to 2^9.
                (0..1000).for_each(|ms| histogram.record(f64::from(ms + 1)));
            }
        });
    });
    let held = usize::try_from(in_use() - before).expect("memory was freed, not held");
    let per_histogram = held / HISTOGRAMS;
    println!("memory per histogram with percentiles (1 ms to 1 s): {per_histogram} bytes");
    assert!(per_histogram <= DISTRIBUTION_BUDGET, "{per_histogram} bytes per histogram");
    assert!(per_histogram > 10 * 1024, "ten octaves of bucket counts are held: the figure means something");
    drop(counters);
}
