use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tower::Service;

use super::body::InnerBody;
use super::{PipelineBody, ResponseFuture};
use crate::Body;
use crate::error::{BoxError, FailureClass, RejectKind, Rejection};
use crate::payload::ApiKind;
use crate::pipeline::{Exchange, FailureRecord, Pipeline, RequestOutcome};

/// The service made by [`PipelineLayer`](super::PipelineLayer).
#[derive(Debug, Clone)]
pub struct PipelineService<S> {
    inner: S,
    pipeline: Pipeline,
}

impl<S> PipelineService<S> {
    /// Wraps `inner` with `pipeline`.
    pub fn new(inner: S, pipeline: Pipeline) -> Self {
        Self { inner, pipeline }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqB, ResB> Service<http::Request<ReqB>> for PipelineService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: http_body::Body<Data = Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = http::Response<PipelineBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        // The service that was driven to readiness is the one that gets the request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let pipeline = self.pipeline.clone();
        ResponseFuture::new(Box::pin(async move {
            let (head, body) = req.into_parts();
            let api = ApiKind::from_path(head.uri.path());
            let mut cx = match pipeline.prepare(head, body).await {
                Ok(cx) => cx,
                Err(rej) => {
                    tracing::info!(kind = ?rej.kind(), "request refused before the pipeline");
                    return Ok(PipelineBody::local_response(
                        pipeline.error_response(api, rej),
                    ));
                }
            };
            match pipeline.run_request(&mut cx).await {
                RequestOutcome::Forward => {
                    let (req, mut exchange) = cx.into_request();
                    match inner.call(req).await {
                        Ok(resp) => {
                            let resp = resp.map(|body| InnerBody::Upstream { body });
                            Ok(respond(&pipeline, exchange, resp).await)
                        }
                        Err(e) => {
                            pipeline.upstream_failed(&mut exchange);
                            Err(e)
                        }
                    }
                }
                RequestOutcome::Respond(resp) => {
                    let exchange = cx.into_exchange();
                    let resp = resp.map(|body| InnerBody::Local { body });
                    Ok(respond(&pipeline, exchange, resp).await)
                }
            }
        }))
    }
}

impl<B> PipelineBody<B> {
    fn local_response(resp: http::Response<Body>) -> http::Response<Self> {
        resp.map(Self::local)
    }
}

/// The response phases: head, then whole body or stream chain.
async fn respond<B>(
    pipeline: &Pipeline,
    mut exchange: Exchange,
    resp: http::Response<InnerBody<B>>,
) -> http::Response<PipelineBody<B>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (mut head, mut body) = resp.into_parts();
    // The upstream's framing is its own: hyper frames what the client gets from the body.
    crate::hop::strip_hop_by_hop(&mut head.headers);
    if let Some(replaced) = pipeline.run_response_head(&mut exchange, &mut head).await {
        body = InnerBody::Local { body: replaced };
    }
    // Processors read decoded bytes (crate::coding): decode here, once, when one reads it.
    let mut readable = true;
    if pipeline.reads_response_body(&exchange, &head) {
        match crate::coding::response_coding(&head.headers) {
            Ok(coding) => {
                if let Some(decoder) = crate::coding::Decoder::new(coding) {
                    head.headers.remove(http::header::CONTENT_ENCODING);
                    head.headers.remove(http::header::CONTENT_LENGTH);
                    body = InnerBody::Local {
                        body: Body::new(crate::coding::DecodedBody::new(body, decoder)),
                    };
                }
            }
            Err(e) => {
                if let Some(resp) = pipeline.unreadable_body(
                    &mut exchange,
                    &head,
                    FailureClass::MalformedBody,
                    &e.to_string(),
                ) {
                    let (parts, b) = resp.into_parts();
                    let mut resp = http::Response::from_parts(parts, PipelineBody::local(b));
                    resp.extensions_mut().insert(exchange.report.clone());
                    return resp;
                }
                readable = false;
            }
        }
    }
    let body = if !readable {
        PipelineBody::new(body)
    } else if pipeline.wants_response_body(&exchange, &head) {
        match collect_or_spill(body, pipeline.max_response_body()).await {
            Ok(bytes) => PipelineBody::local(
                pipeline
                    .run_response_body(&mut exchange, &mut head, bytes)
                    .await,
            ),
            Err(Spill::TooLarge(body)) => {
                // Too large to inspect: a failure of each processor that wanted it. Those that
                // fail closed answer 502; when all fail open it is passed on unchanged.
                let reason = format!(
                    "the answer is larger than the whole-body bound of {} bytes",
                    pipeline.max_response_body()
                );
                if let Some(resp) = pipeline.unreadable_body(
                    &mut exchange,
                    &head,
                    FailureClass::BodyTooLarge,
                    &reason,
                ) {
                    let (parts, b) = resp.into_parts();
                    head = parts;
                    PipelineBody::local(b)
                } else {
                    exchange.report.failures.push(FailureRecord {
                        processor: "pipeline".to_owned(),
                        class: FailureClass::BodyTooLarge,
                        skipped: true,
                    });
                    PipelineBody::local(body)
                }
            }
            Err(Spill::Read(e)) => {
                tracing::warn!(error = %e, "upstream response body failed");
                let rej = Rejection::new(
                    RejectKind::UpstreamFailed,
                    "the upstream response body could not be read",
                );
                let resp = pipeline.error_response(exchange.api(), rej);
                let (parts, b) = resp.into_parts();
                head = parts;
                PipelineBody::local(b)
            }
        }
    } else if crate::pipeline::is_event_stream_head(&head) {
        let chain = pipeline.stream_chain(&mut exchange, &mut head);
        PipelineBody::sse(body, chain, exchange.api())
    } else {
        PipelineBody::new(body)
    };
    if !exchange.report.failures.is_empty() {
        head.extensions.insert(exchange.report.clone());
    }
    http::Response::from_parts(head, body)
}

enum Spill {
    TooLarge(Body),
    Read(BoxError),
}

/// Collects a body up to `limit`; past it, gives back a body that replays what was read and
/// then the rest, so nothing is lost.
async fn collect_or_spill<B>(body: InnerBody<B>, limit: usize) -> Result<Bytes, Spill>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut acc = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Spill::Read)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if acc.is_empty() && http_body::Body::is_end_stream(&*body) {
            return Ok(data); // one frame: no copy
        }
        acc.extend_from_slice(&data);
        if acc.len() > limit {
            let prefix = http_body_util::Full::new(acc.freeze())
                .map_err(|never| -> BoxError { match never {} });
            let rest = prefix.chain_rest(body);
            return Err(Spill::TooLarge(Body::new(rest)));
        }
    }
    Ok(acc.freeze())
}

trait ChainRest: Sized {
    fn chain_rest<R>(self, rest: R) -> Prefixed<Self, R>;
}

impl<P> ChainRest for P {
    fn chain_rest<R>(self, rest: R) -> Prefixed<Self, R> {
        Prefixed {
            prefix: Some(self),
            rest,
        }
    }
}

pin_project_lite::pin_project! {
    struct Prefixed<P, R> {
        prefix: Option<P>,
        #[pin]
        rest: R,
    }
}

impl<P, R> http_body::Body for Prefixed<P, R>
where
    P: http_body::Body<Data = Bytes, Error = BoxError> + Unpin,
    R: http_body::Body<Data = Bytes, Error = BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(p) = this.prefix {
            match std::pin::Pin::new(p).poll_frame(cx) {
                Poll::Ready(None) => *this.prefix = None,
                other => return other,
            }
        }
        this.rest.poll_frame(cx)
    }
}
