//! The body type the pipeline hands to inner services, and bounded collection.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::BoxError;

/// A request or response body: empty, fully buffered, or a boxed stream.
///
/// A buffered body is cheap to clone and can be replayed (failover retries rebuild the request
/// from it); a streaming one cannot.
pub struct Body {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full(None),
        }
    }

    /// A fully buffered body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            kind: Kind::Full(if bytes.is_empty() { None } else { Some(bytes) }),
        }
    }

    /// Wraps any body whose error converts into [`BoxError`].
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            kind: Kind::Stream(body.map_err(Into::into).boxed_unsync()),
        }
    }

    /// The bytes of a buffered body that has not been polled yet; `None` for a stream.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::Full(Some(b)) => Some(b),
            Kind::Full(None) => Some(&[]),
            Kind::Stream(_) => None,
        }
    }

    /// The bytes of a buffered body that has not been polled yet, shared (no copy); `None` for
    /// a stream.
    pub fn bytes(&self) -> Option<Bytes> {
        match &self.kind {
            Kind::Full(Some(b)) => Some(b.clone()),
            Kind::Full(None) => Some(Bytes::new()),
            Kind::Stream(_) => None,
        }
    }

    /// A copy of a buffered body (for replay); `None` for a stream.
    pub fn try_clone(&self) -> Option<Self> {
        match &self.kind {
            Kind::Full(b) => Some(Self {
                kind: Kind::Full(b.clone()),
            }),
            Kind::Stream(_) => None,
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Self::empty()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Full(b) => f
                .debug_struct("Body")
                .field("buffered_len", &b.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Stream(_) => f.debug_struct("Body").field("stream", &true).finish(),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::full(b)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self::full(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self::full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self::full(Bytes::from(v))
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(s) => s.size_hint(),
        }
    }
}

/// Why a body could not be collected.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The body is longer than the bound.
    #[error("body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The bound in bytes.
        limit: usize,
    },
    /// The body failed while being read (client went away, upstream reset).
    #[error("body could not be read: {0}")]
    Read(#[source] BoxError),
}

/// Reads a whole body into one `Bytes`, failing as soon as it passes `limit` bytes. A declared
/// `Content-Length` over the limit fails before anything is read.
pub async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, CollectError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit as u64 {
        return Err(CollectError::TooLarge { limit });
    }
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut acc: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CollectError::Read(e.into()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers are not part of a JSON payload
        };
        len += data.len();
        if len > limit {
            return Err(CollectError::TooLarge { limit });
        }
        // The common case is one frame: keep it without copying.
        match (&mut first, &mut acc) {
            (None, None) => first = Some(data),
            (Some(f), None) => {
                let mut m = BytesMut::with_capacity(f.len() + data.len());
                m.extend_from_slice(f);
                m.extend_from_slice(&data);
                first = None;
                acc = Some(m);
            }
            (_, Some(m)) => m.extend_from_slice(&data),
        }
    }
    Ok(match (first, acc) {
        (_, Some(m)) => m.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    #[tokio::test]
    async fn collects_multiple_frames_and_enforces_limit() {
        let chunks = || -> Vec<Result<Frame<Bytes>, std::convert::Infallible>> {
            vec![
                Ok(Frame::data(Bytes::from_static(b"ab"))),
                Ok(Frame::data(Bytes::from_static(b"cd"))),
            ]
        };
        let body = StreamBody::new(futures_util::stream::iter(chunks()));
        assert_eq!(&collect_limited(body, 4).await.unwrap()[..], b"abcd");
        let body = StreamBody::new(futures_util::stream::iter(chunks()));
        assert!(matches!(
            collect_limited(body, 3).await,
            Err(CollectError::TooLarge { limit: 3 })
        ));
        let full = Full::new(Bytes::from_static(b"12345"));
        assert!(matches!(
            collect_limited(full, 4).await,
            Err(CollectError::TooLarge { .. })
        ));
    }

    #[test]
    fn buffered_body_replays() {
        let b = Body::full("hello");
        let c = b.try_clone().unwrap();
        assert_eq!(c.as_bytes().unwrap(), b"hello");
        assert!(Body::new(Full::new(Bytes::new())).try_clone().is_none());
    }
}
