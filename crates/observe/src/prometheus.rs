//! The Prometheus text exposition format (0.0.4) of collected metrics, named as the
//! OpenTelemetry–Prometheus compatibility rules say: dots become underscores, the unit is
//! appended as a word (`s` → `_seconds`; annotations such as `{token}` are dropped), counters
//! end in `_total`.

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A float as Prometheus writes it (`NaN`, `+Inf`, `-Inf`, else Rust's shortest form).
pub(crate) fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

/// The Prometheus name of an OpenTelemetry metric name and unit.
pub(crate) fn name(otel: &str, unit: &str, counter: bool) -> String {
    let mut n: String = otel
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert(0, '_');
    }
    let unit = strip_annotations(unit);
    let word = match unit.as_str() {
        "" | "1" => None,
        "s" => Some("seconds".to_owned()),
        "ms" => Some("milliseconds".to_owned()),
        "By" => Some("bytes".to_owned()),
        "USD" => Some("usd".to_owned()),
        other => Some(
            other
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect(),
        ),
    };
    if let Some(w) = word
        && !n.ends_with(&format!("_{w}"))
    {
        n.push('_');
        n.push_str(&w);
    }
    if counter && !n.ends_with("_total") {
        n.push_str("_total");
    }
    n
}

fn strip_annotations(unit: &str) -> String {
    let mut out = String::new();
    let mut depth = 0u32;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The Prometheus label name of an attribute key.
pub(crate) fn label_name(k: &str) -> String {
    let mut n: String = k
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert(0, '_');
    }
    n
}

/// Appends a label value, escaped.
pub(crate) fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn names_follow_the_compatibility_rules() {
        assert_eq!(
            name("gen_ai.client.token.usage", "{token}", false),
            "gen_ai_client_token_usage"
        );
        assert_eq!(
            name("gen_ai.server.time_to_first_token", "s", false),
            "gen_ai_server_time_to_first_token_seconds"
        );
        assert_eq!(
            name("infergate.requests", "{request}", true),
            "infergate_requests_total"
        );
        assert_eq!(
            name("infergate.cost", "USD", true),
            "infergate_cost_usd_total"
        );
        assert_eq!(
            name("infergate.backend.up", "1", false),
            "infergate_backend_up"
        );
    }
}
