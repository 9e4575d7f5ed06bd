//! A future bounded by a timeout and a deadline, whose timer is created only if the future does
//! not finish on its first poll: processors that answer at once (most do) never touch the timer
//! wheel or the clock.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pin_project_lite::pin_project! {
    pub(crate) struct Bounded<F> {
        #[pin]
        fut: F,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
        sleep: Option<Pin<Box<Sleep>>>,
        by_deadline: bool,
    }
}

/// The limit passed; `by_deadline` tells whether it was the pipeline's deadline (rather than the
/// processor's own timeout).
pub(crate) struct Elapsed {
    pub(crate) by_deadline: bool,
}

impl<F> Bounded<F> {
    pub(crate) fn new(fut: F, timeout: Option<Duration>, deadline: Option<Instant>) -> Self {
        Self {
            fut,
            timeout,
            deadline,
            sleep: None,
            by_deadline: false,
        }
    }
}

impl<F: Future> Future for Bounded<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if this.sleep.is_none() {
            let own = this.timeout.map(|t| Instant::now() + t);
            let limit = match (own, *this.deadline) {
                (Some(o), Some(d)) if d <= o => {
                    *this.by_deadline = true;
                    d
                }
                (Some(o), _) => o,
                (None, Some(d)) => {
                    *this.by_deadline = true;
                    d
                }
                (None, None) => return Poll::Pending,
            };
            *this.sleep = Some(Box::pin(tokio::time::sleep_until(limit)));
        }
        match this.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(Elapsed {
                by_deadline: *this.by_deadline,
            })),
            _ => Poll::Pending,
        }
    }
}
