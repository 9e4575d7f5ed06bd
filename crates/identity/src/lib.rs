//! # infergate-identity
//!
//! Client identity for LLM gateways: the [`Identity`] processor (meant to run first) turns the
//! client's credential — an API key (`igk_…`) or a JWT bearer token — into a
//! [`Principal`](infergate_core::Principal) in the request extensions, which every other block
//! can key off (tenant, team, user, key id, allowed models and endpoints, named limits).
//!
//! ```
//! use infergate_core::{Body, Principal};
//! use infergate_identity::{Identity, IdentityLayer, KeyHasher, KeyRecord, MemoryKeyStore, PrincipalSpec};
//! use std::sync::Arc;
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let key = "igk_demo_0000000000000000000000000000";
//! let hasher = KeyHasher::sha256();
//! let mut spec = PrincipalSpec::tenant("acme");
//! spec.allowed_models = vec!["gpt-4o*".into()];
//! let store = MemoryKeyStore::new([KeyRecord::from_key(key, spec, &hasher).unwrap()], hasher).unwrap();
//! let identity = Identity::builder().keys(Arc::new(store)).build();
//!
//! // The upstream: answers with the tenant it was told, and whether a credential reached it.
//! let upstream = tower::service_fn(|req: http::Request<Body>| async move {
//!     let p = Principal::from_extensions(req.extensions()).unwrap();
//!     let leaked = req.headers().contains_key("authorization");
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(format!("{} {leaked}", p.tenant()))))
//! });
//! let svc = IdentityLayer::new(identity).layer(upstream);
//! let req = |model: &str| {
//!     http::Request::post("/v1/chat/completions")
//!         .header("authorization", format!("Bearer {key}"))
//!         .header("content-type", "application/json")
//!         .body(Body::from(format!(r#"{{"model":"{model}","messages":[]}}"#)))
//!         .unwrap()
//! };
//! let ok = svc.clone().oneshot(req("gpt-4o-mini")).await.unwrap();
//! let body = http_body_util::BodyExt::collect(ok.into_body()).await.unwrap().to_bytes();
//! assert_eq!(body, "acme false");
//! let denied = svc.oneshot(req("o3")).await.unwrap();
//! assert_eq!(denied.status(), 403);
//! # }
//! ```
//!
//! ## Credentials
//!
//! - **API keys** ([`keys`]): `igk_<key id>_<secret>`, high entropy, stored only as a hash
//!   (SHA-256, or HMAC-SHA-256 under a per-deployment pepper) beside the key id, looked up by
//!   id and compared in constant time. Stores: [`MemoryKeyStore`] (inline configuration),
//!   [`FileKeyStore`] (JSON lines, re-read when the file changes), `RedisKeyStore` (feature
//!   `redis`: shared by replicas, cached locally with a bounded revocation delay, a negative
//!   cache and a lookup budget against floods of bad keys). [`KeyAdmin`] creates, lists and
//!   revokes keys.
//! - **JWT bearer tokens** ([`jwt`]): RS256, ES256, EdDSA against a JWKS (file, URL, inline),
//!   issuer, audience, `exp`/`nbf` with leeway; claims mapped to the principal by
//!   configuration. `alg: none` and HS* are refused.
//! - **Anonymous** access only when configured, as its own named principal.
//!
//! ## Refusals
//!
//! 401 (`missing_api_key`, `invalid_api_key`, `expired_api_key`, `invalid_token`) or 403
//! (`model_not_allowed`, `endpoint_not_allowed`), in the OpenAI error shape and Anthropic's on
//! `/v1/messages`. Keys and tokens never appear in logs, `Debug` output, error bodies or
//! metrics: the principal carries only the key id.
//!
//! See `docs/identity.md` for the stores' revocation bounds and how the other blocks key off
//! the principal.

pub mod config;
pub mod error;
pub mod jwt;
pub mod keys;
mod layer;
mod processor;

pub use config::{
    AnonymousConfig, ClaimMapping, IdentityConfig, InlineKey, JwksSource, JwtAlgorithm, JwtConfig,
    KeyStoreConfig, PrincipalSpec, RedisStoreConfig, Secret,
};
pub use error::{AuthError, AuthFailure, IdentityError, StoreError};
pub use jwt::JwtVerifier;
#[cfg(feature = "redis")]
pub use keys::RedisKeyStore;
pub use keys::{
    Clock, FileKeyStore, KeyAdmin, KeyEntry, KeyHasher, KeyRecord, KeyStore, Lookup, ManualClock,
    MemoryKeyStore, SystemClock,
};
pub use layer::IdentityLayer;
pub use processor::{Identity, IdentityBuilder, X_API_KEY};
