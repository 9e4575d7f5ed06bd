use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use infergate_core::Body;

use crate::health::InFlight;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body whose first frames were read before the response was chosen (so that a
/// stream that breaks before its first byte can still fail over), followed by the rest.
/// It keeps the backend's in-flight count until the body ends or is dropped.
#[derive(Debug)]
pub(crate) struct Peeked {
    held: VecDeque<Frame<Bytes>>,
    rest: Body,
    _in_flight: InFlight,
}

impl Peeked {
    pub(crate) fn new(held: VecDeque<Frame<Bytes>>, rest: Body, in_flight: InFlight) -> Self {
        Self {
            held,
            rest,
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for Peeked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(f) = self.held.pop_front() {
            return Poll::Ready(Some(Ok(f)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let held = self
            .held
            .iter()
            .filter_map(Frame::data_ref)
            .map(|d| d.len() as u64)
            .sum::<u64>();
        let mut hint = SizeHint::new();
        // The upper bound first: `set_lower` insists on lower <= upper.
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(held));
        }
        hint.set_lower(rest.lower().saturating_add(held));
        hint
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use http_body::Body as _;

    use super::*;
    use crate::health::Health;

    #[test]
    fn the_size_hint_counts_held_frames_when_the_rest_is_exact() {
        let health = Arc::new(Health::new(Instant::now()));
        let held = VecDeque::from([Frame::data(Bytes::from_static(b"hello"))]);
        let body = Peeked::new(
            held,
            Body::empty(),
            health.begin(Instant::now(), false).unwrap(),
        );
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
    }
}
