//! Where bucket state lives: [`MemoryStore`] (one process) or `RedisStore` (shared by
//! replicas, feature `redis`). A store checks and reserves every bucket of a request at once,
//! all or nothing, and applies later adjustments (charges and refunds).

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::time::Duration;

use async_trait::async_trait;

pub use memory::{DEFAULT_MAX_KEYS, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreConfig};

use crate::gcra::Micros;

/// How a bucket refills.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketKind {
    /// `limit` units per `period`, refilled continuously (GCRA).
    Rate {
        /// Units per period.
        limit: u64,
        /// The period.
        period: Duration,
    },
    /// `limit` units per UTC day, reset at midnight.
    Daily {
        /// Units per day.
        limit: u64,
    },
}

impl BucketKind {
    /// The limit.
    pub fn limit(&self) -> u64 {
        match self {
            Self::Rate { limit, .. } | Self::Daily { limit } => *limit,
        }
    }

    pub(crate) fn period_micros(&self) -> Micros {
        match self {
            Self::Rate { period, .. } => u64::try_from(period.as_micros()).unwrap_or(u64::MAX),
            Self::Daily { .. } => crate::gcra::DAY,
        }
    }
}

/// One bucket of a request and the amount to take from (or give back to) it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The bucket's key (already scoped and hashed; never a raw API key).
    pub key: String,
    /// How it refills.
    pub kind: BucketKind,
    /// Units: positive to take, negative to give back (in adjustments).
    pub amount: i64,
}

/// The state of one bucket after a reservation, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    /// The limit.
    pub limit: u64,
    /// Units available now.
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset: Duration,
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Whether every bucket had room (and all were charged).
    pub admitted: bool,
    /// When not admitted: the first bucket that had no room.
    pub denied: Option<usize>,
    /// When not admitted: how long until it would fit; `None` if it never can (the request is
    /// larger than the bucket).
    pub retry_after: Option<Duration>,
    /// Every bucket's state, in the order of the charges.
    pub states: Vec<BucketState>,
}

/// A store failure (unreachable, timed out, a script error).
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store failed: {0}")]
pub struct StoreError(pub String);

/// Bucket state storage.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// Checks every charge and, only if all fit, applies all of them.
    async fn reserve(&self, charges: &[Charge]) -> Result<Reservation, StoreError>;

    /// Applies adjustments (real usage minus reservation): positive charges, negative refunds.
    async fn adjust(&self, adjustments: &[Charge]) -> Result<(), StoreError>;

    /// Applies adjustments synchronously if this store can (in-memory stores); `false` means
    /// the caller must use [`Store::adjust`]. Lets a stream settle from its synchronous end.
    fn adjust_now(&self, adjustments: &[Charge]) -> bool {
        let _ = adjustments;
        false
    }
}
