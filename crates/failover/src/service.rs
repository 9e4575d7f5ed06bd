use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderValue, Request, Response, StatusCode};
use infergate_core::{Body, RejectKind, Rejection};
use tower::retry::budget::{Budget, TpsBudget};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

/// The request header counting gateway hops.
pub const HOPS_HEADER: &str = "x-infergate-hops";

type Upstream = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// One backend: a name, a priority tier (lower first), a weight within its tier, and the
/// service that reaches it (with its own credentials layer, so each attempt is signed for it).
pub struct Backend {
    name: String,
    tier: u32,
    weight: u32,
    service: Upstream,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("tier", &self.tier)
            .field("weight", &self.weight)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend in tier 0 with weight 1.
    pub fn new<S>(name: impl Into<String>, service: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self {
            name: name.into(),
            tier: 0,
            weight: 1,
            service: BoxCloneSyncService::new(service),
        }
    }

    /// Its priority tier (lower is tried first).
    #[must_use]
    pub fn tier(mut self, tier: u32) -> Self {
        self.tier = tier;
        self
    }

    /// Its weight within its tier.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }
}

/// What triggers a retry elsewhere, and for how long a failing backend rests.
#[derive(Debug, Clone)]
#[must_use]
pub struct FailoverPolicy {
    retry_statuses: Vec<StatusCode>,
    max_attempts: usize,
    default_cooldown: Duration,
    max_hops: u32,
    attempt_timeout: Option<Duration>,
    budget: Option<(Duration, u32, f32)>,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        Self {
            retry_statuses: [429, 500, 502, 503, 504]
                .iter()
                .filter_map(|s| StatusCode::from_u16(*s).ok())
                .collect(),
            max_attempts: 3,
            default_cooldown: Duration::from_secs(30),
            max_hops: 3,
            attempt_timeout: None,
            budget: Some((Duration::from_secs(10), 10, 0.2)),
        }
    }
}

impl FailoverPolicy {
    /// The statuses that send a request to the next backend.
    pub fn retry_statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.retry_statuses = statuses.into_iter().collect();
        self
    }

    /// Attempts per request, the first included (default 3).
    pub fn max_attempts(mut self, n: usize) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The cooldown of a backend that failed without a `Retry-After` (default 30 s).
    pub fn default_cooldown(mut self, d: Duration) -> Self {
        self.default_cooldown = d;
        self
    }

    /// A limit on the time to each attempt's response head; past it the backend cools down and
    /// the next is tried (default: none beyond the client's own timeouts).
    pub fn attempt_timeout(mut self, d: Duration) -> Self {
        self.attempt_timeout = Some(d);
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
}

/// Configures failover; [`FailoverLayer::service_over`] builds the service over backends.
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
        Failover {
            inner: Arc::new(Inner {
                policy: self.policy.clone(),
                backends: backends
                    .into_iter()
                    .map(|b| (b, Mutex::new(None)))
                    .collect(),
                turn: AtomicU64::new(0),
                budget: self
                    .policy
                    .budget
                    .map(|(ttl, min, pct)| TpsBudget::new(ttl, min, pct)),
            }),
        }
    }
}

#[derive(Debug)]
struct Inner {
    policy: FailoverPolicy,
    /// Each backend and the end of its cooldown.
    backends: Vec<(Backend, Mutex<Option<Instant>>)>,
    turn: AtomicU64,
    budget: Option<TpsBudget>,
}

/// The failover service.
#[derive(Debug, Clone)]
pub struct Failover {
    inner: Arc<Inner>,
}

/// The cooldown a failed response asks for: its `Retry-After` (seconds or HTTP date).
fn retry_after(resp: &Response<Body>) -> Option<Duration> {
    let v = resp
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v.trim()).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

impl Inner {
    /// Backends to try, in order: healthy ones by tier, weighted rotation within a tier.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut idx: Vec<usize> = (0..self.backends.len())
            .filter(|&i| {
                self.backends[i]
                    .1
                    .lock()
                    .map_or(true, |c| c.is_none_or(|until| until <= now))
            })
            .collect();
        // Within a tier of total weight W, turn t picks the backend whose share of 0..W holds
        // t mod W, then the ones after it: over W turns each leads as often as its weight.
        idx.sort_by_key(|&i| {
            let b = &self.backends[i].0;
            let mut start = 0u64;
            let mut total = 0u64;
            for (j, (o, _)) in self.backends.iter().enumerate() {
                if o.tier == b.tier {
                    if j < i {
                        start += u64::from(o.weight);
                    }
                    total += u64::from(o.weight);
                }
            }
            let pos = turn % total;
            (
                b.tier,
                (start + u64::from(b.weight) - 1 + total - pos) % total,
            )
        });
        idx
    }

    fn cool(&self, i: usize, d: Duration) {
        if let Ok(mut c) = self.backends[i].1.lock() {
            *c = Some(Instant::now() + d);
        }
    }
}

impl Service<Request<Body>> for Failover {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let hops = parts
                .headers
                .get(HOPS_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok())
                .unwrap_or(0);
            if hops >= inner.policy.max_hops {
                return Ok(Rejection::new(
                    RejectKind::InvalidRequest,
                    "the request has crossed too many gateways (a forwarding loop?)",
                )
                .with_status(StatusCode::LOOP_DETECTED)
                .with_code("loop_detected")
                .into_response());
            }
            parts
                .headers
                .insert(HOPS_HEADER, HeaderValue::from(hops + 1));
            let order = inner.order();
            if order.is_empty() {
                return Ok(Rejection::new(
                    RejectKind::UpstreamFailed,
                    "every backend is cooling down after failures",
                )
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
                .with_code("no_backend_available")
                .into_response());
            }
            // A body that cannot be replayed (not buffered) gets one attempt.
            let replayable = body.try_clone().is_some();
            let attempts = if replayable {
                inner.policy.max_attempts.min(order.len())
            } else {
                1
            };
            let mut body = Some(body);
            let mut last = None;
            if let Some(b) = &inner.budget {
                b.deposit();
            }
            for (n, &i) in order.iter().take(attempts).enumerate() {
                if n > 0 && inner.budget.as_ref().is_some_and(|b| !b.withdraw()) {
                    tracing::warn!("retry budget spent; not trying another backend");
                    break;
                }
                let this_body = if n + 1 < attempts {
                    body.as_ref().and_then(Body::try_clone)
                } else {
                    body.take()
                };
                let Some(b) = this_body else { break };
                let req = Request::from_parts(parts.clone(), b);
                let svc = inner.backends[i].0.service.clone();
                let name = &inner.backends[i].0.name;
                let timeout = inner.policy.attempt_timeout.unwrap_or(Duration::MAX);
                let Ok(Ok(mut resp)) = tokio::time::timeout(timeout, svc.oneshot(req)).await else {
                    tracing::warn!(backend = %name, ?timeout, "backend timed out; trying the next");
                    inner.cool(i, inner.policy.default_cooldown);
                    let mut r = Rejection::new(
                        RejectKind::UpstreamFailed,
                        "the upstream did not answer in time",
                    )
                    .with_status(StatusCode::GATEWAY_TIMEOUT)
                    .into_response();
                    r.headers_mut()
                        .insert("x-infergate-attempts", HeaderValue::from(n + 1));
                    last = Some(r);
                    continue;
                };
                if let Ok(v) = HeaderValue::from_str(name) {
                    resp.headers_mut().insert("x-infergate-backend", v);
                }
                resp.headers_mut()
                    .insert("x-infergate-attempts", HeaderValue::from(n + 1));
                if !inner.policy.retry_statuses.contains(&resp.status()) {
                    return Ok(resp);
                }
                let cooldown = retry_after(&resp).unwrap_or(inner.policy.default_cooldown);
                tracing::warn!(backend = %name, status = %resp.status(), ?cooldown, "backend failed; trying the next");
                inner.cool(i, cooldown);
                last = Some(resp);
            }
            Ok(last.unwrap_or_else(|| {
                Rejection::new(RejectKind::UpstreamFailed, "no backend answered")
                    .with_status(StatusCode::BAD_GATEWAY)
                    .into_response()
            }))
        })
    }
}
