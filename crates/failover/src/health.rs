//! Per-backend passive health: rests, ejections, half-open probes, requests in flight.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::policy::HealthPolicy;

/// Whether a backend can take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    /// Healthy.
    Ready,
    /// Its rest is over; one request may probe it.
    Probe,
    /// Resting until then (or a probe is already under way).
    Resting(Instant),
}

#[derive(Debug)]
struct State {
    /// The end of its rest, if it rests or rested and has not been probed since.
    until: Option<Instant>,
    /// Ejections in a row since it last recovered.
    ejections: u32,
    /// A probe is under way.
    probing: bool,
    consecutive: u32,
    window_start: Instant,
    window_total: u32,
    window_failures: u32,
}

/// The health of one backend.
#[derive(Debug)]
pub(crate) struct Health {
    state: Mutex<State>,
    outstanding: AtomicUsize,
}

/// A request in flight to a backend; dropping it (when the response body ends or is dropped)
/// takes it off the count, and gives back the probe if its outcome was never recorded (the
/// client went away), so that the next request can probe.
#[derive(Debug)]
pub(crate) struct InFlight {
    health: Arc<Health>,
    /// This attempt is the backend's half-open probe and its outcome is not recorded yet.
    pub(crate) probe: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.health.outstanding.fetch_sub(1, Ordering::Relaxed);
        if self.probe {
            self.health.lock().probing = false;
        }
    }
}

/// How an attempt ended, for the health books.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict {
    Success,
    /// A failure; `rest` is an explicit rest (`Retry-After`, or a cooldown status).
    Failure {
        rest: Option<Duration>,
    },
}

impl Health {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new(State {
                until: None,
                ejections: 0,
                probing: false,
                consecutive: 0,
                window_start: now,
                window_total: 0,
                window_failures: 0,
            }),
            outstanding: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent enough to
        // matter; keep serving.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub(crate) fn availability(&self, now: Instant) -> Availability {
        let s = self.lock();
        match s.until {
            None => Availability::Ready,
            Some(until) if until > now => Availability::Resting(until),
            Some(until) if s.probing => Availability::Resting(until),
            Some(_) => Availability::Probe,
        }
    }

    /// Starts an attempt: `None` when the backend cannot take it (resting, or its probe is
    /// taken) unless `force`.
    pub(crate) fn begin(self: &Arc<Self>, now: Instant, force: bool) -> Option<InFlight> {
        let probe = {
            let mut s = self.lock();
            match s.until {
                None => false,
                Some(until) if until > now || s.probing => {
                    if !force {
                        return None;
                    }
                    false
                }
                Some(_) => {
                    s.probing = true;
                    true
                }
            }
        };
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(InFlight {
            health: self.clone(),
            probe,
        })
    }
}

impl InFlight {
    /// Records how the attempt ended; returns the rest it started or extended, if any.
    pub(crate) fn record(
        &mut self,
        now: Instant,
        verdict: Verdict,
        policy: &HealthPolicy,
    ) -> Option<Duration> {
        let probe = std::mem::take(&mut self.probe);
        let mut s = self.health.lock();
        if probe {
            s.probing = false;
        }
        if now.duration_since(s.window_start) > policy.interval {
            s.window_start = now;
            s.window_total = 0;
            s.window_failures = 0;
        }
        s.window_total = s.window_total.saturating_add(1);
        match verdict {
            Verdict::Success => {
                s.consecutive = 0;
                // A success after the rest (the probe, or a forced attempt) brings it back.
                if s.until.is_some_and(|u| u <= now) {
                    s.until = None;
                    s.ejections = 0;
                }
                None
            }
            Verdict::Failure { rest } => {
                s.consecutive = s.consecutive.saturating_add(1);
                s.window_failures = s.window_failures.saturating_add(1);
                let resting = s.until.is_some_and(|u| u > now);
                let tripped = probe
                    || resting
                    || (policy.consecutive_failures > 0
                        && s.consecutive >= policy.consecutive_failures)
                    || policy.error_rate.is_some_and(|rate| {
                        s.window_total >= policy.min_requests.max(1)
                            && f64::from(s.window_failures)
                                >= f64::from(rate) * f64::from(s.window_total)
                    })
                    // A failed attempt after the rest ended (forced) counts as a failed probe.
                    || s.until.is_some();
                let ejection = if tripped && (probe || !resting) {
                    // A new ejection (or a failed probe): longer than the last.
                    s.ejections = s.ejections.saturating_add(1);
                    s.consecutive = 0;
                    s.window_start = now;
                    s.window_total = 0;
                    s.window_failures = 0;
                    Some(policy.ejection(s.ejections))
                } else if resting {
                    // A late failure while it rests: extend by the current ejection length.
                    Some(policy.ejection(s.ejections.max(1)))
                } else {
                    None
                };
                // An explicit rest (`Retry-After`, a cooldown) comes from the upstream: it is
                // bounded by the longest ejection like any other rest.
                let rest = rest.map(|r| r.min(policy.max_ejection));
                let d = match (rest, ejection) {
                    (Some(a), Some(b)) => a.max(b),
                    (a, b) => a.or(b)?,
                };
                let until = later(now, d);
                s.until = Some(s.until.map_or(until, |u| u.max(until)));
                Some(d)
            }
        }
    }
}

/// `now + d`, saturating: a duration too long for the clock (a configured `Duration::MAX`)
/// ends a century from now instead of panicking.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d)
        .or_else(|| now.checked_add(d.min(CENTURY)))
        .unwrap_or(now)
}

impl Health {
    /// A snapshot for observability.
    pub(crate) fn snapshot(&self, now: Instant) -> (Option<Duration>, u32, u32) {
        let s = self.lock();
        (
            s.until.and_then(|u| u.checked_duration_since(now)),
            s.ejections,
            s.consecutive,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            consecutive_failures: 3,
            error_rate: None,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(60),
            ..HealthPolicy::default()
        }
    }

    const FAIL: Verdict = Verdict::Failure { rest: None };

    #[test]
    fn consecutive_failures_eject_and_a_probe_brings_back() {
        let p = policy();
        let t0 = Instant::now();
        let h = Arc::new(Health::new(t0));
        for _ in 0..2 {
            let mut f = h.begin(t0, false).unwrap();
            assert_eq!(f.record(t0, FAIL, &p), None);
        }
        assert_eq!(h.availability(t0), Availability::Ready);
        let mut f = h.begin(t0, false).unwrap();
        assert_eq!(f.record(t0, FAIL, &p), Some(Duration::from_secs(10)));
        assert!(matches!(h.availability(t0), Availability::Resting(_)));
        assert!(h.begin(t0, false).is_none());

        // Half-open: one probe, the others keep away.
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(h.availability(t1), Availability::Probe);
        let mut probe = h.begin(t1, false).unwrap();
        assert!(probe.probe);
        assert!(h.begin(t1, false).is_none(), "one probe at a time");
        // The probe fails: ejected again, for twice as long.
        assert_eq!(probe.record(t1, FAIL, &p), Some(Duration::from_secs(20)));
        // A late failure while resting extends the rest (to now + the current length).
        let t2 = t1 + Duration::from_secs(15);
        f.record(t2, FAIL, &p);
        assert_eq!(
            h.availability(t1 + Duration::from_secs(21)),
            Availability::Resting(t2 + Duration::from_secs(20))
        );
        // The next probe succeeds: healthy again, the count forgotten.
        let t3 = t2 + Duration::from_secs(21);
        let mut probe = h.begin(t3, false).unwrap();
        assert!(probe.probe);
        assert_eq!(probe.record(t3, Verdict::Success, &p), None);
        assert_eq!(h.availability(t3), Availability::Ready);
        assert_eq!(h.snapshot(t3).1, 0);
    }

    #[test]
    fn an_error_rate_ejects() {
        let p = HealthPolicy {
            consecutive_failures: 0,
            error_rate: Some(0.5),
            min_requests: 10,
            ..policy()
        };
        let t = Instant::now();
        let h = Arc::new(Health::new(t));
        for i in 0..9 {
            let v = if i % 2 == 0 { FAIL } else { Verdict::Success };
            assert_eq!(h.begin(t, false).unwrap().record(t, v, &p), None);
        }
        // The tenth request: 5 failures of 10.
        assert!(h.begin(t, false).unwrap().record(t, FAIL, &p).is_some());
    }

    #[test]
    fn an_explicit_rest_needs_no_threshold_and_in_flight_is_counted() {
        let p = policy();
        let t = Instant::now();
        let h = Arc::new(Health::new(t));
        let mut f = h.begin(t, false).unwrap();
        assert_eq!(h.outstanding(), 1);
        let rest = Some(Duration::from_secs(2));
        assert_eq!(f.record(t, Verdict::Failure { rest }, &p), rest);
        drop(f);
        assert_eq!(h.outstanding(), 0);
        assert!(h.begin(t, true).is_some(), "forced attempts pass a rest");
    }

    #[test]
    fn an_abandoned_probe_is_given_back() {
        let t = Instant::now();
        let h = Arc::new(Health::new(t));
        let rest = Some(Duration::from_secs(1));
        h.begin(t, false)
            .unwrap()
            .record(t, Verdict::Failure { rest }, &policy());
        let later = t + Duration::from_secs(2);
        let probe = h.begin(later, false).unwrap();
        assert!(probe.probe);
        assert!(h.begin(later, false).is_none());
        drop(probe);
        assert_eq!(h.availability(later), Availability::Probe);
    }

    #[test]
    fn an_explicit_rest_is_capped_by_the_longest_ejection_and_never_overflows() {
        let t = Instant::now();
        for rest in [Duration::from_secs(u64::MAX), Duration::MAX] {
            let h = Arc::new(Health::new(t));
            let mut f = h.begin(t, false).unwrap();
            let rested = f.record(t, Verdict::Failure { rest: Some(rest) }, &policy());
            assert_eq!(rested, Some(Duration::from_secs(60)));
            assert_eq!(
                h.availability(t),
                Availability::Resting(t + Duration::from_secs(60))
            );
        }
        // A policy whose longest ejection is itself too long for the clock saturates.
        let huge = HealthPolicy {
            max_ejection: Duration::MAX,
            base_ejection: Duration::MAX,
            ..policy()
        };
        let h = Arc::new(Health::new(t));
        let rest = Some(Duration::MAX);
        let mut first = h.begin(t, false).unwrap();
        assert_eq!(first.record(t, Verdict::Failure { rest }, &huge), rest);
        assert!(matches!(h.availability(t), Availability::Resting(until) if until > t));
        // Further failures while resting, and a snapshot, stay calm too.
        let mut late = h.begin(t, true).unwrap();
        late.record(t, Verdict::Failure { rest }, &huge);
        assert!(h.snapshot(t).0.is_some());
    }

    #[test]
    fn later_saturates() {
        let t = Instant::now();
        assert_eq!(later(t, Duration::from_secs(1)), t + Duration::from_secs(1));
        assert!(later(t, Duration::MAX) > t);
    }
}
