//! Translation errors (what this crate refuses) and provider errors (what an upstream said).

use crate::{Protocol, eventstream::EventStreamError};

/// Why a translation failed. Every variant is a client error (HTTP 400) except
/// [`Error::Upstream`] (HTTP 502: the provider's bytes could not be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The target protocol cannot represent a field, and the caller did not opt into a lossy
    /// mapping for it. `param` names the field the OpenAI way (`logit_bias`,
    /// `messages[2].content[0]`, `tools[0].strict`).
    #[error("{param}: {reason} (not representable for {target})")]
    Unsupported {
        /// The field.
        param: String,
        /// The protocol that cannot represent it.
        target: Protocol,
        /// Why.
        reason: &'static str,
    },
    /// The client's body is not a valid request of its protocol.
    #[error("{param}: {message}")]
    InvalidRequest {
        /// The field at fault (may be empty: the whole body).
        param: String,
        /// What is wrong.
        message: String,
    },
    /// The upstream's bytes are not a valid answer of its protocol, or exceed a bound.
    #[error("invalid upstream answer: {0}")]
    Upstream(String),
    /// The AWS event-stream framing is corrupt.
    #[error("event stream: {0}")]
    EventStream(#[from] EventStreamError),
}

impl Error {
    /// The HTTP status that fits: 400 for the client's faults, 502 for the upstream's.
    pub fn status(&self) -> u16 {
        match self {
            Error::Unsupported { .. } | Error::InvalidRequest { .. } => 400,
            Error::Upstream(_) | Error::EventStream(_) => 502,
        }
    }

    /// The field at fault, OpenAI's `param`.
    pub fn param(&self) -> Option<&str> {
        match self {
            Error::Unsupported { param, .. } | Error::InvalidRequest { param, .. }
                if !param.is_empty() =>
            {
                Some(param)
            }
            _ => None,
        }
    }

    /// This error as a [`ProviderError`], to answer the client in its own API's shape with
    /// [`crate::encode_error`].
    pub fn to_provider_error(&self) -> ProviderError {
        let (kind, code) = match self {
            Error::Unsupported { .. } => (ErrorKind::InvalidRequest, Some("unsupported_parameter")),
            Error::InvalidRequest { .. } => (ErrorKind::InvalidRequest, Some("invalid_request")),
            Error::Upstream(_) | Error::EventStream(_) => {
                (ErrorKind::BadGateway, Some("bad_upstream_answer"))
            }
        };
        ProviderError {
            status: self.status(),
            kind,
            message: self.to_string(),
            code: code.map(str::to_owned),
            param: self.param().map(str::to_owned),
            provider_type: None,
        }
    }

    pub(crate) fn unsupported(
        param: impl Into<String>,
        target: Protocol,
        reason: &'static str,
    ) -> Self {
        Error::Unsupported {
            param: param.into(),
            target,
            reason,
        }
    }

    /// This error with `target` as the protocol that cannot represent the field (a decoder's
    /// refusal does not know the translation's target).
    #[must_use]
    pub fn for_target(self, to: Protocol) -> Self {
        match self {
            Error::Unsupported { param, reason, .. } => Error::Unsupported {
                param,
                target: to,
                reason,
            },
            other => other,
        }
    }

    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// The kind of a provider error, across protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 400.
    InvalidRequest,
    /// 401.
    Authentication,
    /// 403.
    PermissionDenied,
    /// 404.
    NotFound,
    /// 413.
    RequestTooLarge,
    /// 429.
    RateLimit,
    /// 500.
    Server,
    /// 502: the upstream's answer could not be read.
    BadGateway,
    /// 503 / Anthropic 529.
    Overloaded,
    /// 504 / 408.
    Timeout,
}

impl ErrorKind {
    /// The kind an HTTP status means.
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::Timeout,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            502 => ErrorKind::BadGateway,
            503 | 529 => ErrorKind::Overloaded,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        }
    }

    /// The status a client API expects for this kind (Anthropic's overload is 529).
    pub fn status_for(self, protocol: Protocol) -> u16 {
        match self {
            ErrorKind::InvalidRequest => 400,
            ErrorKind::Authentication => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Server => 500,
            ErrorKind::BadGateway => 502,
            ErrorKind::Overloaded => {
                if protocol == Protocol::Anthropic {
                    529
                } else {
                    503
                }
            }
            ErrorKind::Timeout => 504,
        }
    }
}

/// An error answered by a provider, in no protocol's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderError {
    /// The HTTP status the provider sent (200 for a mid-stream error).
    pub status: u16,
    /// The kind.
    pub kind: ErrorKind,
    /// The message.
    pub message: String,
    /// A machine code (OpenAI `code`, Gemini `status`), when given.
    pub code: Option<String>,
    /// The field at fault, when given.
    pub param: Option<String>,
    /// The provider's own type name (Anthropic `error.type`, OpenAI `error.type`, Bedrock
    /// exception type), when given.
    pub provider_type: Option<String>,
}

impl ProviderError {
    /// An error of a kind with a message.
    pub fn new(kind: ErrorKind, status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            code: None,
            param: None,
            provider_type: None,
        }
    }
}
