//! Router configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use infergate_core::FailureMode;

/// Where a route sends a request: a backend and, optionally, the model to ask it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The backend's name (as the gateway or the failover layer knows it).
    pub backend: String,
    /// The model to ask for; `None` keeps the requested one.
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
    /// The least similarity (cosine, -1..1) at which this route may win.
    pub threshold: f32,
}

impl SemanticRoute {
    /// A route with the default threshold (0.5).
    pub fn new<I, S>(name: impl Into<String>, utterances: I, target: Target) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            utterances: utterances.into_iter().map(Into::into).collect(),
            target,
            threshold: 0.5,
        }
    }

    /// Sets the threshold.
    #[must_use]
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }
}

/// How a query is compared with a semantic route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Match {
    /// With the normalised mean of the route's utterance vectors: one dot product per route.
    Centroid,
    /// With the route's `k` most similar utterances (their mean similarity): one dot product
    /// per utterance.
    Nearest {
        /// How many utterances.
        k: usize,
    },
}

/// Which text of the request the keyword and semantic rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryText {
    /// The last user message (default).
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
