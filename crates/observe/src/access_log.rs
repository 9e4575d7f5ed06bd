//! The access log: one JSON object per request, on one line. Never the client's key (the
//! principal's id only), never prompt or completion text, never a guardrail's matched text
//! (the checks' names only).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::record::Record;
use crate::worker::{error_type, operation};

/// A JSON object written straight into a string (no intermediate values: this runs once per
/// request on the telemetry thread).
struct Obj {
    s: String,
    first: bool,
}

impl Obj {
    fn new() -> Self {
        Self {
            s: String::with_capacity(512),
            first: true,
        }
    }

    fn key(&mut self, k: &str) {
        self.s.push(if self.first { '{' } else { ',' });
        self.first = false;
        self.s.push('"');
        self.s.push_str(k);
        self.s.push_str("\":");
    }

    fn str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.key(k);
            esc(&mut self.s, v);
        }
    }

    fn u64(&mut self, k: &str, v: Option<u64>) {
        if let Some(v) = v {
            self.key(k);
            let _ = write!(self.s, "{v}");
        }
    }

    fn f64(&mut self, k: &str, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.key(k);
            let _ = write!(self.s, "{v}");
        }
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.s.push_str(if v { "true" } else { "false" });
    }

    fn list<'a>(&mut self, k: &str, items: impl Iterator<Item = &'a str>) {
        self.key(k);
        self.s.push('[');
        for (i, it) in items.enumerate() {
            if i > 0 {
                self.s.push(',');
            }
            esc(&mut self.s, it);
        }
        self.s.push(']');
    }

    fn end(mut self) -> String {
        if self.first {
            self.s.push('{');
        }
        self.s.push('}');
        self.s
    }
}

/// A JSON string, escaped by serde_json (no escaper of our own beside the ones the project
/// already has).
fn esc(out: &mut String, v: &str) {
    match serde_json::to_string(v) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

/// The line for one request (without the newline).
pub(crate) fn line(r: &Record, provider: &str) -> String {
    let mut o = Obj::new();
    o.str(
        "time",
        Some(&rfc3339(r.start.unwrap_or_else(SystemTime::now))),
    );
    if let Some(t) = r.trace {
        o.str("trace_id", Some(&hex(&t.trace_id())));
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
        o.key("usage");
        let mut u_obj = Obj::new();
        u_obj.u64("input_tokens", Some(u.input_tokens));
        u_obj.u64("output_tokens", Some(u.output_tokens));
        u_obj.u64("cache_read_input_tokens", Some(u.cache_read_input_tokens));
        u_obj.u64(
            "cache_creation_input_tokens",
            Some(u.cache_creation_input_tokens),
        );
        u_obj.u64("reasoning_tokens", Some(u.reasoning_tokens));
        u_obj.bool("estimated", r.usage_estimated);
        o.s.push_str(&u_obj.end());
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
    o.end()
}

fn millis(secs: f64) -> f64 {
    (secs * 1_000_000.0).round() / 1000.0
}

fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[usize::from(x >> 4)] as char);
        s.push(H[usize::from(x & 15)] as char);
    }
    s
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub(crate) fn rfc3339(t: SystemTime) -> String {
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
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
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
        let line = line(&r, "openai");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["principal"], "we\"ird\n\u{1}name");
        assert_eq!(v["status"], 200);
        assert_eq!(v["guardrail"][0], "pii");
        assert!(line.starts_with("{\"time\":"));
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
