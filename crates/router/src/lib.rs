//! The semantic router: picks the backend and the model of each request by its requested
//! model name, its headers, keywords in its text, and the meaning of that text.
//!
//! ```
//! use std::sync::Arc;
//!
//! use infergate_embed::HashEmbedder;
//! use infergate_router::{Router, RouterConfig, SemanticRoute, Target};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), infergate_router::RouterError> {
//! let config = RouterConfig::new()
//!     .alias("fast", Target::new("openai").model("gpt-4o-mini"))
//!     .model_glob("claude-*", Target::new("anthropic"))
//!     .keywords("code", ["rust", "python", "stack trace"], Target::new("openai").model("gpt-4o"))
//!     .semantic(SemanticRoute::new(
//!         "billing",
//!         ["how much do i owe", "pay my invoice", "update my credit card"],
//!         Target::new("cheap").model("gpt-4o-mini"),
//!     ).threshold(0.3))
//!     .default_route(Target::new("openai"));
//! let utterances = config.utterances();
//! let router = Router::build(config, Arc::new(HashEmbedder::builder().fit(utterances))).await?;
//! let d = router
//!     .decide_text(None, &http::HeaderMap::new(), "i need to pay my invoice")
//!     .await?
//!     .expect("a route");
//! assert_eq!(d.rule.as_deref(), Some("semantic:billing"));
//! assert_eq!(d.backend.as_deref(), Some("cheap"));
//! # Ok(())
//! # }
//! ```
//!
//! Rules run in the order they were added — model aliases, model globs, header matches and
//! keyword rules — and the first that matches decides. Then the semantic routes: the query
//! text's embedding is compared with each route ([`Match::Centroid`], the default, or the
//! [`Match::Nearest`] utterances), and the best route wins if its score reaches its threshold.
//! Below every threshold, the default route applies (or none: the request goes where it was
//! going). The decision goes into the request extensions
//! ([`RouteDecision`](infergate_core::RouteDecision)), the `x-gateway-model-name` header (as in
//! the Gateway API Inference Extension) and, unless disabled, the request's `model`; with
//! `explain` on, the response says which rule decided and the score
//! (`x-infergate-route: semantic:billing; score=0.812`).
//!
//! The query text is the last user message by default ([`QueryText`]).
//!
//! ## Principals
//!
//! With a [`Principal`](infergate_core::Principal) in the request extensions (an identity
//! block ran first), only targets whose resolved model the principal
//! [`allows_model`](infergate_core::Principal::allows_model) are candidates: header, keyword
//! and semantic rules and the default that resolve to another model are skipped, and an alias
//! or glob (the client named that model) resolving to one is refused, 403 `model_not_allowed`
//! ([`Router::decide_for`]). Without a principal every configured model is a candidate, and
//! header rules match whatever the client sends (client-asserted).
//!
//! ## Configuration as data
//!
//! [`RouterSpec`] is the whole configuration as plain data (with the `serde` feature, default,
//! it deserializes from a config file's `[router]` section; unknown fields and values are
//! errors): [`RouterSpec::config`] makes the [`RouterConfig`], [`RouterSpec::build`] the
//! router with the embedder it names.

mod calibrate;
mod config;
mod glob;
mod layer;
mod processor;

pub use calibrate::{Calibration, calibrate};
pub use config::{
    AliasRule, EmbedderKind, GlobRule, HeaderRule, KeywordRule, Match, QueryText, RouterConfig,
    RouterSpec, SemanticRoute, SemanticRule, SpecError, Target,
};
pub use layer::RouterLayer;
pub use processor::{ROUTE_HEADER, Router, RouterError};
