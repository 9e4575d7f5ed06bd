//! Plain metric aggregates: the telemetry thread adds to them under one uncontended lock per
//! record (no atomics per instrument, no attribute set hashed per measurement), and the
//! Prometheus text is rendered from them. The OpenTelemetry SDK's instruments are fed too only
//! when metrics are pushed to an exporter (OTLP, or one's own).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use opentelemetry::{KeyValue, Value};

use crate::prometheus::{escape, fmt_f64, label_name, name};

/// The most series (attribute sets) one family keeps; measurements for further sets go to one
/// overflow series labelled `otel_metric_overflow="true"`, as the OpenTelemetry SDK's
/// cardinality limit does (a flood of distinct models or principals cannot grow memory).
pub(crate) const SERIES_MAX: usize = 2000;

/// The label text of the overflow series.
const OVERFLOW: &str = "otel_metric_overflow=\"true\"";

/// What a family aggregates.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// A monotonic sum.
    Counter,
    /// The last value.
    Gauge,
    /// Bucket counts (upper bounds inclusive, `+Inf` last), sum and count.
    Histogram(&'static [f64]),
}

/// A measurement: integer families add integers, floating-point ones floats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    /// An integer.
    U(u64),
    /// A float.
    F(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)] // bucket search only
            Num::U(n) => n as f64,
            Num::F(f) => f,
        }
    }

    fn plus(self, other: Num) -> Num {
        match (self, other) {
            (Num::U(a), Num::U(b)) => Num::U(a.saturating_add(b)),
            (a, b) => Num::F(a.as_f64() + b.as_f64()),
        }
    }

    fn text(self) -> String {
        match self {
            Num::U(n) => n.to_string(),
            Num::F(f) => fmt_f64(f),
        }
    }
}

impl From<u64> for Num {
    fn from(n: u64) -> Self {
        Num::U(n)
    }
}

impl From<f64> for Num {
    fn from(f: f64) -> Self {
        Num::F(f)
    }
}

/// One attribute set's aggregate.
pub(crate) struct Series {
    /// The attributes, sorted by key (for OTLP).
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    pub(crate) attrs: Vec<KeyValue>,
    /// `k="v",…` sorted by label name: the series' identity and its Prometheus labels.
    labels: String,
    /// The sum (counters, histograms) or the last value (gauges).
    pub(crate) value: Num,
    /// Histograms: measurements per bucket.
    pub(crate) counts: Vec<u64>,
    /// Histograms: measurements.
    pub(crate) count: u64,
    /// Histograms: the least and greatest measurement.
    pub(crate) min: f64,
    /// See `min`.
    pub(crate) max: f64,
}

/// One instrument.
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) description: &'static str,
    pub(crate) kind: Kind,
    zero: Num,
    pub(crate) series: Vec<Series>,
    index: HashMap<String, u32>,
    /// An observed counter's source (read when rendered).
    pub(crate) observed: Option<Arc<AtomicU64>>,
}

/// A family and one of its series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Handle {
    family: u32,
    series: u32,
}

/// Every family, in the order they were made. Cumulative since `start`.
pub(crate) struct Store {
    pub(crate) families: Vec<Family>,
    /// When the cumulative aggregates began (OTLP's start time).
    #[cfg_attr(not(feature = "otlp-http"), allow(dead_code))]
    pub(crate) start: SystemTime,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            families: Vec::new(),
            start: SystemTime::now(),
        }
    }
}

/// The store shared by the telemetry thread (which adds) and the scrape (which renders).
pub(crate) type SharedStore = Arc<Mutex<Store>>;

/// The store, locked (a panic elsewhere leaves numbers, not broken invariants).
pub(crate) fn lock(s: &SharedStore) -> std::sync::MutexGuard<'_, Store> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    /// A new family; its id.
    pub(crate) fn family(
        &mut self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        kind: Kind,
        float: bool,
    ) -> u32 {
        self.families.push(Family {
            name,
            unit,
            description,
            kind,
            zero: if float { Num::F(0.0) } else { Num::U(0) },
            series: Vec::new(),
            index: HashMap::new(),
            observed: None,
        });
        u32::try_from(self.families.len() - 1).unwrap_or(u32::MAX)
    }

    /// A counter without attributes whose value is read from `source` when rendered.
    pub(crate) fn observed_counter(
        &mut self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        source: Arc<AtomicU64>,
    ) {
        let id = self.family(name, unit, description, Kind::Counter, false);
        if let Some(f) = self.families.get_mut(id as usize) {
            f.observed = Some(source);
        }
    }

    /// The series of `attrs` in `family`, made if new (past [`SERIES_MAX`]: the overflow
    /// series).
    pub(crate) fn bind(&mut self, family: u32, attrs: &[KeyValue]) -> Handle {
        let Some(f) = self.families.get_mut(family as usize) else {
            return Handle {
                family: u32::MAX,
                series: 0,
            };
        };
        let mut attrs = sorted(attrs);
        let mut labels = label_text(&attrs);
        if let Some(&series) = f.index.get(&labels) {
            return Handle { family, series };
        }
        if f.series.len() >= SERIES_MAX {
            OVERFLOW.clone_into(&mut labels);
            attrs = vec![KeyValue::new("otel.metric.overflow", true)];
            if let Some(&series) = f.index.get(&labels) {
                return Handle { family, series };
            }
        }
        let buckets = match f.kind {
            Kind::Histogram(b) => b.len() + 1,
            _ => 0,
        };
        f.series.push(Series {
            attrs,
            labels: labels.clone(),
            value: f.zero,
            counts: vec![0; buckets],
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        });
        let series = u32::try_from(f.series.len() - 1).unwrap_or(u32::MAX);
        f.index.insert(labels, series);
        Handle { family, series }
    }

    /// Adds a measurement to a series: summed (counters), kept (gauges) or counted in its
    /// bucket (histograms). A float that is not finite is ignored.
    pub(crate) fn put(&mut self, handle: Handle, v: Num) {
        if matches!(v, Num::F(x) if !x.is_finite()) {
            return;
        }
        let Some(fam) = self.families.get_mut(handle.family as usize) else {
            return;
        };
        let kind = fam.kind;
        let Some(series) = fam.series.get_mut(handle.series as usize) else {
            return;
        };
        match kind {
            Kind::Counter => series.value = series.value.plus(v),
            Kind::Gauge => series.value = v,
            Kind::Histogram(bounds) => {
                let x = v.as_f64();
                // The bounds under `x`, counted without a branch (a binary search's
                // branches mispredict on every measurement; the bounds are a dozen or so).
                let bucket: usize = bounds.iter().map(|&b| usize::from(b < x)).sum();
                if let Some(c) = series.counts.get_mut(bucket) {
                    *c = c.saturating_add(1);
                }
                series.count = series.count.saturating_add(1);
                series.value = series.value.plus(v);
                series.min = series.min.min(x);
                series.max = series.max.max(x);
            }
        }
    }

    /// Every family with data, in the Prometheus text exposition format (0.0.4).
    pub(crate) fn prometheus(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        for f in &self.families {
            if f.series.is_empty() && f.observed.is_none() {
                continue;
            }
            let counter = matches!(f.kind, Kind::Counter);
            let n = name(f.name, f.unit, counter);
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram(_) => "histogram",
            };
            let mut help = String::new();
            for c in f.description.chars() {
                match c {
                    '\\' => help.push_str("\\\\"),
                    '\n' => help.push_str("\\n"),
                    c => help.push(c),
                }
            }
            let _ = writeln!(out, "# HELP {n} {help}");
            let _ = writeln!(out, "# TYPE {n} {kind}");
            if let Some(src) = &f.observed {
                let _ = writeln!(out, "{n} {}", src.load(Ordering::Relaxed));
            }
            for s in &f.series {
                let l = braces(&s.labels, None);
                match f.kind {
                    Kind::Counter | Kind::Gauge => {
                        let _ = writeln!(out, "{n}{l} {}", s.value.text());
                    }
                    Kind::Histogram(bounds) => {
                        let mut cum = 0u64;
                        for (i, c) in s.counts.iter().enumerate() {
                            cum = cum.saturating_add(*c);
                            let le = bounds
                                .get(i)
                                .map_or_else(|| "+Inf".to_owned(), |b| fmt_f64(*b));
                            let _ =
                                writeln!(out, "{n}_bucket{} {cum}", braces(&s.labels, Some(&le)));
                        }
                        let _ = writeln!(out, "{n}_sum{l} {}", s.value.text());
                        let _ = writeln!(out, "{n}_count{l} {}", s.count);
                    }
                }
            }
        }
        out
    }
}

/// `attrs` sorted by key, the last of a repeated key kept (as the SDK's attribute sets do).
fn sorted(attrs: &[KeyValue]) -> Vec<KeyValue> {
    let mut v: Vec<KeyValue> = Vec::with_capacity(attrs.len());
    for kv in attrs {
        match v.binary_search_by(|x| x.key.as_str().cmp(kv.key.as_str())) {
            Ok(i) => {
                if let Some(x) = v.get_mut(i) {
                    *x = kv.clone();
                }
            }
            Err(i) => v.insert(i, kv.clone()),
        }
    }
    v
}

/// `k="v",…` of `attrs`: Prometheus label names, sorted, values escaped.
fn label_text(attrs: &[KeyValue]) -> String {
    let mut pairs: Vec<(String, String)> = attrs
        .iter()
        .map(|kv| {
            let v = match &kv.value {
                Value::String(s) => s.as_str().to_owned(),
                other => other.to_string(),
            };
            (label_name(kv.key.as_str()), v)
        })
        .collect();
    pairs.sort();
    pairs.dedup_by(|a, b| a.0 == b.0);
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        escape(v, &mut s);
        s.push('"');
    }
    s
}

/// `{labels}` (with `le` last for a bucket), or nothing without labels.
fn braces(labels: &str, le: Option<&str>) -> String {
    match (labels.is_empty(), le) {
        (true, None) => String::new(),
        (true, Some(le)) => format!("{{le=\"{le}\"}}"),
        (false, None) => format!("{{{labels}}}"),
        (false, Some(le)) => format!("{{{labels},le=\"{le}\"}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[f64] = &[1.0, 4.0];

    #[test]
    #[allow(clippy::many_single_char_names)]
    fn series_aggregate_and_render_as_prometheus_text() {
        let mut st = Store::default();
        let c = st.family("x.requests", "{request}", "Requests.", Kind::Counter, false);
        let g = st.family("x.up", "1", "Up.", Kind::Gauge, false);
        let h = st.family(
            "x.tokens",
            "{token}",
            "Tokens.",
            Kind::Histogram(BOUNDS),
            false,
        );
        let d = st.family(
            "x.duration",
            "s",
            "How \"long\"\nit took.",
            Kind::Histogram(BOUNDS),
            true,
        );
        let _unused = st.family("x.never", "1", "Never used.", Kind::Counter, false);
        st.observed_counter(
            "x.dropped",
            "{record}",
            "Dropped.",
            Arc::new(AtomicU64::new(3)),
        );
        let a = [KeyValue::new("b.k", "v\"1"), KeyValue::new("a", 7_i64)];
        let hc = st.bind(c, &a);
        // The same set, in another order, is the same series.
        let again = st.bind(c, &[a[1].clone(), a[0].clone()]);
        st.put(hc, Num::U(2));
        st.put(again, Num::U(u64::MAX));
        let hg = st.bind(g, &[]);
        st.put(hg, Num::U(1));
        st.put(hg, Num::U(0));
        let hh = st.bind(h, &[KeyValue::new("t", "input")]);
        for v in [1, 2, 4, 5] {
            st.put(hh, Num::U(v));
        }
        let hd = st.bind(d, &[]);
        st.put(hd, Num::F(0.5));
        st.put(hd, Num::F(f64::NAN));
        assert_eq!(
            st.prometheus(),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\n\
             x_requests_total{a=\"7\",b_k=\"v\\\"1\"} 18446744073709551615\n\
             # HELP x_up Up.\n# TYPE x_up gauge\nx_up 0\n\
             # HELP x_tokens Tokens.\n# TYPE x_tokens histogram\n\
             x_tokens_bucket{t=\"input\",le=\"1\"} 1\nx_tokens_bucket{t=\"input\",le=\"4\"} 3\n\
             x_tokens_bucket{t=\"input\",le=\"+Inf\"} 4\nx_tokens_sum{t=\"input\"} 12\n\
             x_tokens_count{t=\"input\"} 4\n\
             # HELP x_duration_seconds How \"long\"\\nit took.\n# TYPE x_duration_seconds histogram\n\
             x_duration_seconds_bucket{le=\"1\"} 1\nx_duration_seconds_bucket{le=\"4\"} 1\n\
             x_duration_seconds_bucket{le=\"+Inf\"} 1\nx_duration_seconds_sum 0.5\n\
             x_duration_seconds_count 1\n\
             # HELP x_dropped_total Dropped.\n# TYPE x_dropped_total counter\nx_dropped_total 3\n"
        );
    }

    #[test]
    fn a_flood_of_attribute_sets_ends_in_one_overflow_series() {
        let mut st = Store::default();
        let c = st.family("x.requests", "1", "Requests.", Kind::Counter, false);
        for i in 0..SERIES_MAX + 10 {
            let h = st.bind(c, &[KeyValue::new("principal", format!("p{i}"))]);
            st.put(h, Num::U(1));
        }
        let text = st.prometheus();
        assert_eq!(text.lines().count(), 2 + SERIES_MAX + 1);
        assert!(text.contains("x_requests_total{otel_metric_overflow=\"true\"} 10\n"));
    }
}
