//! The mark on work done while publishing: the layer ignores spans and events created there, so that a dump
//! (the AWS SDK, hyper, rustls) never creates more data to dump.

use std::future::Future;

tokio::task_local! {
    static PUBLISHING: ();
}

/// Whether the current task is publishing counters.
pub(crate) fn is_publishing() -> bool {
    PUBLISHING.try_with(|()| ()).is_ok()
}

/// Runs `future` marked as publishing.
pub(crate) fn scope<F: Future>(future: F) -> impl Future<Output = F::Output> {
    PUBLISHING.scope((), future)
}
