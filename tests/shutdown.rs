//! Shutdown: dropping open counters without `close()` flushes best-effort, and both examples flush on Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cloudwatch_counters::{CachedCounters, Counters, CountersOptions};
use common::{find, RecordingSink};

fn hourly(sink: &RecordingSink) -> CachedCounters {
    CachedCounters::new(sink.clone(), CountersOptions::default().interval(Duration::from_secs(3600)))
}

#[test]
fn dropping_open_counters_outside_async_code_waits_for_the_flush() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    counters.open_blocking().unwrap(); // no runtime here: the counters run their own thread
    counters.increment("calls", 3);
    let layer_and_recorder_keep_them_alive = counters.recorder();
    drop(counters);
    assert!(sink.saves().is_empty(), "not flushed while the recorder still holds the counters");
    drop(layer_and_recorder_keep_them_alive);
    assert_eq!(find(&sink.last_save(), "calls").count, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_open_counters_in_a_multi_thread_runtime_waits_for_the_flush() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    counters.open().await.unwrap();
    counters.stats("size", 4.0);
    drop(counters);
    assert_eq!(find(&sink.last_save(), "size").sum, Some(4.0), "flushed once the drop returns");
}

#[tokio::test]
async fn dropping_open_counters_in_a_current_thread_runtime_flushes_in_the_background() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    counters.open().await.unwrap();
    counters.stats("size", 4.0);
    drop(counters);
    tokio::time::timeout(Duration::from_secs(30), sink.wait_for_saves(1)).await.expect("the flush ran");
    assert_eq!(find(&sink.last_save(), "size").sum, Some(4.0));
}

#[test]
fn counters_never_opened_are_not_flushed() {
    let sink = RecordingSink::default();
    let counters = hourly(&sink);
    counters.increment("calls", 1);
    drop(counters);
    assert!(sink.saves().is_empty());
}

/// Runs an example, waits for its first dump, sends it SIGINT and returns everything it printed after that.
fn interrupt_example(name: &str, env: &[(&str, &str)]) -> String {
    // Make sure the example is current (a no-op after `cargo test --all-targets`, which builds it).
    let build = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(build.success(), "building the {name} example failed");
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join(name);
    assert!(path.exists(), "{} is missing: build the examples (cargo test builds them)", path.display());
    let mut child = Command::new(&path)
        .envs(env.iter().copied())
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("CLOUDWATCH_ENDPOINT")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let limit = Duration::from_secs(60);
    loop {
        let line = rx.recv_timeout(limit).expect("the example printed its first dump");
        if line.starts_with("Counter ") {
            break;
        }
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let after: Vec<String> = rx.iter().collect(); // until the example closes its stdout
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{name} exited with {exit:?} after Ctrl-C");
    after.join("\n")
}

/// The lines after "-- closing" in an example's output: its final flush.
fn final_flush(output: &str) -> &str {
    output.split("-- closing").nth(1).unwrap_or_else(|| panic!("no final flush in:\n{output}"))
}

#[test]
fn the_quickstart_flushes_on_ctrl_c() {
    let output = interrupt_example("quickstart", &[("QUICKSTART_SECONDS", "600")]);
    assert!(output.contains("-- Ctrl-C --"), "{output}");
    assert!(final_flush(&output).contains("Counter quickstart.requests"), "{output}");
}

#[test]
fn the_service_example_flushes_on_ctrl_c() {
    let output = interrupt_example("service", &[("SERVICE_ORDERS", "1000000")]);
    assert!(output.contains("-- Ctrl-C --"), "{output}");
    assert!(final_flush(&output).contains("Counter orders.created"), "{output}");
}

/// A sink whose saves never finish, and that cannot say what it sent: a cut-off save counts all of it.
struct Hung(tokio::sync::mpsc::UnboundedSender<()>);

impl cloudwatch_counters::Sink for Hung {
    fn save<'a>(&'a self, _counters: &'a [cloudwatch_counters::Counter]) -> cloudwatch_counters::SaveFuture<'a> {
        let _ = self.0.send(());
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn close_that_cuts_off_a_timer_dump_counts_what_that_dump_was_sending() {
    let (started, mut saves) = tokio::sync::mpsc::unbounded_channel();
    let options = CountersOptions::default()
        .interval(Duration::from_millis(10))
        .close_timeout(Duration::from_millis(100))
        .telemetry(false);
    let counters = CachedCounters::new(Hung(started), options);
    counters.open().await.unwrap();
    counters.increment("calls", 1);
    tokio::time::timeout(Duration::from_secs(30), saves.recv()).await.expect("a timer dump started saving");
    let err = counters.close().await.expect_err("cut off");
    assert!(
        matches!(err, cloudwatch_counters::Error::CloseTimeout { datums_unconfirmed: 1, .. }),
        "the timer dump's counter was being sent: {err}"
    );
}

/// A sink whose first save is slow (an endpoint taking its time) and says when it starts; it records every save.
struct SlowFirst {
    saves: RecordingSink,
    started: std::sync::Mutex<Option<mpsc::Sender<()>>>,
}

impl cloudwatch_counters::Sink for SlowFirst {
    fn save<'a>(&'a self, counters: &'a [cloudwatch_counters::Counter]) -> cloudwatch_counters::SaveFuture<'a> {
        let first = self.started.lock().unwrap().take();
        Box::pin(async move {
            if let Some(started) = first {
                let _ = started.send(());
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            self.saves.save(counters).await
        })
    }
}

/// Counters dumping every 10 ms into a [`SlowFirst`] sink, the sink's saves, and word of its first save.
fn slow_first() -> (CachedCounters, RecordingSink, mpsc::Receiver<()>) {
    let (started, first) = mpsc::channel();
    let saves = RecordingSink::default();
    let sink = SlowFirst { saves: saves.clone(), started: std::sync::Mutex::new(Some(started)) };
    let options = CountersOptions::default().interval(Duration::from_millis(10)).telemetry(false);
    (CachedCounters::new(sink, options), saves, first)
}

/// The `calls` counted across every save.
fn calls_saved(sink: &RecordingSink) -> i64 {
    calls_in(&sink.saves())
}

fn calls_in(saves: &[Vec<cloudwatch_counters::Counter>]) -> i64 {
    saves.iter().filter_map(|save| save.iter().find(|c| c.name() == "calls")?.count).sum()
}

/// Waits (bounded) for the first save to start, from async code.
async fn first_save_started(first_save: mpsc::Receiver<()>) {
    let waited = tokio::task::spawn_blocking(move || first_save.recv_timeout(Duration::from_secs(30))).await;
    waited.unwrap().expect("an interval dump started saving");
}

#[test]
fn dropping_counters_during_an_interval_dump_on_their_own_thread_waits_for_it_and_flushes_the_rest() {
    let (counters, sink, first_save) = slow_first();
    counters.open_blocking().unwrap(); // no runtime here: the counters run their own thread
    counters.increment("calls", 1);
    first_save.recv_timeout(Duration::from_secs(30)).expect("an interval dump started saving");
    counters.increment("calls", 10);
    drop(counters);
    assert_eq!(calls_saved(&sink), 11, "all saved once the drop returns: {:?}", sink.saves());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_counters_during_an_interval_dump_in_a_multi_thread_runtime_waits_for_it_and_flushes_the_rest() {
    let (counters, sink, first_save) = slow_first();
    counters.open().await.unwrap();
    counters.increment("calls", 1);
    first_save_started(first_save).await;
    counters.increment("calls", 10);
    drop(counters); // as at the end of `#[tokio::main]`, after which the runtime stops
    assert_eq!(calls_saved(&sink), 11, "all saved once the drop returns: {:?}", sink.saves());
}

#[tokio::test]
async fn dropping_counters_during_an_interval_dump_in_a_current_thread_runtime_closes_them_in_the_background() {
    let (counters, sink, first_save) = slow_first();
    counters.open().await.unwrap();
    counters.increment("calls", 1);
    first_save_started(first_save).await;
    counters.increment("calls", 10);
    drop(counters); // cannot wait here: the interval dump runs on this very thread
    let all_saved = sink.wait_until(|saves| calls_in(saves) >= 11);
    tokio::time::timeout(Duration::from_secs(30), all_saved).await.expect("the background close saved the rest");
    assert_eq!(calls_saved(&sink), 11);
}

#[test]
fn a_dump_dropped_during_its_save_other_than_by_close_warns_that_its_data_may_be_lost() {
    let (started, mut saves) = tokio::sync::mpsc::unbounded_channel();
    let counters = CachedCounters::new(Hung(started), CountersOptions::default().telemetry(false));
    counters.increment("orders", 1);
    let (_capture, logs) = common::capture_logs();
    let mut dump = Box::pin(counters.dump());
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(std::future::Future::poll(dump.as_mut(), &mut context).is_pending(), "the save under way");
    assert!(saves.try_recv().is_ok(), "the save began");
    drop(dump);
    assert_eq!(counters.telemetry().datums_ambiguous, 1, "counted: the sink may have sent it; {}", logs.text());
    assert_eq!(logs.lines_with("a dump was dropped while its save was under way"), 1, "{}", logs.text());
}
