//! What each processor's phase came to, and how long it took: recorded per request when a
//! processor asks for it ([`Processor::observes_stages`](super::Processor::observes_stages)),
//! for telemetry.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::error::{FailureClass, RejectKind};

/// Processor names, each kept once for the life of the process: a stage record carries a
/// `&'static str` (no reference count shared between threads on every request), and however
/// often pipelines are rebuilt, each distinct name is stored once.
static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// The process-wide copy of `name`.
pub(crate) fn intern(name: &str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(n);
    n
}

/// The phase a [`StageRecord`] is about.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StagePhase {
    /// The request phase.
    Request,
    /// The response-head phase.
    ResponseHead,
    /// The whole-body phase.
    ResponseBody,
    /// The stream phase (recorded only when a stream processor stops the stream).
    Stream,
}

impl StagePhase {
    /// A short name: `request`, `response_head`, `response_body`, `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::ResponseHead => "response_head",
            Self::ResponseBody => "response_body",
            Self::Stream => "stream",
        }
    }
}

/// What a processor's phase came to.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageOutcome {
    /// It let the request (or response) go on.
    Continued,
    /// It rejected, with this kind.
    Rejected(RejectKind),
    /// It answered (a cache hit) or replaced the response.
    Responded,
    /// It failed and was skipped (`FailOpen`).
    FailedOpen(FailureClass),
    /// It failed and its failure became the answer (`FailClosed`).
    FailedClosed(FailureClass),
}

impl StageOutcome {
    /// A short name: `continue`, `reject`, `respond`, `failed_open`, `failed_closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Continued => "continue",
            Self::Rejected(_) => "reject",
            Self::Responded => "respond",
            Self::FailedOpen(_) => "failed_open",
            Self::FailedClosed(_) => "failed_closed",
        }
    }
}

/// One processor's phase for one request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    /// The processor's name in the pipeline.
    pub processor: &'static str,
    /// The phase.
    pub phase: StagePhase,
    /// What it came to.
    pub outcome: StageOutcome,
    /// How long it took (wall time, timer included; zero for the stream phase).
    pub elapsed: Duration,
}

impl StageRecord {
    /// A record.
    pub fn new(
        processor: &'static str,
        phase: StagePhase,
        outcome: StageOutcome,
        elapsed: Duration,
    ) -> Self {
        Self {
            processor,
            phase,
            outcome,
            elapsed,
        }
    }
}
