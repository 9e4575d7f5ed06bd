//! Errors, rejections and the one error response shape.
//!
//! Every policy outcome that ends a request early (too large, malformed, rate limited, blocked, a
//! processor that failed closed) is a [`Rejection`]: an HTTP response in OpenAI's error shape
//! `{"error":{"message","type","code","param"}}`, with the typed [`Rejection`] itself placed in the
//! response extensions so that callers can match on [`RejectKind`] instead of parsing JSON.
//!
//! Failures of processors are [`ProcessorError`]s, classified by [`FailureClass`]; what happens
//! next is decided by the processor's [`FailureMode`](crate::FailureMode).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// A boxed error that can cross threads, as used by bodies and services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request was answered by the gateway rather than by the upstream.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectKind {
    /// The request is not valid for the endpoint (missing or wrong fields).
    InvalidRequest,
    /// The body is not valid JSON.
    MalformedBody,
    /// The body is not valid UTF-8.
    InvalidEncoding,
    /// The content type is not JSON.
    UnsupportedMediaType,
    /// The body is larger than the configured bound.
    BodyTooLarge,
    /// A rate limit was exceeded.
    RateLimited,
    /// A spending budget is exhausted (429, OpenAI's `insufficient_quota`).
    QuotaExceeded,
    /// A guardrail blocked the content.
    ContentBlocked,
    /// The caller is not authenticated (401).
    Unauthorized,
    /// The caller is authenticated but may not do this: a model, an endpoint or a region its
    /// principal does not allow (403, `permission_error`).
    Forbidden,
    /// A processor failed and its failure mode is `FailClosed`.
    ProcessorFailed,
    /// A processor timed out and its failure mode is `FailClosed`.
    ProcessorTimeout,
    /// The pipeline's overall deadline passed.
    DeadlineExceeded,
    /// An external service a processor depends on failed.
    ExternalServiceFailed,
    /// The upstream failed or answered something unusable.
    UpstreamFailed,
    /// No upstream is available.
    UpstreamUnavailable,
    /// The request has already passed through too many gateways.
    LoopDetected,
    /// Something else; the message says what.
    Other,
}

impl RejectKind {
    /// The HTTP status this kind maps to by default.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest
            | Self::MalformedBody
            | Self::InvalidEncoding
            | Self::ContentBlocked => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited | Self::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::ProcessorFailed | Self::Other => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ProcessorTimeout | Self::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Self::ExternalServiceFailed | Self::UpstreamFailed => StatusCode::BAD_GATEWAY,
            Self::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::LoopDetected => StatusCode::LOOP_DETECTED,
        }
    }

    /// The OpenAI error `type` string for this kind.
    pub fn error_type(self) -> &'static str {
        match self {
            Self::InvalidRequest
            | Self::MalformedBody
            | Self::InvalidEncoding
            | Self::UnsupportedMediaType
            | Self::BodyTooLarge
            | Self::ContentBlocked
            | Self::LoopDetected => "invalid_request_error",
            Self::RateLimited => "rate_limit_error",
            Self::QuotaExceeded => "insufficient_quota",
            Self::Unauthorized => "authentication_error",
            Self::Forbidden => "permission_error",
            Self::ProcessorTimeout | Self::DeadlineExceeded => "timeout_error",
            Self::ExternalServiceFailed | Self::UpstreamFailed | Self::UpstreamUnavailable => {
                "upstream_error"
            }
            Self::ProcessorFailed | Self::Other => "server_error",
        }
    }

    /// The default machine-readable `code` for this kind.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::MalformedBody => "invalid_json",
            Self::InvalidEncoding => "invalid_utf8",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::BodyTooLarge => "request_too_large",
            Self::RateLimited => "rate_limit_exceeded",
            Self::QuotaExceeded => "insufficient_quota",
            Self::ContentBlocked => "content_filter",
            Self::Unauthorized => "invalid_api_key",
            Self::Forbidden => "permission_denied",
            Self::ProcessorFailed => "processor_failed",
            Self::ProcessorTimeout => "processor_timeout",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::ExternalServiceFailed => "external_service_failed",
            Self::UpstreamFailed => "upstream_failed",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::LoopDetected => "loop_detected",
            Self::Other => "gateway_error",
        }
    }
}

/// A decision (or a fail-closed failure) that answers the request with an error response.
///
/// Built with [`Rejection::new`] and refined with the builder methods; turned into a response with
/// [`Rejection::into_response`]. The message is shown to the client: never put a secret in it.
#[derive(Debug, Clone)]
pub struct Rejection(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: RejectKind,
    status: StatusCode,
    message: Cow<'static, str>,
    code: Option<Cow<'static, str>>,
    param: Option<Cow<'static, str>>,
    processor: Option<Cow<'static, str>>,
    headers: HeaderMap,
}

impl Rejection {
    /// A rejection of `kind` with its default status and code.
    pub fn new(kind: RejectKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self(Box::new(Inner {
            kind,
            status: kind.status(),
            message: message.into(),
            code: None,
            param: None,
            processor: None,
            headers: HeaderMap::new(),
        }))
    }

    /// Overrides the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.0.status = status;
        self
    }

    /// Overrides the `code` field.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.0.code = Some(code.into());
        self
    }

    /// Sets the `param` field (the request field at fault).
    #[must_use]
    pub fn with_param(mut self, param: impl Into<Cow<'static, str>>) -> Self {
        self.0.param = Some(param.into());
        self
    }

    /// Names the processor that decided.
    #[must_use]
    pub fn with_processor(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.0.processor = Some(name.into());
        self
    }

    /// Adds a header to the response (for example `Retry-After`).
    #[must_use]
    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.append(name, value);
        self
    }

    /// The typed reason.
    pub fn kind(&self) -> RejectKind {
        self.0.kind
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The message shown to the client.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The `code` field.
    pub fn code(&self) -> &str {
        self.0.code.as_deref().unwrap_or(self.0.kind.code())
    }

    /// The processor that decided, if any.
    pub fn processor(&self) -> Option<&str> {
        self.0.processor.as_deref()
    }

    /// Extra response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.0.headers
    }

    /// The JSON error body, in OpenAI's shape.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.0.message,
                "type": self.0.kind.error_type(),
                "code": self.code(),
                "param": self.0.param,
            }
        })
    }

    /// The JSON error body, in Anthropic's shape (`{"type":"error","error":{"type","message"}}`).
    pub fn to_anthropic_json(&self) -> serde_json::Value {
        let ty = match self.0.kind {
            RejectKind::RateLimited | RejectKind::QuotaExceeded => "rate_limit_error",
            RejectKind::Unauthorized => "authentication_error",
            RejectKind::Forbidden => "permission_error",
            RejectKind::BodyTooLarge => "request_too_large",
            RejectKind::ProcessorTimeout
            | RejectKind::DeadlineExceeded
            | RejectKind::ExternalServiceFailed
            | RejectKind::UpstreamFailed
            | RejectKind::ProcessorFailed
            | RejectKind::Other => "api_error",
            RejectKind::UpstreamUnavailable => "overloaded_error",
            _ => "invalid_request_error",
        };
        serde_json::json!({"type": "error", "error": {"type": ty, "message": self.0.message}})
    }

    /// The response: status, `content-type: application/json`, extra headers, the OpenAI error
    /// body, and this rejection in the extensions.
    pub fn into_response<B: From<Bytes>>(self) -> http::Response<B> {
        let body = Bytes::from(self.to_json().to_string());
        let mut resp = http::Response::new(B::from(body));
        *resp.status_mut() = self.0.status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &self.0.headers {
            headers.append(name.clone(), value.clone());
        }
        resp.extensions_mut().insert(self);
        resp
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.0.status, self.code(), self.0.message)
    }
}

/// What kind of failure a processor met. Every failure is classified, recorded with `tracing`,
/// and then handled by the processor's failure mode.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The processor's own logic failed.
    Processor,
    /// The processor did not finish within its timeout.
    Timeout,
    /// A body was over its bound.
    BodyTooLarge,
    /// A body could not be parsed.
    MalformedBody,
    /// An external service (Redis, a moderation API, ...) failed or timed out.
    ExternalService,
}

impl FailureClass {
    /// A short lowercase name, as used in traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processor => "processor_error",
            Self::Timeout => "timeout",
            Self::BodyTooLarge => "body_too_large",
            Self::MalformedBody => "malformed_body",
            Self::ExternalService => "external_service",
        }
    }

    /// The rejection kind a fail-closed failure of this class becomes.
    pub fn reject_kind(self) -> RejectKind {
        match self {
            Self::Processor => RejectKind::ProcessorFailed,
            Self::Timeout => RejectKind::ProcessorTimeout,
            Self::BodyTooLarge => RejectKind::BodyTooLarge,
            Self::MalformedBody => RejectKind::MalformedBody,
            Self::ExternalService => RejectKind::ExternalServiceFailed,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A processor's failure: a classified error. Its message goes to traces, never to clients.
#[derive(Debug, thiserror::Error)]
#[error("{class}: {message}")]
pub struct ProcessorError {
    class: FailureClass,
    message: Cow<'static, str>,
    #[source]
    source: Option<BoxError>,
}

impl ProcessorError {
    /// A failure of `class` with a message for the traces.
    pub fn new(class: FailureClass, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            class,
            message: message.into(),
            source: None,
        }
    }

    /// A failure of the processor's own logic.
    pub fn processor(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(FailureClass::Processor, message)
    }

    /// A failure of an external service.
    pub fn external(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(FailureClass::ExternalService, message)
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The failure's class.
    pub fn class(&self) -> FailureClass {
        self.class
    }

    /// The message (for traces).
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_has_openai_shape_and_typed_extension() {
        let rej = Rejection::new(RejectKind::RateLimited, "slow down")
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("3"));
        let resp: http::Response<Bytes> = rej.into_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "3");
        let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(v["error"]["message"], "slow down");
        assert!(v["error"]["param"].is_null());
        let ext = resp.extensions().get::<Rejection>().unwrap();
        assert_eq!(ext.kind(), RejectKind::RateLimited);
    }
}
