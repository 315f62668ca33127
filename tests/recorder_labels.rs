//! metrics labels become dimensions; more than 29 are cut.

mod common;

use cloudwatch_counters::{CachedCounters, CountersOptions};
use common::RecordingSink;

fn counters() -> CachedCounters {
    CachedCounters::new(RecordingSink::default(), CountersOptions::default())
}

fn find(c: &CachedCounters, name: &str) -> cloudwatch_counters::Counter {
    c.get_all().into_iter().find(|x| x.name == name).unwrap_or_else(|| panic!("no {name}"))
}

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
        find(&c, "http").dimensions,
        vec![("route".to_owned(), "/a".to_owned()), ("status".to_owned(), "200".to_owned())]
    );
    let wide = find(&c, "wide");
    assert_eq!(wide.dimensions.len(), 29);
    assert_eq!(wide.count, Some(2), "both calls land in the one cut key");
}
