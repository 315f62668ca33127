//! [`AttemptMark`]: how far the current attempt of one PutMetricData got, for what its failure (or a `close` that
//! cuts it off) means for the data in it. Nothing of an attempt leaves this machine before it is transmitted:
//! an attempt that failed earlier (credentials, signing, endpoint resolution) or a request that waits for a retry
//! after an error answer holds data CloudWatch surely did not store.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use aws_sdk_cloudwatch::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_cloudwatch::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_cloudwatch::error::BoxError;

/// How far the current attempt got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Nothing of it was handed to the HTTP client (yet).
    NotTransmitted,
    /// Handed to the HTTP client: it may have arrived, and no error answer came back.
    Transmitted,
    /// CloudWatch answered with an error status: it stored nothing (a retry may follow).
    Refused,
}

const NOT_TRANSMITTED: u8 = 0;
const TRANSMITTED: u8 = 1;
const REFUSED: u8 = 2;

/// Marks, for one request, how far its current attempt got (shared with the sink through the clone it keeps).
#[derive(Debug, Clone, Default)]
pub(crate) struct AttemptMark(Arc<AtomicU8>);

impl AttemptMark {
    /// How far the current (or last) attempt got.
    pub(crate) fn get(&self) -> Attempt {
        match self.0.load(Relaxed) {
            NOT_TRANSMITTED => Attempt::NotTransmitted,
            REFUSED => Attempt::Refused,
            _ => Attempt::Transmitted,
        }
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
        self.0.store(NOT_TRANSMITTED, Relaxed);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.store(TRANSMITTED, Relaxed);
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if context.response().status().as_u16() >= 300 {
            self.0.store(REFUSED, Relaxed);
        }
        Ok(())
    }
}
