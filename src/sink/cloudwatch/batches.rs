//! [`Batches`]: a save's counters turned into PutMetricData requests one at a time, as they are sent, so that a
//! dump of many counters holds one request's datums at a time (built while the counters they come from are still
//! in the processor's cache) rather than all of them.

use std::sync::atomic::Ordering::Relaxed;

use aws_sdk_cloudwatch::types::MetricDatum;

use super::datum::{estimated_size, to_datum, DatumContext};
use super::{SinkTelemetry, MAX_REQUEST_BYTES};
use crate::config::MAX_BATCH_SIZE;
use crate::model::Counter;
use crate::sink::SkipReason;

/// A counter's datums, ready for a batch: its index, the datums, their estimated size, and what the first pass
/// counts once the counter is placed in a batch (its labels repeated a name; how many rollups were left out).
struct Built {
    index: usize,
    datums: Vec<MetricDatum>,
    size: usize,
    deduplicated: bool,
    rollups_cut: usize,
}

/// One request's datums and the indices of the counters they came from.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) datums: Vec<MetricDatum>,
    /// The counters the datums came from, each once.
    pub(super) sources: Vec<usize>,
    bytes: usize,
}

/// The counters at some indices of a save, as batches of at most `batch_size` datums and under 1 MB, built on
/// demand. The datums that break a limit are skipped and, on the `first` pass over a save's counters, counted.
pub(super) struct Batches<'a, I> {
    counters: &'a [Counter],
    indices: I,
    ctx: &'a DatumContext<'a>,
    telemetry: &'a SinkTelemetry,
    batch_size: usize,
    first: bool,
    /// A counter's datums that did not fit the batch before: they open the next one.
    carried: Option<Built>,
    /// The counters skipped (and counted) since the caller last emptied this.
    pub(super) skipped: Vec<usize>,
}

impl<'a, I: Iterator<Item = usize>> Batches<'a, I> {
    pub(super) fn new(
        counters: &'a [Counter],
        indices: impl IntoIterator<IntoIter = I>,
        ctx: &'a DatumContext<'a>,
        telemetry: &'a SinkTelemetry,
        batch_size: usize,
        first: bool,
    ) -> Self {
        Batches {
            counters,
            indices: indices.into_iter(),
            ctx,
            telemetry,
            batch_size,
            first,
            carried: None,
            skipped: Vec::new(),
        }
    }

    /// The counters not yet placed in a batch, unbuilt: for a save that keeps them without trying.
    pub(super) fn untried(self) -> impl Iterator<Item = usize> {
        self.carried.map(|built| built.index).into_iter().chain(self.indices)
    }

    /// The datums of the next counter that has any.
    fn next_counter(&mut self) -> Option<Built> {
        if let Some(carried) = self.carried.take() {
            return Some(carried);
        }
        for i in self.indices.by_ref() {
            let counter = &self.counters[i];
            match to_datum(counter, self.ctx) {
                Ok(mut built) => {
                    let all = built.datums.len();
                    let size = fit_one_request(&mut built.datums);
                    let rollups_cut = all - built.datums.len();
                    let deduplicated = built.deduplicated;
                    return Some(Built { index: i, datums: built.datums, size, deduplicated, rollups_cut });
                }
                Err(reason) => {
                    if self.first {
                        self.telemetry.skipped.skip(reason, counter.name());
                        self.skipped.push(i);
                    }
                }
            }
        }
        None
    }
}

impl<I: Iterator<Item = usize>> Iterator for Batches<'_, I> {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let mut batch = Batch::default();
        while let Some(built) = self.next_counter() {
            // A counter's datums (its own and its rollups) travel in one request: sent, failed or cut off
            // together.
            let fits = batch.datums.is_empty()
                || (batch.datums.len() + built.datums.len() <= self.batch_size
                    && batch.bytes + built.size <= MAX_REQUEST_BYTES);
            if !fits {
                self.carried = Some(built);
                break;
            }
            if self.first {
                if built.deduplicated {
                    self.telemetry.dimensions_deduplicated.fetch_add(1, Relaxed);
                }
                // The rollups left out, each a datum skipped.
                for _ in 0..built.rollups_cut {
                    self.telemetry.skipped.skip(SkipReason::TooLarge, self.counters[built.index].name());
                }
            }
            batch.datums.extend(built.datums);
            batch.sources.push(built.index);
            batch.bytes += built.size;
        }
        (!batch.datums.is_empty()).then_some(batch)
    }
}

/// Keeps as many of a counter's `datums` (its own first, then its rollups) as one request holds (under 1 MB,
/// at most 1000: a counter's datums travel in one request, which may pass `batch_size` for them), and returns
/// their estimated size. Many long rollups could pass those limits on their own, and their request would be
/// refused whole, at every dump.
fn fit_one_request(datums: &mut Vec<MetricDatum>) -> usize {
    let mut size = 0;
    let mut kept = 0;
    for datum in datums.iter() {
        let next = estimated_size(datum);
        // The counter's own datum is always kept (one datum is far under the limits).
        if kept > 0 && (kept == MAX_BATCH_SIZE || size + next > MAX_REQUEST_BYTES) {
            break;
        }
        size += next;
        kept += 1;
    }
    datums.truncate(kept);
    size
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::model::CounterType;
    use crate::sink::SkipReason;

    fn counter(name: &str) -> Counter {
        let mut c = Counter::new(name, CounterType::Increment);
        c.count = Some(1);
        c
    }

    #[test]
    fn batches_are_built_one_at_a_time_keeping_a_counters_datums_together_and_skipping_bad_ones() {
        // With the rollup, each counter has two datums: at most one counter fits a batch of 3.
        let ctx = DatumContext {
            instance: Some("host-1"),
            dimensions: &[],
            rollup: true,
            rollups: &[],
            storage_resolution: 60,
            high_resolution: &[],
            now: SystemTime::now(),
        };
        let too_long = "n".repeat(300);
        let counters = [counter("a"), counter("b"), counter("c"), counter(&too_long)];
        let telemetry = SinkTelemetry::default();
        let mut batches = Batches::new(&counters, 0..counters.len(), &ctx, &telemetry, 3, true);
        let first = batches.next().expect("a first batch");
        assert_eq!((first.sources.as_slice(), first.datums.len()), (&[0][..], 2));
        assert_eq!(telemetry.skipped.get(SkipReason::MetricName), 0, "not built before it is needed");
        let rest: Vec<Batch> = batches.by_ref().collect();
        let sources: Vec<&[usize]> = rest.iter().map(|b| b.sources.as_slice()).collect();
        assert_eq!(sources, [&[1][..], &[2][..]], "the one that did not fit carried, the bad counter skipped");
        assert!(rest.iter().all(|b| b.datums.len() == 2));
        assert_eq!(telemetry.skipped.get(SkipReason::MetricName), 1);
        assert_eq!(batches.skipped, [3], "and named");

        // Four datums to a batch: two counters each; a second pass (a split) counts nothing again.
        let batches: Vec<Batch> = Batches::new(&counters, [0, 1, 2, 3], &ctx, &telemetry, 4, false).collect();
        let sources: Vec<&[usize]> = batches.iter().map(|b| b.sources.as_slice()).collect();
        assert_eq!(sources, [&[0, 1][..], &[2][..]]);
        assert_eq!(telemetry.skipped.get(SkipReason::MetricName), 1);
    }

    #[test]
    fn a_counter_whose_rollups_pass_a_requests_limits_keeps_those_that_fit_and_counts_the_rest() {
        // 29 labels of 1,024 characters: about 31 KB a datum.
        let long = "v".repeat(1024);
        let mut c = counter("m");
        c.set_dimensions((0..29).map(|k| (format!("k{k:02}"), long.clone())));
        // Rollup sets of all labels but one (29), and of all but two neighbours (10): 40 datums, about 1.2 MB.
        let without =
            |skipped: &[usize]| (0..29).filter(|k| !skipped.contains(k)).map(|k| format!("k{k:02}")).collect();
        let rollups: Vec<Vec<String>> =
            (0..29).map(|k| without(&[k])).chain((0..10).map(|k| without(&[k, k + 1]))).collect();
        let ctx = DatumContext {
            instance: None,
            dimensions: &[],
            rollup: false,
            rollups: &rollups,
            storage_resolution: 60,
            high_resolution: &[],
            now: SystemTime::now(),
        };
        let all = to_datum(&c, &ctx).expect("valid").datums.len();
        assert_eq!(all, 40);
        let counters = [c.clone(), counter("next")];
        for (batch_size, limit) in [(1000, "bytes"), (5, "batch size")] {
            let telemetry = SinkTelemetry::default();
            let batches: Vec<Batch> = Batches::new(&counters, 0..2, &ctx, &telemetry, batch_size, true).collect();
            let first = &batches[0];
            let bytes: usize = first.datums.iter().map(estimated_size).sum();
            assert!(bytes <= MAX_REQUEST_BYTES, "{limit}: {bytes} bytes");
            assert_eq!(first.sources[0], 0, "{limit}");
            assert_eq!(first.datums[0].dimensions().len(), 29, "{limit}: its own datum first");
            let skipped = telemetry.skipped.get(SkipReason::TooLarge);
            let sent = first.datums.iter().filter(|d| d.metric_name() == Some("m")).count();
            assert_eq!(sent as u64 + skipped, all as u64, "{limit}: each rollup left out counted");
            assert!(skipped > 0 && sent > 5, "{limit}: cut to the request's limits, not to the batch size");
            let sources: Vec<usize> = batches.iter().flat_map(|b| b.sources.clone()).collect();
            assert_eq!(sources, [0, 1], "{limit}: the next counter follows");
        }
    }
}
