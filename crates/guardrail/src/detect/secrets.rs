//! Secrets: cloud and API keys, private-key blocks and JWTs. An Aho-Corasick automaton finds
//! the fixed prefixes each format starts with; each hit is then checked for the format's
//! length and alphabet.

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;

use super::{EntityKind, Finding};

struct Format {
    prefix: &'static str,
    kind: EntityKind,
    /// Allowed characters after the prefix.
    class: fn(u8) -> bool,
    min: usize,
    max: usize,
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn slack(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

const FORMATS: &[Format] = &[
    Format {
        prefix: "AKIA",
        kind: EntityKind::AwsAccessKey,
        class: upper_digit,
        min: 16,
        max: 16,
    },
    Format {
        prefix: "ASIA",
        kind: EntityKind::AwsAccessKey,
        class: upper_digit,
        min: 16,
        max: 16,
    },
    Format {
        prefix: "ghp_",
        kind: EntityKind::GithubToken,
        class: alnum,
        min: 36,
        max: 36,
    },
    Format {
        prefix: "gho_",
        kind: EntityKind::GithubToken,
        class: alnum,
        min: 36,
        max: 36,
    },
    Format {
        prefix: "ghu_",
        kind: EntityKind::GithubToken,
        class: alnum,
        min: 36,
        max: 36,
    },
    Format {
        prefix: "ghs_",
        kind: EntityKind::GithubToken,
        class: alnum,
        min: 36,
        max: 36,
    },
    Format {
        prefix: "ghr_",
        kind: EntityKind::GithubToken,
        class: alnum,
        min: 36,
        max: 36,
    },
    Format {
        prefix: "github_pat_",
        kind: EntityKind::GithubToken,
        class: token,
        min: 60,
        max: 100,
    },
    Format {
        prefix: "xoxb-",
        kind: EntityKind::SlackToken,
        class: slack,
        min: 20,
        max: 200,
    },
    Format {
        prefix: "xoxp-",
        kind: EntityKind::SlackToken,
        class: slack,
        min: 20,
        max: 200,
    },
    Format {
        prefix: "xoxa-",
        kind: EntityKind::SlackToken,
        class: slack,
        min: 20,
        max: 200,
    },
    Format {
        prefix: "xoxr-",
        kind: EntityKind::SlackToken,
        class: slack,
        min: 20,
        max: 200,
    },
    Format {
        prefix: "xoxs-",
        kind: EntityKind::SlackToken,
        class: slack,
        min: 20,
        max: 200,
    },
    Format {
        prefix: "sk-ant-",
        kind: EntityKind::AnthropicKey,
        class: token,
        min: 40,
        max: 200,
    },
    Format {
        prefix: "sk-",
        kind: EntityKind::OpenAiKey,
        class: token,
        min: 20,
        max: 200,
    },
];

fn automaton() -> &'static AhoCorasick {
    static AC: OnceLock<AhoCorasick> = OnceLock::new();
    AC.get_or_init(|| {
        let mut pats: Vec<&str> = FORMATS.iter().map(|f| f.prefix).collect();
        pats.push("-----BEGIN ");
        pats.push("eyJ");
        AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(pats)
            .unwrap_or_else(|_| {
                AhoCorasick::new::<[&str; 0], &str>([]).unwrap_or_else(|_| unreachable!())
            })
    })
}

/// Finds secrets in `text`.
#[allow(clippy::many_single_char_names, clippy::comparison_chain)]
pub fn scan_secrets(text: &str) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for m in automaton().find_iter(b) {
        let s = m.start();
        if s > 0 && (b[s - 1].is_ascii_alphanumeric() || b[s - 1] == b'_') {
            continue;
        }
        let id = m.pattern().as_usize();
        let end = if id < FORMATS.len() {
            let f = &FORMATS[id];
            let mut e = m.end();
            while e < b.len() && (f.class)(b[e]) && e - m.end() < f.max {
                e += 1;
            }
            let n = e - m.end();
            let boundary = e >= b.len() || !(f.class)(b[e]);
            if n < f.min || !boundary {
                continue;
            }
            out.push(Finding {
                kind: f.kind,
                start: s,
                end: e,
                score: 1.0,
            });
            continue;
        } else if id == FORMATS.len() {
            private_key_end(text, s)
        } else {
            jwt_end(b, s)
        };
        if let Some((kind, e)) = end {
            out.push(Finding {
                kind,
                start: s,
                end: e,
                score: 1.0,
            });
        }
    }
    out
}

fn private_key_end(text: &str, s: usize) -> Option<(EntityKind, usize)> {
    let head_end = text[s..].find('\n').map_or(text.len(), |i| s + i);
    let head = &text[s..head_end];
    if !head.contains("PRIVATE KEY-----") {
        return None;
    }
    // Up to the END line, or (a truncated block) to the end of the text.
    let e = text[s..]
        .find("-----END ")
        .and_then(|i| text[s + i..].find("KEY-----").map(|j| s + i + j + 8))
        .unwrap_or(text.len());
    Some((EntityKind::PrivateKey, e))
}

fn jwt_end(b: &[u8], s: usize) -> Option<(EntityKind, usize)> {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut e = s;
    let mut parts = 0;
    loop {
        let p = e;
        while e < b.len() && b64(b[e]) {
            e += 1;
        }
        if e - p < 10 {
            return None;
        }
        parts += 1;
        if parts == 3 || e >= b.len() || b[e] != b'.' {
            break;
        }
        e += 1;
    }
    (parts == 3).then_some((EntityKind::Jwt, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<EntityKind> {
        scan_secrets(t).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn finds_each_format() {
        assert_eq!(
            kinds("aws AKIAIOSFODNN7EXAMPLE here"),
            [EntityKind::AwsAccessKey]
        );
        assert_eq!(
            kinds(&format!("t ghp_{}", "a".repeat(36))),
            [EntityKind::GithubToken]
        );
        assert_eq!(
            kinds("xoxb-1234567890-1234567890123-abcdefghijklmnop"),
            [EntityKind::SlackToken]
        );
        assert_eq!(
            kinds(&format!("key sk-proj-{}", "Ab3_".repeat(12))),
            [EntityKind::OpenAiKey]
        );
        assert_eq!(
            kinds(&format!("sk-ant-api03-{}", "x".repeat(80))),
            [EntityKind::AnthropicKey]
        );
        assert_eq!(
            kinds("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"),
            [EntityKind::PrivateKey]
        );
        assert_eq!(
            kinds(
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
            ),
            [EntityKind::Jwt]
        );
    }

    #[test]
    fn ignores_lookalikes() {
        assert!(kinds("ask-me later, sk-short, AKIA123, task-ant-x").is_empty());
        assert!(kinds("-----BEGIN CERTIFICATE-----").is_empty());
    }
}
