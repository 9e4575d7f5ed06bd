//! The gateway: `/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/messages`,
//! `/v1/models` and `/healthz`, each through the same infergate pipeline in front of its
//! backend, served by plain hyper 1 with a small exact-path router.
//!
//! (An axum `Router` works as well — every infergate service mounts with `route_service` — but
//! in the load benchmark its routing and body boxing cost about 4 µs of CPU per request, more
//! than the whole pipeline; see docs/benchmarks.md.)

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use infergate::client::{UpstreamClient, UpstreamClientBuilder};
use infergate::core::egress::Dispatch;
use infergate::core::{
    Body, Pipeline, PipelineBody, PipelineLayer, PipelineService, RejectKind, Rejection,
};
use infergate::mock::MockProvider;
use tower::{Layer, Service};

use infergate::budget::{BudgetLimiter, Limit, Usd};
use infergate::cache::Cache;
use infergate::core::Principal;
use infergate::failover::{Failover, FailoverLayer, Restricted};
use infergate::guardrail::{Action, Check, Detector, Guardrail};
use infergate::identity::Identity;
use infergate::observe::Telemetry;
use infergate::ratelimit::TokenRateLimiter;
use infergate::router::EmbedderKind;

use crate::config::{BackendConfig, Config, ConfigError, ServerConfig, TlsMinVersion};

/// The service behind one route: the pipeline in front of the backends.
type Proxy = PipelineService<Dispatch>;

/// What serves a path: the pipeline in front of the backends, or a local endpoint behind the
/// identity check.
#[derive(Clone, Debug)]
enum Route {
    Proxy(Proxy),
    Local(PipelineService<BudgetStatusService>),
}

/// A boxed response future (local endpoints, 404, health).
type Boxed = Pin<Box<dyn Future<Output = Result<http::Response<GatewayBody>, Infallible>> + Send>>;

/// One backend (its client, behind its provider credentials when it has some) or a failover
/// group over several.
pub use infergate::core::egress::Upstream;

/// The response body of the gateway: a pipeline's, or a small local one (health, 404).
pub type GatewayBody = Either<PipelineBody<Body>, Full<Bytes>>;

/// The gateway's root service: dispatches by exact path.
#[derive(Clone, Debug)]
pub struct GatewayService {
    routes: Arc<BTreeMap<&'static str, Route>>,
}

/// A gateway ready to serve, with the mock provider it embeds (if any) kept alive.
#[derive(Debug)]
pub struct Gateway {
    /// The root service.
    pub service: GatewayService,
    /// The embedded mock provider, when a backend's URL is `mock` or there is no config.
    pub mock: Option<MockProvider>,
    /// The embedded mocks of `mock:NAME` backends, by NAME.
    pub named_mocks: BTreeMap<String, MockProvider>,
    /// The failover groups, by name (for their backends' health).
    pub failover: BTreeMap<String, Failover>,
    /// The budget limiter, when `[budgets]` is set.
    pub budget: Option<BudgetLimiter>,
    /// Telemetry, when `[telemetry]` is set (or given to [`build_with`]).
    pub telemetry: Option<Telemetry>,
    /// Where [`spawn_local`] serves the admin endpoints (`GET /metrics`), when there is
    /// telemetry.
    pub admin_addr: Option<std::net::SocketAddr>,
}

/// The config used when no file is given: one backend, the embedded mock provider.
pub fn default_config() -> Config {
    let mut backends = BTreeMap::new();
    backends.insert(
        "mock".to_owned(),
        BackendConfig {
            url: "mock".into(),
            connect_timeout_ms: None,
            request_timeout_ms: None,
            auth: None,
            mock_failure: None,
            tls: None,
            http2: None,
            labels: BTreeMap::new(),
            protocol: None,
            vertex: None,
            lossy: Vec::new(),
        },
    );
    Config {
        backends,
        ..Config::default()
    }
}

/// Builds the gateway from a config (starting the embedded mock if a backend asks for it).
/// Each block is made by its own configuration type; what is here is the wiring: backends,
/// failover groups, restrictions, the pipeline's order, the routes.
pub async fn build(config: &Config) -> Result<Gateway, ConfigError> {
    build_with(config, None).await
}

/// The telemetry of `[telemetry]`: captured content (when opted in) has PII and secrets
/// redacted by the guardrail's detectors first.
pub fn telemetry_of(config: &Config) -> Result<Option<Telemetry>, ConfigError> {
    let Some(section) = &config.telemetry else {
        return Ok(None);
    };
    let cfg = section.config(&config.backends)?;
    let pii = Check::new("pii", Detector::pii(), Action::Redact);
    let secrets = Check::new("secrets", Detector::Secrets, Action::Redact);
    Telemetry::builder(cfg)
        .redactor(move |text| secrets.redact(&pii.redact(text)))
        .build()
        .map(Some)
        .map_err(|e| err("telemetry", e))
}

/// [`build`], with telemetry of one's own instead of `[telemetry]`'s (tests give one with
/// in-memory exporters).
pub async fn build_with(
    config: &Config,
    telemetry: Option<Telemetry>,
) -> Result<Gateway, ConfigError> {
    let telemetry = match telemetry {
        Some(t) => Some(t),
        None => telemetry_of(config)?,
    };
    let mut mock: Option<MockProvider> = None;
    let mut named_mocks: BTreeMap<String, MockProvider> = BTreeMap::new();
    let start_mock = || async {
        MockProvider::builder()
            .record(false)
            .start()
            .await
            .map_err(|e| ConfigError::Routes(format!("cannot start the mock provider: {e}")))
    };
    let mut clients: BTreeMap<String, Upstream> = BTreeMap::new();
    for (name, b) in &config.backends {
        let embedded = if b.url == "mock" {
            if mock.is_none() {
                mock = Some(start_mock().await?);
            }
            mock.as_ref()
        } else if let Some(mock_name) = b.url.strip_prefix("mock:") {
            if !named_mocks.contains_key(mock_name) {
                named_mocks.insert(mock_name.to_owned(), start_mock().await?);
            }
            named_mocks.get(mock_name)
        } else {
            None
        };
        if let (Some(m), Some(f)) = (embedded, &b.mock_failure) {
            m.set_always_fail(infergate::mock::Failure::parse(f));
        }
        let url = embedded.map_or_else(|| b.url.clone(), MockProvider::url);
        let upstream = client(b)
            .map_err(|e| err(format!("backends.{name}.tls"), e))?
            .build(&url)
            .map_err(|e| err(format!("backend '{name}'"), e))?
            .into_proxy();
        let upstream = match &b.auth {
            Some(a) => Upstream::new(
                a.layer(&url)
                    .map_err(|e| err(format!("backend '{name}' auth"), e))?
                    .layer(upstream),
            ),
            None => Upstream::new(upstream),
        };
        // Translation sits above the credentials (a SigV4 signature covers the translated
        // body) and below failover (each attempt is translated for its own backend).
        let upstream = match b.protocol {
            Some(p) => {
                let target = infergate::translate::layer::Target::from_config(p, b.vertex.as_ref())
                    .map_err(|e| err(format!("backends.{name}.protocol"), e))?;
                let mut opts = infergate::translate::Options::default();
                if b.lossy.iter().any(|f| f == "*") {
                    opts.lossy_all = true;
                } else {
                    opts = opts.allow_lossy(b.lossy.iter().cloned());
                }
                Upstream::new(
                    infergate::translate::layer::TranslateLayer::with_options(target, opts)
                        .layer(upstream),
                )
            }
            None => upstream,
        };
        // Which backend answered, for a route to one backend as failover groups say it.
        let upstream = match http::HeaderValue::from_str(name) {
            Ok(v) => Upstream::new(tower::ServiceExt::map_response(
                upstream,
                move |mut r: http::Response<infergate::core::Body>| {
                    r.headers_mut()
                        .entry(infergate::failover::BACKEND_HEADER)
                        .or_insert_with(|| v.clone());
                    r
                },
            )),
            Err(_) => upstream,
        };
        clients.insert(name.clone(), upstream);
    }
    let labels = |name: &str| {
        config
            .backends
            .get(name)
            .map(|b| b.labels.clone())
            .unwrap_or_default()
    };
    let mut groups = BTreeMap::new();
    for (name, g) in &config.failover {
        let members = g.members.iter().filter_map(|m| {
            let backend = m.backend(clients.get(&m.backend)?.clone());
            Some(
                labels(&m.backend)
                    .into_iter()
                    .fold(backend, |b, (k, v)| b.label(k, v)),
            )
        });
        let policy = config
            .restrictions
            .iter()
            .fold(g.policy(), |p, (k, vs)| p.restrict(k.clone(), vs.clone()));
        groups.insert(
            name.clone(),
            FailoverLayer::new(policy).service_over(members.collect()),
        );
    }
    // A route to a single backend keeps to the restrictions too (403 backend_not_allowed:
    // the request is never sent elsewhere); failover groups filter their members themselves.
    // Without identity (no principal) and without `[restrictions]` nothing can be restricted.
    let restricting = config.identity.is_some() || !config.restrictions.is_empty();
    for (name, upstream) in clients.iter_mut().filter(|_| restricting) {
        let r = labels(name)
            .into_iter()
            .fold(Restricted::new(upstream.clone()), |r, (k, v)| r.label(k, v));
        let r = config
            .restrictions
            .iter()
            .fold(r, |r, (k, vs)| r.restrict(k.clone(), vs.clone()));
        *upstream = Upstream::new(r);
    }
    for (name, f) in &groups {
        clients.insert(name.clone(), Upstream::new(f.clone()));
    }

    let deadline = config.pipeline.deadline();
    let body_timeout = config
        .server
        .body_read_timeout_ms
        .map_or(deadline, Duration::from_millis);
    let mut pipeline = Pipeline::builder()
        .limits(&config.pipeline)
        .body_read_timeout(Some(body_timeout.min(deadline)));
    // Telemetry first of all: it sees every request, those a later block refuses included,
    // and every answer as the client gets it.
    if let Some(t) = &telemetry {
        pipeline = pipeline.processor(t.processor());
    }
    let mock_url = mock.as_ref().map(MockProvider::url);
    // Identity first: every later block keys off the principal it puts in the extensions
    // (cache tenant, rate-limit buckets, the router's allowed models), never off what the
    // client writes.
    let identity = match &config.identity {
        Some(i) => Some(
            Identity::from_config(i)
                .await
                .map_err(|e| err("identity", e))?,
        ),
        None => None,
    };
    if let Some(i) = &identity {
        pipeline = pipeline.processor(i.clone());
    }
    // Then the router: the rate limiter's per-model limits and token counts then apply to
    // the model that will really be asked. It never picks a backend a request may not go to:
    // it knows the backends' labels (a group's: each member's) and the restrictions.
    if let Some(r) = &config.router {
        let mut spec = r.clone();
        if spec.embedder == EmbedderKind::Openai
            && spec.embedder_url.as_deref().is_none_or(|u| u == "mock")
        {
            spec.embedder_url =
                Some(mock_url.clone().ok_or_else(|| {
                    err("router", "embedder_url = \"mock\" needs a mock backend")
                })?);
        }
        let mut cfg = spec.config().map_err(|e| err("router", e))?;
        for name in config.backends.keys().chain(config.failover.keys()) {
            for l in config.labels_of(name) {
                cfg = cfg.backend_labels(name.clone(), l.clone());
            }
        }
        let cfg = config
            .restrictions
            .iter()
            .fold(cfg, |c, (k, vs)| c.restrict(k.clone(), vs.clone()));
        pipeline = pipeline.processor(spec.build(cfg).await.map_err(|e| err("router", e))?);
    }
    // Then the guardrail (every request is checked, hits included: a similar request must not
    // slip past it through a semantic hit), the cache (a hit answers here), and the rate
    // limiter last (a hit spends no provider tokens; a blocked request none either).
    if let Some(g) = &config.guardrail {
        let mut spec = g.clone();
        for m in spec.moderations.iter_mut().filter(|m| m.url == "mock") {
            m.url = mock_url.clone().ok_or_else(|| {
                err(
                    format!("moderation '{}'", m.name),
                    "no mock provider is running",
                )
            })?;
        }
        pipeline = pipeline.processor(Guardrail::new(
            spec.build().map_err(|e| err("guardrail", e))?,
        ));
    }
    if let Some(c) = &config.cache {
        let (cache, calibration) = c.build_calibrated().await.map_err(|e| err("cache", e))?;
        if let Some(cal) = calibration {
            tracing::info!(
                threshold = cal.threshold,
                hit_rate = cal.hit_rate,
                false_hit_rate = cal.false_hit_rate,
                same_pairs = cal.same_pairs,
                other_pairs = cal.other_pairs,
                "semantic cache threshold calibrated"
            );
        }
        pipeline = pipeline.processor(Cache::new(cache));
    }
    // Budgets after the cache (a hit costs nothing) and before the rate limiter (a request the
    // budget refuses takes no rate-limit tokens; one the limiter refuses gets its budget
    // reservation back).
    let budget = match &config.budgets {
        Some(b) => Some(b.build().map_err(|e| err("budgets", e))?),
        None => None,
    };
    if let Some(b) = &budget {
        pipeline = pipeline.processor(b.clone());
    }
    if let Some(rl) = &config.ratelimit {
        pipeline = pipeline.processor(TokenRateLimiter::new(
            rl.build().map_err(|e| err("ratelimit", e))?,
        ));
    }
    let layer = PipelineLayer::new(pipeline.build());

    let proxies: Arc<BTreeMap<String, Upstream>> = Arc::new(clients.clone());
    let mut routes = BTreeMap::new();
    let table: [(&[&'static str], Option<&String>); 3] = [
        (
            &["/v1/chat/completions", "/v1/responses", "/v1/models"],
            config.routes.chat.as_ref(),
        ),
        (&["/v1/embeddings"], config.routes.embeddings.as_ref()),
        (&["/v1/messages"], config.routes.messages.as_ref()),
    ];
    for (paths, route) in table {
        let Some(upstream) = config.backend_for(route).and_then(|b| clients.get(&b)) else {
            continue;
        };
        let svc = layer.layer(Dispatch::with_backends(upstream.clone(), proxies.clone()));
        for path in paths {
            routes.insert(*path, Route::Proxy(svc.clone()));
        }
    }
    // A principal's own spend: behind the identity check (without identity there is no one
    // to show it to).
    if let (Some(b), Some(i)) = (&budget, &identity) {
        let check = Pipeline::builder()
            .limits(&config.pipeline)
            .processor(i.clone())
            .build();
        routes.insert(
            BUDGET_STATUS_PATH,
            Route::Local(PipelineLayer::new(check).layer(BudgetStatusService(b.clone()))),
        );
    }
    Ok(Gateway {
        service: GatewayService {
            routes: Arc::new(routes),
        },
        mock,
        named_mocks,
        failover: groups,
        budget,
        telemetry,
        admin_addr: None,
    })
}

/// `GET /v1/infergate/budget`: the calling principal's budgets — limit, spent, remaining and
/// when each resets (see `docs/budgets.md`).
pub const BUDGET_STATUS_PATH: &str = "/v1/infergate/budget";

/// Answers [`BUDGET_STATUS_PATH`] for the principal the identity check found.
#[derive(Clone, Debug)]
pub struct BudgetStatusService(BudgetLimiter);

impl Service<http::Request<Body>> for BudgetStatusService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let limiter = self.0.clone();
        Box::pin(async move {
            let fail = |r: Rejection| Ok(r.into_response::<Body>());
            if req.method() != http::Method::GET {
                return fail(
                    Rejection::new(RejectKind::InvalidRequest, "use GET")
                        .with_status(http::StatusCode::METHOD_NOT_ALLOWED),
                );
            }
            let Some(p) = Principal::from_extensions(req.extensions()).cloned() else {
                return fail(Rejection::new(RejectKind::Unauthorized, "no principal"));
            };
            let Ok(status) = limiter.status(&p).await else {
                return fail(Rejection::new(
                    RejectKind::ExternalServiceFailed,
                    "the budget store is unavailable",
                ));
            };
            let budgets: Vec<serde_json::Value> = status
                .iter()
                .map(|s| {
                    let amount = |n: u64| match s.limit {
                        Limit::Usd(_) => serde_json::json!(Usd::from_nanos(n).to_string()),
                        _ => serde_json::json!(n),
                    };
                    let resets = s
                        .resets_at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    serde_json::json!({
                        "name": s.budget,
                        "unit": if matches!(s.limit, Limit::Usd(_)) { "usd" } else { "tokens" },
                        "limit": amount(s.limit.units()),
                        "spent": amount(s.spent),
                        "remaining": amount(s.remaining()),
                        "resets_at": resets,
                    })
                })
                .collect();
            let body = serde_json::json!({
                "object": "budget.status",
                "principal": p.id(),
                "tenant": p.tenant(),
                "budgets": budgets,
            });
            let mut resp = http::Response::new(Body::from(body.to_string()));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        })
    }
}

/// A configuration error: what, and why.
fn err(what: impl std::fmt::Display, why: impl std::fmt::Display) -> ConfigError {
    ConfigError::Routes(format!("{what}: {why}"))
}

/// A backend's client builder: its timeouts, HTTP/2 and TLS settings.
fn client(b: &BackendConfig) -> Result<UpstreamClientBuilder, String> {
    let mut builder = UpstreamClient::builder();
    if let Some(ms) = b.connect_timeout_ms {
        builder = builder.connect_timeout(Duration::from_millis(ms));
    }
    match b.request_timeout_ms {
        Some(0) => builder = builder.no_request_timeout(),
        Some(ms) => builder = builder.request_timeout(Duration::from_millis(ms)),
        None => {}
    }
    if b.http2 == Some(true) {
        builder = builder.http2_prior_knowledge(true);
    }
    let Some(t) = &b.tls else {
        return Ok(builder);
    };
    for ca in &t.ca_files {
        builder = builder.tls_ca_file(ca);
    }
    if let Some(yes) = t.web_pki_roots {
        builder = builder.tls_web_pki_roots(yes);
    }
    match (&t.client_cert_file, &t.client_key_file) {
        (Some(cert), Some(key)) => builder = builder.tls_client_cert_files(cert, key),
        (None, None) => {}
        _ => return Err("client_cert_file and client_key_file go together".to_owned()),
    }
    if let Some(n) = &t.server_name {
        builder = builder.tls_server_name(n.clone());
    }
    if t.min_version == Some(TlsMinVersion::Tls13) {
        builder = builder.tls_min_version(infergate::client::TlsVersion::Tls13);
    }
    Ok(builder)
}

impl Service<http::Request<Incoming>> for GatewayService {
    type Response = http::Response<GatewayBody>;
    type Error = Infallible;
    type Future = futures_util::future::Either<
        MapLeft<<Proxy as Service<http::Request<Incoming>>>::Future>,
        Boxed,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        let path = req.uri().path();
        match self.routes.get(path) {
            // Routes are always ready (the proxy never applies backpressure), so calling a
            // clone without poll_ready is sound here.
            Some(Route::Proxy(route)) => {
                let mut route = route.clone();
                return futures_util::future::Either::Left(MapLeft(route.call(req)));
            }
            Some(Route::Local(route)) => {
                let mut route = route.clone();
                return futures_util::future::Either::Right(Box::pin(async move {
                    route.call(req).await.map(|r| r.map(Either::Left))
                }));
            }
            None => {}
        }
        let resp = if path == "/healthz" {
            let mut r = http::Response::new(Either::Right(Full::new(Bytes::from_static(b"ok"))));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain"),
            );
            r
        } else {
            Rejection::new(RejectKind::InvalidRequest, format!("no route for {path}"))
                .with_status(http::StatusCode::NOT_FOUND)
                .with_code("not_found")
                .into_response::<Full<Bytes>>()
                .map(Either::Right)
        };
        futures_util::future::Either::Right(Box::pin(std::future::ready(Ok(resp))))
    }
}

/// Maps a route's response into the gateway's body type.
pub struct MapLeft<F>(F);

impl<F> std::fmt::Debug for MapLeft<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MapLeft")
    }
}

impl<F> Future for MapLeft<F>
where
    F: Future<Output = Result<http::Response<PipelineBody<Body>>, Infallible>> + Unpin,
{
    type Output = Result<http::Response<GatewayBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map(|resp| resp.map(Either::Left)))
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` completes: `GET /metrics` (the
/// Prometheus text format, every finished request included) and `GET /healthz`. Meant for a
/// loopback or internal address: it has no authentication.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    telemetry: Telemetry,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let t = telemetry.clone();
        let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let t = t.clone();
            async move {
                let resp = match (req.method(), req.uri().path()) {
                    (&http::Method::GET, "/metrics") => {
                        t.caught_up().await;
                        let mut r =
                            http::Response::new(Full::new(Bytes::from(t.prometheus_text())));
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static(
                                infergate::observe::PROMETHEUS_CONTENT_TYPE,
                            ),
                        );
                        r
                    }
                    (&http::Method::GET, "/healthz") => {
                        http::Response::new(Full::new(Bytes::from_static(b"ok\n")))
                    }
                    _ => {
                        let mut r = http::Response::new(Full::new(Bytes::from_static(
                            b"not found: GET /metrics or /healthz\n",
                        )));
                        *r.status_mut() = http::StatusCode::NOT_FOUND;
                        r
                    }
                };
                Ok::<_, Infallible>(resp)
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Serves `service` on `listener` with the default [`ServerConfig`] until `shutdown`
/// completes, then drains open connections for up to 10 s.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: GatewayService,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, service, &ServerConfig::default(), shutdown).await
}

/// Builds the gateway from `config` and serves it on a loopback port of its own, in a task of
/// the current runtime (its server settings apply), until the runtime ends: for tests and demos.
/// Returns the address and the gateway (its embedded mocks stay alive as long as it does).
pub async fn spawn_local(config: &Config) -> Result<(std::net::SocketAddr, Gateway), ConfigError> {
    spawn_local_with(config, None).await
}

/// [`spawn_local`] with telemetry of one's own (see [`build_with`]); the admin endpoints are
/// served on a loopback port of their own ([`Gateway::admin_addr`]).
pub async fn spawn_local_with(
    config: &Config,
    telemetry: Option<Telemetry>,
) -> Result<(std::net::SocketAddr, Gateway), ConfigError> {
    let mut gw = build_with(config, telemetry).await?;
    if let Some(t) = &gw.telemetry {
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ConfigError::Routes(format!("cannot listen on loopback: {e}")))?;
        gw.admin_addr = admin.local_addr().ok();
        tokio::spawn(serve_admin(admin, t.clone(), std::future::pending()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| ConfigError::Routes(format!("cannot listen on loopback: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConfigError::Routes(e.to_string()))?;
    let service = gw.service.clone();
    let server = config.server.clone();
    tokio::spawn(
        async move { serve_with(listener, service, &server, std::future::pending()).await },
    );
    Ok((addr, gw))
}

/// Serves `service` on `listener` until `shutdown` completes, guarded by `server`: a header
/// read timeout (which also closes idle kept-alive connections), a cap on concurrent
/// connections (more wait to be accepted), a bound on header size, HTTP/2 stream and header
/// list limits with keep-alive pings, and a back-off when accepting fails (out of file
/// descriptors). Then drains open connections for up to 10 s.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    service: GatewayService,
    server: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let header_timeout = Duration::from_millis(server.header_read_timeout_ms.max(1));
    let ping = Duration::from_millis(server.http2_keep_alive_ms.max(1));
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(server.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(server.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(server.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(ping)
        .keep_alive_timeout(ping);
    let permits = Arc::new(tokio::sync::Semaphore::new(server.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);
    loop {
        // At the connection cap, wait for one to close before accepting more.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(5);
                    a
                }
                Err(e) => {
                    // Out of descriptors or memory: retrying at once would spin.
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = builder
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(service.clone()),
            )
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}
