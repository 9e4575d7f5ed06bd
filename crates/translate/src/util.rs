//! Helpers shared by the protocol modules.

use std::borrow::Cow;

use serde_json::{Map, Value, value::RawValue};

use crate::{Error, Options, Protocol, ir::CacheControl};

pub(crate) type Obj = Map<String, Value>;

/// Parses a request body into an object.
pub(crate) fn parse_request(body: &[u8], opts: &Options) -> Result<Obj, Error> {
    if body.len() > opts.max_body_len {
        return Err(Error::invalid(
            "",
            format!("the body exceeds {} bytes", opts.max_body_len),
        ));
    }
    match from_json::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Error::invalid("", "the body is not a JSON object")),
        Err(e) => Err(Error::invalid(
            "",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// Parses an upstream body into an object.
pub(crate) fn parse_upstream(body: &[u8], opts: &Options) -> Result<Obj, Error> {
    if body.len() > opts.max_body_len {
        return Err(Error::Upstream(format!(
            "the body exceeds {} bytes",
            opts.max_body_len
        )));
    }
    match from_json::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Error::Upstream("the body is not a JSON object".into())),
        Err(e) => Err(Error::Upstream(format!("the body is not valid JSON: {e}"))),
    }
}

pub(crate) fn to_vec(v: &Value) -> Vec<u8> {
    // Serializing a Value into a Vec cannot fail (keys are strings).
    crate::json_out::to_vec(v).unwrap_or_default()
}

pub(crate) fn str_of<'a>(v: &'a Value, param: &str) -> Result<&'a str, Error> {
    v.as_str()
        .ok_or_else(|| Error::invalid(param, "expected a string"))
}

pub(crate) fn opt_str(o: &Obj, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(crate) fn arr<'a>(v: &'a Value, param: &str) -> Result<&'a Vec<Value>, Error> {
    v.as_array()
        .ok_or_else(|| Error::invalid(param, "expected an array"))
}

pub(crate) fn obj<'a>(v: &'a Value, param: &str) -> Result<&'a Obj, Error> {
    v.as_object()
        .ok_or_else(|| Error::invalid(param, "expected an object"))
}

pub(crate) fn f64_of(v: &Value, param: &str) -> Result<Option<f64>, Error> {
    if v.is_null() {
        return Ok(None);
    }
    v.as_f64()
        .map(Some)
        .ok_or_else(|| Error::invalid(param, "expected a number"))
}

pub(crate) fn u32_of(v: &Value, param: &str) -> Result<Option<u32>, Error> {
    if v.is_null() {
        return Ok(None);
    }
    v.as_u64()
        .map(|n| Some(n.min(u64::from(u32::MAX)) as u32))
        .ok_or_else(|| Error::invalid(param, "expected a non-negative integer"))
}

pub(crate) fn bool_of(v: &Value, param: &str) -> Result<Option<bool>, Error> {
    if v.is_null() {
        return Ok(None);
    }
    v.as_bool()
        .map(Some)
        .ok_or_else(|| Error::invalid(param, "expected a boolean"))
}

/// A usage object's counters by name: a parsed [`Value`], or a typed fast path's few fields
/// (a response's `usage` read into a map cost a tenth of translating the answer).
pub(crate) trait Fields {
    /// The field named `k`.
    fn field(&self, k: &str) -> Option<&Value>;
}

impl Fields for Value {
    fn field(&self, k: &str) -> Option<&Value> {
        self.get(k)
    }
}

impl<T: Fields + ?Sized> Fields for Box<T> {
    fn field(&self, k: &str) -> Option<&Value> {
        (**self).field(k)
    }
}

/// A typed usage object: the named counters kept (as [`Value`]s, `null` included, read as the
/// map's would be), every other field skipped unread. Only a JSON object is one; a repeated
/// counter is an error (the fast path then gives up and the general decoder reads the body).
macro_rules! usage_fields {
    ($name:ident { $($key:literal),* $(,)? }) => {
        struct $name([Option<serde_json::Value>; [$($key),*].len()]);

        impl $name {
            const KEYS: &'static [&'static str] = &[$($key),*];

            /// Reads the counters with the borrowed scanner (the others skipped); `None`
            /// gives up.
            #[allow(dead_code)]
            fn scan(sc: &mut crate::json_scan::Scan<'_>) -> Option<Self> {
                let mut vals: [Option<serde_json::Value>; [$($key),*].len()] = Default::default();
                sc.object(|k, sc| {
                    match Self::KEYS.iter().position(|key| *key == k) {
                        Some(i) => vals[i] = Some(sc.opt_value()?.unwrap_or(serde_json::Value::Null)),
                        None => sc.skip()?,
                    }
                    Some(())
                })?;
                Some($name(vals))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::util::read_fields(d, Self::KEYS).map($name)
            }
        }

        impl crate::util::Fields for $name {
            fn field(&self, k: &str) -> Option<&serde_json::Value> {
                Self::KEYS
                    .iter()
                    .position(|key| *key == k)
                    .and_then(|i| self.0[i].as_ref())
            }
        }
    };
}
pub(crate) use usage_fields;

/// Reads the members of a JSON object named in `keys` (in their order), skipping the others.
pub(crate) fn read_fields<'de, D: serde::Deserializer<'de>, const N: usize>(
    d: D,
    keys: &'static [&'static str],
) -> Result<[Option<Value>; N], D::Error> {
    use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    use std::fmt;

    struct Pick(&'static [&'static str]);
    impl<'de> DeserializeSeed<'de> for Pick {
        type Value = Option<usize>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for Pick {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<usize>, E> {
            Ok(self.0.iter().position(|k| *k == s))
        }
    }
    struct Fields<const N: usize>(&'static [&'static str]);
    impl<'de, const N: usize> Visitor<'de> for Fields<N> {
        type Value = [Option<Value>; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a usage object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut vals: [Option<Value>; N] = std::array::from_fn(|_| None);
            while let Some(at) = map.next_key_seed(Pick(self.0))? {
                match at.and_then(|i| vals.get_mut(i)) {
                    Some(slot) if slot.is_some() => {
                        return Err(de::Error::custom("a usage counter given twice"));
                    }
                    Some(slot) => *slot = Some(map.next_value()?),
                    None => drop(map.next_value::<IgnoredAny>()?),
                }
            }
            Ok(vals)
        }
    }
    d.deserialize_map(Fields::<N>(keys))
}

/// A token count from an upstream: a non-negative integer, else 0 (never trusted, never panics).
pub(crate) fn tokens(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_u64).unwrap_or(0)
}

/// Anthropic's `cache_control`.
pub(crate) fn decode_cache_control(
    v: Option<&Value>,
    param: &str,
) -> Result<Option<CacheControl>, Error> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => {
            let ty = o.get("type").and_then(Value::as_str).unwrap_or("ephemeral");
            if ty != "ephemeral" {
                return Err(Error::invalid(
                    param,
                    "cache_control.type must be \"ephemeral\"",
                ));
            }
            Ok(Some(CacheControl {
                ttl: opt_str(o, "ttl"),
            }))
        }
        Some(_) => Err(Error::invalid(param, "expected an object")),
    }
}

/// Refuses `param` for `target` unless the caller accepts its lossy mapping. `Ok(())` means
/// "drop it".
pub(crate) fn lossy(
    opts: &Options,
    param: &str,
    target: Protocol,
    reason: &'static str,
) -> Result<(), Error> {
    if opts.allows(param) {
        Ok(())
    } else {
        Err(Error::unsupported(param, target, reason))
    }
}

/// The root of a param path (`tools[0].strict` → `strict`'s owner is checked by name).
pub(crate) fn extra_fields(
    req: &crate::ChatRequest,
    target: Protocol,
    opts: &Options,
    out: &mut Obj,
) -> Result<(), Error> {
    for (k, v) in &req.extra {
        if req.extra_from == Some(target) {
            out.insert(k.clone(), v.clone());
        } else {
            lossy(opts, k, target, "no such field in the target protocol")?;
        }
    }
    Ok(())
}

/// Deserializes an optional JSON value as its text, borrowed from the input and checked by
/// serde. Use with `#[serde(borrow, default, deserialize_with = ..)]`.
pub(crate) fn opt_raw_text<'de: 'a, 'a, D>(d: D) -> Result<Option<&'a str>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    Option::<&'de RawValue>::deserialize(d).map(|r| r.map(RawValue::get))
}

/// Deserializes an optional string borrowed from the input when it has no escapes. Serde
/// borrows a `Cow<str>` field only when it is exactly that type: in an `Option` it always
/// copies (serde-rs/serde#1497). Use with `#[serde(borrow, default, deserialize_with = ..)]`.
pub(crate) fn opt_cow<'de: 'a, 'a, D>(d: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(S).map(Some)
        }
    }
    struct S;
    impl<'de> serde::de::Visitor<'de> for S {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }
    d.deserialize_option(V)
}

/// Checks tool-call arguments (a JSON text) are an object and gives them back as written
/// (checked, not rebuilt); empty means `{}`. `param` names them in an error (made only then).
pub(crate) fn args_object(args: &str, param: impl FnOnce() -> String) -> Result<&RawValue, Error> {
    let trimmed = args.trim_matches([' ', '\t', '\n', '\r']);
    if trimmed.is_empty() {
        return Ok(empty_object());
    }
    match serde_json::from_str::<&RawValue>(trimmed) {
        Ok(v) if trimmed.starts_with('{') => Ok(v),
        Ok(_) => Err(Error::invalid(
            param(),
            "tool-call arguments must be a JSON object",
        )),
        Err(_) => Err(Error::invalid(
            param(),
            "tool-call arguments are not valid JSON",
        )),
    }
}

/// Tool-call arguments from a provider's JSON value: its text without the whitespace between
/// tokens, keys in the order the provider wrote them (nothing is parsed into a tree); `{}` when
/// absent.
#[cfg(test)]
pub(crate) fn args_text(raw: Option<&RawValue>) -> String {
    args_text_of(raw.map(RawValue::get))
}

/// [`args_text`] of a JSON text already checked (by serde or [`crate::json_scan`]).
pub(crate) fn args_text_of(raw: Option<&str>) -> String {
    let Some(raw) = raw else {
        return "{}".to_owned();
    };
    let text = raw.as_bytes();
    if !text
        .iter()
        .any(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        return raw.to_owned();
    }
    let mut out = Vec::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in text {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            in_string = b == b'"';
            out.push(b);
        }
    }
    // Whitespace bytes removed from valid UTF-8 between tokens leave valid UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The text of a tool result whose target holds text only (the parts joined; borrowed when
/// there is one); any other part is refused, naming `param` and saying `why`.
pub(crate) fn tool_result_text<'a>(
    content: &'a [crate::ir::Part],
    param: impl FnOnce() -> String,
    target: Protocol,
    why: &'static str,
) -> Result<std::borrow::Cow<'a, str>, Error> {
    use crate::ir::Part;
    if let [Part::Text { text, .. }] = content {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let mut joined = String::new();
    for c in content {
        match c {
            Part::Text { text, .. } => joined.push_str(text),
            _ => return Err(Error::unsupported(param(), target, why)),
        }
    }
    Ok(std::borrow::Cow::Owned(joined))
}

/// A value built from parts that may hold raw JSON texts from upstream (tool-call arguments
/// kept as written): a text no `Value` can hold (a number out of range, a lone surrogate) is
/// the upstream's error here, never a panic in `json!`.
pub(crate) fn to_value<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Upstream(format!("tool-call arguments: {e}")))
}

/// `{}`, as a raw value.
fn empty_object() -> &'static RawValue {
    // A constant text that parses.
    serde_json::from_str("{}").unwrap_or(RawValue::NULL)
}

/// `data:` URL → (media type, base64 data).
pub(crate) fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media.to_owned(), data.to_owned()))
}

/// A tool-call id acceptable to every protocol (`[A-Za-z0-9_-]`, at most 64 bytes).
pub(crate) fn sanitize_id(s: &str) -> String {
    // Only ASCII bytes are kept (every byte of a wider character is above 0x7f), so the bytes
    // are UTF-8.
    let kept: Vec<u8> = s
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        .take(64)
        .collect();
    String::from_utf8(kept).unwrap_or_default()
}

/// Consecutive messages of one role: one turn for the protocols that want turns to alternate.
pub(crate) struct Turn<'a> {
    /// The role of every message in the turn.
    pub(crate) role: crate::ir::Role,
    msgs: &'a [crate::ir::Message],
}

impl<'a> Turn<'a> {
    /// The parts of the turn's messages, in order.
    pub(crate) fn parts(&self) -> impl Iterator<Item = &'a crate::ir::Part> + use<'a> {
        self.msgs.iter().flat_map(|m| m.content.iter())
    }

    /// How many parts the turn holds.
    pub(crate) fn len(&self) -> usize {
        self.msgs.iter().map(|m| m.content.len()).sum()
    }
}

/// Merges consecutive messages of the same role (Anthropic and Bedrock want turns to alternate),
/// without copying anything.
pub(crate) fn merged_turns(msgs: &[crate::ir::Message]) -> impl Iterator<Item = Turn<'_>> {
    let mut rest = msgs;
    std::iter::from_fn(move || {
        let role = rest.first()?.role;
        let n = rest.iter().take_while(|m| m.role == role).count();
        let (msgs, tail) = rest.split_at(n);
        rest = tail;
        Some(Turn { role, msgs })
    })
}

/// Writes `s` as a JSON string (quotes included), byte for byte as `serde_json` does: `"`,
/// `\` and control characters escaped (`\b \t \n \f \r`, others as `\u00XX`), nothing else.
/// The hot stream events are written with this instead of through serde: most of their cost
/// was serde_json escaping the constant keys one byte at a time.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    let first = next_special(b, 0);
    if first == b.len() && push_quoted_short(out, b, b"") {
        return;
    }
    out.reserve(b.len() + 2);
    out.push(b'"');
    // `start`: the first byte not yet copied (the search for the next byte to escape goes on
    // from there); `hit`: that byte.
    let mut start = 0;
    let mut hit = first;
    while hit < b.len() {
        out.extend_from_slice(&b[start..hit]);
        let c = b[hit];
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
        }
        start = hit + 1;
        hit = next_special(b, start);
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Appends `"s"` and `tail` (two bytes at most) when `s` is 16 bytes or shorter, with fixed-size
/// stores instead of a call to copy a few bytes (a short key or value costs mostly that call);
/// `false`, writing nothing, for a longer `s`. `s` must need no escaping.
#[inline]
pub(crate) fn push_quoted_short(out: &mut Vec<u8>, s: &[u8], tail: &[u8]) -> bool {
    let n = s.len();
    if n > 16 || tail.len() > 2 {
        return false;
    }
    let mut buf = [0u8; 24];
    buf[0] = b'"';
    if let (Some(head), Some(last)) = (s.get(..8), n.checked_sub(8).and_then(|k| s.get(k..))) {
        // Eight bytes from the start and eight from the end, overlapping when shorter than 16.
        buf[1..9].copy_from_slice(head);
        buf[(n - 7)..=n].copy_from_slice(last);
    } else {
        buf[1..9].copy_from_slice(&load_short(s).to_le_bytes());
    }
    buf[n + 1] = b'"';
    let mut end = n + 2;
    for &t in tail {
        buf[end] = t;
        end += 1;
    }
    let len = out.len();
    out.extend_from_slice(&buf);
    out.truncate(len + end);
    true
}

/// The index of the first byte at or after `from` that a JSON string must escape (`"`, `\\` or
/// a control byte), or `b.len()`: eight bytes at a time; the last few bytes as one more word
/// (the string's last eight bytes, those already looked at replaced by a harmless one, or the
/// short string padded), not byte by byte.
#[inline]
pub(crate) fn next_special(b: &[u8], from: usize) -> usize {
    const PAD: u64 = 0x6161_6161_6161_6161; // "aaaaaaaa"
    let mut i = from;
    while let Some(word) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let m = escape_mask(u64::from_le_bytes(w));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = b.len().saturating_sub(i);
    if rest == 0 {
        return b.len();
    }
    // `rest` is 1..=7: the bytes before `i` in the word (the low ones) become padding, so a
    // flagged byte already written cannot set a spurious flag above it.
    let (base, w) = if let Some(last) = b
        .len()
        .checked_sub(8)
        .and_then(|s| b.get(s..).map(|t| (s, t)))
    {
        let mut w = [0u8; 8];
        w.copy_from_slice(last.1);
        let keep = 8 * rest as u32;
        let low = 64 - keep;
        let w = u64::from_le_bytes(w);
        (last.0, (w >> low << low) | (PAD & ((1u64 << low) - 1)))
    } else {
        let tail = b.get(i..).unwrap_or_default();
        (i, load_short(tail) | (PAD << (8 * rest as u32)))
    };
    let m = escape_mask(w);
    if m == 0 {
        b.len()
    } else {
        base + (m.trailing_zeros() / 8) as usize
    }
}

/// The bytes of `t` (fewer than eight) as the low bytes of a little-endian word, the others
/// zero: two overlapping loads, no copy loop.
#[inline]
fn load_short(t: &[u8]) -> u64 {
    let n = t.len();
    let word = |at: usize, len: usize| -> u64 {
        let mut w = [0u8; 4];
        if let (Some(dst), Some(src)) = (w.get_mut(..len), t.get(at..at + len)) {
            dst.copy_from_slice(src);
        }
        u64::from(u32::from_le_bytes(w))
    };
    match n {
        4..=7 => word(0, 4) | word(n - 4, 4) << (8 * (n - 4)),
        2..=3 => word(0, 2) | word(n - 2, 2) << (8 * (n - 2)),
        1 => word(0, 1),
        _ => 0,
    }
}

/// One flag (bit 7 of the byte) per byte of `w` that JSON must escape: `"`, `\` or a control
/// byte. A flag can be set spuriously only above a byte truly flagged (the borrow of the
/// subtraction), so the lowest flag is always a true one.
#[inline]
fn escape_mask(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let ctl = w.wrapping_sub(LO * 0x20) & !w & HI;
    zero(w ^ (LO * u64::from(b'"'))) | zero(w ^ (LO * u64::from(b'\\'))) | ctl
}

/// Writes an unsigned integer in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// `serde_json::from_slice`, faster: the input's UTF-8 is checked once, whole, instead of one
/// string at a time (serde_json's `from_str` trusts a `str`'s strings). Invalid UTF-8 gets
/// serde_json's own error.
pub(crate) fn from_json<'a, T: serde::Deserialize<'a>>(data: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(data) {
        Ok(s) => serde_json::from_str(s),
        Err(_) => serde_json::from_slice(data),
    }
}

/// Deserializes a JSON array into its first element (the rest is skipped, not allocated):
/// stream chunks carry one choice or candidate, and only the first is translated.
pub(crate) fn first<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct First<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for First<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let v = seq.next_element::<T>()?;
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(v)
        }
    }
    d.deserialize_any(First(std::marker::PhantomData))
}

#[cfg(test)]
mod writer_tests {
    use super::*;

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii text that is longer than eight bytes".into(),
            "quote \" backslash \\ slash / tab \t nl \n cr \r bs \u{8} ff \u{c}".into(),
            "\u{0}\u{1}\u{1f}\u{7f} é 漢字 😀 \"\"\"\"\"\"\"\"\"".into(),
            "12345678\"".into(),
            "1234567\\".into(),
            "        \u{1f}       ".into(),
        ];
        for n in 0..=20 {
            cases.push("abcdefghijklmnopqrstu"[..n].to_owned());
            cases.push("é漢字😀abcdefghijklmnopqrstu".chars().take(n).collect());
        }
        for c in 0u8..=127 {
            cases.push(format!("abcdefg{}hijklmnop", c as char));
            cases.push(format!("{}", c as char));
        }
        // A byte to escape at every position of a word and of the tail, and two in one word.
        for at in 0..17 {
            for c in ['"', '\\', '\n', '\u{1}'] {
                let mut s: String = "abcdefghijklmnopq".into();
                s.replace_range(at..=at, &c.to_string());
                cases.push(s.clone());
                s.replace_range(16..=16, "\"");
                cases.push(s);
            }
        }
        for s in cases {
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            let want = serde_json::to_vec(&s).expect("serializes");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&want),
                "{s:?}"
            );
        }
    }

    /// The word-at-a-time search finds what a byte-by-byte one finds, from every start, in
    /// strings of every short length mixing bytes to escape with their neighbours in value
    /// (where a borrow between bytes could flag a byte falsely).
    #[test]
    fn the_search_for_a_byte_to_escape_is_exact() {
        let alphabet = [
            b'a', b'"', b'#', b'\\', b']', 0x01, 0x1f, 0x20, 0x21, 0x7f, 0xc3, 0xa9,
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..40_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (seed >> 59) as usize + (seed >> 58 & 1) as usize; // 0..=32
            let b: Vec<u8> = (0..len)
                .map(|k| {
                    let r = seed.rotate_left(7 * k as u32 + 3) ^ (k as u64).wrapping_mul(0x2545);
                    if r.is_multiple_of(3) {
                        alphabet[(r as usize >> 4) % alphabet.len()]
                    } else {
                        b'a' + (r % 26) as u8
                    }
                })
                .collect();
            for from in 0..=len {
                let naive = b
                    .iter()
                    .skip(from)
                    .position(|&c| c < 0x20 || c == b'"' || c == b'\\')
                    .map_or(len, |p| from + p);
                assert_eq!(next_special(&b, from), naive, "{b:?} from {from}");
            }
        }
    }

    #[test]
    fn short_quoted_strings_with_a_tail() {
        let text = "abcdefghijklmnopq";
        for n in 0..=17 {
            for tail in [&b""[..], b":", b"\":"] {
                let mut out = b"x".to_vec();
                let done = push_quoted_short(&mut out, &text.as_bytes()[..n], tail);
                assert_eq!(done, n <= 16 && tail.len() <= 2);
                if done {
                    let want = format!("x\"{}\"{}", &text[..n], String::from_utf8_lossy(tail));
                    assert_eq!(String::from_utf8_lossy(&out), want);
                } else {
                    assert_eq!(out, b"x");
                }
            }
        }
    }

    /// An optional string is borrowed when it has no escapes, copied when it has, `None` for
    /// `null` or a missing field; another type is an error; an alias reads the same.
    #[test]
    fn optional_strings_borrow_from_the_input() {
        use std::borrow::Cow;
        #[derive(serde::Deserialize)]
        struct S<'a> {
            #[serde(borrow, deserialize_with = "opt_cow", default, alias = "other")]
            v: Option<Cow<'a, str>>,
        }
        let read = |t: &'static str| serde_json::from_str::<S<'static>>(t).map(|s| s.v);
        assert!(matches!(
            read(r#"{"v":"plain"}"#),
            Ok(Some(Cow::Borrowed("plain")))
        ));
        assert!(matches!(
            read(r#"{"other":"plain"}"#),
            Ok(Some(Cow::Borrowed("plain")))
        ));
        match read(r#"{"v":"a\"b"}"#) {
            Ok(Some(Cow::Owned(s))) => assert_eq!(s, "a\"b"),
            other => panic!("{:?}", other.map(|v| v.map(Cow::into_owned))),
        }
        assert!(matches!(read(r#"{"v":null}"#), Ok(None)));
        assert!(matches!(read("{}"), Ok(None)));
        assert!(read(r#"{"v":1}"#).is_err());
        assert!(read(r#"{"v":["x"]}"#).is_err());
    }

    #[test]
    fn integers() {
        for n in [0, 1, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn arguments_keep_their_order_and_lose_only_whitespace_between_tokens() {
        fn raw(t: &str) -> &RawValue {
            serde_json::from_str(t).expect("valid")
        }
        assert_eq!(args_text(None), "{}");
        assert_eq!(args_text(Some(raw(r#"{"b":1,"a":2}"#))), r#"{"b":1,"a":2}"#);
        assert_eq!(
            args_text(Some(raw(
                "{ \"b\" : [1, 2],\n \"a\" : \"x y \\\" z\\\\\" }"
            ))),
            r#"{"b":[1,2],"a":"x y \" z\\"}"#
        );
        // Whatever the spacing, the arguments parse to what the provider sent.
        let spaced = "{\n  \"city\": \"Paris, France\",\t\"n\": 1.50 }";
        let got: Value = serde_json::from_str(&args_text(Some(raw(spaced)))).expect("json");
        assert_eq!(got, serde_json::from_str::<Value>(spaced).expect("json"));
    }

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(
            args_object("", || "p".to_owned()).expect("empty").get(),
            "{}"
        );
        assert_eq!(
            args_object(" {\"a\":1} ", || "p".to_owned())
                .expect("object")
                .get(),
            "{\"a\":1}"
        );
        assert!(args_object("[1]", || "p".to_owned()).is_err());
        assert!(args_object("{\"a\":", || "p".to_owned()).is_err());
        // Checked as text, then refused (not a panic) where a `Value` must hold them.
        for odd in [r#"{"n":1e999}"#, r#"{"s":"\ud800"}"#] {
            let raw = args_object(odd, || "p".to_owned()).expect("well-formed text");
            assert!(matches!(to_value(raw), Err(Error::Upstream(_))), "{odd}");
        }
    }
}
