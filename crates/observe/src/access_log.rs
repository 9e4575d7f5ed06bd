//! The access log: one JSON object per request, on one line. Never the client's key (the
//! principal's id only), never prompt or completion text, never a guardrail's matched text
//! (the checks' names only).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::record::Record;
use crate::worker::{error_type, operation};

/// A JSON object written straight into the line's buffer (no intermediate values or strings:
/// this runs once per request on the telemetry thread, into one buffer reused for every line).
struct Obj<'a> {
    s: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(s: &'a mut Vec<u8>) -> Self {
        Self { s, first: true }
    }

    fn key(&mut self, k: &str) {
        self.s.push(if self.first { b'{' } else { b',' });
        self.first = false;
        self.s.push(b'"');
        self.s.extend_from_slice(k.as_bytes());
        self.s.extend_from_slice(b"\":");
    }

    fn str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.key(k);
            esc(self.s, v);
        }
    }

    fn u64(&mut self, k: &str, v: Option<u64>) {
        if let Some(v) = v {
            self.key(k);
            self.s
                .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }
    }

    fn f64(&mut self, k: &str, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.key(k);
            self.s
                .extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
        }
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.s.extend_from_slice(if v { b"true" } else { b"false" });
    }

    fn list<'b>(&mut self, k: &str, items: impl Iterator<Item = &'b str>) {
        self.key(k);
        self.s.push(b'[');
        for (i, it) in items.enumerate() {
            if i > 0 {
                self.s.push(b',');
            }
            esc(self.s, it);
        }
        self.s.push(b']');
    }

    /// A nested object as the value of `k`.
    fn object(&mut self, k: &str, fill: impl FnOnce(&mut Obj<'_>)) {
        self.key(k);
        let mut inner = Obj::new(self.s);
        fill(&mut inner);
        inner.end();
    }

    fn end(self) {
        if self.first {
            self.s.push(b'{');
        }
        self.s.push(b'}');
    }
}

/// A JSON string written into `out`: as it is when nothing in it needs escaping (the common
/// case: names, ids, paths), else escaped by serde_json.
fn esc(out: &mut Vec<u8>, v: &str) {
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(v.len() + 2);
        out.push(b'"');
        out.extend_from_slice(v.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// `v` in `width` decimal digits, zero-padded (`v` below `10^width`).
fn digits(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut x = v;
    for i in (0..width.min(20)).rev() {
        buf[i] = b'0' + (x % 10) as u8;
        x /= 10;
    }
    out.extend_from_slice(&buf[..width.min(20)]);
}

/// Appends the line for one request that started at `start` (without the newline) to `out`.
pub(crate) fn write_line(out: &mut Vec<u8>, r: &Record, start: SystemTime, provider: &str) {
    let mut o = Obj::new(out);
    o.key("time");
    o.s.push(b'"');
    write_rfc3339(o.s, start);
    o.s.push(b'"');
    if let Some(t) = r.trace {
        o.key("trace_id");
        o.s.push(b'"');
        write_hex(o.s, &t.trace_id());
        o.s.push(b'"');
    }
    o.str("path", Some(r.get(r.path)));
    o.str("operation", Some(operation(r)));
    o.str("provider", Some(provider));
    o.str("principal", r.opt(r.principal));
    o.str("tenant", r.opt(r.tenant));
    o.str("route", r.opt(r.route));
    o.str("backend", r.opt(r.backend));
    let attempts = r.attempt_count.or_else(|| {
        (!r.attempts.is_empty()).then(|| u32::try_from(r.attempts.len()).unwrap_or(u32::MAX))
    });
    o.u64("attempts", attempts.map(u64::from));
    o.str("model", r.opt(r.request_model));
    o.str("response_model", r.opt(r.response_model));
    o.bool("stream", r.stream);
    o.u64("status", Some(u64::from(r.status)));
    if let Some(u) = r.usage {
        o.object("usage", |u_obj| {
            u_obj.u64("input_tokens", Some(u.input_tokens));
            u_obj.u64("output_tokens", Some(u.output_tokens));
            u_obj.u64("cache_read_input_tokens", Some(u.cache_read_input_tokens));
            u_obj.u64(
                "cache_creation_input_tokens",
                Some(u.cache_creation_input_tokens),
            );
            u_obj.u64("reasoning_tokens", Some(u.reasoning_tokens));
            u_obj.bool("estimated", r.usage_estimated);
        });
    }
    o.f64("cost_usd", r.cost_usd);
    o.f64("ttft_ms", r.ttft.map(|t| millis(t.as_secs_f64())));
    o.f64("duration_ms", Some(millis(r.duration.as_secs_f64())));
    o.str("cache", r.cache);
    if r.n_findings > 0 {
        o.list("guardrail", r.findings());
    }
    o.str("rejection", r.rejection);
    o.str("rejected_by", r.opt(r.rejected_by));
    o.str("error_type", error_type(r).as_deref());
    if r.n_finish > 0 {
        o.list("finish_reasons", r.finish_reasons());
    }
    o.str("end", r.ending.map(crate::record::Ending::as_str));
    o.end();
}

fn millis(secs: f64) -> f64 {
    (secs * 1_000_000.0).round() / 1000.0
}

fn write_hex(out: &mut Vec<u8>, b: &[u8]) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for x in b {
        out.push(H[usize::from(x >> 4)]);
        out.push(H[usize::from(x & 15)]);
    }
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
fn write_rfc3339(out: &mut Vec<u8>, t: SystemTime) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    let year = u64::try_from(year).unwrap_or(0).min(9999);
    let parts = [
        (year, 4, b'-'),
        (u64::try_from(month).unwrap_or(0), 2, b'-'),
        (u64::try_from(day).unwrap_or(0), 2, b'T'),
        (rem / 3600, 2, b':'),
        (rem % 3600 / 60, 2, b':'),
        (rem % 60, 2, b'.'),
        (u64::from(d.subsec_millis()), 3, b'Z'),
    ];
    for (v, width, sep) in parts {
        digits(out, v, width);
        out.push(sep);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lines_are_json_with_escapes() {
        let mut r = Record::default();
        r.path = r.put("/v1/chat/completions");
        r.principal = Some(r.put("we\"ird\n\u{1}name"));
        r.status = 200;
        r.add_finding("pii");
        let mut out = b"previous line\n".to_vec();
        write_line(&mut out, &r, SystemTime::now(), "openai");
        let line = std::str::from_utf8(&out[14..]).unwrap();
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["principal"], "we\"ird\n\u{1}name");
        assert_eq!(v["status"], 200);
        assert_eq!(v["guardrail"][0], "pii");
        assert!(line.starts_with("{\"time\":"));
    }

    #[test]
    fn numbers_are_json_numbers() {
        let mut r = Record::default();
        r.path = r.put("/v1/chat/completions");
        r.status = 503;
        r.cost_usd = Some(0.000_000_123);
        r.duration = Duration::from_micros(1_234_567);
        let mut out = Vec::new();
        write_line(&mut out, &r, SystemTime::now(), "openai");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["status"], 503);
        assert_eq!(v["cost_usd"].as_f64(), Some(0.000_000_123));
        assert_eq!(v["duration_ms"].as_f64(), Some(1234.567));
    }

    fn rfc3339(t: SystemTime) -> String {
        let mut out = Vec::new();
        write_rfc3339(&mut out, t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_180_400_123);
        assert_eq!(rfc3339(t), "2026-12-02T03:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
