//! metrics labels become dimensions; labels of names past the first 29 are cut.

mod common;

use cloudwatch_counters::CountersOptions;
use common::{counter_named as find, recording_counters as counters};

#[test]
fn labels_become_dimensions_and_more_than_29_are_cut() {
    let c = counters();
    metrics::with_local_recorder(&c.recorder(), || {
        metrics::counter!("http", "route" => "/a", "status" => "200").increment(1);
        let many: Vec<metrics::Label> = (0..35).map(|i| metrics::Label::new(format!("k{i:02}"), "v")).collect();
        metrics::counter!("wide", many.clone()).increment(1);
        metrics::counter!("wide", many).increment(1);
    });
    assert_eq!(
        find(&c, "http").dimensions(),
        vec![("route".to_owned(), "/a".to_owned()), ("status".to_owned(), "200".to_owned())]
    );
    let wide = find(&c, "wide");
    assert_eq!(wide.dimensions().len(), 29);
    assert_eq!(wide.count, Some(2), "both calls land in the one cut key");
    assert_eq!(c.telemetry().labels_cut, 2, "each cut registration is counted");
}

/// A name repeated among more than 29 labels counts once: a key of 30 labels and 29 names keeps them all (the
/// last value of the name is published), and only the labels of names past the first 29 are cut.
#[test]
fn labels_are_cut_past_29_names_not_past_29_labels() {
    use metrics::Label;
    let sink = common::RecordingSink::default();
    let c = cloudwatch_counters::CachedCounters::new(sink.clone(), CountersOptions::default().telemetry(false));
    let others = |n: usize| (1..=n).map(|i| Label::new(format!("l{i:02}"), "v"));
    // 30 labels of 29 names: "k" is "a", then "b" (the last one wins: k=b).
    let k_b: Vec<Label> =
        std::iter::once(Label::new("k", "a")).chain(others(28)).chain([Label::new("k", "b")]).collect();
    // Another counter: k=a with the same 28 other labels.
    let k_a: Vec<Label> = std::iter::once(Label::new("k", "a")).chain(others(28)).collect();
    // 31 labels of 30 names: "l29" is cut, and the repeated "k" kept.
    let cut: Vec<Label> =
        std::iter::once(Label::new("k", "a")).chain(others(29)).chain([Label::new("k", "c")]).collect();
    metrics::with_local_recorder(&c.recorder(), || {
        metrics::counter!("m", k_b).increment(1);
        metrics::counter!("m", k_a).increment(10);
        metrics::counter!("m", cut).increment(100);
    });
    c.dump_blocking().unwrap();
    let k = |c: &cloudwatch_counters::Counter| c.dimensions().rev().find(|(n, _)| *n == "k").map(|(_, v)| v.to_owned());
    let mut published: Vec<_> = sink.last_save().iter().filter(|c| c.name() == "m").map(|c| (k(c), c.count)).collect();
    published.sort();
    let k = |v: &str| Some(v.to_owned());
    assert_eq!(published, [(k("a"), Some(10)), (k("b"), Some(1)), (k("c"), Some(100))]);
    assert!(sink.last_save().iter().all(|c| c.dimensions().all(|(n, _)| n != "l29")));
    assert_eq!(c.telemetry().labels_cut, 1, "only the key of 30 names");
}

/// Labels of 30 names fit a datum without InstanceID (`without_instance()`) and an EMF metric: none is cut there.
/// With InstanceID, the 30th name is cut and counted.
#[cfg(feature = "cloudwatch")]
#[test]
fn thirty_label_names_are_kept_where_no_instance_dimension_is_published() {
    use cloudwatch_counters::{CloudWatchCounters, EmfCounters};
    let thirty = || (0..30).map(|k| metrics::Label::new(format!("k{k:02}"), format!("v{k}"))).collect::<Vec<_>>();
    let cloudwatch = |instance: bool| {
        let builder = CloudWatchCounters::builder().namespace("Shop").region("us-east-1").credentials("id", "secret");
        let builder = if instance { builder.instance("host-1") } else { builder.without_instance() };
        builder.build().expect("valid")
    };
    let emf = EmfCounters::builder().namespace("Shop").writer(common::SharedWriter::default()).build().expect("valid");
    let (with, without) = (cloudwatch(true), cloudwatch(false));
    for (counters, kept) in [(with.counters(), 29), (without.counters(), 30), (emf.counters(), 30)] {
        metrics::with_local_recorder(&counters.recorder(), || metrics::counter!("m", thirty()).increment(1));
        let all = counters.get_all();
        let m = all.iter().find(|c| c.name() == "m").expect("recorded");
        assert_eq!(m.dimensions().len(), kept, "{:?}", m.dimensions());
        assert_eq!(counters.telemetry().labels_cut, u64::from(kept < 30));
    }
}
