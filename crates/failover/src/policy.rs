use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;

/// How a backend is chosen among the healthy ones of the best tier.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Selection {
    /// Weighted rotation: over a round of `W` requests (the tier's total weight) each backend
    /// leads as often as its weight.
    #[default]
    Weighted,
    /// The backend with the fewest requests in flight (streams count until they end); ties go
    /// by weighted rotation.
    LeastOutstanding,
}

/// What to do when every backend is resting (cooling down or ejected).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum WhenAllResting {
    /// Answer 503 `no_backend_available` at once, with `Retry-After` set to when the first
    /// backend comes back.
    #[default]
    FailFast,
    /// Try the backends anyway, the one whose rest ends first before the others. Resting
    /// backends are also tried, in that order, when a request has failed on every healthy one
    /// and attempts remain.
    TrySoonest,
}

/// Exponential backoff with full jitter before a backend is tried again within one request
/// (a different backend is tried at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait's upper bound.
    pub base: Duration,
    /// The bound no wait exceeds.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(25),
            max: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    /// The wait before the `n`th retry of the same backend (n ≥ 1): uniformly drawn from
    /// `0..=min(max, base · 2^(n-1))` by `random`.
    pub(crate) fn wait(self, n: u32, random: u64) -> Duration {
        let exp = n.saturating_sub(1).min(20);
        let cap = self.base.saturating_mul(1 << exp).min(self.max);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random % (nanos + 1))
    }
}

/// Passive health checking: a backend that keeps failing is ejected for a while.
///
/// Ejection follows Envoy's outlier detection: `consecutive_failures` failures in a row, or an
/// error rate of at least `error_rate` over `min_requests` or more requests within one
/// `interval`, eject the backend for `base_ejection · 2^(k-1)` (bounded by `max_ejection`)
/// where `k` counts its ejections since it last recovered. When the time is up one request
/// probes it (half-open): success brings it back and forgets the count; failure ejects it
/// again for longer. A failure reported while it rests (a request sent before) extends the
/// rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Failures in a row that eject a backend (0: never for this reason). Default 5.
    pub consecutive_failures: u32,
    /// The error rate (0.0–1.0) that ejects a backend; `None` disables it. Default 0.5.
    pub error_rate: Option<f32>,
    /// The fewest requests in an interval for the error rate to count. Default 20.
    pub min_requests: u32,
    /// The error-rate window. Default 10 s.
    pub interval: Duration,
    /// The first ejection's length. Default 30 s.
    pub base_ejection: Duration,
    /// The longest ejection. Default 5 min.
    pub max_ejection: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            error_rate: Some(0.5),
            min_requests: 20,
            interval: Duration::from_secs(10),
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
        }
    }
}

impl HealthPolicy {
    /// No passive ejection (explicit `Retry-After` and rate-limit cooldowns still apply).
    pub fn disabled() -> Self {
        Self {
            consecutive_failures: 0,
            error_rate: None,
            ..Self::default()
        }
    }

    /// The length of the `k`th ejection in a row (k ≥ 1).
    pub(crate) fn ejection(&self, k: u32) -> Duration {
        let exp = k.saturating_sub(1).min(20);
        self.base_ejection
            .saturating_mul(1 << exp)
            .min(self.max_ejection)
    }
}

/// What triggers a retry elsewhere, how backends rest and come back, and how they are chosen.
///
/// A failure is one of: a status in [`retry_statuses`](Self::retry_statuses) (429, 500, 502,
/// 503, 504 by default), a refused or failed connection, a timeout (the client's own, or
/// [`attempt_timeout`](Self::attempt_timeout)), or a response whose body broke before its first
/// byte (a reset). Each kind can be switched off. A failed attempt is retried on the next
/// backend while attempts, the [retry budget](Self::retry_budget) and the
/// [deadline](Self::deadline) allow and the body can be replayed.
#[derive(Debug, Clone)]
#[must_use]
pub struct FailoverPolicy {
    pub(crate) retry_statuses: Vec<StatusCode>,
    pub(crate) retry_connect: bool,
    pub(crate) retry_timeout: bool,
    pub(crate) retry_reset: bool,
    pub(crate) cooldown_statuses: Vec<StatusCode>,
    pub(crate) max_attempts: usize,
    pub(crate) default_cooldown: Duration,
    pub(crate) max_hops: u32,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) backoff: Backoff,
    pub(crate) budget: Option<(Duration, u32, f32)>,
    pub(crate) selection: Selection,
    pub(crate) when_all_resting: WhenAllResting,
    pub(crate) health: HealthPolicy,
    pub(crate) restrictions: BTreeMap<String, Vec<String>>,
}

fn statuses(codes: &[u16]) -> Vec<StatusCode> {
    codes
        .iter()
        .filter_map(|s| StatusCode::from_u16(*s).ok())
        .collect()
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            retry_statuses: statuses(&[429, 500, 502, 503, 504]),
            retry_connect: true,
            retry_timeout: true,
            retry_reset: true,
            cooldown_statuses: statuses(&[429]),
            max_attempts: 3,
            default_cooldown: Duration::from_secs(30),
            max_hops: 3,
            attempt_timeout: None,
            deadline: None,
            backoff: Backoff::default(),
            budget: Some((Duration::from_secs(10), 10, 0.2)),
            selection: Selection::Weighted,
            when_all_resting: WhenAllResting::FailFast,
            health: HealthPolicy::default(),
            restrictions: BTreeMap::new(),
        }
    }
}

impl FailoverPolicy {
    /// The upstream statuses that send a request to the next backend.
    pub fn retry_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.retry_statuses = statuses.into_iter().collect();
        self
    }

    /// Whether a refused or failed connection is retried elsewhere (default yes).
    pub fn retry_on_connect_error(mut self, yes: bool) -> Self {
        self.retry_connect = yes;
        self
    }

    /// Whether a timeout is retried elsewhere (default yes).
    pub fn retry_on_timeout(mut self, yes: bool) -> Self {
        self.retry_timeout = yes;
        self
    }

    /// Whether a connection that broke before the first byte of the response is retried
    /// elsewhere (default yes).
    pub fn retry_on_reset(mut self, yes: bool) -> Self {
        self.retry_reset = yes;
        self
    }

    /// The statuses that rest a backend even without `Retry-After`, for
    /// [`default_cooldown`](Self::default_cooldown) (default 429: rate limited; Vertex sends no
    /// `Retry-After`). Any failure that carries `Retry-After` rests its backend that long.
    pub fn cooldown_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.cooldown_statuses = statuses.into_iter().collect();
        self
    }

    /// Attempts per request, the first included (default 3). With more attempts than
    /// backends, a backend is tried again after a [backoff](Self::backoff).
    pub fn max_attempts(mut self, n: usize) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The rest of a backend that answered a [cooldown status](Self::cooldown_statuses)
    /// without `Retry-After` (default 30 s).
    pub fn default_cooldown(mut self, d: Duration) -> Self {
        self.default_cooldown = d;
        self
    }

    /// A bound on each attempt's time to the response head and its first body frame; past it
    /// the attempt counts as a timeout (default: none beyond the client's own timeouts).
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
        self
    }

    /// A bound on the whole request's time to its first byte, every attempt and backoff
    /// included; past it the client gets 504 `deadline_exceeded` (default none).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// The backoff before a backend is tried again within one request.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The retry budget (tower's `TpsBudget`): retries may add at most `retry_percent` of the
    /// requests of the last `ttl`, plus `min_per_sec`, so that an outage does not multiply the
    /// load (default 10 s, 10/s, 20 %). `None`: no budget.
    pub fn retry_budget(mut self, budget: Option<(Duration, u32, f32)>) -> Self {
        self.budget = budget;
        self
    }

    /// Refuse requests that already crossed this many gateways (default 3).
    pub fn max_hops(mut self, n: u32) -> Self {
        self.max_hops = n;
        self
    }

    /// The hop limit set by [`max_hops`](Self::max_hops) (for drivers that check hops
    /// themselves, as the pingora adapter does).
    pub fn hop_limit(&self) -> u32 {
        self.max_hops
    }

    /// How a backend is chosen within a tier (default weighted rotation).
    pub fn selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// What happens when every backend rests (default: fail fast with 503).
    pub fn when_all_resting(mut self, what: WhenAllResting) -> Self {
        self.when_all_resting = what;
        self
    }

    /// Passive health checking (default [`HealthPolicy::default`]).
    pub fn health(mut self, health: HealthPolicy) -> Self {
        self.health = health;
        self
    }

    /// A deployment-wide restriction: every request (with a principal or without) goes only
    /// to backends whose label `key` matches one of the value globs (`*`, `?`);
    /// `restrict("region", ["eu-west-1", "eu-central-1"])`. Several keys must all match, a
    /// backend without the label is not allowed, and a principal's own
    /// [`allowed_labels`](infergate_core::Principal::allowed_labels) apply on top. Calling it
    /// again for a key replaces that key's values.
    pub fn restrict<I, S>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.restrictions
            .insert(key.into(), values.into_iter().map(Into::into).collect());
        self
    }

    /// The deployment-wide restrictions (label key → allowed value globs).
    pub fn restrictions(&self) -> &BTreeMap<String, Vec<String>> {
        &self.restrictions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let b = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        };
        assert!(b.wait(1, u64::MAX) <= Duration::from_millis(10));
        assert!(b.wait(3, 40_000_000) <= Duration::from_millis(40));
        assert!(b.wait(30, u64::MAX - 1) <= Duration::from_millis(50));
        assert_eq!(b.wait(2, 0), Duration::ZERO);
    }

    #[test]
    fn ejections_double_up_to_the_bound() {
        let h = HealthPolicy::default();
        assert_eq!(h.ejection(1), Duration::from_secs(30));
        assert_eq!(h.ejection(2), Duration::from_secs(60));
        assert_eq!(h.ejection(4), Duration::from_secs(240));
        assert_eq!(h.ejection(9), Duration::from_secs(300));
    }
}
