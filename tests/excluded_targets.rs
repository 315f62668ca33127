//! The AWS SDK, hyper, h2, rustls, tower and this crate are never timed or counted; other layers are unaffected.

mod common;

use cloudwatch_counters::CounterType;
use common::recording_counters as counters;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Registry;

#[test]
fn aws_sdk_hyper_and_own_targets_are_never_timed_or_counted() {
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info_span!(target: "app", "x").in_scope(|| {});
        tracing::info_span!(target: "aws_smithy_runtime::client::orchestrator", "invoke").in_scope(|| {
            tracing::event!(target: "aws_smithy_runtime::client::orchestrator", tracing::Level::ERROR, counter.retries = 1);
        });
        tracing::info_span!(target: "hyper::client", "connect").in_scope(|| {});
        tracing::info_span!(target: "h2::proto", "poll").in_scope(|| {});
        tracing::info_span!(target: "rustls::client", "handshake").in_scope(|| {});
        tracing::event!(target: "cloudwatch_counters::exporter", tracing::Level::INFO, counter.dumps = 1);
        tracing::info_span!(target: "tower::buffer", "worker").in_scope(|| {});
        tracing::info_span!(target: "aws_sdk_cloudwatch::client", "put").in_scope(|| {});
    });
    let names: Vec<String> = c.get_all().into_iter().map(|x| x.name().to_owned()).collect();
    assert_eq!(names, vec!["app.x.exec_time".to_owned()]);
}

#[test]
fn extra_exclusions_and_switches_apply() {
    let c = counters();
    let layer = c.layer_builder().exclude_target("noisy").count_events(false).build();
    tracing::subscriber::with_default(Registry::default().with(layer), || {
        tracing::info_span!(target: "noisy::module", "spin").in_scope(|| {});
        tracing::info!(counter.ignored = 1);
        tracing::info_span!(target: "quiet", "work").in_scope(|| {});
    });
    let names: Vec<String> = c.get_all().into_iter().map(|x| x.name().to_owned()).collect();
    assert_eq!(names, vec!["quiet.work.exec_time".to_owned()]);
}

#[test]
fn other_layers_still_see_what_this_layer_ignores() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct CountEvents(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountEvents {
        fn on_event(&self, _e: &tracing::Event<'_>, _c: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let c = counters();
    let subscriber = Registry::default().with(c.layer()).with(CountEvents(Arc::clone(&seen)));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(target: "hyper::client", "plain event our layer ignores");
        tracing::info!("another plain event");
    });
    assert_eq!(seen.load(Ordering::SeqCst), 2, "the per-layer filter must not disable callsites for others");
}

#[test]
fn opening_cloudwatch_counters_times_none_of_the_sdks_spans_even_with_no_exclusions() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct CountSpans(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountSpans {
        fn on_new_span(
            &self,
            _attrs: &tracing::span::Attributes<'_>,
            _id: &tracing::span::Id,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let counters = cloudwatch_counters::CloudWatchCounters::builder()
        .namespace("OpenSpans")
        .region("us-east-1")
        .credentials("test", "test")
        // Never reached: opening loads the SDK's configuration and checks the credentials, and sends nothing.
        .endpoint_url("http://127.0.0.1:9")
        .build()
        .expect("valid");
    let layer = counters.layer_builder().excluded_targets(Vec::<String>::new()).level(tracing::Level::TRACE).build();
    let seen = Arc::new(AtomicUsize::new(0));
    let subscriber = Registry::default().with(layer).with(CountSpans(Arc::clone(&seen)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    tracing::subscriber::with_default(subscriber, || runtime.block_on(counters.open()).expect("opened"));
    assert!(seen.load(Ordering::SeqCst) > 0, "the SDK's set-up has spans (else this test proves nothing)");
    let names: Vec<String> = counters.counters().get_all().into_iter().map(|x| x.name().to_owned()).collect();
    assert_eq!(names, Vec::<String>::new(), "none of them timed");
    runtime.block_on(counters.close()).expect("closed");
}

#[test]
fn an_error_logged_through_the_log_crate_by_an_excluded_target_does_not_fail_the_span() {
    // tracing-log bridges a `log` record as an event of target `log` with its own target in `log.target`.
    let c = counters();
    tracing::subscriber::with_default(Registry::default().with(c.layer()), || {
        tracing::info_span!(target: "app", "call").in_scope(|| {
            let target = "hyper::proto::h1::conn";
            tracing::event!(target: "log", tracing::Level::ERROR, { log.target = target }, "connection error");
        });
        tracing::info_span!(target: "app", "fails").in_scope(|| {
            tracing::event!(target: "log", tracing::Level::ERROR, { log.target = "app::db" }, "query failed");
        });
    });
    let errors = |span: &str| c.get(&format!("app.{span}.errors"), CounterType::Increment).count.filter(|&n| n > 0);
    assert_eq!((errors("call"), errors("fails")), (None, Some(1)));
    assert_eq!(c.get("app.call.exec_time", CounterType::Interval).count, Some(1), "the span itself is timed");
}
