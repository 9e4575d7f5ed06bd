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
use infergate::client::UpstreamClient;
use infergate::core::egress::Dispatch;
use infergate::core::{
    Body, Pipeline, PipelineBody, PipelineLayer, PipelineService, RejectKind, Rejection,
};
use infergate::mock::MockProvider;
use tower::{Layer, Service};

use infergate::ratelimit::{
    KeyExtractor, RateLimitConfig, RedisStore, RedisStoreConfig, TokenRateLimiter,
};

use infergate::guardrail::detect::{DEFAULT_INJECTION_THRESHOLD, DenyList, EntityKind, RegexList};
use infergate::guardrail::{
    Action, Applies, Check, Detector, Guardrail, GuardrailConfig, Moderation, OpenAiModerator,
    WebhookModerator,
};

use infergate::auth::{
    AwsCredentialSource, AwsCredentials, CachedToken, EntraClientCredentials, KeySource, Keys,
    MetadataServer, Provider, ProviderAuthLayer, Secret, ServiceAccount, SigV4Options,
};
use infergate::cache::{Cache, CacheConfig, MemoryStore, SemanticConfig, TenantScope};
use infergate::embed::{CachedEmbedder, Embedder, HashEmbedder, OpenAiEmbedder};
use infergate::failover::{
    Backend, Backoff, Failover, FailoverLayer, FailoverPolicy, HealthPolicy, Restricted, Selection,
    WhenAllResting,
};
use infergate::identity::Identity;
use infergate::router::{Match, QueryText, Router, RouterConfig, SemanticRoute, Target};

use crate::config::{
    AuthSection, BackendConfig, CacheSection, CheckSection, Config, ConfigError, FailoverSection,
    GuardrailSection, ModerationSection, RateLimitSection, RouterSection, ServerConfig,
};

/// The service behind one route: the pipeline in front of the backends.
type Route = PipelineService<Dispatch>;

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
        },
    );
    Config {
        backends,
        ..Config::default()
    }
}

/// Builds the gateway from a config (starting the embedded mock if a backend asks for it).
pub async fn build(config: &Config) -> Result<Gateway, ConfigError> {
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
        if let Some(t) = &b.tls {
            builder = tls_options(builder, t)
                .map_err(|e| ConfigError::Routes(format!("backends.{name}.tls: {e}")))?;
        }
        let upstream = builder
            .build(&url)
            .map_err(|e| ConfigError::Routes(format!("backend '{name}': {e}")))?;
        let upstream: Upstream = match &b.auth {
            Some(a) => Upstream::new(
                provider_auth(a, &url)
                    .map_err(|e| ConfigError::Routes(format!("backend '{name}' auth: {e}")))?
                    .layer(upstream.into_proxy()),
            ),
            None => Upstream::new(upstream.into_proxy()),
        };
        clients.insert(name.clone(), upstream);
    }
    let mut groups = BTreeMap::new();
    for (name, g) in &config.failover {
        let members = g
            .members
            .iter()
            .filter_map(|m| {
                let svc = clients.get(&m.backend)?.clone();
                let mut b = Backend::new(m.backend.clone(), svc)
                    .tier(m.tier.unwrap_or(0))
                    .weight(m.weight.unwrap_or(1));
                if let Some(model) = &m.model {
                    b = b.model(model.clone());
                }
                for (k, v) in config
                    .backends
                    .get(&m.backend)
                    .map(|c| &c.labels)
                    .into_iter()
                    .flatten()
                {
                    b = b.label(k.clone(), v.clone());
                }
                for (from, to) in &m.models {
                    b = b.map_model(from.clone(), to.clone());
                }
                Some(b)
            })
            .collect();
        let mut policy = failover_policy(g);
        for (k, vs) in &config.restrictions {
            policy = policy.restrict(k.clone(), vs.clone());
        }
        let failover = FailoverLayer::new(policy).service_over(members);
        groups.insert(name.clone(), failover);
    }
    // A route to a single backend keeps to the restrictions too (403 backend_not_allowed:
    // the request is never sent elsewhere); failover groups filter their members themselves.
    // Without identity (no principal) and without `[restrictions]` nothing can be restricted.
    let restricting = config.identity.is_some() || !config.restrictions.is_empty();
    for (name, upstream) in clients.iter_mut().filter(|_| restricting) {
        let mut r = Restricted::new(upstream.clone());
        for (k, v) in config
            .backends
            .get(name)
            .map(|c| &c.labels)
            .into_iter()
            .flatten()
        {
            r = r.label(k.clone(), v.clone());
        }
        for (k, vs) in &config.restrictions {
            r = r.restrict(k.clone(), vs.clone());
        }
        *upstream = Upstream::new(r);
    }
    for (name, f) in &groups {
        clients.insert(name.clone(), Upstream::new(f.clone()));
    }

    let deadline = Duration::from_millis(config.pipeline.deadline_ms);
    let mut pipeline = Pipeline::builder()
        .max_request_body(config.pipeline.max_request_body_bytes)
        .deadline(Some(deadline))
        .body_read_timeout(Some(
            config
                .server
                .body_read_timeout_ms
                .map_or(deadline, Duration::from_millis)
                .min(deadline),
        ));
    // Identity first: every later block keys off the principal it puts in the extensions
    // (cache tenant, rate-limit buckets, the router's allowed models), never off what the
    // client writes.
    if let Some(i) = &config.identity {
        pipeline = pipeline.processor(
            Identity::from_config(i)
                .await
                .map_err(|e| ConfigError::Routes(format!("identity: {e}")))?,
        );
    }
    // Then the router: the rate limiter's per-model limits and token counts then apply to
    // the model that will really be asked.
    if let Some(r) = &config.router {
        let mock_url = mock.as_ref().map(MockProvider::url);
        pipeline = pipeline.processor(router(r, config, mock_url.as_deref()).await?);
    }
    // Then the guardrail (every request is checked, hits included: a similar request must not
    // slip past it through a semantic hit), the cache (a hit answers here), and the rate
    // limiter last (a hit spends no provider tokens; a blocked request none either).
    if let Some(g) = &config.guardrail {
        let mock_url = mock.as_ref().map(MockProvider::url);
        pipeline =
            pipeline.processor(guardrail(g, mock_url.as_deref()).map_err(ConfigError::Routes)?);
    }
    if let Some(c) = &config.cache {
        pipeline = pipeline.processor(cache(c)?);
    }
    if let Some(rl) = &config.ratelimit {
        pipeline = pipeline.processor(rate_limiter(rl)?);
    }
    let pipeline = pipeline.build();
    let layer = PipelineLayer::new(pipeline);

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
        let Some(backend) = config.backend_for(route) else {
            continue;
        };
        let Some(upstream) = clients.get(&backend) else {
            continue;
        };
        let svc = layer.layer(Dispatch::with_backends(upstream.clone(), proxies.clone()));
        for path in paths {
            routes.insert(*path, svc.clone());
        }
    }
    Ok(Gateway {
        service: GatewayService {
            routes: Arc::new(routes),
        },
        mock,
        named_mocks,
        failover: groups,
    })
}

/// The failover policy of a `[failover.NAME]` group.
fn failover_policy(g: &FailoverSection) -> FailoverPolicy {
    let ms = Duration::from_millis;
    let mut p = FailoverPolicy::default();
    if let Some(n) = g.max_attempts {
        p = p.max_attempts(n);
    }
    if let Some(t) = g.attempt_timeout_ms {
        p = p.attempt_timeout(ms(t));
    }
    if let Some(t) = g.deadline_ms {
        p = p.deadline(ms(t));
    }
    if let Some(t) = g.cooldown_ms {
        p = p.default_cooldown(ms(t));
    }
    if let Some(codes) = &g.retry_statuses {
        p = p.retry_statuses(
            codes
                .iter()
                .filter_map(|c| http::StatusCode::from_u16(*c).ok()),
        );
    }
    if g.selection.as_deref() == Some("least_outstanding") {
        p = p.selection(Selection::LeastOutstanding);
    }
    if g.when_all_resting.as_deref() == Some("try_soonest") {
        p = p.when_all_resting(WhenAllResting::TrySoonest);
    }
    if let Some(n) = g.max_hops {
        p = p.max_hops(n);
    }
    match g.retry_budget_percent {
        Some(pct) if pct <= 0.0 => p = p.retry_budget(None),
        Some(pct) => p = p.retry_budget(Some((Duration::from_secs(10), 10, pct))),
        None => {}
    }
    let mut health = HealthPolicy::default();
    if let Some(n) = g.consecutive_failures {
        health.consecutive_failures = n;
    }
    if let Some(rate) = g.error_rate {
        health.error_rate = (rate > 0.0).then_some(rate);
    }
    if let Some(t) = g.ejection_ms {
        health.base_ejection = ms(t);
    }
    if let Some(t) = g.max_ejection_ms {
        health.max_ejection = ms(t);
    }
    if let Some(t) = g.backoff_ms {
        p = p.backoff(Backoff {
            base: ms(t),
            max: ms(t.saturating_mul(40)),
        });
    }
    p.health(health)
}

/// One guardrail check from its config.
pub fn build_check(c: &CheckSection) -> Result<Check, String> {
    let err = |m: &str| format!("guardrail check '{}': {m}", c.name);
    let detector = match c.detector.as_str() {
        "pii" => {
            let mut kinds = Vec::new();
            for e in c.entities.iter().flatten() {
                let k = match e.as_str() {
                    "email" => EntityKind::Email,
                    "phone" => EntityKind::Phone,
                    "credit_card" => EntityKind::CreditCard,
                    "iban" => EntityKind::Iban,
                    "us_ssn" => EntityKind::UsSsn,
                    "ipv4" => EntityKind::Ipv4,
                    "ipv6" => EntityKind::Ipv6,
                    _ => return Err(err("unknown entity value (the value is not repeated here)")),
                };
                kinds.push(k);
            }
            Detector::Pii(kinds)
        }
        "secrets" => Detector::Secrets,
        "deny_list" => Detector::DenyList(
            DenyList::new(
                c.terms
                    .clone()
                    .ok_or_else(|| err("deny_list needs terms"))?,
            )
            .map_err(|e| err(&e.to_string()))?,
        ),
        "regex" => Detector::Regex(
            RegexList::new(
                c.patterns
                    .clone()
                    .ok_or_else(|| err("regex needs patterns"))?,
            )
            .map_err(|e| err(&e.to_string()))?,
        ),
        "max_chars" => Detector::MaxChars(
            c.max_chars
                .ok_or_else(|| err("max_chars needs max_chars"))?,
        ),
        "max_tokens" => Detector::MaxTokens(
            c.max_tokens
                .ok_or_else(|| err("max_tokens needs max_tokens"))?,
        ),
        "injection" => Detector::Injection {
            threshold: c.threshold.unwrap_or(DEFAULT_INJECTION_THRESHOLD),
        },
        _ => {
            return Err(err(
                "unknown detector value (the value is not repeated here)",
            ));
        }
    };
    let action = match c.action.as_str() {
        "block" => Action::Block,
        "redact" => Action::Redact,
        "annotate" => Action::Annotate,
        _ => return Err(err("unknown action value (the value is not repeated here)")),
    };
    let applies = match c.applies.as_deref().unwrap_or("both") {
        "request" => Applies::Request,
        "response" => Applies::Response,
        "both" => Applies::Both,
        _ => {
            return Err(err(
                "unknown applies value (the value is not repeated here)",
            ));
        }
    };
    let mut check = Check::new(c.name.clone(), detector, action).applies(applies);
    if let Some(m) = &c.mask {
        check = check.mask(m.clone());
    }
    Ok(check)
}

fn moderation(m: &ModerationSection, mock_url: Option<&str>) -> Result<Moderation, String> {
    let url = if m.url == "mock" {
        mock_url
            .ok_or_else(|| format!("moderation '{}': no mock provider is running", m.name))?
            .to_owned()
    } else {
        m.url.clone()
    };
    let err = |e: &dyn std::fmt::Display| format!("moderation '{}': {e}", m.name);
    let mut out = match m.kind.as_str() {
        "openai" => {
            let key = m.api_key_env.as_ref().and_then(|v| std::env::var(v).ok());
            Moderation::new(
                m.name.clone(),
                OpenAiModerator::new(&url, key).map_err(|e| err(&e))?,
            )
        }
        "webhook" => Moderation::new(
            m.name.clone(),
            WebhookModerator::new(&url).map_err(|e| err(&e))?,
        ),
        _ => return Err(err(&"unknown kind value (openai, webhook)")),
    };
    if let Some(ms) = m.timeout_ms {
        out = out.timeout(Duration::from_millis(ms));
    }
    if let Some(f) = m.failure_mode {
        out = out.failure_mode(f.into());
    }
    Ok(out)
}

fn guardrail(g: &GuardrailSection, mock_url: Option<&str>) -> Result<Guardrail, String> {
    let mut cfg = GuardrailConfig::new();
    if let Some(h) = g.hold_back_bytes {
        cfg = cfg.hold_back(h);
    }
    if let Some(r) = &g.roles {
        cfg = cfg.roles(r.clone());
    }
    for c in &g.checks {
        cfg = cfg.check(build_check(c)?);
    }
    for m in &g.moderations {
        cfg = cfg.moderation(moderation(m, mock_url)?);
    }
    Ok(Guardrail::new(cfg))
}

/// The rate limiter of a `[ratelimit]` section.
fn rate_limiter(rl: &RateLimitSection) -> Result<TokenRateLimiter, ConfigError> {
    // One parser for the allowed values (infergate_ratelimit::KeyPart): an unknown part is an
    // error naming its position, never a silent default, and the value is not echoed.
    let extractor =
        KeyExtractor::parse(&rl.key).map_err(|e| ConfigError::Routes(format!("ratelimit.{e}")))?;
    let mut cfg = RateLimitConfig::new(rl.limits.clone()).key(extractor);
    for (raw, limits) in &rl.overrides {
        let parts: Vec<&str> = raw.split('|').collect();
        cfg = cfg.override_key(&parts, limits.clone());
    }
    for (model, limits) in &rl.models {
        cfg = cfg.model(model.clone(), limits.clone());
    }
    if let Some(n) = rl.default_max_output_tokens {
        cfg = cfg.default_max_output_tokens(n);
    }
    if let Some(m) = rl.failure_mode {
        cfg = cfg.failure_mode(m.into());
    }
    if let Some(r) = rl.refund_on_upstream_error {
        cfg = cfg.refund_on_upstream_error(r);
    }
    if let Some(url) = &rl.redis_url {
        let store = RedisStore::new(RedisStoreConfig::new(url.clone()))
            .map_err(|e| ConfigError::Routes(format!("ratelimit.redis_url: {e}")))?;
        cfg = cfg.store(Arc::new(store));
    }
    Ok(TokenRateLimiter::new(cfg))
}

impl Service<http::Request<Incoming>> for GatewayService {
    type Response = http::Response<GatewayBody>;
    type Error = Infallible;
    type Future = futures_util::future::Either<
        MapLeft<<Route as Service<http::Request<Incoming>>>::Future>,
        std::future::Ready<Result<Self::Response, Infallible>>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        let path = req.uri().path();
        if let Some(route) = self.routes.get(path) {
            // Routes are always ready (the proxy never applies backpressure), so calling a
            // clone without poll_ready is sound here.
            let mut route = route.clone();
            return futures_util::future::Either::Left(MapLeft(route.call(req)));
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
        futures_util::future::Either::Right(std::future::ready(Ok(resp)))
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

/// Serves `service` on `listener` with the default [`ServerConfig`] until `shutdown`
/// completes, then drains open connections for up to 10 s.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: GatewayService,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_with(listener, service, &ServerConfig::default(), shutdown).await
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

/// The TLS settings of a `[backends.NAME.tls]` section on a client builder.
fn tls_options(
    mut b: infergate::client::UpstreamClientBuilder,
    t: &crate::config::TlsSection,
) -> Result<infergate::client::UpstreamClientBuilder, String> {
    for ca in &t.ca_files {
        b = b.tls_ca_file(ca);
    }
    if let Some(yes) = t.web_pki_roots {
        b = b.tls_web_pki_roots(yes);
    }
    match (&t.client_cert_file, &t.client_key_file) {
        (Some(cert), Some(key)) => b = b.tls_client_cert_files(cert, key),
        (None, None) => {}
        _ => return Err("client_cert_file and client_key_file go together".to_owned()),
    }
    if let Some(n) = &t.server_name {
        b = b.tls_server_name(n.clone());
    }
    match t.min_version.as_deref() {
        None | Some("1.2") => {}
        Some("1.3") => b = b.tls_min_version(infergate::client::TlsVersion::Tls13),
        Some(_) => return Err("min_version: expected \"1.2\" or \"1.3\"".to_owned()),
    }
    Ok(b)
}

/// Builds the router from `[router]`: every target must name a backend.
async fn router(
    r: &RouterSection,
    config: &Config,
    mock_url: Option<&str>,
) -> Result<Router, ConfigError> {
    let err = |m: String| ConfigError::Routes(format!("router: {m}"));
    let target = |backend: &str, model: &Option<String>| -> Result<Target, ConfigError> {
        if !config.has_target(backend) {
            return Err(err(format!("unknown backend '{backend}'")));
        }
        let t = Target::new(backend);
        Ok(match model {
            Some(m) => t.model(m.clone()),
            None => t,
        })
    };
    let mut cfg = RouterConfig::new()
        .explain(r.explain.unwrap_or(false))
        .rewrite_model(r.rewrite_model.unwrap_or(true));
    for a in &r.aliases {
        cfg = cfg.alias(a.name.clone(), target(&a.backend, &a.model)?);
    }
    for g in &r.globs {
        cfg = cfg.model_glob(g.pattern.clone(), target(&g.backend, &g.model)?);
    }
    for h in &r.headers {
        cfg = cfg.header(&h.name, h.value.as_deref(), target(&h.backend, &h.model)?);
    }
    for k in &r.keywords {
        cfg = cfg.keywords(
            k.name.clone(),
            k.words.clone(),
            target(&k.backend, &k.model)?,
        );
    }
    for s in &r.semantic {
        let mut route = SemanticRoute::new(
            s.name.clone(),
            s.utterances.clone(),
            target(&s.backend, &s.model)?,
        );
        if let Some(t) = s.threshold {
            route = route.threshold(t);
        }
        cfg = cfg.semantic(route);
    }
    if let Some(d) = &r.default {
        cfg = cfg.default_route(target(&d.backend, &d.model)?);
    }
    // Backend labels (a group's: each member's) and the deployment's restrictions, so that
    // the router never picks a backend a request may not go to.
    for (name, b) in &config.backends {
        cfg = cfg.backend_labels(name.clone(), b.labels.clone());
    }
    for (name, g) in &config.failover {
        for m in &g.members {
            let labels = config.backends.get(&m.backend).map(|b| b.labels.clone());
            cfg = cfg.backend_labels(name.clone(), labels.unwrap_or_default());
        }
    }
    for (k, vs) in &config.restrictions {
        cfg = cfg.restrict(k.clone(), vs.clone());
    }
    cfg = cfg.query(match r.query.as_deref() {
        None | Some("last_user") => QueryText::LastUser,
        Some("conversation") => QueryText::Conversation,
        Some("system") => QueryText::System,
        Some(_) => {
            return Err(err(
                "unknown query value (the value is not repeated here)".to_owned()
            ));
        }
    });
    cfg = cfg.matching(match r.matching.as_deref() {
        None | Some("centroid") => Match::Centroid,
        Some("nearest") => Match::Nearest {
            k: r.nearest_k.unwrap_or(5),
        },
        Some(_) => {
            return Err(err(
                "unknown matching value (the value is not repeated here)".to_owned(),
            ));
        }
    });
    let embedder: Arc<dyn Embedder> = match r.embedder.as_deref() {
        None | Some("builtin") => Arc::new(HashEmbedder::builder().fit(cfg.utterances())),
        Some("openai") => {
            let url = match r.embedder_url.as_deref() {
                Some("mock") | None => mock_url
                    .ok_or_else(|| err("embedder_url = \"mock\" needs a mock backend".into()))?
                    .to_owned(),
                Some(u) => u.to_owned(),
            };
            let client = UpstreamClient::new(&url).map_err(|e| err(e.to_string()))?;
            let e = OpenAiEmbedder::new(
                client,
                r.embedder_model
                    .clone()
                    .unwrap_or_else(|| "text-embedding-3-small".into()),
                r.embedder_dim.unwrap_or(1536),
            );
            Arc::new(CachedEmbedder::new(e, 100_000))
        }
        Some(_) => {
            return Err(err(
                "unknown embedder value (the value is not repeated here)".to_owned(),
            ));
        }
    };
    Router::build(cfg, embedder)
        .await
        .map_err(|e| err(e.to_string()))
}

/// Builds the response cache from `[cache]`.
fn cache(c: &CacheSection) -> Result<Cache, ConfigError> {
    let err = |m: String| ConfigError::Routes(format!("cache: {m}"));
    let mut cfg = CacheConfig::new()
        .ttl(Duration::from_secs(c.ttl_secs.unwrap_or(3600)))
        .nonzero_temperature(c.nonzero_temperature.unwrap_or(true))
        .exact_per_user(c.exact_per_user.unwrap_or(false))
        .single_flight(
            c.single_flight
                .unwrap_or(true)
                .then(|| Duration::from_millis(c.single_flight_wait_ms.unwrap_or(120_000))),
        );
    if let Some(s) = &c.key_secret {
        cfg = cfg.key_secret(s.as_bytes().to_vec());
    }
    cfg = cfg.tenant(match c.tenant.as_deref() {
        None | Some("api_key") => TenantScope::ApiKey,
        Some("shared") => TenantScope::Shared,
        Some(h) if h.starts_with("header:") => TenantScope::Header(
            http::HeaderName::from_bytes(&h.as_bytes()["header:".len()..])
                .map_err(|e| err(e.to_string()))?,
        ),
        Some(_) => {
            return Err(err(
                "unknown tenant value (the value is not repeated here)".to_owned()
            ));
        }
    });
    if let Some(url) = &c.redis_url {
        cfg = cfg.store(Arc::new(
            infergate::cache::RedisStore::new(url).map_err(|e| err(e.to_string()))?,
        ));
    } else {
        cfg = cfg.store(Arc::new(MemoryStore::new(
            c.max_entries.unwrap_or(100_000),
            c.max_bytes.unwrap_or(256 * 1024 * 1024),
        )));
    }
    if let Some(t) = c.semantic_threshold {
        cfg = cfg.semantic(
            SemanticConfig::new(Arc::new(HashEmbedder::default()), t)
                .nonzero_temperature(c.semantic_nonzero_temperature.unwrap_or(false)),
        );
    }
    Ok(Cache::new(cfg))
}

/// A key source written `env:NAME`, `file:PATH` or `inline:VALUE`.
fn key_source(spec: &str) -> Result<KeySource, String> {
    match spec.split_once(':') {
        Some(("env", n)) => Ok(KeySource::Env(n.to_owned())),
        Some(("file", p)) => Ok(KeySource::File(p.into())),
        Some(("inline", v)) => Ok(KeySource::Inline(Secret::new(v))),
        // Never echo the value: it may be a key written without a prefix.
        _ => Err("a key must be written env:NAME, file:PATH or inline:VALUE".into()),
    }
}

/// The current value of one key source.
fn read_key(spec: &str) -> Result<Secret, String> {
    Keys::new([key_source(spec)?])
        .next()
        .map_err(|e| e.to_string())
}

/// Builds a backend's credential layer from `[backends.NAME.auth]`.
fn provider_auth(a: &AuthSection, url: &str) -> Result<ProviderAuthLayer, String> {
    let keys = || -> Result<Keys, String> {
        if a.keys.is_empty() {
            return Err("no keys".into());
        }
        Ok(Keys::new(
            a.keys
                .iter()
                .map(|k| key_source(k))
                .collect::<Result<Vec<_>, _>>()?,
        ))
    };
    let need =
        |v: &Option<String>, what: &str| v.clone().ok_or_else(|| format!("{what} is required"));
    let provider = match a.provider.as_str() {
        "openai" => Provider::OpenAi(keys()?),
        "azure" => Provider::AzureApiKey {
            keys: keys()?,
            api_version: a.api_version.clone(),
        },
        "anthropic" => Provider::Anthropic {
            keys: keys()?,
            version: a
                .anthropic_version
                .clone()
                .unwrap_or_else(|| infergate::auth::ANTHROPIC_VERSION.into()),
        },
        "bedrock" => {
            let credentials = match a.aws_credentials.as_deref() {
                None | Some("env") => AwsCredentialSource::Environment,
                Some("static") => AwsCredentialSource::Static(AwsCredentials {
                    access_key_id: need(&a.access_key_id, "access_key_id")?,
                    secret_access_key: read_key(&need(&a.secret_access_key, "secret_access_key")?)?,
                    session_token: None,
                }),
                Some(f) if f.starts_with("file:") => AwsCredentialSource::File {
                    path: f["file:".len()..].into(),
                    profile: a.profile.clone().unwrap_or_default(),
                },
                Some(_) => return Err("aws_credentials: env, static or file:PATH".into()),
            };
            Provider::Bedrock {
                credentials,
                region: need(&a.region, "region")?,
                service: a.service.clone().unwrap_or_else(|| "bedrock".into()),
                endpoint: url
                    .parse()
                    .map_err(|_| "the backend URL is not a URI".to_owned())?,
                options: SigV4Options::default(),
            }
        }
        "vertex" => {
            let path = need(&a.service_account_file, "service_account_file")?;
            let json = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            Provider::GcpVertex(CachedToken::new(
                ServiceAccount::from_json(&json).map_err(|e| e.to_string())?,
            ))
        }
        "vertex_metadata" => Provider::GcpVertex(CachedToken::new(
            MetadataServer::new(
                a.metadata_url
                    .as_deref()
                    .unwrap_or("http://metadata.google.internal"),
            )
            .map_err(|e| e.to_string())?,
        )),
        "azure_entra" => Provider::AzureEntra {
            token: CachedToken::new(
                EntraClientCredentials::new(
                    a.authority
                        .as_deref()
                        .unwrap_or("https://login.microsoftonline.com"),
                    &need(&a.tenant, "tenant")?,
                    need(&a.client_id, "client_id")?,
                    read_key(&need(&a.client_secret, "client_secret")?)?,
                )
                .map_err(|e| e.to_string())?,
            ),
            api_version: a.api_version.clone(),
        },
        _ => return Err("unknown provider value (the value is not repeated here)".to_owned()),
    };
    Ok(ProviderAuthLayer::new(provider).passthrough(a.passthrough))
}
