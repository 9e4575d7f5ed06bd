//! The egress half: one type for "a backend" and the service that sends a request to the
//! backend a processor chose.
//!
//! A backend is an [`Upstream`]: an infallible tower service from a request to a response (an
//! `UpstreamClient` proxy, behind its provider credentials, or a failover group over several).
//! [`Dispatch`] steers each request to the backend named by the [`RouteDecision`] a processor
//! (the router) put in its extensions — tower's `steer` idea, keyed by name — or to its default.
//!
//! ```
//! use std::convert::Infallible;
//! use infergate_core::egress::{Dispatch, Upstream};
//! use infergate_core::{Body, RouteDecision};
//! use tower::ServiceExt;
//!
//! fn answering(name: &'static str) -> Upstream {
//!     Upstream::new(tower::service_fn(move |_req: http::Request<Body>| async move {
//!         Ok::<_, Infallible>(http::Response::new(Body::from(name)))
//!     }))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let dispatch = Dispatch::new(answering("default")).backend("small", answering("small"));
//! let mut req = http::Request::new(Body::empty());
//! req.extensions_mut().insert(RouteDecision::to_backend("small"));
//! let resp = dispatch.oneshot(req).await.unwrap();
//! let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
//! assert_eq!(&body[..], b"small");
//! # }
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;
use tower::util::BoxCloneSyncService;

use crate::Body;
use crate::pipeline::RouteDecision;

/// One backend: an infallible service from a request to a response.
pub type Upstream = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// Sends each request to the backend its [`RouteDecision`] names, or to the default.
#[derive(Clone)]
pub struct Dispatch {
    default: Upstream,
    backends: Arc<BTreeMap<String, Upstream>>,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("backends", &self.backends.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Dispatch {
    /// A dispatch whose requests without a decision go to `default`.
    pub fn new(default: Upstream) -> Self {
        Self {
            default,
            backends: Arc::new(BTreeMap::new()),
        }
    }

    /// Adds a backend under `name`.
    #[must_use]
    pub fn backend(mut self, name: impl Into<String>, upstream: Upstream) -> Self {
        Arc::make_mut(&mut self.backends).insert(name.into(), upstream);
        self
    }

    /// A dispatch over a shared map of backends (built once, shared by every route).
    pub fn with_backends(default: Upstream, backends: Arc<BTreeMap<String, Upstream>>) -> Self {
        Self { default, backends }
    }
}

impl Service<http::Request<Body>> for Dispatch {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = <Upstream as Service<http::Request<Body>>>::Future;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Every upstream is a cloned service that is always ready (a pooled client or a
        // failover group): readiness is taken when the chosen one is called.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let named = req
            .extensions()
            .get::<RouteDecision>()
            .and_then(|d| d.backend.as_deref());
        let Some(name) = named else {
            return self.default.call(req);
        };
        if let Some(up) = self.backends.get(name) {
            return up.clone().call(req);
        }
        tracing::warn!(
            backend = name,
            "route decision names an unknown backend; the default answers"
        );
        self.default.call(req)
    }
}
