//! A Lambda-style handler loop publishing through EMF: each invocation is timed by a span, records metrics,
//! and ends with `flush()`, which writes that invocation's metrics as EMF documents on standard output (where
//! Lambda sends them to CloudWatch Logs, which turns them into metrics). No PutMetricData, no network.
//!
//! `cargo run --example lambda` runs `LAMBDA_INVOCATIONS` (5) simulated invocations and prints the documents.
//! On Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) the same code writes to standard output too; with
//! `AWS_EMF_AGENT_ENDPOINT=tcp://127.0.0.1:25888` it sends to the CloudWatch agent instead.

use std::time::Duration;

use cloudwatch_counters::EmfCounters;
use tracing::instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// One invocation's work: the span is timed (`lambda.handler.exec_time`, per `route`), its `request_id` goes
/// with that timing as a property, and the metrics macros record into the same counters.
#[instrument(fields(route = "/orders"))]
async fn handler(request_id: String, items: u32) -> Result<(), String> {
    metrics::counter!("orders.items").increment(u64::from(items));
    metrics::histogram!("orders.size").record(f64::from(items));
    tokio::time::sleep(Duration::from_millis(u64::from(2 + items))).await;
    if items == 0 {
        return Err("an empty order".to_owned());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let agent = std::env::var_os("AWS_EMF_AGENT_ENDPOINT").is_some();
    let mut builder = EmfCounters::builder().namespace("cloudwatch-counters/lambda-example");
    if !on_lambda && !agent {
        builder = builder.stdout(); // run locally: print what Lambda would log
    }
    let counters = builder.build()?;
    // `request_id` is context for each invocation's metrics, not a dimension (one metric per request would be).
    let layer = counters.layer_builder().properties(["request_id"]).build();
    tracing_subscriber::registry().with(layer).init();
    metrics::set_global_recorder(counters.recorder())?;

    let invocations: u32 = std::env::var("LAMBDA_INVOCATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    for n in 0..invocations {
        let _ = handler(format!("req-{n}"), n % 4).await;
        // The end of the invocation: write its metrics before Lambda freezes the process.
        counters.flush().await?;
    }
    // Nothing changed since the last flush: this one writes nothing.
    let report = counters.flush().await?;
    eprintln!("-- a flush with nothing new saved {} counters", report.saved);
    counters.close().await?;
    Ok(())
}
