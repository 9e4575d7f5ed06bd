//! Failover across LLM backends: priority tiers, weighted or least-loaded choice, retries on
//! chosen failures, `Retry-After` cooldowns, passive health with half-open probes, a retry
//! budget, body replay — and never a retry once a byte of the response has gone out.
//!
//! ```
//! use std::time::Duration;
//!
//! use infergate_client::UpstreamClient;
//! use infergate_core::{Pipeline, PipelineLayer};
//! use infergate_failover::{Backend, FailoverLayer, FailoverPolicy, WhenAllResting};
//! use tower::Layer;
//!
//! let primary = UpstreamClient::new("http://127.0.0.1:9").unwrap().into_proxy();
//! let secondary = UpstreamClient::new("http://127.0.0.1:10").unwrap().into_proxy();
//! let policy = FailoverPolicy::default()
//!     .attempt_timeout(Duration::from_secs(20))
//!     .deadline(Duration::from_secs(60))
//!     .when_all_resting(WhenAllResting::TrySoonest);
//! let failover = FailoverLayer::new(policy).service_over(vec![
//!     Backend::new("primary", primary).tier(0),
//!     Backend::new("secondary", secondary).tier(1).map_model("gpt-4o", "gpt-4o-2024-08-06"),
//! ]);
//! // The pipeline in front buffers the request body that failover replays.
//! let service = PipelineLayer::new(Pipeline::default()).layer(failover);
//! # let _ = service;
//! ```
//!
//! # What happens to a request
//!
//! 1. A request that already crossed [`max_hops`](FailoverPolicy::max_hops) gateways
//!    (`x-infergate-hops`) is refused with 508, so that two gateways pointing at each other
//!    cannot loop; others go on with the count raised by one.
//! 2. The backends that take requests are ordered by tier (lower first), then within a tier by
//!    weighted rotation or fewest requests in flight ([`Selection`]). When every backend rests,
//!    the request fails fast with 503 and a `Retry-After`, or tries them anyway, the one whose
//!    rest ends first before the others ([`WhenAllResting`]).
//! 3. Each attempt gets the buffered body again and the backend's own model name
//!    ([`Backend::map_model`]). It fails on a status the policy retries (429, 500, 502, 503,
//!    504), a refused connection, a timeout ([`attempt_timeout`](FailoverPolicy::attempt_timeout)
//!    bounds the time to the head *and* the first body frame), or a body that breaks before its
//!    first byte — the first frame is read before the response is chosen, then sent on at once,
//!    so streams lose no time to first token. A failure is retried on the next backend while
//!    [`max_attempts`](FailoverPolicy::max_attempts), the retry budget and the
//!    [`deadline`](FailoverPolicy::deadline) allow; trying the same backend again waits an
//!    exponential [`Backoff`] with full jitter first.
//! 4. Once a response is chosen nothing is retried: a stream that breaks later ends, through
//!    the pipeline, with an SSE `event: error`. Responses name the backend and the number of
//!    attempts (`x-infergate-backend`, `x-infergate-attempts`); when every attempt failed the
//!    client gets the last failure.
//!
//! # Regional and backend restrictions
//!
//! Backends carry labels ([`Backend::label`]: `region`, `provider`, `data_residency`, …). A
//! request goes only to backends whose labels the deployment's restrictions
//! ([`FailoverPolicy::restrict`]) and its principal's
//! [`allowed_labels`](infergate_core::Principal::allowed_labels) allow. When the allowed ones
//! rest, the answer is 503 `no_backend_available` naming the restriction — never a detour to
//! another backend; when no backend of the group is allowed at all, 403
//! `backend_not_allowed`. [`Restricted`] applies the same rule to a single backend.
//!
//! # Health
//!
//! A failure carrying `Retry-After` (seconds or an HTTP date) rests its backend that long; a
//! 429 without one rests it for [`default_cooldown`](FailoverPolicy::default_cooldown). Passive
//! health ([`HealthPolicy`]) ejects a backend after consecutive failures or a high error rate,
//! for a time that doubles with each ejection in a row; when it is over, one request probes it
//! (half-open) and brings it back or ejects it again; a failure reported while it rests extends
//! the rest. [`Failover::status`] shows every backend's state.
//!
//! # Other drivers
//!
//! A proxy that sends the attempts itself (pingora, whose retries call `upstream_peer` again)
//! uses the same policy, choice, health books and budget through [`Failover::attempts`]:
//! [`Attempts::next`] names the backend to try, and the driver reports each [`Attempt`] as
//! answered or failed. Build such a failover over [`Backend::external`] backends.
//!
//! # Budget
//!
//! Retries draw on tower's [`TpsBudget`](tower::retry::budget::TpsBudget) (by default at most
//! 20 % of the last 10 s of requests plus 10 a second), so that a full outage does not
//! multiply the load on providers that are already failing.
//!
//! ## Configuration as data
//!
//! [`FailoverConfig`] is a group as plain data, its members [`MemberConfig`]s (with the `serde`
//! feature, default, they deserialize; unknown fields and values are errors):
//! [`FailoverConfig::policy`] makes the [`FailoverPolicy`], [`MemberConfig::backend`] a
//! [`Backend`] over a service.

mod backend;
mod body;
mod config;
mod driver;
mod health;
mod layer;
mod policy;
mod restricted;
mod service;

pub use backend::Backend;
pub use config::{FailoverConfig, MemberConfig};
pub use driver::{Attempt, AttemptFailure, Attempts};
pub use layer::FailoverLayer;
pub use policy::{Backoff, FailoverPolicy, HealthPolicy, Selection, WhenAllResting};
pub use restricted::Restricted;
pub use service::{
    ATTEMPTS_HEADER, BACKEND_HEADER, BackendStatus, Failover, HOPS_HEADER, RETRY_AFTER_MAX,
    retry_after,
};
