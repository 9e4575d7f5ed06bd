//! Where spend is kept: [`MemoryStore`] (one process) or `RedisStore` (shared by replicas,
//! one server or a Redis Cluster; feature `redis`). A store reserves on every budget of a
//! request at once, all or nothing, and applies later adjustments (the real cost minus the
//! reservation, in either direction).

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;

use async_trait::async_trait;

#[cfg(feature = "redis")]
pub use infergate_redis::RedisConfig;
pub use memory::{DEFAULT_MAX_KEYS, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::RedisStore;

use crate::Span;

/// One budget's part of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The store key (scoped and hashed: never a raw key or principal id).
    pub key: String,
    /// The limit, in the budget's unit (nano-dollars or tokens).
    pub limit: u64,
    /// What the request reserves (or, in an adjustment, is ignored).
    pub amount: u64,
    /// Where the spend is kept for the time of the request.
    pub span: Span,
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Whether every hold had room (and all were charged).
    pub admitted: bool,
    /// Each hold's spend: after the reservation when admitted, as it stands when not.
    pub spent: Vec<u64>,
    /// When not admitted: the first hold that had no room.
    pub refused: Option<usize>,
}

/// A store that could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed or is unreachable.
    #[error("the budget store is unavailable: {0}")]
    Unavailable(String),
    /// The store holds as many keys as it may.
    #[error("the budget store is full ({0} keys)")]
    Full(usize),
}

/// Keeps budget spend.
#[async_trait]
pub trait BudgetStore: Send + Sync + fmt::Debug + 'static {
    /// Charges every hold its `amount` if each has room (`spent + amount ≤ limit`); otherwise
    /// charges none.
    async fn reserve(&self, holds: &[Hold]) -> Result<Verdict, StoreError>;

    /// Adds each `delta` to its hold's spend, in the period (or slot) the hold was reserved in;
    /// a spend never goes below zero. An adjustment to a period that has ended is dropped.
    async fn adjust(&self, adjustments: &[(Hold, i64)]) -> Result<(), StoreError>;

    /// Each hold's spend now.
    async fn spent(&self, holds: &[Hold]) -> Result<Vec<u64>, StoreError>;
}
