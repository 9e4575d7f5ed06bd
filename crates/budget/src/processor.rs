use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use infergate_core::payload::ApiKind;
use infergate_core::pipeline::{
    Decision, Exchange, FailureMode, Phases, Processor, RequestContext, ResponseBody,
    ResponseContext, StreamEnd, StreamProcessor, StreamStop,
};
use infergate_core::sse::SseEvent;
use infergate_core::usage::{Usage, UsageBasis, UsageMeter};
use infergate_core::{FailureClass, Principal, ProcessorError, RejectKind, Rejection};
use infergate_tokens::TokenCounter;

use crate::store::{BudgetStore, Hold, MemoryStore};
use crate::{
    Budget, BudgetConfig, BudgetEvent, Clock, Limit, Price, Scope, SystemClock, Unpriced, Usd,
};

/// `x-infergate-cost-usd`: what a non-streamed answer cost, in dollars.
pub const COST_HEADER: &str = "x-infergate-cost-usd";
/// `x-infergate-budget-name` (and `-limit`, `-remaining`, `-reset`) on a refusal.
pub const BUDGET_HEADER_PREFIX: &str = "x-infergate-budget-";

/// How a request's charge was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Settled {
    /// The provider's reported usage.
    Reported,
    /// An estimate: a stream cut short, or an answer that reported no usage.
    Estimate,
    /// The reservation stands: the usage could not be read.
    Reservation,
    /// Nothing charged: the upstream failed, answered with an error, or the cache answered.
    Refunded,
}

/// One request's charge: its usage, its cost and how it was settled. In a non-streamed
/// answer's extensions; given to [`BudgetConfig::observer`]'s sibling,
/// [`BudgetLimiter::on_charge`], for every request exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Charge {
    /// The model requested.
    pub model: String,
    /// The usage charged (zero when refunded).
    pub usage: Usage,
    /// Its cost, when the model is priced.
    pub cost: Option<Usd>,
    /// How it was settled.
    pub settled: Settled,
    /// Whether the response cache answered.
    pub cache_hit: bool,
}

type ChargeFn = Arc<dyn Fn(&Charge) + Send + Sync>;

struct Shared {
    cfg: BudgetConfig,
    store: Arc<dyn BudgetStore>,
    clock: Arc<dyn Clock>,
    counter: TokenCounter,
    on_charge: Option<ChargeFn>,
    warned_unpriced: Mutex<HashSet<String>>,
    /// Adjustments sent to the store and not yet answered.
    inflight: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// The budget processor: reserves each request's worst-case cost on every budget it touches
/// before the call (all or nothing), reconciles with the real usage after it.
#[derive(Clone)]
pub struct BudgetLimiter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BudgetLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetLimiter")
            .field("config", &self.shared.cfg)
            .field("store", &self.shared.store)
            .finish_non_exhaustive()
    }
}

/// What the request phase reserved, for the response phases.
#[derive(Debug, Clone)]
struct Pending {
    holds: Vec<(Hold, Limit)>,
    price: Option<Price>,
    api: ApiKind,
    model: String,
    prompt: u64,
}

impl BudgetLimiter {
    /// A limiter keeping spend in this process's memory, on the system clock.
    pub fn new(config: BudgetConfig) -> Self {
        Self::with_store(config, Arc::new(MemoryStore::new()), Arc::new(SystemClock))
    }

    /// A limiter keeping spend in `store`, reading the time from `clock`.
    pub fn with_store(
        config: BudgetConfig,
        store: Arc<dyn BudgetStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                cfg: config,
                store,
                clock,
                counter: TokenCounter::shared(),
                on_charge: None,
                warned_unpriced: Mutex::new(HashSet::new()),
                inflight: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Calls `f` with every request's [`Charge`], exactly once per request admitted — also
    /// for requests no budget applies to (they are metered, not limited).
    #[must_use]
    pub fn on_charge(self, f: impl Fn(&Charge) + Send + Sync + 'static) -> Self {
        let mut s = match Arc::try_unwrap(self.shared) {
            Ok(s) => s,
            Err(a) => Shared {
                cfg: a.cfg.clone(),
                store: a.store.clone(),
                clock: a.clock.clone(),
                counter: a.counter.clone(),
                on_charge: a.on_charge.clone(),
                warned_unpriced: Mutex::new(HashSet::new()),
                inflight: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
            },
        };
        s.on_charge = Some(Arc::new(f));
        Self {
            shared: Arc::new(s),
        }
    }

    /// Waits until every adjustment sent to the store so far has been answered (a test's
    /// synchronisation point; a graceful shutdown's last step).
    pub async fn settled(&self) {
        loop {
            let idle = self.shared.idle.notified();
            if self.shared.inflight.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// The store key of `principal`'s budget named `budget` now (the store may add a
    /// prefix): for operators inspecting the store. `None` if no such budget applies to it.
    pub fn store_key(&self, principal: &Principal, budget: &str) -> Option<String> {
        let b = self.shared.cfg.budgets.iter().find(|b| b.name == budget)?;
        let subject = subject(b, Some(principal), "")?;
        let span = b.window.span(self.shared.clock.now(), &b.time_zone);
        Some(key(b, &subject, &span.key_part()))
    }

    /// The configuration.
    pub fn config(&self) -> &BudgetConfig {
        &self.shared.cfg
    }

    /// What `principal` has spent and may still spend, per budget that applies to it (model
    /// budgets excluded: they are per model, not per caller).
    /// Adjustments already sent are waited for first (bounded by the store timeout), so a
    /// caller sees the cost of the answers it has received.
    pub async fn status(&self, principal: &Principal) -> Result<Vec<BudgetStatus>, ProcessorError> {
        let _ = tokio::time::timeout(self.shared.cfg.timeout * 2, self.settled()).await;
        let now = self.shared.clock.now();
        let mut out = Vec::new();
        let mut holds = Vec::new();
        for b in &self.shared.cfg.budgets {
            if b.scope == Scope::Model {
                continue;
            }
            let Some(subject) = subject(b, Some(principal), "") else {
                continue;
            };
            let span = b.window.span(now, &b.time_zone);
            holds.push(Hold {
                key: key(b, &subject, &span.key_part()),
                limit: b.limit.units(),
                amount: 0,
                span: span.clone(),
            });
            out.push(BudgetStatus {
                budget: b.name.clone(),
                limit: b.limit,
                spent: 0,
                resets_at: span.resets_at(),
            });
        }
        let spent = self
            .shared
            .store
            .spent(&holds)
            .await
            .map_err(|e| ProcessorError::new(FailureClass::ExternalService, e.to_string()))?;
        for (s, n) in out.iter_mut().zip(spent) {
            s.spent = n;
        }
        Ok(out)
    }

    fn settle(
        &self,
        p: &Pending,
        usage: Option<Usage>,
        settled: Settled,
        cache_hit: bool,
    ) -> Charge {
        settle(&self.shared, p, usage, settled, cache_hit)
    }
}

/// A principal's standing on one budget.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetStatus {
    /// The budget.
    pub budget: String,
    /// Its limit.
    pub limit: Limit,
    /// Spent in the current period, in the limit's unit.
    pub spent: u64,
    /// When the period ends.
    pub resets_at: std::time::SystemTime,
}

impl BudgetStatus {
    /// What may still be spent, in the limit's unit.
    pub fn remaining(&self) -> u64 {
        self.limit.units().saturating_sub(self.spent)
    }
}

/// The scope's value for this request (`None`: the budget does not apply).
fn subject(b: &Budget, principal: Option<&Principal>, model: &str) -> Option<String> {
    match &b.scope {
        Scope::Global => Some(String::new()),
        Scope::Model => Some(model.to_owned()),
        Scope::Principal => principal.map(|p| p.id().to_owned()),
        Scope::Team => principal.and_then(Principal::team).map(str::to_owned),
        Scope::Tenant => principal.map(|p| p.tenant().to_owned()),
        Scope::Label(l) => principal.and_then(|p| p.label(l)).map(str::to_owned),
    }
}

/// The store key: `ig:budget:{<hash of scope and subject>}:<budget>:<period>`. The hash tag
/// keeps every key of one subject in one Redis Cluster slot; the subject is hashed, never
/// stored in clear.
fn key(b: &Budget, subject: &str, period: &str) -> String {
    let scope = match &b.scope {
        Scope::Global => "g".to_owned(),
        Scope::Model => "m".to_owned(),
        Scope::Principal => "p".to_owned(),
        Scope::Team => "t".to_owned(),
        Scope::Tenant => "n".to_owned(),
        Scope::Label(l) => format!("l:{l}"),
    };
    let h = xxhash_rust::xxh3::xxh3_128(format!("{scope}\u{0}{subject}").as_bytes());
    format!("ig:budget:{{{h:032x}}}:{}:{period}", b.name)
}

fn units_of(limit: Limit, price: Option<&Price>, usage: &Usage) -> u64 {
    match limit {
        Limit::Usd(_) => price.map_or(0, |p| p.cost(usage).nanos()),
        Limit::Tokens(_) => usage.total_tokens(),
    }
}

fn settle(
    shared: &Arc<Shared>,
    p: &Pending,
    usage: Option<Usage>,
    settled: Settled,
    cache_hit: bool,
) -> Charge {
    let adjustments: Vec<(Hold, i64)> = p
        .holds
        .iter()
        .filter_map(|(h, limit)| {
            let actual = match (settled, usage) {
                (Settled::Refunded, _) => 0,
                (_, Some(u)) => units_of(*limit, p.price.as_ref(), &u),
                (_, None) => return None, // the reservation stands
            };
            let delta = i128::from(actual) - i128::from(h.amount);
            let delta = i64::try_from(delta).unwrap_or(if delta > 0 { i64::MAX } else { i64::MIN });
            (delta != 0).then(|| (h.clone(), delta))
        })
        .collect();
    if !adjustments.is_empty() && tokio::runtime::Handle::try_current().is_err() {
        tracing::warn!(
            processor = "budget",
            "no runtime to send a budget adjustment: the reservation stays charged"
        );
    } else if !adjustments.is_empty() {
        let s = shared.clone();
        s.inflight.fetch_add(1, Ordering::AcqRel);
        infergate_core::spawn_background(
            async move {
                if let Err(e) = s.store.adjust(&adjustments).await {
                    tracing::warn!(processor = "budget", error = %e,
                        "a budget adjustment failed: the reservation stays charged");
                }
                if s.inflight.fetch_sub(1, Ordering::AcqRel) == 1 {
                    s.idle.notify_waiters();
                }
            },
            "a budget adjustment",
        );
    }
    let charged = match settled {
        Settled::Refunded => Usage::default(),
        _ => usage.unwrap_or_default(),
    };
    let cost = p.price.as_ref().map(|pr| match settled {
        Settled::Refunded => Usd::ZERO,
        _ => pr.cost(&charged),
    });
    let charge = Charge {
        model: p.model.clone(),
        usage: charged,
        cost,
        settled,
        cache_hit,
    };
    if let Some(f) = &shared.on_charge {
        f(&charge);
    }
    charge
}

fn header(name: &str) -> HeaderName {
    HeaderName::from_bytes(name.as_bytes()).unwrap_or(HeaderName::from_static("x-infergate-budget"))
}

fn rejection(b: &Budget, hold: &Hold, spent: u64) -> Rejection {
    let limit = b.limit;
    let msg = if hold.amount > limit.units() {
        format!(
            "this request may cost up to {}, more than budget '{}' allows ({} per period); lower max_tokens",
            limit.show(hold.amount),
            b.name,
            limit.show(limit.units())
        )
    } else {
        format!(
            "budget '{}' is exhausted: {} of {} spent, and this request may cost up to {}",
            b.name,
            limit.show(spent),
            limit.show(limit.units()),
            limit.show(hold.amount)
        )
    };
    let reset = hold
        .span
        .resets_at()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut r = Rejection::new(RejectKind::QuotaExceeded, msg).with_processor("budget");
    let unit = |units: u64| match limit {
        Limit::Usd(_) => Usd::from_nanos(units).to_string(),
        Limit::Tokens(_) => units.to_string(),
    };
    for (n, v) in [
        ("name", b.name.clone()),
        ("limit", unit(limit.units())),
        ("remaining", unit(limit.units().saturating_sub(spent))),
        ("reset", reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r = r.with_header(header(&format!("{BUDGET_HEADER_PREFIX}{n}")), v);
        }
    }
    r
}

#[async_trait]
impl Processor for BudgetLimiter {
    fn name(&self) -> &str {
        "budget"
    }

    fn failure_mode(&self) -> FailureMode {
        self.shared.cfg.failure_mode
    }

    fn timeout(&self) -> Option<std::time::Duration> {
        Some(self.shared.cfg.timeout)
    }

    fn phases(&self) -> Phases {
        // Every phase: the answer's usage is read from the body or the stream.
        Phases::REQUEST | Phases::RESPONSE | Phases::RESPONSE_BODY | Phases::RESPONSE_EVENTS
    }

    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let shared = &self.shared;
        let api = cx.api();
        let Some(payload) = cx.payload() else {
            return Ok(Decision::Continue);
        };
        let model = payload.model().unwrap_or("").to_owned();
        let principal = Principal::from_extensions(cx.extensions()).cloned();
        let budgets: Vec<(&Budget, String)> = shared
            .cfg
            .budgets
            .iter()
            .filter(|b| b.applies_to_model(&model))
            .filter_map(|b| subject(b, principal.as_ref(), &model).map(|s| (b, s)))
            .collect();
        let price = shared.cfg.prices.lookup(&model).copied();
        if budgets.is_empty() {
            // No budget applies: nothing to reserve, but subscribers still get the request's
            // charge (its usage and cost), so every request is metered once.
            if shared.on_charge.is_some() {
                let prompt = shared.counter.count_prompt(payload);
                cx.state_mut().insert(Pending {
                    holds: Vec::new(),
                    price,
                    api,
                    model,
                    prompt,
                });
            }
            return Ok(Decision::Continue);
        }
        let needs_price = budgets
            .iter()
            .any(|(b, _)| matches!(b.limit, Limit::Usd(_)));
        if needs_price && price.is_none() {
            match shared.cfg.unpriced {
                Unpriced::Reject => {
                    return Ok(Decision::Reject(
                        Rejection::new(
                            RejectKind::InvalidRequest,
                            format!(
                                "model '{model}' has no price, and a dollar budget applies to it"
                            ),
                        )
                        .with_code("model_not_priced")
                        .with_param("model")
                        .with_processor("budget"),
                    ));
                }
                Unpriced::Allow => {
                    let mut w = shared
                        .warned_unpriced
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    if w.len() < 10_000 && w.insert(model.clone()) {
                        tracing::warn!(processor = "budget", model = %model,
                            "no price for this model: dollar budgets do not count it");
                    }
                }
            }
        }
        let prompt = shared.counter.count_prompt(payload);
        let max_out = payload
            .max_output_tokens()
            .or(shared.cfg.default_max_output_tokens)
            .or(price.and_then(|p| p.max_output_tokens))
            .unwrap_or(4096);
        let now = shared.clock.now();
        let worst_usd = price.map_or(0, |p| p.worst_case(prompt, max_out).nanos());
        let mut holds = Vec::with_capacity(budgets.len());
        for (b, subj) in &budgets {
            if matches!(b.limit, Limit::Usd(_)) && price.is_none() {
                continue; // unpriced and allowed: not counted in dollars
            }
            let span = b.window.span(now, &b.time_zone);
            let amount = match b.limit {
                Limit::Usd(_) => worst_usd,
                Limit::Tokens(_) => prompt.saturating_add(max_out),
            };
            holds.push((
                Hold {
                    key: key(b, subj, &span.key_part()),
                    limit: b.limit.units(),
                    amount,
                    span,
                },
                b.limit,
            ));
        }
        let plain: Vec<Hold> = holds.iter().map(|(h, _)| h.clone()).collect();
        let verdict = shared
            .store
            .reserve(&plain)
            .await
            .map_err(|e| ProcessorError::new(FailureClass::ExternalService, e.to_string()))?;
        let applied: Vec<(&Budget, &String)> = budgets
            .iter()
            .filter(|(b, _)| !(matches!(b.limit, Limit::Usd(_)) && price.is_none()))
            .map(|(b, s)| (*b, s))
            .collect();
        if let Some(i) = verdict.refused.filter(|_| !verdict.admitted) {
            let (b, subj) = applied[i];
            let spent = verdict.spent.get(i).copied().unwrap_or(0);
            notify(shared, b, subj, 100, spent);
            return Ok(Decision::Reject(rejection(b, &plain[i], spent)));
        }
        for (i, (b, subj)) in applied.iter().enumerate() {
            let after = verdict.spent.get(i).copied().unwrap_or(0);
            let before = after.saturating_sub(plain[i].amount);
            let limit = b.limit.units().max(1);
            for t in &b.thresholds {
                let at = u128::from(limit) * u128::from(*t) / 100;
                if u128::from(before) < at && u128::from(after) >= at {
                    notify(shared, b, subj, *t, after);
                }
            }
        }
        cx.state_mut().insert(Pending {
            holds,
            price,
            api,
            model,
            prompt,
        });
        Ok(Decision::Continue)
    }

    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        let hit = cx
            .headers()
            .get("x-cache")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"hit"));
        if (hit || !cx.status().is_success())
            && let Some(p) = cx.exchange_mut().state_mut().remove::<Pending>()
        {
            let c = self.settle(&p, None, Settled::Refunded, hit);
            if hit && self.shared.cfg.cost_header {
                cx.headers_mut()
                    .insert(COST_HEADER, HeaderValue::from_static("0"));
            }
            cx.extensions_mut().insert(c);
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
        let usage = body
            .json()
            .and_then(|v| Usage::from_response_json(p.api, v));
        let c = if let Some(u) = usage {
            self.settle(&p, Some(u), Settled::Reported, false)
        } else {
            tracing::warn!(processor = "budget", model = %p.model,
                "the answer reports no readable usage: the reservation stands");
            self.settle(&p, None, Settled::Reservation, false)
        };
        if self.shared.cfg.cost_header
            && let Some(cost) = c.cost.filter(|_| c.settled == Settled::Reported)
            && let Ok(v) = HeaderValue::from_str(&cost.to_string())
        {
            cx.headers_mut().insert(COST_HEADER, v);
        }
        cx.extensions_mut().insert(c);
        Ok(Decision::Continue)
    }

    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        let p = cx.exchange_mut().state_mut().remove::<Pending>()?;
        Some(Box::new(BudgetStream {
            shared: self.shared.clone(),
            meter: UsageMeter::new(p.api),
            pending: Some(p),
        }))
    }

    fn on_upstream_error(&self, exchange: &mut Exchange) {
        if let Some(p) = exchange.state_mut().remove::<Pending>() {
            self.settle(&p, None, Settled::Refunded, false);
        }
    }
}

fn notify(shared: &Shared, b: &Budget, subject: &str, percent: u8, spent: u64) {
    tracing::info!(processor = "budget", budget = %b.name, percent, spent = %b.limit.show(spent),
        limit = %b.limit.show(b.limit.units()), "budget threshold reached");
    if let Some(f) = &shared.cfg.observer {
        f(&BudgetEvent {
            budget: b.name.clone(),
            subject: subject.to_owned(),
            percent,
            spent,
            limit: b.limit.units(),
        });
    }
}

/// Follows a stream's usage and settles when it ends, however it ends.
struct BudgetStream {
    shared: Arc<Shared>,
    pending: Option<Pending>,
    meter: UsageMeter,
}

impl StreamProcessor for BudgetStream {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        self.meter.observe(&event);
        out.push(event);
        Ok(())
    }

    fn on_end(&mut self, end: StreamEnd, _out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        if let Some(p) = self.pending.take() {
            let (u, basis) = self.meter.settle(end == StreamEnd::Completed, p.prompt);
            let how = if basis == UsageBasis::Reported {
                Settled::Reported
            } else {
                Settled::Estimate
            };
            settle(&self.shared, &p, Some(u), how, false);
        }
        Ok(())
    }
}

impl Drop for BudgetStream {
    fn drop(&mut self) {
        // The pipeline always calls on_end; this is the last resort if a driver did not.
        if self.pending.is_some() {
            let _ = self.on_end(StreamEnd::ClientGone, &mut Vec::new());
        }
    }
}
