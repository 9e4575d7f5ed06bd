//! A small borrowed JSON scanner for the hottest stream chunks: it reads the few fields a
//! translation needs and skips the rest without building anything, where serde's derived
//! visitors spend most of a chunk's time on fields nobody reads (`id`, `object`, `created`,
//! `system_fingerprint`, `logprobs`, `obfuscation`, ...). It gives up (`None`) on anything it
//! does not expect — the caller then decodes with serde, which has the precise errors — so the
//! two always agree on what they both accept.

// The readers of optional values answer `None` to give up (serde then decodes the document)
// and `Some(None)` for a JSON `null`.
#![allow(clippy::option_option)]

use std::borrow::Cow;

/// How deep [`Scan::skip`] follows nested values before giving up.
const MAX_DEPTH: u32 = 128;

/// A cursor over a JSON document.
pub(crate) struct Scan<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, i: 0 }
    }

    fn b(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn ws(&mut self) {
        let b = self.b();
        // Compact JSON: the next byte is a token's (above the space) at once.
        while let Some(&c) = b.get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return;
            }
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b().get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// The end of the document (only whitespace left).
    pub(crate) fn end(&mut self) -> Option<()> {
        self.ws();
        (self.i == self.s.len()).then_some(())
    }

    /// Whether the next value is `null` (consumed if so).
    pub(crate) fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.b()[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// An object's members: `f` gets each key (keys with escapes give up) and must consume
    /// the value. A key seen twice gives up (serde's derived structs refuse duplicates).
    pub(crate) fn object(
        &mut self,
        mut f: impl FnMut(&'a str, &mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        // The keys seen so far, on the stack (more than 24 keys: give up, serde reads it).
        let mut seen: [&'a str; 24] = [""; 24];
        let mut n = 0;
        loop {
            let key = self.key()?;
            if n == seen.len() || seen[..n].contains(&key) {
                return None;
            }
            seen[n] = key;
            n += 1;
            self.eat(b':')?;
            f(key, self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array's elements: `f` is called at each element and must consume it.
    pub(crate) fn array(
        &mut self,
        mut f: impl FnMut(usize, &mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        let mut n = 0;
        loop {
            f(n, self)?;
            n += 1;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null` or an array read as its first element (by `f`), the rest skipped: stream chunks
    /// carry one choice or candidate (as [`crate::util::first`] reads them for serde).
    pub(crate) fn first<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.null() {
            return Some(None);
        }
        let mut f = Some(f);
        let mut out = None;
        self.array(|n, sc| match (n, f.take()) {
            (0, Some(f)) => {
                out = Some(f(sc)?);
                Some(())
            }
            _ => sc.skip(),
        })?;
        Some(out)
    }

    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let b = self.b();
        let start = self.i;
        let end = crate::util::next_special(b, start);
        if b.get(end) != Some(&b'"') {
            return None;
        }
        self.i = end + 1;
        self.s.get(start..end)
    }

    /// A string, unescaped (borrowed when it has no escapes).
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let b = self.b();
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            // One pass to the next quote or backslash, refusing control characters.
            let at = crate::util::next_special(b, run);
            if at == b.len() || b[at] < 0x20 {
                return None;
            }
            if b[at] == b'"' {
                self.i = at + 1;
                return Some(match owned {
                    None => Cow::Borrowed(self.s.get(start..at)?),
                    Some(mut o) => {
                        o.push_str(self.s.get(run..at)?);
                        Cow::Owned(o)
                    }
                });
            }
            let o =
                owned.get_or_insert_with(|| String::with_capacity(at - start + escaped_len(b, at)));
            o.push_str(self.s.get(run..at)?);
            let esc = *b.get(at + 1)?;
            let mut next = at + 2;
            match esc {
                b'"' => o.push('"'),
                b'\\' => o.push('\\'),
                b'/' => o.push('/'),
                b'b' => o.push('\u{8}'),
                b'f' => o.push('\u{c}'),
                b'n' => o.push('\n'),
                b'r' => o.push('\r'),
                b't' => o.push('\t'),
                b'u' => {
                    let hex = |k: usize| {
                        self.s
                            .get(k..k + 4)
                            .and_then(|h| u32::from_str_radix(h, 16).ok())
                    };
                    let hi = hex(at + 2)?;
                    next = at + 6;
                    let c = if (0xD800..0xDC00).contains(&hi) {
                        if b.get(next..next + 2) != Some(b"\\u") {
                            return None;
                        }
                        let lo = hex(next + 2)?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return None;
                        }
                        next += 6;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                    } else {
                        char::from_u32(hi)?
                    };
                    o.push(c);
                }
                _ => return None,
            }
            run = next;
        }
    }

    /// `null` or a string.
    pub(crate) fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// `null` or an unsigned integer.
    pub(crate) fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.ws();
        let b = self.b();
        let start = self.i;
        while self.i < b.len() && b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i == start
            || matches!(b.get(self.i), Some(b'.' | b'e' | b'E'))
            || (b[start] == b'0' && self.i - start > 1)
        {
            return None;
        }
        self.s[start..self.i].parse().ok().map(Some)
    }

    /// `null` or a number read as serde reads it into an `f64` (short integers directly, the
    /// rest by serde itself, so the two never round differently).
    pub(crate) fn opt_f64(&mut self) -> Option<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        let text = self.number_text()?;
        if text.len() <= 15 && text.bytes().all(|c| c.is_ascii_digit()) {
            return text.parse::<u64>().ok().map(|n| Some(n as f64));
        }
        serde_json::from_str::<f64>(text).ok().map(Some)
    }

    /// `null` or a signed integer (`-0` gives up: serde reads it as a float).
    pub(crate) fn opt_i64(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        let text = self.number_text()?;
        if text == "-0" || text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
            return None;
        }
        text.parse().ok().map(Some)
    }

    /// Whether the next value is an array (not consumed).
    pub(crate) fn at_array(&mut self) -> bool {
        self.peek() == Some(b'[')
    }

    fn number_text(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.i;
        if !matches!(self.b().get(start), Some(b'-' | b'0'..=b'9')) {
            return None;
        }
        self.number()?;
        self.s.get(start..self.i)
    }

    /// `null` or an array whose elements `f` reads (into a `Vec` with room for `room`).
    pub(crate) fn opt_list<T>(
        &mut self,
        room: usize,
        mut f: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Option<Vec<T>>> {
        if self.null() {
            return Some(None);
        }
        let mut items = Vec::with_capacity(room);
        self.array(|_, sc| {
            items.push(f(sc)?);
            Some(())
        })?;
        Some(Some(items))
    }

    /// `null` or a boolean.
    pub(crate) fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null() {
            return Some(None);
        }
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            _ => None,
        }
    }

    /// `null` or any value, as serde reads it into a [`serde_json::Value`] (a string or an
    /// unsigned integer read directly).
    pub(crate) fn opt_value(&mut self) -> Option<Option<serde_json::Value>> {
        if self.null() {
            return Some(None);
        }
        match self.peek()? {
            b'"' => {
                return self
                    .string()
                    .map(|s| Some(serde_json::Value::String(s.into_owned())));
            }
            b'0'..=b'9' => {
                let text = self.number_text()?;
                if text.bytes().all(|c| c.is_ascii_digit()) {
                    return text.parse::<u64>().ok().map(|n| Some(n.into()));
                }
                return serde_json::from_str(text).ok().map(Some);
            }
            _ => {}
        }
        serde_json::from_str(self.raw()?).ok().map(Some)
    }

    /// The next value's text, skipped (to hand a rarely read field to serde whole).
    pub(crate) fn raw(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.i;
        self.skip()?;
        self.s.get(start..self.i)
    }

    /// Skips any value.
    pub(crate) fn skip(&mut self) -> Option<()> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.skip_object(depth),
            b'[' => self.array(|_, s| s.skip_at(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Skips an object's members. Nothing is kept, so keys seen twice do not matter (serde
    /// ignores a skipped value's keys alike).
    fn skip_object(&mut self, depth: u32) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.key()?;
            self.eat(b':')?;
            self.skip_at(depth + 1)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Skips a string, checking its escapes without unescaping it (a `\u` escape is read
    /// whole, as [`Self::string`] reads it).
    fn skip_string(&mut self) -> Option<()> {
        let start = self.i;
        self.eat(b'"')?;
        let b = self.b();
        let mut at = self.i;
        loop {
            at = crate::util::next_special(b, at);
            match *b.get(at)? {
                b'"' => {
                    self.i = at + 1;
                    return Some(());
                }
                b'\\' => match *b.get(at + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                    b'u' => {
                        self.i = start;
                        return self.string().map(drop);
                    }
                    _ => return None,
                },
                // A control character.
                _ => return None,
            }
        }
    }

    /// A number as JSON writes it: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let b = self.b();
        let digits = |i: &mut usize| {
            let s = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            *i > s
        };
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        if b.get(i) == Some(&b'0') {
            i += 1;
        } else if !digits(&mut i) {
            return None;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        self.i = i;
        Some(())
    }

    fn literal(&mut self, lit: &[u8]) -> Option<()> {
        self.b()[self.i..]
            .starts_with(lit)
            .then(|| self.i += lit.len())
    }
}

/// The length of the rest of a string from its first escape at `at` to its closing quote:
/// room enough for its unescaped text (an escape is never shorter than what it stands for).
fn escaped_len(b: &[u8], at: usize) -> usize {
    let mut j = at;
    loop {
        match b.get(j) {
            Some(b'\\') => j = crate::util::next_special(b, j.saturating_add(2)),
            Some(b'"') | None => return j - at,
            Some(_) => j = crate::util::next_special(b, j.saturating_add(1)),
        }
    }
}

/// Asserts that `$ty::scan` and serde agree on every item of `$items` (JSON texts) the
/// scanner accepts, and that it accepts at least 70 % of them.
#[cfg(test)]
macro_rules! assert_scanner_agrees {
    ($ty:ident, $items:expr) => {{
        let items: &[String] = &$items;
        let mut fast = 0;
        for item in items {
            let serde: Option<$ty<'_>> = crate::util::from_json(item.as_bytes()).ok();
            if let Some(scanned) = $ty::scan(item.as_bytes()) {
                fast += 1;
                assert_eq!(Some(scanned), serde, "{item}");
            }
        }
        assert!(
            fast * 10 >= items.len() * 7,
            "{fast} of {} scanned",
            items.len()
        );
    }};
}
#[cfg(test)]
pub(crate) use assert_scanner_agrees;
