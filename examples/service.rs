//! A small axum service wired in the two lines the README shows: the tracing layer and the metrics recorder.
//! tower-http's `TraceLayer` opens a span per request with the method and the matched route, and records the
//! status on response; the counters layer times it into `http.request.exec_time` with those three as
//! dimensions. The handlers' own `#[instrument]` spans and `metrics` macros are recorded too.
//!
//! `cargo run --example service` serves on 127.0.0.1 (`SERVICE_ADDR`, default a free port), sends itself
//! `SERVICE_ORDERS` orders (40) over HTTP, and prints the counters through LogCounters.
//! `cargo run --example service -- --cloudwatch` publishes to CloudWatch instead: to `AWS_ENDPOINT_URL` when set
//! (for example the local server of `scripts/localstack.sh start`), else to AWS with the default credential chain.
//! Setting `AWS_ENDPOINT_URL` alone turns publishing on too, as in the quickstart. The namespace is
//! `cloudwatch-counters/service-example`, the InstanceID the host name (or `SERVICE_INSTANCE`). Ctrl-C stops it
//! early; the counters are flushed either way.

use std::time::Duration;

use axum::extract::{MatchedPath, Path};
use axum::http::{Request, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use cloudwatch_counters::{CachedCounters, CloudWatchCounters, CountersOptions, LogCounters};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_http::trace::TraceLayer;
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

async fn post_order(Path(id): Path<u32>) -> StatusCode {
    match create_order(id).await {
        Ok(()) => StatusCode::CREATED,
        Err(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

async fn get_orders() -> StatusCode {
    list_orders().await;
    StatusCode::OK
}

/// The service: two routes behind tower-http's TraceLayer, whose request span carries the method and the
/// matched route (`/orders/{id}`, not the URI: one metric per route, not per order) and, on response, the status.
fn app() -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
            tracing::info_span!("request", counter = "http.request", method = %request.method(), route, status = tracing::field::Empty)
        })
        .on_response(|response: &Response<_>, _latency: Duration, span: &tracing::Span| {
            span.record("status", response.status().as_u16());
        });
    Router::new().route("/orders/{id}", post(post_order)).route("/orders", get(get_orders)).layer(trace)
}

/// Sends one HTTP/1.1 request to the service and returns the response's status code.
async fn send(addr: std::net::SocketAddr, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let status = String::from_utf8_lossy(&response).split_whitespace().nth(1).and_then(|s| s.parse().ok());
    status.ok_or_else(|| std::io::Error::other("no HTTP status in the response"))
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

    let addr = std::env::var("SERVICE_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    println!("-- serving on http://{addr}");
    tokio::spawn(async move { axum::serve(listener, app()).await });

    let orders: u32 = std::env::var("SERVICE_ORDERS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let work = async {
        let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
        for id in 0..orders {
            for (method, path) in [("POST", format!("/orders/{id}")), ("GET", "/orders".to_owned())] {
                match send(addr, method, &path).await {
                    Ok(status) => *statuses.entry(status).or_default() += 1,
                    Err(err) => eprintln!("-- {method} {path}: {err}"),
                }
            }
        }
        println!("-- responses by status: {statuses:?}");
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
