//! The last check before a request leaves: its final URI (after the SDK resolved the endpoint, whatever
//! configured it: settings, environment, profile, a user's own client or endpoint resolver) must be https, or
//! plain http to this machine. Signed requests and their data never cross the network unencrypted.

use std::fmt;

use aws_sdk_cloudwatch::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_cloudwatch::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudwatch::error::BoxError;

/// Refuses, before signing and sending, a request to a plain http endpoint that is not on this machine.
#[derive(Debug, Default)]
pub(crate) struct EndpointGuard;

/// The error of a request [`EndpointGuard`] refused: nothing was sent.
#[derive(Debug)]
pub(crate) struct InsecureEndpointRefused {
    host: String,
}

impl fmt::Display for InsecureEndpointRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing plain http to {}: use an https:// endpoint (plain http only goes to this machine)",
            self.host
        )
    }
}

impl std::error::Error for InsecureEndpointRefused {}

impl Intercept for EndpointGuard {
    fn name(&self) -> &'static str {
        "cloudwatch-counters endpoint guard"
    }

    fn read_before_signing(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = context.request().uri();
        match super::connect::check_endpoint(uri) {
            Err(crate::error::Error::InsecureEndpoint { host }) => Err(Box::new(InsecureEndpointRefused { host })),
            _ => Ok(()),
        }
    }
}
