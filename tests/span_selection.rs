//! Which spans become metrics is the user's choice, and what the layer ignores costs as little as it can:
//! a level threshold (INFO, `#[instrument]`'s default), targets matched on module boundaries, and a per-layer
//! filter as tracing-subscriber users expect (which also lets the subscriber skip what no layer wants).

mod common;

use common::recording_counters as counters;
use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

fn names(c: &cloudwatch_counters::CachedCounters) -> Vec<String> {
    let mut names: Vec<String> = c.get_all().into_iter().map(|x| x.name().to_owned()).collect();
    names.sort();
    names
}

#[test]
fn debug_and_trace_spans_are_not_timed_by_default_and_a_lower_level_includes_them() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info_span!(target: "app", "handle").in_scope(|| {});
        tracing::debug_span!(target: "app", "parse").in_scope(|| {});
        tracing::trace_span!(target: "app", "byte").in_scope(|| {});
        tracing::event!(target: "app", Level::DEBUG, counter.debug_hits = 1);
    });
    assert_eq!(names(&c), ["app.handle.exec_time"]);

    let c = counters();
    let layer = c.layer_builder().level(Level::DEBUG).build();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::debug_span!(target: "app", "parse").in_scope(|| {});
        tracing::trace_span!(target: "app", "byte").in_scope(|| {});
        tracing::event!(target: "app", Level::DEBUG, counter.debug_hits = 1);
    });
    assert_eq!(names(&c), ["app.parse.exec_time", "debug_hits"]);
}

#[test]
fn excluded_targets_match_on_module_boundaries() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info_span!(target: "hyperion::x", "call").in_scope(|| {});
        tracing::info_span!(target: "hyper::x", "call").in_scope(|| {});
        tracing::info_span!(target: "hyper", "call").in_scope(|| {});
        tracing::info_span!(target: "tokio_postgres::query", "run").in_scope(|| {});
        tracing::info_span!(target: "towerdefense", "wave").in_scope(|| {});
        tracing::info_span!(target: "tower_http::trace::make_span", "request").in_scope(|| {});
        tracing::info_span!(target: "aws_sdk_sts::client", "assume").in_scope(|| {});
    });
    assert_eq!(
        names(&c),
        [
            "http.request.exec_time", // tower-http's TraceLayer: timed, under a name of its own
            "hyperion.x.call.exec_time",
            "tokio_postgres.query.run.exec_time",
            "towerdefense.wave.exec_time"
        ]
    );
    let c = counters();
    let layer = c.layer_builder().exclude_target("app::db").exclude_target("gen_*").build();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::info_span!(target: "app::db::pool", "get").in_scope(|| {});
        tracing::info_span!(target: "app::dbx", "get").in_scope(|| {});
        tracing::info_span!(target: "gen_proto::x", "decode").in_scope(|| {});
    });
    assert_eq!(names(&c), ["app.dbx.get.exec_time"]);
}

#[test]
fn the_layer_never_silences_another_layers_debug_logs_and_a_per_layer_filter_gives_the_hint() {
    let c = counters();
    let logs = common::SharedWriter::default();
    let writer = {
        let logs = logs.clone();
        move || logs.clone()
    };
    let subscriber = Registry::default().with(tracing_subscriber::fmt::layer().with_writer(writer)).with(c.layer());
    assert_eq!(tracing::Subscriber::max_level_hint(&subscriber), None, "no hint from the counters layer");
    tracing::subscriber::with_default(subscriber, || tracing::debug!(target: "app", "a debug line"));
    assert!(logs.text().contains("a debug line"), "the fmt layer still writes debug logs");
    let filtered = Registry::default().with(c.layer().with_filter(LevelFilter::INFO));
    assert_eq!(tracing::Subscriber::max_level_hint(&filtered), Some(LevelFilter::INFO));
}

#[test]
fn a_per_layer_filter_chooses_the_spans_and_leaves_other_layers_alone() {
    let c = counters();
    let only_app = Targets::new().with_target("app", Level::INFO);
    let logs = common::SharedWriter::default();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_filter(LevelFilter::DEBUG);
    let subscriber = Registry::default().with(c.layer().with_filter(only_app)).with(fmt);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!(target: "app::orders", "create").in_scope(|| {});
        tracing::info_span!(target: "library", "inner").in_scope(|| {});
        tracing::debug!(target: "library", "a debug log the fmt layer still writes");
    });
    assert_eq!(names(&c), ["app.orders.create.exec_time"]);
    assert_eq!(c.get("app.orders.create.exec_time", cloudwatch_counters::CounterType::Interval).count, Some(1));
    assert!(logs.text().contains("a debug log the fmt layer still writes"));
}
