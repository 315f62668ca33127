//! What a failed PutMetricData means for the data in it: CloudWatch surely did not store it (the last attempt
//! failed before it was handed to the HTTP client (see [`super::attempt`]), no connection was made, or CloudWatch
//! answered with an error, whatever ended the request after that answer), or it may have (the request was sent
//! and then the attempt timed out, or the connection broke before the answer).
//!
//! Data CloudWatch surely did not store is kept for the next dump. Data it may have stored is never sent again,
//! neither by the SDK's retries ([`NoAmbiguousRetries`] forbids them) nor by the next dump (the exporter counts it
//! as ambiguous instead of putting it back): sending it again would count it twice whenever the first request
//! did arrive, as it does when a hung endpoint resumes or a response is lost. What this costs: when such a
//! request did not arrive after all, its data is lost, and counted (`Telemetry::datums_ambiguous`).

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::error::SdkError;
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};

use super::attempt::{failed_before_sending, lacks_credentials, refused_by_an_interceptor, Attempt};

/// Whether CloudWatch may hold the data of a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// CloudWatch surely did not store it: keep it for the next dump.
    NotStored,
    /// CloudWatch may have stored it: never send it again.
    MaybeStored,
}

/// What a failed PutMetricData means for its data, given how far its last attempt got.
pub(crate) fn delivery(err: &SdkError<PutMetricDataError, HttpResponse>, attempt: Attempt) -> Delivery {
    if !attempt.may_have_arrived() {
        // Never transmitted (credentials, signing, the endpoint, a timeout there), or answered with an error.
        return Delivery::NotStored;
    }
    match err {
        // CloudWatch answered: it decided, and an error answer stores nothing. A request never built was never sent.
        SdkError::ServiceError(_) | SdkError::ConstructionFailure(_) => Delivery::NotStored,
        SdkError::ResponseError(_) => match err.raw_response().map(|r| r.status().as_u16()) {
            Some(status) if status >= 300 => Delivery::NotStored,
            _ => Delivery::MaybeStored,
        },
        SdkError::DispatchFailure(failure) => match failure.as_connector_error() {
            Some(connector) if failed_before_sending(connector) || refused_by_an_interceptor(connector) => {
                Delivery::NotStored
            }
            _ => Delivery::MaybeStored,
        },
        // The attempt timed out, maybe after the request was sent; and whatever else may come.
        _ => Delivery::MaybeStored,
    }
}

/// Whether a failed PutMetricData ran out of time (its attempt, or the read of the answer): the endpoint hangs,
/// rather than broke the connection or lost one answer.
pub(crate) fn timed_out(err: &SdkError<PutMetricDataError, HttpResponse>) -> bool {
    match err {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        _ => false,
    }
}

/// Whether a PutMetricData that surely was not stored could not be sent from here, as the dump's other requests
/// could not be either (each after all its retries): no credentials could be had, no connection could be made
/// (refused, unreachable, no address for the name, the endpoint guard's refusal), or it ran out of time (no
/// connection opened within `connect_timeout`, or the attempt or the whole operation timed out, waiting to retry
/// after an error answer included). Other failures before sending (a request that could not be built, a user's
/// interceptor that refused it) may be its data's doing: the rest goes on.
pub(crate) fn could_not_be_sent(err: &SdkError<PutMetricDataError, HttpResponse>) -> bool {
    timed_out(err)
        || matches!(err, SdkError::DispatchFailure(failure)
            if failure.as_connector_error().is_some_and(|e| failed_before_sending(e) || lacks_credentials(e)))
}

/// A retry classifier that forbids the SDK to retry a PutMetricData CloudWatch may have stored. It runs after
/// the SDK's own classifiers, so everything else (throttling, 5xx answers, connections that could not be made) is
/// retried as the SDK does.
#[derive(Debug, Default)]
pub(crate) struct NoAmbiguousRetries;

impl ClassifyRetry for NoAmbiguousRetries {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(err)) = ctx.output_or_error() else { return RetryAction::NoActionIndicated };
        if let Some(response) = ctx.response() {
            // A success answer whose body could not be read (or that timed out) was stored: never again. An
            // error answer decides, as the SDK classified it.
            return if response.status().is_success() {
                RetryAction::RetryForbidden
            } else {
                RetryAction::NoActionIndicated
            };
        }
        let before_sending = err.as_connector_error().is_some_and(failed_before_sending);
        if before_sending {
            RetryAction::NoActionIndicated
        } else {
            RetryAction::RetryForbidden
        }
    }

    fn name(&self) -> &'static str {
        "cloudwatch-counters: no retry of a request CloudWatch may have stored"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}
