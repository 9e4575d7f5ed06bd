//! The identity processor: authenticates the client, checks what it may call, and puts its
//! [`Principal`] in the request extensions.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use infergate_core::{Decision, Phases, Principal, Processor, ProcessorError, RequestContext};

use crate::config::{IdentityConfig, KeyStoreConfig};
use crate::error::{AuthError, AuthFailure, IdentityError};
use crate::jwt::JwtVerifier;
use crate::keys::{
    FileKeyStore, KeyHasher, KeyRecord, KeyStore, Lookup, MemoryKeyStore, parse_key,
};

/// The Anthropic key header.
pub const X_API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");

/// The identity building block: a [`Processor`] meant to run first (request phase only).
///
/// It reads the client's credential (`Authorization: Bearer …` or `x-api-key`): an API key
/// (`igk_…`) is looked up in the key store, anything else is tried as a JWT when JWT is
/// configured. The principal goes into the request extensions (and the exchange state, for
/// response phases) as an `Arc<Principal>`: read it with [`Principal::from_extensions`]. The
/// credential headers are then removed, unless pass-through is configured.
///
/// Refusals are decisions (never "failed open"): 401 for a missing, malformed, unknown,
/// revoked or expired credential, 403 `model_not_allowed` / `endpoint_not_allowed`; the
/// pipeline renders them in the OpenAI error shape, Anthropic's on `/v1/messages`. A key store
/// or JWKS source that fails is a processor failure: fail closed (502) by default.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    keys: Option<Arc<dyn KeyStore>>,
    hasher: KeyHasher,
    jwt: Option<JwtVerifier>,
    anonymous: Option<Arc<Principal>>,
    pass_through: bool,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.inner.name)
            .field("keys", &self.inner.keys)
            .field("hasher", &self.inner.hasher)
            .field("jwt", &self.inner.jwt)
            .field("anonymous", &self.inner.anonymous)
            .field("pass_through", &self.inner.pass_through)
            .finish()
    }
}

/// Builds an [`Identity`] from parts (stores and verifiers made by the caller).
#[derive(Debug, Default)]
pub struct IdentityBuilder {
    name: Option<String>,
    keys: Option<Arc<dyn KeyStore>>,
    hasher: KeyHasher,
    jwt: Option<JwtVerifier>,
    anonymous: Option<Principal>,
    pass_through: bool,
}

impl IdentityBuilder {
    /// The processor's name in reports and rejections (default `identity`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Where API keys are looked up.
    #[must_use]
    pub fn keys(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.keys = Some(store);
        self
    }

    /// How presented keys are hashed (default plain SHA-256; use [`KeyHasher::hmac`] with the
    /// deployment's pepper if the store's hashes were made with one).
    #[must_use]
    pub fn hasher(mut self, hasher: KeyHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// Accepts JWT bearer tokens checked by `verifier`.
    #[must_use]
    pub fn jwt(mut self, verifier: JwtVerifier) -> Self {
        self.jwt = Some(verifier);
        self
    }

    /// The principal of requests without any credential (made with [`Principal::anonymous`]).
    #[must_use]
    pub fn anonymous(mut self, principal: Principal) -> Self {
        self.anonymous = Some(principal);
        self
    }

    /// Keeps the client's credential headers for the upstream (default: removed).
    #[must_use]
    pub fn pass_through(mut self, on: bool) -> Self {
        self.pass_through = on;
        self
    }

    /// The processor.
    pub fn build(self) -> Identity {
        Identity {
            inner: Arc::new(Inner {
                name: self.name.unwrap_or_else(|| "identity".into()),
                keys: self.keys,
                hasher: self.hasher,
                jwt: self.jwt,
                anonymous: self.anonymous.map(Arc::new),
                pass_through: self.pass_through,
            }),
        }
    }
}

impl Identity {
    /// A builder.
    pub fn builder() -> IdentityBuilder {
        IdentityBuilder::default()
    }

    /// The processor for `config`: opens the key store (a file is read now; Redis is connected
    /// on first use) and reads the JWKS.
    pub async fn from_config(config: &IdentityConfig) -> Result<Self, IdentityError> {
        let hasher = config.pepper.as_ref().map_or_else(KeyHasher::sha256, |p| {
            KeyHasher::hmac(p.expose().as_bytes())
        });
        let mut b = Self::builder()
            .hasher(hasher.clone())
            .pass_through(config.pass_through);
        if let Some(store) = &config.keys {
            b = b.keys(open_store(store, &hasher)?);
        }
        if let Some(jwt) = &config.jwt {
            b = b.jwt(JwtVerifier::new(jwt.clone()).await?);
        }
        if let Some(a) = &config.anonymous {
            let id = a.id.as_deref().unwrap_or("anonymous");
            b = b.anonymous(a.principal.to_anonymous(id));
        }
        if config.keys.is_none() && config.jwt.is_none() && config.anonymous.is_none() {
            return Err(IdentityError::Config(
                "identity: configure `keys`, `jwt` or `anonymous` (nothing would be accepted)"
                    .into(),
            ));
        }
        Ok(b.build())
    }

    /// The key store, if any (for the key tool and metrics).
    pub fn key_store(&self) -> Option<&Arc<dyn KeyStore>> {
        self.inner.keys.as_ref()
    }

    /// Authenticates the credential in `headers` (nothing else is checked): the principal, or
    /// why not.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Principal>, AuthError> {
        let inner = &*self.inner;
        let Some(cred) = credential(headers)? else {
            return inner
                .anonymous
                .clone()
                .ok_or(AuthError::Refused(AuthFailure::Missing));
        };
        if cred.starts_with(crate::keys::KEY_PREFIX) {
            return self.check_key(cred).await;
        }
        if let Some(jwt) = &inner.jwt
            && cred.split('.').count() == 3
        {
            // `exp` and `nbf` are checked there, with the leeway.
            return jwt.verify(cred).await;
        }
        Err(AuthFailure::Malformed.into())
    }

    async fn check_key(&self, cred: &str) -> Result<Arc<Principal>, AuthError> {
        let inner = &*self.inner;
        let parsed = parse_key(cred).ok_or(AuthFailure::Malformed)?;
        let store = inner.keys.as_ref().ok_or(AuthFailure::InvalidKey)?;
        match store.lookup(parsed.id()).await {
            Ok(Lookup::Found(entry)) => {
                // The secret first: whether a key is revoked is told only to its holder.
                if !entry.verify(cred, &inner.hasher) {
                    return Err(AuthFailure::InvalidKey.into());
                }
                if entry.record().revoked {
                    return Err(AuthFailure::Revoked.into());
                }
                if entry.principal().is_expired(SystemTime::now()) {
                    return Err(AuthFailure::Expired.into());
                }
                Ok(entry.principal().clone())
            }
            Ok(Lookup::Throttled) => Err(AuthFailure::LookupBudget.into()),
            Ok(_) => Err(AuthFailure::InvalidKey.into()),
            Err(e) => Err(AuthError::Unavailable(e.to_string())),
        }
    }

    /// Whether `principal` may call `path` with `model` (`None`: no model in the request).
    pub fn authorize(
        principal: &Principal,
        path: &str,
        model: Option<&str>,
    ) -> Result<(), AuthFailure> {
        if !principal.allows_endpoint(path) {
            return Err(AuthFailure::EndpointNotAllowed);
        }
        if let Some(m) = model
            && !principal.allows_model(m)
        {
            return Err(AuthFailure::ModelNotAllowed);
        }
        Ok(())
    }

    /// Removes the client's credential headers (what the processor does unless pass-through).
    pub fn strip_credentials(headers: &mut HeaderMap) {
        headers.remove(AUTHORIZATION);
        headers.remove(X_API_KEY);
    }

    fn refuse(&self, failure: AuthFailure) -> Decision {
        tracing::debug!(processor = %self.inner.name, reason = failure.as_str(), "identity: request refused");
        Decision::Reject(failure.rejection(self.inner.name.clone()))
    }
}

/// The credential of a request: `Authorization: Bearer X` or `x-api-key: X`; both present
/// and different is refused (which one would be meant?).
fn credential(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let bearer = match headers.get(AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| AuthFailure::Malformed)?.trim();
            let (scheme, rest) = v.split_once(' ').ok_or(AuthFailure::Malformed)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthFailure::Malformed);
            }
            Some(rest.trim())
        }
    };
    let x_api_key = match headers.get(X_API_KEY) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| AuthFailure::Malformed)?.trim()),
    };
    match (bearer, x_api_key) {
        (Some(a), Some(b)) if a != b => Err(AuthFailure::Malformed),
        (Some(c), _) | (None, Some(c)) => {
            if c.is_empty() {
                Err(AuthFailure::Malformed)
            } else {
                Ok(Some(c))
            }
        }
        (None, None) => Ok(None),
    }
}

fn open_store(
    config: &KeyStoreConfig,
    hasher: &KeyHasher,
) -> Result<Arc<dyn KeyStore>, IdentityError> {
    Ok(match config {
        KeyStoreConfig::Inline { keys } => {
            let records = keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    KeyRecord::from_inline(k, hasher)
                        .map_err(|e| IdentityError::Config(format!("identity.keys.keys[{i}]: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(MemoryKeyStore::new(records, hasher.clone())?)
        }
        KeyStoreConfig::File {
            path,
            check_interval_ms,
        } => Arc::new(
            FileKeyStore::open(path.clone(), hasher.clone())?
                .with_check_interval(Duration::from_millis(*check_interval_ms)),
        ),
        #[cfg(feature = "redis")]
        KeyStoreConfig::Redis(r) => {
            Arc::new(crate::keys::RedisKeyStore::new(r.clone(), hasher.clone())?)
        }
        #[cfg(not(feature = "redis"))]
        KeyStoreConfig::Redis(_) => {
            return Err(IdentityError::Config(
                "identity.keys: store = \"redis\" needs the `redis` feature".into(),
            ));
        }
    })
}

#[async_trait]
impl Processor for Identity {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST
    }

    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let principal = match self.authenticate(cx.headers()).await {
            Ok(p) => p,
            Err(AuthError::Refused(f)) => return Ok(self.refuse(f)),
            Err(AuthError::Unavailable(m)) => {
                tracing::warn!(processor = %self.inner.name, error = %m, "identity: credential source unavailable");
                return Err(ProcessorError::external(m));
            }
        };
        let model = cx.payload().and_then(infergate_core::Payload::model);
        if let Err(f) = Self::authorize(&principal, cx.uri().path(), model) {
            return Ok(self.refuse(f));
        }
        if !self.inner.pass_through {
            Self::strip_credentials(cx.headers_mut());
        }
        cx.state_mut().insert(principal.clone());
        cx.extensions_mut().insert(principal);
        Ok(Decision::Continue)
    }
}
