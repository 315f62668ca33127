//! metrics labels become dimensions; more than 29 are cut.

mod common;

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
        find(&c, "http").dimensions,
        vec![("route".to_owned(), "/a".to_owned()), ("status".to_owned(), "200".to_owned())]
    );
    let wide = find(&c, "wide");
    assert_eq!(wide.dimensions.len(), 29);
    assert_eq!(wide.count, Some(2), "both calls land in the one cut key");
    assert_eq!(c.telemetry().labels_cut, 2, "each cut registration is counted");
}
