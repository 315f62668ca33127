//! [`CloudWatchSink`]: saves counters with PutMetricData, in requests of at most `batch_size` datums and
//! under 1 MB, skipping (and counting) datums CloudWatch would reject.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::RwLock;
use std::time::SystemTime;

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::operation::put_metric_data::{PutMetricDataError, PutMetricDataInput};
use aws_sdk_cloudwatch::types::MetricDatum;
use aws_sdk_cloudwatch::Client;

use crate::counter::Counter;
use crate::error::SaveError;
use crate::sink::datum::{estimated_size, to_datum, DatumContext};
use crate::sink::limits::SkipCounts;
use crate::sink::{SaveFuture, Sink, SinkCounts};

/// CloudWatch's limit on one request's size, with room for the envelope.
const MAX_REQUEST_BYTES: usize = 1_000_000 - 16_384;

/// Error codes CloudWatch (and the AWS SDK) use for throttling.
const THROTTLING_CODES: &[&str] =
    &["Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"];

/// Where and how to publish; set when `CloudWatchCounters` opens.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The CloudWatch client.
    pub client: Client,
    /// The namespace of every metric.
    pub namespace: String,
    /// The InstanceID dimension's value.
    pub instance: String,
    /// Datums per request (1..=1000).
    pub batch_size: usize,
    /// StorageResolution: 60 or 1.
    pub storage_resolution: i32,
}

/// Counts of what the sink did, since it was made.
#[derive(Debug, Default)]
pub struct SinkTelemetry {
    /// Datums CloudWatch accepted.
    pub datums_sent: AtomicU64,
    /// PutMetricData requests CloudWatch accepted.
    pub requests_sent: AtomicU64,
    /// PutMetricData requests that failed (after the SDK's own retries).
    pub requests_failed: AtomicU64,
    /// Datums skipped because they break a CloudWatch limit, by reason.
    pub skipped: SkipCounts,
}

/// A sink that publishes to CloudWatch. It holds no client until [`CloudWatchSink::connect`]; saving before that
/// fails, which keeps the data for later.
#[derive(Debug, Default)]
pub struct CloudWatchSink {
    connection: RwLock<Option<Connection>>,
    telemetry: SinkTelemetry,
}

/// One request's datums and the indices of the counters they came from.
#[derive(Default)]
struct Batch {
    datums: Vec<MetricDatum>,
    sources: Vec<usize>,
    bytes: usize,
}

impl CloudWatchSink {
    /// Starts publishing through `connection`.
    pub fn connect(&self, connection: Connection) {
        *self.connection.write().unwrap_or_else(|p| p.into_inner()) = Some(connection);
    }

    /// Stops publishing; later saves fail and keep their data.
    pub fn disconnect(&self) {
        *self.connection.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Whether a connection is set.
    pub fn is_connected(&self) -> bool {
        self.connection.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// What the sink has done so far.
    pub fn telemetry(&self) -> &SinkTelemetry {
        &self.telemetry
    }

    /// The PutMetricData requests a save of `counters` would send now, built but not sent: the encoding half of a
    /// save, for benches. Datums that break a limit are skipped and counted, as in a save. Empty when the sink is
    /// not connected.
    #[doc(hidden)]
    pub fn encode_requests(&self, counters: &[Counter]) -> Vec<PutMetricDataInput> {
        let conn = self.connection.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(conn) = conn else { return Vec::new() };
        self.batches(counters, &conn)
            .into_iter()
            .map(|batch| {
                PutMetricDataInput::builder()
                    .namespace(&conn.namespace)
                    .set_metric_data(Some(batch.datums))
                    .build()
                    .expect("PutMetricDataInput has no required fields left unset")
            })
            .collect()
    }

    /// Turns counters into batches, skipping and counting the datums that break a limit.
    fn batches(&self, counters: &[Counter], conn: &Connection) -> Vec<Batch> {
        let ctx = DatumContext {
            instance: &conn.instance,
            storage_resolution: conn.storage_resolution,
            now: SystemTime::now(),
        };
        let mut batches = vec![Batch::default()];
        for (i, counter) in counters.iter().enumerate() {
            let datum = match to_datum(counter, &ctx) {
                Ok(datum) => datum,
                Err(reason) => {
                    self.telemetry.skipped.skip(reason, &counter.name);
                    continue;
                }
            };
            let size = estimated_size(&datum);
            let last =
                batches.last_mut().filter(|b| b.datums.len() < conn.batch_size && b.bytes + size <= MAX_REQUEST_BYTES);
            let batch = match last {
                Some(batch) => batch,
                None => {
                    batches.push(Batch::default());
                    batches.last_mut().expect("just pushed")
                }
            };
            batch.datums.push(datum);
            batch.sources.push(i);
            batch.bytes += size;
        }
        batches.retain(|b| !b.datums.is_empty());
        batches
    }

    async fn save_all(&self, counters: &[Counter]) -> Result<(), SaveError> {
        let conn = self.connection.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(conn) = conn else {
            return Err(SaveError::new("CloudWatch counters are not open; the data is kept until they are"));
        };
        let mut failed: Vec<usize> = Vec::new();
        let mut first_error: Option<SaveError> = None;
        for batch in self.batches(counters, &conn) {
            if first_error.as_ref().is_some_and(SaveError::is_throttled) {
                // Throttled: do not press on with the rest now; it is all kept for the next attempt.
                failed.extend(batch.sources);
                continue;
            }
            let n = batch.datums.len() as u64;
            let result = conn
                .client
                .put_metric_data()
                .namespace(&conn.namespace)
                .set_metric_data(Some(batch.datums))
                .send()
                .await;
            match result {
                Ok(_) => {
                    self.telemetry.requests_sent.fetch_add(1, Relaxed);
                    self.telemetry.datums_sent.fetch_add(n, Relaxed);
                }
                Err(err) => {
                    self.telemetry.requests_failed.fetch_add(1, Relaxed);
                    failed.extend(batch.sources);
                    first_error.get_or_insert_with(|| save_error(err));
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(err) => Err(err.partial(failed)),
        }
    }
}

fn save_error(err: SdkError<PutMetricDataError, HttpResponse>) -> SaveError {
    let throttled = err.code().is_some_and(|code| THROTTLING_CODES.contains(&code))
        || err.raw_response().is_some_and(|r| r.status().as_u16() == 429);
    let message = format!("PutMetricData failed: {}", DisplayErrorContext(&err));
    let save = SaveError::with_source(message, err);
    if throttled {
        save.throttled()
    } else {
        save
    }
}

impl Sink for CloudWatchSink {
    fn save<'a>(&'a self, counters: &'a [Counter]) -> SaveFuture<'a> {
        Box::pin(self.save_all(counters))
    }

    fn counts(&self) -> SinkCounts {
        let t = &self.telemetry;
        SinkCounts {
            datums_sent: t.datums_sent.load(Relaxed),
            requests_sent: t.requests_sent.load(Relaxed),
            requests_failed: t.requests_failed.load(Relaxed),
            skipped: t.skipped.to_array(),
        }
    }
}
