//! [`AttemptMark`]: how far the current attempt of one PutMetricData got, for what its failure (or a `close` that
//! cuts it off) means for the data in it. Nothing of an attempt leaves this machine before it is transmitted:
//! an attempt that failed earlier (credentials, signing, endpoint resolution) or a request that waits for a retry
//! after an error answer, or after a connection that could not be made ([`failed_before_sending`]), holds data
//! CloudWatch surely did not store. So does an attempt handed to the SDK's HTTP client whose connection is still
//! being made (DNS, TCP, TLS): the client says when it has a connection, and until then nothing was sent.

use std::error::Error as StdError;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_cloudwatch::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_cloudwatch::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudwatch::error::BoxError;
use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::interceptors::error::InterceptorError;
use aws_smithy_runtime_api::client::result::ConnectorError;

/// How far the current attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Nothing of it was handed to the HTTP client (yet).
    NotTransmitted,
    /// Handed to the HTTP client, and connected (as far as the client says): it may have arrived, and no error
    /// answer came back.
    Transmitted,
    /// CloudWatch answered with an error status: it stored nothing (a retry may follow).
    Refused,
}

const NOT_TRANSMITTED: u8 = 0;
const TRANSMITTED: u8 = 1;
const REFUSED: u8 = 2;

/// Marks, for one request, how far its current attempt got (shared with the sink through the clone it keeps).
#[derive(Debug, Clone, Default)]
pub(crate) struct AttemptMark {
    stage: Arc<AtomicU8>,
    /// The current attempt's connection, as the SDK's HTTP client reports it (see [`AttemptMark::connecting`]).
    connection: Arc<Mutex<Option<CaptureSmithyConnection>>>,
}

impl AttemptMark {
    /// How far the current (or last) attempt got.
    pub(crate) fn get(&self) -> Attempt {
        match self.stage.load(Relaxed) {
            NOT_TRANSMITTED => Attempt::NotTransmitted,
            REFUSED => Attempt::Refused,
            _ if self.connecting() => Attempt::NotTransmitted,
            _ => Attempt::Transmitted,
        }
    }

    /// Whether the attempt handed to the HTTP client is still waiting for its connection. The SDK's own (hyper)
    /// client says when it has one, through the `CaptureSmithyConnection` its connection-poisoning interceptor
    /// puts in every request: it replaces the retriever [`Intercept::read_before_transmit`] set below with one
    /// that returns nothing until the connection is made. A client that does not report its connections leaves
    /// that retriever, which returns a connection: such a client's attempts count as sent once handed over.
    fn connecting(&self) -> bool {
        let connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        connection.as_ref().is_some_and(|capture| capture.get().is_none())
    }
}

impl Attempt {
    /// Whether CloudWatch may hold the request, whatever ended it after this attempt: only an attempt that was
    /// transmitted and got no error answer. Not transmitted, no byte of it left; refused, CloudWatch decided and
    /// stored nothing (an operation timeout during the wait to retry, or an error answer's body read past the
    /// attempt timeout, changes neither).
    pub(crate) fn may_have_arrived(self) -> bool {
        self == Attempt::Transmitted
    }
}

impl Intercept for AttemptMark {
    fn name(&self) -> &'static str {
        "cloudwatch-counters attempt mark"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.stage.store(NOT_TRANSMITTED, Relaxed);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Right before the request goes to the HTTP client: a client that reports its connections replaces this
        // retriever (see `connecting`).
        let capture = cfg.load::<CaptureSmithyConnection>().cloned();
        if let Some(capture) = &capture {
            capture.set_connection_retriever(|| {
                Some(ConnectionMetadata::builder().proxied(false).poison_fn(|| {}).build())
            });
        }
        *self.connection.lock().unwrap_or_else(PoisonError::into_inner) = capture;
        self.stage.store(TRANSMITTED, Relaxed);
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().status().as_u16() >= 300 {
            self.stage.store(REFUSED, Relaxed);
        }
        Ok(())
    }

    /// An attempt whose connection could not be made sent nothing, although it was handed to the HTTP client:
    /// the request goes back to "not transmitted" while it waits for the SDK's retry, so that a `close` that
    /// cuts it off there keeps its data.
    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Err(err)) = context.output_or_error() {
            if err.as_connector_error().is_some_and(failed_before_sending) {
                self.stage.store(NOT_TRANSMITTED, Relaxed);
            }
        }
        Ok(())
    }
}

/// Whether a connector error happened before any byte of the request left: the connection could not be made
/// (refused, unreachable, DNS, the connect timeout).
pub(crate) fn failed_before_sending(err: &ConnectorError) -> bool {
    any_source(err, |e| {
        #[cfg(feature = "default-https-client")]
        if e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(hyper_util::client::legacy::Error::is_connect)
        {
            return true;
        }
        if e.downcast_ref::<aws_smithy_runtime_api::client::dns::ResolveDnsError>().is_some()
            || e.downcast_ref::<super::guard::InsecureEndpointRefused>().is_some()
        {
            return true;
        }
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            use std::io::ErrorKind::{AddrNotAvailable, ConnectionRefused, HostUnreachable, NetworkUnreachable};
            matches!(io.kind(), ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable)
        })
    })
}

/// Whether a connector error is an interceptor's refusal in a hook before transmission (a user's own check, say,
/// which may run after ours marked the attempt handed over): nothing was sent. Told by the hook its message names,
/// among those before transmission; an error of a hook after the attempt (which the SDK reports the same way when
/// a connection broke with nothing answered) or of any other does not count.
pub(crate) fn refused_by_an_interceptor(err: &ConnectorError) -> bool {
    const BEFORE_TRANSMISSION: [&str; 7] = [
        "modify_before_retry_loop",
        "read_before_attempt",
        "modify_before_signing",
        "read_before_signing",
        "read_after_signing",
        "modify_before_transmit",
        "read_before_transmit",
    ];
    any_source(err, |e| {
        e.downcast_ref::<InterceptorError>().is_some_and(|refusal| {
            let message = refusal.to_string().to_ascii_lowercase();
            BEFORE_TRANSMISSION.iter().any(|hook| message.contains(&format!(" {hook} interceptor encountered")))
        })
    })
}

/// Whether a connector error is the credentials provider's: no credentials could be had to sign the request
/// (the SDK reports that as a dispatch failure, before anything is sent).
pub(crate) fn lacks_credentials(err: &ConnectorError) -> bool {
    any_source(err, |e| e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>().is_some())
}

/// Whether `err` or any error of its chain of sources is `found`.
fn any_source(err: &ConnectorError, found: impl Fn(&(dyn StdError + 'static)) -> bool) -> bool {
    let first: &(dyn StdError + 'static) = err;
    std::iter::successors(Some(first), |&e| e.source()).any(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_failed_before_sending_and_a_reset_did_not() {
        let refused = ConnectorError::io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
        assert!(failed_before_sending(&refused));
        let reset = ConnectorError::io(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into());
        assert!(!failed_before_sending(&reset));
        let timeout = ConnectorError::timeout("read timed out".into());
        assert!(!failed_before_sending(&timeout));
    }

    #[test]
    fn an_interceptors_refusal_counts_only_in_a_hook_before_transmission() {
        let refusal = |error: InterceptorError| ConnectorError::other(error.into(), None);
        // Each error, and whether it counts as a refusal before transmission.
        let cases = [
            (InterceptorError::read_before_transmit("check", "no"), true),
            (InterceptorError::modify_before_transmit("check", "no"), true),
            (InterceptorError::read_before_signing("check", "no"), true),
            (InterceptorError::read_before_attempt("check", "no"), true),
            (InterceptorError::read_after_attempt("check", "no"), false),
            (InterceptorError::modify_before_attempt_completion("check", "no"), false),
            (InterceptorError::read_after_execution("check", "no"), false),
            // An interceptor named like a hook before transmission, failing after the attempt.
            (InterceptorError::read_after_attempt("read_before_transmit", "no"), false),
        ];
        for (error, before_transmission) in cases {
            let shown = error.to_string();
            assert_eq!(refused_by_an_interceptor(&refusal(error)), before_transmission, "{shown}");
        }
        assert!(!refused_by_an_interceptor(&ConnectorError::io("broken pipe".into())));
    }
}
