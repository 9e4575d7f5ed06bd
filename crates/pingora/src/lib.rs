//! An infergate [`Pipeline`](infergate_core::Pipeline) inside pingora's [`ProxyHttp`] phases, with failover on pingora's
//! own retries.
//!
//! ```no_run
//! use infergate_core::Pipeline;
//! use infergate_failover::FailoverPolicy;
//! use infergate_pingora::{PipelineProxy, Upstream};
//! use pingora_core::server::Server;
//!
//! let proxy = PipelineProxy::new(
//!     Pipeline::default(),
//!     vec![
//!         Upstream::new("primary", "10.0.0.1:8000"),
//!         Upstream::new("openai", "api.openai.com:443").tls("api.openai.com").tier(1),
//!     ],
//!     FailoverPolicy::default(),
//! );
//! let mut server = Server::new(None).unwrap();
//! server.bootstrap();
//! let mut service = pingora_proxy::http_proxy_service(&server.configuration, proxy);
//! service.add_tcp("127.0.0.1:8080");
//! server.add_service(service);
//! server.run_forever();
//! ```
//!
//! # Where each phase runs
//!
//! | pingora phase | what runs |
//! |---|---|
//! | `request_filter` (async) | reads the request body (bounded), parses it once, runs the pipeline's request phase; a rejection, a cache hit or any processor's answer is written there and the phase returns `Ok(true)`; otherwise the request is forwarded |
//! | `upstream_peer` (async) | the failover policy's next backend ([`Failover::attempts`](infergate_failover::Failover::attempts)) |
//! | `upstream_request_filter` (async) | the pipeline's header, path and `content-length` changes, the hop count |
//! | `request_body_filter` (async) | replaces the body pingora forwards (its retry buffer of what `request_filter` read) with the pipeline's, on every attempt |
//! | `upstream_response_filter` (async) | a status the policy retries becomes a retryable error (pingora calls `upstream_peer` again); otherwise the response-head phase, and the choice of body handling |
//! | `response_body_filter` (sync) | SSE: the processors' per-event chain ([`StreamChain`], synchronous by design); whole bodies: buffered, then the whole-body phase (see below); a processor's replacement body |
//! | `fail_to_connect`, `error_while_proxy` | the failure is booked against the backend and retried elsewhere while the policy allows and nothing has been sent |
//! | `fail_to_proxy` | the final error in the OpenAI error shape |
//! | `logging` | a stream cut short settles its processors (usage, rate limits) |
//!
//! # What differs from the tower driver, and why
//!
//! - **Request bodies above 64 KiB are refused (413).** The pipeline needs the whole body
//!   before pingora picks a peer (routing) and sends the request head (header changes), so
//!   `request_filter` reads it. pingora then forwards a body it has already read only from its
//!   retry buffer, which holds 64 KiB (`BODY_BUF_LIMIT` in pingora-core, not configurable); a
//!   larger body would never be sent. The bound is the smaller of this and the pipeline's own.
//! - **The whole-body phase** (`Processor::on_response_body`, async) runs inside the
//!   synchronous `response_body_filter` through `tokio::task::block_in_place` on pingora's
//!   work-stealing runtime (its default); on a current-thread runtime it is polled once and, if
//!   it would wait (a Redis round trip, say), skipped with a warning and recorded. Its changes
//!   to the status or headers cannot apply there: pingora has already sent the head.
//! - **Failover** covers refused connections, failures before the response head, and the
//!   retried statuses. A stream that breaks after its head but before its first byte is not
//!   retried (pingora has sent the head), and a stream broken mid-way is cut by pingora rather
//!   than ended with an SSE `event: error`. There is no backoff between attempts (pingora
//!   retries at once), and when the retry budget refuses a retry after a retried status the
//!   client gets 502 rather than that status.

mod proxy;

use std::net::SocketAddr;

use pingora_core::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora_proxy::ProxyHttp;

pub use proxy::{Ctx, PipelineProxy, Upstream};

/// pingora's retry buffer: the largest request body pingora can forward after the pipeline
/// has read it.
pub const PINGORA_BODY_LIMIT: usize = 64 * 1024;

#[doc(no_inline)]
pub use infergate_core::pipeline::StreamChain;

/// A shutdown signal that never comes.
struct Never;

#[async_trait::async_trait]
impl ShutdownSignalWatch for Never {
    async fn recv(&self) -> ShutdownSignal {
        std::future::pending().await
    }
}

/// Runs `proxy` on a pingora server of its own, on a background thread, listening on `addr`,
/// until the process ends — for tests, examples and benchmarks (a production server builds its
/// `Server` and calls `run_forever`). pingora binds `addr` itself: wait until it accepts
/// connections before sending requests.
pub fn spawn_server<P>(proxy: P, addr: SocketAddr) -> std::thread::JoinHandle<()>
where
    P: ProxyHttp + Send + Sync + 'static,
    P::CTX: Send + Sync,
{
    std::thread::spawn(move || {
        let mut server = match Server::new(None) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot create the pingora server");
                return;
            }
        };
        server.bootstrap();
        let mut service = pingora_proxy::http_proxy_service(&server.configuration, proxy);
        service.add_tcp(&addr.to_string());
        server.add_service(service);
        server.run(RunArgs {
            shutdown_signal: Box::new(Never),
        });
    })
}
