//! A small tokio service wired in the two lines the README shows: the tracing layer and the metrics recorder.
//!
//! `cargo run --example service` handles a few simulated requests and prints the counters through LogCounters.
//! `cargo run --example service -- --cloudwatch` publishes to CloudWatch instead: to `AWS_ENDPOINT_URL` when set
//! (for example the local server of `scripts/localstack.sh start`), else to AWS with the default credential chain.
//! Setting `AWS_ENDPOINT_URL` alone turns publishing on too, as in the quickstart. The namespace is
//! `cloudwatch-counters/service-example`, the InstanceID the host name (or `SERVICE_INSTANCE`). `SERVICE_ORDERS`
//! sets how many orders it handles (40). Ctrl-C stops it early; the counters are flushed either way.

use std::time::Duration;

use cloudwatch_counters::{CachedCounters, CloudWatchCounters, CountersOptions, LogCounters};
use tracing::instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[instrument(err)]
async fn create_order(id: u32) -> Result<(), String> {
    metrics::counter!("orders.created", "channel" => if id % 2 == 0 { "web" } else { "app" }).increment(1);
    metrics::histogram!("orders.value").record(f64::from(10 + id % 90));
    tokio::time::sleep(Duration::from_millis(u64::from(5 + id % 20))).await;
    if id % 7 == 0 {
        return Err(format!("order {id} rejected"));
    }
    Ok(())
}

#[instrument]
async fn list_orders() {
    metrics::gauge!("orders.open").set(42.0);
    tokio::time::sleep(Duration::from_millis(3)).await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = CountersOptions::default().interval(Duration::from_secs(1));
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let publish = endpoint.is_some() || std::env::args().any(|a| a == "--cloudwatch");
    let (counters, cloudwatch): (CachedCounters, Option<CloudWatchCounters>) = if publish {
        let mut builder =
            CloudWatchCounters::builder().namespace("cloudwatch-counters/service-example").options(options);
        if let Ok(instance) = std::env::var("SERVICE_INSTANCE") {
            builder = builder.instance(instance);
        }
        if let Some(endpoint) = endpoint {
            // A local server takes any credentials; AWS itself uses the default chain.
            builder = builder
                .endpoint_url(endpoint)
                .credentials("test", "test")
                .region(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()));
        }
        let cw = builder.build()?;
        cw.open().await?;
        (cw.counters().clone(), Some(cw))
    } else {
        let log = LogCounters::new(options);
        log.open().await?;
        (log.counters().clone(), None)
    };

    // The two lines: time every span, and record every metrics macro.
    tracing_subscriber::registry().with(counters.layer()).init();
    metrics::set_global_recorder(counters.recorder())?;

    let orders: u32 = std::env::var("SERVICE_ORDERS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let work = async {
        for id in 0..orders {
            let _ = create_order(id).await;
            list_orders().await;
        }
    };
    tokio::select! {
        () = work => {}
        _ = tokio::signal::ctrl_c() => println!("-- Ctrl-C --"),
    }
    println!("-- closing: the final flush follows --");
    match cloudwatch {
        Some(cw) => {
            let report = cw.close().await?;
            let t = cw.telemetry();
            println!(
                "-- published: {} requests, {} datums; the final flush: {report:?}",
                t.requests_sent, t.datums_sent
            );
        }
        None => {
            counters.close().await?;
        }
    }
    Ok(())
}
