use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use tower::retry::budget::TpsBudget;

use crate::backend::Backend;
use crate::health::Health;
use crate::policy::FailoverPolicy;
use crate::service::{Failover, Inner, Slot};

/// Configures failover; [`FailoverLayer::service_over`] builds the service over a set of
/// backends.
///
/// Unlike most layers it does not wrap one inner service but fans out over several, each with
/// its own stack; it is a `Layer` only in spirit. Put the payload pipeline
/// ([`PipelineLayer`](infergate_core::PipelineLayer)) in front of it: the pipeline buffers the
/// request body that failover replays, and ends a stream that breaks mid-way with an SSE
/// `event: error`.
#[derive(Debug, Clone)]
pub struct FailoverLayer {
    policy: FailoverPolicy,
}

impl FailoverLayer {
    /// Failover with `policy`.
    pub fn new(policy: FailoverPolicy) -> Self {
        Self { policy }
    }

    /// The failover service over `backends`.
    pub fn service_over(&self, backends: Vec<Backend>) -> Failover {
        let now = Instant::now();
        // Each backend's share of its tier's weight: where it starts and the tier's total.
        let rotation = backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let same_tier = || backends.iter().filter(|o| o.tier == b.tier);
                let start = backends[..i]
                    .iter()
                    .filter(|o| o.tier == b.tier)
                    .map(|o| u64::from(o.weight))
                    .sum::<u64>();
                let total = same_tier().map(|o| u64::from(o.weight)).sum::<u64>();
                (start, total.max(1))
            })
            .collect::<Vec<_>>();
        let slots = backends
            .into_iter()
            .zip(rotation)
            .map(|(backend, rotation)| Slot {
                header: http::HeaderValue::from_str(&backend.name).ok(),
                backend,
                health: Arc::new(Health::new(now)),
                rotation,
            })
            .collect();
        Failover {
            inner: Arc::new(Inner {
                budget: self
                    .policy
                    .budget
                    .map(|(ttl, min, pct)| TpsBudget::new(ttl, min, pct)),
                policy: self.policy.clone(),
                slots,
                turn: AtomicU64::new(0),
                seed: AtomicU64::new(std::hash::RandomState::new().hash_one(now)),
            }),
        }
    }
}
