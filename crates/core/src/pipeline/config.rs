//! The pipeline's limits as configuration data.

use std::time::Duration;

use super::{DEFAULT_DEADLINE, DEFAULT_MAX_REQUEST_BODY};

/// Pipeline-wide limits, as written in a configuration file (`[pipeline]`); applied with
/// [`PipelineBuilder::limits`](super::PipelineBuilder::limits).
///
/// With the `serde` feature (default) it deserializes; every field is optional and unknown
/// fields are errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct PipelineLimits {
    /// Bound on a buffered request body, in bytes (default 2 MiB); over it the answer is 413.
    pub max_request_body_bytes: usize,
    /// Overall deadline of one phase of the pipeline, in milliseconds (default 30000).
    pub deadline_ms: u64,
}

impl Default for PipelineLimits {
    fn default() -> Self {
        Self {
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY,
            deadline_ms: u64::try_from(DEFAULT_DEADLINE.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl PipelineLimits {
    /// The deadline as a [`Duration`].
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}
