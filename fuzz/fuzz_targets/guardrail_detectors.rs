//! Every guardrail detector: no panic on any text, hits inside the text and on character
//! boundaries, and redaction idempotent (redacting a redacted text changes nothing and finds
//! nothing more of the same kind).
#![no_main]

use infergate_guardrail::detect::{DEFAULT_PII_KINDS, DenyList, EntityKind, PiiDetector, RegexList};
use infergate_guardrail::{Action, Check, Detector};
use libfuzzer_sys::fuzz_target;

fn checks() -> Vec<Check> {
    let deny = DenyList::new(["project falcon", "internal only", "secret"]).expect("valid terms");
    let regex = RegexList::new([("ticket", r"TCK-\d{4,}")]).expect("valid regex");
    vec![
        Check::new("pii", Detector::pii(), Action::Redact),
        Check::new(
            "pii_every_kind",
            Detector::Pii(PiiDetector::new().entities(
                DEFAULT_PII_KINDS
                    .into_iter()
                    .chain([EntityKind::Person, EntityKind::StreetAddress]),
            )),
            Action::Redact,
        ),
        Check::new("secrets", Detector::Secrets, Action::Redact),
        Check::new("deny", Detector::DenyList(deny), Action::Redact),
        Check::new("regex", Detector::Regex(regex), Action::Redact),
        Check::new("injection", Detector::Injection { threshold: 2.0 }, Action::Block),
    ]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    thread_local! {
        static CHECKS: Vec<Check> = checks();
    }
    CHECKS.with(|checks| {
        for c in checks {
            let hits = c.find(text);
            for h in &hits {
                assert!(h.start <= h.end && h.end <= text.len());
                assert!(text.is_char_boundary(h.start) && text.is_char_boundary(h.end));
            }
            if matches!(c.detector, Detector::Injection { .. }) {
                continue;
            }
            let once = c.redact(text);
            let twice = c.redact(&once);
            assert_eq!(once, twice, "redaction is not idempotent for {}", c.name);
        }
    });
});
