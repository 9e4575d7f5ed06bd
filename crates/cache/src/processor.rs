//! The cache processor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use infergate_core::sse::SseEvent;
use infergate_core::{
    ApiKind, Body, Decision, FailureMode, Payload, Phases, Processor, ProcessorError,
    RequestContext, ResponseBody, ResponseContext, StreamEnd, StreamProcessor, StreamStop,
};
use tokio::sync::watch;

use crate::Answer;
use crate::CacheConfig;
use crate::answer::{ChatAssembler, replay};
use crate::key::{exact_key, semantic_scope, user_scope};

/// The response header that says what the cache did: `HIT`, `MISS` or `BYPASS`.
pub const CACHE_HEADER: &str = "x-cache";
/// On a semantic hit: the similarity of the cached request.
pub const SIMILARITY_HEADER: &str = "x-cache-similarity";
/// A request header that skips the cache (`x-infergate-cache: bypass`).
pub const BYPASS_HEADER: &str = "x-infergate-cache";

/// A request in flight: pending, or done with its answer (`None`: it failed).
#[derive(Debug, Clone)]
enum FlightState {
    Pending,
    Done(Option<Arc<Answer>>),
}

type Flight = watch::Receiver<FlightState>;

/// A leader's stream as it is produced, for followers that stream too: every event the
/// leader's client gets, in order, and how it ended.
#[derive(Debug, Default)]
struct Live {
    state: Mutex<LiveState>,
    notify: tokio::sync::Notify,
    include_usage: bool,
}

#[derive(Debug, Default)]
struct LiveState {
    chunks: Vec<Bytes>,
    /// `Some(true)`: completed; `Some(false)`: failed.
    end: Option<bool>,
}

impl Live {
    fn push(&self, b: Bytes) {
        if let Ok(mut s) = self.state.lock() {
            s.chunks.push(b);
        }
        self.notify.notify_waiters();
    }

    fn end(&self, ok: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.end.get_or_insert(ok);
        }
        self.notify.notify_waiters();
    }

    /// Waits until the leader's stream has its first event (`true`) or ended without one
    /// (`false`: then the follower is better off going upstream itself).
    async fn started(&self) -> bool {
        loop {
            let notified = self.notify.notified();
            {
                let Ok(s) = self.state.lock() else {
                    return false;
                };
                if !s.chunks.is_empty() {
                    return true;
                }
                if s.end.is_some() {
                    return s.end == Some(true);
                }
            }
            notified.await;
        }
    }

    /// The stream so far and then as it comes; a failed leader ends it with an error event.
    fn follow(self: Arc<Self>) -> Body {
        let stream =
            futures_util::stream::unfold((self, 0usize, false), |(live, mut i, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let notified = live.notify.notified();
                    let next = {
                        let s = live.state.lock().ok()?;
                        if i < s.chunks.len() {
                            i += 1;
                            Some(Some(s.chunks[i - 1].clone()))
                        } else {
                            match s.end {
                                Some(true) => Some(None),
                                Some(false) => {
                                    let rej = infergate_core::Rejection::new(
                                        infergate_core::RejectKind::UpstreamFailed,
                                        "the shared upstream stream failed before it was complete",
                                    );
                                    let mut b = bytes::BytesMut::new();
                                    infergate_core::sse::error_event(
                                        ApiKind::ChatCompletions,
                                        &rej,
                                    )
                                    .encode_into(&mut b);
                                    return Some((
                                        Ok::<_, std::convert::Infallible>(http_body::Frame::data(
                                            b.freeze(),
                                        )),
                                        (live.clone(), i, true),
                                    ));
                                }
                                None => None,
                            }
                        }
                    };
                    match next {
                        Some(Some(b)) => {
                            return Some((Ok(http_body::Frame::data(b)), (live.clone(), i, false)));
                        }
                        Some(None) => return None,
                        None => notified.await,
                    }
                }
            });
        Body::new(http_body_util::StreamBody::new(stream))
    }
}

/// A flight as the map keeps it: its id, its outcome, and its live stream (if it streams).
type FlightEntry = (u64, Flight, Option<Arc<Live>>);

#[derive(Debug, Default)]
struct Flights {
    map: Mutex<HashMap<u128, FlightEntry>>,
    next: std::sync::atomic::AtomicU64,
}

impl Flights {
    /// Forgets flight `id` of `key` (not a newer one under the same key).
    fn remove(&self, key: u128, id: u64) {
        if let Ok(mut m) = self.map.lock()
            && m.get(&key).is_some_and(|f| f.0 == id)
        {
            m.remove(&key);
        }
    }
}

/// The first of concurrent identical requests: publishes its answer (or its failure) to the
/// others when it ends, whatever way it ends.
#[derive(Debug)]
struct Leader {
    key: u128,
    id: u64,
    tx: watch::Sender<FlightState>,
    flights: Arc<Flights>,
    live: Option<Arc<Live>>,
}

impl Leader {
    /// Tells the followers. A failure forgets the flight at once; an answer keeps it until
    /// the answer is in the store (see [`Cache::store`]), so that nobody arriving in between
    /// goes upstream.
    fn publish(&self, answer: Option<Arc<Answer>>) {
        let failed = answer.is_none();
        if let Some(l) = &self.live {
            l.end(!failed);
        }
        let first = self.tx.send_if_modified(|v| {
            if matches!(v, FlightState::Pending) {
                *v = FlightState::Done(answer);
                true
            } else {
                false
            }
        });
        if failed && first {
            self.flights.remove(self.key, self.id);
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.publish(None);
    }
}

/// What the request phase leaves for the response phases.
#[derive(Debug, Clone)]
struct Pending {
    outcome: &'static str,
    key: Option<u128>,
    api: ApiKind,
    store: bool,
    semantic: Option<(u128, Vec<f32>)>,
    leader: Option<Arc<Leader>>,
}

/// The response cache: a [`Processor`] (or a tower layer through
/// [`CacheLayer`](crate::CacheLayer)). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cache {
    cfg: Arc<CacheConfig>,
    flights: Arc<Flights>,
}

fn temperature(p: &Payload) -> f64 {
    match p {
        Payload::Chat(r) => r
            .extra
            .get("temperature")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(1.0),
        _ => 0.0,
    }
}

fn wants_stream(p: &Payload) -> (bool, bool) {
    match p {
        Payload::Chat(r) => {
            let usage = r
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false);
            (p.is_stream(), usage)
        }
        _ => (false, false),
    }
}

impl Cache {
    /// A cache with `config`.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            cfg: Arc::new(config),
            flights: Arc::new(Flights::default()),
        }
    }

    /// The exact key this cache gives a request without a principal (to pre-fill or purge a
    /// store); `None` when the request is not cacheable as such.
    pub fn key_for(&self, headers: &http::HeaderMap, payload: &Payload) -> Option<u128> {
        self.key_for_principal(headers, None, payload)
    }

    /// The exact key this cache gives a request made by `principal` (its tenant, and its end
    /// user with [`CacheConfig::exact_per_user`]); `None` when not cacheable as such.
    pub fn key_for_principal(
        &self,
        headers: &http::HeaderMap,
        principal: Option<&infergate_core::Principal>,
        payload: &Payload,
    ) -> Option<u128> {
        let tenant = self.cfg.tenant.tenant(headers, principal);
        let exact_scope = if self.cfg.exact_per_user {
            user_scope(&tenant, principal, payload)
        } else {
            tenant
        };
        exact_key(&self.cfg.secret, &exact_scope, payload.api(), payload)
    }

    /// The answer as the client asked for it: a JSON body, or a replayed SSE stream; `None`
    /// (a miss, with a warning) when the stored entry cannot answer.
    fn respond(
        answer: &Answer,
        stream: bool,
        include_usage: bool,
        similarity: Option<f32>,
    ) -> Option<Decision> {
        let (ct, body) = match replay(answer, stream, include_usage) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(processor = "cache", reason = %e, "stored answer cannot be replayed; treated as a miss");
                return None;
            }
        };
        let mut resp = http::Response::new(Body::full(body));
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        h.insert(CACHE_HEADER, HeaderValue::from_static("HIT"));
        if let Some(s) = similarity
            && let Ok(v) = HeaderValue::from_str(&format!("{s:.4}"))
        {
            h.insert(SIMILARITY_HEADER, v);
        }
        Some(Decision::Respond(resp))
    }

    async fn get(&self, key: u128) -> Result<Option<Answer>, ProcessorError> {
        match self.cfg.store.get(key).await {
            Ok(a) => Ok(a),
            Err(e) if self.cfg.failure_mode == FailureMode::FailOpen => {
                tracing::warn!(error = %e, "cache store unavailable; treating as a miss");
                Ok(None)
            }
            Err(e) => Err(ProcessorError::external(e.to_string()).with_source(e)),
        }
    }

    fn store(
        &self,
        key: u128,
        answer: Answer,
        semantic: Option<(u128, Vec<f32>)>,
        leader: Option<Arc<Leader>>,
    ) {
        if let Some(l) = &leader {
            l.publish(Some(Arc::new(answer.clone())));
        }
        if let (Some(sem), Some((scope, v))) = (&self.cfg.semantic, semantic) {
            sem.index.insert(scope, &v, key);
        }
        let ttl = self.cfg.ttl;
        let flight = leader.map(|l| (l.flights.clone(), l.key, l.id));
        // An in-memory store takes it at once: no task, no cross-thread wake-up per answer.
        let answer = match self.cfg.store.put_now(key, answer, ttl) {
            Ok(()) => {
                if let Some((flights, key, id)) = flight {
                    flights.remove(key, id);
                }
                return;
            }
            Err(answer) => answer,
        };
        let store = self.cfg.store.clone();
        let fut = async move {
            if let Err(e) = store.put(key, answer, ttl).await {
                tracing::warn!(error = %e, "cache store unavailable; answer not stored");
            }
            // Now the store answers: the flight can go.
            if let Some((flights, key, id)) = flight {
                flights.remove(key, id);
            }
        };
        infergate_core::spawn_background(fut, "cache store write");
    }
}

#[async_trait]
impl Processor for Cache {
    fn name(&self) -> &str {
        "cache"
    }

    fn failure_mode(&self) -> FailureMode {
        self.cfg.failure_mode
    }

    fn phases(&self) -> Phases {
        Phases::ALL
    }

    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let Some(payload) = cx.payload() else {
            return Ok(Decision::Continue);
        };
        let api = cx.api();
        if !matches!(api, ApiKind::ChatCompletions | ApiKind::Embeddings) {
            return Ok(Decision::Continue);
        }
        let bypass = |cx: &mut RequestContext| {
            cx.state_mut().insert(Pending {
                outcome: "BYPASS",
                key: None,
                api,
                store: false,
                semantic: None,
                leader: None,
            });
            Ok(Decision::Continue)
        };
        let headers = cx.headers();
        let cc = headers
            .get_all(http::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|d| d.trim().to_ascii_lowercase())
            .collect::<Vec<_>>();
        let no_store = cc.iter().any(|d| d == "no-store");
        let no_cache = cc.iter().any(|d| d == "no-cache");
        let skip = headers
            .get(BYPASS_HEADER)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bypass"));
        let temp = temperature(payload);
        if skip || (no_store && no_cache) || (temp > 0.0 && !self.cfg.nonzero_temperature) {
            return bypass(cx);
        }
        // The principal's tenant when an identity block ran first (never what the client
        // claims); the end user scopes semantic entries always, exact ones when configured.
        // Single-flight is keyed by the exact key, so it is scoped the same way.
        let principal = infergate_core::Principal::from_extensions(cx.extensions());
        let tenant = self.cfg.tenant.tenant(headers, principal);
        let user_scoped = user_scope(&tenant, principal, payload);
        let exact_scope = if self.cfg.exact_per_user {
            user_scoped
        } else {
            tenant
        };
        let Some(key) = exact_key(&self.cfg.secret, &exact_scope, api, payload) else {
            return bypass(cx);
        };
        let (stream, include_usage) = wants_stream(payload);
        if !no_cache
            && let Some(a) = self.get(key).await?
            && let Some(hit) = Self::respond(&a, stream, include_usage, None)
        {
            return Ok(hit);
        }
        let mut semantic = None;
        if let Some(sem) = &self.cfg.semantic
            && (temp == 0.0 || sem.nonzero_temperature)
            && let Some((scope, query)) = semantic_scope(&self.cfg.secret, &user_scoped, payload)
        {
            match sem.embedder.embed(&[query]).await {
                Ok(mut v) if !v.is_empty() => {
                    let q = v.swap_remove(0);
                    if !no_cache
                        && let Some((k, score)) = sem.index.nearest(scope, &q)
                        && score >= sem.threshold
                        && let Some(a) = self.get(k).await?
                        && let Some(hit) = Self::respond(&a, stream, include_usage, Some(score))
                    {
                        return Ok(hit);
                    }
                    semantic = Some((scope, q));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "semantic cache: embedding failed; exact only");
                }
            }
        }
        let mut leader = None;
        if let Some(wait) = self.cfg.single_flight
            && !no_store
        {
            let existing = {
                let mut m = self
                    .flights
                    .map
                    .lock()
                    .map_err(|_| ProcessorError::processor("single-flight lock poisoned"))?;
                if let Some((_, rx, live)) = m.get(&key) {
                    Some((rx.clone(), live.clone()))
                } else {
                    let (tx, rx) = watch::channel(FlightState::Pending);
                    let live = (stream && api == ApiKind::ChatCompletions).then(|| {
                        Arc::new(Live {
                            include_usage,
                            ..Live::default()
                        })
                    });
                    let id = self
                        .flights
                        .next
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    m.insert(key, (id, rx, live.clone()));
                    leader = Some(Arc::new(Leader {
                        key,
                        id,
                        tx,
                        flights: self.flights.clone(),
                        live,
                    }));
                    None
                }
            };
            if let Some((mut rx, live)) = existing {
                // A streaming follower of a streaming leader gets the stream as it is produced.
                if let Some(live) = live
                    && stream
                    && live.include_usage == include_usage
                    && tokio::time::timeout(wait, live.started()).await == Ok(true)
                {
                    let mut resp = http::Response::new(live.follow());
                    let h = resp.headers_mut();
                    h.insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/event-stream"),
                    );
                    h.insert(CACHE_HEADER, HeaderValue::from_static("HIT"));
                    return Ok(Decision::Respond(resp));
                }
                let got =
                    tokio::time::timeout(wait, rx.wait_for(|s| matches!(s, FlightState::Done(_))))
                        .await;
                if let Ok(Ok(v)) = got
                    && let FlightState::Done(Some(a)) = v.clone()
                    && let Some(hit) = Self::respond(&a, stream, include_usage, None)
                {
                    return Ok(hit);
                }
                // The first one failed or took too long: go upstream ourselves.
            }
        }
        cx.state_mut().insert(Pending {
            outcome: "MISS",
            key: Some(key),
            api,
            store: !no_store,
            semantic,
            leader,
        });
        Ok(Decision::Continue)
    }

    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        let Some(p) = cx.exchange().state().get::<Pending>().cloned() else {
            return Ok(Decision::Continue);
        };
        cx.headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static(p.outcome));
        if cx.status() != StatusCode::OK
            && let Some(l) = &p.leader
        {
            l.publish(None);
        }
        Ok(Decision::Continue)
    }

    async fn on_response_body(
        &self,
        cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        let Some(p) = cx.exchange_mut().state_mut().remove::<Pending>() else {
            return Ok(Decision::Continue);
        };
        if let (Some(key), true, StatusCode::OK) = (p.key, p.store, cx.status()) {
            if body.json().is_some() {
                // A copy, not a clone: the body's bytes may be a slice of the connection's
                // read buffer, and a clone would keep that whole buffer (kilobytes) alive for
                // as long as the entry lives — and out of the store's byte bound.
                let answer = Answer {
                    api: p.api,
                    body: Bytes::copy_from_slice(body.bytes()),
                };
                self.store(key, answer, p.semantic, p.leader.clone());
            } else {
                // Never a silent skip: a 200 the cache cannot read is a malformed body.
                tracing::warn!(
                    processor = "cache",
                    reason = "the response body is not JSON",
                    "answer not stored"
                );
                if let Some(l) = &p.leader {
                    l.publish(None);
                }
            }
        }
        Ok(Decision::Continue)
    }

    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        let p = cx.exchange_mut().state_mut().remove::<Pending>()?;
        let key = p.key?;
        if !p.store || cx.status() != StatusCode::OK || p.api != ApiKind::ChatCompletions {
            return None;
        }
        Some(Box::new(Tee {
            cache: self.clone(),
            key,
            semantic: p.semantic,
            leader: p.leader,
            assembler: ChatAssembler::default(),
            failed: None,
        }))
    }

    fn on_upstream_error(&self, exchange: &mut infergate_core::Exchange) {
        if let Some(p) = exchange.state_mut().remove::<Pending>()
            && let Some(l) = p.leader
        {
            l.publish(None);
        }
    }
}

/// A streamed miss: every event goes to the client as it comes; a copy is assembled into a
/// whole completion, stored only if the stream ends normally.
struct Tee {
    cache: Cache,
    key: u128,
    semantic: Option<(u128, Vec<f32>)>,
    leader: Option<Arc<Leader>>,
    assembler: ChatAssembler,
    /// Why the stream will not be stored, once known.
    failed: Option<Failed>,
}

/// Why a streamed answer is not stored.
#[derive(Debug, Clone, Copy)]
enum Failed {
    /// The upstream said so (an `error` event or an error object): nothing to warn about.
    UpstreamError,
    /// An event the cache cannot read.
    Unreadable(&'static str),
}

impl StreamProcessor for Tee {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        if self.failed.is_none() {
            if event.event_type().is_some_and(|t| t == "error") {
                self.failed = Some(Failed::UpstreamError);
            } else if event.data_str().is_some() && !event.is_done() {
                // (Events go to followers below, whatever their content.) The event's shared
                // parse: the other stream processors read the same.
                match event.json() {
                    Some(v) if v.get("error").is_some() => {
                        self.failed = Some(Failed::UpstreamError);
                    }
                    Some(v) => self.assembler.push(v),
                    None => self.failed = Some(Failed::Unreadable("an event's data is not JSON")),
                }
            }
        }
        if let Some(live) = self.leader.as_ref().and_then(|l| l.live.as_ref()) {
            let mut b = bytes::BytesMut::new();
            event.encode_into(&mut b);
            live.push(b.freeze());
        }
        out.push(event);
        Ok(())
    }

    fn on_end(&mut self, end: StreamEnd, _out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        let assembled = std::mem::take(&mut self.assembler);
        let leader = self.leader.take();
        let not_stored = |leader: Option<Arc<Leader>>| {
            if let Some(l) = leader {
                l.publish(None);
            }
        };
        match self.failed {
            Some(Failed::Unreadable(reason)) => {
                tracing::warn!(processor = "cache", reason, "streamed answer not stored");
                not_stored(leader);
                return Ok(());
            }
            Some(Failed::UpstreamError) => {
                tracing::debug!("cache: the upstream streamed an error; not stored");
                not_stored(leader);
                return Ok(());
            }
            None if end != StreamEnd::Completed => {
                tracing::debug!(?end, "cache: stream did not complete; not stored");
                not_stored(leader);
                return Ok(());
            }
            None => {}
        }
        let json = assembled
            .finish()
            .and_then(|v| serde_json::to_vec(&v).map_err(|_| "the completion does not serialise"));
        match json {
            Ok(json) => {
                let answer = Answer {
                    api: ApiKind::ChatCompletions,
                    // Exactly its length (a serialised Vec keeps spare capacity).
                    body: Bytes::from(json.into_boxed_slice()),
                };
                self.cache
                    .store(self.key, answer, self.semantic.take(), leader);
            }
            Err(reason) => {
                tracing::warn!(processor = "cache", reason, "streamed answer not stored");
                not_stored(leader);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use infergate_core::sse::json_parse_count;

    use super::*;

    #[test]
    fn the_tee_reads_the_events_shared_parse() {
        let mut tee = Tee {
            cache: Cache::new(CacheConfig::new()),
            key: 7,
            semantic: None,
            leader: None,
            assembler: ChatAssembler::default(),
            failed: None,
        };
        let mut out = Vec::new();
        let before = json_parse_count();
        for data in [
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        ] {
            let ev = SseEvent::data(data);
            // A processor before the cache read the event's JSON already.
            assert!(ev.json().is_some());
            tee.on_event(ev, &mut out).unwrap();
        }
        tee.on_event(SseEvent::data("[DONE]"), &mut out).unwrap();
        assert_eq!(json_parse_count() - before, 2, "no parse of its own");
        assert!(out[..2].iter().all(SseEvent::is_json_parsed));
        assert!(tee.failed.is_none());
    }
}
