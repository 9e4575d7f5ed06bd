use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use infergate_core::pipeline::{RequestOutcome, StreamChain};
use infergate_core::{ApiKind, Body, Exchange, Pipeline, RejectKind, Rejection, StreamEnd};
use infergate_failover::{
    ATTEMPTS_HEADER, Attempt, AttemptFailure, Attempts, BACKEND_HEADER, Backend, Failover,
    FailoverLayer, FailoverPolicy, HOPS_HEADER,
};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};

use crate::PINGORA_BODY_LIMIT;

/// The most decoded bytes one upstream chunk may produce (a decompression bomb is cut).
const PINGORA_DECODE_STEP_LIMIT: usize = 16 * 1024 * 1024;

/// One upstream pingora connects to: a name (as in [`Backend`]), an address, TLS, and its
/// place in the failover order.
#[derive(Debug, Clone)]
pub struct Upstream {
    name: String,
    addr: String,
    tls: bool,
    sni: String,
    tier: u32,
    weight: u32,
}

impl Upstream {
    /// A plain-HTTP upstream at `addr` (`host:port`), tier 0, weight 1.
    pub fn new(name: impl Into<String>, addr: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            addr: addr.into(),
            tls: false,
            sni: String::new(),
            tier: 0,
            weight: 1,
        }
    }

    /// Connect with TLS, presenting `sni`.
    #[must_use]
    pub fn tls(mut self, sni: impl Into<String>) -> Self {
        self.tls = true;
        self.sni = sni.into();
        self
    }

    /// Its priority tier (lower first).
    #[must_use]
    pub fn tier(mut self, tier: u32) -> Self {
        self.tier = tier;
        self
    }

    /// Its weight within its tier.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }
}

/// A pingora proxy that runs an infergate [`Pipeline`] and fails over between upstreams with
/// an infergate [`FailoverPolicy`] (see the [crate docs](crate) for the phase mapping).
#[derive(Debug, Clone)]
pub struct PipelineProxy {
    pipeline: Pipeline,
    upstreams: Vec<Upstream>,
    failover: Failover,
    max_hops: u32,
    read_timeout: Duration,
    keepalive_secs: u64,
}

impl PipelineProxy {
    /// The proxy: `pipeline` in front of `upstreams`, failing over by `policy`.
    pub fn new(pipeline: Pipeline, upstreams: Vec<Upstream>, policy: FailoverPolicy) -> Self {
        let backends = upstreams
            .iter()
            .map(|u| {
                Backend::external(u.name.clone())
                    .tier(u.tier)
                    .weight(u.weight)
            })
            .collect();
        Self {
            pipeline,
            // One hop limit: the failover policy's.
            max_hops: policy.hop_limit(),
            failover: FailoverLayer::new(policy).service_over(backends),
            upstreams,
            read_timeout: Duration::from_secs(30),
            keepalive_secs: 60,
        }
    }

    /// Bounds on what a client may hold: each read of its request body must make progress
    /// within `read` (default 30 s; a slow body is cut), and an idle kept-alive connection is
    /// closed after `keepalive_secs` (default 60).
    #[must_use]
    pub fn downstream_timeouts(mut self, read: Duration, keepalive_secs: u64) -> Self {
        self.read_timeout = read;
        self.keepalive_secs = keepalive_secs;
        self
    }

    /// The failover state, for health endpoints and metrics.
    pub fn failover(&self) -> &Failover {
        &self.failover
    }
}

/// How the response body is handled.
#[derive(Debug, Default)]
enum BodyMode {
    /// Passed on untouched.
    #[default]
    Pass,
    /// A processor replaced the response: this body, then nothing of the upstream's.
    Replace(Option<Bytes>),
    /// SSE through the processors' per-event chain (in a mutex only because pingora wants the
    /// context `Sync`; it is reached through `&mut`, never locked).
    Stream(std::sync::Mutex<StreamChain>),
    /// Buffered for the whole-body phase.
    Whole(BytesMut),
}

/// Per-request state of [`PipelineProxy`].
#[derive(Debug, Default)]
pub struct Ctx {
    api: Option<ApiKind>,
    exchange: Option<Exchange>,
    forward: Option<(http::request::Parts, Bytes)>,
    attempts: Option<Attempts>,
    current: Option<Attempt>,
    mode: BodyMode,
    hops: u32,
    /// Decodes a compressed answer before the processors read it (in a mutex only because
    /// pingora wants the context `Sync`; reached through `&mut`).
    decoder: Option<std::sync::Mutex<infergate_core::coding::Decoder>>,
}

impl Ctx {
    fn api(&self) -> ApiKind {
        self.api.unwrap_or(ApiKind::Other)
    }

    fn may_retry(&self) -> bool {
        self.attempts.as_ref().is_some_and(Attempts::may_retry)
    }
}

/// Writes a response the pipeline produced (a rejection, a cache hit, a processor's answer).
async fn write_local(session: &mut Session, resp: http::Response<Body>) -> Result<()> {
    use http_body_util::BodyExt;
    let (parts, mut body) = resp.into_parts();
    let mut head = ResponseHeader::build(parts.status, Some(parts.headers.len() + 1))?;
    for (name, value) in &parts.headers {
        head.append_header(name.clone(), value.clone())?;
    }
    if let Some(bytes) = body.bytes() {
        head.insert_header(header::CONTENT_LENGTH, bytes.len())?;
        session.write_response_header(Box::new(head), false).await?;
        return session.write_response_body(Some(bytes), true).await;
    }
    head.remove_header(&header::CONTENT_LENGTH);
    session.write_response_header(Box::new(head), false).await?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::because(ErrorType::InternalError, "local body", e))?;
        if let Ok(data) = frame.into_data() {
            session.write_response_body(Some(data), false).await?;
        }
    }
    session.write_response_body(None, true).await
}

/// The whole-body phase from a synchronous filter: `block_in_place` on a work-stealing runtime,
/// else one poll.
fn run_whole_body(
    pipeline: &Pipeline,
    exchange: &mut Exchange,
    head: &mut http::response::Parts,
    bytes: Bytes,
) -> Bytes {
    use std::future::Future;
    let fallback = bytes.clone();
    let fut = pipeline.run_response_body(exchange, head, bytes);
    let body = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(fut))
        }
        _ => {
            let mut fut = std::pin::pin!(fut);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match fut.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(body) => body,
                std::task::Poll::Pending => {
                    tracing::warn!(
                        "whole-body phase would wait on a current-thread runtime; skipped"
                    );
                    return fallback;
                }
            }
        }
    };
    body.bytes().unwrap_or(fallback)
}

/// The headers of `current` to remove (absent from `target`) and to set (different in it), so
/// that pingora's own header maps (which keep the client's spelling) can be brought in line.
fn header_changes(
    current: &http::HeaderMap,
    target: &http::HeaderMap,
) -> (Vec<http::HeaderName>, Vec<http::HeaderName>) {
    let stale = current
        .keys()
        .filter(|k| !target.contains_key(*k))
        .cloned()
        .collect();
    let changed = target
        .keys()
        .filter(|k| current.get_all(*k).iter().ne(target.get_all(*k).iter()))
        .cloned()
        .collect();
    (stale, changed)
}

fn sync_headers(resp: &mut ResponseHeader, parts: &http::response::Parts) -> Result<()> {
    if resp.status != parts.status {
        resp.set_status(parts.status)?;
    }
    let (stale, changed) = header_changes(&resp.headers, &parts.headers);
    for name in stale {
        resp.remove_header(&name);
    }
    for name in changed {
        resp.remove_header(&name);
        for v in parts.headers.get_all(&name) {
            resp.append_header(name.clone(), v.clone())?;
        }
    }
    Ok(())
}

#[async_trait]
impl ProxyHttp for PipelineProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        // A client that trickles its body, or idles on a kept-alive connection, is cut.
        session.set_read_timeout(Some(self.read_timeout));
        session.set_keepalive(Some(self.keepalive_secs));
        let head = session.req_header().as_owned_parts();
        let api = ApiKind::from_path(head.uri.path());
        ctx.api = Some(api);
        ctx.hops = head
            .headers
            .get(HOPS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if ctx.hops >= self.max_hops {
            let rej = Rejection::new(
                RejectKind::LoopDetected,
                "the request has crossed too many gateways (a forwarding loop?)",
            )
            .with_status(StatusCode::LOOP_DETECTED)
            .with_code("loop_detected");
            write_local(session, self.pipeline.error_response(api, rej)).await?;
            return Ok(true);
        }
        // What is read here is also kept in pingora's retry buffer, which is what pingora
        // forwards (and `request_body_filter` swaps for the pipeline's body).
        session.as_downstream_mut().enable_retry_buffering();
        let limit = self.pipeline.max_request_body().min(PINGORA_BODY_LIMIT);
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_request_body().await? {
            if buf.len() + chunk.len() > limit {
                let rej = Rejection::new(
                    RejectKind::BodyTooLarge,
                    format!("the request body is larger than {limit} bytes"),
                )
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
                .with_code("request_too_large");
                write_local(session, self.pipeline.error_response(api, rej)).await?;
                return Ok(true);
            }
            buf.extend_from_slice(&chunk);
        }
        let mut cx = match self.pipeline.prepare_bytes(head, buf.freeze()) {
            Ok(cx) => cx,
            Err(rej) => {
                write_local(session, self.pipeline.error_response(api, rej)).await?;
                return Ok(true);
            }
        };
        if let RequestOutcome::Respond(resp) = self.pipeline.run_request(&mut cx).await {
            let mut exchange = cx.into_exchange();
            let (mut parts, body) = resp.into_parts();
            let body = self
                .pipeline
                .run_response_head(&mut exchange, &mut parts)
                .await
                .unwrap_or(body);
            write_local(session, http::Response::from_parts(parts, body)).await?;
            return Ok(true);
        }
        // Forward (and any outcome a later core adds: forwarding is the safe reading).
        let (req, exchange) = cx.into_request();
        let (parts, body) = req.into_parts();
        let bytes = body.bytes().unwrap_or_default();
        // The principal's backend restrictions as well as the deployment's.
        let principal = infergate_core::Principal::from_extensions(&parts.extensions);
        match self.failover.attempts_for(principal) {
            Ok(attempts) => ctx.attempts = Some(attempts),
            Err(rej) => {
                write_local(session, self.pipeline.error_response(api, rej)).await?;
                return Ok(true);
            }
        }
        ctx.exchange = Some(exchange);
        ctx.forward = Some((parts, bytes));
        Ok(false)
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let attempt = ctx
            .attempts
            .as_mut()
            .and_then(Attempts::next)
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(503), "no backend left to try"))?;
        let up = &self.upstreams[attempt.index()];
        let peer = HttpPeer::new(up.addr.as_str(), up.tls, up.sni.clone());
        ctx.current = Some(attempt);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some((parts, bytes)) = &ctx.forward else {
            return Ok(());
        };
        if upstream_request.uri != parts.uri {
            upstream_request.set_uri(parts.uri.clone());
        }
        let (stale, changed) = header_changes(&upstream_request.headers, &parts.headers);
        for name in stale {
            upstream_request.remove_header(&name);
        }
        for name in changed {
            upstream_request.remove_header(&name);
            for v in parts.headers.get_all(&name) {
                upstream_request.append_header(name.clone(), v.clone())?;
            }
        }
        upstream_request.remove_header(&header::TRANSFER_ENCODING);
        if !bytes.is_empty() {
            upstream_request.insert_header(header::CONTENT_LENGTH, bytes.len())?;
        }
        upstream_request.insert_header(HOPS_HEADER, ctx.hops + 1)?;
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // pingora forwards what it read (from its retry buffer, on every attempt); the
        // pipeline's body goes instead.
        if let Some((_, bytes)) = &ctx.forward {
            *body = (end_of_stream && !bytes.is_empty()).then(|| bytes.clone());
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let status = upstream_response.status;
        if status.is_informational() {
            return Ok(());
        }
        let attempt = ctx.current.take();
        let name = attempt.as_ref().map(|a| a.name().to_owned());
        let made = ctx.attempts.as_ref().map_or(1, Attempts::made);
        if self.failover.retries_status(status) {
            let retry_after = infergate_failover::retry_after(&upstream_response.headers);
            let may_retry = ctx.may_retry();
            if let Some(a) = attempt
                && a.failed(AttemptFailure::Status(status, retry_after))
                && may_retry
            {
                tracing::warn!(backend = ?name, %status, "backend failed; trying the next");
                let mut e = Error::explain(
                    ErrorType::HTTPStatus(status.as_u16()),
                    "retried status from the upstream",
                );
                e.set_retry(true);
                return Err(e);
            }
        } else if let Some(a) = attempt {
            a.answered(status);
        }
        if let Some(n) = &name {
            upstream_response.insert_header(BACKEND_HEADER, n.as_str())?;
        }
        upstream_response.insert_header(ATTEMPTS_HEADER, made)?;

        let Some(exchange) = ctx.exchange.as_mut() else {
            return Ok(());
        };
        let mut parts = upstream_response.as_owned_parts();
        infergate_core::hop::strip_hop_by_hop(&mut parts.headers);
        let mut replaced = self.pipeline.run_response_head(exchange, &mut parts).await;
        // Processors read decoded bytes (infergate_core::coding), as on the tower path.
        if replaced.is_none() && self.pipeline.reads_response_body(exchange, &parts) {
            match infergate_core::coding::response_coding(&parts.headers) {
                Ok(coding) => {
                    if let Some(d) = infergate_core::coding::Decoder::new(coding) {
                        parts.headers.remove(header::CONTENT_ENCODING);
                        parts.headers.remove(header::CONTENT_LENGTH);
                        ctx.decoder = Some(std::sync::Mutex::new(d));
                    }
                }
                Err(e) => {
                    if let Some(resp) = self.pipeline.unreadable_body(
                        exchange,
                        &parts,
                        infergate_core::FailureClass::MalformedBody,
                        &e.to_string(),
                    ) {
                        let (p, b) = resp.into_parts();
                        parts = p;
                        replaced = Some(b);
                    } else {
                        return sync_headers(upstream_response, &parts);
                    }
                }
            }
        }
        if let Some(replaced) = replaced {
            use http_body_util::BodyExt;
            let bytes = replaced
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            ctx.mode = BodyMode::Replace(Some(bytes));
        } else if self.pipeline.wants_response_body(exchange, &parts) {
            parts.headers.remove(header::CONTENT_LENGTH);
            ctx.mode = BodyMode::Whole(BytesMut::new());
        } else if let Some(chain) = self.pipeline.stream_chain(exchange, &mut parts) {
            ctx.mode = BodyMode::Stream(std::sync::Mutex::new(chain));
        }
        sync_headers(upstream_response, &parts)
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        if let Some(decoder) = &mut ctx.decoder {
            let decoder = decoder
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut out = BytesMut::new();
            let mut res = match body.take() {
                Some(chunk) => decoder.decode_chunk(&chunk, &mut out, PINGORA_DECODE_STEP_LIMIT),
                None => Ok(()),
            };
            if res.is_ok() && end_of_stream {
                res = decoder.finish();
            }
            if let Err(e) = res {
                tracing::warn!(error = %e, "upstream answer does not decode");
                if let BodyMode::Stream(chain) = &mut ctx.mode {
                    let chain = chain
                        .get_mut()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if !chain.is_ended() {
                        *body = Some(chain.on_end(StreamEnd::UpstreamError));
                        ctx.mode = BodyMode::Replace(None);
                        return Ok(None);
                    }
                }
                // The head is on its way: the answer is cut rather than passed on unread.
                return Err(Error::explain(
                    ErrorType::HTTPStatus(502),
                    "the upstream answer does not decode",
                ));
            }
            *body = (!out.is_empty()).then(|| out.freeze());
        }
        match &mut ctx.mode {
            BodyMode::Pass => {}
            BodyMode::Replace(replacement) => *body = replacement.take(),
            BodyMode::Stream(chain) => {
                let chain = chain
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut out = BytesMut::new();
                if let Some(chunk) = body.take() {
                    out.extend_from_slice(&chain.on_chunk(&chunk));
                }
                if end_of_stream {
                    out.extend_from_slice(&chain.on_end(StreamEnd::Completed));
                }
                *body = (!out.is_empty()).then(|| out.freeze());
            }
            BodyMode::Whole(buf) => {
                if let Some(chunk) = body.take() {
                    buf.extend_from_slice(&chunk);
                }
                if buf.len() > self.pipeline.max_response_body() {
                    // Too large to inspect (as on the tower path): a failure of each processor
                    // that wanted the body, under its failure mode. One that fails closed cuts
                    // the answer (its head may be on its way); when all fail open, it is passed
                    // on uninspected, logged and recorded.
                    let reason = format!(
                        "the answer is larger than the whole-body bound of {} bytes",
                        self.pipeline.max_response_body()
                    );
                    if let Some(exchange) = ctx.exchange.as_mut() {
                        let head = session.response_written().map_or_else(
                            || http::Response::new(()).into_parts().0,
                            ResponseHeader::as_owned_parts,
                        );
                        if self
                            .pipeline
                            .unreadable_body(
                                exchange,
                                &head,
                                infergate_core::FailureClass::BodyTooLarge,
                                &reason,
                            )
                            .is_some()
                        {
                            buf.clear();
                            ctx.mode = BodyMode::Replace(None);
                            return Err(Error::explain(
                                ErrorType::HTTPStatus(502),
                                "the upstream answer is too large to inspect",
                            ));
                        }
                    }
                    *body = Some(buf.split().freeze());
                    ctx.mode = BodyMode::Pass;
                    return Ok(None);
                }
                if end_of_stream {
                    let bytes = buf.split().freeze();
                    let out = match ctx.exchange.as_mut() {
                        Some(exchange) => {
                            let mut head = session.response_written().map_or_else(
                                || http::Response::new(()).into_parts().0,
                                ResponseHeader::as_owned_parts,
                            );
                            run_whole_body(&self.pipeline, exchange, &mut head, bytes)
                        }
                        None => bytes,
                    };
                    *body = Some(out);
                }
            }
        }
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let may_retry = ctx.may_retry();
        if let Some(a) = ctx.current.take() {
            e.set_retry(a.failed(AttemptFailure::Connect) && may_retry);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut Ctx,
        _client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        if session.response_written().is_some() {
            // A byte went out: never again.
            e.set_retry(false);
            return e;
        }
        let may_retry = ctx.may_retry();
        if let Some(a) = ctx.current.take() {
            let how = if matches!(
                e.etype(),
                ErrorType::ReadTimedout | ErrorType::WriteTimedout
            ) {
                AttemptFailure::Timeout
            } else {
                AttemptFailure::Reset
            };
            e.set_retry(a.failed(how) && may_retry);
        }
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        if session.response_written().is_some() {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        let status = match e.etype() {
            ErrorType::HTTPStatus(code) => StatusCode::from_u16(*code).ok(),
            _ => None,
        }
        .unwrap_or(StatusCode::BAD_GATEWAY);
        let kind = if status == StatusCode::SERVICE_UNAVAILABLE {
            RejectKind::UpstreamUnavailable
        } else {
            RejectKind::UpstreamFailed
        };
        let rej = Rejection::new(kind, "the upstream request failed").with_status(status);
        if let Some(exchange) = ctx.exchange.as_mut() {
            self.pipeline.upstream_failed(exchange);
        }
        let code = status.as_u16();
        let mut resp = self.pipeline.error_response(ctx.api(), rej);
        if let Some(a) = &ctx.attempts {
            resp.headers_mut()
                .insert(ATTEMPTS_HEADER, HeaderValue::from(a.made()));
        }
        if let Err(err) = write_local(session, resp).await {
            tracing::warn!(error = %err, "could not send the error response");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, _session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        // A stream cut short still settles its processors (usage charged, limits released).
        if let BodyMode::Stream(chain) = &mut ctx.mode {
            let chain = chain
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if chain.is_ended() {
                return;
            }
            let end = if e.is_some() {
                StreamEnd::UpstreamError
            } else {
                StreamEnd::ClientGone
            };
            let _ = chain.on_end(end);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_context_is_send_and_sync_as_pingora_requires() {
        fn check<T: Send + Sync>() {}
        check::<super::Ctx>();
    }
}
