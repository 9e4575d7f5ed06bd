//! # infergate-guardrail (in progress)
//!
//! Guardrails for LLM traffic: a list of [`Check`]s, each a [`Detector`] with an [`Action`]
//! (block, redact or annotate), on requests, responses, or both — streamed responses included,
//! through a hold-back window that catches matches split across chunks.
//!
//! ```
//! use infergate_core::Body;
//! use infergate_guardrail::{Action, Check, Detector, GuardrailConfig, GuardrailLayer};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let config = GuardrailConfig::new()
//!     .check(Check::new("secrets", Detector::Secrets, Action::Block))
//!     .check(Check::new("pii", Detector::pii(), Action::Redact));
//! // The upstream echoes the request it receives.
//! let upstream = tower::service_fn(|req: http::Request<Body>| async move {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
//! });
//! let svc = GuardrailLayer::new(config).layer(upstream);
//! let req = http::Request::post("/v1/chat/completions")
//!     .body(Body::from(r#"{"model":"m","messages":[{"role":"user","content":"mail me: jo@example.com"}]}"#))
//!     .unwrap();
//! let resp = svc.oneshot(req).await.unwrap();
//! let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
//! assert!(std::str::from_utf8(&body).unwrap().contains("mail me: [EMAIL]"));
//! # }
//! ```
//!
//! Built so far: PII ([`detect::PiiDetector`]: checksums, phones validated against numbering
//! plans, national identifiers of eight countries and EU VAT numbers, look-alikes refused,
//! scores with context words), secrets ([`detect::scan_secrets`]), deny lists and
//! named regexes, a prompt-length limit, a scored prompt-injection detector
//! ([`detect::injection_score`]), and the processor for requests, whole responses and streams.
//! External moderation ([`Moderator`]: OpenAI-compatible `/v1/moderations` or a webhook) runs
//! on requests after the local checks — on the redacted text — with its own timeout and
//! failure mode; an answer in an unexpected shape is a failure, never "not flagged".
//!
//! Every text-bearing part of every API is inspected: on requests every role (the injection
//! check reads [`DEFAULT_INJECTION_ROLES`] unless configured otherwise, and the roles left out
//! are logged), tool and function descriptions ([`TOOL_DEFINITION_ROLE`]), tool-call arguments
//! and results, Anthropic documents and thinking, Responses input items of every kind and
//! instructions; on responses, streamed or not, content, refusals, reasoning and thinking,
//! tool-call arguments (redacted inside their JSON strings, so they stay valid JSON) of every
//! choice, and every stream event that repeats a whole text (`*.done`, `response.completed`).
//! `docs/guardrails.md` has the table.
//!
//! ## Configuration as data
//!
//! [`GuardrailSpec`] is the whole configuration as plain data (with the `serde` feature,
//! default, it deserializes; unknown fields and values are errors). Its checks are
//! [`CheckSpec`]s, validated as they are read (a [`Check`] deserializes through one);
//! [`GuardrailSpec::build`] makes the [`GuardrailConfig`].

mod check;
mod config;
pub mod detect;
mod json_text;
mod layer;
mod locate;
pub mod moderation;
mod processor;
mod stream;

pub use check::{Action, Applies, Check, Detector, Hit, Scan};
pub use config::{
    CheckSpec, DetectorKind, GuardrailConfig, GuardrailSpec, InjectionEmbedder, InjectionModelSpec,
    ModerationSpec, ModeratorKind, SpecError,
};
pub use layer::GuardrailLayer;
pub use locate::TOOL_DEFINITION_ROLE;
pub use moderation::{Moderation, Moderator, OpenAiModerator, Verdict, WebhookModerator};
pub use processor::{DEFAULT_INJECTION_ROLES, FINDINGS_HEADER, Findings, Guardrail};
