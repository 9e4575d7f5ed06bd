//! The router: rules, semantic routes, and the processor.

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderMap, HeaderValue};
use infergate_core::principal::{labels_allowed, restriction_text};
use infergate_core::{
    Decision, FailureMode, Payload, Phases, Principal, Processor, ProcessorError, RejectKind,
    Rejection, RequestContext, ResponseContext, RouteDecision,
};
use infergate_embed::{Embedder, dot, normalize};

use crate::config::{Match, QueryText, RouterConfig, Rule, SemanticRoute, Target};
use crate::glob::glob_match;

/// The response header that explains a routing decision (with `explain` on).
pub const ROUTE_HEADER: &str = "x-infergate-route";

/// Why a router could not be built or could not route.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The embedder failed.
    #[error("embedding failed: {0}")]
    Embed(#[from] infergate_embed::EmbedError),
    /// A semantic route has no utterances.
    #[error("semantic route '{0}' has no utterances")]
    EmptyRoute(String),
    /// The request resolves to a model its principal may not use (the processor answers 403
    /// `model_not_allowed`).
    #[error("the principal may not use the model this request resolves to")]
    ModelNotAllowed,
    /// The client named a model (an alias or glob) whose backend the restrictions do not
    /// allow (the processor answers 403 `backend_not_allowed`).
    #[error(
        "the backend this request resolves to is not allowed by the restriction ({restriction})"
    )]
    BackendNotAllowed {
        /// The restrictions that applied, as text (label keys and value globs only).
        restriction: String,
    },
}

/// What the request phase leaves for the explain header: the restrictions that applied and
/// the rules skipped because of them.
#[derive(Debug, Clone)]
struct Restricted {
    text: String,
    skipped: Vec<String>,
}

/// Routes requests: a [`Processor`] for a [`Pipeline`](infergate_core::Pipeline), or a tower
/// layer through [`RouterLayer`](crate::RouterLayer). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: RouterConfig,
    embedder: Arc<dyn Embedder>,
    /// Per semantic route: its normalised centroid.
    centroids: Vec<Vec<f32>>,
    /// Per semantic route: its utterance vectors.
    vectors: Vec<Vec<Vec<f32>>>,
    /// Per semantic route: the threshold it uses (its own, else the calibrated one).
    thresholds: Vec<f32>,
    /// What calibration found (with at least two routes).
    calibration: Option<crate::Calibration>,
    /// The mean of the routes' utterance vectors, removed from queries (dense embedders).
    mean: Option<Vec<f32>>,
}

/// `v − mean`, L2-normalised.
fn centred(v: &[f32], mean: &[f32]) -> Vec<f32> {
    let mut out: Vec<f32> = v.iter().zip(mean).map(|(a, b)| a - b).collect();
    normalize(&mut out);
    out
}

impl Router {
    /// Builds a router: embeds every utterance of the semantic routes once.
    pub async fn build(
        cfg: RouterConfig,
        embedder: Arc<dyn Embedder>,
    ) -> Result<Self, RouterError> {
        let mut centroids = Vec::with_capacity(cfg.semantic.len());
        let mut vectors = Vec::with_capacity(cfg.semantic.len());
        let mut raw = Vec::with_capacity(cfg.semantic.len());
        for route in &cfg.semantic {
            if route.utterances.is_empty() {
                return Err(RouterError::EmptyRoute(route.name.clone()));
            }
            raw.push(embedder.embed(&route.utterances).await?);
        }
        // Centring: dense sentence vectors share a common direction (every text looks a bit
        // like every other), which compresses their similarities; measured from the mean of
        // the routes' own utterances and removed from them and from every query, it spreads
        // them out. Sparse (hashed) vectors are left as they are (and stay sparse).
        let sparse = embedder.embed_sparse("centring probe").is_some();
        let mean = match cfg.center {
            Some(false) => None,
            Some(true) => Some(()),
            None => (!sparse && cfg.semantic.len() >= 2).then_some(()),
        }
        .map(|()| {
            let mut m = vec![0.0f32; embedder.dim()];
            let n = raw.iter().map(Vec::len).sum::<usize>().max(1) as f32;
            for v in raw.iter().flatten() {
                for (a, b) in m.iter_mut().zip(v) {
                    *a += b / n;
                }
            }
            m
        });
        for vs in raw {
            let vs: Vec<Vec<f32>> = match &mean {
                Some(m) => vs.iter().map(|v| centred(v, m)).collect(),
                None => vs,
            };
            let mut c = vec![0.0f32; embedder.dim()];
            for v in &vs {
                for (a, b) in c.iter_mut().zip(v) {
                    *a += b;
                }
            }
            normalize(&mut c);
            centroids.push(c);
            vectors.push(vs);
        }
        // Routes without a threshold of their own use the one calibrated from every route's
        // utterances (0.5 when there is nothing to calibrate from: a single route).
        let calibration = if cfg.semantic.iter().any(|r| r.threshold.is_none()) {
            let c = crate::calibrate(&vectors, cfg.matching);
            if let Some(c) = &c {
                tracing::info!(
                    threshold = c.threshold,
                    in_route_pass = c.in_route_pass,
                    out_of_route_refused = c.out_of_route_refused,
                    queries = c.queries,
                    "router: semantic threshold calibrated from the routes' utterances"
                );
            }
            c
        } else {
            None
        };
        let fallback = calibration.map_or(0.5, |c| c.threshold);
        let thresholds = cfg
            .semantic
            .iter()
            .map(|r| r.threshold.unwrap_or(fallback))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                embedder,
                centroids,
                vectors,
                thresholds,
                calibration,
                mean,
            }),
        })
    }

    /// What calibrating the semantic threshold found (`None` when every route has its own
    /// threshold, or with a single route).
    pub fn calibration(&self) -> Option<crate::Calibration> {
        self.inner.calibration
    }

    /// The threshold semantic route `i` uses (its own, else the calibrated one).
    pub fn threshold_of(&self, i: usize) -> Option<f32> {
        self.inner.thresholds.get(i).copied()
    }

    /// The embedder the semantic routes use.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner.embedder
    }

    /// The semantic routes.
    pub fn semantic_routes(&self) -> &[SemanticRoute] {
        &self.inner.cfg.semantic
    }

    /// The best semantic route for an embedded query and its score, whether or not the score
    /// reaches the route's threshold.
    pub fn best_route(&self, query: &[f32]) -> Option<(usize, f32)> {
        // A text with nothing the embedder knows (all zeros) resembles no route — also after
        // centring, which would otherwise give it the mean's opposite direction.
        if query.iter().all(|x| *x == 0.0) {
            return None;
        }
        if let Some(m) = &self.inner.mean {
            let q = centred(query, m);
            return self.best_route_by(|v| dot(&q, v));
        }
        // Hashed n-gram vectors are sparse: a dot product over their non-zero entries only.
        let nz: Vec<(u32, f32)> = query
            .iter()
            .enumerate()
            .filter(|(_, x)| **x != 0.0)
            .map(|(i, x)| (i as u32, *x))
            .collect();
        if nz.len() * 4 < query.len() {
            self.best_route_sparse(&nz)
        } else {
            self.best_route_by(|v| dot(query, v))
        }
    }

    /// [`Router::best_route`] for a query given as its non-zero entries `(index, value)`
    /// ([`Embedder::embed_sparse`]).
    pub fn best_route_sparse(&self, query: &[(u32, f32)]) -> Option<(usize, f32)> {
        if let Some(m) = &self.inner.mean {
            // Centred routes: the query densified and centred like any other.
            let mut dense = vec![0.0f32; m.len()];
            for &(j, x) in query {
                if let Some(d) = dense.get_mut(j as usize) {
                    *d = x;
                }
            }
            return self.best_route(&dense);
        }
        if query.is_empty() {
            return None;
        }
        self.best_route_by(|v| {
            query
                .iter()
                .map(|&(j, x)| x * v.get(j as usize).copied().unwrap_or(0.0))
                .sum()
        })
    }

    fn best_route_by(&self, sim: impl Fn(&[f32]) -> f32) -> Option<(usize, f32)> {
        let inner = &self.inner;
        let score = |i: usize| match inner.cfg.matching {
            Match::Centroid => sim(&inner.centroids[i]),
            Match::Nearest { k } => {
                let mut sims: Vec<f32> = inner.vectors[i].iter().map(|v| sim(v)).collect();
                let k = k.clamp(1, sims.len());
                sims.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                sims[..k].iter().sum::<f32>() / k as f32
            }
        };
        (0..inner.centroids.len())
            .map(|i| (i, score(i)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Decides for a request with this requested model, headers and query text. `None`: no
    /// rule, route or default applies. Every model is a candidate (no principal).
    pub async fn decide_text(
        &self,
        model: Option<&str>,
        headers: &HeaderMap,
        text: &str,
    ) -> Result<Option<RouteDecision>, RouterError> {
        self.decide_for(model, headers, text, None).await
    }

    /// Decides like [`decide_text`](Self::decide_text) for a request made by `principal`:
    /// only targets whose resolved model (the target's, else the requested one) the principal
    /// [`allows_model`](Principal::allows_model) are candidates.
    ///
    /// - an alias or glob (the client named that model) resolving to a model it may not use
    ///   is [`RouterError::ModelNotAllowed`], not a detour;
    /// - header, keyword and semantic rules and the default resolving to such a model are
    ///   skipped (the next rule is tried);
    /// - with no decision, the requested model itself must be allowed.
    ///
    /// Without a principal (`None`), every model is a candidate.
    ///
    /// Backends are restricted the same way: under the deployment's
    /// [`restrict`](RouterConfig::restrict)ions and the principal's
    /// [`allowed_labels`](Principal::allowed_labels), a target whose backend's declared
    /// [labels](RouterConfig::backend_labels) are not allowed is skipped (header, keyword,
    /// semantic rules, the default) or refused (alias, glob:
    /// [`RouterError::BackendNotAllowed`]).
    pub async fn decide_for(
        &self,
        model: Option<&str>,
        headers: &HeaderMap,
        text: &str,
        principal: Option<&Principal>,
    ) -> Result<Option<RouteDecision>, RouterError> {
        self.decide_explained(model, headers, text, principal)
            .await
            .map(|(d, _)| d)
    }

    /// The restrictions that apply to a request made by `principal`, as text
    /// (`deployment: region in [eu-west-1]; credential: region in [eu-*]`), or `None`.
    pub fn restrictions_for(&self, principal: Option<&Principal>) -> Option<String> {
        let mut parts = Vec::new();
        let cfg = &self.inner.cfg;
        if !cfg.restrictions.is_empty() {
            parts.push(format!(
                "deployment: {}",
                restriction_text(&cfg.restrictions)
            ));
        }
        if let Some(p) = principal.filter(|p| !p.allowed_labels().is_empty()) {
            parts.push(format!(
                "credential: {}",
                restriction_text(p.allowed_labels())
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Whether the restrictions allow the backend `name` for `principal` (any of its declared
    /// label sets; undeclared backends are left to the egress).
    pub fn allows_backend(&self, name: &str, principal: Option<&Principal>) -> bool {
        let cfg = &self.inner.cfg;
        if cfg.restrictions.is_empty() && principal.is_none_or(|p| p.allowed_labels().is_empty()) {
            return true;
        }
        cfg.backend_labels.get(name).is_none_or(|sets| {
            sets.iter().any(|labels| {
                labels_allowed(&cfg.restrictions, labels)
                    && principal.is_none_or(|p| p.allows_labels(labels))
            })
        })
    }

    /// [`decide_for`](Self::decide_for), with the rules skipped because their backend was
    /// not allowed.
    async fn decide_explained(
        &self,
        model: Option<&str>,
        headers: &HeaderMap,
        text: &str,
        principal: Option<&Principal>,
    ) -> Result<(Option<RouteDecision>, Vec<String>), RouterError> {
        let model_ok = |t: &Target| {
            principal.is_none_or(|p| {
                t.model
                    .as_deref()
                    .or(model)
                    .is_none_or(|m| p.allows_model(m))
            })
        };
        let backend_ok = |t: &Target| self.allows_backend(&t.backend, principal);
        let skipped = std::sync::Mutex::new(Vec::new());
        // A candidate: its model and its backend allowed (a skipped backend is remembered).
        let allowed = |rule: &dyn Fn() -> String, t: &Target| {
            if !model_ok(t) {
                return false;
            }
            if !backend_ok(t) {
                skipped
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(format!("{}->{}", rule(), t.backend));
                return false;
            }
            true
        };
        let refused = || RouterError::BackendNotAllowed {
            restriction: self
                .restrictions_for(principal)
                .unwrap_or_else(|| "none".to_owned()),
        };
        let cfg = &self.inner.cfg;
        let decided = |rule: String, t: &Target, score: Option<f32>| RouteDecision {
            backend: Some(t.backend.clone()),
            model: t.model.clone(),
            rule: Some(rule),
            score,
        };
        let lowered = text.to_lowercase();
        for rule in &cfg.rules {
            match rule {
                Rule::Alias(name, t) if model == Some(name.as_str()) => {
                    if !model_ok(t) {
                        return Err(RouterError::ModelNotAllowed);
                    }
                    if !backend_ok(t) {
                        return Err(refused());
                    }
                    let d = decided(format!("alias:{name}"), t, None);
                    return Ok((
                        Some(d),
                        skipped
                            .into_inner()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    ));
                }
                Rule::Glob(p, t) if model.is_some_and(|m| glob_match(p, m)) => {
                    if !model_ok(t) {
                        return Err(RouterError::ModelNotAllowed);
                    }
                    if !backend_ok(t) {
                        return Err(refused());
                    }
                    let d = decided(format!("glob:{p}"), t, None);
                    return Ok((
                        Some(d),
                        skipped
                            .into_inner()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    ));
                }
                Rule::Header(name, value, t)
                    if headers.get_all(name).iter().any(|v| {
                        value
                            .as_ref()
                            .is_none_or(|want| v.to_str().is_ok_and(|v| v == want))
                    }) && allowed(&|| format!("header:{name}"), t) =>
                {
                    let d = decided(format!("header:{name}"), t, None);
                    return Ok((
                        Some(d),
                        skipped
                            .into_inner()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    ));
                }
                Rule::Keywords(name, words, t)
                    if words.iter().any(|w| has_word(&lowered, w))
                        && allowed(&|| format!("keywords:{name}"), t) =>
                {
                    let d = decided(format!("keywords:{name}"), t, None);
                    return Ok((
                        Some(d),
                        skipped
                            .into_inner()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    ));
                }
                _ => {}
            }
        }
        if !cfg.semantic.is_empty() && !text.trim().is_empty() {
            let sparse = if self.inner.mean.is_none() {
                self.inner.embedder.embed_sparse(text)
            } else {
                None
            };
            let best = if let Some(q) = sparse {
                self.best_route_sparse(&q)
            } else if let Some(q) = self.inner.embedder.embed_dense(text) {
                self.best_route(&q)
            } else {
                let v = self.inner.embedder.embed(&[text.to_owned()]).await?;
                v.first().and_then(|q| self.best_route(q))
            };
            if let Some((i, score)) = best {
                let route = &cfg.semantic[i];
                if score >= self.inner.thresholds[i]
                    && allowed(&|| format!("semantic:{}", route.name), &route.target)
                {
                    let d = decided(
                        format!("semantic:{}", route.name),
                        &route.target,
                        Some(score),
                    );
                    return Ok((
                        Some(d),
                        skipped
                            .into_inner()
                            .unwrap_or_else(std::sync::PoisonError::into_inner),
                    ));
                }
            }
        }
        if let Some(t) = cfg
            .default
            .as_ref()
            .filter(|t| allowed(&|| "default".to_owned(), t))
        {
            let d = decided("default".to_owned(), t, None);
            return Ok((
                Some(d),
                skipped
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ));
        }
        if let (Some(p), Some(m)) = (principal, model)
            && !p.allows_model(m)
        {
            return Err(RouterError::ModelNotAllowed);
        }
        Ok((
            None,
            skipped
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ))
    }

    /// The text the keyword and semantic rules read from `payload`.
    pub fn query_text(&self, payload: &Payload) -> String {
        match self.inner.cfg.query {
            QueryText::LastUser => payload
                .last_user_text()
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default(),
            q => {
                let mut out = String::new();
                payload.for_each_text(&mut |t| {
                    if q == QueryText::Conversation || t.role == "system" {
                        if !out.is_empty() {
                            out.push('\n');
                        }
                        out.push_str(t.text);
                    }
                });
                out
            }
        }
    }
}

/// Whether `word` occurs in `text` with no letter or digit right before or after it.
fn has_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let alnum_at = |i: usize, before: bool| {
        let c = if before {
            text[..i].chars().next_back()
        } else {
            text[i..].chars().next()
        };
        c.is_some_and(char::is_alphanumeric)
    };
    text.match_indices(word)
        .any(|(i, m)| !alnum_at(i, true) && !alnum_at(i + m.len(), false))
}

#[async_trait]
impl Processor for Router {
    fn name(&self) -> &str {
        "router"
    }

    fn failure_mode(&self) -> FailureMode {
        self.inner.cfg.failure_mode
    }

    fn timeout(&self) -> Option<std::time::Duration> {
        self.inner.cfg.timeout
    }

    fn phases(&self) -> Phases {
        if self.inner.cfg.explain {
            Phases::REQUEST | Phases::RESPONSE
        } else {
            Phases::REQUEST
        }
    }

    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let Some(payload) = cx.payload() else {
            return Ok(Decision::Continue);
        };
        let model = payload.model().map(str::to_owned);
        let text = self.query_text(payload);
        // With a principal (an identity block ran first), only the models it may use are
        // candidates; a decision to another is a 403.
        let principal = Principal::arc_from_extensions(cx.extensions());
        let decision = match self
            .decide_explained(model.as_deref(), cx.headers(), &text, principal.as_deref())
            .await
        {
            Ok((d, skipped)) => {
                if self.inner.cfg.explain
                    && let Some(text) = self.restrictions_for(principal.as_deref())
                {
                    cx.state_mut().insert(Restricted { text, skipped });
                }
                d
            }
            Err(RouterError::ModelNotAllowed) => {
                return Ok(Decision::Reject(
                    Rejection::new(
                        RejectKind::Forbidden,
                        "This credential may not use the model this request resolves to.",
                    )
                    .with_status(http::StatusCode::FORBIDDEN)
                    .with_code("model_not_allowed")
                    .with_processor("router"),
                ));
            }
            Err(RouterError::BackendNotAllowed { restriction }) => {
                return Ok(Decision::Reject(
                    Rejection::new(
                        RejectKind::Forbidden,
                        format!(
                            "The backend this request resolves to is not allowed by the \
                             restriction ({restriction})."
                        ),
                    )
                    .with_status(http::StatusCode::FORBIDDEN)
                    .with_code("backend_not_allowed")
                    .with_processor("router"),
                ));
            }
            Err(e) => return Err(ProcessorError::external(e.to_string()).with_source(e)),
        };
        let Some(mut d) = decision else {
            return Ok(Decision::Continue);
        };
        tracing::debug!(rule = ?d.rule, backend = ?d.backend, model = ?d.model, score = ?d.score, "routed");
        if !self.inner.cfg.rewrite_model
            && let Some(m) = d.model.take()
        {
            // Name the model for the backend without rewriting the body.
            if let Ok(v) = HeaderValue::from_str(&m) {
                cx.headers_mut()
                    .insert(infergate_core::MODEL_NAME_HEADER, v);
            }
        } else if d.model.is_none()
            && let Some(m) = &model
            && let Ok(v) = HeaderValue::from_str(m)
        {
            cx.headers_mut()
                .insert(infergate_core::MODEL_NAME_HEADER, v);
        }
        cx.set_route(d);
        Ok(Decision::Continue)
    }

    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        let restricted = cx.exchange().state().get::<Restricted>().cloned();
        let route = cx.exchange().route().and_then(|d| {
            let rule = d.rule.as_ref()?;
            Some(match d.score {
                Some(s) => {
                    // The threshold the score was held against, and where it came from.
                    let name = rule.strip_prefix("semantic:");
                    let at =
                        name.and_then(|n| self.inner.cfg.semantic.iter().position(|r| r.name == n));
                    match at {
                        Some(i) => format!(
                            "{rule}; score={s:.3}; threshold={:.3} ({})",
                            self.inner.thresholds[i],
                            if self.inner.cfg.semantic[i].threshold.is_some() {
                                "configured"
                            } else {
                                "calibrated"
                            }
                        ),
                        None => format!("{rule}; score={s:.3}"),
                    }
                }
                None => rule.clone(),
            })
        });
        let mut text = route.clone().unwrap_or_else(|| "none".to_owned());
        if let Some(r) = &restricted {
            // Which restriction applied, and the rules it ruled out (`header:x-tier->us`).
            text.push_str("; restricted by ");
            text.push_str(&r.text);
            if !r.skipped.is_empty() {
                text.push_str("; skipped ");
                text.push_str(&r.skipped.join(", "));
            }
        }
        if route.is_some() || restricted.is_some() {
            // Label values that cannot go in a header: the route alone.
            if let Some(v) = HeaderValue::from_str(&text)
                .ok()
                .or_else(|| route.as_deref().and_then(|r| HeaderValue::from_str(r).ok()))
            {
                cx.headers_mut().insert(ROUTE_HEADER, v);
            }
        }
        Ok(Decision::Continue)
    }
}
