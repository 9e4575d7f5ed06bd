//! Redaction inside JSON text (tool-call arguments, Anthropic `partial_json` fragments): a mask
//! must land inside a string value, never split an escape sequence, and never turn a bare
//! number into invalid JSON, so that the redacted text is still valid JSON when the original was.

use std::borrow::Cow;

use crate::check::Hit;

/// The lexical state of a JSON text at some byte offset (enough to classify the next byte).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct JsonState {
    in_str: bool,
    backslash: bool,
    hex: u8,
}

/// What a byte of JSON text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Inside a string (a backslash starting an escape included).
    Str,
    /// The rest of an escape sequence (the byte after `\`, the four hex digits of `\u`).
    Cont,
    /// A quote opening or closing a string.
    Quote,
    /// Structure or whitespace outside strings.
    Struct,
    /// A bare scalar outside strings (numbers, `true`, ...).
    Scalar,
}

impl JsonState {
    /// Classifies `b` and moves past it.
    pub(crate) fn step(&mut self, b: u8) -> Class {
        if self.backslash {
            self.backslash = false;
            if b.is_ascii() {
                if b == b'u' {
                    self.hex = 4;
                }
                return Class::Cont;
            }
            return Class::Str;
        }
        if self.hex > 0 {
            if b.is_ascii_hexdigit() {
                self.hex -= 1;
                return Class::Cont;
            }
            self.hex = 0;
        }
        if self.in_str {
            match b {
                b'\\' => {
                    self.backslash = true;
                    Class::Str
                }
                b'"' => {
                    self.in_str = false;
                    Class::Quote
                }
                _ => Class::Str,
            }
        } else {
            match b {
                b'"' => {
                    self.in_str = true;
                    Class::Quote
                }
                b'{' | b'}' | b'[' | b']' | b',' | b':' => Class::Struct,
                b if b.is_ascii_whitespace() => Class::Struct,
                _ => Class::Scalar,
            }
        }
    }

    /// Moves past `bytes`.
    pub(crate) fn advance(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.step(b);
        }
    }
}

/// `s` escaped for the inside of a JSON string (without the quotes).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let n = c as u32 as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[(n >> 4) & 0xf]));
                out.push(char::from(HEX[n & 0xf]));
            }
            c => out.push(c),
        }
    }
    out
}

/// Makes `hits` (ordered, non-overlapping, offsets into `text`) safe to apply to JSON text that
/// starts in `state`: each is widened so that it neither starts nor ends inside an escape
/// sequence or a bare scalar (never below `lo`: an escape begun before it is kept instead), and
/// its mask becomes a replacement that keeps the JSON structure: the escaped mask for each
/// piece inside a string, a quoted mask for a bare scalar, quotes and structure kept as they are.
pub(crate) fn json_safe(text: &str, state: JsonState, hits: &mut Vec<Hit>, lo: usize) {
    if hits.is_empty() {
        return;
    }
    let b = text.as_bytes();
    let mut st = state;
    let classes: Vec<Class> = b.iter().map(|&c| st.step(c)).collect();
    let class = |i: usize| classes.get(i).copied().unwrap_or(Class::Struct);
    let lo = lo.min(b.len());
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits.drain(..) {
        let (mut s, mut e) = (h.start.min(b.len()), h.end.min(b.len()));
        while s > lo && class(s) == Class::Cont {
            s -= 1;
        }
        while s < e && class(s) == Class::Cont {
            s += 1; // an escape begun before `lo` stays whole
        }
        while s > lo && class(s) == Class::Scalar && class(s - 1) == Class::Scalar {
            s -= 1;
        }
        while e < b.len() && matches!(class(e), Class::Cont) {
            e += 1;
        }
        if e > s && class(e - 1) == Class::Scalar {
            while e < b.len() && class(e) == Class::Scalar {
                e += 1;
            }
        }
        while s > 0 && !text.is_char_boundary(s) {
            s -= 1;
        }
        while e < b.len() && !text.is_char_boundary(e) {
            e += 1;
        }
        if s >= e {
            continue;
        }
        match out.last_mut() {
            Some(prev) if s < prev.end => prev.end = prev.end.max(e),
            _ => out.push(Hit {
                start: s,
                end: e,
                label: h.label,
                mask: h.mask,
            }),
        }
    }
    for h in &mut out {
        let mask = escape(&h.mask);
        let mut rep = String::with_capacity(mask.len() + 2);
        let mut i = h.start;
        while i < h.end {
            let c = class(i);
            let mut j = i + 1;
            match c {
                Class::Str | Class::Cont => {
                    while j < h.end && matches!(class(j), Class::Str | Class::Cont) {
                        j += 1;
                    }
                    rep.push_str(&mask);
                }
                Class::Scalar => {
                    while j < h.end && class(j) == Class::Scalar {
                        j += 1;
                    }
                    rep.push('"');
                    rep.push_str(&mask);
                    rep.push('"');
                }
                Class::Quote | Class::Struct => rep.push(char::from(b[i])),
            }
            i = j;
        }
        h.mask = Cow::Owned(rep);
    }
    *hits = out;
}

/// Whether `text` is a JSON object or array (tool-call arguments; a bare string or number is
/// treated as plain text).
pub(crate) fn is_json(text: &str) -> bool {
    matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(text: &str, needle: &str, mask: &'static str) -> Hit {
        let start = text.find(needle).unwrap_or(0);
        Hit {
            start,
            end: start + needle.len(),
            label: Cow::Borrowed("x"),
            mask: Cow::Borrowed(mask),
        }
    }

    fn apply(text: &str, needle: &str, mask: &'static str) -> String {
        let mut hits = vec![hit(text, needle, mask)];
        json_safe(text, JsonState::default(), &mut hits, 0);
        crate::check::redact(text, &hits)
    }

    #[test]
    fn masks_stay_inside_strings_and_the_json_stays_valid() {
        let cases = [
            (
                r#"{"to":"jane@example.com"}"#,
                "jane@example.com",
                "[EMAIL]",
            ),
            (
                r#"{"to":"a\njane@example.com"}"#,
                "njane@example.com",
                "[EMAIL]",
            ),
            (r#"{"to":"\u0041B"}"#, "0041B", "[X]"),
            (r#"{"ssn":123456789,"x":1}"#, "3456", "[SSN]"),
            (r#"{"a":"x", "b":"y"}"#, "x\", \"y", "[Q\"M]"),
            (r#"{"a":"x"}"#, "x", "bad\\mask\n"),
        ];
        for (text, needle, mask) in cases {
            let out = apply(text, needle, mask);
            assert!(is_json(&out), "{text} → {out}");
            assert!(!out.contains(needle) || needle == "x", "{out}");
        }
    }
}
