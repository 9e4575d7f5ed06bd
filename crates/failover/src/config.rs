//! A failover group's configuration as plain data ([`FailoverConfig`], [`MemberConfig`]), as
//! a configuration file writes it, and its conversion into a [`FailoverPolicy`] and
//! [`Backend`]s.
//!
//! With the `serde` feature (default) the types deserialize; unknown fields are errors, and
//! [`Selection`] and [`WhenAllResting`] are spelt in snake case (`least_outstanding`,
//! `try_soonest`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use infergate_core::Body;
use tower::Service;

use crate::{Backend, Backoff, FailoverPolicy, HealthPolicy, Selection, WhenAllResting};

/// A failover group: its members and its policy. Every policy field is optional; an absent
/// one keeps [`FailoverPolicy::default`]'s value. Durations are in milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct FailoverConfig {
    /// The backends, each with its tier, weight and model names.
    pub members: Vec<MemberConfig>,
    /// Attempts per request, the first included (default 3).
    pub max_attempts: Option<usize>,
    /// Each attempt's bound on the time to the head and first body frame.
    pub attempt_timeout_ms: Option<u64>,
    /// The bound on all attempts together.
    pub deadline_ms: Option<u64>,
    /// The rest after a 429 without `Retry-After` (default 30000).
    pub cooldown_ms: Option<u64>,
    /// The upstream statuses retried on the next backend (default 429, 500, 502, 503, 504).
    pub retry_statuses: Option<Vec<u16>>,
    /// `weighted` (default) or `least_outstanding`.
    pub selection: Selection,
    /// `fail_fast` (default) or `try_soonest`.
    pub when_all_resting: WhenAllResting,
    /// Gateways a request may cross (default 3).
    pub max_hops: Option<u32>,
    /// Retries may add this share of the last 10 s of requests (plus 10/s); 0 turns the
    /// budget off (default 0.2).
    pub retry_budget_percent: Option<f32>,
    /// Failures in a row that eject a backend (default 5; 0 for never).
    pub consecutive_failures: Option<u32>,
    /// The error rate that ejects a backend (default 0.5; 0 for never).
    pub error_rate: Option<f32>,
    /// The first ejection's length (default 30000), doubled for each one in a row.
    pub ejection_ms: Option<u64>,
    /// The longest ejection (default 300000).
    pub max_ejection_ms: Option<u64>,
    /// The first backoff before a backend is retried within a request (default 25; the
    /// longest is 40 times it).
    pub backoff_ms: Option<u64>,
}

/// One member of a failover group: a backend by name, with its tier, weight and model names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct MemberConfig {
    /// The backend's name.
    pub backend: String,
    /// Its priority tier (lower first; default 0).
    pub tier: u32,
    /// Its weight within its tier (default 1).
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub weight: u32,
    /// The model every request asks this backend for.
    pub model: Option<String>,
    /// Requested model → this backend's name for it.
    pub models: BTreeMap<String, String>,
}

#[cfg_attr(not(feature = "serde"), allow(dead_code))]
fn one() -> u32 {
    1
}

impl FailoverConfig {
    /// The group's policy (without restrictions: add them with
    /// [`FailoverPolicy::restrict`]).
    pub fn policy(&self) -> FailoverPolicy {
        let ms = Duration::from_millis;
        let mut p = FailoverPolicy::default()
            .selection(self.selection)
            .when_all_resting(self.when_all_resting);
        if let Some(n) = self.max_attempts {
            p = p.max_attempts(n);
        }
        if let Some(t) = self.attempt_timeout_ms {
            p = p.attempt_timeout(ms(t));
        }
        if let Some(t) = self.deadline_ms {
            p = p.deadline(ms(t));
        }
        if let Some(t) = self.cooldown_ms {
            p = p.default_cooldown(ms(t));
        }
        if let Some(codes) = &self.retry_statuses {
            p = p.retry_statuses(codes.iter().filter_map(|c| StatusCode::from_u16(*c).ok()));
        }
        if let Some(n) = self.max_hops {
            p = p.max_hops(n);
        }
        match self.retry_budget_percent {
            Some(pct) if pct <= 0.0 => p = p.retry_budget(None),
            Some(pct) => p = p.retry_budget(Some((Duration::from_secs(10), 10, pct))),
            None => {}
        }
        if let Some(t) = self.backoff_ms {
            p = p.backoff(Backoff {
                base: ms(t),
                max: ms(t.saturating_mul(40)),
            });
        }
        let mut health = HealthPolicy::default();
        if let Some(n) = self.consecutive_failures {
            health.consecutive_failures = n;
        }
        if let Some(rate) = self.error_rate {
            health.error_rate = (rate > 0.0).then_some(rate);
        }
        if let Some(t) = self.ejection_ms {
            health.base_ejection = ms(t);
        }
        if let Some(t) = self.max_ejection_ms {
            health.max_ejection = ms(t);
        }
        p.health(health)
    }
}

impl From<&FailoverConfig> for FailoverPolicy {
    fn from(config: &FailoverConfig) -> Self {
        config.policy()
    }
}

impl MemberConfig {
    /// The member as a [`Backend`] over `service` (labels are added by the caller, who knows
    /// the backend's).
    pub fn backend<S>(&self, service: S) -> Backend
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let mut b = Backend::new(self.backend.clone(), service)
            .tier(self.tier)
            .weight(self.weight);
        if let Some(model) = &self.model {
            b = b.model(model.clone());
        }
        for (from, to) in &self.models {
            b = b.map_model(from.clone(), to.clone());
        }
        b
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn a_group_deserializes_into_its_policy() {
        let c: FailoverConfig = serde_json::from_str(
            r#"{"members":[{"backend":"a"},{"backend":"b","tier":1,"models":{"x":"y"}}],
                "selection":"least_outstanding","when_all_resting":"try_soonest",
                "max_attempts":2,"error_rate":0,"backoff_ms":10}"#,
        )
        .unwrap();
        assert_eq!(c.members[0].weight, 1);
        assert_eq!(c.members[1].tier, 1);
        let p = c.policy();
        assert_eq!(p.selection, Selection::LeastOutstanding);
        assert_eq!(p.when_all_resting, WhenAllResting::TrySoonest);
        assert_eq!(p.max_attempts, 2);
        assert_eq!(p.health.error_rate, None);
        assert_eq!(p.backoff.max, Duration::from_millis(400));
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        assert!(serde_json::from_str::<FailoverConfig>(r#"{"selecton":"weighted"}"#).is_err());
        let e = serde_json::from_str::<FailoverConfig>(r#"{"selection":"random"}"#).unwrap_err();
        assert!(e.to_string().contains("least_outstanding"), "{e}");
    }
}
