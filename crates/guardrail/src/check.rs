//! Checks: a detector, an action, and the direction it applies to.

use std::borrow::Cow;

use crate::detect::{DenyList, EntityKind, Finding, RegexList, scan_pii, scan_secrets};

/// What a check does when it finds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Refuse: an OpenAI-shaped error (`code: "content_filter"`); mid-stream, an SSE error
    /// event that ends the stream.
    Block,
    /// Replace each finding with its mask (`[EMAIL]`, ...) before it goes on.
    Redact,
    /// Let it through; report the finding (`x-guardrail-findings` header, traces).
    Annotate,
}

/// Which traffic a check inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Applies {
    /// Requests only.
    Request,
    /// Responses only (whole bodies and streams).
    Response,
    /// Both.
    Both,
}

impl Applies {
    pub(crate) fn request(self) -> bool {
        matches!(self, Self::Request | Self::Both)
    }
    pub(crate) fn response(self) -> bool {
        matches!(self, Self::Response | Self::Both)
    }
}

/// What a check looks for.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Detector {
    /// Built-in PII detectors; an empty list means all of them.
    Pii(Vec<EntityKind>),
    /// Built-in secret detectors (keys, tokens, private keys, JWTs).
    Secrets,
    /// Denied words and phrases.
    DenyList(DenyList),
    /// Named regular expressions.
    Regex(RegexList),
    /// The inspected request text may not be longer than this many characters (requests only).
    MaxChars(usize),
    /// Prompt injection and jailbreaks: a text scoring at or above the threshold is one finding
    /// spanning the whole text (see [`crate::detect::injection_score`]; default threshold
    /// [`crate::detect::DEFAULT_INJECTION_THRESHOLD`]).
    Injection {
        /// The score at which a text counts as an injection.
        threshold: f32,
    },
}

/// A finding of a check in one piece of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Start (byte offset).
    pub start: usize,
    /// End (byte offset).
    pub end: usize,
    /// What was found (`email`, `openai_key`, the deny-list term, the regex name).
    pub label: Cow<'static, str>,
    /// The replacement when redacting.
    pub mask: Cow<'static, str>,
}

/// One check of a guardrail.
#[derive(Debug, Clone)]
pub struct Check {
    /// The check's name (reported in findings and rejections).
    pub name: String,
    /// What it looks for.
    pub detector: Detector,
    /// What it does on a finding.
    pub action: Action,
    /// Where it looks.
    pub applies: Applies,
    /// A mask for every finding, instead of the detector's own (`[EMAIL]`, `[REDACTED]`).
    pub mask: Option<String>,
}

impl Check {
    /// A check applying to requests and responses.
    pub fn new(name: impl Into<String>, detector: Detector, action: Action) -> Self {
        Self {
            name: name.into(),
            detector,
            action,
            applies: Applies::Both,
            mask: None,
        }
    }

    /// Restricts where the check looks.
    #[must_use]
    pub fn applies(mut self, applies: Applies) -> Self {
        self.applies = applies;
        self
    }

    /// Sets one mask for every finding.
    #[must_use]
    pub fn mask(mut self, mask: impl Into<String>) -> Self {
        self.mask = Some(mask.into());
        self
    }

    /// The findings of this check in `text`, ordered and non-overlapping.
    pub fn find(&self, text: &str) -> Vec<Hit> {
        let mask = |default: &'static str| -> Cow<'static, str> {
            self.mask
                .as_ref()
                .map_or(Cow::Borrowed(default), |m| Cow::Owned(m.clone()))
        };
        let mut hits: Vec<Hit> = match &self.detector {
            Detector::Pii(kinds) => scan_pii(text)
                .into_iter()
                .filter(|f| kinds.is_empty() || kinds.contains(&f.kind))
                .map(|f| entity_hit(f, &mask))
                .collect(),
            Detector::Secrets => scan_secrets(text)
                .into_iter()
                .map(|f| entity_hit(f, &mask))
                .collect(),
            Detector::DenyList(d) => d
                .find(text)
                .into_iter()
                .map(|(s, e, i)| Hit {
                    start: s,
                    end: e,
                    label: Cow::Owned(d.term(i).to_owned()),
                    mask: mask("[REDACTED]"),
                })
                .collect(),
            Detector::Regex(r) => r
                .find(text)
                .into_iter()
                .map(|(s, e, i)| Hit {
                    start: s,
                    end: e,
                    label: Cow::Owned(r.name(i).to_owned()),
                    mask: mask("[REDACTED]"),
                })
                .collect(),
            Detector::MaxChars(_) => Vec::new(),
            Detector::Injection { threshold } => {
                let (score, _) = crate::detect::injection_score(text);
                if score >= *threshold {
                    vec![Hit {
                        start: 0,
                        end: text.len(),
                        label: Cow::Borrowed("prompt_injection"),
                        mask: mask("[REMOVED: prompt injection]"),
                    }]
                } else {
                    Vec::new()
                }
            }
        };
        hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        for h in hits {
            if kept.last().is_none_or(|l| h.start >= l.end) {
                kept.push(h);
            }
        }
        kept
    }
}

fn entity_hit(f: Finding, mask: &dyn Fn(&'static str) -> Cow<'static, str>) -> Hit {
    Hit {
        start: f.start,
        end: f.end,
        label: Cow::Borrowed(f.kind.as_str()),
        mask: mask(f.kind.mask()),
    }
}

/// Replaces `hits` (ordered, non-overlapping) in `text` with their masks.
pub(crate) fn redact(text: &str, hits: &[Hit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for h in hits {
        out.push_str(&text[pos..h.start]);
        out.push_str(&h.mask);
        pos = h.end;
    }
    out.push_str(&text[pos..]);
    out
}
