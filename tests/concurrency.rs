//! Many threads update counters while dumps run: nothing is lost and nothing is counted twice.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cloudwatch_counters::{CachedCounters, CounterType, Counters, CountersOptions};
use common::{find, RecordingSink};

const THREADS: usize = 4;
const UPDATES: usize = 20_000;

/// Runs THREADS x UPDATES updates of an Increment, a Statistics and an Interval counter (each sample is 1.0)
/// while another thread dumps in a loop until the writers finish; then one last dump. Halfway, each writer waits
/// for two more dumps (one started after it got there), so that dumps run among the updates whatever the scheduler
/// does.
fn hammer(counters: &CachedCounters) {
    let done = Arc::new(AtomicBool::new(false));
    let dumps_done = Arc::new(AtomicUsize::new(0));
    let dumper = {
        let (counters, done, dumps_done) = (counters.clone(), Arc::clone(&done), Arc::clone(&dumps_done));
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let mut dumps = 0;
            while !done.load(Ordering::SeqCst) {
                runtime.block_on(counters.dump()).unwrap();
                dumps += 1;
                dumps_done.fetch_add(1, Ordering::SeqCst);
            }
            dumps
        })
    };
    let two_more_dumps = |dumps_done: &AtomicUsize| {
        let (from, limit) = (dumps_done.load(Ordering::SeqCst), std::time::Instant::now() + Duration::from_secs(30));
        while dumps_done.load(Ordering::SeqCst) < from + 2 {
            assert!(std::time::Instant::now() < limit, "the dumper made no progress in 30 s");
            std::thread::yield_now();
        }
    };
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (counters, dumps_done) = (counters.clone(), Arc::clone(&dumps_done));
            scope.spawn(move || {
                // Half the threads go through held handles, half through names.
                let inc = counters.handle("hits", CounterType::Increment);
                let stat = counters.handle("sizes", CounterType::Statistics);
                for i in 0..UPDATES {
                    if i == UPDATES / 2 {
                        two_more_dumps(&dumps_done);
                    }
                    if t % 2 == 0 {
                        inc.increment(1);
                        stat.record(1.0);
                    } else {
                        counters.increment_one("hits");
                        counters.stats("sizes", 1.0);
                    }
                    counters.end_timing("latency", 1.0);
                }
            });
        }
    });
    done.store(true, Ordering::SeqCst);
    let dumps = dumper.join().unwrap();
    assert!(dumps > 1, "dumps must run concurrently with the writers, ran {dumps}");
    counters.dump_blocking().unwrap();
}

/// Every update is in exactly one save: the saves add up to what was recorded, each save's min and max are
/// its own samples', and nothing is left to send.
fn assert_each_update_saved_once(sink: &RecordingSink, counters: &CachedCounters) {
    let total = (THREADS * UPDATES) as i64;
    let saves = sink.saves();
    assert!(saves.len() > 1, "expected several saves, got {}", saves.len());
    let sum_of = |name: &str, f: fn(&cloudwatch_counters::Counter) -> f64| -> f64 {
        saves.iter().flatten().filter(|c| c.name() == name).map(f).sum()
    };
    assert_eq!(sum_of("hits", |c| c.count.unwrap() as f64), total as f64);
    for name in ["sizes", "latency"] {
        assert_eq!(sum_of(name, |c| c.count.unwrap() as f64), total as f64, "{name} sample count");
        assert_eq!(sum_of(name, |c| c.sum.unwrap()), total as f64, "{name} sum");
        for c in saves.iter().flatten().filter(|c| c.name() == name) {
            assert_eq!((c.min, c.max), (Some(1.0), Some(1.0)), "{name} min/max in one save");
        }
    }
    // Everything was taken: the store holds nothing more to send.
    assert_eq!(counters.dump_blocking().unwrap().saved, 0);
}

#[test]
fn reset_mode_saves_every_update_exactly_once() {
    let sink = RecordingSink::default();
    let options = CountersOptions::default().reset_timeout(Duration::from_nanos(1));
    let counters = CachedCounters::new(sink.clone(), options);
    hammer(&counters);
    assert_each_update_saved_once(&sink, &counters);
}

#[test]
fn default_mode_saves_every_update_exactly_once_and_reads_keep_running_totals() {
    let sink = RecordingSink::default();
    let counters = CachedCounters::new(sink.clone(), CountersOptions::default());
    hammer(&counters);
    assert_each_update_saved_once(&sink, &counters);

    // pip's local view (reset_timeout 0): running totals since the start.
    let total = (THREADS * UPDATES) as i64;
    let all = counters.get_all();
    assert_eq!(find(&all, "hits").count, Some(total));
    assert_eq!(find(&all, "sizes").count, Some(total));
    assert_eq!(find(&all, "sizes").sum, Some(total as f64));
    assert_eq!(find(&all, "latency").count, Some(total));
    assert_eq!(find(&all, "latency").average, Some(1.0));
}
