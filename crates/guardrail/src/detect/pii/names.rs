//! Names and street addresses, by keyword and context rules (no model: none small enough ships
//! from a package registry). Opt-in ([`EntityKind::Person`], [`EntityKind::StreetAddress`]):
//! they find names introduced as names ("my name is …", "Mr …", "Dear …", "Name: …") and
//! addresses written with a house number and a street word ("221B Baker Street",
//! "Hauptstraße 5", "12 rue de la Paix"); a name nobody introduces is not found.

// Byte scanners name their text `b`, positions `i`, `s`, `e`.
#![allow(clippy::many_single_char_names)]

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::PiiDetector;
use crate::detect::{EntityKind, Finding};

/// Words that introduce a name (matched case-insensitively, at word starts).
const NAME_TRIGGERS: &[&str] = &[
    "my name is ",
    "name is ",
    "name: ",
    "i am called ",
    "i'm called ",
    "mr ",
    "mr. ",
    "mrs ",
    "mrs. ",
    "ms ",
    "ms. ",
    "miss ",
    "dr ",
    "dr. ",
    "prof. ",
    "dear ",
    "patient ",
    "signed ",
    "regards, ",
    "sincerely, ",
    "je m'appelle ",
    "me llamo ",
    "mi chiamo ",
    "ich heiße ",
    "ich heisse ",
];

/// Street words in English, after the street's name ("Baker Street").
const STREET_AFTER: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "lane",
    "ln",
    "boulevard",
    "blvd",
    "drive",
    "dr",
    "court",
    "ct",
    "place",
    "pl",
    "way",
    "terrace",
    "parkway",
    "pkwy",
    "square",
    "sq",
    "highway",
    "hwy",
    "crescent",
    "close",
    "row",
    "gardens",
    "grove",
    "circle",
    "trail",
];

/// Street words before the street's name ("rue de la Paix", "Calle Mayor", "Via Roma").
const STREET_BEFORE: &[&str] = &[
    "rue",
    "avenue",
    "boulevard",
    "calle",
    "avenida",
    "via",
    "viale",
    "piazza",
    "rua",
    "plaza",
    "paseo",
    "corso",
    "chemin",
    "allee",
    "allée",
    "place",
];

/// German and Dutch street names end in a street word ("Hauptstraße 5", "Damstraat 12").
const STREET_SUFFIX: &[&str] = &[
    "straße", "strasse", "str.", "weg", "gasse", "allee", "platz", "ring", "damm", "straat",
    "laan", "gracht", "plein",
];

/// The triggers, searched case-sensitively in an ASCII-lowercased copy of the text (a
/// case-sensitive automaton keeps its vectorised prefilter; an ASCII-case-insensitive one
/// runs byte by byte).
static TRIGGERS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostLongest)
        .build(NAME_TRIGGERS)
        .ok()
});

fn capitalised(w: &[u8]) -> bool {
    w.len() >= 2
        && (w[0].is_ascii_uppercase() || w[0] >= 0xC0)
        && w[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c >= 0x80 || c == b'-' || c == b'\'')
}

/// The words of `b` from `at` on: (start, end) of runs of non-space bytes, trailing
/// punctuation trimmed.
fn words_from(b: &[u8], at: usize, max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = at;
    while out.len() < max && i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let s = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut e = i;
        while e > s && matches!(b[e - 1], b',' | b'.' | b';' | b':' | b'!' | b'?' | b')') {
            e -= 1;
        }
        if e == s {
            break;
        }
        out.push((s, e));
        if e < i || (i < b.len() && b[i] != b' ') {
            break; // punctuation or a line break ends the phrase
        }
    }
    out
}

pub(super) fn scan(det: &PiiDetector, b: &[u8], out: &mut Vec<Finding>) {
    if det.wants(EntityKind::Person)
        && let Some(ac) = TRIGGERS.as_ref()
    {
        let lowered = b.to_ascii_lowercase();
        for m in ac.find_iter(&lowered) {
            if m.start() > 0 && b[m.start() - 1].is_ascii_alphanumeric() {
                continue;
            }
            let ws = words_from(b, m.end(), 3);
            let n = ws
                .iter()
                .take_while(|(s, e)| capitalised(&b[*s..*e]))
                .count();
            if n > 0 {
                out.push(Finding::scored(
                    EntityKind::Person,
                    ws[0].0,
                    ws[n - 1].1,
                    0.6,
                ));
            }
        }
    }
    if det.wants(EntityKind::StreetAddress) {
        addresses(b, out);
    }
}

fn lower(w: &[u8]) -> String {
    String::from_utf8_lossy(w).to_lowercase()
}

fn house_number(w: &[u8]) -> bool {
    let d = w.iter().take_while(|c| c.is_ascii_digit()).count();
    (1..=5).contains(&d) && w.len() - d <= 1 && w[d..].iter().all(u8::is_ascii_alphabetic)
}

fn addresses(b: &[u8], out: &mut Vec<Finding>) {
    let mut i = 0;
    loop {
        let at = super::scan::next_candidate(b, i);
        if at >= b.len() {
            break;
        }
        if !b[at].is_ascii_digit() {
            i = at + 1;
            continue;
        }
        let s = at;
        let mut e = at;
        while e < b.len() && b[e].is_ascii_alphanumeric() {
            e += 1;
        }
        i = e.max(at + 1);
        if s > 0 && !b[s - 1].is_ascii_whitespace() && b[s - 1] != b',' {
            continue;
        }
        if !house_number(&b[s..e]) {
            continue;
        }
        // "221B Baker Street", "12 rue de la Paix".
        let ws = words_from(b, e, 5);
        let mut found = None;
        if let Some(&(fs, fe)) = ws.first()
            && STREET_BEFORE.contains(&lower(&b[fs..fe]).as_str())
        {
            let n = ws[1..]
                .iter()
                .take_while(|(x, y)| {
                    capitalised(&b[*x..*y])
                        || matches!(
                            lower(&b[*x..*y]).as_str(),
                            "de" | "la" | "del" | "des" | "du" | "di"
                        )
                })
                .count();
            if n > 0 {
                found = Some(ws[n].1);
            }
        }
        if found.is_none() {
            for (k, &(x, y)) in ws.iter().enumerate() {
                let w = &b[x..y];
                if k > 0 && STREET_AFTER.contains(&lower(w).as_str()) {
                    found = Some(y);
                    break;
                }
                if !capitalised(w) {
                    break;
                }
            }
        }
        if let Some(end) = found {
            out.push(Finding::scored(EntityKind::StreetAddress, s, end, 0.6));
            i = end;
            continue;
        }
        // "Hauptstraße 5": the street word before the number.
        let mut ws_start = s;
        while ws_start > 0 && b[ws_start - 1] == b' ' {
            ws_start -= 1;
        }
        let mut w0 = ws_start;
        while w0 > 0 && !b[w0 - 1].is_ascii_whitespace() {
            w0 -= 1;
        }
        let word = lower(&b[w0..ws_start]);
        if w0 < ws_start
            && capitalised(&b[w0..ws_start])
            && STREET_SUFFIX.iter().any(|suf| word.ends_with(suf))
        {
            out.push(Finding::scored(EntityKind::StreetAddress, w0, e, 0.6));
        }
    }
}
