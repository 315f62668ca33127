//! Memory held per live counter, measured with a counting global allocator: the bytes still allocated after
//! creating 100,000 labelled counters through the `metrics` macros, divided by 100,000. Run with `--nocapture`
//! to see the figure.

mod common;

use cloudwatch_counters::{CachedCounters, CountersOptions, LogSink};
use common::bytes_in_use::{in_use, BytesInUse};

/// The most bytes one counter may hold (key, labels, cell and its share of the map).
const BUDGET: usize = 256;
const COUNTERS: usize = 100_000;

#[global_allocator]
static GLOBAL: BytesInUse = BytesInUse;

#[test]
fn a_labelled_counter_holds_at_most_256_bytes() {
    let options = CountersOptions::default().max_counters(usize::MAX); // past the default cap of 10,000
    let counters = CachedCounters::new(LogSink::to_writer(std::io::sink()), options);
    let recorder = counters.recorder();
    // Warm up whatever the first registration sets up once (thread-locals, lazily built state).
    metrics::with_local_recorder(&recorder, || metrics::counter!("warm.up").increment(1));
    let before = in_use();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..COUNTERS {
            // Half the counters have one label, half two; every label set is distinct.
            let route = format!("/items/{i}");
            if i % 2 == 0 {
                metrics::counter!("http.requests", "route" => route).increment(1);
            } else {
                metrics::counter!("http.requests", "route" => route, "method" => "GET").increment(1);
            }
        }
    });
    let held = usize::try_from(in_use() - before).expect("memory was freed, not held");
    assert_eq!(counters.len(), COUNTERS + 1);
    let per_counter = held / COUNTERS;
    println!("memory per counter: {per_counter} bytes ({held} bytes for {COUNTERS} counters with 1-2 labels)");
    assert!(per_counter <= BUDGET, "{per_counter} bytes per counter, over the budget of {BUDGET}");
    // The allocator does see the store's memory, so the figure above means something.
    assert!(per_counter > 0);
    drop(counters);
}
