//! The access log: one JSON object per request, on one line. Never the client's key (the
//! principal's id only), never prompt or completion text, never a guardrail's matched text
//! (the checks' names only).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::record::Record;
use crate::worker::{error_type, operation};

/// The line for one request (without the newline).
pub(crate) fn line(r: &Record, provider: &str) -> String {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_owned(), v);
        }
    };
    put(
        "time",
        Value::String(rfc3339(r.start.unwrap_or_else(SystemTime::now))),
    );
    if let Some(t) = r.trace {
        put("trace_id", Value::String(hex(&t.trace_id())));
    }
    put("path", json!(r.get(r.path)));
    put("operation", json!(operation(r)));
    put("provider", json!(provider));
    put("principal", json!(r.opt(r.principal)));
    put("tenant", json!(r.opt(r.tenant)));
    put("route", json!(r.opt(r.route)));
    put("backend", json!(r.opt(r.backend)));
    put(
        "attempts",
        json!(r.attempt_count.or_else(|| {
            (!r.attempts.is_empty()).then(|| u32::try_from(r.attempts.len()).unwrap_or(u32::MAX))
        })),
    );
    put("model", json!(r.opt(r.request_model)));
    put("response_model", json!(r.opt(r.response_model)));
    put("stream", json!(r.stream));
    put("status", json!(r.status));
    if let Some(u) = r.usage {
        put(
            "usage",
            json!({
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
                "cache_read_input_tokens": u.cache_read_input_tokens,
                "cache_creation_input_tokens": u.cache_creation_input_tokens,
                "reasoning_tokens": u.reasoning_tokens,
                "estimated": r.usage_estimated,
            }),
        );
    }
    put("cost_usd", json!(r.cost_usd));
    put("ttft_ms", json!(r.ttft.map(|t| millis(t.as_secs_f64()))));
    put("duration_ms", json!(millis(r.duration.as_secs_f64())));
    put("cache", json!(r.cache));
    if r.n_findings > 0 {
        put("guardrail", json!(r.findings().collect::<Vec<_>>()));
    }
    put("rejection", json!(r.rejection));
    put("rejected_by", json!(r.opt(r.rejected_by)));
    put("error_type", json!(error_type(r)));
    if r.n_finish > 0 {
        put(
            "finish_reasons",
            json!(r.finish_reasons().collect::<Vec<_>>()),
        );
    }
    put("end", json!(r.ending.map(crate::record::Ending::as_str)));
    Value::Object(m).to_string()
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
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_796_180_400_123);
        assert_eq!(rfc3339(t), "2026-12-02T03:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
