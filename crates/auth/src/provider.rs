//! Providers and the layer that injects their credentials.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{HeaderName, HeaderValue, Request, Response};
use infergate_core::{Body, RejectKind, Rejection};

use crate::aws::{AwsCredentialSource, SigV4Options, sign_sigv4};
use crate::{AuthError, CachedToken, Keys};

/// Client credential headers removed before injecting (unless pass-through is on).
pub const CLIENT_CREDENTIAL_HEADERS: [&str; 4] =
    ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// Client account headers removed with the credentials (unless pass-through is on): they name
/// the client's own account at the provider (`OpenAI-Organization`, `OpenAI-Project`, GCP's
/// billing project), or carry its session (`Cookie`, `Proxy-Authorization`), and must not ride
/// along with the backend's key. Every `anthropic-*` header is removed as well except the
/// [`ANTHROPIC_PROTOCOL_HEADERS`].
pub const CLIENT_ACCOUNT_HEADERS: [&str; 5] = [
    "openai-organization",
    "openai-project",
    "x-goog-user-project",
    "cookie",
    "proxy-authorization",
];

/// The `anthropic-*` headers kept: protocol headers, not account ones. `anthropic-version`
/// selects the API version and `anthropic-beta` opts into features the request's body may
/// depend on; neither names an account or carries a credential, and removing them would change
/// what the request means.
pub const ANTHROPIC_PROTOCOL_HEADERS: [&str; 2] = ["anthropic-version", "anthropic-beta"];

/// Whether `name` (lower case, as [`http::HeaderName`] keeps it) is a client credential or
/// account header the layer removes unless pass-through is on.
pub fn is_client_credential_header(name: &str) -> bool {
    CLIENT_CREDENTIAL_HEADERS.contains(&name)
        || CLIENT_ACCOUNT_HEADERS.contains(&name)
        || (name.starts_with("anthropic-") && !ANTHROPIC_PROTOCOL_HEADERS.contains(&name))
}

/// Removes every client credential and account header ([`is_client_credential_header`]).
pub fn strip_client_credentials(headers: &mut http::HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_client_credential_header(n.as_str()))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

/// The default `anthropic-version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// How a backend authenticates.
#[derive(Debug)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI and OpenAI-compatible: `Authorization: Bearer <key>`.
    OpenAi(Keys),
    /// Azure OpenAI with an `api-key` header. OpenAI-style paths (`/v1/chat/completions`)
    /// become deployment URLs (`/openai/deployments/{model}/chat/completions`, the request's
    /// model naming the deployment), and `api_version` is added to the query when the request
    /// has none.
    AzureApiKey {
        /// The keys.
        keys: Keys,
        /// `api-version` (e.g. `2024-10-21`).
        api_version: Option<String>,
    },
    /// Anthropic: `x-api-key` and `anthropic-version` (kept if the client sent one).
    Anthropic {
        /// The keys.
        keys: Keys,
        /// The version sent when the client sends none (default [`ANTHROPIC_VERSION`]).
        version: String,
    },
    /// GCP Vertex AI: `Authorization: Bearer` with an OAuth2 access token from a service
    /// account ([`ServiceAccount`](crate::ServiceAccount)) or the metadata server
    /// ([`MetadataServer`](crate::MetadataServer)), cached and refreshed.
    GcpVertex(Arc<CachedToken>),
    /// Azure OpenAI with a Microsoft Entra token
    /// ([`EntraClientCredentials`](crate::EntraClientCredentials)), cached and refreshed;
    /// deployment URLs and `api-version` as for [`Provider::AzureApiKey`].
    AzureEntra {
        /// The token.
        token: Arc<CachedToken>,
        /// `api-version`.
        api_version: Option<String>,
    },
    /// AWS SigV4 (Bedrock), over the final body, re-signed on every call (so on every retry).
    Bedrock {
        /// Where the credentials come from.
        credentials: AwsCredentialSource,
        /// The region (`us-east-1`).
        region: String,
        /// The signing name (`bedrock`).
        service: String,
        /// The backend's base URL: the host and path prefix the request will really go to.
        endpoint: http::Uri,
        /// SigV4 settings.
        options: SigV4Options,
    },
}

/// Injects a provider's credentials into every request (a tower layer on the upstream side,
/// one per backend, so that each failover attempt is signed for its own backend).
#[derive(Debug, Clone)]
pub struct ProviderAuthLayer {
    provider: Arc<Provider>,
    passthrough: bool,
}

impl ProviderAuthLayer {
    /// A layer for `provider`; the client's own credentials are removed first.
    pub fn new(provider: Provider) -> Self {
        Self {
            provider: Arc::new(provider),
            passthrough: false,
        }
    }

    /// Bring your own key: keep the client's credentials (and its account headers) and inject
    /// nothing when it sent some. Off by default: every client credential and account header
    /// ([`is_client_credential_header`]) is removed before the backend's is injected.
    #[must_use]
    pub fn passthrough(mut self, yes: bool) -> Self {
        self.passthrough = yes;
        self
    }
}

impl<S> tower::Layer<S> for ProviderAuthLayer {
    type Service = ProviderAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProviderAuth {
            inner,
            provider: self.provider.clone(),
            passthrough: self.passthrough,
        }
    }
}

/// The service of [`ProviderAuthLayer`].
#[derive(Debug, Clone)]
pub struct ProviderAuth<S> {
    inner: S,
    provider: Arc<Provider>,
    passthrough: bool,
}

fn bearer(v: &str) -> Result<HeaderValue, AuthError> {
    let mut h = HeaderValue::from_str(&format!("Bearer {v}"))
        .map_err(|_| AuthError::Signing("the key is not a valid header value".into()))?;
    h.set_sensitive(true);
    Ok(h)
}

fn sensitive(v: &str) -> Result<HeaderValue, AuthError> {
    let mut h = HeaderValue::from_str(v)
        .map_err(|_| AuthError::Signing("the key is not a valid header value".into()))?;
    h.set_sensitive(true);
    Ok(h)
}

/// The URL `path_and_query` goes to under `base`: the upstream client's own joining.
fn join(base: &http::Uri, pq: &str) -> String {
    let pq = infergate_client::join_path(base.path().trim_end_matches('/'), pq);
    format!(
        "{}://{}{pq}",
        base.scheme_str().unwrap_or("https"),
        base.authority().map_or("", http::uri::Authority::as_str)
    )
}

/// Azure's URL: `/v1/<op>` becomes `/openai/deployments/<model>/<op>` (the body's model), and
/// `api-version` is added when absent.
fn azure_url(
    parts: &mut http::request::Parts,
    body: &[u8],
    api_version: Option<&str>,
) -> Result<(), AuthError> {
    #[derive(serde::Deserialize)]
    struct Model {
        model: String,
    }
    let mut pq = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    // The model from the pipeline's parsed request (the body is not parsed again); without a
    // pipeline, from the body.
    let model = match parts
        .extensions
        .get::<infergate_core::pipeline::ParsedRequest>()
        .and_then(|p| p.payload.as_deref())
    {
        Some(p) => p.model().map(str::to_owned),
        None => serde_json::from_slice::<Model>(body).ok().map(|m| m.model),
    };
    if let Some(op) = pq.strip_prefix("/v1/")
        && let Some(model) = model
        && !model.is_empty()
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        pq = format!("/openai/deployments/{model}/{op}");
    }
    if let Some(v) = api_version
        && !pq
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("api-version=")))
    {
        let sep = if pq.contains('?') { '&' } else { '?' };
        pq = format!("{pq}{sep}api-version={v}");
    }
    let mut b = http::Uri::builder().path_and_query(pq);
    if let (Some(s), Some(a)) = (parts.uri.scheme(), parts.uri.authority()) {
        b = b.scheme(s.clone()).authority(a.clone());
    }
    parts.uri = b.build().map_err(|e| AuthError::Signing(e.to_string()))?;
    Ok(())
}

impl Provider {
    /// Applies the credentials to a request head whose body is `body`.
    pub async fn apply(
        &self,
        parts: &mut http::request::Parts,
        body: &[u8],
    ) -> Result<(), AuthError> {
        let h = &mut parts.headers;
        match self {
            Self::GcpVertex(t) => {
                h.insert(
                    http::header::AUTHORIZATION,
                    bearer(t.get().await?.expose())?,
                );
            }
            Self::AzureEntra { token, api_version } => {
                h.insert(
                    http::header::AUTHORIZATION,
                    bearer(token.get().await?.expose())?,
                );
                azure_url(parts, body, api_version.as_deref())?;
            }
            Self::OpenAi(keys) => {
                h.insert(http::header::AUTHORIZATION, bearer(keys.next()?.expose())?);
            }
            Self::AzureApiKey { keys, api_version } => {
                h.insert(
                    HeaderName::from_static("api-key"),
                    sensitive(keys.next()?.expose())?,
                );
                azure_url(parts, body, api_version.as_deref())?;
            }
            Self::Anthropic { keys, version } => {
                h.insert(
                    HeaderName::from_static("x-api-key"),
                    sensitive(keys.next()?.expose())?,
                );
                if !h.contains_key("anthropic-version") {
                    h.insert(
                        HeaderName::from_static("anthropic-version"),
                        HeaderValue::from_str(version)
                            .map_err(|e| AuthError::Signing(e.to_string()))?,
                    );
                }
            }
            Self::Bedrock {
                credentials,
                region,
                service,
                endpoint,
                options,
            } => {
                let creds = credentials.resolve()?;
                let url = if parts.uri.scheme().is_some() {
                    parts.uri.to_string()
                } else {
                    join(
                        endpoint,
                        parts.uri.path_and_query().map_or("/", |p| p.as_str()),
                    )
                };
                // Sign what the client will send: its Host, without hop-by-hop noise.
                h.remove(http::header::HOST);
                h.remove(http::header::CONNECTION);
                h.remove(http::header::TRANSFER_ENCODING);
                sign_sigv4(
                    &parts.method,
                    &url,
                    h,
                    body,
                    &creds,
                    region,
                    service,
                    SystemTime::now(),
                    *options,
                )?;
                for name in ["authorization", "x-amz-security-token"] {
                    if let Some(v) = h.get_mut(name) {
                        v.set_sensitive(true);
                    }
                }
            }
        }
        Ok(())
    }
}

impl<S> tower::Service<Request<Body>> for ProviderAuth<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The service that was polled ready goes with this call (tower's clone-and-swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let provider = self.provider.clone();
        let passthrough = self.passthrough;
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let client_has_key = CLIENT_CREDENTIAL_HEADERS
                .iter()
                .any(|h| parts.headers.contains_key(*h));
            let result = if passthrough && client_has_key {
                Ok(())
            } else {
                strip_client_credentials(&mut parts.headers);
                match body.as_bytes() {
                    Some(b) => {
                        let b = b.to_vec();
                        provider.apply(&mut parts, &b).await
                    }
                    None if matches!(*provider, Provider::Bedrock { .. }) => Err(
                        AuthError::Signing("SigV4 needs a buffered request body".into()),
                    ),
                    None => provider.apply(&mut parts, &[]).await,
                }
            };
            match result {
                Ok(()) => inner.call(Request::from_parts(parts, body)).await,
                Err(e) => {
                    // The reason is logged (it names no secret); the client gets no detail.
                    tracing::warn!(error = %e, "provider credentials unavailable");
                    Ok(Rejection::new(
                        RejectKind::UpstreamFailed,
                        "the gateway could not authenticate to the upstream provider",
                    )
                    .with_status(http::StatusCode::BAD_GATEWAY)
                    .with_code("upstream_auth_failed")
                    .into_response())
                }
            }
        })
    }
}
