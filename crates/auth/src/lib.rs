//! Provider credentials for LLM upstreams: OpenAI, Azure OpenAI, Anthropic and AWS SigV4
//! (Bedrock), injected by a tower layer on the upstream side, one per backend.
//!
//! ```
//! use infergate_auth::{KeySource, Keys, Provider, ProviderAuthLayer};
//! use tower::Layer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = infergate_client::UpstreamClient::new("https://api.openai.com/v1").unwrap();
//! // Two keys used in turn: one from the environment, one from a file re-read on change.
//! let keys = Keys::new([
//!     KeySource::Env("OPENAI_API_KEY".into()),
//!     KeySource::File("/run/secrets/openai-key".into()),
//! ]);
//! let svc = ProviderAuthLayer::new(Provider::OpenAi(keys)).layer(upstream.into_proxy());
//! # let _ = svc;
//! # }
//! ```
//!
//! Before injecting, the client's own credentials (`Authorization`, `x-api-key`, `api-key`,
//! `x-goog-api-key`) and account headers (`OpenAI-Organization`, `OpenAI-Project`,
//! `x-goog-user-project`, `Cookie`, `Proxy-Authorization`, and every `anthropic-*` header but
//! the protocol headers `anthropic-version` and `anthropic-beta`) are removed, always, unless
//! the backend is explicitly pass-through (bring your own key: a request that carries a key
//! keeps it and its account headers). This holds with or without an identity block in front:
//! the client's credential is never the backend's. Keys are [`Secret`]s: `Debug` and `Display` print `[redacted]`,
//! the memory is zeroised on drop, injected headers are marked sensitive, and an error names
//! the source of a missing key, never a value.
//!
//! Dependencies: `aws-sigv4` (about 70 crates, signatures equal to botocore's — checked against
//! the SigV4 test suites) rather than a hand-written signer.
//!
//! ## Configuration as data
//!
//! [`ProviderSpec`] is a backend's credentials as plain data (with the `serde` feature,
//! default, it deserializes; keys are written `env:NAME`, `file:PATH` or `inline:VALUE` and
//! held as [`Secret`]s; no error repeats a value); [`ProviderSpec::layer`] makes the
//! [`ProviderAuthLayer`].

mod aws;
mod config;
mod keys;
mod provider;
mod secret;
mod tokens;

pub use aws::{AwsCredentialSource, AwsCredentials, SigV4Options, sign_sigv4};
pub use config::{AwsCredentialsKind, ProviderKind, ProviderSpec, SpecError};
pub use keys::{KeySource, Keys};
pub use provider::{
    ANTHROPIC_PROTOCOL_HEADERS, ANTHROPIC_VERSION, CLIENT_ACCOUNT_HEADERS,
    CLIENT_CREDENTIAL_HEADERS, Provider, ProviderAuth, ProviderAuthLayer,
    is_client_credential_header, strip_client_credentials,
};
pub use secret::Secret;
pub use tokens::{
    CachedToken, EntraClientCredentials, MAX_TOKEN_LIFETIME, MetadataServer, ServiceAccount, Token,
    TokenSource,
};

/// Why credentials could not be applied.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A key is missing (names its source, never a value).
    #[error("missing credential: {0}")]
    MissingKey(String),
    /// The request could not be signed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// An access token could not be obtained.
    #[error("token fetch failed: {0}")]
    TokenFetch(String),
}
