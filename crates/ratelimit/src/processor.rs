//! The rate-limiting processor.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use infergate_core::payload::{TokenUsage, response_usage_json};
use infergate_core::pipeline::StreamStop;
use infergate_core::sse::{SseEvent, UsageTracker};
use infergate_core::{
    ApiKind, Decision, Exchange, FailureMode, Payload, Phases, Processor, ProcessorError,
    RejectKind, Rejection, RequestContext, ResponseBody, ResponseContext, StreamEnd,
    StreamProcessor,
};
use tokio::sync::broadcast;

use crate::config::{Limits, RateLimitConfig};
use crate::store::{BucketKind, BucketState, Charge, MemoryStore, Reservation, Store};
use infergate_tokens::TokenCounter;

/// What a bucket limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Requests,
    Tokens,
    InputTokens,
    OutputTokens,
    DailyTokens,
}

impl Role {
    fn describe(self) -> &'static str {
        match self {
            Self::Requests => "requests per minute (RPM)",
            Self::Tokens => "tokens per minute (TPM)",
            Self::InputTokens => "input tokens per minute",
            Self::OutputTokens => "output tokens per minute",
            Self::DailyTokens => "tokens per day",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Requests => "rpm",
            Self::Tokens => "tpm",
            Self::InputTokens => "itpm",
            Self::OutputTokens => "otpm",
            Self::DailyTokens => "tpd",
        }
    }

    /// The amount this bucket takes for input and output tokens.
    fn amount(self, input: u64, output: u64) -> i64 {
        let v = match self {
            Self::Requests => 1,
            Self::Tokens | Self::DailyTokens => input.saturating_add(output),
            Self::InputTokens => input,
            Self::OutputTokens => output,
        };
        i64::try_from(v).unwrap_or(i64::MAX)
    }
}

/// How a request's tokens were settled.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettledBy {
    /// With the usage the provider reported.
    ReportedUsage,
    /// With an estimate: the stream ended without usage (client gone, upstream failure), so the
    /// output counts one token per content delta received.
    Estimate,
    /// The tokens were given back (upstream error).
    Refund,
    /// The reservation was kept as it was (a response without usage).
    Reservation,
}

/// A settled request, broadcast to [`TokenRateLimiter::subscribe`]rs (metrics, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The hashed rate-limit key.
    pub key: String,
    /// The reservation: input and output estimate.
    pub reserved: TokenUsage,
    /// What was finally charged.
    pub charged: TokenUsage,
    /// How.
    pub by: SettledBy,
}

/// Per-request state between admission and settlement.
#[derive(Clone, Debug)]
struct Pending {
    key: String,
    charges: Vec<(Role, Charge)>,
    fallback: bool,
    reserved: TokenUsage,
    headers: HeaderMap,
    hide_usage: bool,
    api: ApiKind,
}

impl Pending {
    fn has_tokens(&self) -> bool {
        self.charges.iter().any(|(r, _)| *r != Role::Requests)
    }
}

struct Shared {
    cfg: RateLimitConfig,
    store: Arc<dyn Store>,
    fallback: Arc<MemoryStore>,
    counter: TokenCounter,
    settled: broadcast::Sender<Settlement>,
    any_tokens: bool,
}

/// The token rate limiter: a [`Processor`] (put it in a [`Pipeline`](infergate_core::Pipeline))
/// or, through [`TokenRateLimitLayer`](crate::TokenRateLimitLayer), a layer of its own.
///
/// Request phase: derive the key, count the prompt (memoised), reserve
/// `prompt + max output` in every bucket at once, or answer 429 with `Retry-After` and
/// OpenAI's `x-ratelimit-*` headers. Response phases: settle the reservation against the real
/// usage (non-streamed body; the stream's usage events, asked for upstream and hidden from a
/// client that did not ask; an estimate if the stream is cut), or refund it on an upstream
/// error.
#[derive(Clone)]
pub struct TokenRateLimiter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TokenRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRateLimiter")
            .field("config", &self.shared.cfg)
            .finish_non_exhaustive()
    }
}

impl TokenRateLimiter {
    /// A limiter for `config` (loads the tokenizers once).
    pub fn new(config: RateLimitConfig) -> Self {
        TokenCounter::warm_up();
        let store: Arc<dyn Store> = config
            .store
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let any_tokens = config.default.has_token_limits()
            || config.overrides.values().any(Limits::has_token_limits)
            || config.models.values().any(Limits::has_token_limits);
        let (settled, _) = broadcast::channel(4096);
        Self {
            shared: Arc::new(Shared {
                // The process-wide memo unless the config names a counter (the guardrail's
                // token limit counts the same prompts).
                counter: config.counter.clone().unwrap_or_else(TokenCounter::shared),
                cfg: config,
                store,
                fallback: Arc::new(MemoryStore::new()),
                settled,
                any_tokens,
            }),
        }
    }

    /// Settlements as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Settlement> {
        self.shared.settled.subscribe()
    }

    /// The token counter (memoised).
    pub fn counter(&self) -> &TokenCounter {
        &self.shared.counter
    }

    /// Admission alone: the charges of a request and the store's answer (used by benchmarks
    /// and by the processor).
    async fn admit(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let Some(payload) = cx.payload() else {
            return Ok(Decision::Continue);
        };
        let s = &*self.shared;
        let key = s.cfg.key.key(cx);
        let mut limits = match s.cfg.overrides.get(&key) {
            Some(o) => s.cfg.default.merged(o),
            None => s.cfg.default.clone(),
        };
        // A principal's own limits (from its key record or token) replace those, where set.
        if let Some(p) = infergate_core::Principal::from_extensions(cx.extensions()) {
            limits = limits.merged(&crate::key::principal_limits(p));
        }
        let model = payload.model().unwrap_or_default();
        let model_limits = s.cfg.models.get(model);
        if limits.is_empty() && model_limits.is_none_or(Limits::is_empty) {
            return Ok(Decision::Continue);
        }
        let needs_tokens =
            limits.has_token_limits() || model_limits.is_some_and(Limits::has_token_limits);
        let (input, output) = if needs_tokens {
            (
                s.counter.count_prompt(payload),
                // Each of the `n` choices may take the whole output bound. Both are the
                // client's numbers: saturating, and a reservation above the bucket's capacity
                // is refused as too large rather than wrapped.
                payload
                    .max_output_tokens()
                    .unwrap_or(s.cfg.default_max_output_tokens)
                    .saturating_mul(choices(payload)),
            )
        } else {
            (0, 0)
        };
        let mut charges = Vec::with_capacity(6);
        push_charges(&mut charges, &format!("{{{key}}}"), &limits, input, output);
        if let Some(ml) = model_limits {
            push_charges(
                &mut charges,
                &format!("{{{key}}}:m:{model}"),
                ml,
                input,
                output,
            );
        }
        let plain: Vec<Charge> = charges.iter().map(|(_, c)| c.clone()).collect();
        let (res, fallback) = match s.store.reserve(&plain).await {
            Ok(r) => (r, false),
            Err(e) if s.cfg.failure_mode == FailureMode::FailOpen => {
                tracing::warn!(error = %e, "rate-limit store failed; using the local limiter (FailOpen)");
                (s.fallback.reserve_sync(&plain), true)
            }
            // FailClosed, and any mode added later: refuse (the safe side).
            Err(e) => {
                tracing::warn!(error = %e, "rate-limit store failed; refusing (FailClosed)");
                return Ok(Decision::Reject(
                    Rejection::new(
                        RejectKind::ExternalServiceFailed,
                        "rate limiting is temporarily unavailable; try again shortly",
                    )
                    .with_status(StatusCode::SERVICE_UNAVAILABLE)
                    .with_code("rate_limit_unavailable")
                    .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1")),
                ));
            }
        };
        let headers = ratelimit_headers(&charges, &res.states);
        if !res.admitted {
            return Ok(Decision::Reject(rejection(
                &charges, &res, &headers, model, input, output,
            )));
        }
        let api = cx.api();
        let hide_usage = if needs_tokens && wants_hidden_usage(cx.payload()) {
            cx.payload_mut().is_some_and(Payload::ensure_stream_usage)
        } else {
            false
        };
        cx.state_mut().insert(Pending {
            key,
            charges,
            fallback,
            reserved: TokenUsage {
                input_tokens: input,
                output_tokens: output,
            },
            headers,
            hide_usage,
            api,
        });
        Ok(Decision::Continue)
    }

    fn settle(&self, p: &Pending, actual: Option<TokenUsage>, by: SettledBy) {
        settle(&self.shared, p, actual, by);
    }
}

/// The number of choices a request asks for (`n`, Chat Completions and legacy completions):
/// at least 1; a value that is not a whole number counts as 1 (the provider refuses it).
fn choices(p: &Payload) -> u64 {
    let n = match p {
        Payload::Chat(r) => r.extra.get("n"),
        Payload::Other(v) => v.get("n"),
        _ => None,
    };
    n.and_then(serde_json::Value::as_u64).unwrap_or(1).max(1)
}

fn wants_hidden_usage(p: Option<&Payload>) -> bool {
    match p {
        Some(Payload::Chat(r)) => {
            r.stream == Some(true)
                && r.stream_options.as_ref().and_then(|o| o.include_usage) != Some(true)
        }
        _ => false,
    }
}

fn push_charges(out: &mut Vec<(Role, Charge)>, scope: &str, l: &Limits, input: u64, output: u64) {
    let minute = Duration::from_secs(60);
    let mut add = |role: Role, limit: Option<u64>, daily: bool| {
        if let Some(limit) = limit {
            out.push((
                role,
                Charge {
                    key: format!("{scope}:{}", role.suffix()),
                    kind: if daily {
                        BucketKind::Daily { limit }
                    } else {
                        BucketKind::Rate {
                            limit,
                            period: minute,
                        }
                    },
                    amount: role.amount(input, output),
                },
            ));
        }
    };
    add(Role::Requests, l.requests_per_minute, false);
    add(Role::Tokens, l.tokens_per_minute, false);
    add(Role::InputTokens, l.input_tokens_per_minute, false);
    add(Role::OutputTokens, l.output_tokens_per_minute, false);
    add(Role::DailyTokens, l.tokens_per_day, true);
}

/// OpenAI's duration format for reset headers: `20ms`, `1.5s`, `6m0s`.
fn fmt_reset(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        if h > 0 {
            format!("{h}h{m}m{s}s")
        } else {
            format!("{m}m{s}s")
        }
    }
}

fn ratelimit_headers(charges: &[(Role, Charge)], states: &[BucketState]) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    if let Some(i) = charges.iter().position(|(r, _)| *r == Role::Requests) {
        let st = states[i];
        put("x-ratelimit-limit-requests", st.limit.to_string());
        put("x-ratelimit-remaining-requests", st.remaining.to_string());
        put("x-ratelimit-reset-requests", fmt_reset(st.reset));
    }
    // The tightest per-minute token bucket (else the daily one).
    let tightest = charges
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| matches!(r, Role::Tokens | Role::InputTokens | Role::OutputTokens))
        .min_by_key(|(i, _)| states[*i].remaining)
        .or_else(|| {
            charges
                .iter()
                .enumerate()
                .find(|(_, (r, _))| *r == Role::DailyTokens)
        })
        .map(|(i, _)| i);
    if let Some(i) = tightest {
        let st = states[i];
        put("x-ratelimit-limit-tokens", st.limit.to_string());
        put("x-ratelimit-remaining-tokens", st.remaining.to_string());
        put("x-ratelimit-reset-tokens", fmt_reset(st.reset));
    }
    h
}

fn rejection(
    charges: &[(Role, Charge)],
    res: &Reservation,
    headers: &HeaderMap,
    model: &str,
    input: u64,
    output: u64,
) -> Rejection {
    let i = res.denied.unwrap_or(0);
    let (role, charge) = &charges[i];
    let st = res.states[i];
    let scope = if charge.key.contains(":m:") {
        format!(" for model {model}")
    } else {
        String::new()
    };
    let requested = role.amount(input, output);
    let mut msg = format!(
        "Rate limit reached{scope} on {}: limit {}, remaining {}, requested {requested}.",
        role.describe(),
        st.limit,
        st.remaining
    );
    let mut rej = if let Some(wait) = res.retry_after {
        let secs = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        let _ = write!(msg, " Please try again in {}.", fmt_reset(wait));
        Rejection::new(RejectKind::RateLimited, msg)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)))
    } else {
        msg.push_str(
            " The request is larger than the limit and can never be admitted; \
             reduce the prompt or max_tokens.",
        );
        Rejection::new(RejectKind::RateLimited, msg).with_code("request_too_large_for_limit")
    };
    for (name, value) in headers {
        rej = rej.with_header(name.clone(), value.clone());
    }
    rej.with_processor("token-rate-limit")
}

fn settle(s: &Arc<Shared>, p: &Pending, actual: Option<TokenUsage>, by: SettledBy) {
    let charged = match by {
        SettledBy::Refund => TokenUsage::default(),
        _ => actual.unwrap_or(p.reserved),
    };
    let adjustments: Vec<Charge> = p
        .charges
        .iter()
        .filter(|(r, _)| *r != Role::Requests)
        .map(|(r, c)| Charge {
            amount: r.amount(charged.input_tokens, charged.output_tokens)
                - r.amount(p.reserved.input_tokens, p.reserved.output_tokens),
            ..c.clone()
        })
        .filter(|c| c.amount != 0)
        .collect();
    let settlement = Settlement {
        key: p.key.clone(),
        reserved: p.reserved,
        charged,
        by,
    };
    if adjustments.is_empty() {
        let _ = s.settled.send(settlement);
        return;
    }
    if p.fallback {
        s.fallback.adjust_sync(&adjustments);
        let _ = s.settled.send(settlement);
        return;
    }
    if s.store.adjust_now(&adjustments) {
        let _ = s.settled.send(settlement);
        return;
    }
    let s2 = s.clone();
    let run = async move {
        if let Err(e) = s2.store.adjust(&adjustments).await {
            tracing::warn!(error = %e, "rate-limit settlement failed; the reservation stands");
        }
        let _ = s2.settled.send(settlement);
    };
    infergate_core::spawn_background(run, "rate-limit settlement");
}

#[async_trait]
impl Processor for TokenRateLimiter {
    fn name(&self) -> &str {
        "token-rate-limit"
    }

    fn failure_mode(&self) -> FailureMode {
        self.shared.cfg.failure_mode
    }

    fn phases(&self) -> Phases {
        if self.shared.any_tokens {
            Phases::ALL
        } else {
            Phases::REQUEST | Phases::RESPONSE
        }
    }

    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        self.admit(cx).await
    }

    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        let Some(p) = cx.exchange().state().get::<Pending>() else {
            return Ok(Decision::Continue);
        };
        let headers = p.headers.clone();
        let has_tokens = p.has_tokens();
        for (k, v) in headers {
            if let Some(k) = k {
                cx.headers_mut().insert(k, v);
            }
        }
        // Settled now unless the body (or the stream) will carry the real usage.
        if !has_tokens || !cx.status().is_success() {
            let p = cx.exchange_mut().state_mut().remove::<Pending>();
            if let Some(p) = p.filter(Pending::has_tokens) {
                let by = if self.shared.cfg.refund_on_upstream_error {
                    SettledBy::Refund
                } else {
                    SettledBy::Reservation
                };
                self.settle(&p, None, by);
            }
        }
        Ok(Decision::Continue)
    }

    async fn on_response_body(
        &self,
        cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        if let Some(p) = cx.exchange_mut().state_mut().remove::<Pending>() {
            if let Some(u) = body.json().and_then(|v| response_usage_json(p.api, v)) {
                self.settle(&p, Some(u), SettledBy::ReportedUsage);
            } else {
                // The reservation stands (the conservative side); say why, never silently.
                match body.json() {
                    None => tracing::warn!(
                        processor = "token-rate-limit",
                        reason = "the response body is not JSON",
                        "usage not reconciled; the reservation stands"
                    ),
                    Some(v) if v.get("usage").is_some_and(|u| !u.is_null()) => {
                        tracing::warn!(
                            processor = "token-rate-limit",
                            reason = "the response's usage is not in the API's shape",
                            "usage not reconciled; the reservation stands"
                        );
                    }
                    Some(_) => tracing::debug!(
                        processor = "token-rate-limit",
                        "the response reports no usage; the reservation stands"
                    ),
                }
                self.settle(&p, None, SettledBy::Reservation);
            }
        }
        Ok(Decision::Continue)
    }

    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        let p = cx.exchange_mut().state_mut().remove::<Pending>()?;
        Some(Box::new(UsageStream {
            shared: self.shared.clone(),
            tracker: UsageTracker::new(p.api),
            deltas: 0,
            unreadable: false,
            pending: Some(p),
        }))
    }

    fn on_upstream_error(&self, exchange: &mut Exchange) {
        if let Some(p) = exchange.state_mut().remove::<Pending>()
            && p.has_tokens()
        {
            let by = if self.shared.cfg.refund_on_upstream_error {
                SettledBy::Refund
            } else {
                SettledBy::Reservation
            };
            self.settle(&p, None, by);
        }
    }
}

/// Follows a stream's usage, hides the usage the gateway asked for on the client's behalf, and
/// settles when the stream ends — however it ends.
struct UsageStream {
    shared: Arc<Shared>,
    pending: Option<Pending>,
    tracker: UsageTracker,
    deltas: u64,
    /// An event that may have carried usage could not be read: the reservation stands.
    unreadable: bool,
}

impl UsageStream {
    /// Whether `event` (which carried no usage the tracker could read) looks like it meant
    /// to, and is not readable as an event of `api`.
    fn check_unreadable(&mut self, api: ApiKind, event: &SseEvent, data: &str) {
        if self.unreadable
            || !data.contains("usage")
            || data.contains("\"usage\":null")
            || event.is_done()
            || event.event_type() == Some("error")
        {
            return;
        }
        if let Err(e) = infergate_core::sse::parse_event(api, event) {
            self.unreadable = true;
            // The category and position only: a parse error can quote the data.
            tracing::warn!(
                processor = "token-rate-limit",
                reason = "a stream event that may carry usage is not readable",
                category = ?e.classify(),
                line = e.line(),
                column = e.column(),
                "usage not reconciled; the reservation stands"
            );
        }
    }

    fn hide(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.hide_usage)
    }
}

/// Replaces the data with `cleaned` (the data without its `"usage":null` field). When the event
/// was parsed already and that field was its only one and sat at the top level, the event's
/// shared parse loses it too and stays with the event, so the stream processors after this one
/// do not parse the event again. (The limiter itself does not parse such events.)
fn hide_null_usage(event: &mut SseEvent, cleaned: String, once: bool) {
    let top_level_null = event.is_json_parsed()
        && event
            .json()
            .and_then(|v| v.get("usage"))
            .is_some_and(serde_json::Value::is_null);
    if once
        && top_level_null
        && let Some(mut v) = event.take_json()
        && let Some(o) = v.as_object_mut()
    {
        o.remove("usage");
        event.set_data_and_json(cleaned, v);
    } else {
        event.set_data(cleaned);
    }
}

impl StreamProcessor for UsageStream {
    fn on_event(&mut self, mut event: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        let api = self.pending.as_ref().map_or(ApiKind::Other, |p| p.api);
        let carried = self.tracker.observe(&event);
        if let Some(data) = event.data_str() {
            if !carried {
                self.check_unreadable(api, &event, data);
            }
            if infergate_core::usage::is_content_delta(api, data) {
                self.deltas = self.deltas.saturating_add(1);
            }
            if self.hide() {
                if carried && data.contains("\"choices\":[]") {
                    return Ok(()); // the usage chunk the client did not ask for
                }
                if data.contains("\"usage\":null") {
                    let once = data.matches("\"usage\":null").count() == 1;
                    let cleaned = data
                        .replace(",\"usage\":null", "")
                        .replace("\"usage\":null,", "");
                    hide_null_usage(&mut event, cleaned, once);
                }
            }
        }
        out.push(event);
        Ok(())
    }

    fn on_end(&mut self, end: StreamEnd, _out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        if !p.has_tokens() {
            return Ok(());
        }
        if self.unreadable {
            settle(&self.shared, &p, None, SettledBy::Reservation);
            return Ok(());
        }
        let reported = self.tracker.usage();
        match (end, reported) {
            (StreamEnd::Completed, Some(u)) if u.output_tokens > 0 || self.deltas == 0 => {
                settle(&self.shared, &p, Some(u), SettledBy::ReportedUsage);
            }
            _ => {
                let input = reported
                    .map(|u| u.input_tokens)
                    .filter(|n| *n > 0)
                    .unwrap_or(p.reserved.input_tokens);
                let output = reported.map_or(0, |u| u.output_tokens).max(self.deltas);
                settle(
                    &self.shared,
                    &p,
                    Some(TokenUsage {
                        input_tokens: input,
                        output_tokens: output,
                    }),
                    SettledBy::Estimate,
                );
            }
        }
        Ok(())
    }
}

impl Drop for UsageStream {
    fn drop(&mut self) {
        // The pipeline always calls on_end; this is the last resort if a driver did not.
        if self.pending.is_some() {
            let _ = self.on_end(StreamEnd::ClientGone, &mut Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_is_chosen_explicitly() {
        let limits = Limits::default();
        // By default the process-wide memo, shared with the guardrail's token limit.
        let l = TokenRateLimiter::new(RateLimitConfig::new(limits.clone()));
        assert!(l.counter().is_shared());
        // A capacity, even the shared memo's own, means a memo of its own.
        let cfg = RateLimitConfig::new(limits.clone())
            .memo_capacity(infergate_tokens::SHARED_MEMO_CAPACITY);
        assert!(!TokenRateLimiter::new(cfg).counter().is_shared());
        let cfg = RateLimitConfig::new(limits).token_counter(TokenCounter::shared());
        assert!(TokenRateLimiter::new(cfg).counter().is_shared());
    }

    #[test]
    fn hiding_null_usage_keeps_the_shared_parse() {
        let data = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}"#;
        let mut ev = SseEvent::data(data);
        assert!(ev.json().is_some());
        hide_null_usage(&mut ev, data.replace(",\"usage\":null", ""), true);
        assert_eq!(
            ev.data_str(),
            Some(r#"{"id":"c","choices":[{"index":0,"delta":{"content":"x"}}]}"#)
        );
        assert!(
            ev.is_json_parsed(),
            "the next processors do not parse again"
        );
        assert!(
            ev.json()
                .is_some_and(|v| v.get("usage").is_none() && v.get("id").is_some())
        );
        // Twice in the text, or not at the top level: the parse is dropped, not guessed.
        let data = r#"{"a":{"usage":null},"usage":null}"#;
        let mut ev = SseEvent::data(data);
        hide_null_usage(&mut ev, r#"{"a":{}}"#.to_owned(), false);
        assert!(!ev.is_json_parsed());
        assert_eq!(ev.json(), Some(&serde_json::json!({"a":{}})));
    }

    #[test]
    fn reset_format_matches_openai() {
        assert_eq!(fmt_reset(Duration::from_millis(20)), "20ms");
        assert_eq!(fmt_reset(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_reset(Duration::from_secs(2)), "2s");
        assert_eq!(fmt_reset(Duration::from_secs(360)), "6m0s");
        assert!(!fmt_reset(Duration::MAX).is_empty());
    }

    #[test]
    fn amounts_saturate() {
        assert_eq!(Role::Tokens.amount(u64::MAX, u64::MAX), i64::MAX);
        assert_eq!(Role::DailyTokens.amount(1, u64::MAX), i64::MAX);
        assert_eq!(Role::OutputTokens.amount(0, u64::MAX), i64::MAX);
        assert_eq!(Role::Requests.amount(u64::MAX, u64::MAX), 1);
    }

    #[test]
    fn choices_are_whole_numbers_of_at_least_one() {
        let chat = |n: &str| {
            Payload::parse(
                ApiKind::ChatCompletions,
                format!(r#"{{"model":"m","messages":[],"n":{n}}}"#).as_bytes(),
            )
            .unwrap()
        };
        assert_eq!(choices(&chat("3")), 3);
        assert_eq!(choices(&chat("18446744073709551615")), u64::MAX);
        for n in ["0", "-1", "1.5", "\"2\"", "null", "1e30"] {
            assert_eq!(choices(&chat(n)), 1, "{n}");
        }
    }

    fn pending(reserved: TokenUsage) -> Pending {
        let limits = Limits {
            tokens_per_minute: Some(1000),
            tokens_per_day: Some(10_000),
            output_tokens_per_minute: Some(500),
            ..Limits::default()
        };
        let mut charges = Vec::new();
        push_charges(
            &mut charges,
            "{k}",
            &limits,
            reserved.input_tokens,
            reserved.output_tokens,
        );
        Pending {
            key: "k".into(),
            charges,
            fallback: false,
            reserved,
            headers: HeaderMap::new(),
            hide_usage: false,
            api: ApiKind::ChatCompletions,
        }
    }

    #[test]
    fn settling_absurd_usage_saturates() {
        let limiter = TokenRateLimiter::new(RateLimitConfig::new(Limits::default()));
        let mut rx = limiter.subscribe();
        let huge = TokenUsage {
            input_tokens: u64::MAX,
            output_tokens: u64::MAX,
        };
        let small = TokenUsage {
            input_tokens: 10,
            output_tokens: 20,
        };
        // Reserved little, the upstream reports everything: charged, saturating.
        let p = pending(small);
        limiter.settle(&p, Some(huge), SettledBy::ReportedUsage);
        assert_eq!(rx.try_recv().unwrap().charged, huge);
        // Reserved everything (a client's max_tokens), refunded: no overflow either.
        let p = pending(huge);
        limiter.settle(&p, Some(TokenUsage::default()), SettledBy::ReportedUsage);
        limiter.settle(&p, None, SettledBy::Refund);
        limiter.settle(&p, None, SettledBy::Reservation);
        assert_eq!(rx.try_recv().unwrap().charged, TokenUsage::default());
        // A stream that counted an absurd number of deltas.
        let mut stream = UsageStream {
            shared: limiter.shared.clone(),
            pending: Some(pending(huge)),
            tracker: UsageTracker::new(ApiKind::ChatCompletions),
            deltas: u64::MAX,
            unreadable: false,
        };
        let mut out = Vec::new();
        let event = SseEvent::data(r#"{"choices":[{"delta":{"content":"x"}}]}"#);
        stream.on_event(event, &mut out).unwrap();
        stream.on_end(StreamEnd::ClientGone, &mut out).unwrap();
    }

    fn stream_of(limiter: &TokenRateLimiter, reserved: TokenUsage, api: ApiKind) -> UsageStream {
        UsageStream {
            shared: limiter.shared.clone(),
            pending: Some(pending(reserved)),
            tracker: UsageTracker::new(api),
            deltas: 0,
            unreadable: false,
        }
    }

    #[test]
    fn an_unreadable_usage_event_keeps_the_reservation() {
        let limiter = TokenRateLimiter::new(RateLimitConfig::new(Limits::default()));
        let mut rx = limiter.subscribe();
        let reserved = TokenUsage {
            input_tokens: 10,
            output_tokens: 100,
        };
        let mut out = Vec::new();
        // A truncated usage chunk, then a readable one: the stream's usage cannot be trusted.
        let mut s = stream_of(&limiter, reserved, ApiKind::ChatCompletions);
        for data in [
            r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_"#,
            r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
        ] {
            s.on_event(SseEvent::data(data), &mut out).unwrap();
        }
        s.on_end(StreamEnd::Completed, &mut out).unwrap();
        let got = rx.try_recv().unwrap();
        assert_eq!(got.by, SettledBy::Reservation);
        assert_eq!(got.charged, reserved);
        // Usage of the wrong type is unreadable too.
        let mut s = stream_of(&limiter, reserved, ApiKind::ChatCompletions);
        let data = r#"{"choices":[],"usage":{"prompt_tokens":"ten","completion_tokens":1}}"#;
        s.on_event(SseEvent::data(data), &mut out).unwrap();
        s.on_end(StreamEnd::Completed, &mut out).unwrap();
        assert_eq!(rx.try_recv().unwrap().by, SettledBy::Reservation);
        // Text that merely mentions usage, and `"usage":null` chunks, are fine.
        let mut s = stream_of(&limiter, reserved, ApiKind::ChatCompletions);
        for data in [
            r#"{"choices":[{"index":0,"delta":{"content":"the usage of words"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}"#,
        ] {
            s.on_event(SseEvent::data(data), &mut out).unwrap();
        }
        s.on_end(StreamEnd::Completed, &mut out).unwrap();
        let got = rx.try_recv().unwrap();
        assert_eq!(got.by, SettledBy::ReportedUsage);
        assert_eq!(got.charged.output_tokens, 3);
    }
}
