//! One backend behind the same label restrictions as a failover group: for a route that sends
//! to a single backend (the example gateway's `Dispatch`), so that a restricted principal's
//! traffic never reaches it either.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::task::{Context, Poll};

use http::{Request, Response};
use infergate_core::principal::labels_allowed;
use infergate_core::{Body, Principal};
use tower::Service;

use crate::backend::Upstream;
use crate::service::{NoPlan, no_plan_rejection, restrictions_text};

/// A single backend with labels, answering 403 `backend_not_allowed` (naming the restriction,
/// never the credential) to a request whose principal's
/// [`allowed_labels`](Principal::allowed_labels), or the deployment's restrictions, do not
/// allow its labels; other requests pass to the backend unchanged. Cheap to clone.
///
/// ```
/// use infergate_failover::Restricted;
///
/// let upstream = infergate_core::egress::Upstream::new(tower::service_fn(
///     |_req: http::Request<infergate_core::Body>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(infergate_core::Body::empty()))
///     },
/// ));
/// let svc = Restricted::new(upstream)
///     .label("region", "us-east-1")
///     .restrict("region", ["eu-*"]);
/// # let _ = svc;
/// ```
#[derive(Clone)]
pub struct Restricted {
    labels: BTreeMap<String, String>,
    restrictions: BTreeMap<String, Vec<String>>,
    inner: Upstream,
}

impl std::fmt::Debug for Restricted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restricted")
            .field("labels", &self.labels)
            .field("restrictions", &self.restrictions)
            .finish_non_exhaustive()
    }
}

impl Restricted {
    /// The backend `inner`, with no labels and no deployment restriction yet.
    pub fn new(inner: Upstream) -> Self {
        Self {
            labels: BTreeMap::new(),
            restrictions: BTreeMap::new(),
            inner,
        }
    }

    /// Adds a label of the backend (see [`Backend::label`](crate::Backend::label)).
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// A deployment-wide restriction (see
    /// [`FailoverPolicy::restrict`](crate::FailoverPolicy::restrict)).
    #[must_use]
    pub fn restrict<I, S>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.restrictions
            .insert(key.into(), values.into_iter().map(Into::into).collect());
        self
    }

    /// Whether a request made by `principal` (or without one) may go to this backend.
    pub fn allows(&self, principal: Option<&Principal>) -> bool {
        labels_allowed(&self.restrictions, &self.labels)
            && principal.is_none_or(|p| p.allows_labels(&self.labels))
    }
}

impl Service<Request<Body>> for Restricted {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <Upstream as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let principal = Principal::from_extensions(req.extensions());
        if self.allows(principal) {
            return self.inner.call(req);
        }
        let text = restrictions_text(&self.restrictions, principal);
        tracing::warn!(restriction = ?text, "the backend is not allowed for this request");
        let now = std::time::Instant::now();
        let resp = no_plan_rejection(NoPlan::NotAllowed, now, text).into_response();
        Box::pin(std::future::ready(Ok(resp)))
    }
}
