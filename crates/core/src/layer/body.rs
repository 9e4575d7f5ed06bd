use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};

use crate::Body;
use crate::error::{BoxError, RejectKind, Rejection};
use crate::payload::ApiKind;
use crate::pipeline::{StreamChain, StreamEnd};
use crate::sse::error_event;

pin_project_lite::pin_project! {
    #[project = InnerProj]
    pub(crate) enum InnerBody<B> {
        Upstream { #[pin] body: B },
        Local { body: Body },
    }
}

impl<B> http_body::Body for InnerBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            InnerProj::Upstream { body } => body.poll_frame(cx).map_err(Into::into),
            InnerProj::Local { body } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Upstream { body } => body.is_end_stream(),
            Self::Local { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Upstream { body } => body.size_hint(),
            Self::Local { body } => body.size_hint(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`PipelineService`](super::PipelineService): the upstream's body
    /// passed through, a body the pipeline produced, or an SSE stream run through the
    /// processors' per-event chain.
    ///
    /// For SSE responses it also guarantees a clean end: when the upstream fails mid-stream the
    /// client gets an `event: error` instead of a cut connection; when the client goes away
    /// (the body is dropped) the stream processors are told, so that they can settle.
    pub struct PipelineBody<B> {
        #[pin]
        inner: InnerBody<B>,
        sse: Option<Box<SseState>>,
    }
}

pub(crate) struct SseState {
    chain: Option<StreamChain>,
    api: ApiKind,
    done: bool,
    /// The last two bytes sent (passthrough mode), to know whether an event boundary was reached.
    tail: [u8; 2],
}

impl Drop for SseState {
    fn drop(&mut self) {
        if let Some(chain) = &mut self.chain
            && !chain.is_ended()
        {
            tracing::debug!(api = ?self.api, "client went away mid-stream");
            chain.on_client_gone();
        }
    }
}

impl<B> PipelineBody<B> {
    pub(crate) fn new(inner: InnerBody<B>) -> Self {
        Self { inner, sse: None }
    }

    pub(crate) fn sse(inner: InnerBody<B>, chain: Option<StreamChain>, api: ApiKind) -> Self {
        Self {
            inner,
            sse: Some(Box::new(SseState {
                chain,
                api,
                done: false,
                tail: *b"\n\n",
            })),
        }
    }

    pub(crate) fn local(body: Body) -> Self {
        Self::new(InnerBody::Local { body })
    }
}

impl<B> std::fmt::Debug for PipelineBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBody")
            .field("sse", &self.sse.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> http_body::Body for PipelineBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let Some(state) = this.sse.as_deref_mut() else {
            return this.inner.poll_frame(cx);
        };
        if state.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let data = match frame.into_data() {
                        Ok(d) => d,
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    };
                    let Some(chain) = &mut state.chain else {
                        state.track(&data);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    };
                    let out = chain.on_chunk(&data);
                    if chain.is_stopped() {
                        state.done = true;
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    if state.done {
                        return Poll::Ready(None);
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, api = ?state.api, "upstream failed mid-stream");
                    state.done = true;
                    let out = match &mut state.chain {
                        Some(chain) => chain.on_end(StreamEnd::UpstreamError),
                        None => state.error_tail(),
                    };
                    return Poll::Ready((!out.is_empty()).then(|| Ok(Frame::data(out))));
                }
                None => {
                    state.done = true;
                    let out = match &mut state.chain {
                        Some(chain) => chain.on_end(StreamEnd::Completed),
                        None => Bytes::new(),
                    };
                    return Poll::Ready((!out.is_empty()).then(|| Ok(Frame::data(out))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.sse {
            Some(s) if s.done => true,
            Some(s) if s.chain.is_some() => false,
            _ => self.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.sse {
            Some(s) if s.chain.is_some() => SizeHint::default(),
            _ => self.inner.size_hint(),
        }
    }
}

impl SseState {
    fn track(&mut self, data: &[u8]) {
        match data.len() {
            0 => {}
            1 => self.tail = [self.tail[1], data[0]],
            n => self.tail = [data[n - 2], data[n - 1]],
        }
    }

    /// The error event that ends a passthrough stream whose upstream failed, preceded by a
    /// blank line when the failure cut an event in half.
    fn error_tail(&self) -> Bytes {
        let rej = Rejection::new(
            RejectKind::UpstreamFailed,
            "the upstream stream failed before it was complete",
        );
        let mut out = BytesMut::new();
        if self.tail != *b"\n\n" && !self.tail.ends_with(b"\r") {
            out.extend_from_slice(b"\n\n");
        }
        error_event(self.api, &rej).encode_into(&mut out);
        out.freeze()
    }
}
