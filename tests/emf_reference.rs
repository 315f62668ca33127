//! EMF against AWS's own library: the same logical metrics (names, units, dimensions, storage resolution,
//! values, properties) published through `aws-embedded-metrics` (Python) and through EmfCounters parse to the
//! same metric set; and every document EmfCounters writes, split ones at the limits included, validates
//! against the EMF JSON schema of the specification (tests/emf/schema.json). `scripts/test.sh` installs the
//! Python side (scripts/emf-venv.sh) and passes its python as `EMF_PYTHON`.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use cloudwatch_counters::{CounterType, Counters, CountersOptions, EmfCounters};
use common::SharedWriter;
use metrics::{Key, Label};
use serde_json::{json, Value};

fn python() -> String {
    std::env::var("EMF_PYTHON").expect("EMF_PYTHON is not set: run scripts/test.sh")
}

/// Runs a script of tests/emf with `input` on its standard input; returns its standard output.
fn run(script: &str, input: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/emf").join(script);
    let mut child = Command::new(python())
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("written");
    let out = child.wait_with_output().expect("finished");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Every metric of `documents` (one a line): namespace, name, unit, storage resolution and dimensions, with its
/// values as a sorted list (a distribution's values repeated by their counts) and the document's properties.
fn metric_set(documents: &str) -> BTreeMap<String, String> {
    let mut set = BTreeMap::new();
    for line in documents.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line).expect("a JSON document");
        let root = doc.as_object().expect("an object");
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().expect("directives") {
            let dimensions: Vec<&str> =
                directive["Dimensions"][0].as_array().expect("a set").iter().filter_map(Value::as_str).collect();
            let metric_names: Vec<&str> =
                directive["Metrics"].as_array().expect("metrics").iter().filter_map(|m| m["Name"].as_str()).collect();
            let mut dims: Vec<String> = dimensions.iter().map(|d| format!("{d}={}", root[*d])).collect();
            dims.sort();
            let mut properties: Vec<String> = root
                .iter()
                .filter(|(k, _)| {
                    *k != "_aws" && !dimensions.contains(&k.as_str()) && !metric_names.contains(&k.as_str())
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            properties.sort();
            for metric in directive["Metrics"].as_array().expect("metrics") {
                let name = metric["Name"].as_str().expect("a name");
                let unit = metric["Unit"].as_str().unwrap_or("None");
                let resolution = metric["StorageResolution"].as_i64().unwrap_or(60);
                let mut values = expand(&root[name]);
                values.sort_by(f64::total_cmp);
                let key = format!("{}|{name}|{unit}|{resolution}|{}", directive["Namespace"], dims.join(","));
                set.insert(key, format!("values={values:?} properties={}", properties.join(",")));
            }
        }
    }
    set
}

/// A metric value as its samples: a number, an array of numbers, or values repeated by their counts.
fn expand(value: &Value) -> Vec<f64> {
    match value {
        Value::Number(n) => vec![n.as_f64().expect("a number")],
        Value::Array(items) => items.iter().flat_map(expand).collect(),
        Value::Object(o) => {
            let values = o["Values"].as_array().expect("Values");
            let counts = o["Counts"].as_array().expect("Counts");
            values
                .iter()
                .zip(counts)
                .flat_map(|(v, c)| std::iter::repeat_n(v.as_f64().expect("value"), c.as_u64().expect("count") as usize))
                .collect()
        }
        other => panic!("not a metric value: {other}"),
    }
}

#[test]
#[ignore = "needs the EMF reference venv: run scripts/test.sh"]
fn the_same_metrics_through_aws_embedded_metrics_and_emf_counters_are_the_same_metric_set() {
    let latency = [1.5, 2.5, 100.0, 250.0];
    let reference = json!([
        {
            "namespace": "Diff",
            "dimensions": {"route": "/pay"},
            "properties": {"request_id": "r-1"},
            "metrics": [
                {"name": "latency", "unit": "Milliseconds", "values": latency},
                {"name": "orders", "unit": "Count", "values": [3]},
            ]
        },
        {
            "namespace": "Diff",
            "dimensions": {},
            "properties": {"request_id": "r-1"},
            "metrics": [
                {"name": "queue", "unit": "None", "values": [7]},
                {"name": "hi", "unit": "Count", "values": [3], "storage_resolution": 1},
            ]
        }
    ]);
    let theirs = run("reference.py", &reference.to_string());

    let out = SharedWriter::default();
    let counters = EmfCounters::builder()
        .namespace("Diff")
        .writer(out.clone())
        .property("request_id", "r-1")
        .high_resolution_for("hi")
        .options(CountersOptions::default().telemetry(false))
        .build()
        .expect("valid");
    let route = || vec![Label::new("route", "/pay")];
    let timing = counters.handle_for_key(&Key::from_parts("latency", route()), CounterType::Interval);
    for ms in latency {
        timing.record(ms);
    }
    counters.handle_for_key(&Key::from_parts("orders", route()), CounterType::Increment).increment(3);
    counters.last("queue", 7.0);
    counters.increment("hi", 3);
    counters.flush_blocking().expect("flush");
    let ours = out.text();

    assert_eq!(metric_set(&ours), metric_set(&theirs), "ours:\n{ours}\ntheirs:\n{theirs}");
    assert!(run("validate.py", &ours).starts_with("2 documents valid"));
}

#[test]
#[ignore = "needs the EMF reference venv: run scripts/test.sh"]
fn every_document_validates_against_the_specifications_schema_split_ones_included() {
    let out = SharedWriter::default();
    let counters = EmfCounters::builder()
        .namespace("Schema")
        .writer(out.clone())
        .dimension("service", "checkout")
        .rollup_dimensions(["service"])
        .rollup_dimensions(Vec::<String>::new())
        .property("version", "1.0")
        .high_resolution_for("fast.")
        .build()
        .expect("valid");
    for i in 0..250 {
        counters.increment(&format!("metric.{i}"), i);
    }
    let latency = counters.handle("latency", CounterType::Interval);
    for i in 0..100_000u32 {
        latency.record(0.01 * f64::from(1 + (i.wrapping_mul(2_654_435_761) >> 12)));
    }
    counters.stats("temperature", -3.5); // negative: a statistic set without values
    counters.stats("temperature", 21.0);
    counters.last("fast.queue", 3.0);
    counters.timestamp_now("started");
    let labels: Vec<Label> = (0..29).map(|i| Label::new(format!("d{i}"), "v")).collect();
    counters.handle_for_key(&Key::from_parts("wide", labels), CounterType::Increment).increment(1);
    counters.flush_blocking().expect("flush");
    let ours = out.text();
    let documents = ours.lines().count();
    assert!(documents >= 4, "250 metrics split by 100, and the 30-dimension metric alone: {documents}");
    let report = run("validate.py", &ours);
    assert_eq!(report.trim(), format!("{documents} documents valid"));
}
