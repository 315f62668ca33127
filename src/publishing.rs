//! The mark on work done while publishing: the layer ignores spans and events created there, so that a dump
//! (the AWS SDK, hyper, rustls) never creates more data to dump.
//!
//! The mark is a per-thread depth, raised while a publishing future is being polled and lowered when its poll
//! returns (what a tokio task-local does, without its `RefCell`): every span and event reads it, so it is one
//! load of a thread-local with no destructor and no lazy initialization. Tasks a publishing future spawns are
//! not marked, as they would not be by a task-local either; the layer's excluded targets cover those.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// Publishing futures being polled on this thread, one inside another.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether this thread is polling a publishing future.
#[inline]
pub(crate) fn is_publishing() -> bool {
    DEPTH.try_with(Cell::get).is_ok_and(|depth| depth > 0)
}

/// Runs `future` marked as publishing.
pub(crate) fn scope<F: Future>(future: F) -> impl Future<Output = F::Output> {
    Publishing { future: Box::pin(future) }
}

/// A future marked as publishing while it is polled.
struct Publishing<F> {
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Publishing<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _mark = Mark::raise();
        self.future.as_mut().poll(cx)
    }
}

/// Raises this thread's depth while it lives (lowered again if the poll panics).
struct Mark;

impl Mark {
    fn raise() -> Mark {
        let _ = DEPTH.try_with(|depth| depth.set(depth.get().saturating_add(1)));
        Mark
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::{is_publishing, scope};

    #[test]
    fn the_mark_holds_while_a_publishing_future_is_polled_and_only_then() {
        let seen = std::cell::Cell::new(Vec::new());
        let record = || {
            let mut v = seen.take();
            v.push(is_publishing());
            seen.set(v);
        };
        let mut future = pin!(scope(async {
            record();
            // Pending once: the mark is lowered between polls and raised again for the next one.
            let mut once = false;
            std::future::poll_fn(|_| {
                if once {
                    Poll::Ready(())
                } else {
                    once = true;
                    Poll::Pending
                }
            })
            .await;
            record();
            let mut inner = pin!(scope(async { record() }));
            let _ = inner.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            record();
        }));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(future.as_mut().poll(&mut cx).is_pending());
        record();
        assert!(future.as_mut().poll(&mut cx).is_ready());
        record();
        assert_eq!(
            seen.take(),
            [true, false, true, true, true, false],
            "nested scopes keep the mark until the outer one"
        );
    }
}
