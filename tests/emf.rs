//! EMF: the documents EmfCounters write carry each period's metrics, dimensions and properties; a flush with
//! nothing new writes nothing; the agent output survives the agent going away and coming back (what fit in the
//! buffer arrives, the overflow is counted) over TCP, and sends one document per datagram over UDP.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use cloudwatch_counters::{Counters, CountersOptions, EmfCounters, EmfCountersBuilder};
use common::SharedWriter;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

fn parse(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// The value of `metric` in the document that has it.
fn metric<'a>(docs: &'a [Value], metric: &str) -> &'a Value {
    docs.iter().find_map(|d| d.get(metric)).unwrap_or_else(|| panic!("no {metric} in {docs:?}"))
}

/// EMF counters of `namespace` writing to `out`, without self-telemetry (the tests count what they recorded).
fn writing_to(out: &SharedWriter, namespace: &str) -> EmfCounters {
    writing_into(out.clone(), namespace)
}

/// [`writing_to`] any writer.
fn writing_into(writer: impl std::io::Write + Send + 'static, namespace: &str) -> EmfCounters {
    builder_into(writer, namespace).build().expect("valid")
}

/// The builder of [`writing_into`], for a test to add dimensions or properties.
fn builder_into(writer: impl std::io::Write + Send + 'static, namespace: &str) -> EmfCountersBuilder {
    EmfCounters::builder().namespace(namespace).writer(writer).options(CountersOptions::default().telemetry(false))
}

#[test]
fn a_flush_writes_the_periods_metrics_with_their_dimensions_and_properties() {
    let out = SharedWriter::default();
    let counters = builder_into(out.clone(), "Shop")
        .dimension("service", "checkout")
        .property("version", "1.4.2")
        .build()
        .expect("valid");
    let layer = counters.layer_builder().properties(["request_id"]).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!(target: "shop", "request", route = "/pay", request_id = "r-42");
        span.in_scope(|| tracing::info!(monotonic_counter.payments = 2, request_id = "r-42", "paid"));
    });
    counters.stats("basket.size", 3.0);
    counters.stats("basket.size", 5.0);
    let report = counters.flush_blocking().expect("flush");
    assert_eq!(report.saved, 3);
    let docs = parse(&out.text());
    for doc in &docs {
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Shop");
        assert_eq!(doc["service"], "checkout");
        assert_eq!(doc["version"], "1.4.2");
    }
    assert_eq!(metric(&docs, "payments"), 2);
    let payments = docs.iter().find(|d| d.get("payments").is_some()).expect("payments");
    assert_eq!(payments["request_id"], "r-42", "a property, not a dimension");
    assert_eq!(payments["_aws"]["CloudWatchMetrics"][0]["Dimensions"], serde_json::json!([["service"]]));
    let request = docs.iter().find(|d| d.get("shop.request.exec_time").is_some()).expect("the span");
    assert_eq!(request["route"], "/pay");
    assert_eq!(request["request_id"], "r-42");
    let basket = metric(&docs, "basket.size");
    assert_eq!((basket["Count"].as_u64(), basket["Sum"].as_f64()), (Some(2), Some(8.0)));
    assert_eq!(
        (basket["Values"].clone(), basket["Counts"].clone()),
        (serde_json::json!([3, 5]), serde_json::json!([1, 1]))
    );

    let before = out.text().len();
    assert_eq!(counters.flush_blocking().expect("flush").saved, 0, "nothing new: nothing written");
    assert_eq!(out.text().len(), before);
}

#[test]
fn over_tcp_the_agent_going_away_and_back_loses_nothing_buffered_and_the_overflow_is_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("address");
    let (_capture, logs) = common::capture_every_thread();
    let counters = EmfCounters::builder()
        .namespace("Agent")
        .agent(format!("tcp://{addr}"))
        .agent_buffer(3)
        .options(CountersOptions::default().telemetry(false).close_timeout(Duration::from_secs(20)))
        .build()
        .expect("valid");
    counters.increment("first", 1);
    counters.flush_blocking().expect("flush");
    let (stream, _) = listener.accept().expect("the agent output connects");
    let mut lines = BufReader::new(stream).lines();
    let first: Value = serde_json::from_str(&lines.next().expect("a line").expect("readable")).expect("json");
    assert_eq!(first["first"], 1);

    // The agent goes away: its connection and its listener close.
    drop(lines);
    drop(listener);
    for name in ["a", "b", "c", "d", "e"] {
        counters.increment(name, 1);
        counters.flush_blocking().expect("a flush never waits on the agent");
    }
    assert!(counters.agent_counts().1 >= 2, "the buffer holds 3 documents: the rest is dropped and counted");
    let telemetry = counters.telemetry();
    assert_eq!(telemetry.documents_dropped, counters.agent_counts().1);
    assert_eq!(
        (telemetry.requests_sent + telemetry.documents_dropped, telemetry.datums_sent + telemetry.documents_dropped),
        (6, 6),
        "each document of one metric counted once: taken into the buffer, or dropped"
    );
    let listener = TcpListener::bind(addr).expect("the agent comes back on its port");
    let (stream, _) = listener.accept().expect("the output reconnects");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut lines = BufReader::new(stream).lines();
    let (_, dropped, _) = counters.agent_counts();
    let buffered = 5 - dropped;
    let received: Vec<Value> = (0..buffered)
        .map(|_| serde_json::from_str(&lines.next().expect("a line").expect("readable")).expect("a whole document"))
        .collect();
    let names: Vec<&str> =
        ["a", "b", "c", "d", "e"].into_iter().filter(|n| received.iter().any(|d| d.get(*n).is_some())).collect();
    assert_eq!(names.len() as u64, buffered, "every buffered document arrived: {names:?}");
    counters.close_blocking().expect("close drains the buffer");
    assert_eq!(counters.agent_counts().0, 1 + buffered, "the first document and the buffered ones, each sent once");
    // The agent's thread said why documents waited: the connection the agent closed.
    let failed = "sending a document to the CloudWatch agent failed";
    let warned = logs.text().lines().filter(|l| l.contains(&addr.to_string()) && l.contains(failed)).count();
    assert_eq!(warned, 1, "{}", logs.text());
}

#[test]
fn over_udp_each_document_is_one_datagram() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a free port");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let counters = EmfCounters::builder()
        .namespace("Udp")
        .agent(format!("udp://{}", socket.local_addr().expect("address")))
        .options(CountersOptions::default().telemetry(false))
        .build()
        .expect("valid");
    let many: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    for name in &many {
        counters.increment(name, 1);
    }
    counters.flush_blocking().expect("flush");
    let mut seen = 0;
    let mut buffer = vec![0u8; 70_000];
    while seen < many.len() {
        let n = socket.recv(&mut buffer).expect("a datagram");
        let text = std::str::from_utf8(&buffer[..n]).expect("utf-8");
        assert!(text.ends_with('\n'), "a document and its newline");
        let doc: Value = serde_json::from_str(text.trim_end()).expect("a whole document per datagram");
        seen += doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(seen, 150, "two documents: 100 metrics, then 50");
    counters.close_blocking().expect("close");
}

#[test]
fn over_udp_a_document_too_large_for_a_datagram_goes_without_its_properties_and_the_next_ones_follow() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a free port");
    socket.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let counters = EmfCounters::builder()
        .namespace("Udp")
        .agent(format!("udp://{}", socket.local_addr().expect("address")))
        .property("blob", "x".repeat(70_000))
        .options(CountersOptions::default().telemetry(false))
        .build()
        .expect("valid");
    let mut buffer = vec![0u8; 70_000];
    for name in ["first", "second"] {
        counters.increment(name, 1);
        counters.flush_blocking().expect("flush");
        let n = socket.recv(&mut buffer).expect("a datagram");
        let doc: Value = serde_json::from_slice(&buffer[..n]).expect("a whole document");
        assert_eq!((doc[name].as_f64(), doc.get("blob")), (Some(1.0), None), "{name}");
    }
    counters.close_blocking().expect("close: nothing left stuck in the buffer");
}

/// The Lambda example as a user runs it: each invocation's flush writes its metrics, and a flush with nothing
/// new writes nothing. It builds the example first (with the default features, as `scripts/test.sh` has).
#[test]
#[ignore = "builds and runs the lambda example: scripts/test.sh"]
fn the_lambda_example_writes_each_invocations_metrics_at_its_flush() {
    let build = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "lambda"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(build.success(), "building the lambda example failed");
    let exe = std::env::current_exe().expect("the test's path");
    let example = exe.parent().and_then(|deps| deps.parent()).expect("target/debug").join("examples").join("lambda");
    let output = std::process::Command::new(&example)
        .env("LAMBDA_INVOCATIONS", "4")
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env_remove("AWS_EMF_AGENT_ENDPOINT")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let docs = parse(&String::from_utf8_lossy(&output.stdout));
    let handler: Vec<&Value> = docs.iter().filter(|d| d.get("lambda.handler.exec_time").is_some()).collect();
    assert_eq!(handler.len(), 4, "one timed invocation a flush");
    for (n, doc) in handler.iter().enumerate() {
        assert_eq!(doc["lambda.handler.exec_time"]["Count"], 1);
        assert_eq!(doc["request_id"], format!("req-{n}"), "the invocation's request id, as a property");
        assert_eq!(doc["route"], "/orders");
    }
    let items: f64 = docs.iter().filter_map(|d| d.get("orders.items")?.as_f64()).sum();
    assert_eq!(items, 6.0, "0 + 1 + 2 + 3 items");
    assert!(String::from_utf8_lossy(&output.stderr).contains("saved 0 counters"));
}

#[test]
fn names_emf_reserves_or_refuses_are_skipped_and_counted() {
    let out = SharedWriter::default();
    let counters = writing_to(&out, "Skips");
    counters.increment("_aws", 1);
    counters.increment("caf\u{e9}", 1);
    counters.increment("fine", 1);
    counters.flush_blocking().expect("the rest is written");
    let telemetry = counters.telemetry();
    assert_eq!(telemetry.skipped(cloudwatch_counters::SkipReason::MetricName), 2);
    let docs = parse(&out.text());
    assert_eq!(docs.len(), 1);
    assert_eq!(metric(&docs, "fine"), 1);
    assert!(EmfCounters::builder().namespace("").writer(std::io::sink()).build().is_err(), "an empty namespace");
    assert!(EmfCounters::builder().agent("http://127.0.0.1:1").build().is_err(), "not tcp:// or udp://");
}

#[test]
fn rollups_from_config_leave_empty_sets_out() {
    for rollups in ["service;", "", ";;"] {
        let out = SharedWriter::default();
        let config = cloudwatch_counters::ConfigParams::from_tuples([("options.rollups", rollups)]);
        let counters = EmfCounters::builder()
            .namespace("Shop")
            .writer(out.clone())
            .dimension("service", "checkout")
            .config(&config)
            .options(CountersOptions::default().telemetry(false))
            .build()
            .expect("valid");
        counters.increment("calls", 1);
        counters.flush_blocking().expect("flush");
        let docs = parse(&out.text());
        let sets = &docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        // The set `service` is the document's own already: no set without dimensions is added.
        assert_eq!(sets, &serde_json::json!([["service"]]), "options.rollups={rollups:?}");
    }
}

/// A writer into `out` that fails once, after `budget` more bytes (a full disk, a pipe that broke).
struct FailsOnce {
    out: SharedWriter,
    budget: std::sync::Arc<std::sync::Mutex<Option<usize>>>,
}

impl std::io::Write for FailsOnce {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut budget = self.budget.lock().unwrap();
        let n = match *budget {
            Some(0) => {
                *budget = None;
                return Err(std::io::Error::other("no space left on device"));
            }
            Some(left) => {
                let n = left.min(buf.len());
                *budget = Some(left - n);
                n
            }
            None => buf.len(),
        };
        self.out.write(&buf[..n])
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_that_fails_part_way_leaves_no_broken_line_and_nothing_counted_twice() {
    // The first document: cut in its middle; then whole but for its newline.
    for cut_before_end in [10, 0] {
        let out = SharedWriter::default();
        let budget = std::sync::Arc::new(std::sync::Mutex::new(None));
        let counters = writing_into(FailsOnce { out: out.clone(), budget: budget.clone() }, "Shop");
        counters.increment("calls", 1);
        counters.flush_blocking().expect("a first flush");
        let first_len = out.text().len() - 1; // its document, without the newline
        counters.increment("calls", 2);
        *budget.lock().unwrap() = Some(first_len - cut_before_end);
        counters.flush_blocking().expect_err("the write fails");
        counters.increment("calls", 4);
        counters.flush_blocking().expect("written again");
        let text = out.text();
        let (docs, broken): (Vec<_>, Vec<_>) = text.lines().map(serde_json::from_str::<Value>).partition(Result::is_ok);
        let total: u64 = docs.into_iter().filter_map(|d| d.ok()?["calls"].as_u64()).sum();
        assert_eq!(total, 7, "every call once, cut {cut_before_end} bytes before the end: {text}");
        // The document cut short is a line of its own (no JSON, ignored by CloudWatch), the next ones whole.
        assert_eq!(broken.len(), usize::from(cut_before_end > 0), "{text}");
    }
}

#[test]
fn counters_never_opened_write_what_is_left_when_their_last_owner_is_dropped() {
    for last_owner_is_the_recorder in [false, true] {
        let out = SharedWriter::default();
        let counters = writing_to(&out, "Shop");
        counters.increment("orders", 7);
        let recorder = counters.recorder();
        metrics::with_local_recorder(&recorder, || metrics::counter!("orders").increment(1));
        if last_owner_is_the_recorder {
            drop(counters);
            assert_eq!(out.text(), "", "the recorder still holds the counters");
            drop(recorder);
        } else {
            drop(recorder);
            assert_eq!(out.text(), "", "the counters are still held");
            drop(counters);
        }
        let docs = parse(&out.text());
        assert_eq!(docs.len(), 1, "recorder last: {last_owner_is_the_recorder}: {docs:?}");
        assert_eq!(metric(&docs, "orders"), 8);
    }
}

#[test]
fn a_default_dimension_cloudwatch_would_not_take_is_refused_at_build() {
    for (name, value) in [("service", "é"), ("", "x"), ("svc", " "), ("_aws", "x"), (":svc", "x"), ("svc", "")] {
        let built =
            EmfCounters::builder().namespace("Shop").writer(SharedWriter::default()).dimension(name, value).build();
        let err = built.err().unwrap_or_else(|| panic!("{name}={value} was accepted"));
        assert!(err.to_string().contains("dimensions"), "{name}={value}: {err}");
    }
    let good =
        EmfCounters::builder().namespace("Shop").writer(SharedWriter::default()).dimension("service", "checkout");
    assert!(good.build().is_ok());
}

#[test]
fn counters_closed_then_dropped_write_nothing_more() {
    let out = SharedWriter::default();
    let counters = writing_to(&out, "Shop");
    counters.last("queue_depth", 4.0); // a gauge goes out at every flush while it lives
    counters.close_blocking().expect("close");
    let after_close = out.text();
    assert_eq!(parse(&after_close).len(), 1, "{after_close}");
    drop(counters);
    assert_eq!(out.text(), after_close, "the close flushed: the drop sends the gauge no second time");
}

/// A writer that refuses every write while `broken` is set.
#[derive(Clone)]
struct Breakable {
    out: SharedWriter,
    broken: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::io::Write for Breakable {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.broken.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(std::io::Error::other("broken pipe"));
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The sum of `name` over the documents of `text`.
fn total(text: &str, name: &str) -> i64 {
    parse(text).iter().filter_map(|d| d[name].as_i64()).sum()
}

#[test]
fn counters_whose_close_failed_write_what_it_kept_when_dropped() {
    let out = SharedWriter::default();
    let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let counters = writing_into(Breakable { out: out.clone(), broken: broken.clone() }, "Shop");
    counters.increment("calls", 5);
    counters.last("queue_depth", 4.0);
    counters.close_blocking().expect_err("the writer is broken: the data is kept");
    broken.store(false, std::sync::atomic::Ordering::Relaxed);
    drop(counters);
    let text = out.text();
    assert_eq!((total(&text, "calls"), total(&text, "queue_depth")), (5, 4), "{text}");
}

#[test]
fn counters_closed_then_updated_write_the_updates_once_when_dropped() {
    let out = SharedWriter::default();
    let counters = writing_to(&out, "Shop");
    counters.increment("calls", 1);
    counters.close_blocking().expect("close");
    counters.increment("calls", 2);
    drop(counters);
    let text = out.text();
    assert_eq!((parse(&text).len(), total(&text, "calls")), (2, 3), "{text}");
}

#[test]
fn an_agent_uri_with_a_user_or_password_is_refused_without_showing_them() {
    for uri in ["tcp://agent:TOPSECRET@127.0.0.1", "udp://agent:TOPSECRET@127.0.0.1:25888"] {
        let config = cloudwatch_counters::ConfigParams::from_tuples([("connection.uri", uri)]);
        let err = EmfCounters::builder().namespace("Shop").config(&config).build().expect_err("refused");
        let shown = err.to_string();
        assert!(shown.contains("connection.uri") && !shown.contains("TOPSECRET"), "{uri}: {shown}");
    }
}

/// How counters sending to the agent are dropped without `close`.
#[derive(Debug, Clone, Copy)]
enum DropShape {
    /// Never opened (a Lambda handler's), dropped outside any runtime.
    NeverOpened,
    /// Opened and dropped in a task of a multi-thread runtime.
    MultiThread,
    /// Opened and dropped in a current-thread runtime.
    CurrentThread,
}

#[test]
fn counters_dropped_while_the_agent_is_away_wait_for_it_to_take_their_last_documents() {
    for shape in [DropShape::NeverOpened, DropShape::MultiThread, DropShape::CurrentThread] {
        // The agent is away (its port closed) when the counters are dropped, and back 300 ms later.
        let addr = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address");
        let counters = sending_to_the_agent_at(addr, Duration::from_secs(20));
        let (listening_tx, listening) = std::sync::mpsc::channel();
        let (dropping, dropped) = std::sync::mpsc::channel();
        let agent = std::thread::spawn(move || {
            // Back 300 ms after the drop began, whatever opening the counters took.
            dropped.recv_timeout(Duration::from_secs(60)).expect("the counters are dropped");
            std::thread::sleep(Duration::from_millis(300));
            let listener = TcpListener::bind(addr).expect("the agent comes back on its port");
            listening_tx.send(()).expect("the test waits");
            let (stream, _) = listener.accept().expect("a connection");
            stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
            BufReader::new(stream).lines().next().and_then(Result::ok)
        });
        match shape {
            DropShape::NeverOpened => used_then_dropped(counters, &dropping),
            DropShape::MultiThread => {
                let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
                runtime.expect("runtime").block_on(async move {
                    let task = tokio::spawn(async move {
                        counters.open().await.expect("open");
                        used_then_dropped(counters, &dropping);
                    });
                    task.await.expect("the task");
                });
            }
            DropShape::CurrentThread => {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async move {
                    counters.open().await.expect("open");
                    used_then_dropped(counters, &dropping);
                });
            }
        }
        // Whatever the drop did, the agent's accept ends: with the output's connection, or with this one, closed
        // at once (no document).
        listening.recv_timeout(Duration::from_secs(20)).expect("the agent listens again");
        drop(std::net::TcpStream::connect(addr));
        let line = agent.join().expect("the agent");
        let document: Value = serde_json::from_str(&line.unwrap_or_else(|| panic!("{shape:?}: no document")))
            .unwrap_or_else(|err| panic!("{shape:?}: {err}"));
        assert_eq!(document["last"], 1, "{shape:?}");
    }
}

/// Counters sending to the agent at `addr` over TCP, closing (or dropped) within `close_timeout`.
fn sending_to_the_agent_at(addr: std::net::SocketAddr, close_timeout: Duration) -> EmfCounters {
    let options = CountersOptions::default().telemetry(false).close_timeout(close_timeout);
    let builder = EmfCounters::builder().namespace("Drop").agent(format!("tcp://{addr}")).options(options);
    builder.build().expect("valid")
}

/// Records into `counters`, says so on `dropping`, and drops them.
fn used_then_dropped(counters: EmfCounters, dropping: &std::sync::mpsc::Sender<()>) {
    counters.increment("last", 1);
    let _ = dropping.send(());
    drop(counters);
}

#[test]
fn counters_dropped_while_the_agent_stays_away_say_what_it_did_not_take() {
    let addr = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address"); // closed
    let counters = sending_to_the_agent_at(addr, Duration::from_millis(200));
    let (_capture, logs) = common::capture_logs();
    used_then_dropped(counters, &std::sync::mpsc::channel().0);
    assert_eq!(logs.lines_with("did not take their last EMF documents"), 1, "{}", logs.text());
}

#[test]
fn counters_dropped_after_a_close_that_waited_for_the_agent_in_vain_wait_again_once_it_is_back() {
    let addr = TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address"); // closed
    let counters = sending_to_the_agent_at(addr, Duration::from_secs(2));
    let (_capture, logs) = common::capture_logs();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        counters.open().await.expect("open");
        counters.increment("first", 1);
        let closed = counters.close().await;
        assert!(matches!(closed, Err(cloudwatch_counters::Error::Timeout { .. })), "the agent is away: {closed:?}");
    });
    // The agent comes back and takes the close's document.
    let listener = TcpListener::bind(addr).expect("the agent comes back on its port");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("a connection");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(20)).expect("a document")).expect("JSON");
    assert_eq!(first["first"], 1);
    let taken = std::time::Instant::now() + Duration::from_secs(20);
    while counters.agent_counts().0 < 1 {
        assert!(std::time::Instant::now() < taken, "the agent's document is counted as sent");
        std::thread::yield_now();
    }
    // Dropped now, the counters wait for the agent to take what was recorded since, as any drop does.
    counters.increment("later", 1);
    drop(counters);
    assert_eq!(logs.lines_with("did not take their last EMF documents"), 0, "{}", logs.text());
    let later: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(20)).expect("a document")).expect("JSON");
    assert_eq!((later["later"].as_i64(), later.get("first")), (Some(1), None));
}

#[test]
fn more_default_dimensions_than_a_metric_takes_are_refused() {
    let with = |n: usize| {
        (0..n).fold(EmfCounters::builder().writer(std::io::sink()), |b, i| b.dimension(format!("d{i}"), "v"))
    };
    assert!(with(30).build().is_ok(), "30 default dimensions");
    assert!(with(31).build().is_err(), "31 default dimensions");
}

#[test]
fn a_label_name_given_twice_is_published_once_with_its_last_value_and_counted() {
    let out = SharedWriter::default();
    let counters = builder_into(out.clone(), "Dedup").dimension("service", "checkout").build().expect("valid");
    metrics::with_local_recorder(&counters.recorder(), || {
        metrics::counter!("twice", "k" => "a", "k" => "b").increment(1);
        // A label in a default dimension's place is no duplicate; a second one of that name is.
        metrics::counter!("replaced", "service" => "payments").increment(1);
        metrics::counter!("again", "service" => "a", "service" => "b").increment(1);
    });
    assert_eq!(counters.flush_blocking().expect("flush").saved, 3);
    assert_eq!(counters.telemetry().dimensions_deduplicated, 2);
    let docs = parse(&out.text());
    let twice = docs.iter().find(|d| d.get("twice").is_some()).expect("a document of `twice`");
    assert_eq!((twice["k"].as_str(), twice["service"].as_str()), (Some("b"), Some("checkout")));
    let replaced = docs.iter().find(|d| d.get("replaced").is_some()).expect("a document of `replaced`");
    assert_eq!(replaced["service"].as_str(), Some("payments"));
}
