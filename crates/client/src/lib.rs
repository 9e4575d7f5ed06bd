//! # infergate-client
//!
//! The upstream side of an infergate gateway: hyper-util's pooled client (HTTP/1.1, and HTTP/2
//! negotiated by ALPN over TLS or forced with prior knowledge), rustls with the webpki roots for
//! real providers, a connect timeout and a timeout to the response head (a stream that has
//! started is never cut by it), as a tower `Service<Request<Body>>`.
//!
//! [`UpstreamClient`] forwards a request to one base URL (rewriting scheme, authority and path
//! prefix, dropping hop-by-hop headers and the client's `Host`). [`UpstreamClient::into_proxy`]
//! turns its errors into OpenAI-shaped 502/504 responses, for use as the innermost service of a
//! gateway.
//!
//! ```
//! use std::time::Duration;
//! use infergate_client::UpstreamClient;
//!
//! let client = UpstreamClient::builder()
//!     .connect_timeout(Duration::from_secs(2))
//!     .request_timeout(Duration::from_secs(60))
//!     .build("https://api.openai.com/v1")
//!     .unwrap();
//! assert_eq!(client.base_url().to_string(), "https://api.openai.com/v1");
//! ```
//!
//! ## TLS to upstreams
//!
//! Each client has its own TLS policy (rustls with ring; ALPN offers `h2` and `http/1.1`):
//! the web PKI roots, a private CA bundle beside them or instead of them
//! ([`tls_ca_file`](UpstreamClientBuilder::tls_ca_file),
//! [`tls_web_pki_roots`](UpstreamClientBuilder::tls_web_pki_roots)), a client certificate for
//! mTLS ([`tls_client_cert_files`](UpstreamClientBuilder::tls_client_cert_files)), a server name
//! to verify and send as SNI when the URL's host is an address or an internal name
//! ([`tls_server_name`](UpstreamClientBuilder::tls_server_name)), and a minimum version
//! ([`tls_min_version`](UpstreamClientBuilder::tls_min_version)). Files are read once, by
//! `build`; an unreadable file or bad PEM is an [`ErrorKind::InvalidConfig`] naming the option.
//! A certificate that is not trusted or does not match fails the request with
//! [`ErrorKind::Tls`], which the [`Proxy`] answers with a 502 (`upstream_tls_error`).
//!
//! ```no_run
//! use infergate_client::{TlsVersion, UpstreamClient};
//!
//! // A vLLM behind an internal CA, reached by address, presenting a client certificate.
//! let client = UpstreamClient::builder()
//!     .tls_web_pki_roots(false)
//!     .tls_ca_file("/etc/infergate/internal-ca.pem")
//!     .tls_client_cert_files("/etc/infergate/gw.crt", "/etc/infergate/gw.key")
//!     .tls_server_name("vllm.internal.example")
//!     .tls_min_version(TlsVersion::Tls13)
//!     .build("https://10.0.0.7:8443/v1")?;
//! # Ok::<(), infergate_client::ClientError>(())
//! ```

mod tls;

pub use tls::TlsVersion;

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::{PathAndQuery, Scheme};
use http::{HeaderName, Request, Response, Uri, header};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use infergate_core::{Body, RejectKind, Rejection};
use tls::{PemSource, TlsOptions};

/// What went wrong talking to the upstream.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The connection could not be made (refused, DNS, TLS).
    Connect,
    /// No response head within the request timeout.
    Timeout,
    /// The connection failed while the request was in flight (reset, closed).
    Request,
    /// The base URL or the request URI is unusable.
    InvalidUri,
    /// TLS with the upstream failed: its certificate was not trusted or did not match the
    /// server name, it refused ours (mTLS), or no common protocol version. The message says
    /// which.
    Tls,
    /// A TLS option given to the builder is unusable (a missing file, bad PEM, a key that does
    /// not fit its certificate). The message names the option, never the file's content.
    InvalidConfig,
}

/// An upstream error, with a [`ErrorKind`]. Its message never includes request headers (where
/// credentials live).
#[derive(Debug, thiserror::Error)]
#[error("upstream {kind:?} error: {message}")]
pub struct ClientError {
    kind: ErrorKind,
    message: String,
}

impl ClientError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The rejection a gateway answers with for this error (502, or 504 for a timeout).
    pub fn to_rejection(&self) -> Rejection {
        match self.kind {
            ErrorKind::Timeout => Rejection::new(
                RejectKind::UpstreamFailed,
                "the upstream did not answer in time",
            )
            .with_status(http::StatusCode::GATEWAY_TIMEOUT)
            .with_code("upstream_timeout"),
            ErrorKind::Connect => Rejection::new(
                RejectKind::UpstreamUnavailable,
                "the upstream could not be reached",
            )
            .with_status(http::StatusCode::BAD_GATEWAY),
            ErrorKind::Tls => Rejection::new(
                RejectKind::UpstreamUnavailable,
                "the TLS handshake with the upstream failed: its certificate was not trusted \
                 or did not match, or it refused the gateway's",
            )
            .with_status(http::StatusCode::BAD_GATEWAY)
            .with_code("upstream_tls_error"),
            _ => Rejection::new(RejectKind::UpstreamFailed, "the upstream request failed"),
        }
    }
}

/// Configures an [`UpstreamClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct UpstreamClientBuilder {
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    http2_prior_knowledge: bool,
    tls: TlsOptions,
}

impl UpstreamClientBuilder {
    /// Connect timeout (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = Some(d);
        self
    }

    /// Time allowed until the response head (default 600 s: long prompts take time to a first
    /// token). A body that has started streaming is never cut by it.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = Some(d);
        self
    }

    /// No timeout to the response head (the caller bounds the request, e.g. a failover
    /// layer's per-attempt timeout), which saves a timer per request.
    pub fn no_request_timeout(mut self) -> Self {
        self.request_timeout = None;
        self
    }

    /// How long idle pooled connections are kept (default 90 s).
    pub fn pool_idle_timeout(mut self, d: Duration) -> Self {
        self.pool_idle_timeout = Some(d);
        self
    }

    /// The most idle connections kept per host (default 256).
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// Speak HTTP/2 without negotiation (h2c to a plain-HTTP upstream such as vLLM behind an
    /// h2c proxy). Over TLS, HTTP/2 is negotiated by ALPN anyway.
    pub fn http2_prior_knowledge(mut self, yes: bool) -> Self {
        self.http2_prior_knowledge = yes;
        self
    }

    /// Trusts the CA certificates of a PEM bundle file (read by [`build`](Self::build)), beside
    /// the web PKI roots unless [`tls_web_pki_roots(false)`](Self::tls_web_pki_roots). May be
    /// called several times.
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca.push(PemSource::File(path.into()));
        self
    }

    /// Trusts the CA certificates of a PEM bundle held in memory, like
    /// [`tls_ca_file`](Self::tls_ca_file).
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca.push(PemSource::bytes(pem.into()));
        self
    }

    /// Whether the web PKI roots (Mozilla's, compiled in) are trusted (default `true`). With
    /// `false`, only the CA bundles given are: a private upstream whose CA is the only one to
    /// trust.
    pub fn tls_web_pki_roots(mut self, yes: bool) -> Self {
        self.tls.web_pki_roots = yes;
        self
    }

    /// Presents a client certificate (mTLS): `cert` a PEM file with the certificate chain (leaf
    /// first), `key` a PEM file with its private key (PKCS#8, PKCS#1 or SEC1). Read by
    /// [`build`](Self::build).
    pub fn tls_client_cert_files(
        mut self,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls.identity = Some((PemSource::File(cert.into()), PemSource::File(key.into())));
        self
    }

    /// Presents a client certificate (mTLS) held in memory as PEM, like
    /// [`tls_client_cert_files`](Self::tls_client_cert_files). The key is never shown by
    /// `Debug` and is zeroed when the builder is dropped.
    pub fn tls_client_cert_pem(
        mut self,
        cert: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.identity = Some((PemSource::bytes(cert.into()), PemSource::bytes(key.into())));
        self
    }

    /// Connects to the base URL's host but sends this name as SNI and verifies the upstream's
    /// certificate against it (a DNS name, or an IP address). The `Host` header still comes
    /// from the base URL.
    pub fn tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls.server_name = Some(name.into());
        self
    }

    /// The lowest TLS version accepted (default [`TlsVersion::Tls12`]).
    pub fn tls_min_version(mut self, version: TlsVersion) -> Self {
        self.tls.min_version = version;
        self
    }

    /// Builds a client for `base_url` (`https://api.openai.com/v1`, `http://127.0.0.1:8000`).
    pub fn build(self, base_url: &str) -> Result<UpstreamClient, ClientError> {
        let base: Uri = base_url
            .trim_end_matches('/')
            .parse()
            .map_err(|e| ClientError::new(ErrorKind::InvalidUri, format!("{base_url}: {e}")))?;
        if base.scheme().is_none() || base.authority().is_none() {
            return Err(ClientError::new(
                ErrorKind::InvalidUri,
                format!("{base_url}: a base URL needs a scheme and a host"),
            ));
        }
        let mut http = HttpConnector::new();
        http.set_connect_timeout(self.connect_timeout);
        http.set_nodelay(true);
        http.enforce_http(false);
        let tls_config = self.tls.client_config()?;
        let mut builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http();
        if let Some(name) = &self.tls.server_name {
            builder = builder.with_server_name_resolver(
                hyper_rustls::FixedServerNameResolver::new(tls::parse_server_name(name)?),
            );
        }
        let https = if self.http2_prior_knowledge {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().enable_http2().wrap_connector(http)
        };
        let mut cb = Client::builder(TokioExecutor::new());
        cb.pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .http2_only(self.http2_prior_knowledge);
        let prefix = base.path().trim_end_matches('/').to_owned();
        Ok(UpstreamClient {
            client: cb.build(https),
            target: Arc::new(Target {
                scheme: base.scheme().cloned().unwrap_or(Scheme::HTTP),
                authority: base.authority().cloned().ok_or_else(|| {
                    ClientError::new(ErrorKind::InvalidUri, "base URL without a host")
                })?,
                prefix,
                base,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

/// A pooled HTTP client for one upstream base URL. Cheap to clone (the pool and the target
/// are shared): services are cloned on every request.
#[derive(Clone)]
pub struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    target: Arc<Target>,
}

struct Target {
    base: Uri,
    scheme: Scheme,
    authority: http::uri::Authority,
    prefix: String,
    request_timeout: Option<Duration>,
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("base", &self.target.base)
            .field("request_timeout", &self.target.request_timeout)
            .finish_non_exhaustive()
    }
}

/// Hop-by-hop headers, never forwarded (RFC 9110 section 7.6.1), plus `host`.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::HOST,
];

impl UpstreamClient {
    /// A builder with the defaults.
    pub fn builder() -> UpstreamClientBuilder {
        UpstreamClientBuilder {
            connect_timeout: Some(Duration::from_secs(10)),
            request_timeout: Some(Duration::from_secs(600)),
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: 256,
            http2_prior_knowledge: false,
            tls: TlsOptions::default(),
        }
    }

    /// A client for `base_url` with the defaults.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::builder().build(base_url)
    }

    /// The base URL.
    pub fn base_url(&self) -> &Uri {
        &self.target.base
    }

    /// Wraps the client so that errors become OpenAI-shaped 502/504 responses.
    pub fn into_proxy(self) -> Proxy {
        Proxy { client: self }
    }

    fn rewrite(&self, req: &mut Request<Body>) -> Result<(), ClientError> {
        let t = &*self.target;
        let pq = req.uri().path_and_query().map_or("/", PathAndQuery::as_str);
        // `/v1/chat/completions` against a base of `.../v1` must not become `/v1/v1/...`.
        let pq = join_path(&t.prefix, pq);
        let uri = Uri::builder()
            .scheme(t.scheme.clone())
            .authority(t.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|e| ClientError::new(ErrorKind::InvalidUri, e.to_string()))?;
        *req.uri_mut() = uri;
        *req.version_mut() = http::Version::HTTP_11;
        let headers = req.headers_mut();
        if let Some(conn) = headers.get(header::CONNECTION).cloned()
            && let Ok(conn) = conn.to_str()
        {
            for name in conn.split(',') {
                headers.remove(name.trim());
            }
        }
        for h in &HOP_BY_HOP {
            headers.remove(h);
        }
        Ok(())
    }
}

/// The path and query a request for `pq` takes under a base URL whose path is `prefix` (no
/// trailing slash): the prefix prepended, except that a path already under it is kept and
/// `/v1/...` under a base ending in `/v1` is not doubled. Exposed so that request signers
/// (SigV4) sign exactly the URL the client will send.
pub fn join_path(prefix: &str, pq: &str) -> String {
    if !prefix.is_empty() && pq.starts_with(prefix) {
        pq.to_owned()
    } else if let Some(rest) = pq.strip_prefix("/v1")
        && prefix.ends_with("/v1")
    {
        format!("{prefix}{rest}")
    } else {
        format!("{prefix}{pq}")
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl tower::Service<Request<Body>> for UpstreamClient {
    type Response = Response<Incoming>;
    type Error = ClientError;
    type Future = BoxFuture<Result<Response<Incoming>, ClientError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let rewritten = self.rewrite(&mut req);
        let fut = self.client.request(req);
        let timeout = self.target.request_timeout;
        Box::pin(async move {
            rewritten?;
            let res = match timeout {
                Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| {
                    ClientError::new(ErrorKind::Timeout, format!("no response within {t:?}"))
                })?,
                None => fut.await,
            };
            res.map_err(|e| {
                if let Some(tls_err) = tls::find_rustls_error(&e) {
                    return ClientError::new(ErrorKind::Tls, tls::describe(&tls_err));
                }
                let kind = if e.is_connect() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Request
                };
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                ClientError::new(kind, msg)
            })
        })
    }
}

/// [`UpstreamClient`] with errors turned into responses: never fails, so it can sit under any
/// layer that expects an infallible service.
#[derive(Debug, Clone)]
pub struct Proxy {
    client: UpstreamClient,
}

impl tower::Service<Request<Body>> for Proxy {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let fut = tower::Service::call(&mut self.client, req);
        Box::pin(async move {
            Ok(match fut.await {
                Ok(resp) => resp.map(Body::new),
                Err(e) => {
                    tracing::warn!(error = %e, "upstream request failed");
                    e.to_rejection().into_response()
                }
            })
        })
    }
}
