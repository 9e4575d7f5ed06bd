//! # infergate-guardrail (in progress)
//!
//! Guardrails for LLM traffic. This first part holds the built-in PII detectors; the processor
//! (block, redact, annotate; requests and streamed responses), secrets, deny lists,
//! prompt-injection scoring and external moderation follow.
//!
//! ```
//! use infergate_guardrail::detect::{scan_pii, EntityKind};
//!
//! let found = scan_pii("Mail jane@example.com or call +44 7700 900123, card 4111 1111 1111 1111.");
//! let kinds: Vec<_> = found.iter().map(|f| f.kind).collect();
//! assert_eq!(kinds, [EntityKind::Email, EntityKind::Phone, EntityKind::CreditCard]);
//! ```

pub mod detect;
