//! Router configuration: [`RouterConfig`] (the builder a [`Router`] is made from) and
//! [`RouterSpec`] (the same as plain data, as a configuration file writes it, with the
//! embedder to build).
//!
//! With the `serde` feature (default) [`RouterSpec`], its rules, [`Target`], [`QueryText`] and
//! [`Match`] deserialize; unknown fields and values are errors.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use infergate_core::FailureMode;
use infergate_embed::{CachedEmbedder, Embedder, HashEmbedder, OpenAiEmbedder};

use crate::{Router, RouterError};

/// Where a route sends a request: a backend and, optionally, the model to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Target {
    /// The backend's name (as the gateway or the failover layer knows it).
    pub backend: String,
    /// The model to ask for; `None` keeps the requested one.
    #[cfg_attr(feature = "serde", serde(default))]
    pub model: Option<String>,
}

impl Target {
    /// The backend `backend`, keeping the requested model.
    pub fn new(backend: impl Into<String>) -> Self {
        Self {
            backend: backend.into(),
            model: None,
        }
    }

    /// Asks the backend for `model`.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

/// A route chosen by meaning: example utterances, a target and a similarity threshold.
#[derive(Debug, Clone)]
pub struct SemanticRoute {
    /// The route's name (reported as `semantic:<name>`).
    pub name: String,
    /// Example utterances.
    pub utterances: Vec<String>,
    /// Where matching requests go.
    pub target: Target,
    /// The least similarity (cosine, -1..1) at which this route may win; `None` (the default):
    /// the threshold the router calibrates from the routes' own utterances when it is built
    /// ([`Router::calibration`](crate::Router::calibration)).
    pub threshold: Option<f32>,
}

impl SemanticRoute {
    /// A route with the calibrated threshold.
    pub fn new<I, S>(name: impl Into<String>, utterances: I, target: Target) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            utterances: utterances.into_iter().map(Into::into).collect(),
            target,
            threshold: None,
        }
    }

    /// Sets the threshold (instead of the calibrated one).
    #[must_use]
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = Some(threshold);
        self
    }
}

/// How a query is compared with a semantic route.
///
/// With the `serde` feature (default) it deserializes from `"centroid"` or `"nearest"` (with
/// `k` = 5; [`RouterSpec::nearest_k`] sets another).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(from = "raw::MatchName")
)]
#[non_exhaustive]
pub enum Match {
    /// With the normalised mean of the route's utterance vectors: one dot product per route.
    /// The default.
    #[default]
    Centroid,
    /// With the route's `k` most similar utterances (their mean similarity): one dot product
    /// per utterance.
    Nearest {
        /// How many utterances.
        k: usize,
    },
}

/// Which text of the request the keyword and semantic rules look at.
///
/// With the `serde` feature (default) it deserializes from `"last_user"`, `"conversation"` or
/// `"system"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum QueryText {
    /// The last user message (default).
    #[default]
    LastUser,
    /// Every message, tool arguments and the system prompt, joined.
    Conversation,
    /// The system prompt (system messages, Anthropic's `system`, Responses' `instructions`).
    System,
}

#[derive(Debug, Clone)]
pub(crate) enum Rule {
    Alias(String, Target),
    Glob(String, Target),
    Header(http::HeaderName, Option<String>, Target),
    Keywords(String, Vec<String>, Target),
}

/// Configures a [`Router`](crate::Router).
#[derive(Debug, Clone)]
#[must_use]
pub struct RouterConfig {
    pub(crate) rules: Vec<Rule>,
    pub(crate) semantic: Vec<SemanticRoute>,
    pub(crate) default: Option<Target>,
    pub(crate) query: QueryText,
    pub(crate) matching: Match,
    pub(crate) rewrite_model: bool,
    pub(crate) explain: bool,
    pub(crate) center: Option<bool>,
    pub(crate) failure_mode: FailureMode,
    pub(crate) timeout: Option<Duration>,
    /// Per backend name: the label sets behind it (one for a backend, one per member for a
    /// failover group).
    pub(crate) backend_labels: BTreeMap<String, Vec<BTreeMap<String, String>>>,
    pub(crate) restrictions: BTreeMap<String, Vec<String>>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            semantic: Vec::new(),
            default: None,
            query: QueryText::LastUser,
            matching: Match::Centroid,
            rewrite_model: true,
            explain: false,
            center: None,
            failure_mode: FailureMode::FailOpen,
            timeout: None,
            backend_labels: BTreeMap::new(),
            restrictions: BTreeMap::new(),
        }
    }
}

impl RouterConfig {
    /// No rules yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests for model `name` (exactly) go to `target` (`fast` -> a cheap model).
    pub fn alias(mut self, name: impl Into<String>, target: Target) -> Self {
        self.rules.push(Rule::Alias(name.into(), target));
        self
    }

    /// Requests for a model matching `pattern` (`*`, `?`) go to `target`.
    pub fn model_glob(mut self, pattern: impl Into<String>, target: Target) -> Self {
        self.rules.push(Rule::Glob(pattern.into(), target));
        self
    }

    /// Requests with header `name` (equal to `value`, or with any value when `None`) go to
    /// `target`. An invalid header name never matches.
    pub fn header(mut self, name: &str, value: Option<&str>, target: Target) -> Self {
        if let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) {
            self.rules
                .push(Rule::Header(n, value.map(str::to_owned), target));
        }
        self
    }

    /// Requests whose query text contains one of `words` (whole words or phrases, any case) go
    /// to `target`; the rule reports as `keywords:<name>`.
    pub fn keywords<I, S>(mut self, name: impl Into<String>, words: I, target: Target) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let words = words.into_iter().map(|w| w.into().to_lowercase()).collect();
        self.rules.push(Rule::Keywords(name.into(), words, target));
        self
    }

    /// Adds a semantic route.
    pub fn semantic(mut self, route: SemanticRoute) -> Self {
        self.semantic.push(route);
        self
    }

    /// Where requests go when no rule or route matches (default: nowhere in particular — the
    /// request keeps its backend and model).
    pub fn default_route(mut self, target: Target) -> Self {
        self.default = Some(target);
        self
    }

    /// Which text the keyword and semantic rules read (default: the last user message).
    pub fn query(mut self, query: QueryText) -> Self {
        self.query = query;
        self
    }

    /// How queries are compared with semantic routes (default: [`Match::Centroid`]).
    pub fn matching(mut self, matching: Match) -> Self {
        self.matching = matching;
        self
    }

    /// Whether the chosen model replaces the request's `model` (default: yes). The
    /// `x-gateway-model-name` header names it either way.
    pub fn rewrite_model(mut self, yes: bool) -> Self {
        self.rewrite_model = yes;
        self
    }

    /// Whether responses carry `x-infergate-route` with the rule and score (default: no).
    pub fn explain(mut self, yes: bool) -> Self {
        self.explain = yes;
        self
    }

    /// Whether semantic similarities are taken after removing the mean of the routes'
    /// utterance vectors from them and from queries (default: yes for dense embedders with at
    /// least two routes, no for sparse ones such as the built-in hashed embedder).
    pub fn center(mut self, yes: bool) -> Self {
        self.center = Some(yes);
        self
    }

    /// What an embedding failure does: `FailOpen` (default) lets the request through
    /// unrouted; `FailClosed` answers 502 (`external_service_failed`).
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.failure_mode = mode;
        self
    }

    /// A time limit for routing one request (embedding included).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Declares the labels (`region` = `eu-west-1`, `provider`, …) of the backend `name`, so
    /// that restrictions can be checked when choosing it. Calling it again for the same name
    /// adds another label set: a failover group declares each member's, and is a candidate
    /// when any member is allowed (the group itself then keeps to the allowed ones). A backend
    /// whose labels are not declared is left to the egress, which enforces the restrictions
    /// too (`infergate-failover`).
    pub fn backend_labels<I, K, V>(mut self, name: impl Into<String>, labels: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.backend_labels.entry(name.into()).or_default().push(
            labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// A deployment-wide restriction: for every request, with a principal or without, only
    /// backends whose label `key` matches one of the value globs (`*`, `?`) are candidates
    /// (see [`Router::decide_for`](crate::Router::decide_for)). A principal's own
    /// [`allowed_labels`](infergate_core::Principal::allowed_labels) apply on top.
    pub fn restrict<I, S>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.restrictions
            .insert(key.into(), values.into_iter().map(Into::into).collect());
        self
    }

    /// Every utterance of the semantic routes (to fit an embedder on, such as
    /// [`HashEmbedder::builder().fit(..)`](infergate_embed::HashEmbedderBuilder::fit)).
    pub fn utterances(&self) -> Vec<String> {
        self.semantic
            .iter()
            .flat_map(|r| r.utterances.iter().cloned())
            .collect()
    }
}

/// The embedder a [`RouterSpec`] builds for its semantic routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum EmbedderKind {
    /// The built-in hashed n-gram TF-IDF embedder, fitted on the routes' utterances (no model
    /// to download). The default.
    #[default]
    Builtin,
    /// An OpenAI-compatible `/v1/embeddings` ([`RouterSpec::embedder_url`],
    /// [`RouterSpec::embedder_model`], [`RouterSpec::embedder_dim`]).
    Openai,
    /// Static token vectors distilled from all-MiniLM-L6-v2 (`scripts/distill_static.sh`;
    /// [`RouterSpec::embedder_dir`]): microseconds per query.
    Static,
    /// all-MiniLM-L6-v2 with candle ([`RouterSpec::embedder_dir`]; feature `candle`): the
    /// accurate one, tens of milliseconds per query on the blocking pool.
    Minilm,
}

/// The router's configuration as plain data (a config file's `[router]`); every field is
/// optional. [`RouterSpec::config`] makes the [`RouterConfig`] (add backend labels and
/// restrictions to it), [`RouterSpec::build`] the [`Router`] with the embedder it names.
#[derive(Debug, Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct RouterSpec {
    /// The embedder of the semantic routes (default `builtin`).
    pub embedder: EmbedderKind,
    /// For `openai`: the base URL.
    pub embedder_url: Option<String>,
    /// For `openai`: the model (default `text-embedding-3-small`).
    pub embedder_model: Option<String>,
    /// For `openai`: the vector dimension (default 1536).
    pub embedder_dim: Option<usize>,
    /// For `static` and `minilm`: the weights directory.
    pub embedder_dir: Option<String>,
    /// Which text the keyword and semantic rules read (default `last_user`).
    pub query: QueryText,
    /// `centroid` (default) or `nearest` (with `nearest_k`).
    pub matching: Match,
    /// For `nearest`: how many utterances (default 5).
    pub nearest_k: Option<usize>,
    /// Whether the chosen model replaces the request's `model` (default true).
    pub rewrite_model: bool,
    /// Whether responses carry `x-infergate-route` (default false).
    pub explain: bool,
    /// Where requests go when nothing matches (default: they keep their backend and model).
    pub default: Option<Target>,
    /// Model aliases.
    pub aliases: Vec<AliasRule>,
    /// Model globs.
    pub globs: Vec<GlobRule>,
    /// Header matches.
    pub headers: Vec<HeaderRule>,
    /// Keyword rules.
    pub keywords: Vec<KeywordRule>,
    /// Semantic routes.
    pub semantic: Vec<SemanticRule>,
}

impl Default for RouterSpec {
    fn default() -> Self {
        Self {
            embedder: EmbedderKind::default(),
            embedder_url: None,
            embedder_model: None,
            embedder_dim: None,
            embedder_dir: None,
            query: QueryText::default(),
            matching: Match::default(),
            nearest_k: None,
            rewrite_model: true,
            explain: false,
            default: None,
            aliases: Vec::new(),
            globs: Vec::new(),
            headers: Vec::new(),
            keywords: Vec::new(),
            semantic: Vec::new(),
        }
    }
}

/// A model alias: requests for `name` go to `target` (written `name`, `backend`, `model`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(from = "raw::Alias")
)]
pub struct AliasRule {
    /// The model name clients send.
    pub name: String,
    /// Where it goes.
    pub target: Target,
}

/// A model glob: requests for a model matching `pattern` (`*`, `?`) go to `target` (written
/// `pattern`, `backend`, `model`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(from = "raw::Glob")
)]
pub struct GlobRule {
    /// The model-name pattern.
    pub pattern: String,
    /// Where it goes.
    pub target: Target,
}

/// A header match: requests with header `name` (equal to `value`, or any value) go to
/// `target` (written `name`, `value`, `backend`, `model`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(from = "raw::Header")
)]
pub struct HeaderRule {
    /// The header's name.
    pub name: String,
    /// Its value (`None`: any value).
    pub value: Option<String>,
    /// Where it goes.
    pub target: Target,
}

/// A keyword rule: requests whose query text holds one of `words` (whole words, any case) go
/// to `target` (written `name`, `words`, `backend`, `model`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(from = "raw::Keywords")
)]
pub struct KeywordRule {
    /// The rule's name.
    pub name: String,
    /// Words or phrases.
    pub words: Vec<String>,
    /// Where it goes.
    pub target: Target,
}

/// A semantic route as data: written `name`, `utterances`, `threshold` (default: calibrated from the routes' utterances),
/// `backend`, `model`.
#[derive(Debug, Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(from = "raw::Semantic")
)]
pub struct SemanticRule(pub SemanticRoute);

/// Why a [`RouterSpec`] cannot be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `headers[index].name` is not a header name.
    #[error("headers[{index}].name: not a valid header name")]
    HeaderName {
        /// The rule's position.
        index: usize,
    },
    /// The `openai` embedder without `embedder_url`.
    #[error("embedder = \"openai\" needs embedder_url")]
    NoEmbedderUrl,
    /// The embedder's URL is not usable.
    #[error("embedder_url: {0}")]
    EmbedderUrl(String),
    /// The `static` or `minilm` embedder without `embedder_dir`.
    #[error("embedder = \"static\" or \"minilm\" needs embedder_dir")]
    NoEmbedderDir,
    /// The embedder's weights could not be loaded.
    #[error("embedder_dir: {0}")]
    EmbedderDir(String),
    /// The router could not be built (a route without utterances, the embedder failed).
    #[error(transparent)]
    Router(#[from] RouterError),
}

impl RouterSpec {
    /// Every target the spec names (the default, the rules', the routes'), to check them
    /// against the backends there are.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.default
            .iter()
            .chain(self.aliases.iter().map(|r| &r.target))
            .chain(self.globs.iter().map(|r| &r.target))
            .chain(self.headers.iter().map(|r| &r.target))
            .chain(self.keywords.iter().map(|r| &r.target))
            .chain(self.semantic.iter().map(|r| &r.0.target))
    }

    /// The router's configuration: its rules in order (aliases, globs, headers, keywords),
    /// the semantic routes, the default, query, matching, explain and rewrite settings.
    pub fn config(&self) -> Result<RouterConfig, SpecError> {
        let mut cfg = RouterConfig::new()
            .explain(self.explain)
            .rewrite_model(self.rewrite_model)
            .query(self.query)
            .matching(match (self.matching, self.nearest_k) {
                (Match::Nearest { .. }, Some(k)) => Match::Nearest { k },
                (m, _) => m,
            });
        for a in &self.aliases {
            cfg = cfg.alias(a.name.clone(), a.target.clone());
        }
        for g in &self.globs {
            cfg = cfg.model_glob(g.pattern.clone(), g.target.clone());
        }
        for (index, h) in self.headers.iter().enumerate() {
            if http::HeaderName::from_bytes(h.name.as_bytes()).is_err() {
                return Err(SpecError::HeaderName { index });
            }
            cfg = cfg.header(&h.name, h.value.as_deref(), h.target.clone());
        }
        for k in &self.keywords {
            cfg = cfg.keywords(k.name.clone(), k.words.clone(), k.target.clone());
        }
        for s in &self.semantic {
            cfg = cfg.semantic(s.0.clone());
        }
        if let Some(d) = &self.default {
            cfg = cfg.default_route(d.clone());
        }
        Ok(cfg)
    }

    /// The embedder this spec names: the built-in one fitted on `config`'s utterances, or an
    /// OpenAI-compatible one (behind a cache of 100 000 embeddings).
    pub fn embedder(&self, config: &RouterConfig) -> Result<Arc<dyn Embedder>, SpecError> {
        Ok(match self.embedder {
            EmbedderKind::Builtin => Arc::new(HashEmbedder::builder().fit(config.utterances())),
            EmbedderKind::Openai => {
                let url = self
                    .embedder_url
                    .as_deref()
                    .ok_or(SpecError::NoEmbedderUrl)?;
                let client = infergate_client::UpstreamClient::new(url)
                    .map_err(|e| SpecError::EmbedderUrl(e.to_string()))?;
                let model = self
                    .embedder_model
                    .clone()
                    .unwrap_or_else(|| "text-embedding-3-small".into());
                let e = OpenAiEmbedder::new(client, model, self.embedder_dim.unwrap_or(1536));
                Arc::new(CachedEmbedder::new(e, 100_000))
            }
            EmbedderKind::Static => {
                let dir = self
                    .embedder_dir
                    .as_deref()
                    .ok_or(SpecError::NoEmbedderDir)?;
                Arc::new(
                    infergate_embed::StaticEmbedder::load(dir)
                        .map_err(|e| SpecError::EmbedderDir(e.to_string()))?,
                )
            }
            #[cfg(feature = "candle")]
            EmbedderKind::Minilm => {
                let dir = self
                    .embedder_dir
                    .as_deref()
                    .ok_or(SpecError::NoEmbedderDir)?;
                let e = infergate_embed::MiniLm::load(dir)
                    .map_err(|e| SpecError::EmbedderDir(e.to_string()))?;
                Arc::new(CachedEmbedder::new(e, 100_000))
            }
            #[cfg(not(feature = "candle"))]
            EmbedderKind::Minilm => {
                return Err(SpecError::EmbedderDir(
                    "the minilm embedder needs infergate-router's `candle` feature".into(),
                ));
            }
        })
    }

    /// The router over `config` (from [`RouterSpec::config`], with labels and restrictions
    /// added as needed), with the embedder this spec names.
    pub async fn build(&self, config: RouterConfig) -> Result<Router, SpecError> {
        let embedder = self.embedder(&config)?;
        Ok(Router::build(config, embedder).await?)
    }
}

/// The shapes the rules are written in.
#[cfg(feature = "serde")]
mod raw {
    use serde::Deserialize;

    use super::{
        AliasRule, GlobRule, HeaderRule, KeywordRule, Match, SemanticRoute, SemanticRule, Target,
    };

    fn target(backend: String, model: Option<String>) -> Target {
        Target { backend, model }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub(super) enum MatchName {
        Centroid,
        Nearest,
    }

    impl From<MatchName> for Match {
        fn from(m: MatchName) -> Self {
            match m {
                MatchName::Centroid => Self::Centroid,
                MatchName::Nearest => Self::Nearest { k: 5 },
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Alias {
        name: String,
        backend: String,
        #[serde(default)]
        model: Option<String>,
    }

    impl From<Alias> for AliasRule {
        fn from(r: Alias) -> Self {
            Self {
                name: r.name,
                target: target(r.backend, r.model),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Glob {
        pattern: String,
        backend: String,
        #[serde(default)]
        model: Option<String>,
    }

    impl From<Glob> for GlobRule {
        fn from(r: Glob) -> Self {
            Self {
                pattern: r.pattern,
                target: target(r.backend, r.model),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Header {
        name: String,
        #[serde(default)]
        value: Option<String>,
        backend: String,
        #[serde(default)]
        model: Option<String>,
    }

    impl From<Header> for HeaderRule {
        fn from(r: Header) -> Self {
            Self {
                name: r.name,
                value: r.value,
                target: target(r.backend, r.model),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Keywords {
        name: String,
        words: Vec<String>,
        backend: String,
        #[serde(default)]
        model: Option<String>,
    }

    impl From<Keywords> for KeywordRule {
        fn from(r: Keywords) -> Self {
            Self {
                name: r.name,
                words: r.words,
                target: target(r.backend, r.model),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Semantic {
        name: String,
        utterances: Vec<String>,
        #[serde(default)]
        threshold: Option<f32>,
        backend: String,
        #[serde(default)]
        model: Option<String>,
    }

    impl From<Semantic> for SemanticRule {
        fn from(r: Semantic) -> Self {
            let route = SemanticRoute::new(r.name, r.utterances, target(r.backend, r.model));
            Self(match r.threshold {
                Some(t) => route.threshold(t),
                None => route,
            })
        }
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn a_spec_deserializes_into_its_config() {
        let s: RouterSpec = serde_json::from_str(
            r#"{"matching":"nearest","nearest_k":3,"query":"conversation","explain":true,
                "aliases":[{"name":"fast","backend":"small","model":"m"}],
                "headers":[{"name":"x-tier","value":"premium","backend":"big"}],
                "semantic":[{"name":"billing","utterances":["pay my invoice"],"threshold":0.3,"backend":"small"}],
                "default":{"backend":"big"}}"#,
        )
        .unwrap();
        let c = s.config().unwrap();
        assert_eq!(c.matching, Match::Nearest { k: 3 });
        assert_eq!(c.query, QueryText::Conversation);
        assert!(c.explain && c.rewrite_model);
        assert_eq!(c.rules.len(), 2);
        assert!((c.semantic[0].threshold.unwrap() - 0.3).abs() < 1e-6);
        let backends: Vec<&str> = s.targets().map(|t| t.backend.as_str()).collect();
        assert_eq!(backends, ["big", "small", "big", "small"]);
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        assert!(serde_json::from_str::<RouterSpec>(r#"{"explian":true}"#).is_err());
        assert!(
            serde_json::from_str::<RouterSpec>(
                r#"{"aliases":[{"name":"a","backend":"b","modle":"c"}]}"#
            )
            .is_err()
        );
        let e = serde_json::from_str::<RouterSpec>(r#"{"query":"everything"}"#).unwrap_err();
        assert!(e.to_string().contains("last_user"), "{e}");
    }

    #[tokio::test]
    async fn the_builtin_embedder_builds_a_router() {
        let s: RouterSpec = serde_json::from_str(
            r#"{"semantic":[{"name":"travel","utterances":["book a flight"],"backend":"b"}]}"#,
        )
        .unwrap();
        s.build(s.config().unwrap()).await.unwrap();
        let bad: RouterSpec =
            serde_json::from_str(r#"{"headers":[{"name":"bad header","backend":"b"}]}"#).unwrap();
        assert!(matches!(
            bad.config(),
            Err(SpecError::HeaderName { index: 0 })
        ));
    }
}
