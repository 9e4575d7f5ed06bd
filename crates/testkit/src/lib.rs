//! Test support for infergate's crates: a real hyper server on loopback around any tower
//! service, a real hyper client, an upstream that replays SSE fixtures, and a `redis-server`
//! process.
#![allow(missing_docs, clippy::missing_panics_doc, clippy::unwrap_used)]

pub mod captures;
mod logs;
mod redis;

pub use logs::CapturedLogs;
pub use redis::{RedisCluster, RedisServer};

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use infergate_core::BoxError;

/// Serves `svc` on an ephemeral loopback port until the test ends.
pub async fn serve<S, B>(svc: S) -> SocketAddr
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // As real servers do: without it, small stream writes wait for delayed ACKs (~40 ms).
            let _ = stream.set_nodelay(true);
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

#[derive(Debug)]
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn post(addr: SocketAddr, path: &str, ct: Option<&str>, body: impl Into<Bytes>) -> Reply {
    let mut b = http::Request::post(format!("http://{addr}{path}"));
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    send(b.body(Full::new(body.into())).unwrap()).await
}

pub async fn post_json(addr: SocketAddr, path: &str, v: &serde_json::Value) -> Reply {
    post(addr, path, Some("application/json"), v.to_string()).await
}

pub async fn send(req: http::Request<Full<Bytes>>) -> Reply {
    let resp = client().request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// An upstream that always answers with `body` as SSE, cut into `chunk`-byte frames.
pub fn sse_upstream(
    body: Bytes,
    chunk: usize,
) -> impl tower::Service<
    http::Request<infergate_core::Body>,
    Response = http::Response<infergate_core::Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |_req: http::Request<infergate_core::Body>| {
        let body = body.clone();
        async move {
            let frames: Vec<Result<http_body::Frame<Bytes>, Infallible>> = body
                .chunks(chunk)
                .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let stream = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            let mut resp = http::Response::new(infergate_core::Body::new(stream));
            resp.headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            Ok::<_, Infallible>(resp)
        }
    })
}

/// An SSE upstream whose body the test writes as it goes: each `Bytes` sent on the returned
/// sender is one body chunk; dropping the sender ends the body. Serves one request.
pub fn channel_upstream() -> (
    impl tower::Service<
        http::Request<infergate_core::Body>,
        Response = http::Response<infergate_core::Body>,
        Error = Infallible,
        Future = impl Send,
    > + Clone,
    tokio::sync::mpsc::UnboundedSender<Bytes>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(Some(rx)));
    let svc = tower::service_fn(move |_req: http::Request<infergate_core::Body>| {
        let rx = rx
            .lock()
            .unwrap()
            .take()
            .expect("channel_upstream serves one request");
        async move {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                let chunk = rx.recv().await?;
                Some((Ok::<_, Infallible>(http_body::Frame::data(chunk)), rx))
            });
            let body = http_body_util::StreamBody::new(stream);
            let mut resp = http::Response::new(infergate_core::Body::new(body));
            resp.headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            Ok::<_, Infallible>(resp)
        }
    });
    (svc, tx)
}

/// Reads `body` until the text received so far contains `needle`; returns that text. Panics
/// if the body ends first, or (a guard against hanging forever, not a timing check) if
/// nothing satisfies it within 30 seconds.
pub async fn read_until<B>(body: &mut B, needle: &str) -> String
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut seen = Vec::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                seen.extend_from_slice(&data);
                if String::from_utf8_lossy(&seen).contains(needle) {
                    return;
                }
            }
        }
        panic!(
            "the body ended before {needle:?}: {}",
            String::from_utf8_lossy(&seen)
        );
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .unwrap_or_else(|_| panic!("{needle:?} never arrived"));
    String::from_utf8_lossy(&seen).into_owned()
}
