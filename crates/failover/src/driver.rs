//! Failover for drivers that send the attempts themselves (pingora's retries): the same
//! policy, choice, health books and budget, without the tower service doing the sending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use infergate_core::{Principal, Rejection};
use tower::retry::budget::Budget;

use crate::WhenAllResting;
use crate::health::{InFlight, Verdict};
use crate::service::{Failover, Inner, Plan, no_plan_rejection, restrictions_text};

/// One request's attempts, from [`Failover::attempts`].
#[derive(Debug)]
pub struct Attempts {
    inner: Arc<Inner>,
    plan: Plan,
    cursor: usize,
    made: usize,
}

/// One attempt on one backend: report how it went with [`answered`](Self::answered) or
/// [`failed`](Self::failed) (dropping it unreported gives a half-open probe back).
#[derive(Debug)]
pub struct Attempt {
    inner: Arc<Inner>,
    index: usize,
    flight: InFlight,
}

/// How an attempt failed, for [`Attempt::failed`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The upstream answered this status (with this `Retry-After`, if any).
    Status(StatusCode, Option<Duration>),
    /// The connection could not be made.
    Connect,
    /// No answer in time.
    Timeout,
    /// The connection broke before anything of the answer was passed on.
    Reset,
}

impl Failover {
    /// Starts a request for a driver that sends the attempts itself, under the deployment's
    /// restrictions only (see [`attempts_for`](Self::attempts_for)). `Err` is the 503
    /// `no_backend_available` answer when every backend rests and the policy fails fast, or
    /// the 403 `backend_not_allowed` one when no backend is allowed.
    pub fn attempts(&self) -> Result<Attempts, Rejection> {
        self.attempts_for(None)
    }

    /// Like [`attempts`](Self::attempts) for a request made by `principal`: only backends
    /// its [`allowed_labels`](Principal::allowed_labels) (and the deployment's restrictions)
    /// allow are tried.
    pub fn attempts_for(&self, principal: Option<&Principal>) -> Result<Attempts, Rejection> {
        let now = Instant::now();
        let plan = self.inner.plan(now, principal).map_err(|why| {
            no_plan_rejection(
                why,
                now,
                restrictions_text(&self.inner.policy.restrictions, principal),
            )
        })?;
        if let Some(b) = &self.inner.budget {
            b.deposit();
        }
        Ok(Attempts {
            inner: self.inner.clone(),
            plan,
            cursor: 0,
            made: 0,
        })
    }

    /// The retry statuses of the policy (a driver checks answers against them).
    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.inner.policy.retry_statuses.contains(&status)
    }
}

impl Attempts {
    /// The next backend to try, or `None` when attempts, the retry budget or the backends are
    /// spent. (No backoff: a driver that retries the same backend waits on its own.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Attempt> {
        if self.made >= self.inner.policy.max_attempts {
            return None;
        }
        if self.made > 0 && self.inner.budget.as_ref().is_some_and(|b| !b.withdraw()) {
            tracing::warn!("retry budget spent; not trying another backend");
            return None;
        }
        let now = Instant::now();
        let len = self.plan.order.len();
        let cursor = self.cursor;
        let pick = |force_all: bool| {
            (0..len).find_map(|step| {
                let pos = (cursor + step) % len;
                let i = self.plan.order[pos];
                let f = self.inner.slots[i]
                    .health
                    .begin(now, force_all || pos >= self.plan.forced_from)?;
                Some((step, i, f))
            })
        };
        // Under `TrySoonest`, a backend that turned unavailable since the plan was made (its
        // probe taken by another request, a rest begun) is still tried once the others have
        // failed, like every resting one: a healthy backend must not be skipped for a race.
        let try_soonest = self.inner.policy.when_all_resting == WhenAllResting::TrySoonest;
        let (step, index, flight) = pick(false).or_else(|| try_soonest.then(|| pick(true))?)?;
        self.cursor += step + 1;
        self.made += 1;
        Some(Attempt {
            inner: self.inner.clone(),
            index,
            flight,
        })
    }

    /// Whether another attempt may follow (attempts left and a backend not yet tried, or more
    /// attempts than backends); the retry budget is checked by [`next`](Self::next).
    pub fn may_retry(&self) -> bool {
        let max = self.inner.policy.max_attempts;
        self.made < max && (self.made < self.plan.order.len() || max > self.plan.order.len())
    }

    /// Attempts made so far.
    pub fn made(&self) -> usize {
        self.made
    }
}

impl Attempt {
    /// The backend's position in the list the failover was built over.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.inner.slots[self.index].backend.name
    }

    /// The upstream answered and the answer is being passed on.
    pub fn answered(mut self, status: StatusCode) {
        let verdict = if status.is_server_error() {
            Verdict::Failure { rest: None }
        } else {
            Verdict::Success
        };
        self.flight
            .record(Instant::now(), verdict, &self.inner.policy.health);
    }

    /// The attempt failed; returns whether the policy retries this kind of failure elsewhere.
    pub fn failed(mut self, how: AttemptFailure) -> bool {
        let policy = &self.inner.policy;
        let (rest, retry) = match how {
            AttemptFailure::Status(status, retry_after) => (
                retry_after.or_else(|| {
                    policy
                        .cooldown_statuses
                        .contains(&status)
                        .then_some(policy.default_cooldown)
                }),
                policy.retry_statuses.contains(&status),
            ),
            AttemptFailure::Connect => (None, policy.retry_connect),
            AttemptFailure::Timeout => (None, policy.retry_timeout),
            AttemptFailure::Reset => (None, policy.retry_reset),
        };
        self.flight
            .record(Instant::now(), Verdict::Failure { rest }, &policy.health);
        retry
    }
}
