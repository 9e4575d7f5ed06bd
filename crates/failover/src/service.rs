use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body as _, Frame};
use http_body_util::BodyExt;
use infergate_core::principal::restriction_text;
use infergate_core::trace::RequestTrace;
use infergate_core::{Body, Principal, RejectKind, Rejection};
use tower::ServiceExt;
use tower::retry::budget::{Budget, TpsBudget};

use crate::backend::Backend;
use crate::body::Peeked;
use crate::health::{Availability, Health, InFlight, Verdict};
use crate::policy::{FailoverPolicy, Selection, WhenAllResting};

/// The request header counting gateway hops.
pub const HOPS_HEADER: &str = "x-infergate-hops";
/// The response header naming the backend that answered (or failed last).
pub const BACKEND_HEADER: &str = "x-infergate-backend";
/// The response header counting the attempts made.
pub const ATTEMPTS_HEADER: &str = "x-infergate-attempts";

const HOPS: HeaderName = HeaderName::from_static(HOPS_HEADER);
const BACKEND: HeaderName = HeaderName::from_static(BACKEND_HEADER);
const ATTEMPTS: HeaderName = HeaderName::from_static(ATTEMPTS_HEADER);

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) backend: Backend,
    pub(crate) health: Arc<Health>,
    /// Where its share of its tier's weight starts, and the tier's total weight.
    pub(crate) rotation: (u64, u64),
    /// Its name as a header value (`None` if it cannot be one).
    pub(crate) header: Option<HeaderValue>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) policy: FailoverPolicy,
    pub(crate) slots: Vec<Slot>,
    pub(crate) turn: AtomicU64,
    pub(crate) budget: Option<TpsBudget>,
    pub(crate) seed: AtomicU64,
}

/// The failover service (see the [crate docs](crate)).
#[derive(Debug, Clone)]
pub struct Failover {
    pub(crate) inner: Arc<Inner>,
}

/// One backend's state, for metrics and health endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendStatus {
    /// Its name.
    pub name: String,
    /// Its tier.
    pub tier: u32,
    /// How much longer it rests (`None`: it takes requests, or waits for its probe).
    pub resting_for: Option<Duration>,
    /// Ejections in a row since it last recovered.
    pub ejections: u32,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Requests in flight (streams count until they end).
    pub in_flight: usize,
}

impl Failover {
    /// Every backend's state, in configuration order.
    pub fn status(&self) -> Vec<BackendStatus> {
        let now = Instant::now();
        self.inner
            .slots
            .iter()
            .map(|s| {
                let (resting_for, ejections, consecutive_failures) = s.health.snapshot(now);
                BackendStatus {
                    name: s.backend.name.clone(),
                    tier: s.backend.tier,
                    resting_for,
                    ejections,
                    consecutive_failures,
                    in_flight: s.health.outstanding(),
                }
            })
            .collect()
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A response to pass on.
    Answer,
    /// A status the policy retries.
    Status,
    /// The connection could not be made.
    Connect,
    /// No head (or first frame) in time.
    Timeout,
    /// The connection broke before the first byte of the response.
    Reset,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Answer => "answer",
            Self::Status => "status",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
        }
    }
}

/// The longest rest [`retry_after`] reports: one day. A backend's rest is further bounded
/// by its [`HealthPolicy::max_ejection`](crate::HealthPolicy::max_ejection).
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(24 * 3600);

/// The rest a response asks for: its `Retry-After`, in seconds or as an HTTP date (a date
/// in the past is no rest), at most [`RETRY_AFTER_MAX`]. A value that is neither (negative,
/// fractional, garbage) is no rest.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let rest = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: seconds, however many (too many for a u64 is "very long").
        Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(v).ok()?;
        at.duration_since(SystemTime::now()).unwrap_or_default()
    };
    Some(rest.min(RETRY_AFTER_MAX))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn local(
    kind: RejectKind,
    status: StatusCode,
    code: &'static str,
    msg: &'static str,
) -> Response<Body> {
    Rejection::new(kind, msg)
        .with_status(status)
        .with_code(code)
        .into_response()
}

/// Why a request has no backend to try.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NoPlan {
    /// Every backend it may use rests; the first rest ends then.
    Resting(Instant),
    /// No backend is allowed by the restrictions that apply to it.
    NotAllowed,
}

/// The restrictions that apply to a request, as text (`deployment: region in [eu-west-1];
/// credential: region in [eu-*]`), or `None` when there are none. Label keys and value globs
/// only: never a credential.
pub(crate) fn restrictions_text(
    deployment: &std::collections::BTreeMap<String, Vec<String>>,
    principal: Option<&Principal>,
) -> Option<String> {
    let mut parts = Vec::new();
    if !deployment.is_empty() {
        parts.push(format!("deployment: {}", restriction_text(deployment)));
    }
    if let Some(p) = principal.filter(|p| !p.allowed_labels().is_empty()) {
        parts.push(format!(
            "credential: {}",
            restriction_text(p.allowed_labels())
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The answer when a request has no backend to try: 403 `backend_not_allowed` when none is
/// allowed by its restrictions, else 503 `no_backend_available` with a `Retry-After`.
pub(crate) fn no_plan_rejection(
    why: NoPlan,
    now: Instant,
    restrictions: Option<String>,
) -> Rejection {
    match why {
        NoPlan::NotAllowed => Rejection::new(
            RejectKind::Forbidden,
            format!(
                "no backend is allowed for this request by the restriction ({})",
                restrictions.as_deref().unwrap_or("none")
            ),
        )
        .with_status(StatusCode::FORBIDDEN)
        .with_code("backend_not_allowed"),
        NoPlan::Resting(soonest) => {
            let secs = soonest
                .saturating_duration_since(now)
                .as_secs()
                .saturating_add(1);
            let msg = match restrictions {
                Some(r) => std::borrow::Cow::Owned(format!(
                    "every backend allowed by the restriction ({r}) is resting after failures; \
                     the request is not sent elsewhere"
                )),
                None => std::borrow::Cow::Borrowed("every backend is resting after failures"),
            };
            Rejection::new(RejectKind::UpstreamUnavailable, msg)
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .with_code("no_backend_available")
                .with_header(http::header::RETRY_AFTER, HeaderValue::from(secs))
        }
    }
}

/// The backends one request may try, in order.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) order: Vec<usize>,
    /// From this position on the backends rest and are tried anyway (`TrySoonest`).
    pub(crate) forced_from: usize,
}

impl Inner {
    fn random(&self) -> u64 {
        splitmix(
            self.seed
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed),
        )
    }

    /// Whether a request made by `principal` (or without one) may go to this slot: the
    /// deployment's restrictions and the principal's allow its labels.
    fn allowed(&self, slot: &Slot, principal: Option<&Principal>) -> bool {
        let labels = &slot.backend.labels;
        infergate_core::principal::labels_allowed(&self.policy.restrictions, labels)
            && principal.is_none_or(|p| p.allows_labels(labels))
    }

    /// The backends a request made by `principal` may use (its restrictions and the
    /// deployment's allow them): healthy ones (and those due a probe) by tier, then by the
    /// selection rule; then, under `TrySoonest`, the resting ones by the end of their rest.
    /// `Err`: none to try — none allowed, or when the first rest of the allowed ones ends.
    pub(crate) fn plan(&self, now: Instant, principal: Option<&Principal>) -> Result<Plan, NoPlan> {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut order = Vec::with_capacity(self.slots.len());
        let mut resting = Vec::new();
        let mut any_allowed = false;
        for (i, s) in self.slots.iter().enumerate() {
            if !self.allowed(s, principal) {
                continue;
            }
            any_allowed = true;
            match s.health.availability(now) {
                Availability::Ready | Availability::Probe => order.push(i),
                Availability::Resting(until) => resting.push((until, i)),
            }
        }
        // Within a tier of total weight W, turn t leads with the backend whose share of 0..W
        // holds t mod W, then the ones after it: over W turns each leads as often as its weight.
        let rotation = |i: usize| {
            let s = &self.slots[i];
            let (start, total) = s.rotation;
            let pos = turn % total;
            (start + u64::from(s.backend.weight) - 1 + total - pos) % total
        };
        match self.policy.selection {
            Selection::LeastOutstanding => order.sort_by_cached_key(|&i| {
                (
                    self.slots[i].backend.tier,
                    self.slots[i].health.outstanding(),
                    rotation(i),
                )
            }),
            _ => order.sort_by_cached_key(|&i| (self.slots[i].backend.tier, rotation(i))),
        }
        let forced_from = order.len();
        match self.policy.when_all_resting {
            WhenAllResting::TrySoonest => {
                resting.sort_unstable();
                order.extend(resting.into_iter().map(|(_, i)| i));
            }
            _ if !any_allowed => return Err(NoPlan::NotAllowed),
            _ if order.is_empty() => {
                return Err(NoPlan::Resting(
                    resting.iter().map(|r| r.0).min().unwrap_or(now),
                ));
            }
            _ => {}
        }
        Ok(Plan { order, forced_from })
    }

    /// Runs one request through the backends.
    async fn run(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        let policy = &self.policy;
        let (parts, body) = req.into_parts();
        let mut parts = Box::new(parts);
        let hops = parts
            .headers
            .get(&HOPS)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if hops >= policy.max_hops {
            return local(
                RejectKind::LoopDetected,
                StatusCode::LOOP_DETECTED,
                "loop_detected",
                "the request has crossed too many gateways (a forwarding loop?)",
            );
        }
        parts.headers.insert(HOPS, HeaderValue::from(hops + 1));
        let start = Instant::now();
        // The principal an identity block put in the extensions restricts where this request
        // may go (with the deployment's restrictions): never elsewhere, even when those rest.
        let principal = Principal::from_extensions(&parts.extensions);
        let plan = match self.plan(start, principal) {
            Ok(plan) => plan,
            Err(why) => {
                let text = restrictions_text(&self.policy.restrictions, principal);
                if let Some(t) = &text {
                    tracing::warn!(restriction = %t, ?why, "no allowed backend to try");
                }
                return no_plan_rejection(why, start, text).into_response();
            }
        };
        // A deadline too far for the clock is no deadline.
        let deadline = policy.deadline.and_then(|d| start.checked_add(d));
        // A body that cannot be replayed (not buffered) gets one attempt.
        let max_attempts = if body.try_clone().is_some() {
            policy.max_attempts
        } else {
            1
        };
        if let Some(b) = &self.budget {
            b.deposit();
        }
        let mut body = Some(body);
        let mut tried = vec![0u32; self.slots.len()];
        let mut cursor = 0;
        let mut attempts = 0;
        // Boxed, like the request head below: they would make every request's future (moved
        // into its allocation) larger than the allocator's fast sizes.
        let mut last: Option<Box<(usize, Response<Body>)>> = None;
        let mut out_of_time = false;
        while attempts < max_attempts {
            if attempts > 0 && self.budget.as_ref().is_some_and(|b| !b.withdraw()) {
                tracing::warn!("retry budget spent; not trying another backend");
                break;
            }
            let now = Instant::now();
            let Some((i, mut flight)) = (0..plan.order.len()).find_map(|step| {
                let pos = (cursor + step) % plan.order.len();
                let i = plan.order[pos];
                let f = self.slots[i].health.begin(now, pos >= plan.forced_from)?;
                cursor += step + 1;
                Some((i, f))
            }) else {
                break;
            };
            if tried[i] > 0 {
                let wait = policy.backoff.wait(tried[i], self.random());
                if deadline.is_some_and(|d| now.checked_add(wait).is_none_or(|t| t >= d)) {
                    out_of_time = true;
                    break;
                }
                tokio::time::sleep(wait).await;
            }
            tried[i] += 1;
            attempts += 1;
            let this_body = if attempts < max_attempts {
                body.as_ref().and_then(Body::try_clone)
            } else {
                body.take()
            };
            let Some(this_body) = this_body else { break };
            let slot = &self.slots[i];
            let mut head = (*parts).clone();
            // A traced request: this attempt is a span of its own, sent upstream.
            let span = head
                .extensions
                .get::<RequestTrace>()
                .cloned()
                .map(|t| t.begin_attempt(&slot.backend.name, &mut head.headers));
            let this_body = slot.backend.rewrite_model(&mut head, this_body);
            let limit = match (policy.attempt_timeout, deadline) {
                (Some(per), Some(end)) => {
                    Some(per.min(end.saturating_duration_since(Instant::now())))
                }
                (per, end) => {
                    per.or_else(|| end.map(|end| end.saturating_duration_since(Instant::now())))
                }
            };
            // Boxed: it holds the backend's own future, which would otherwise make every
            // request's future (and each move of it) as large as the largest backend stack's.
            let attempt = Box::pin(attempt(
                slot.backend.service.clone(),
                Request::from_parts(head, this_body),
                &policy.retry_statuses,
            ));
            let (outcome, resp, held) = match limit {
                None => attempt.await,
                Some(limit) => tokio::time::timeout(limit, attempt)
                    .await
                    .unwrap_or_else(|_| {
                        (
                            Outcome::Timeout,
                            local(
                                RejectKind::UpstreamFailed,
                                StatusCode::GATEWAY_TIMEOUT,
                                "upstream_timeout",
                                "the upstream did not answer in time",
                            ),
                            VecDeque::new(),
                        )
                    }),
            };
            let name = &slot.backend.name;
            if let Some(span) = span {
                let upstream = matches!(outcome, Outcome::Answer | Outcome::Status);
                span.end(upstream.then(|| resp.status().as_u16()), outcome.as_str());
            }
            let retry = match outcome {
                Outcome::Answer => false,
                Outcome::Status => true,
                Outcome::Connect => policy.retry_connect,
                Outcome::Timeout => policy.retry_timeout,
                Outcome::Reset => policy.retry_reset,
            };
            let end = Instant::now();
            if outcome == Outcome::Answer {
                let verdict = if resp.status().is_server_error() {
                    Verdict::Failure { rest: None }
                } else {
                    Verdict::Success
                };
                flight.record(end, verdict, &policy.health);
                return finish(resp, slot, attempts, held, flight);
            }
            let rest = retry_after(resp.headers()).or_else(|| {
                policy
                    .cooldown_statuses
                    .contains(&resp.status())
                    .then_some(policy.default_cooldown)
            });
            let rested = flight.record(end, Verdict::Failure { rest }, &policy.health);
            tracing::warn!(backend = %name, status = %resp.status(), ?outcome, ?rested, "backend failed");
            if !retry {
                return mark(resp, slot, attempts);
            }
            last = Some(Box::new((i, resp)));
            if deadline.is_some_and(|d| end >= d) {
                out_of_time = true;
                break;
            }
        }
        if out_of_time {
            let mut r = local(
                RejectKind::DeadlineExceeded,
                StatusCode::GATEWAY_TIMEOUT,
                "deadline_exceeded",
                "no backend answered before the request's deadline",
            );
            r.headers_mut()
                .insert(ATTEMPTS, HeaderValue::from(attempts));
            return r;
        }
        match last.map(|b| *b) {
            Some((i, resp)) => mark(resp, &self.slots[i], attempts),
            None => local(
                RejectKind::UpstreamUnavailable,
                StatusCode::SERVICE_UNAVAILABLE,
                "no_backend_available",
                "no backend could take the request",
            ),
        }
    }
}

/// The most of a non-streamed answer held back until it is complete.
const HOLD_LIMIT: usize = 1 << 20;

/// One attempt: the response head, then, for an answer whose body may still break, its first
/// frame (streams) or all of it up to [`HOLD_LIMIT`] (other answers), held back and returned
/// with it.
async fn attempt(
    svc: crate::backend::Upstream,
    req: Request<Body>,
    retry_statuses: &[StatusCode],
) -> (Outcome, Response<Body>, VecDeque<Frame<Bytes>>) {
    let Ok(resp) = svc.oneshot(req).await;
    if let Some(rej) = resp.extensions().get::<Rejection>() {
        // The client's own failure: no upstream answer.
        let outcome = match rej.kind() {
            RejectKind::UpstreamUnavailable => Outcome::Connect,
            _ if rej.status() == StatusCode::GATEWAY_TIMEOUT => Outcome::Timeout,
            _ => Outcome::Reset,
        };
        return (outcome, resp, VecDeque::new());
    }
    if retry_statuses.contains(&resp.status()) {
        return (Outcome::Status, resp, VecDeque::new());
    }
    if resp.body().as_bytes().is_some() || resp.body().is_end_stream() {
        return (Outcome::Answer, resp, VecDeque::new());
    }
    let sse = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    let (head, mut body) = resp.into_parts();
    // A stream: its first frame. Any other answer: all of it, up to a bound (it is not sent
    // before it is complete anyway, and a body that breaks half-way can then fail over too).
    let mut frames = VecDeque::new();
    let mut held = 0;
    let mut complete = false;
    loop {
        match body.frame().await {
            None => {
                complete = true;
                break;
            }
            Some(Ok(frame)) => {
                held += frame.data_ref().map_or(0, Bytes::len);
                frames.push_back(frame);
                if sse || held >= HOLD_LIMIT {
                    break;
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, status = %head.status, "the upstream broke before the response was passed on");
                return (
                    Outcome::Reset,
                    local(
                        RejectKind::UpstreamFailed,
                        StatusCode::BAD_GATEWAY,
                        "upstream_error",
                        "the upstream connection broke before the response began",
                    ),
                    VecDeque::new(),
                );
            }
        }
    }
    if complete && frames.iter().all(Frame::is_data) {
        // The usual case, one frame: passed on as it is, no copy.
        if frames.len() == 1
            && let Some(Ok(data)) = frames.pop_front().map(Frame::into_data)
        {
            return (
                Outcome::Answer,
                Response::from_parts(head, Body::full(data)),
                VecDeque::new(),
            );
        }
        let mut all = BytesMut::with_capacity(held);
        for f in frames {
            if let Ok(d) = f.into_data() {
                all.extend_from_slice(&d);
            }
        }
        return (
            Outcome::Answer,
            Response::from_parts(head, Body::full(all.freeze())),
            VecDeque::new(),
        );
    }
    (Outcome::Answer, Response::from_parts(head, body), frames)
}

/// Marks the response with the backend and the attempts; a streamed answer gets its first
/// frame back in front and keeps the backend's in-flight count until it ends.
fn finish(
    resp: Response<Body>,
    slot: &Slot,
    attempts: usize,
    held: VecDeque<Frame<Bytes>>,
    flight: InFlight,
) -> Response<Body> {
    let resp = mark(resp, slot, attempts);
    if resp.body().as_bytes().is_some() {
        return resp;
    }
    resp.map(|rest| Body::new(Peeked::new(held, rest, flight)))
}

/// Names the backend and the number of attempts in the response's headers.
fn mark(mut resp: Response<Body>, slot: &Slot, attempts: usize) -> Response<Body> {
    if let Some(v) = &slot.header {
        resp.headers_mut().insert(BACKEND, v.clone());
    }
    resp.headers_mut()
        .insert(ATTEMPTS, HeaderValue::from(attempts));
    resp
}

impl tower::Service<Request<Body>> for Failover {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.run(req).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> Option<Duration> {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_str(v).ok()?);
        retry_after(&h)
    }

    #[test]
    fn retry_after_is_bounded_and_garbage_is_no_rest() {
        assert_eq!(with("120"), Some(Duration::from_secs(120)));
        assert_eq!(with(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(with("0"), Some(Duration::ZERO));
        // Huge numbers, within and beyond u64, are clamped instead of overflowing an Instant.
        assert_eq!(with("18446744073709551615"), Some(RETRY_AFTER_MAX));
        assert_eq!(with("99999999999999999999999999"), Some(RETRY_AFTER_MAX));
        assert_eq!(
            with(&(RETRY_AFTER_MAX.as_secs() + 1).to_string()),
            Some(RETRY_AFTER_MAX)
        );
        // Negative, fractional, signed, empty or non-numeric: no rest.
        for bad in [
            "-1",
            "-18446744073709551615",
            "1.5",
            "+5",
            "",
            "soon",
            "0x10",
            "1e9",
        ] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
        assert_eq!(retry_after(&http::HeaderMap::new()), None);
        // HTTP dates: the past is no rest, the far future is clamped.
        assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(with("Fri, 31 Dec 9999 23:59:59 GMT"), Some(RETRY_AFTER_MAX));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(600));
        let d = with(&soon).unwrap();
        assert!(d <= Duration::from_secs(600) && d >= Duration::from_secs(500));
        // Not a valid header string at all.
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
