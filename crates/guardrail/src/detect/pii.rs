//! Built-in PII detectors as one hand-written scanner: it looks only where a detector could
//! match (`@` for e-mail, digits for numbers, `:` for IPv6), so ordinary prose is skipped at
//! memchr speed, and every candidate is checked structurally (Luhn, mod-97, octet ranges, SSN
//! rules) rather than by shape alone.

use super::{EntityKind, Finding};

/// Finds e-mail addresses, phone numbers, payment card numbers, IBANs, US SSNs and IPv4/IPv6
/// addresses in `text`, in order, without overlaps.
pub fn scan_pii(text: &str) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    emails(b, &mut out);
    ipv6(text, &mut out);
    numbers(b, &mut out);
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
            out.push(Finding {
                kind: EntityKind::Email,
                start: s,
                end: e,
            });
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
            && cand.parse::<std::net::Ipv6Addr>().is_ok()
            && (s == 0 || !b[s - 1].is_ascii_alphanumeric())
        {
            out.push(Finding {
                kind: EntityKind::Ipv6,
                start: s,
                end: e,
            });
        }
        i = e.max(colon + 1);
    }
}

fn is_sep(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'(' | b')')
}

/// Digit-led candidates: numbers with separators, classified structurally.
#[allow(clippy::many_single_char_names)]
fn numbers(b: &[u8], out: &mut Vec<Finding>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let starts = c.is_ascii_digit()
            || ((c == b'+' || c == b'(') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if !starts {
            i = next_candidate(b, i + 1);
            continue;
        }
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() && c.is_ascii_digit() && !iban_head(b, i)) {
            // Inside a word: maybe an IBAN's check digits ("GB56..."), handled by iban_head.
            i += 1;
            continue;
        }
        if c.is_ascii_digit() && iban_head(b, i) {
            if let Some(end) = iban(b, i - 2) {
                out.push(Finding {
                    kind: EntityKind::Iban,
                    start: i - 2,
                    end,
                });
                i = end;
                continue;
            }
            i += 1;
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
            if seps > 0 && k < b.len() && b[k].is_ascii_digit() && !(seps == 2 && b[e] == b[e + 1])
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
            // "123abc": part of a word or code, not a number.
            i = e;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            continue;
        }
        if let Some(kind) = classify(&b[start..e], ext_end > e, || {
            phone_context(b, start, ext_end)
        }) {
            // A closing parenthesis belongs to "(555) 123"; a trailing one does not.
            out.push(Finding {
                kind,
                start,
                end: ext_end,
            });
        }
        i = ext_end.max(start + 1);
    }
}

/// The first position at or after `i` holding a byte in `(`..=`9` (digits, `+`, `(` and a few
/// punctuation marks), skipping eight bytes at a time where there is none: prose is mostly
/// letters and spaces, and this is what keeps the number scan near memory speed.
fn next_candidate(b: &[u8], mut i: usize) -> usize {
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
        if boundary && mod97(&chars[..n]) {
            return Some(end);
        }
    }
    None
}

fn mod97(iban: &[u8]) -> bool {
    if iban.len() < 15 || !iban[2].is_ascii_digit() || !iban[3].is_ascii_digit() {
        return false;
    }
    let mut r: u32 = 0;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    r == 1
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn card_prefix(d: &[u8]) -> bool {
    let n = |k: usize| -> u32 {
        d[..k.min(d.len())]
            .iter()
            .fold(0, |a, c| a * 10 + u32::from(c - b'0'))
    };
    let len = d.len();
    match d[0] {
        b'4' => matches!(len, 13 | 16 | 19), // Visa
        b'5' => (51..=55).contains(&n(2)) || n(2) == 50 || (56..=59).contains(&n(2)), // Mastercard, Maestro
        b'2' => (2221..=2720).contains(&n(4)) || n(4) == 2131, // Mastercard 2-series, JCB
        b'3' => matches!(n(2), 34 | 37 | 35 | 36 | 38 | 39 | 30), // Amex, JCB, Diners
        b'6' => true,                                          // Discover, UnionPay, Maestro
        b'1' => n(4) == 1800,                                  // JCB
        b'0' => len == 12,                                     // Maestro test ranges
        _ => false,
    }
}

/// Words that make a short, ambiguous number a phone number: within 48 bytes before it or 12
/// after it (case-insensitive).
const PHONE_WORDS: [&[u8]; 16] = [
    b"phone",
    b"call",
    b"tel",
    b"mobile",
    b"cell",
    b"fax",
    b"number",
    b"contact",
    b"reach",
    b"answer",
    b"registered",
    b"dial",
    b"office",
    b"desk",
    b"whatsapp",
    b"ring",
];

fn phone_context(b: &[u8], start: usize, end: usize) -> bool {
    // A phone word speaks of the number nearest to it: one with another number or a mask
    // (`[PHONE]`) in between is not its number. This keeps detection the same before and after
    // a redaction (which shortens the text and moves words closer to later numbers), and a
    // mask is never a phone word itself.
    let before = b[start.saturating_sub(48)..start].to_ascii_lowercase();
    let after = b[end..(end + 12).min(b.len())].to_ascii_lowercase();
    let clear = |gap: &[u8]| {
        !gap.iter()
            .any(|c| c.is_ascii_digit() || *c == b'[' || *c == b']')
    };
    PHONE_WORDS.iter().any(|k| {
        let word = |at: usize, w: &[u8]| at == 0 || w[at - 1] != b'[';
        memchr::memmem::find_iter(&before, k)
            .any(|at| word(at, &before) && clear(&before[at + k.len()..]))
            || memchr::memmem::find_iter(&after, k)
                .any(|at| word(at, &after) && clear(&after[..at]))
    })
}

fn classify(s: &[u8], has_ext: bool, context: impl Fn() -> bool) -> Option<EntityKind> {
    let digits: Vec<u8> = s.iter().copied().filter(u8::is_ascii_digit).collect();
    let nd = digits.len();
    let seps: Vec<u8> = s.iter().copied().filter(|c| !c.is_ascii_digit()).collect();
    let groups: Vec<usize> = s
        .split(|c| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(<[u8]>::len)
        .collect();
    // IPv4: four dot-separated octets.
    if seps.iter().all(|&c| c == b'.') && groups.len() == 4 && !has_ext {
        let ok = s.split(|&c| c == b'.').all(|g| {
            !g.is_empty()
                && g.len() <= 3
                && std::str::from_utf8(g)
                    .ok()
                    .and_then(|g| g.parse::<u16>().ok())
                    .is_some_and(|v| v <= 255)
                && !(g.len() > 1 && g[0] == b'0')
        });
        if ok {
            return Some(EntityKind::Ipv4);
        }
    }
    // US SSN: 3-2-4 with dashes (or spaces).
    if groups == [3, 2, 4] && (seps == b"--" || seps == b"  ") && !has_ext {
        let area = &digits[..3];
        let valid = area != b"000"
            && area != b"666"
            && area[0] != b'9'
            && &digits[3..5] != b"00"
            && &digits[5..] != b"0000";
        if valid {
            return Some(EntityKind::UsSsn);
        }
    }
    // Payment cards: 12–19 digits, grouped by spaces or dashes only, Luhn, known prefix.
    if (12..=19).contains(&nd)
        && seps.iter().all(|&c| c == b' ' || c == b'-')
        && !has_ext
        && luhn(&digits)
        && card_prefix(&digits)
    {
        return Some(EntityKind::CreditCard);
    }
    // Dates (and a date followed by its time) are not phones: yyyy-mm-dd, dd/mm/yyyy, ...
    if is_date(&groups, &seps, &digits) {
        return None;
    }
    // Phones: 7–15 digits; international (+), parenthesised area codes, separators, or a
    // plain run of 10–11 digits.
    let intl = s[0] == b'+' || (nd >= 11 && digits.starts_with(b"00"));
    let grouped = !seps.is_empty();
    if (7..=15).contains(&nd) && (intl || grouped || (10..=11).contains(&nd)) {
        // Two short groups with plain separators ("370 3911") are as often a house number and
        // a street number as a local phone number: those need a phone word nearby.
        let ambiguous = groups.len() == 2
            && nd < 10
            && !intl
            && !has_ext
            && !s.contains(&b'(')
            && !s.contains(&b'.');
        if ambiguous {
            return context().then_some(EntityKind::Phone);
        }
        if groups.len() >= 2 || intl || has_ext || (10..=11).contains(&nd) {
            return Some(EntityKind::Phone);
        }
    }
    None
}

fn is_date(groups: &[usize], seps: &[u8], d: &[u8]) -> bool {
    let num = |a: usize, n: usize| {
        d[a..a + n]
            .iter()
            .fold(0u32, |x, c| x * 10 + u32::from(c - b'0'))
    };
    let date_sep = |c: &u8| matches!(c, b'-' | b'/' | b'.');
    // yyyy-mm-dd, possibly followed by more (a time): "2000-04-16 11:34".
    if groups.len() > 3
        && groups[..3] == [4, 2, 2]
        && seps.len() >= 2
        && seps[..2].iter().all(date_sep)
    {
        return (1..=12).contains(&num(4, 2)) && (1..=31).contains(&num(6, 2));
    }
    match groups {
        [4, 2, 2] if seps.iter().all(|&c| c == b'-' || c == b'/' || c == b'.') => {
            (1..=12).contains(&num(4, 2)) && (1..=31).contains(&num(6, 2))
        }
        [1 | 2, 1 | 2, 4] if seps.iter().all(|&c| c == b'-' || c == b'/' || c == b'.') => {
            let y = num(d.len() - 4, 4);
            (1800..=2199).contains(&y)
        }
        _ => false,
    }
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

    fn kinds(t: &str) -> Vec<(EntityKind, &str)> {
        scan_pii(t)
            .into_iter()
            .map(|f| (f.kind, &t[f.start..f.end]))
            .collect()
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(
            kinds("write to UtaKortig@jourrapide.com."),
            [(EntityKind::Email, "UtaKortig@jourrapide.com")]
        );
        assert_eq!(
            kinds("card 4111-1111-1111-1111 ok"),
            [(EntityKind::CreditCard, "4111-1111-1111-1111")]
        );
        assert_eq!(
            kinds("IBAN GB56HXDO88167774656119."),
            [(EntityKind::Iban, "GB56HXDO88167774656119")]
        );
        assert_eq!(
            kinds("IBAN DE89 3704 0044 0532 0130 00 now"),
            [(EntityKind::Iban, "DE89 3704 0044 0532 0130 00")]
        );
        assert_eq!(
            kinds("ssn 460-89-9847"),
            [(EntityKind::UsSsn, "460-89-9847")]
        );
        assert_eq!(
            kinds("from 106.31.73.20 today"),
            [(EntityKind::Ipv4, "106.31.73.20")]
        );
        assert_eq!(
            kinds("host 2001:db8::8a2e:370:7334 up"),
            [(EntityKind::Ipv6, "2001:db8::8a2e:370:7334")]
        );
        assert_eq!(kinds("Phone: 451 5986"), [(EntityKind::Phone, "451 5986")]);
        for p in [
            "(898)666-3621x0135",
            "+447700 208 815",
            "07700 063 966",
            "03.93.92.16.85",
            "001-518-640-0854",
            "5403926876",
            "(37) 788-063",
        ] {
            assert_eq!(
                kinds(&format!("call {p} now")),
                [(EntityKind::Phone, p)],
                "{p}"
            );
        }
    }

    #[test]
    fn leaves_ordinary_numbers_alone() {
        for t in [
            "In 2023 we sold 1,500 units at 19.99 each.",
            "Meet on 2024-03-15 at 10:30, room 4.",
            "Version 3.2.1 of the API, 12 items, order 12345.",
            "The meeting is on 15/03/2024.",
            "Invalid card 4111 1111 1111 1112 here",
            "word123456789 and ABC-1234",
            "my new address is 224 4966 Bond Street",
            "When: 2000-04-16 11:34:35",
        ] {
            assert_eq!(kinds(t), [], "{t}");
        }
    }

    #[test]
    fn checks_are_structural() {
        assert!(mod97(b"GB82WEST12345698765432"));
        assert!(!mod97(b"GB82WEST12345698765433"));
        assert!(luhn(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
    }
}
