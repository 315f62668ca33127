//! [`CloudWatchSink`]: saves counters with PutMetricData, in requests of at most `batch_size` datums and
//! under 1 MB, skipping (and counting) datums CloudWatch would reject.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::RwLock;
use std::time::SystemTime;

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use aws_sdk_cloudwatch::types::MetricDatum;
use aws_sdk_cloudwatch::Client;

use crate::error::SaveError;
use crate::model::Counter;

mod attempt;
mod batches;
pub(crate) mod connect;
pub(crate) mod datum;
mod delivery;
mod guard;

use attempt::{Attempt, AttemptMark};
use delivery::{could_not_be_sent, delivery, timed_out, Delivery, NoAmbiguousRetries};
use guard::EndpointGuard;

use crate::sink::limits::SkipCounts;
use crate::sink::{SaveFuture, Sink, SinkCounts, SkipReason};
use crate::warn::WarnEvery;
use batches::{Batch, Batches};
use datum::DatumContext;

/// CloudWatch's limit on one request's size, with room for the envelope.
const MAX_REQUEST_BYTES: usize = 1_000_000 - 16_384;

/// Error codes CloudWatch (and the AWS SDK) use for throttling.
const THROTTLING_CODES: &[&str] =
    &["Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"];

/// Where and how to publish; set when `CloudWatchCounters` opens.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    /// The CloudWatch client.
    pub(crate) client: Client,
    /// The timeouts of every request: the client's, with those it leaves unset taken from the settings.
    pub(crate) timeouts: aws_smithy_types::timeout::TimeoutConfig,
    /// The namespace of every metric.
    pub(crate) namespace: String,
    /// The InstanceID dimension's value; `None`: no InstanceID dimension.
    pub(crate) instance: Option<String>,
    /// Dimensions of every datum, after InstanceID.
    pub(crate) dimensions: std::sync::Arc<[(String, String)]>,
    /// Whether each metric is also published without InstanceID.
    pub(crate) rollup: bool,
    /// More dimension sets each metric is also published with.
    pub(crate) rollups: std::sync::Arc<[Vec<String>]>,
    /// Datums per request (1..=1000).
    pub(crate) batch_size: usize,
    /// StorageResolution: 60 or 1.
    pub(crate) storage_resolution: i32,
    /// Metric name prefixes published at StorageResolution 1.
    pub(crate) high_resolution: std::sync::Arc<[String]>,
}

/// Counts of what the sink did, since it was made.
#[derive(Debug, Default)]
struct SinkTelemetry {
    /// Datums CloudWatch accepted.
    pub(crate) datums_sent: AtomicU64,
    /// PutMetricData requests CloudWatch accepted.
    pub(crate) requests_sent: AtomicU64,
    /// PutMetricData requests that failed (after the SDK's own retries).
    pub(crate) requests_failed: AtomicU64,
    /// Datums skipped because they break a CloudWatch limit, by reason.
    pub(crate) skipped: SkipCounts,
    /// Datums whose repeated dimension names were merged.
    pub(crate) dimensions_deduplicated: AtomicU64,
    /// Requests that failed after they were sent (CloudWatch may have stored them), and their datums.
    pub(crate) requests_ambiguous: AtomicU64,
    pub(crate) datums_ambiguous: AtomicU64,
    warn_ambiguous: WarnEvery,
}

/// A sink that publishes to CloudWatch. It holds no client until [`CloudWatchSink::connect`]; saving before that
/// fails, which keeps the data for later.
#[derive(Debug, Default)]
pub(crate) struct CloudWatchSink {
    connection: RwLock<Option<Connection>>,
    telemetry: SinkTelemetry,
    /// Where the save under way is: for a save cut off before it finished.
    progress: std::sync::Mutex<Progress>,
}

/// The counters of the save under way that are done with: their request was settled as maybe stored (sent and
/// accepted, or sent and counted as ambiguous), or they were dropped for good (skipped for a limit, or refused
/// alone after a split); and those of the request being sent.
#[derive(Debug, Default)]
struct Progress {
    settled: Vec<usize>,
    in_flight: Vec<usize>,
    /// The datums of the request in flight (a counter with rollups has several).
    in_flight_datums: u64,
    /// How far the request in flight got.
    in_flight_attempt: AttemptMark,
}

impl CloudWatchSink {
    /// Starts publishing through `connection`.
    pub(crate) fn connect(&self, connection: Connection) {
        *self.connection.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(connection);
    }

    /// Stops publishing; later saves fail and keep their data.
    pub(crate) fn disconnect(&self) {
        *self.connection.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Whether a connection is set.
    pub(crate) fn is_connected(&self) -> bool {
        self.connection.read().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// Sends every counter, a request per batch. A request CloudWatch refuses as invalid (a 400 that is not
    /// throttling: one bad datum fails the whole request) is split in halves and sent again, down to the datum
    /// at fault, which is dropped and counted ([`SkipReason::Rejected`]); the rest is delivered.
    async fn save_all(&self, counters: &[Counter]) -> Result<(), SaveError> {
        let conn = self.connection.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(conn) = conn else {
            return Err(SaveError::new("CloudWatch counters are not open; the data is kept until they are"));
        };
        let ctx = DatumContext {
            instance: conn.instance.as_deref(),
            dimensions: &conn.dimensions,
            rollup: conn.rollup,
            rollups: &conn.rollups,
            storage_resolution: conn.storage_resolution,
            high_resolution: &conn.high_resolution,
            now: SystemTime::now(),
        };
        // Batches are built as they are sent; the halves of a refused request go first.
        let mut batches = Batches::new(counters, 0..counters.len(), &ctx, &self.telemetry, conn.batch_size, true);
        let mut queue: VecDeque<Batch> = VecDeque::new();
        *self.progress() = Progress::default();
        let mut failed: Vec<usize> = Vec::new();
        let mut first_error: Option<SaveError> = None;
        // Throttled, a request sent that timed out unconfirmed (an endpoint that hangs), or one that could not be
        // sent (no credentials, no connection, or it ran out of time): the rest is not pressed on with now,
        // but kept for the next dump, rather than sent where it would likely fare the same (each such request takes
        // an attempt's whole time, or all its retries, and a request sent that timed out is written off as maybe
        // stored). After a connection broken or an answer lost, or an error answer (unless the operation's time ran
        // out waiting to retry), the rest goes on: the endpoint answers.
        let mut holding_back = false;
        // Whether any request was throttled, whichever failure came first: the dumps then back off.
        let mut throttled = false;
        loop {
            if holding_back {
                // Kept as they are, not built: a counter's checks are counted once, when it is placed in a request.
                failed.extend(queue.into_iter().flat_map(|batch| batch.sources));
                failed.extend(batches.untried());
                break;
            }
            let Some(Batch { datums, sources, .. }) = queue.pop_front().or_else(|| batches.next()) else { break };
            if !batches.skipped.is_empty() {
                // Skipped and counted: never sent, and not put back by a cut-off either (counted twice then).
                self.progress().settled.append(&mut batches.skipped);
            }
            let n = datums.len() as u64;
            let (result, attempt) = self.put(&conn, datums, &sources).await;
            let Err(err) = result else {
                self.settle_in_flight(true);
                self.telemetry.requests_sent.fetch_add(1, Relaxed);
                self.telemetry.datums_sent.fetch_add(n, Relaxed);
                continue;
            };
            self.telemetry.requests_failed.fetch_add(1, Relaxed);
            if delivery(&err, attempt) == Delivery::MaybeStored {
                // Never sent again: CloudWatch may hold it already (see `delivery`).
                self.settle_in_flight(true);
                holding_back |= timed_out(&err);
                self.count_ambiguous(n, &err);
                first_error.get_or_insert_with(|| {
                    let message = format!(
                        "{n} datums were sent but not confirmed: CloudWatch may or may not have stored them, so they \
                         are not sent again ({})",
                        summarize_sdk_error(&err)
                    );
                    SaveError::with_source(message, err).ambiguous()
                });
                continue;
            }
            // Not stored: these go back into the counters.
            self.settle_in_flight(false);
            if !is_invalid_request(&err) {
                throttled |= is_throttling(&err);
                holding_back |= throttled || could_not_be_sent(&err);
                failed.extend(sources);
                first_error.get_or_insert_with(|| save_error(err));
                continue;
            }
            if let [only] = sources[..] {
                let why = format!("CloudWatch refused it: {}", summarize_sdk_error(&err));
                self.telemetry.skipped.skip_because(SkipReason::Rejected, counters[only].name(), &why);
                self.progress().settled.push(only);
                continue;
            }
            let (left, right) = sources.split_at(sources.len() / 2);
            for half in [right, left] {
                let halves =
                    Batches::new(counters, half.iter().copied(), &ctx, &self.telemetry, conn.batch_size, false);
                for batch in halves.collect::<Vec<_>>().into_iter().rev() {
                    queue.push_front(batch);
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some(err) => {
                let err = if throttled { err.throttled() } else { err };
                Err(err.partial(failed))
            }
        }
    }
}

impl CloudWatchSink {
    /// Sends one request of `datums` (from the counters at `sources`), marked in flight while it is under way:
    /// its result, and how far its last attempt got.
    async fn put(
        &self,
        conn: &Connection,
        datums: Vec<MetricDatum>,
        sources: &[usize],
    ) -> (Result<(), SdkError<PutMetricDataError, HttpResponse>>, Attempt) {
        let attempt = AttemptMark::default();
        {
            let mut progress = self.progress();
            progress.in_flight.clear();
            progress.in_flight.extend_from_slice(sources);
            progress.in_flight_datums = datums.len() as u64;
            progress.in_flight_attempt = attempt.clone();
        }
        let result = conn
            .client
            .put_metric_data()
            .namespace(&conn.namespace)
            .set_metric_data(Some(datums))
            .customize()
            .config_override(
                aws_sdk_cloudwatch::config::Builder::default()
                    .timeout_config(conn.timeouts.clone())
                    .retry_classifier(NoAmbiguousRetries)
                    .interceptor(EndpointGuard)
                    .interceptor(attempt.clone()),
            )
            .send()
            .await;
        (result.map(drop), attempt.get())
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The request being sent is settled: CloudWatch may hold its data (`maybe_stored`), or surely does not.
    fn settle_in_flight(&self, maybe_stored: bool) {
        let mut progress = self.progress();
        let in_flight = std::mem::take(&mut progress.in_flight);
        if maybe_stored {
            progress.settled.extend(in_flight);
        }
    }

    /// Counts (and warns about, once a minute) a request CloudWatch may or may not have stored.
    fn count_ambiguous(&self, datums: u64, err: &SdkError<PutMetricDataError, HttpResponse>) {
        let t = &self.telemetry;
        let requests = t.requests_ambiguous.fetch_add(1, Relaxed) + 1;
        let datums_so_far = t.datums_ambiguous.fetch_add(datums, Relaxed) + datums;
        if t.warn_ambiguous.ready() {
            tracing::warn!(
                target: "cloudwatch_counters",
                datums,
                requests_so_far = requests,
                datums_so_far,
                error = %summarize_sdk_error(err),
                "a PutMetricData request failed after it was sent: CloudWatch may have stored it, so it is not sent \
                 again (that would count it twice); if it was not stored, these datums are lost"
            );
        }
    }
}

/// Error codes with which CloudWatch refuses a request for the data in it (a bad value or combination in one
/// datum fails the whole request). Other 400s (access denied, an expired signature) are about the request as a
/// whole: splitting would not help, and the data is kept instead.
const INVALID_DATA_CODES: &[&str] = &["InvalidParameterValue", "InvalidParameterCombination"];

/// Whether CloudWatch refused the request for its data: such a request fails the same way however often it is
/// sent, so it is split to find the datum at fault.
fn is_invalid_request(err: &SdkError<PutMetricDataError, HttpResponse>) -> bool {
    err.code().is_some_and(|code| INVALID_DATA_CODES.contains(&code))
}

fn is_throttling(err: &SdkError<PutMetricDataError, HttpResponse>) -> bool {
    err.code().is_some_and(|code| THROTTLING_CODES.contains(&code))
        || err.raw_response().is_some_and(|r| r.status().as_u16() == 429)
}

/// The service's code and message, without the SDK's debug output.
fn summarize_sdk_error(err: &SdkError<PutMetricDataError, HttpResponse>) -> String {
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => crate::error::first_line(&DisplayErrorContext(err).to_string()),
    }
}

fn save_error(err: SdkError<PutMetricDataError, HttpResponse>) -> SaveError {
    let throttled = is_throttling(&err);
    let message = format!("PutMetricData failed (the data is kept for the next dump): {}", summarize_sdk_error(&err));
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

    fn percentiles(&self) -> bool {
        true
    }

    /// The request in flight when the save was cut off may have been delivered only if its current attempt was
    /// transmitted and no error answer came back; then it is counted as ambiguous here (the settled ones were
    /// counted when they settled). Cut off before it was transmitted, or while it waited to retry after an
    /// error answer or a connection that could not be made, it goes back into the counters.
    fn maybe_delivered(&self) -> Option<Vec<usize>> {
        let mut progress = self.progress();
        let in_flight = std::mem::take(&mut progress.in_flight);
        let mut maybe = std::mem::take(&mut progress.settled);
        if !in_flight.is_empty() && progress.in_flight_attempt.get().may_have_arrived() {
            self.telemetry.requests_ambiguous.fetch_add(1, Relaxed);
            self.telemetry.datums_ambiguous.fetch_add(progress.in_flight_datums, Relaxed);
            maybe.extend(in_flight);
        }
        Some(maybe)
    }

    fn counts(&self) -> SinkCounts {
        let t = &self.telemetry;
        SinkCounts {
            datums_sent: t.datums_sent.load(Relaxed),
            requests_sent: t.requests_sent.load(Relaxed),
            requests_failed: t.requests_failed.load(Relaxed),
            skipped: t.skipped.to_array(),
            dimensions_deduplicated: t.dimensions_deduplicated.load(Relaxed),
            requests_ambiguous: t.requests_ambiguous.load(Relaxed),
            datums_ambiguous: t.datums_ambiguous.load(Relaxed),
            documents_dropped: 0,
        }
    }
}
