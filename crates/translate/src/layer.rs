//! Translation as a building block (feature `tower`, on by default): a tower layer put on one
//! backend, below failover, that speaks the backend's protocol to it and the client's API back.
//!
//! The client's API is the endpoint it called (`/v1/chat/completions`, `/v1/messages`,
//! `/v1/responses`); the backend's is declared ([`Target`]). When they differ, the request body
//! is translated (and the path set: Bedrock and Gemini carry the model and streaming in the
//! URL), and the answer is translated back: a whole body at once, a stream event by event (no
//! stream is buffered; at most one upstream event of delay), an error into the client's error
//! shape with a fitting status. A request the backend cannot represent is a 400 in the client's
//! shape naming the field (`param`). Other paths (embeddings, models) and requests already in
//! the backend's protocol pass through untouched.
//!
//! The layer sits under the pipeline and failover and above the provider credentials, so each
//! failover attempt is translated for its own backend and a SigV4 signature covers the
//! translated body; the pipeline's processors read usage and text in the client's API.
//!
//! ```
//! use std::convert::Infallible;
//! use infergate_core::Body;
//! use infergate_translate::layer::{Target, TranslateLayer};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // An Anthropic backend (here a stub that answers in Anthropic's shape).
//! let anthropic = tower::service_fn(|req: http::Request<Body>| async move {
//!     assert_eq!(req.uri().path(), "/v1/messages");
//!     let answer = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
//!         "content":[{"type":"text","text":"Bonjour"}],"stop_reason":"end_turn",
//!         "usage":{"input_tokens":5,"output_tokens":2}}"#;
//!     Ok::<_, Infallible>(http::Response::new(Body::from(answer)))
//! });
//! let svc = TranslateLayer::new(Target::Anthropic).layer(anthropic);
//! // An OpenAI client's request.
//! let req = http::Request::post("/v1/chat/completions")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"model":"claude-x","messages":[{"role":"user","content":"Salut"}]}"#))
//!     .unwrap();
//! let resp = svc.oneshot(req).await.unwrap();
//! let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
//! let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(v["choices"][0]["message"]["content"], "Bonjour");
//! assert_eq!(v["usage"]["total_tokens"], 7);
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, header};
use http_body::Frame;
use infergate_core::Body;
use infergate_core::body::collect_limited;
use tower::{Layer, Service};

use crate::{
    ErrorKind, Options, Protocol, ProviderError, StreamTranslator, decode_request, encode_error,
    encode_request, translate_error, translate_response,
};

/// The bound on an upstream error body read for translation.
const MAX_ERROR_BODY: usize = 1 << 20;

/// The protocol a backend speaks, and where its model goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// OpenAI Chat Completions (`/v1/chat/completions`), and every OpenAI-compatible server.
    OpenAi,
    /// The OpenAI Responses API (`/v1/responses`), stateless.
    OpenAiResponses,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Amazon Bedrock Converse (`/model/{model}/converse`, `/converse-stream`).
    Bedrock,
    /// Google Gemini (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`).
    Gemini,
    /// Gemini on Vertex AI (`/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:…`).
    VertexGemini {
        /// The Google Cloud project.
        project: String,
        /// The region (`us-central1`, `global`).
        location: String,
    },
    /// Anthropic on Vertex AI (`…/publishers/anthropic/models/{model}:rawPredict`,
    /// `:streamRawPredict`; the body carries `anthropic_version` instead of the model).
    VertexAnthropic {
        /// The Google Cloud project.
        project: String,
        /// The region.
        location: String,
    },
}

impl Target {
    /// The wire protocol.
    pub fn protocol(&self) -> Protocol {
        match self {
            Target::OpenAi => Protocol::OpenAiChat,
            Target::OpenAiResponses => Protocol::OpenAiResponses,
            Target::Anthropic | Target::VertexAnthropic { .. } => Protocol::Anthropic,
            Target::Bedrock => Protocol::Bedrock,
            Target::Gemini | Target::VertexGemini { .. } => Protocol::Gemini,
        }
    }

    /// The request path for `model`, streamed or not.
    pub fn path(&self, model: &str, stream: bool) -> String {
        let m = encode_segment(model);
        match self {
            Target::OpenAi => "/v1/chat/completions".to_owned(),
            Target::OpenAiResponses => "/v1/responses".to_owned(),
            Target::Anthropic => "/v1/messages".to_owned(),
            Target::Bedrock if stream => format!("/model/{m}/converse-stream"),
            Target::Bedrock => format!("/model/{m}/converse"),
            Target::Gemini if stream => {
                format!("/v1beta/models/{m}:streamGenerateContent?alt=sse")
            }
            Target::Gemini => format!("/v1beta/models/{m}:generateContent"),
            Target::VertexGemini { project, location } => {
                let op = if stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                vertex_path(project, location, "google", &m, op)
            }
            Target::VertexAnthropic { project, location } => {
                let op = if stream {
                    "streamRawPredict"
                } else {
                    "rawPredict"
                };
                vertex_path(project, location, "anthropic", &m, op)
            }
        }
    }
}

/// A Vertex AI model path: `model` already encoded, `op` the method (and query).
fn vertex_path(project: &str, location: &str, publisher: &str, model: &str, op: &str) -> String {
    format!(
        "/v1/projects/{}/locations/{}/publishers/{publisher}/models/{model}:{op}",
        encode_segment(project),
        encode_segment(location)
    )
}

/// A path segment, percent-encoded (a model id such as `anthropic.claude-3:0` or one with a
/// slash stays one segment).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// A backend's protocol by name, as a configuration says it (`protocol = "anthropic"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProtocolName {
    /// [`Target::OpenAi`].
    Openai,
    /// [`Target::OpenAiResponses`].
    OpenaiResponses,
    /// [`Target::Anthropic`].
    Anthropic,
    /// [`Target::Bedrock`].
    Bedrock,
    /// [`Target::Gemini`].
    Gemini,
    /// [`Target::VertexGemini`] (needs `vertex`).
    VertexGemini,
    /// [`Target::VertexAnthropic`] (needs `vertex`).
    VertexAnthropic,
}

/// Where a Vertex AI model lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VertexLocation {
    /// The Google Cloud project.
    pub project: String,
    /// The region (`us-central1`, `global`).
    pub location: String,
}

impl Target {
    /// The target a configuration names; Vertex targets need `vertex`.
    ///
    /// # Errors
    ///
    /// A Vertex protocol without `vertex`, or `vertex` with another protocol.
    pub fn from_config(
        protocol: ProtocolName,
        vertex: Option<&VertexLocation>,
    ) -> Result<Self, String> {
        let need = |v: Option<&VertexLocation>| {
            v.cloned()
                .ok_or_else(|| "this protocol needs `vertex = { project, location }`".to_owned())
        };
        let t = match protocol {
            ProtocolName::Openai => Target::OpenAi,
            ProtocolName::OpenaiResponses => Target::OpenAiResponses,
            ProtocolName::Anthropic => Target::Anthropic,
            ProtocolName::Bedrock => Target::Bedrock,
            ProtocolName::Gemini => Target::Gemini,
            ProtocolName::VertexGemini => {
                let v = need(vertex)?;
                return Ok(Target::VertexGemini {
                    project: v.project,
                    location: v.location,
                });
            }
            ProtocolName::VertexAnthropic => {
                let v = need(vertex)?;
                return Ok(Target::VertexAnthropic {
                    project: v.project,
                    location: v.location,
                });
            }
        };
        if vertex.is_some() {
            return Err(
                "`vertex` applies only to the vertex-gemini and vertex-anthropic protocols"
                    .to_owned(),
            );
        }
        Ok(t)
    }
}

/// The client protocol of a request path, when it is one this layer translates.
pub fn client_protocol(path: &str) -> Option<Protocol> {
    let path = path.trim_end_matches('/');
    if path.ends_with("/chat/completions") {
        Some(Protocol::OpenAiChat)
    } else if path.ends_with("/messages") {
        Some(Protocol::Anthropic)
    } else if path.ends_with("/responses") {
        Some(Protocol::OpenAiResponses)
    } else {
        None
    }
}

/// Which translation a request went through, in the response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Translated {
    /// The client's API.
    pub client: Protocol,
    /// The backend's protocol.
    pub backend: Protocol,
}

/// Puts translation to `target` in front of a backend.
#[derive(Debug, Clone)]
pub struct TranslateLayer {
    inner: Arc<Settings>,
}

#[derive(Debug)]
struct Settings {
    target: Target,
    opts: Options,
    max_body: usize,
}

impl TranslateLayer {
    /// Translation to `target`, strict (every field the target cannot represent is refused).
    pub fn new(target: Target) -> Self {
        Self::with_options(target, Options::default())
    }

    /// Translation to `target` with these options (lossy mappings the operator accepts).
    pub fn with_options(target: Target, opts: Options) -> Self {
        let max_body = opts.max_body_len;
        Self {
            inner: Arc::new(Settings {
                target,
                opts,
                max_body,
            }),
        }
    }

    /// The backend's target.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }
}

impl<S> Layer<S> for TranslateLayer {
    type Service = Translate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Translate {
            inner,
            settings: self.inner.clone(),
        }
    }
}

/// The service of [`TranslateLayer`].
#[derive(Debug, Clone)]
pub struct Translate<S> {
    inner: S,
    settings: Arc<Settings>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Service<http::Request<Body>> for Translate<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let backend = self.settings.target.protocol();
        // Anthropic on Vertex differs from Anthropic in its path and body: always rewritten.
        let rewrite = matches!(self.settings.target, Target::VertexAnthropic { .. });
        let client = client_protocol(req.uri().path()).filter(|c| *c != backend || rewrite);
        let Some(client) = client else {
            // The backend's own protocol, or an endpoint not translated: untouched.
            return Box::pin(self.inner.call(req));
        };
        // The ready service answers this request; a clone is kept ready for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();
        Box::pin(translate(inner, settings, client, req))
    }
}

async fn translate<S>(
    mut inner: S,
    settings: Arc<Settings>,
    client: Protocol,
    req: http::Request<Body>,
) -> Result<http::Response<Body>, S::Error>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    let target = &settings.target;
    let backend = target.protocol();
    let (mut parts, body) = req.into_parts();
    let bytes = match body.bytes() {
        Some(b) => b,
        None => match collect_limited(body, settings.max_body).await {
            Ok(b) => b,
            Err(e) => {
                return Ok(error_response(
                    client,
                    &ProviderError {
                        status: 413,
                        kind: ErrorKind::InvalidRequest,
                        message: format!("the request could not be read: {e}"),
                        code: Some("request_too_large".to_owned()),
                        param: None,
                        provider_type: None,
                    },
                ));
            }
        },
    };
    let mut opts = settings.opts.clone();
    let mut ir = match decode_request(client, &bytes, &opts) {
        Ok(ir) => ir,
        Err(e) => {
            let e = e.for_target(backend);
            return Ok(error_response(client, &e.to_provider_error()));
        }
    };
    // The client's own wish decides whether it gets OpenAI's usage chunk; an OpenAI upstream
    // is always asked for its usage, so that every client API reports real token counts.
    opts.include_usage = ir.include_usage;
    let stream = ir.stream;
    if stream && backend == Protocol::OpenAiChat {
        ir.include_usage = true;
    }
    let mut out = match encode_request(backend, &ir, &opts) {
        Ok(b) => b,
        Err(e) => return Ok(error_response(client, &e.to_provider_error())),
    };
    if let Target::VertexAnthropic { .. } = target {
        out = vertex_anthropic_body(&out);
    }
    let path = target.path(&ir.model, stream);
    let uri = match parts.uri.authority() {
        Some(a) => format!("{}://{a}{path}", parts.uri.scheme_str().unwrap_or("http")),
        None => path,
    };
    match uri.parse() {
        Ok(u) => parts.uri = u,
        Err(_) => {
            return Ok(error_response(
                client,
                &ProviderError {
                    status: 400,
                    kind: ErrorKind::InvalidRequest,
                    message: "the model cannot be put in the backend's URL".to_owned(),
                    code: Some("invalid_request".to_owned()),
                    param: Some("model".to_owned()),
                    provider_type: None,
                },
            ));
        }
    }
    let h = &mut parts.headers;
    h.remove(header::CONTENT_LENGTH);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The answer is read here: ask for it uncompressed.
    h.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    h.remove(header::ACCEPT);
    if backend == Protocol::Anthropic && !matches!(target, Target::VertexAnthropic { .. }) {
        if !h.contains_key("anthropic-version") {
            h.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        }
    } else {
        h.remove("anthropic-version");
        h.remove("anthropic-beta");
    }
    if let Ok(v) = HeaderValue::from_str(&out.len().to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    let resp = inner
        .call(http::Request::from_parts(parts, Body::from(out)))
        .await?;
    Ok(translate_answer(resp, backend, client, stream, opts, settings.max_body).await)
}

/// Anthropic on Vertex: the model is in the URL and the version in the body.
fn vertex_anthropic_body(body: &[u8]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut m)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return body.to_vec();
    };
    m.remove("model");
    m.insert(
        "anthropic_version".to_owned(),
        serde_json::Value::String("vertex-2023-10-16".to_owned()),
    );
    serde_json::to_vec(&m).unwrap_or_else(|_| body.to_vec())
}

async fn translate_answer(
    resp: http::Response<Body>,
    backend: Protocol,
    client: Protocol,
    stream: bool,
    opts: Options,
    max_body: usize,
) -> http::Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let translated = Translated { client, backend };
    parts.extensions.insert(translated);
    let status = parts.status.as_u16();
    if !parts.status.is_success() {
        let error_type = parts
            .headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = collect_limited(body, MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let (status, out) = translate_error(backend, client, status, &bytes, error_type.as_deref());
        return rebuild(parts, status, "application/json", Body::from(out));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let is_stream = content_type.starts_with("text/event-stream")
        || content_type.starts_with("application/vnd.amazon.eventstream");
    if is_stream || (stream && content_type.is_empty()) {
        let t = StreamTranslator::new(backend, client, &opts);
        let body = Body::new(TranslatedStream {
            inner: body,
            t,
            client,
            done: false,
        });
        return rebuild(parts, status, client.stream_content_type(), body);
    }
    let bytes = match collect_limited(body, max_body).await {
        Ok(b) => b,
        Err(e) => {
            return upstream_failure(
                client,
                &format!("the upstream answer could not be read: {e}"),
            );
        }
    };
    match translate_response(backend, client, &bytes, &opts) {
        Ok(out) => rebuild(parts, status, "application/json", Body::from(out)),
        Err(e) => upstream_failure(client, &e.to_string()),
    }
}

fn upstream_failure(client: Protocol, message: &str) -> http::Response<Body> {
    error_response(
        client,
        &ProviderError {
            status: 502,
            kind: ErrorKind::BadGateway,
            message: message.to_owned(),
            code: Some("bad_upstream_answer".to_owned()),
            param: None,
            provider_type: None,
        },
    )
}

fn rebuild(
    mut parts: http::response::Parts,
    status: u16,
    content_type: &'static str,
    body: Body,
) -> http::Response<Body> {
    parts.status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    let h = &mut parts.headers;
    h.remove(header::CONTENT_LENGTH);
    h.remove(header::CONTENT_ENCODING);
    h.remove(header::TRANSFER_ENCODING);
    h.remove("x-amzn-errortype");
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(len) = body.as_bytes().map(<[u8]>::len)
        && let Ok(v) = HeaderValue::from_str(&len.to_string())
    {
        h.insert(header::CONTENT_LENGTH, v);
    }
    http::Response::from_parts(parts, body)
}

/// An error answer in the client's API.
fn error_response(client: Protocol, e: &ProviderError) -> http::Response<Body> {
    let (status, body) = encode_error(client, e);
    let mut resp = http::Response::new(Body::from(body));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The upstream's stream, translated event by event into the client's.
struct TranslatedStream {
    inner: Body,
    t: StreamTranslator,
    client: Protocol,
    done: bool,
}

impl http_body::Body for TranslatedStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let mut out = Vec::new();
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if let Err(e) = this.t.feed(&data, &mut out) {
                        tracing::warn!(error = %e, "upstream stream does not translate");
                        let _ = this.t.fail(&e.to_provider_error(), &mut out);
                        this.done = true;
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "upstream stream failed");
                    let err = ProviderError {
                        status: 502,
                        kind: ErrorKind::BadGateway,
                        message: "the upstream stream was cut".to_owned(),
                        code: Some("upstream_failed".to_owned()),
                        param: None,
                        provider_type: None,
                    };
                    let _ = this.t.fail(&err, &mut out);
                    this.done = true;
                }
                Poll::Ready(None) => {
                    if let Err(e) = this.t.finish(&mut out) {
                        tracing::warn!(error = %e, client = %this.client, "upstream stream ended early");
                        let _ = this.t.fail(&e.to_provider_error(), &mut out);
                    }
                    this.done = true;
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_carry_the_model_and_the_method() {
        let v = |project: &str| (project.to_owned(), "us-central1".to_owned());
        let (project, location) = v("p1");
        assert_eq!(
            Target::VertexGemini { project, location }.path("gemini-2.0-flash", true),
            "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        let (project, location) = v("p1");
        assert_eq!(
            Target::VertexAnthropic { project, location }.path("claude-x@1", false),
            "/v1/projects/p1/locations/us-central1/publishers/anthropic/models/claude-x%401:rawPredict"
        );
        assert_eq!(
            Target::Bedrock.path("a/b:0", true),
            "/model/a%2Fb:0/converse-stream"
        );
    }
}
