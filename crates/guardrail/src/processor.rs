//! The guardrail processor.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderValue, StatusCode};
use infergate_core::payload::TextSource;
use infergate_core::{
    Decision, FailureMode, Phases, Processor, ProcessorError, RejectKind, Rejection,
    RequestContext, ResponseBody, ResponseContext, StreamProcessor,
};
use serde_json::Value;

use crate::GuardrailConfig;
use crate::check::{Action, Check, Detector, Scan, redact_with, run_checks};
use crate::locate::{Kind, TOOL_DEFINITION_ROLE, request_texts, request_texts_mut, response_texts};

/// The response header that reports findings of `Annotate` (and `Redact`) checks.
pub const FINDINGS_HEADER: &str = "x-guardrail-findings";

/// The roles the injection check reads by default: what users and tools wrote (`user`, `tool`,
/// legacy `function`) and embeddings `input`.
pub const DEFAULT_INJECTION_ROLES: &[&str] = &["user", "tool", "function", "input"];

/// The request roles the guardrail knows of, for telling the operator which ones a role list
/// leaves out.
const KNOWN_ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
    "input",
    TOOL_DEFINITION_ROLE,
];

/// Findings of a request (`check:label` → count), carried to its response and placed in the
/// response extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings(pub BTreeMap<String, usize>);

impl Findings {
    fn add(&mut self, check: &str, label: &str) {
        *self.0.entry(format!("{check}:{label}")).or_default() += 1;
    }

    fn header(&self) -> Option<HeaderValue> {
        if self.0.is_empty() {
            return None;
        }
        let s: Vec<String> = self.0.iter().map(|(k, n)| format!("{k}={n}")).collect();
        HeaderValue::from_str(&s.join(", ")).ok()
    }
}

/// Guardrail checks on requests and responses, streamed ones included: a [`Processor`] (or,
/// through [`GuardrailLayer`](crate::GuardrailLayer), a layer of its own).
#[derive(Debug, Clone)]
pub struct Guardrail {
    cfg: Arc<GuardrailConfig>,
}

impl Guardrail {
    /// A guardrail for `config`. Logs (at info level) which roles a role list leaves out, so
    /// that nothing goes uninspected silently.
    pub fn new(mut config: GuardrailConfig) -> Self {
        // Learned injection checks without a model of their own use the guardrail's; one
        // with neither is reported now, and judged by its rules alone (with a warning).
        for c in &mut config.checks {
            if let Detector::LearnedInjection { model, .. } = &mut c.detector
                && model.is_none()
            {
                model.clone_from(&config.injection_model);
                if model.is_none() {
                    tracing::error!(
                        check = %c.name,
                        "an injection check needs a model (GuardrailConfig::injection_model)"
                    );
                }
            }
            // An asynchronous model of a check's own is never scored in the request's batch
            // (that is the guardrail's model): refused loudly, judged by the rules alone.
            if let Detector::LearnedInjection { model: Some(m), .. } = &c.detector
                && !m.is_sync()
                && !config
                    .injection_model
                    .as_ref()
                    .is_some_and(|g| g.same_as(m))
            {
                tracing::error!(
                    check = %c.name,
                    "an injection check's own asynchronous model is not supported: give it as \
                     GuardrailConfig::injection_model"
                );
            }
        }
        if let Some(roles) = &config.roles {
            let left_out: Vec<&str> = KNOWN_ROLES
                .iter()
                .copied()
                .filter(|r| !config.role_ok(r))
                .collect();
            tracing::info!(
                roles = ?roles,
                not_inspected = ?left_out,
                "guardrail: request checks read only these roles (other roles are not inspected)"
            );
        }
        if config
            .checks
            .iter()
            .any(|c| c.detector.is_injection() && c.applies.request())
        {
            let left_out: Vec<&str> = KNOWN_ROLES
                .iter()
                .copied()
                .filter(|r| !config.injection_role(r) && config.role_ok(r))
                .collect();
            tracing::info!(
                roles = ?config.injection_roles,
                not_inspected = ?left_out,
                "guardrail: the injection check reads only these roles; the roles left out are not \
                 checked for injection (GuardrailConfig::injection_roles)"
            );
        }
        Self {
            cfg: Arc::new(config),
        }
    }

    fn role_ok(&self, role: &str) -> bool {
        self.cfg.role_ok(role)
    }

    /// Runs the moderations on `text` (the request's text after redaction). A rejection when
    /// one flags it, or when one fails (error, timeout, or an answer in an unexpected shape)
    /// under `FailClosed`; under `FailOpen` a failure is traced and reported in `findings`.
    async fn moderate(&self, text: &str, findings: &mut Findings) -> Option<Rejection> {
        for m in &self.cfg.moderations {
            match tokio::time::timeout(m.timeout, m.moderator.moderate(text)).await {
                Ok(Ok(v)) if v.flagged => {
                    let label = if v.categories.is_empty() {
                        "flagged".to_owned()
                    } else {
                        v.categories.join("+")
                    };
                    return Some(
                        Rejection::new(
                            RejectKind::ContentBlocked,
                            format!("blocked by moderation '{}' ({label})", m.name),
                        )
                        .with_status(self.cfg.block_status)
                        .with_processor("guardrail"),
                    );
                }
                Ok(Ok(_)) => {}
                outcome => {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("timed out after {:?}", m.timeout),
                    };
                    if m.failure_mode == FailureMode::FailOpen {
                        tracing::warn!(moderation = %m.name, error = %why, "moderation failed; failing open");
                        findings.add(&m.name, "unavailable");
                    } else {
                        tracing::warn!(moderation = %m.name, error = %why, "moderation failed; failing closed");
                        return Some(
                            Rejection::new(
                                RejectKind::ExternalServiceFailed,
                                format!("moderation '{}' is unavailable", m.name),
                            )
                            .with_status(StatusCode::SERVICE_UNAVAILABLE)
                            .with_code("moderation_unavailable")
                            .with_processor("guardrail"),
                        );
                    }
                }
            }
        }
        None
    }

    pub(crate) fn blocked(&self, check: &Check, label: &str) -> Rejection {
        Rejection::new(
            RejectKind::ContentBlocked,
            format!("blocked by guardrail check '{}' ({label})", check.name),
        )
        .with_status(self.cfg.block_status)
        .with_processor("guardrail")
    }
}

#[async_trait]
impl Processor for Guardrail {
    fn name(&self) -> &str {
        "guardrail"
    }

    fn phases(&self) -> Phases {
        let response = self.cfg.checks.iter().any(|c| c.applies.response());
        if response {
            Phases::ALL
        } else {
            Phases::REQUEST | Phases::RESPONSE
        }
    }

    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let Some(payload) = cx.payload() else {
            return Ok(Decision::Continue);
        };
        let checks: Vec<&Check> = self
            .cfg
            .checks
            .iter()
            .filter(|c| c.applies.request())
            .collect();
        if checks.is_empty() && self.cfg.moderations.is_empty() {
            return Ok(Decision::Continue);
        }
        #[cfg(feature = "tokens")]
        for c in &checks {
            if let Detector::MaxTokens(max) = c.detector {
                // The process-wide memo, shared with the rate limiter.
                let n = infergate_tokens::TokenCounter::shared().count_prompt(payload);
                if n > max {
                    let r = self
                        .blocked(c, &format!("prompt too long: {n} tokens, limit {max}"))
                        .with_code("prompt_too_long");
                    return Ok(Decision::Reject(r));
                }
            }
        }
        // An asynchronous injection model (MiniLM) scores the texts it reads in one batch,
        // off the executor, before the checks run; a synchronous one scores as they run.
        let model = self.cfg.injection_model.as_ref();
        let mut scores: Vec<f32> = Vec::new();
        if let Some(m) = model.filter(|m| !m.is_sync())
            && checks
                .iter()
                .any(|c| matches!(c.detector, Detector::LearnedInjection { .. }))
        {
            let mut texts = Vec::new();
            request_texts(payload, &mut |role, _, text| {
                if self.role_ok(role) && self.cfg.injection_role(role) {
                    texts.push(text.to_owned());
                }
            });
            scores = m.score(&texts).await.map_err(|e| {
                ProcessorError::new(
                    infergate_core::FailureClass::ExternalService,
                    format!("the injection model could not score the request: {e}"),
                )
            })?;
        }
        let mut next_score = scores.iter().copied();
        let mut findings = Findings::default();
        let mut block: Option<Rejection> = None;
        let mut redact_needed = false;
        let mut chars = 0usize;
        request_texts(payload, &mut |role, _, text| {
            if block.is_some() || !self.role_ok(role) {
                return;
            }
            let score = if self.cfg.injection_role(role) {
                next_score.next()
            } else {
                None
            };
            chars = chars.saturating_add(text.chars().count());
            let scan = Scan::new(text).with_model_score(score, model);
            for c in &checks {
                if let Detector::MaxChars(max) = c.detector {
                    if chars > max {
                        block = Some(
                            self.blocked(c, "prompt too long")
                                .with_code("prompt_too_long"),
                        );
                    }
                    continue;
                }
                // The injection check reads only the configured roles (logged at
                // construction): by default not the operator's own system prompt or the
                // model's earlier answers.
                if c.detector.is_injection() && !self.cfg.injection_role(role) {
                    continue;
                }
                for h in c.find_in(&scan) {
                    match c.action {
                        Action::Block => {
                            block = Some(self.blocked(c, &h.label));
                            return;
                        }
                        Action::Redact => {
                            redact_needed = true;
                            findings.add(&c.name, &h.label);
                        }
                        Action::Annotate => findings.add(&c.name, &h.label),
                    }
                }
            }
        });
        if let Some(r) = block {
            tracing::info!(reason = r.message(), "guardrail blocked a request");
            return Ok(Decision::Reject(r));
        }
        // Redact first: moderation sees the redacted text.
        if redact_needed && let Some(p) = cx.payload_mut() {
            let cfg = self.cfg.clone();
            // The texts come in the same order as above: the same scores go with them.
            let mut next_score = scores.iter().copied();
            request_texts_mut(p, &mut |role, source, text| {
                if !cfg.role_ok(role) {
                    return;
                }
                let score = if cfg.injection_role(role) {
                    next_score.next()
                } else {
                    None
                };
                let checks = cfg.checks.iter().filter(|c| {
                    c.applies.request()
                        && c.action == Action::Redact
                        && (!c.detector.is_injection() || cfg.injection_role(role))
                });
                let new = redact_with(
                    checks,
                    text,
                    source == TextSource::ToolArguments,
                    score.zip(cfg.injection_model.as_ref()),
                );
                if new != *text {
                    *text = new;
                }
            });
        }
        if !self.cfg.moderations.is_empty() {
            let mut inspected = String::new();
            if let Some(p) = cx.payload() {
                request_texts(p, &mut |role, _, t| {
                    if self.role_ok(role) && !t.is_empty() {
                        if !inspected.is_empty() {
                            inspected.push('\n');
                        }
                        inspected.push_str(t);
                    }
                });
            }
            if let Some(r) = self.moderate(&inspected, &mut findings).await {
                return Ok(Decision::Reject(r));
            }
        }
        if !findings.0.is_empty() {
            tracing::info!(findings = ?findings.0, "guardrail findings in a request");
            cx.state_mut().insert(findings);
        }
        Ok(Decision::Continue)
    }

    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        if let Some(h) = cx
            .exchange()
            .state()
            .get::<Findings>()
            .and_then(Findings::header)
        {
            cx.headers_mut().insert(FINDINGS_HEADER, h);
        }
        Ok(Decision::Continue)
    }

    async fn on_response_body(
        &self,
        cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        // Error answers are checked too: providers echo the input in their error messages.
        let api = cx.exchange().api();
        let checks: Vec<&Check> = self
            .cfg
            .checks
            .iter()
            .filter(|c| c.applies.response())
            .collect();
        if checks.is_empty() || body.bytes().is_empty() {
            return Ok(Decision::Continue);
        }
        // A body that is not JSON cannot be checked: a failure, for the failure mode to decide
        // (never a silent pass).
        if body.json().is_none() {
            return Err(ProcessorError::new(
                infergate_core::FailureClass::MalformedBody,
                "the answer is labelled JSON but does not parse; it cannot be checked",
            ));
        }
        // First look (no changes), then redact what needs it.
        let mut block = None;
        let mut redactions: Vec<(String, String)> = Vec::new();
        let mut findings = Findings::default();
        if let Some(json) = body.json() {
            let mut locs = response_texts(api, json);
            // Whatever the shape (an answer of another API, an error, a field this version
            // does not know), every other string is checked too.
            crate::locate::other_string_leaves(json, &mut locs);
            for loc in locs {
                let Some(text) = json.pointer(&loc.ptr).and_then(Value::as_str) else {
                    continue;
                };
                let found = run_checks(
                    checks.iter().copied(),
                    text,
                    loc.kind == Kind::Json,
                    &mut |c, h| findings.add(&c.name, &h.label),
                );
                match found {
                    Err((c, label)) => {
                        block = Some(self.blocked(c, &label));
                        break;
                    }
                    Ok(Some(new)) => redactions.push((loc.ptr, new)),
                    Ok(None) => {}
                }
            }
        }
        if let Some(r) = block {
            tracing::info!(reason = r.message(), "guardrail blocked a response");
            return Ok(Decision::Reject(r));
        }
        if !redactions.is_empty()
            && let Some(json) = body.json_mut()
        {
            for (ptr, new) in redactions {
                if let Some(slot) = json.pointer_mut(&ptr) {
                    *slot = Value::String(new);
                }
            }
        }
        if let Some(h) = findings.header() {
            cx.headers_mut().insert("x-guardrail-response-findings", h);
        }
        Ok(Decision::Continue)
    }

    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        if !cx.status().is_success() {
            return None;
        }
        let checks: Vec<Check> = self
            .cfg
            .checks
            .iter()
            .filter(|c| c.applies.response() && c.action != Action::Annotate)
            .cloned()
            .collect();
        if checks.is_empty() {
            return None; // nothing to enforce: the stream passes untouched
        }
        Some(Box::new(crate::stream::WindowStream::new(
            self.clone(),
            checks,
            cx.exchange().api(),
            self.cfg.hold_back,
        )))
    }
}
