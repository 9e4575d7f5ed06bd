use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::handlers;

/// A failure the mock injects instead of (or into) its answer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Answer with this status, an OpenAI-shaped error body and an optional `Retry-After`.
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header value (seconds or an HTTP date).
        retry_after: Option<String>,
    },
    /// Close the connection without answering.
    Reset,
    /// Never answer (until the client gives up).
    Hang,
    /// Stream normally, then cut the connection after this many chunks (for non-streamed
    /// requests: cut the body half-way).
    DisconnectAfter(usize),
}

impl Failure {
    /// A status failure without `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            retry_after: None,
        }
    }

    /// Adds `Retry-After` to a status failure.
    #[must_use]
    pub fn retry_after(self, value: impl Into<String>) -> Self {
        match self {
            Self::Status { status, .. } => Self::Status {
                status,
                retry_after: Some(value.into()),
            },
            other => other,
        }
    }

    /// Parses the form the `x-mock-fail` header takes: `503`, `429; retry-after=3`, `reset`,
    /// `hang`, `disconnect:2`.
    pub fn parse(v: &str) -> Option<Self> {
        Self::from_header(v)
    }

    pub(crate) fn from_header(v: &str) -> Option<Self> {
        let v = v.trim();
        if v.eq_ignore_ascii_case("reset") {
            Some(Self::Reset)
        } else if v.eq_ignore_ascii_case("hang") {
            Some(Self::Hang)
        } else if let Some(n) = v.strip_prefix("disconnect:") {
            n.parse().ok().map(Self::DisconnectAfter)
        } else {
            let (code, ra) = match v.split_once(';') {
                Some((c, r)) => (
                    c,
                    Some(r.trim().trim_start_matches("retry-after=").to_owned()),
                ),
                None => (v, None),
            };
            code.parse().ok().map(|status| Self::Status {
                status,
                retry_after: ra,
            })
        }
    }
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method.
    pub method: Method,
    /// The HTTP version it came in (HTTP/2 for h2c clients).
    pub version: http::Version,
    /// The path and query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The failure injected into the answer, if any.
    pub failure: Option<Failure>,
}

impl RecordedRequest {
    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

pub(crate) struct State {
    pub(crate) reply: String,
    pub(crate) latency: Mutex<Duration>,
    pub(crate) token_delay: Mutex<Duration>,
    pub(crate) failures: Mutex<VecDeque<Failure>>,
    pub(crate) always: Mutex<Option<Failure>>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) record: bool,
    pub(crate) counter: AtomicU64,
    pub(crate) name: String,
    pub(crate) wire: Mutex<crate::wire::Wire>,
}

/// Configures a [`MockProvider`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MockBuilder {
    reply: String,
    latency: Duration,
    token_delay: Duration,
    record: bool,
    name: String,
    addr: SocketAddr,
    wire: crate::wire::Wire,
}

impl MockBuilder {
    /// The answer text (split into one stream chunk per word).
    pub fn reply(mut self, reply: impl Into<String>) -> Self {
        self.reply = reply.into();
        self
    }

    /// Delay before the response head.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }

    /// Delay between stream chunks.
    pub fn token_delay(mut self, d: Duration) -> Self {
        self.token_delay = d;
        self
    }

    /// Whether to record requests (default true; turn off for load tests).
    pub fn record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// A name, reported in the `x-mock-name` response header (to tell backends apart).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, an ephemeral port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Wire behaviours of real providers: compression, chunked framing, replayed captures
    /// (default: none of them).
    pub fn wire(mut self, wire: crate::wire::Wire) -> Self {
        self.wire = wire;
        self
    }

    /// Binds and starts serving on the current tokio runtime.
    pub async fn start(self) -> std::io::Result<MockProvider> {
        let listener = TcpListener::bind(self.addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            reply: self.reply,
            latency: Mutex::new(self.latency),
            token_delay: Mutex::new(self.token_delay),
            failures: Mutex::new(VecDeque::new()),
            always: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            record: self.record,
            counter: AtomicU64::new(0),
            name: self.name,
            wire: Mutex::new(self.wire),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handlers::handle(st.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(MockProvider { addr, state, task })
    }
}

/// A running mock provider. Stops serving when dropped.
pub struct MockProvider {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for MockProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockProvider")
            .field("addr", &self.addr)
            .field("name", &self.state.name)
            .finish_non_exhaustive()
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockProvider {
    /// A builder with defaults: a short fixed reply, no latency, recording on.
    pub fn builder() -> MockBuilder {
        MockBuilder {
            reply: "Hello! This is the infergate mock provider answering your request.".into(),
            latency: Duration::ZERO,
            token_delay: Duration::ZERO,
            record: true,
            name: "mock".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            wire: crate::wire::Wire::default(),
        }
    }

    /// Starts a mock with the defaults.
    pub async fn start() -> std::io::Result<Self> {
        Self::builder().start().await
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a failure for the next request (failures are used in order, one per request).
    pub fn push_failure(&self, failure: Failure) {
        lock(&self.state.failures).push_back(failure);
    }

    /// Forgets the queued failures.
    pub fn clear_failures(&self) {
        lock(&self.state.failures).clear();
    }

    /// Fails every request with `failure` (after the queued ones), or stops doing so.
    pub fn set_always_fail(&self, failure: Option<Failure>) {
        *lock(&self.state.always) = failure;
    }

    /// Changes the latency before the response head.
    pub fn set_latency(&self, d: Duration) {
        *lock(&self.state.latency) = d;
    }

    /// Changes the delay between stream chunks.
    pub fn set_token_delay(&self, d: Duration) {
        *lock(&self.state.token_delay) = d;
    }

    /// Changes the wire behaviours (compression, chunked framing, replayed captures).
    pub fn set_wire(&self, wire: crate::wire::Wire) {
        *lock(&self.state.wire) = wire;
    }

    /// The wire behaviours in force.
    pub fn wire_settings(&self) -> crate::wire::Wire {
        lock(&self.state.wire).clone()
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// How many requests arrived (recorded or not).
    pub fn request_count(&self) -> u64 {
        self.state.counter.load(Ordering::Relaxed)
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn error_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
