//! Failover across backends (in progress: the first part of the failover building block).
//!
//! ```
//! use infergate_failover::{Backend, FailoverLayer, FailoverPolicy};
//! use tower::Layer;
//!
//! let primary = infergate_client::UpstreamClient::new("http://127.0.0.1:9").unwrap();
//! let secondary = infergate_client::UpstreamClient::new("http://127.0.0.1:10").unwrap();
//! let svc = FailoverLayer::new(FailoverPolicy::default()).service_over(vec![
//!     Backend::new("primary", primary.into_proxy()).tier(0),
//!     Backend::new("secondary", secondary.into_proxy()).tier(1),
//! ]);
//! # let _ = svc;
//! ```
//!
//! Backends are tried in priority tiers (lower first), by weight within a tier. A response whose
//! status the policy retries (429, 500, 502, 503, 504 by default; the client's own 502/504 for
//! refused connections and timeouts are among them) puts that backend in a cooldown — its
//! `Retry-After` (seconds or an HTTP date) when it sends one, the policy's default otherwise —
//! and the request goes to the next backend, the body replayed from the buffered copy. A
//! response that is passed on is never retried: once its head is chosen, nothing is sent twice.
//! Forwarded requests carry a hop count (`x-infergate-hops`); one arriving with too many is
//! refused (508), so that two gateways pointing at each other cannot loop. Responses name the
//! backend that answered and the number of attempts (`x-infergate-backend`,
//! `x-infergate-attempts`).

mod service;

pub use service::{Backend, Failover, FailoverLayer, FailoverPolicy, HOPS_HEADER};
