//! The guardrail's configuration: [`GuardrailConfig`] (the builder a
//! [`Guardrail`](crate::Guardrail) is made from) and [`GuardrailSpec`] (the same as plain
//! data, as a configuration file writes it: checks as [`CheckSpec`]s, moderations as
//! [`ModerationSpec`]s).
//!
//! With the `serde` feature (default) the specs, [`Check`] (through [`CheckSpec`]),
//! [`Action`], [`Applies`] and [`EntityKind`] deserialize; unknown fields and values are
//! errors.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use infergate_core::FailureMode;

use crate::detect::{
    DEFAULT_INJECTION_THRESHOLD, DenyList, EntityKind, InjectionHead, InjectionMode,
    InjectionModel, PiiDetector, RegexList,
};
use crate::processor::DEFAULT_INJECTION_ROLES;
use crate::{Action, Applies, Check, Detector, Moderation, OpenAiModerator, WebhookModerator};

/// Configures a [`Guardrail`](crate::Guardrail).
#[derive(Debug, Clone)]
#[must_use]
pub struct GuardrailConfig {
    pub(crate) checks: Vec<Check>,
    pub(crate) moderations: Vec<crate::Moderation>,
    pub(crate) roles: Option<Vec<String>>,
    pub(crate) injection_roles: Vec<String>,
    pub(crate) hold_back: usize,
    pub(crate) block_status: StatusCode,
    pub(crate) injection_model: Option<InjectionModel>,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        Self {
            checks: Vec::new(),
            moderations: Vec::new(),
            roles: None,
            injection_roles: DEFAULT_INJECTION_ROLES
                .iter()
                .map(|r| (*r).to_owned())
                .collect(),
            hold_back: 64,
            block_status: StatusCode::BAD_REQUEST,
            injection_model: None,
        }
    }
}

impl GuardrailConfig {
    /// No checks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check.
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// Adds an external moderation check (requests only; runs after the local checks).
    pub fn moderation(mut self, m: crate::Moderation) -> Self {
        self.moderations.push(m);
        self
    }

    /// Inspect only texts of these roles (default: every role — system and developer prompts,
    /// assistant turns with their refusals, reasoning and tool-call arguments, tool results, and
    /// tool definitions under [`TOOL_DEFINITION_ROLE`](crate::TOOL_DEFINITION_ROLE)). Embeddings `input` is always
    /// inspected. The roles left out are logged when the guardrail is built.
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// The roles the prompt-injection check ([`Detector::Injection`]) reads on requests
    /// (default [`DEFAULT_INJECTION_ROLES`]: `user`, `tool`, `function`, `input`). The operator's
    /// own system or developer prompt ("You are a helpful assistant" reads like a persona
    /// takeover), the model's earlier answers and tool definitions are left out by default; add
    /// them here to have them read. The roles left out are logged when the guardrail is built.
    pub fn injection_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.injection_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The most bytes of streamed text held back so that a match split across chunks is still
    /// caught before any of it is sent (default 64), for each text of a stream (each choice's
    /// content, refusal and reasoning, each tool call's arguments, each thinking block). Only
    /// text that may still grow into a match is held (the trailing word or number, an open
    /// deny-list phrase or PEM header; user regexes, whose shape is unknown, hold this many
    /// bytes), so ordinary text flows on at about one token's delay. Matches longer than this
    /// can leak their start.
    pub fn hold_back(mut self, bytes: usize) -> Self {
        self.hold_back = bytes;
        self
    }

    /// Whether text of `role` is inspected (embeddings input always is).
    pub(crate) fn role_ok(&self, role: &str) -> bool {
        self.roles
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == role) || role == "input")
    }

    /// Whether the injection check reads text of `role`.
    pub(crate) fn injection_role(&self, role: &str) -> bool {
        self.injection_roles.iter().any(|r| r == role)
    }

    /// The learned injection detector the [`Detector::LearnedInjection`] checks use.
    pub fn injection_model(mut self, model: InjectionModel) -> Self {
        self.injection_model = Some(model);
        self
    }

    /// The status of a blocked request (default 400).
    pub fn block_status(mut self, status: StatusCode) -> Self {
        self.block_status = status;
        self
    }
}

/// The guardrail's configuration as plain data (a config file's `[guardrail]`).
/// [`GuardrailSpec::build`] makes the [`GuardrailConfig`]. Its checks are validated as they
/// are read (a regex that does not compile, a detector without its setting are errors then).
#[derive(Debug, Clone, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct GuardrailSpec {
    /// Bytes of streamed text held back to catch matches split across chunks (default 64).
    pub hold_back_bytes: Option<usize>,
    /// Inspect only these roles (default: all).
    pub roles: Option<Vec<String>>,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// External moderation services, consulted on requests after the checks.
    pub moderations: Vec<ModerationSpec>,
    /// The learned injection detector's embedder (needed by `injection` checks whose `mode`
    /// is `model`, `either` or `both`).
    pub injection_model: Option<InjectionModelSpec>,
}

/// Which embedder the learned injection detector reads, with the head shipped for it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum InjectionEmbedder {
    /// The static embedder distilled from MiniLM (microseconds; `scripts/distill_static.sh`).
    Static,
    /// all-MiniLM-L6-v2 with candle (tens of milliseconds, on the blocking pool; feature
    /// `candle`; requests only).
    Minilm,
}

/// The learned injection detector as plain data (`[guardrail.injection_model]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct InjectionModelSpec {
    /// The embedder.
    pub embedder: InjectionEmbedder,
    /// Its weights directory (the static model's, or MiniLM's safetensors).
    pub dir: String,
    /// A head of one's own (the JSON `train_injection` writes) instead of the shipped one.
    #[cfg_attr(feature = "serde", serde(default))]
    pub head: Option<String>,
}

impl InjectionModelSpec {
    /// Loads the embedder and pairs it with its head.
    pub fn build(&self) -> Result<InjectionModel, SpecError> {
        let err = |reason: String| SpecError::InjectionModel { reason };
        let own_head = match &self.head {
            Some(path) => Some(
                InjectionHead::from_json(
                    &std::fs::read_to_string(path).map_err(|e| err(format!("{path}: {e}")))?,
                )
                .map_err(|e| err(e.to_string()))?,
            ),
            None => None,
        };
        let (embedder, head): (std::sync::Arc<dyn infergate_embed::Embedder>, InjectionHead) =
            match self.embedder {
                InjectionEmbedder::Static => (
                    std::sync::Arc::new(
                        infergate_embed::StaticEmbedder::load(&self.dir)
                            .map_err(|e| err(e.to_string()))?,
                    ),
                    InjectionHead::static_minilm(),
                ),
                #[cfg(feature = "candle")]
                InjectionEmbedder::Minilm => {
                    // MiniLM reads as many tokens as the head was trained on.
                    let head = own_head.clone().unwrap_or_else(InjectionHead::minilm);
                    let model = match head.max_tokens() {
                        Some(n) => infergate_embed::MiniLm::load_with_max_tokens(&self.dir, n),
                        None => infergate_embed::MiniLm::load(&self.dir),
                    }
                    .map_err(|e| err(e.to_string()))?;
                    (std::sync::Arc::new(model), head)
                }
                #[cfg(not(feature = "candle"))]
                InjectionEmbedder::Minilm => {
                    return Err(err(
                        "the minilm embedder needs infergate-guardrail's `candle` feature".into(),
                    ));
                }
            };
        let head = own_head.unwrap_or(head);
        InjectionModel::new(embedder, head).map_err(|e| err(e.to_string()))
    }
}

impl GuardrailSpec {
    /// The guardrail's configuration (the moderators' clients are made here).
    pub fn build(&self) -> Result<GuardrailConfig, SpecError> {
        let mut cfg = GuardrailConfig::new();
        if let Some(h) = self.hold_back_bytes {
            cfg = cfg.hold_back(h);
        }
        if let Some(r) = &self.roles {
            cfg = cfg.roles(r.clone());
        }
        for c in &self.checks {
            cfg = cfg.check(c.clone());
        }
        for m in &self.moderations {
            cfg = cfg.moderation(m.build()?);
        }
        let learned: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| matches!(c.detector, Detector::LearnedInjection { .. }))
            .collect();
        // A model given is loaded (a wrong directory is an error now, not at first use).
        let model = self
            .injection_model
            .as_ref()
            .map(InjectionModelSpec::build)
            .transpose()?;
        if let Some(first) = learned.first() {
            let Some(model) = &model else {
                return Err(SpecError::Check {
                    name: first.name.clone(),
                    reason: "an injection check with mode model, either or both needs \
                             [guardrail.injection_model] (embedder and dir)"
                        .into(),
                });
            };
            if let Some(c) = learned
                .iter()
                .find(|c| !model.is_sync() && c.applies.response())
            {
                return Err(SpecError::Check {
                    name: c.name.clone(),
                    reason: "with the minilm embedder the injection model judges requests only: \
                             set applies = \"request\""
                        .into(),
                });
            }
        }
        if let Some(m) = model {
            cfg = cfg.injection_model(m);
        }
        Ok(cfg)
    }
}

/// What a check detects, as a [`CheckSpec`] names it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum DetectorKind {
    /// [`Detector::Pii`] (with `entities`, default all).
    Pii,
    /// [`Detector::Secrets`].
    Secrets,
    /// [`Detector::DenyList`] (with `terms`).
    DenyList,
    /// [`Detector::Regex`] (with `patterns`).
    Regex,
    /// [`Detector::MaxChars`] (with `max_chars`).
    MaxChars,
    /// `Detector::MaxTokens` (with `max_tokens`; feature `tokens`).
    MaxTokens,
    /// [`Detector::Injection`] (with `threshold`, default
    /// [`DEFAULT_INJECTION_THRESHOLD`]).
    Injection,
}

/// A check as plain data: a detector with its setting, an action, a direction. It becomes a
/// [`Check`] with `Check::try_from` (and a [`Check`] deserializes through it).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct CheckSpec {
    /// The check's name.
    pub name: String,
    /// The detector.
    pub detector: DetectorKind,
    /// What a finding does.
    pub action: Action,
    /// Requests, responses or both (default).
    #[cfg_attr(feature = "serde", serde(default = "both"))]
    pub applies: Applies,
    /// For `pii`: the entities (default [`DEFAULT_PII_KINDS`](crate::detect::DEFAULT_PII_KINDS):
    /// every kind but `person` and `street_address`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub entities: Option<Vec<EntityKind>>,
    /// For `pii`: the regions whose national phone numbers are validated (default
    /// [`DEFAULT_PHONE_REGIONS`](crate::detect::DEFAULT_PHONE_REGIONS)).
    #[cfg_attr(feature = "serde", serde(default))]
    pub regions: Option<Vec<String>>,
    /// For `pii`: the minimum score a finding needs (default
    /// [`DEFAULT_MIN_SCORE`](crate::detect::DEFAULT_MIN_SCORE)).
    #[cfg_attr(feature = "serde", serde(default))]
    pub min_score: Option<f32>,
    /// For `deny_list`: the words and phrases.
    #[cfg_attr(feature = "serde", serde(default))]
    pub terms: Option<Vec<String>>,
    /// For `regex`: name → pattern.
    #[cfg_attr(feature = "serde", serde(default))]
    pub patterns: Option<BTreeMap<String, String>>,
    /// For `max_chars`: the limit.
    #[cfg_attr(feature = "serde", serde(default))]
    pub max_chars: Option<usize>,
    /// For `max_tokens`: the limit (prompt tokens, tiktoken).
    #[cfg_attr(feature = "serde", serde(default))]
    pub max_tokens: Option<u64>,
    /// A mask for every finding (default: one per kind, such as `[EMAIL]`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub mask: Option<String>,
    /// For `injection`: the rules' score threshold.
    #[cfg_attr(feature = "serde", serde(default))]
    pub threshold: Option<f32>,
    /// For `injection`: rules (default), model, either or both (the learned detector, from
    /// [`GuardrailSpec::injection_model`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub mode: Option<InjectionMode>,
    /// For `injection` with a model: the head's threshold (default: the head's own for the
    /// mode, chosen for precision ≥ 0.95 on the validation split).
    #[cfg_attr(feature = "serde", serde(default))]
    pub model_threshold: Option<f32>,
}

#[cfg_attr(not(feature = "serde"), allow(dead_code))]
fn both() -> Applies {
    Applies::Both
}

impl TryFrom<CheckSpec> for Check {
    type Error = SpecError;

    fn try_from(c: CheckSpec) -> Result<Self, SpecError> {
        let err = |reason: String| SpecError::Check {
            name: c.name.clone(),
            reason,
        };
        let need = |what: &str| err(format!("{what} is required by this detector"));
        let detector = match c.detector {
            DetectorKind::Pii => {
                let mut d = PiiDetector::new().entities(c.entities.clone().unwrap_or_default());
                if let Some(regions) = &c.regions {
                    d = d.regions(regions).map_err(|e| err(e.to_string()))?;
                }
                if let Some(min) = c.min_score {
                    d = d.min_score(min).map_err(|e| err(e.to_string()))?;
                }
                Detector::Pii(d)
            }
            DetectorKind::Secrets => Detector::Secrets,
            DetectorKind::DenyList => Detector::DenyList(
                DenyList::new(c.terms.clone().ok_or_else(|| need("terms"))?)
                    .map_err(|e| err(e.to_string()))?,
            ),
            DetectorKind::Regex => Detector::Regex(
                RegexList::new(c.patterns.clone().ok_or_else(|| need("patterns"))?)
                    .map_err(|e| err(e.to_string()))?,
            ),
            DetectorKind::MaxChars => {
                Detector::MaxChars(c.max_chars.ok_or_else(|| need("max_chars"))?)
            }
            #[cfg(feature = "tokens")]
            DetectorKind::MaxTokens => {
                Detector::MaxTokens(c.max_tokens.ok_or_else(|| need("max_tokens"))?)
            }
            #[cfg(not(feature = "tokens"))]
            DetectorKind::MaxTokens => {
                return Err(err("max_tokens needs the `tokens` feature".to_owned()));
            }
            DetectorKind::Injection => match c.mode.unwrap_or_default() {
                InjectionMode::Rules => Detector::Injection {
                    threshold: c.threshold.unwrap_or(DEFAULT_INJECTION_THRESHOLD),
                },
                mode => Detector::LearnedInjection {
                    mode,
                    threshold: match c.model_threshold {
                        Some(t) if !(0.0..=1.0).contains(&t) => {
                            return Err(err(format!(
                                "model_threshold must be a probability in 0..=1, not {t}"
                            )));
                        }
                        t => t,
                    },
                    rules_threshold: c.threshold.unwrap_or(DEFAULT_INJECTION_THRESHOLD),
                    model: None,
                },
            },
        };
        let check = Check::new(c.name.clone(), detector, c.action).applies(c.applies);
        Ok(match c.mask {
            Some(m) => check.mask(m),
            None => check,
        })
    }
}

/// Which external moderation service a [`ModerationSpec`] calls.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ModeratorKind {
    /// An OpenAI-compatible `/v1/moderations` ([`OpenAiModerator`]).
    Openai,
    /// A webhook (`{"input"}` → `{"flagged","categories"}`; [`WebhookModerator`]).
    Webhook,
}

/// An external moderation service as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct ModerationSpec {
    /// The name reported in rejections.
    pub name: String,
    /// The service.
    pub kind: ModeratorKind,
    /// Base URL (`openai`) or full URL (`webhook`).
    pub url: String,
    /// The environment variable holding the API key (`openai`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub api_key_env: Option<String>,
    /// Bound on one call, in milliseconds (default 2000).
    #[cfg_attr(feature = "serde", serde(default))]
    pub timeout_ms: Option<u64>,
    /// When the service fails: `fail_closed` (default: 503) or `fail_open`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub failure_mode: Option<FailureMode>,
}

impl ModerationSpec {
    /// The moderation check (its client made; the API key read from the environment).
    pub fn build(&self) -> Result<Moderation, SpecError> {
        let err = |e: &dyn std::fmt::Display| SpecError::Moderation {
            name: self.name.clone(),
            reason: e.to_string(),
        };
        let mut m = match self.kind {
            ModeratorKind::Openai => {
                let key = self
                    .api_key_env
                    .as_ref()
                    .and_then(|v| std::env::var(v).ok());
                Moderation::new(
                    self.name.clone(),
                    OpenAiModerator::new(&self.url, key).map_err(|e| err(&e))?,
                )
            }
            ModeratorKind::Webhook => Moderation::new(
                self.name.clone(),
                WebhookModerator::new(&self.url).map_err(|e| err(&e))?,
            ),
        };
        if let Some(ms) = self.timeout_ms {
            m = m.timeout(Duration::from_millis(ms));
        }
        if let Some(f) = self.failure_mode {
            m = m.failure_mode(f);
        }
        Ok(m)
    }
}

/// Why a check or a moderation service of a [`GuardrailSpec`] cannot be built (the values of
/// the file are not repeated, only the check's name).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A check is missing its detector's setting, or the setting is invalid.
    #[error("check '{name}': {reason}")]
    Check {
        /// The check's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The learned injection detector cannot be loaded.
    #[error("injection model: {reason}")]
    InjectionModel {
        /// What is wrong.
        reason: String,
    },
    /// A moderation service's client cannot be made.
    #[error("moderation '{name}': {reason}")]
    Moderation {
        /// The service's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Check {
    /// Through [`CheckSpec`]: the detector's setting is checked (a regex compiled) as it is
    /// read.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spec = CheckSpec::deserialize(d)?;
        Check::try_from(spec).map_err(serde::de::Error::custom)
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn checks_deserialize_and_are_validated_as_read() {
        let s: GuardrailSpec = serde_json::from_str(
            r#"{"hold_back_bytes":32,"checks":[
                {"name":"pii","detector":"pii","entities":["email","iban"],"action":"redact","applies":"request"},
                {"name":"words","detector":"deny_list","terms":["falcon"],"action":"annotate"}],
               "moderations":[{"name":"m","kind":"webhook","url":"http://127.0.0.1:9/check","failure_mode":"fail_open"}]}"#,
        )
        .unwrap();
        assert_eq!(s.checks.len(), 2);
        assert_eq!(s.checks[1].applies, Applies::Both);
        let cfg = s.build().unwrap();
        assert_eq!(cfg.hold_back, 32);
        assert_eq!(cfg.moderations.len(), 1);
        let e = serde_json::from_str::<GuardrailSpec>(
            r#"{"checks":[{"name":"r","detector":"regex","action":"block"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("patterns"), "{e}");
    }

    #[test]
    fn unknown_values_are_refused_with_the_allowed_ones() {
        let e = serde_json::from_str::<CheckSpec>(
            r#"{"name":"x","detector":"magic","action":"block"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("deny_list"), "{e}");
        let e = serde_json::from_str::<CheckSpec>(
            r#"{"name":"x","detector":"secrets","action":"shout"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("annotate"), "{e}");
        assert!(
            serde_json::from_str::<CheckSpec>(
                r#"{"name":"x","detector":"secrets","action":"block","mode":"x"}"#
            )
            .is_err()
        );
    }
}
