//! Errors: building the block, the key stores, and why a credential was refused.

use std::borrow::Cow;

use http::StatusCode;
use infergate_core::{RejectKind, Rejection};

/// A configuration or set-up error (building the processor, opening a store).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The configuration is invalid; the message names the place.
    #[error("identity config: {0}")]
    Config(String),
    /// A key store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The JWKS could not be loaded.
    #[error("identity JWKS: {0}")]
    Jwks(String),
}

/// A key store failed (I/O, Redis, a record that does not parse). Never carries a key.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record does not parse (the line number, 1-based, for files).
    #[error("key record {place}: {message}")]
    Record {
        /// Where (a line of the file, a Redis key id).
        place: String,
        /// What is wrong.
        message: String,
    },
    /// Redis failed.
    #[error("redis key store: {0}")]
    Redis(String),
    /// The store cannot do this (an inline store cannot create or revoke keys).
    #[error("key store: {0} is not supported by this store")]
    Unsupported(&'static str),
    /// No such key id.
    #[error("no key with this id")]
    NotFound,
    /// The operating system gave no randomness for a new key.
    #[error("no randomness from the operating system: {0}")]
    Entropy(String),
}

/// Why authentication did not produce a principal.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The credential was refused (401 or 403).
    #[error("refused: {0}")]
    Refused(AuthFailure),
    /// A store or the JWKS source failed (the processor fails closed). Names no credential.
    #[error("identity source unavailable: {0}")]
    Unavailable(String),
}

impl From<AuthFailure> for AuthError {
    fn from(f: AuthFailure) -> Self {
        Self::Refused(f)
    }
}

/// Why a request was refused: mapped to a 401 or 403 in the API's error shape. The messages
/// name no credential.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// No credential, and anonymous access is not configured.
    Missing,
    /// A credential that is not a well-formed API key or JWT.
    Malformed,
    /// No such key, or the secret does not match.
    InvalidKey,
    /// The key was revoked.
    Revoked,
    /// The key has expired.
    Expired,
    /// The token has expired (`exp` past, beyond the leeway).
    TokenExpired,
    /// Unknown key ids arrive faster than the store's lookup budget: refused without asking.
    LookupBudget,
    /// The token's signature, algorithm, issuer, audience or times do not check out.
    InvalidToken,
    /// The token lacks a claim the configuration requires (the tenant).
    MissingClaim,
    /// The principal may not use the requested model.
    ModelNotAllowed,
    /// The principal may not call this endpoint.
    EndpointNotAllowed,
}

impl AuthFailure {
    /// The HTTP status: 401, or 403 for the two permission failures.
    pub fn status(self) -> StatusCode {
        match self {
            Self::ModelNotAllowed | Self::EndpointNotAllowed => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The machine-readable `code` of the error body.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_api_key",
            Self::Malformed | Self::InvalidKey | Self::Revoked | Self::LookupBudget => {
                "invalid_api_key"
            }
            Self::Expired => "expired_api_key",
            Self::TokenExpired => "expired_token",
            Self::InvalidToken | Self::MissingClaim => "invalid_token",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::EndpointNotAllowed => "endpoint_not_allowed",
        }
    }

    /// What the client is told (no credential, no detail that helps guessing).
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => {
                "Missing credentials: send an API key (Authorization: Bearer or x-api-key)."
            }
            Self::Malformed | Self::InvalidKey | Self::LookupBudget => "Invalid API key.",
            Self::Revoked => "This API key has been revoked.",
            Self::Expired => "This API key has expired.",
            Self::TokenExpired => "The bearer token has expired.",
            Self::InvalidToken => "Invalid bearer token.",
            Self::MissingClaim => "The bearer token lacks a required claim.",
            Self::ModelNotAllowed => "This credential may not use the requested model.",
            Self::EndpointNotAllowed => "This credential may not call this endpoint.",
        }
    }

    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::InvalidKey => "invalid_key",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::TokenExpired => "token_expired",
            Self::LookupBudget => "lookup_budget",
            Self::InvalidToken => "invalid_token",
            Self::MissingClaim => "missing_claim",
            Self::ModelNotAllowed => "model_not_allowed",
            Self::EndpointNotAllowed => "endpoint_not_allowed",
        }
    }

    /// The rejection the processor answers with (the pipeline renders it in the OpenAI shape,
    /// Anthropic's on `/v1/messages`).
    pub fn rejection(self, processor: impl Into<Cow<'static, str>>) -> Rejection {
        let kind = if self.status() == StatusCode::FORBIDDEN {
            RejectKind::Forbidden
        } else {
            RejectKind::Unauthorized
        };
        let mut r = Rejection::new(kind, self.message())
            .with_status(self.status())
            .with_code(self.code())
            .with_processor(processor);
        if self.status() == StatusCode::UNAUTHORIZED {
            r = r.with_header(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
