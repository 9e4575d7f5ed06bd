//! The scanner: it looks only where a detector could match (`@` for e-mail, digits for
//! numbers and identifiers, `:` for IPv6), so ordinary prose is skipped at memchr speed, and
//! every candidate is checked structurally (check digits, numbering plans, octet ranges) and
//! scored with its context.

// Byte scanners name their text `b`, positions `i`, `s`, `e`.
#![allow(clippy::many_single_char_names)]

use super::checks::{
    br_cpf, de_tax_id, es_dni_nie, fr_nir, in_pan, isbn, it_fiscal_code, luhn, mod97_iban, uk_nino,
    vat, verhoeff,
};
use super::context::{adjust, around};
use super::phone::{Validity, validate};
use super::{PiiDetector, Scored};
use crate::detect::{EntityKind, Finding};

use EntityKind as K;

/// The findings, such that the text with each replaced by its mask holds none: a finding
/// can hide another ("Hauptstraße 221B 4991 1866 5246": the Aadhaar number is a group of
/// the house number's longer number until the address is masked), so the masked text is
/// scanned again and what appears is added, until nothing does (at most three rounds).
pub(super) fn scan(det: &PiiDetector, text: &str) -> Vec<Finding> {
    let mut found = scan_once(det, text);
    for _ in 0..3 {
        if found.is_empty() {
            break;
        }
        // The masked text, and for each of its bytes outside masks the original offset.
        let mut masked = String::with_capacity(text.len());
        let mut origin: Vec<Option<usize>> = Vec::with_capacity(text.len());
        let mut pos = 0;
        for f in &found {
            masked.push_str(&text[pos..f.start]);
            origin.extend((pos..f.start).map(Some));
            masked.push_str(f.kind.mask());
            origin.extend(std::iter::repeat_n(None, f.kind.mask().len()));
            pos = f.end;
        }
        masked.push_str(&text[pos..]);
        origin.extend((pos..text.len()).map(Some));
        origin.push(Some(text.len()));
        let mut more = Vec::new();
        for f in scan_once(det, &masked) {
            let inside = origin[f.start..f.end].iter().all(Option::is_some);
            if let (true, Some(start), Some(last)) = (inside, origin[f.start], origin[f.end - 1]) {
                more.push(Finding::scored(f.kind, start, last + 1, f.score));
            }
        }
        if more.is_empty() {
            break;
        }
        found.extend(more);
        found.sort_by_key(|f| f.start);
    }
    found
}

fn scan_once(det: &PiiDetector, text: &str) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    if det.wants(K::Email) {
        emails(b, &mut out);
    }
    if det.wants(K::Ipv6) {
        ipv6(text, &mut out);
    }
    numbers(det, b, &mut out);
    if det.wants(K::Person) || det.wants(K::StreetAddress) {
        super::names::scan(det, b, &mut out);
    }
    out.retain(|f| det.wants(f.kind) && f.score >= det.min_score);
    out.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    let mut kept: Vec<Finding> = Vec::with_capacity(out.len());
    for f in out {
        match kept.last() {
            Some(last) if f.start < last.end => {}
            _ => kept.push(f),
        }
    }
    kept
}

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

fn emails(b: &[u8], out: &mut Vec<Finding>) {
    for at in memchr::memchr_iter(b'@', b) {
        let mut s = at;
        while s > 0 && is_local(b[s - 1]) {
            s -= 1;
        }
        while s < at && matches!(b[s], b'.' | b'-' | b'+') {
            s += 1;
        }
        let mut e = at + 1;
        while e < b.len() && is_domain(b[e]) {
            e += 1;
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        if s == at || e == at + 1 {
            continue;
        }
        let domain = &b[at + 1..e];
        let Some(dot) = domain.iter().rposition(|&c| c == b'.') else {
            continue;
        };
        let tld = &domain[dot + 1..];
        if tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && dot > 0 {
            out.push(Finding::scored(K::Email, s, e, 1.0));
        }
    }
}

fn ipv6(text: &str, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b':', &b[i..]) {
        let colon = i + off;
        let is_v6 = |c: u8| c.is_ascii_hexdigit() || c == b':' || c == b'.';
        let mut s = colon;
        while s > 0 && is_v6(b[s - 1]) {
            s -= 1;
        }
        let mut e = colon;
        while e < b.len() && is_v6(b[e]) {
            e += 1;
        }
        while e > colon && b[e - 1] == b'.' {
            e -= 1;
        }
        let cand = &text[s..e];
        if cand.bytes().filter(|&c| c == b':').count() >= 2
            && (s == 0 || !b[s - 1].is_ascii_alphanumeric())
            && let Ok(addr) = cand.parse::<std::net::Ipv6Addr>()
            && let Some(score) = ipv6_range(addr)
        {
            let a = around(b, s, e);
            let score = adjust(K::Ipv6, score, &a);
            out.push(Finding::scored(K::Ipv6, s, e, score));
        }
        i = e.max(colon + 1);
    }
}

fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'(' | b')' | b'/')
}

/// The start of the ASCII-alphanumeric token holding `i` (at most 24 bytes back).
fn token_start(b: &[u8], i: usize) -> usize {
    let mut s = i;
    let floor = i.saturating_sub(24);
    while s > floor && b[s - 1].is_ascii_alphanumeric() {
        s -= 1;
    }
    s
}

/// The end of the ASCII-alphanumeric token holding `i`.
fn token_end(b: &[u8], i: usize) -> usize {
    let mut e = i;
    while e < b.len() && b[e].is_ascii_alphanumeric() {
        e += 1;
    }
    e
}

/// Keeps the best-scoring candidate the detector wants, after context.
fn choose(
    det: &PiiDetector,
    b: &[u8],
    start: usize,
    end: usize,
    cands: &[Scored],
    out: &mut Vec<Finding>,
) {
    if cands.iter().all(|c| !det.wants(c.0)) {
        return;
    }
    let a = around(b, start, end);
    let best = cands
        .iter()
        .filter(|c| det.wants(c.0))
        .map(|&(k, base)| (k, adjust(k, base, &a)))
        .max_by(|x, y| x.1.total_cmp(&y.1));
    if let Some((kind, score)) = best
        && score >= det.min_score
    {
        out.push(Finding::scored(kind, start, end, score));
    }
}

/// Digit-led candidates: numbers with separators, and the tokens around digits (identifiers
/// mixing letters and digits), classified structurally.
fn numbers(det: &PiiDetector, b: &[u8], out: &mut Vec<Finding>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts = c.is_ascii_digit()
            || ((c == b'+' || c == b'(') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts {
            i = next_candidate(b, i + 1);
            continue;
        }
        if c.is_ascii_digit() && i > 0 && b[i - 1].is_ascii_alphanumeric() {
            if iban_head(b, i)
                && let Some(end) = iban(b, i - 2)
            {
                out.push(Finding::scored(K::Iban, i - 2, end, 1.0));
                i = end;
                continue;
            }
            // Inside a token that starts with letters: "AB123456C", "DE136695976".
            let (s, e) = (token_start(b, i), token_end(b, i));
            if s == 0 || !b[s - 1].is_ascii_alphanumeric() {
                if let Some(end) = es_id_at(det, b, s, out) {
                    i = end;
                    continue;
                }
                mixed(det, b, s, e, out);
            }
            i = e;
            continue;
        }
        // Identifiers written with separators: "12.345.678-Z", "X-1234567-L",
        // "2 99 04 2A 017 758 25".
        if c.is_ascii_digit() {
            let at_word = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            let nie_dash = i >= 2
                && b[i - 1] == b'-'
                && matches!(b[i - 2], b'X' | b'Y' | b'Z' | b'x' | b'y' | b'z')
                && (i == 2 || !b[i - 3].is_ascii_alphanumeric());
            let found = if nie_dash {
                es_id_at(det, b, i - 2, out)
            } else if at_word {
                es_id_at(det, b, i, out).or_else(|| nir_at(det, b, i, out))
            } else {
                None
            };
            if let Some(end) = found {
                i = end;
                continue;
            }
        }
        // "QQ 12 34 56 C", "DE 136 695 976": letters, one space, then digit groups.
        if c.is_ascii_digit()
            && let Some(end) = spaced_ids(det, b, i, out)
        {
            i = end;
            continue;
        }
        // Extend over digits and single separators between digit groups.
        let start = i;
        let mut e = i + 1;
        loop {
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
            // Up to two separators (") ", " (") followed by a digit continue the number.
            let mut k = e;
            let mut seps = 0;
            while k < b.len() && is_sep(b[k]) && seps < 2 {
                k += 1;
                seps += 1;
            }
            // "(" opens an area code at the start, or after "+44 " / "0041 " ("(0)20 …"),
            // never in the middle of a number ("2023 (4 622").
            let paren =
                b[e..k].contains(&b'(') && !(b[start] == b'+' || b[start..e].starts_with(b"00"));
            if seps > 0
                && k < b.len()
                && b[k].is_ascii_digit()
                && !(seps == 2 && b[e] == b[e + 1])
                && !paren
            {
                e = k;
                continue;
            }
            break;
        }
        // A phone extension: "x123", " ext. 12".
        let mut ext_end = e;
        if e < b.len()
            && (b[e] == b'x' || b[e] == b'X')
            && b.get(e + 1).is_some_and(u8::is_ascii_digit)
        {
            ext_end = e + 1;
            while ext_end < b.len() && b[ext_end].is_ascii_digit() {
                ext_end += 1;
            }
        }
        if e < b.len() && b[e].is_ascii_alphabetic() && ext_end == e {
            // "12345678Z": a token starting with digits (a DNI, a NIR of Corsica, a
            // passport), or part of a word or code.
            let te = token_end(b, e);
            if b[start..e].iter().all(u8::is_ascii_digit) || b[start..e].contains(&b' ') {
                let ts = b[start..e]
                    .iter()
                    .rposition(|&c| c == b' ')
                    .map_or(start, |p| start + p + 1);
                if ts > start {
                    // "1 85 05 2A 006 084 36"-like numbers are not handled with spaces; the
                    // groups before the token are a number of their own.
                    classify_number(det, b, start, ts - 1, false, out);
                }
                mixed(det, b, ts, te, out);
            }
            i = te;
            continue;
        }
        if !identifier_around(b, start, ext_end) {
            classify_number(det, b, start, e, ext_end > e, out);
        }
        i = ext_end.max(start + 1);
    }
}

/// Whether a number is part of an identifier or a quantity rather than standing alone:
/// `build-5.15`, `/users/123…`, `5.15.0-1051-azure`, `$1 299`, `45%`, `ID_123`.
fn identifier_around(b: &[u8], start: usize, end: usize) -> bool {
    let before = |k: usize| start.checked_sub(k).map(|p| b[p]);
    let after = |k: usize| b.get(end + k).copied();
    let joined_before = matches!(before(1), Some(b'-' | b'_' | b'/' | b'.' | b'=' | b'\\'))
        && before(2).is_some_and(|c| c.is_ascii_alphanumeric());
    // "618-226-1460-Office" is a phone labelled after a dash; "1051-azure" is a version.
    let joined_after = matches!(after(0), Some(b'-' | b'_' | b'/' | b'\\'))
        && after(1).is_some_and(|c| c.is_ascii_alphanumeric())
        && !super::context::names_something(
            &b[end + 1..(end + 1 + super::context::AFTER).min(b.len())],
        );
    let currency = matches!(before(1), Some(b'$' | b'%'))
        || (start >= 3 && matches!(&b[start - 3..start], [0xE2, 0x82, _]))
        || (start >= 2 && matches!(&b[start - 2..start], [0xC2, 0xA3 | 0xA5]));
    let percent = matches!(after(0), Some(b'%'));
    let time = after(0) == Some(b':') && after(1).is_some_and(|c| c.is_ascii_digit());
    joined_before || joined_after || currency || percent || time
}

/// Classifies the number `b[start..e]` (with an extension after it when `has_ext`).
fn classify_number(
    det: &PiiDetector,
    b: &[u8],
    start: usize,
    e: usize,
    has_ext: bool,
    out: &mut Vec<Finding>,
) {
    let s = &b[start..e];
    let mut digits = [0u8; 24];
    let mut nd = 0;
    let mut seps = [0u8; 24];
    let mut ns = 0;
    let mut groups = [0usize; 24];
    let mut ng = 0;
    let mut run = 0;
    for &c in s {
        if c.is_ascii_digit() {
            if nd < digits.len() {
                digits[nd] = c;
            }
            nd += 1;
            run += 1;
        } else {
            if ns < seps.len() {
                seps[ns] = c;
            }
            ns += 1;
            if run > 0 && ng < groups.len() {
                groups[ng] = run;
                ng += 1;
            }
            run = 0;
        }
    }
    if run > 0 && ng < groups.len() {
        groups[ng] = run;
        ng += 1;
    }
    if nd > digits.len() || ns > seps.len() {
        return;
    }
    let n = Num {
        s,
        digits: &digits[..nd],
        seps: &seps[..ns],
        groups: &groups[..ng],
        has_ext,
    };
    let cands = candidates(det, &n);
    let end = if has_ext {
        let mut x = e + 1;
        while x < b.len() && b[x].is_ascii_digit() {
            x += 1;
        }
        x
    } else {
        e
    };
    choose(det, b, start, end, &cands, out);
}

/// A number candidate taken apart.
struct Num<'a> {
    s: &'a [u8],
    digits: &'a [u8],
    seps: &'a [u8],
    groups: &'a [usize],
    has_ext: bool,
}

impl Num<'_> {
    fn plain(&self) -> bool {
        self.seps.is_empty()
    }
    /// One kind of separator (spaces, dashes or dots) between every group.
    fn uniform(&self, allowed: &[u8]) -> bool {
        !self.seps.is_empty()
            && self.seps.iter().all(|c| allowed.contains(c))
            && self.seps.iter().all(|&c| c == self.seps[0])
    }
    fn grouped_as(&self, g: &[usize], allowed: &[u8]) -> bool {
        self.groups == g && self.uniform(allowed)
    }
}

/// Every kind this number could be, with a base score before context; empty for look-alikes.
fn candidates(det: &PiiDetector, n: &Num<'_>) -> Vec<Scored> {
    let mut c: Vec<Scored> = Vec::new();
    let nd = n.digits.len();
    let d = n.digits;
    // IPv4: four dot-separated octets.
    if n.seps.iter().all(|&c| c == b'.') && n.groups.len() == 4 && !n.has_ext {
        let ok = n.s.split(|&c| c == b'.').all(|g| {
            !g.is_empty()
                && g.len() <= 3
                && g.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0')) <= 255
                && !(g.len() > 1 && g[0] == b'0')
        });
        if ok {
            return match ipv4_range(n.s) {
                Some(score) => vec![(K::Ipv4, score)],
                None => Vec::new(),
            };
        }
    }
    if lookalike(n) {
        return c;
    }
    // US SSN: 3-2-4 with dashes or spaces; plain 9 digits only with a word naming it.
    let ssn_rules = nd == 9
        && &d[..3] != b"000"
        && &d[..3] != b"666"
        && d[0] != b'9'
        && &d[3..5] != b"00"
        && &d[5..] != b"0000";
    if n.groups == [3, 2, 4] && n.uniform(b" -") {
        // The shape of an SSN and of nothing else: an invalid one is no phone either.
        if ssn_rules && !n.has_ext {
            c.push((K::UsSsn, 0.6));
        }
        return c;
    }
    if ssn_rules && n.plain() {
        c.push((K::UsSsn, 0.2));
    }
    // Payment cards: 13–19 digits, Luhn, a known issuer prefix, grouped as cards are.
    // Maestro also issues 12-digit numbers.
    let maestro12 = nd == 12
        && (d.starts_with(b"0604") || matches!(d[..2], [b'5', b'0' | b'6'..=b'8'] | [b'6', _]));
    if ((13..=19).contains(&nd) || maestro12) && !n.has_ext && luhn(d) && card_prefix(d) {
        let groups_ok = n.plain()
            || (n.uniform(b" -")
                && (n.groups[..n.groups.len() - 1].iter().all(|&g| g == 4)
                    || n.groups == [4, 6, 5]
                    || n.groups == [4, 6, 4]));
        if groups_ok {
            c.push((K::CreditCard, if maestro12 { 0.6 } else { 0.85 }));
        }
    }
    // Indian Aadhaar: 12 digits, not starting with 0 or 1, Verhoeff.
    if nd == 12 && d[0] >= b'2' && verhoeff(d) {
        if n.grouped_as(&[4, 4, 4], b" -") {
            c.push((K::InAadhaar, 0.8));
        } else if n.plain() {
            c.push((K::InAadhaar, 0.4));
        }
    }
    // Brazilian CPF: 000.000.000-00, two check digits.
    if nd == 11 && br_cpf(d) {
        if n.groups == [3, 3, 3, 2] && n.seps == b"..-" {
            c.push((K::BrCpf, 0.95));
        } else if n.plain() {
            c.push((K::BrCpf, 0.55));
        } else if n.grouped_as(&[3, 3, 3, 2], b" -") {
            c.push((K::BrCpf, 0.6));
        }
    }
    // German tax id: 11 digits, "12 345 678 901" or plain.
    if nd == 11 && de_tax_id(d) {
        if n.grouped_as(&[2, 3, 3, 3], b" ") {
            c.push((K::DeTaxId, 0.8));
        } else if n.plain() {
            // About 0.2 % of random 11-digit numbers pass the shape rule and the check.
            c.push((K::DeTaxId, 0.55));
        }
    }
    // French NIR: 15 digits with its key, "1 85 05 78 006 084 36" or plain.
    if nd == 15 && fr_nir(d) {
        if n.grouped_as(&[1, 2, 2, 2, 3, 3, 2], b" ") || n.grouped_as(&[13, 2], b" ") {
            c.push((K::FrNir, 0.85));
        } else if n.plain() {
            c.push((K::FrNir, 0.7));
        }
    }
    // Canadian SIN: 9 digits, Luhn, first digit 1–7 or 9.
    if nd == 9 && luhn(d) && !matches!(d[0], b'0' | b'8') {
        if n.grouped_as(&[3, 3, 3], b" -") {
            c.push((K::CaSin, 0.5));
        } else if n.plain() {
            c.push((K::CaSin, 0.3));
        }
    }
    // Passports: 8–9 digits, only with a word naming one.
    if (8..=9).contains(&nd) && n.plain() {
        c.push((K::Passport, 0.15));
    }
    // Phones — never in the shape of a CPF ("000.000.000-00") or a placeholder.
    let cpf_shape = n.groups == [3, 3, 3, 2] && n.seps == b"..-";
    if det.wants(K::Phone)
        && !cpf_shape
        && !placeholder(n)
        && let Some(score) = phone(det, n)
    {
        c.push((K::Phone, score));
    }
    c
}

/// An IPv4 address's base score by its range: `None` for netmasks and the documentation
/// ranges (never a host), low for private, loopback, link-local and shared ranges (they name
/// no one outside the network; a word such as "IP" still makes them findings).
fn ipv4_range(s: &[u8]) -> Option<f32> {
    let addr: std::net::Ipv4Addr = std::str::from_utf8(s).ok()?.parse().ok()?;
    let o = addr.octets();
    let bits = u32::from(addr);
    let netmask = bits.leading_ones() + bits.trailing_zeros() == 32 && o[0] == 255;
    let documentation = matches!(o, [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]);
    if netmask || addr.is_unspecified() || addr.is_broadcast() || documentation {
        return None;
    }
    let internal = addr.is_private()
        || addr.is_loopback()
        || addr.is_link_local()
        || addr.is_multicast()
        || (o[0] == 100 && (64..128).contains(&o[1]));
    Some(if internal { 0.3 } else { 0.6 })
}

/// An IPv6 address's base score by its range, as for IPv4.
fn ipv6_range(addr: std::net::Ipv6Addr) -> Option<f32> {
    let seg = addr.segments();
    if addr.is_unspecified() || (seg[0] == 0x2001 && seg[1] == 0x0db8) {
        return None;
    }
    let internal = addr.is_loopback()
        || addr.is_multicast()
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] & 0xfe00) == 0xfc00;
    Some(if internal { 0.3 } else { 0.9 })
}

/// Phone-looking placeholders: one digit repeated ("000-000-0000"), two groups each of one
/// repeated digit ("111-123-0000"), or a run of consecutive digits ("123-456-7890").
fn placeholder(n: &Num<'_>) -> bool {
    let d = n.digits;
    let same = |g: &[u8]| g.iter().all(|&c| c == g[0]);
    if same(d) {
        return true;
    }
    let mut at = 0;
    let mut repeated = 0;
    for &g in n.groups {
        if g >= 3 && same(&d[at..at + g]) {
            repeated += 1;
        }
        at += g;
    }
    let up = d
        .windows(2)
        .all(|w| w[1] == w[0] + 1 || (w[0] == b'9' && w[1] == b'0'));
    let down = d
        .windows(2)
        .all(|w| w[0] == w[1] + 1 || (w[0] == b'0' && w[1] == b'9'));
    repeated >= 2 || (d.len() >= 8 && (up || down))
}

/// A CAS registry number ("7732-18-5"): 2–7 digits, 2 digits, a check digit.
fn cas(n: &Num<'_>) -> bool {
    if n.groups.len() != 3
        || !(2..=7).contains(&n.groups[0])
        || n.groups[1] != 2
        || n.groups[2] != 1
        || n.seps.iter().any(|&c| c != b'-')
    {
        return false;
    }
    let (body, check) = n.digits.split_at(n.digits.len() - 1);
    let sum: u32 = body
        .iter()
        .rev()
        .zip(1u32..)
        .map(|(&c, w)| u32::from(c - b'0') * w)
        .sum();
    sum % 10 == u32::from(check[0] - b'0')
}

/// Shapes that are never personal data: versions, decimals, dates and times, ISBNs.
fn lookalike(n: &Num<'_>) -> bool {
    let d = n.digits;
    let dots = memchr::memchr_iter(b'.', n.seps).count();
    // A decimal or a version: "3.14159", "20240315.1842", "5.15.0", "10.0.19041" — a dotted
    // number with a group of one digit, or just two groups.
    if dots > 0 && (n.groups.len() == 2 || n.groups[1..].contains(&1))
        || dots > 0 && n.s[0] != b'+' && n.s[0] != b'(' && n.groups[0] == 1
    {
        return true;
    }
    if is_date(n.groups, n.seps, d) {
        return true;
    }
    // Thousands separated by dots: "856.495.523", "1.234.567".
    if dots == n.seps.len()
        && n.groups.len() >= 3
        && (1..=3).contains(&n.groups[0])
        && d[0] != b'0'
        && n.groups[1..].iter().all(|&g| g == 3)
    {
        return true;
    }
    // A reference with its year: "0045123/2024", "n. 88412/2023".
    if n.seps.last() == Some(&b'/')
        && n.groups.last() == Some(&4)
        && (1900..=2099).contains(&num(&d[d.len() - 4..]))
    {
        return true;
    }
    if cas(n) {
        return true;
    }
    // A compact date or timestamp: yyyymmdd, yyyymmddhhmm(ss).
    if n.plain() && matches!(d.len(), 8 | 12 | 14) && compact_date(d) {
        return true;
    }
    // ISBN-10/13 with hyphens or spaces (or plain 978…/979…).
    let last_one = n.groups.last() == Some(&1);
    if (d.len() == 13 && isbn(d) && (n.plain() || (n.groups.len() >= 4 && last_one)))
        || (d.len() == 10 && isbn(d) && n.groups.len() == 4 && last_one && n.uniform(b"- "))
    {
        return true;
    }
    false
}

fn num(d: &[u8]) -> u32 {
    d.iter().fold(0u32, |x, c| x * 10 + u32::from(c - b'0'))
}

fn compact_date(d: &[u8]) -> bool {
    let y = num(&d[..4]);
    (1900..=2099).contains(&y)
        && (1..=12).contains(&num(&d[4..6]))
        && (1..=31).contains(&num(&d[6..8]))
        && (d.len() == 8 || (num(&d[8..10]) <= 23 && num(&d[10..12]) <= 59))
}

fn is_date(groups: &[usize], seps: &[u8], d: &[u8]) -> bool {
    let at = |a: usize, len: usize| num(&d[a..a + len]);
    let date_sep = |c: &u8| matches!(c, b'-' | b'/' | b'.');
    // yyyy-mm-dd, possibly followed by more (a time): "2000-04-16 11:34".
    if groups.len() >= 3
        && groups[..3] == [4, 2, 2]
        && seps.len() >= 2
        && seps[..2].iter().all(date_sep)
        && seps[0] == seps[1]
    {
        return (1..=12).contains(&at(4, 2)) && (1..=31).contains(&at(6, 2));
    }
    // dd-mm-yyyy, mm.dd.yyyy, with or without a time after.
    if groups.len() >= 3
        && matches!(groups[..3], [1 | 2, 1 | 2, 4])
        && seps.len() >= 2
        && seps[..2].iter().all(date_sep)
        && seps[0] == seps[1]
    {
        let y = at(groups[0] + groups[1], 4);
        return (1800..=2199).contains(&y);
    }
    false
}

/// A phone's base score: validated against the numbering plans, with its shape.
fn phone(det: &PiiDetector, n: &Num<'_>) -> Option<f32> {
    let nd = n.digits.len();
    if !(7..=15).contains(&nd) {
        return None;
    }
    let intl = n.s[0] == b'+' || (nd >= 11 && n.digits.starts_with(b"00"));
    let parens = n.s.contains(&b'(');
    let grouped = n.groups.len() >= 2;
    let v = if nd >= 8 || intl {
        let mut breaks = Vec::with_capacity(n.groups.len());
        let mut at = 0;
        for &g in &n.groups[..n.groups.len().saturating_sub(1)] {
            at += g;
            breaks.push(at);
        }
        validate(n.s, n.digits, &breaks, &det.regions)
    } else {
        super::phone::Validity::Invalid
    };
    let score = match v {
        Validity::International => 0.95,
        Validity::National if grouped || parens => 0.75,
        Validity::National if n.digits[0] == b'0' && nd <= 11 => 0.5,
        Validity::National | Validity::NationalOddlyGrouped => 0.4,
        Validity::InvalidInternational if grouped || parens => 0.5,
        Validity::InvalidInternational => 0.3,
        Validity::Invalid => {
            // Shapes only phones have: "(898)666-3621", "463-612-6138x036", "618-226-1460".
            let nanp = n.groups == [3, 3, 4] && n.uniform(b"-.");
            if (parens && grouped) || n.has_ext || nanp {
                0.5
            } else if n.groups.len() >= 3 {
                0.3
            } else if grouped {
                0.2
            } else {
                return None;
            }
        }
    };
    Some(score)
}

/// The first position at or after `i` holding a byte in `(`..=`9` (digits, `+`, `(` and a few
/// punctuation marks), skipping eight bytes at a time where there is none: prose is mostly
/// letters and spaces, and this is what keeps the number scan near memory speed.
pub(super) fn next_candidate(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // "Has a byte strictly between 0x27 and 0x3A" (Bit Twiddling Hacks, `hasbetween`); bytes
    // with the high bit set never count, which is right: they are not ASCII digits.
    let has_between = |x: u64| {
        let low = x & (ONES * 127);
        ((ONES * (127 + 0x3A)).wrapping_sub(low) & !x & (low + ONES * (127 - 0x27)) & HIGH) != 0
    };
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if has_between(u64::from_le_bytes(word)) {
            break;
        }
        i += 8;
    }
    while i < b.len() && !(b'('..=b'9').contains(&b[i]) {
        i += 1;
    }
    i
}

fn iban_head(b: &[u8], i: usize) -> bool {
    i >= 2
        && b[i - 1].is_ascii_alphabetic()
        && b[i - 2].is_ascii_alphabetic()
        && (i == 2 || !b[i - 3].is_ascii_alphanumeric())
        && b.get(i + 1).is_some_and(u8::is_ascii_digit)
}

/// An IBAN starting at `s` (country code), with optional single spaces between groups;
/// returns its end if the mod-97 check passes.
fn iban(b: &[u8], s: usize) -> Option<usize> {
    let mut chars: Vec<u8> = Vec::with_capacity(34);
    let mut ends: Vec<usize> = Vec::with_capacity(34);
    let mut k = s;
    while k < b.len() && chars.len() < 34 {
        if b[k].is_ascii_alphanumeric() {
            chars.push(b[k].to_ascii_uppercase());
            k += 1;
            ends.push(k);
        } else if b[k] == b' '
            && b.get(k + 1).is_some_and(u8::is_ascii_alphanumeric)
            && chars.len() >= 4
        {
            k += 1;
        } else {
            break;
        }
    }
    // Longest valid prefix of at least 15 characters that ends at a group boundary.
    for n in (15..=chars.len()).rev() {
        let end = ends[n - 1];
        let boundary = end >= b.len() || !b[end].is_ascii_alphanumeric();
        if boundary && mod97_iban(&chars[..n]) {
            return Some(end);
        }
    }
    None
}

fn card_prefix(d: &[u8]) -> bool {
    let n = |k: usize| -> u32 { num(&d[..k.min(d.len())]) };
    let len = d.len();
    match d[0] {
        b'4' => matches!(len, 13 | 16 | 19),                      // Visa
        b'5' => (50..=59).contains(&n(2)),                        // Mastercard, Maestro
        b'2' => (2221..=2720).contains(&n(4)) || n(4) == 2131,    // Mastercard 2-series, JCB
        b'3' => matches!(n(2), 34 | 37 | 35 | 36 | 38 | 39 | 30), // Amex, JCB, Diners
        b'6' => true,                                             // Discover, UnionPay, Maestro
        b'1' => n(4) == 1800,                                     // JCB
        b'0' => n(4) == 604,                                      // Maestro (UK)
        _ => false,
    }
}

/// A token mixing letters and digits, `b[s..e]`: national identifiers, VAT numbers,
/// passports.
fn mixed(det: &PiiDetector, b: &[u8], s: usize, e: usize, out: &mut Vec<Finding>) {
    let t = &b[s..e];
    if !(6..=20).contains(&t.len()) {
        return;
    }
    let mut c: Vec<Scored> = Vec::new();
    match t.len() {
        9 if es_dni_nie(t) => {
            let nie = matches!(t[0], b'X' | b'Y' | b'Z' | b'x' | b'y' | b'z');
            c.push((K::EsDni, if nie { 0.8 } else { 0.75 }));
        }
        9 if uk_nino(&t.to_ascii_uppercase()) => {
            let upper = t.iter().all(|c| !c.is_ascii_lowercase());
            c.push((K::UkNino, if upper { 0.6 } else { 0.5 }));
        }
        10 if in_pan(t) => c.push((K::InPan, 0.6)),
        15 if fr_nir(t) => c.push((K::FrNir, 0.8)),
        16 if it_fiscal_code(t) => c.push((K::ItFiscalCode, 0.9)),
        _ => {}
    }
    if t.len() >= 8
        && t[..2].iter().all(u8::is_ascii_uppercase)
        && let Some(checked) = vat(&t[..2], &t[2..])
    {
        c.push((K::EuVat, if checked { 0.8 } else { 0.3 }));
    }
    // Passport numbers: 6–9 uppercase letters and digits, only with a word naming one.
    let nd = t.iter().filter(|c| c.is_ascii_digit()).count();
    if (6..=9).contains(&t.len())
        && nd >= 1
        && t.iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        c.push((K::Passport, 0.15));
    }
    if !c.is_empty() {
        choose(det, b, s, e, &c, out);
    }
}

/// A Spanish DNI or NIE at `s`, as written: "12345678Z", "12345678-Z", "12.345.678-Z",
/// "12345678 Z", "X1234567L", "X-1234567-L". Pushes a finding and returns its end.
fn es_id_at(det: &PiiDetector, b: &[u8], s: usize, out: &mut Vec<Finding>) -> Option<usize> {
    if !det.wants(K::EsDni) {
        return None;
    }
    let mut t: Vec<u8> = Vec::with_capacity(9);
    let mut k = s;
    let nie = matches!(b.get(s), Some(b'X' | b'Y' | b'Z' | b'x' | b'y' | b'z'));
    if nie {
        t.push(b[s]);
        k += 1;
        if b.get(k) == Some(&b'-') {
            k += 1;
        }
    }
    let want = if nie { 7 } else { 8 };
    let mut digits = 0;
    while k < b.len() && digits < want {
        if b[k].is_ascii_digit() {
            t.push(b[k]);
            digits += 1;
            k += 1;
        } else if !nie && b[k] == b'.' && b.get(k + 1).is_some_and(u8::is_ascii_digit) && digits > 0
        {
            k += 1;
        } else {
            return None;
        }
    }
    if digits < want || b.get(k).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    if matches!(b.get(k), Some(b'-' | b' ')) && b.get(k + 1).is_some_and(u8::is_ascii_alphabetic) {
        k += 1;
    }
    let letter = *b.get(k).filter(|c| c.is_ascii_alphabetic())?;
    k += 1;
    if b.get(k).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    t.push(letter);
    if !es_dni_nie(&t) {
        return None;
    }
    let before = out.len();
    choose(
        det,
        b,
        s,
        k,
        &[(K::EsDni, if nie { 0.8 } else { 0.75 })],
        out,
    );
    (out.len() > before).then_some(k)
}

/// A French NIR at `s` written with spaces or Corsica's department letters:
/// "2 99 04 2A 017 758 25", "202122B100629 50". Pushes a finding and returns its end.
fn nir_at(det: &PiiDetector, b: &[u8], s: usize, out: &mut Vec<Finding>) -> Option<usize> {
    if !det.wants(K::FrNir) || !matches!(b[s], b'1'..=b'4' | b'7' | b'8') {
        return None;
    }
    let mut t: Vec<u8> = Vec::with_capacity(15);
    let mut k = s;
    while k < b.len() && t.len() < 15 {
        if b[k].is_ascii_alphanumeric() {
            t.push(b[k]);
            k += 1;
        } else if b[k] == b' ' && b.get(k + 1).is_some_and(u8::is_ascii_alphanumeric) {
            k += 1;
        } else {
            break;
        }
    }
    let letters = t.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if t.len() != 15
        || b.get(k).is_some_and(u8::is_ascii_alphanumeric)
        || letters == 0 && !b[s..k].contains(&b' ')
    {
        return None;
    }
    // Plain digit forms are the number scanner's; this takes the spaced and Corsican ones.
    if !fr_nir(&t) {
        return None;
    }
    let before = out.len();
    choose(det, b, s, k, &[(K::FrNir, 0.85)], out);
    (out.len() > before).then_some(k)
}

/// Identifiers written with spaces (or dots) after a letter prefix: "AB 12 34 56 C" (UK
/// NINO), "DE 136 695 976" / "FR 40 303265045" / "BE 0403.170.701" (VAT). `i` is the first digit; returns the end of what
/// was found.
fn spaced_ids(det: &PiiDetector, b: &[u8], i: usize, out: &mut Vec<Finding>) -> Option<usize> {
    if i < 3
        || b[i - 1] != b' '
        || !b[i - 2].is_ascii_uppercase()
        || !b[i - 3].is_ascii_uppercase()
        || (i > 3 && b[i - 4].is_ascii_alphanumeric())
    {
        return None;
    }
    let s = i - 3;
    // Collect up to 16 alphanumerics in groups separated by single spaces.
    let mut chars: Vec<u8> = vec![b[s], b[s + 1]];
    let mut ends: Vec<usize> = Vec::new();
    let mut k = i;
    while k < b.len() && chars.len() < 16 {
        if b[k].is_ascii_alphanumeric() {
            chars.push(b[k]);
            k += 1;
            if k >= b.len() || !b[k].is_ascii_alphanumeric() {
                ends.push(k);
            }
        } else if matches!(b[k], b' ' | b'.') && b.get(k + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            k += 1;
        } else {
            break;
        }
    }
    // Longest prefix ending at a group boundary that is an identifier.
    let mut best: Option<(usize, Scored)> = None;
    for &end in ends.iter().rev() {
        let n = 2 + b[i..end]
            .iter()
            .filter(|c| c.is_ascii_alphanumeric())
            .count();
        let t = &chars[..n];
        let found = if n == 9 && uk_nino(t) {
            Some((K::UkNino, 0.65))
        } else {
            vat(&t[..2], &t[2..]).map(|checked| (K::EuVat, if checked { 0.8 } else { 0.3 }))
        };
        if let Some(f) = found {
            best = Some((end, f));
            break;
        }
    }
    let (end, cand) = best?;
    let before = out.len();
    choose(det, b, s, end, &[cand], out);
    (out.len() > before).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_skip_equals_byte_scan() {
        let mut text: Vec<u8> = "Ünïcode prose, with (brackets) + 12 digits; /*:'&\x7f".into();
        text.extend((0u8..=255).rev());
        text.extend(b"abcdefghijklmnopqrstuvwxyz 9");
        for i in 0..=text.len() {
            let naive = (i..text.len())
                .find(|&k| (b'('..=b'9').contains(&text[k]))
                .unwrap_or(text.len());
            assert_eq!(next_candidate(&text, i), naive, "from {i}");
        }
    }
}
