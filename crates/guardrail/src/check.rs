//! Checks: a detector, an action, and the direction it applies to.

use std::borrow::Cow;

use crate::detect::{DenyList, Finding, PiiDetector, RegexList, scan_secrets};

/// What a check does when it finds something.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
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
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
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
    /// Built-in PII detectors with their settings (kinds, phone regions, minimum score).
    Pii(PiiDetector),
    /// Built-in secret detectors (keys, tokens, private keys, JWTs).
    Secrets,
    /// Denied words and phrases.
    DenyList(DenyList),
    /// Named regular expressions.
    Regex(RegexList),
    /// The inspected request text may not be longer than this many characters (requests only).
    MaxChars(usize),
    /// The request's prompt may not be longer than this many tokens, counted as the rate
    /// limiter counts them (tiktoken with the model's encoding, chat framing included; every
    /// role, whatever the role filter says). Requests only; feature `tokens`.
    #[cfg(feature = "tokens")]
    MaxTokens(u64),
    /// Prompt injection and jailbreaks: a text scoring at or above the threshold is one finding
    /// spanning the whole text (see [`crate::detect::injection_score`]; default threshold
    /// [`crate::detect::DEFAULT_INJECTION_THRESHOLD`]).
    ///
    /// On requests it reads the roles listed by
    /// [`GuardrailConfig::injection_roles`](crate::GuardrailConfig::injection_roles) — by
    /// default what users and tools wrote (`user`, `tool`, `function`, and embeddings `input`;
    /// Responses API input items without a role count as `user`), not the operator's system or
    /// developer prompt, earlier assistant turns, or tool definitions
    /// ([`TOOL_DEFINITION_ROLE`](crate::TOOL_DEFINITION_ROLE)). The roles left out are logged
    /// when the guardrail is built; every other check reads every role.
    Injection {
        /// The score at which a text counts as an injection.
        threshold: f32,
    },
    /// Prompt injection judged by the learned head
    /// ([`InjectionModel`](crate::detect::InjectionModel), set with
    /// [`GuardrailConfig::injection_model`](crate::GuardrailConfig::injection_model)) alone
    /// or together with the rules: `mode` says how. Reads the same roles as
    /// [`Detector::Injection`]. With an embedder that is not synchronous (MiniLM) it applies
    /// to requests only, whose texts are scored in one batch off the async executor before
    /// the checks run.
    LearnedInjection {
        /// Rules, model, either or both.
        mode: crate::detect::InjectionMode,
        /// The head's score at which a text counts (default: the head's threshold for the mode,
        /// chosen on the validation split for precision ≥ 0.95).
        threshold: Option<f32>,
        /// The rules' score at which a text counts (for `rules`, `either` and `both`).
        rules_threshold: f32,
        /// The model (filled in from the guardrail's
        /// [`injection_model`](crate::GuardrailConfig::injection_model) when `None`).
        model: Option<crate::detect::InjectionModel>,
    },
}

impl Detector {
    /// The built-in PII detectors with the default settings ([`PiiDetector::new`]).
    pub fn pii() -> Self {
        Self::Pii(PiiDetector::new())
    }

    /// Whether this is a prompt-injection detector (rules or learned): it reads only the
    /// injection roles.
    pub fn is_injection(&self) -> bool {
        matches!(self, Self::Injection { .. } | Self::LearnedInjection { .. })
    }
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
        self.find_in(&Scan::new(text))
    }

    /// [`Check::find`] on a [`Scan`], which shares the work several checks have in common.
    pub fn find_in(&self, scan: &Scan<'_>) -> Vec<Hit> {
        let text = scan.text;
        let mask = |default: &'static str| -> Cow<'static, str> {
            self.mask
                .as_ref()
                .map_or(Cow::Borrowed(default), |m| Cow::Owned(m.clone()))
        };
        // An injection finding spans the whole text.
        let whole_text = |found: bool| {
            if found {
                vec![Hit {
                    start: 0,
                    end: text.len(),
                    label: Cow::Borrowed("prompt_injection"),
                    mask: mask("[REMOVED: prompt injection]"),
                }]
            } else {
                Vec::new()
            }
        };
        let mut hits: Vec<Hit> = match &self.detector {
            Detector::Pii(d) => d
                .scan(text)
                .into_iter()
                .map(|f| entity_hit(f, &mask))
                .collect(),
            Detector::Secrets => scan_secrets(text)
                .into_iter()
                .map(|f| entity_hit(f, &mask))
                .collect(),
            Detector::DenyList(d) => d
                .find_lowered(scan.lowered())
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
            #[cfg(feature = "tokens")]
            Detector::MaxTokens(_) => Vec::new(),
            Detector::LearnedInjection {
                mode,
                threshold,
                rules_threshold,
                model,
            } => {
                use crate::detect::InjectionMode;
                let rules =
                    || crate::detect::injection_score_lowered(scan.lowered()).0 >= *rules_threshold;
                let model = || {
                    if let Some((score, m)) =
                        model.as_ref().and_then(|m| Some((scan.model_score(m)?, m)))
                    {
                        score >= threshold.unwrap_or(m.head().threshold(*mode))
                    } else {
                        tracing::warn!(
                            check = %self.name,
                            "the injection model could not score this text (no model, or an \
                             asynchronous one outside a request); only the rules judged it"
                        );
                        false
                    }
                };
                let hit = match mode {
                    InjectionMode::Rules => rules(),
                    InjectionMode::Model => model(),
                    InjectionMode::Either => rules() || model(),
                    InjectionMode::Both => rules() && model(),
                };
                whole_text(hit)
            }
            Detector::Injection { threshold } => {
                let (score, _) = crate::detect::injection_score_lowered(scan.lowered());
                whole_text(score >= *threshold)
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

impl Check {
    /// Streaming: the position in `window` (the newest text of a stream) from which text must
    /// still be held back because more text could turn it into a match of this check, or
    /// extend one. Everything before it can be released as far as this check is concerned.
    /// `cap` is the configured hold-back, used for user regexes, whose shape is unknown.
    pub(crate) fn stream_hold(&self, window: &str, cap: usize) -> usize {
        match &self.detector {
            Detector::Pii(d) => entity_tail(window).min(d.stream_hold(window)),
            Detector::Secrets => entity_tail(window),
            Detector::DenyList(d) => d.open_prefix(window).unwrap_or(window.len()),
            Detector::Regex(_) => window.len().saturating_sub(cap),
            _ => window.len(),
        }
    }

    /// Streaming: whether a hit ending at the end of the window might stop being a match when
    /// more text comes (a deny-list word that may continue: "secret" + "ary").
    pub(crate) fn hit_may_vanish(&self, window: &str, hit: &Hit) -> bool {
        matches!(self.detector, Detector::DenyList(_))
            && hit.end == window.len()
            && window
                .as_bytes()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    }
}

/// Where PII or a secret may still be forming at the end of `window`: the trailing token
/// (e-mail addresses, keys, tokens and IP addresses contain no whitespace), extended back over
/// number groups separated by single spaces (phone, card and IBAN numbers), or an unfinished
/// PEM header.
fn entity_tail(window: &str) -> usize {
    let b = window.as_bytes();
    let numberish = |t: &[u8]| {
        !t.is_empty()
            && t.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"+()-./".contains(c))
            && ((t.iter().any(u8::is_ascii_digit)
                && t.iter().filter(|c| c.is_ascii_digit()).count()
                    >= t.iter().filter(|c| c.is_ascii_alphabetic()).count())
                || (t.len() <= 4 && t.iter().all(u8::is_ascii_uppercase))
                || t == b"(")
    };
    let token_start = |end: usize| {
        let mut s = end;
        while s > 0 && !b[s - 1].is_ascii_whitespace() {
            s -= 1;
        }
        s
    };
    let mut hold = b.len();
    // The token the window ends in (none when it ends in whitespace).
    let mut end = b.len();
    let mut start = token_start(end);
    if start < end {
        hold = start;
    } else if end >= 2 && b[end - 1] == b' ' && !b[end - 2].is_ascii_whitespace() {
        // "+44 7700 ": a number group followed by one space may continue.
        end -= 1;
        start = token_start(end);
        if !numberish(&b[start..end]) {
            return pem_tail(window, hold);
        }
        hold = start;
    }
    // Earlier number groups, each separated by one space.
    while numberish(&b[start..end])
        && start >= 2
        && b[start - 1] == b' '
        && !b[start - 2].is_ascii_whitespace()
    {
        let prev_end = start - 1;
        let prev = token_start(prev_end);
        if !numberish(&b[prev..prev_end]) {
            break;
        }
        hold = prev;
        end = prev_end;
        start = prev;
    }
    pem_tail(window, hold)
}

/// Where a number that more text could still make a phone number starts: a short number counts
/// as a phone with a phone word within 12 bytes after it, so a number ending in the last 12
/// bytes of the window is held (from the start of its digit groups) until they have arrived.
/// `hold`, or earlier if the window has a PEM header that has not closed yet.
fn pem_tail(window: &str, hold: usize) -> usize {
    match window.rfind("-----BEGIN") {
        Some(p) if !window[p + 10..].contains("-----") => hold.min(p),
        _ => hold,
    }
}

/// A text about to be checked by several checks, with what they share: its ASCII-lowercased
/// copy (deny lists and the injection detector search it), made at most once.
#[derive(Debug)]
pub struct Scan<'a> {
    text: &'a str,
    lowered: std::cell::OnceCell<Cow<'a, str>>,
    model_score: std::cell::OnceCell<Option<f32>>,
    /// The model a score given beforehand came from.
    scored_by: Option<&'a crate::detect::InjectionModel>,
}

impl<'a> Scan<'a> {
    /// A scan of `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            lowered: std::cell::OnceCell::new(),
            model_score: std::cell::OnceCell::new(),
            scored_by: None,
        }
    }

    /// The score `model` gave this text beforehand (an asynchronous model's batch). Checks
    /// with another model score the text themselves.
    #[must_use]
    pub fn with_model_score(
        mut self,
        score: Option<f32>,
        model: Option<&'a crate::detect::InjectionModel>,
    ) -> Self {
        if let (Some(s), Some(m)) = (score, model) {
            let _ = self.model_score.set(Some(s));
            self.scored_by = Some(m);
        }
        self
    }

    /// The injection model's score of this text: the one computed beforehand, else the
    /// model's own now (a synchronous model), once per scan.
    fn model_score(&self, m: &crate::detect::InjectionModel) -> Option<f32> {
        match self.scored_by {
            Some(by) if !by.same_as(m) => m.score_now(self.text),
            _ => *self.model_score.get_or_init(|| m.score_now(self.text)),
        }
    }

    /// The text.
    pub fn text(&self) -> &'a str {
        self.text
    }

    fn lowered(&self) -> &str {
        self.lowered
            .get_or_init(|| crate::detect::ascii_lowercase(self.text))
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

/// Runs `checks` over one whole text: `Err` with the first Block finding; otherwise every
/// Redact and Annotate finding goes to `on_find`, and the text with the Redact checks'
/// findings masked is returned when there were any (`json`: the text holds JSON, masks go
/// inside its strings so that it stays valid).
pub(crate) fn run_checks<'c, I>(
    checks: I,
    text: &str,
    json: bool,
    on_find: &mut dyn FnMut(&'c Check, &Hit),
) -> Result<Option<String>, (&'c Check, Cow<'static, str>)>
where
    I: Iterator<Item = &'c Check> + Clone,
{
    let scan = Scan::new(text);
    let mut redact_any = false;
    for c in checks.clone() {
        for h in c.find_in(&scan) {
            match c.action {
                Action::Block => return Err((c, h.label)),
                Action::Redact => {
                    redact_any = true;
                    on_find(c, &h);
                }
                Action::Annotate => on_find(c, &h),
            }
        }
    }
    if !redact_any {
        return Ok(None);
    }
    Ok(Some(redact_with(
        checks.filter(|c| c.action == Action::Redact),
        text,
        json,
        None,
    )))
}

/// `text` with the findings of `checks` masked one check after the other (each redaction
/// changes the text: a fresh scan per check). `json`: masks go inside the JSON's strings (only
/// when the text is JSON).
pub(crate) fn redact_with<'c>(
    checks: impl Iterator<Item = &'c Check>,
    text: &str,
    json: bool,
    score: Option<(f32, &crate::detect::InjectionModel)>,
) -> String {
    let json = json && crate::json_text::is_json(text);
    let mut cur = text.to_owned();
    for c in checks {
        // A redaction shortens the text, so a context window (a phone word within so many
        // bytes) can reach further on a second look: redact until nothing more is found, so
        // that redacting a redacted text changes nothing (at most a few passes).
        for _ in 0..REDACT_PASSES {
            // An asynchronous injection model's score of the original text still stands (its
            // finding is the whole text).
            let scan = Scan::new(&cur).with_model_score(score.map(|s| s.0), score.map(|s| s.1));
            let mut hits = c.find_in(&scan);
            if hits.is_empty() {
                break;
            }
            if json {
                crate::json_text::json_safe(
                    &cur,
                    crate::json_text::JsonState::default(),
                    &mut hits,
                    0,
                );
            }
            let next = redact(&cur, &hits);
            if next == cur {
                break;
            }
            cur = next;
        }
    }
    cur
}

/// The most passes of one check's redaction over a text (see [`redact_with`]). A pass finds
/// something only when the previous one changed the text next to a candidate (a shorter
/// neighbour, a mask in place of digits that made a number too long): a chain of such changes
/// longer than this takes a crafted text; each pass costs one more scan of the text.
const REDACT_PASSES: usize = 16;

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

/// Redaction as a public operation (for tools, tests and fuzzing).
impl Check {
    /// `text` with every finding of this check replaced by its mask. Overlapping findings are
    /// merged (the first one's mask covers them). Redacting a redacted text changes nothing.
    pub fn redact(&self, text: &str) -> String {
        let mut cur = text.to_owned();
        for _ in 0..REDACT_PASSES {
            let mut hits = self.find(&cur);
            if hits.is_empty() {
                break;
            }
            hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
            let mut merged: Vec<Hit> = Vec::with_capacity(hits.len());
            for h in hits {
                match merged.last_mut() {
                    Some(last) if h.start < last.end => last.end = last.end.max(h.end),
                    _ => merged.push(h),
                }
            }
            let next = redact(&cur, &merged);
            if next == cur {
                break;
            }
            cur = next;
        }
        cur
    }
}

#[cfg(test)]
mod stream_hold_tests {
    use super::*;
    use crate::detect::EntityKind;

    #[test]
    fn holds_only_what_may_still_become_a_match() {
        fn tail(w: &str) -> &str {
            &w[entity_tail(w)..]
        }
        assert_eq!(tail("Hello there, "), "");
        assert_eq!(tail("word1 word2 "), "");
        assert_eq!(tail("Hello there"), "there");
        assert_eq!(tail("mail jane@exa"), "jane@exa");
        assert_eq!(tail("Call +44 7700 "), "+44 7700 ");
        assert_eq!(tail("Call (555) 123-4"), "(555) 123-4");
        assert_eq!(tail("Account GB82 WEST 1234"), "GB82 WEST 1234");
        assert_eq!(tail("ok.\n-----BEGIN RSA PRIV"), "-----BEGIN RSA PRIV");
        let pii = PiiDetector::new();
        let num = |w: &str| w[pii.stream_hold(w)..].to_owned();
        assert_eq!(num("no digits here at all"), "");
        assert_eq!(num("dial 555 1234 now"), " 555 1234 now");
        assert_eq!(num("555 1234 and then much more text"), "");
        assert_eq!(num("NINO AB123456C (nin"), " AB123456C (nin");
        let names = PiiDetector::new().entities([EntityKind::Person]);
        assert_eq!(
            &"so my name is Jane Doe"[names.stream_hold("so my name is Jane Doe")..],
            "so my name is Jane Doe"
        );
        assert_eq!(tail("x -----BEGIN RSA PRIVATE KEY-----\nMIIE"), "MIIE");
        let d = DenyList::new(["project falcon", "secret"]).unwrap();
        assert_eq!(d.open_prefix("about Project Fal"), Some(6));
        assert_eq!(d.open_prefix("about projects"), None);
        assert_eq!(d.open_prefix("the secre"), Some(4));
    }
}
