//! # infergate-budget
//!
//! Dollar and token budgets for LLM traffic, as an infergate [`Processor`](infergate_core::Processor)
//! ([`BudgetLimiter`]) and a tower layer ([`BudgetLayer`]).
//!
//! ```
//! use infergate_budget::{Budget, BudgetConfig, BudgetLayer, Limit, Scope, Usd, Window};
//! use infergate_core::{Body, Principal};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // $1 a day per principal, and the cost of each answer in a header.
//! let day = Budget::new("daily", Scope::Principal, Limit::Usd(Usd::from_nanos(1_000_000_000)), Window::Day);
//! let layer = BudgetLayer::new(BudgetConfig::new([day]).cost_header(true));
//! let upstream = tower::service_fn(|_req: http::Request<Body>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(
//!         r#"{"id":"c","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500}}"#,
//!     )))
//! });
//! let svc = layer.layer(upstream);
//! let mut req = http::Request::post("/v1/chat/completions")
//!     .body(Body::from(r#"{"model":"gpt-4o-mini","max_tokens":500,"messages":[{"role":"user","content":"Hi"}]}"#))
//!     .unwrap();
//! Principal::new("team-a-key", "acme").insert_into(req.extensions_mut());
//! let resp = svc.oneshot(req).await.unwrap();
//! // 1,000 input tokens at $0.15/M and 500 output at $0.60/M.
//! assert_eq!(resp.headers()["x-infergate-cost-usd"], "0.00045");
//! # }
//! ```
//!
//! ## How it counts
//!
//! - **Prices** come from a [`PriceTable`]: the shipped one ([`PriceTable::builtin`], list
//!   prices per million input, output, cache-read, cache-write and reasoning tokens, with its
//!   source and date) extended or replaced by the operator's. A request's cost is computed
//!   from the normalised usage record ([`infergate_core::usage::Usage`]) in nano-dollars
//!   ([`Usd`]), rounded up.
//! - **Reserve first**: before the call, every budget the request touches (per principal,
//!   team, tenant, label value, model or global; over a calendar day or month in a time zone,
//!   or a rolling window) is charged the request's worst case — its prompt counted with the
//!   model's tokenizer plus its `max_tokens` (or the model's largest answer) at the dearest
//!   price — all or nothing. If one has no room, the answer is 429 with OpenAI's
//!   `insufficient_quota` error and `x-infergate-budget-name`, `-limit`, `-remaining` and
//!   `-reset` headers, so concurrent requests cannot overrun a budget by more than what is in
//!   flight.
//! - **Reconcile after**: the real cost replaces the reservation, exactly once per request —
//!   from the body of a non-streamed answer, from the stream's usage (a stream cut short is
//!   charged its reported or estimated input plus one output token per content delta), nothing
//!   for an upstream error or a cache hit (`x-cache: HIT`). An answer whose usage cannot be
//!   read keeps its reservation, with a warning.
//! - **Thresholds** (80 % by default) are reported as [`BudgetEvent`]s and traces.
//! - **Failures**: a store that fails or times out is handled by the configured
//!   [`FailureMode`](infergate_core::FailureMode), as every processor's failure is.

mod clock;
mod config;
mod layer;
mod price;
mod processor;
#[cfg(feature = "serde")]
mod spec;
pub mod store;
mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Budget, BudgetConfig, BudgetEvent, Limit, Observer, Scope, Unpriced};
pub use layer::BudgetLayer;
pub use price::{Price, PriceError, PriceSpec, PriceTable, Usd};
pub use processor::{
    BUDGET_HEADER_PREFIX, BudgetLimiter, BudgetStatus, COST_HEADER, Charge, Settled,
};
#[cfg(feature = "serde")]
pub use spec::{BudgetEntry, BudgetSpec, BudgetSpecError, UnpricedSpec};
pub use window::{Span, Window};
