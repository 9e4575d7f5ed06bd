//! The Prometheus text exposition format (0.0.4) of collected metrics, named as the
//! OpenTelemetry–Prometheus compatibility rules say: dots become underscores, the unit is
//! appended as a word (`s` → `_seconds`; annotations such as `{token}` are dropped), counters
//! end in `_total`.

use std::fmt::Write as _;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric of `rm`.
pub(crate) fn render(rm: &ResourceMetrics) -> String {
    let mut out = String::with_capacity(16 * 1024);
    for sm in rm.scope_metrics() {
        for m in sm.metrics() {
            match m.data() {
                AggregatedMetrics::F64(d) => metric(&mut out, m, d, |v| fmt_f64(*v)),
                AggregatedMetrics::U64(d) => metric(&mut out, m, d, ToString::to_string),
                AggregatedMetrics::I64(d) => metric(&mut out, m, d, ToString::to_string),
            }
        }
    }
    out
}

fn fmt_f64(v: f64) -> String {
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

fn label_name(k: &str) -> String {
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

fn escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.as_str().to_owned(),
        other => other.to_string(),
    }
}

fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<(String, String)> = attrs
        .map(|kv| (label_name(kv.key.as_str()), value_text(&kv.value)))
        .collect();
    pairs.sort();
    if let Some((k, v)) = extra {
        pairs.push((k.to_owned(), v.to_owned()));
    }
    if pairs.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        escape(v, &mut s);
        s.push('"');
    }
    s.push('}');
    s
}

fn help(out: &mut String, n: &str, m: &Metric, kind: &str) {
    let mut d = String::new();
    for c in m.description().chars() {
        match c {
            '\\' => d.push_str("\\\\"),
            '\n' => d.push_str("\\n"),
            c => d.push(c),
        }
    }
    let _ = writeln!(out, "# HELP {n} {d}");
    let _ = writeln!(out, "# TYPE {n} {kind}");
}

#[allow(clippy::many_single_char_names)]
fn metric<T: Copy>(out: &mut String, m: &Metric, d: &MetricData<T>, fmt: impl Fn(&T) -> String) {
    match d {
        MetricData::Sum(sum) => {
            let counter = sum.is_monotonic();
            let n = name(m.name(), m.unit(), counter);
            help(out, &n, m, if counter { "counter" } else { "gauge" });
            for p in sum.data_points() {
                let v = p.value();
                let _ = writeln!(out, "{n}{} {}", labels(p.attributes(), None), fmt(&v));
            }
        }
        MetricData::Gauge(g) => {
            let n = name(m.name(), m.unit(), false);
            help(out, &n, m, "gauge");
            for p in g.data_points() {
                let v = p.value();
                let _ = writeln!(out, "{n}{} {}", labels(p.attributes(), None), fmt(&v));
            }
        }
        MetricData::Histogram(h) => {
            let n = name(m.name(), m.unit(), false);
            help(out, &n, m, "histogram");
            for p in h.data_points() {
                let mut cum = 0u64;
                let bounds: Vec<f64> = p.bounds().collect();
                let counts: Vec<u64> = p.bucket_counts().collect();
                for (i, c) in counts.iter().enumerate() {
                    cum = cum.saturating_add(*c);
                    let le = bounds
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |b| fmt_f64(*b));
                    let _ = writeln!(
                        out,
                        "{n}_bucket{} {cum}",
                        labels(p.attributes(), Some(("le", &le)))
                    );
                }
                let l = labels(p.attributes(), None);
                let _ = writeln!(out, "{n}_sum{l} {}", fmt(&p.sum()));
                let _ = writeln!(out, "{n}_count{l} {}", p.count());
            }
        }
        MetricData::ExponentialHistogram(_) => {}
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
