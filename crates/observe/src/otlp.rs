//! Spans written straight into OTLP protobuf bytes (`ExportTraceServiceRequest`, the
//! `opentelemetry/proto/trace/v1` messages): the built-in OTLP/HTTP exporter's path. A
//! request's spans cost a few hundred bytes appended to one buffer — no attribute objects, no
//! allocation per attribute, nothing to convert at export. The metrics' plain aggregates are
//! encoded the same way at each export (`ExportMetricsServiceRequest`, cumulative).

use std::time::SystemTime;

use opentelemetry_sdk::Resource;

use crate::agg::{Kind, Num, Series, Store};
use crate::config::SEMCONV_SCHEMA_URL;
use crate::keys::{FxMap, Static};
use crate::spans::{
    Head, Nanos, STAGE_DECISION, STAGE_DURATION, STAGE_EVENT, STAGE_PHASE, STAGE_PROCESSOR,
    STAGE_REASON, SpanWriter, nanos,
};

/// Protobuf wire types.
const LEN: u8 = 2;
const I64: u8 = 1;
const I32: u8 = 5;
const VARINT: u8 = 0;

fn tag(field: u32, wire: u8) -> u32 {
    (field << 3) | u32::from(wire)
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, u64::from(tag(field, wire)));
}

/// A length-delimited field's size, its tag and length prefix included.
fn field_len(field: u32, len: usize) -> usize {
    varint_len(u64::from(tag(field, LEN))) + varint_len(len as u64) + len
}

fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    put_tag(out, field, I64);
    out.extend_from_slice(&v.to_le_bytes());
}

/// An attribute value (`AnyValue`).
#[derive(Clone, Copy)]
enum Any<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Any<'_> {
    /// The encoded `AnyValue` message's length.
    fn len(self) -> usize {
        match self {
            Self::Str(s) => field_len(1, s.len()),
            Self::Int(i) => 1 + varint_len(i as u64),
            Self::Float(_) => 9,
            Self::Bool(_) => 2,
        }
    }

    fn put(self, out: &mut Vec<u8>) {
        match self {
            Self::Str(s) => put_bytes(out, 1, s.as_bytes()),
            Self::Bool(b) => {
                put_tag(out, 2, VARINT);
                out.push(u8::from(b));
            }
            Self::Int(i) => {
                put_tag(out, 3, VARINT);
                put_varint(out, i as u64);
            }
            Self::Float(f) => put_fixed64(out, 4, f.to_bits()),
        }
    }
}

/// Appends a `KeyValue` as field `field` of the enclosing message.
fn put_kv(out: &mut Vec<u8>, field: u32, key: &str, v: Any<'_>) {
    // The common case, a short key and a short value (every length one byte): the heads as a
    // few fixed-size copies, instead of a push and a varint loop per byte.
    let mut scalar = [0u8; 11];
    let (lead, text): (usize, &[u8]) = match v {
        Any::Str(s) if s.len() < 128 => {
            scalar[0] = 0x0a; // string_value = 1
            scalar[1] = s.len() as u8;
            (2, s.as_bytes())
        }
        Any::Str(_) => return put_kv_general(out, field, key, v),
        Any::Bool(b) => {
            scalar[0] = 0x10; // bool_value = 2
            scalar[1] = u8::from(b);
            (2, &[])
        }
        Any::Int(i) => {
            scalar[0] = 0x18; // int_value = 3
            let mut n = 1;
            let mut x = i as u64;
            while x >= 0x80 {
                scalar[n] = (x as u8) | 0x80;
                x >>= 7;
                n += 1;
            }
            scalar[n] = x as u8;
            (n + 1, &[])
        }
        Any::Float(f) => {
            scalar[0] = 0x21; // double_value = 4
            scalar[1..9].copy_from_slice(&f.to_bits().to_le_bytes());
            (9, &[])
        }
    };
    let any = lead + text.len();
    let kv = 2 + key.len() + 2 + any;
    if field >= 16 || key.len() >= 128 || kv >= 128 {
        return put_kv_general(out, field, key, v);
    }
    // Every length is under 128 here: one byte each.
    out.reserve(2 + kv);
    out.extend_from_slice(&[tag(field, LEN) as u8, kv as u8, 0x0a, key.len() as u8]);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&[0x12, any as u8]); // value = 2
    out.extend_from_slice(&scalar[..lead]);
    out.extend_from_slice(text);
}

/// [`put_kv`] for any key and value.
/// A `KeyValue` message's encoded size (without its own tag and length).
fn kv_body_len(key: &str, v: Any<'_>) -> usize {
    field_len(1, key.len()) + field_len(2, v.len())
}

fn put_kv_general(out: &mut Vec<u8>, field: u32, key: &str, v: Any<'_>) {
    let value = v.len();
    let kv = kv_body_len(key, v);
    put_tag(out, field, LEN);
    put_varint(out, kv as u64);
    put_bytes(out, 1, key.as_bytes());
    put_tag(out, 2, LEN);
    put_varint(out, value as u64);
    v.put(out);
}

/// Appends a `KeyValue` whose value is an array of strings.
fn put_kv_strs<'a>(
    out: &mut Vec<u8>,
    field: u32,
    key: &str,
    v: impl Iterator<Item = &'a str> + Clone,
) {
    // ArrayValue { values = 1: AnyValue { string_value = 1 } }
    let array: usize = v.clone().map(|s| field_len(1, Any::Str(s).len())).sum();
    let any = field_len(5, array);
    let kv = field_len(1, key.len()) + field_len(2, any);
    put_tag(out, field, LEN);
    put_varint(out, kv as u64);
    put_bytes(out, 1, key.as_bytes());
    put_tag(out, 2, LEN);
    put_varint(out, any as u64);
    put_tag(out, 5, LEN);
    put_varint(out, array as u64);
    for s in v {
        put_tag(out, 1, LEN);
        put_varint(out, Any::Str(s).len() as u64);
        Any::Str(s).put(out);
    }
}

/// `Span.flags`: the W3C trace flags and whether the parent is remote.
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// What surrounds a batch: the resource and the instrumentation scope, encoded once.
/// `ExportTraceServiceRequest` and `ExportMetricsServiceRequest` number their fields alike
/// (request → resource 1 and scope items 2 → scope 1, items 2, schema URL 3), so one envelope
/// serves both.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// The `resource` field.
    resource: Vec<u8>,
    /// The `scope` field.
    scope: Vec<u8>,
}

impl Envelope {
    /// Encodes the resource and the instrumentation scope.
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut attrs = Vec::new();
        for (k, v) in resource {
            put_kv(&mut attrs, 1, k.as_str(), any(v).as_any());
        }
        let mut res = Vec::new();
        put_bytes(&mut res, 1, &attrs);
        let mut scope_msg = Vec::new();
        put_bytes(&mut scope_msg, 1, b"infergate-observe");
        put_bytes(&mut scope_msg, 2, env!("CARGO_PKG_VERSION").as_bytes());
        let mut scope = Vec::new();
        put_bytes(&mut scope, 1, &scope_msg);
        Self {
            resource: res,
            scope,
        }
    }

    /// The export request of `items` (encoded `spans` or `metrics` fields of the scope).
    fn request(&self, items: &[u8]) -> Vec<u8> {
        let schema = field_len(3, SEMCONV_SCHEMA_URL.len());
        let scope_items = self.scope.len() + items.len() + schema;
        let resource_items = self.resource.len() + field_len(2, scope_items);
        let mut out = Vec::with_capacity(field_len(1, resource_items));
        put_tag(&mut out, 1, LEN);
        put_varint(&mut out, resource_items as u64);
        out.extend_from_slice(&self.resource);
        put_tag(&mut out, 2, LEN);
        put_varint(&mut out, scope_items as u64);
        out.extend_from_slice(&self.scope);
        out.extend_from_slice(items);
        put_bytes(&mut out, 3, SEMCONV_SCHEMA_URL.as_bytes());
        out
    }
}

/// An attribute value, its text owned when it is not a plain string.
enum AnyOwned<'a> {
    Any(Any<'a>),
    Text(String),
}

impl AnyOwned<'_> {
    fn as_any(&self) -> Any<'_> {
        match self {
            Self::Any(a) => *a,
            Self::Text(t) => Any::Str(t),
        }
    }
}

fn any(v: &opentelemetry::Value) -> AnyOwned<'_> {
    match v {
        opentelemetry::Value::Bool(b) => AnyOwned::Any(Any::Bool(*b)),
        opentelemetry::Value::I64(i) => AnyOwned::Any(Any::Int(*i)),
        opentelemetry::Value::F64(f) => AnyOwned::Any(Any::Float(*f)),
        opentelemetry::Value::String(s) => AnyOwned::Any(Any::Str(s.as_str())),
        other => AnyOwned::Text(other.as_str().into_owned()),
    }
}

/// The plain aggregates as one `ExportMetricsServiceRequest`, cumulative from the store's
/// start to `now`; `None` when no instrument has data.
pub(crate) fn metrics_request(store: &Store, env: &Envelope, now: SystemTime) -> Option<Vec<u8>> {
    const CUMULATIVE: u8 = 2;
    let (start, now) = (nanos(store.start), nanos(now));
    let mut items = Vec::new();
    let (mut metric, mut data, mut point) = (Vec::new(), Vec::new(), Vec::new());
    for f in &store.families {
        if f.series.is_empty() && f.observed.is_none() {
            continue;
        }
        data.clear();
        if let Some(src) = &f.observed {
            let n = src.load(std::sync::atomic::Ordering::Relaxed);
            number_point(&mut point, &[], start, now, Num::U(n));
            put_bytes(&mut data, 1, &point);
        }
        for series in &f.series {
            match f.kind {
                Kind::Counter | Kind::Gauge => {
                    number_point(&mut point, &series.attrs, start, now, series.value);
                }
                Kind::Histogram(bounds) => histogram_point(&mut point, series, bounds, start, now),
            }
            put_bytes(&mut data, 1, &point);
        }
        // Sum: temporality 2, monotonic 3; Histogram: temporality 2; Gauge: neither.
        let field = match f.kind {
            Kind::Counter => {
                data.extend_from_slice(&[
                    tag(2, VARINT) as u8,
                    CUMULATIVE,
                    tag(3, VARINT) as u8,
                    1,
                ]);
                7
            }
            Kind::Gauge => 5,
            Kind::Histogram(_) => {
                data.extend_from_slice(&[tag(2, VARINT) as u8, CUMULATIVE]);
                9
            }
        };
        metric.clear();
        put_bytes(&mut metric, 1, f.name.as_bytes());
        put_bytes(&mut metric, 2, f.description.as_bytes());
        put_bytes(&mut metric, 3, f.unit.as_bytes());
        put_bytes(&mut metric, field, &data);
        put_bytes(&mut items, 2, &metric);
    }
    (!items.is_empty()).then(|| env.request(&items))
}

/// A `NumberDataPoint`: attributes 7, start 2, time 3, `as_double` 4 or `as_int` 6.
fn number_point(
    out: &mut Vec<u8>,
    attrs: &[opentelemetry::KeyValue],
    start: u64,
    now: u64,
    v: Num,
) {
    out.clear();
    for kv in attrs {
        put_kv(out, 7, kv.key.as_str(), any(&kv.value).as_any());
    }
    put_fixed64(out, 2, start);
    put_fixed64(out, 3, now);
    match v {
        Num::F(f) => put_fixed64(out, 4, f.to_bits()),
        Num::U(n) => put_fixed64(out, 6, i64::try_from(n).unwrap_or(i64::MAX) as u64),
    }
}

/// A `HistogramDataPoint`: attributes 9, start 2, time 3, count 4, sum 5, bucket counts 6 and
/// bounds 7 (packed), min 11, max 12.
fn histogram_point(out: &mut Vec<u8>, s: &Series, bounds: &[f64], start: u64, now: u64) {
    out.clear();
    for kv in &s.attrs {
        put_kv(out, 9, kv.key.as_str(), any(&kv.value).as_any());
    }
    put_fixed64(out, 2, start);
    put_fixed64(out, 3, now);
    put_fixed64(out, 4, s.count);
    let sum = match s.value {
        Num::U(n) => {
            #[allow(clippy::cast_precision_loss)] // OTLP's histogram sum is a double
            let f = n as f64;
            f
        }
        Num::F(f) => f,
    };
    put_fixed64(out, 5, sum.to_bits());
    put_tag(out, 6, LEN);
    put_varint(out, 8 * s.counts.len() as u64);
    for c in &s.counts {
        out.extend_from_slice(&c.to_le_bytes());
    }
    put_tag(out, 7, LEN);
    put_varint(out, 8 * bounds.len() as u64);
    for b in bounds {
        out.extend_from_slice(&b.to_bits().to_le_bytes());
    }
    if s.count > 0 {
        put_fixed64(out, 11, s.min.to_bits());
        put_fixed64(out, 12, s.max.to_bits());
    }
}

/// Reserves a length prefix of `width` bytes where `out` ends; [`close_len`] fills it once the
/// message after it is written. The message is written once, in place, instead of into a
/// buffer of its own that is then copied into its parent.
fn open_len(out: &mut Vec<u8>, width: usize) -> usize {
    let at = out.len();
    out.resize(at + width, 0);
    at
}

/// Fills the length prefix reserved at `at`: the length of what follows it, as a varint padded
/// to `width` bytes (continuation bits on the leading bytes, as Perfetto's protozero writes
/// nested messages; protobuf decoders read the redundant bytes as any other varint). A length
/// too large for the width is written minimally and the message moved to fit.
fn close_len(out: &mut Vec<u8>, at: usize, width: usize) {
    let len = out.len() - at - width;
    if width < 10 && (len as u64) >= 1u64 << (7 * width) {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        out.splice(at..at + width, prefix);
        return;
    }
    for (i, b) in out[at..at + width].iter_mut().enumerate() {
        let group = ((len >> (7 * i)) & 0x7f) as u8;
        *b = if i + 1 < width { group | 0x80 } else { group };
    }
}

/// The width of a span's length prefix (spans up to 2 MiB; a larger one is moved to fit).
const SPAN_LEN: usize = 3;
/// The width of the envelope's two length prefixes.
const BATCH_LEN: usize = 5;

/// Spans encoded for OTLP, a batch at a time, straight into the export request's bytes.
#[derive(Debug)]
pub(crate) struct ProtoSpans {
    /// The export request being written: the envelope's head, then `ScopeSpans.spans` fields.
    spans: Vec<u8>,
    /// Where the envelope's two length prefixes are (`ResourceSpans`, `ScopeSpans`).
    slots: [usize; 2],
    /// Where the open span's length prefix is.
    span_at: usize,
    /// How many spans the batch holds.
    pub(crate) count: usize,
    /// An event written attribute by attribute (other than a processor-phase event, which is
    /// written whole in place).
    event: Vec<u8>,
    in_event: bool,
    /// The resource and scope around a batch.
    env: Envelope,
    /// The string attributes of processor-phase events, encoded once per set of names.
    stage_attrs: FxMap<StageNames, Vec<u8>>,
}

/// A processor-phase event's names: processor, phase, decision, reason.
type StageNames = (Static, Static, Static, Option<Static>);

/// The most sets of processor-phase names kept encoded (a pipeline has a few dozen).
const STAGE_ATTRS_MAX: usize = 1024;

impl ProtoSpans {
    /// Spans around `env`.
    pub(crate) fn new(env: Envelope) -> Self {
        let mut p = Self {
            spans: Vec::new(),
            slots: [0; 2],
            span_at: 0,
            count: 0,
            event: Vec::with_capacity(256),
            in_event: false,
            env,
            stage_attrs: FxMap::default(),
        };
        p.start_batch(1 << 16);
        p
    }

    /// Starts a batch: the request's head up to the scope, its lengths left open.
    fn start_batch(&mut self, capacity: usize) {
        let mut out = Vec::with_capacity(capacity);
        put_tag(&mut out, 1, LEN);
        let resource_spans = open_len(&mut out, BATCH_LEN);
        out.extend_from_slice(&self.env.resource);
        put_tag(&mut out, 2, LEN);
        let scope_spans = open_len(&mut out, BATCH_LEN);
        out.extend_from_slice(&self.env.scope);
        self.slots = [resource_spans, scope_spans];
        self.spans = out;
    }

    /// The `ExportTraceServiceRequest` of the batch, which is emptied (`None` when empty).
    pub(crate) fn take_request(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        put_bytes(&mut self.spans, 3, SEMCONV_SCHEMA_URL.as_bytes());
        // The inner length first: filling the outer one could move what follows it.
        close_len(&mut self.spans, self.slots[1], BATCH_LEN);
        close_len(&mut self.spans, self.slots[0], BATCH_LEN);
        let capacity = self.spans.len().next_power_of_two();
        let out = std::mem::take(&mut self.spans);
        self.count = 0;
        self.start_batch(capacity);
        Some(out)
    }

    /// Where an attribute goes: the open event's, else the span's.
    fn attr(&mut self, key: &str, v: Any<'_>) {
        if self.in_event {
            put_kv(&mut self.event, 3, key, v);
        } else {
            put_kv(&mut self.spans, 9, key, v);
        }
    }

    fn close_event(&mut self) {
        if self.in_event {
            put_bytes(&mut self.spans, 11, &self.event);
            self.event.clear();
            self.in_event = false;
        }
    }
}

impl SpanWriter for ProtoSpans {
    fn begin(&mut self, h: &Head<'_>) {
        self.in_event = false;
        self.event.clear();
        let s = &mut self.spans;
        put_tag(s, 2, LEN);
        self.span_at = open_len(s, SPAN_LEN);
        put_bytes(s, 1, &h.trace_id);
        put_bytes(s, 2, &h.span_id);
        if let Some((p, _)) = h.parent {
            put_bytes(s, 4, &p);
        }
        // name = 5: "{op} {model}"
        let name_len = h.op.len() + h.model.map_or(0, |m| m.len() + 1);
        put_tag(s, 5, LEN);
        put_varint(s, name_len as u64);
        s.extend_from_slice(h.op.as_bytes());
        if let Some(m) = h.model {
            s.push(b' ');
            s.extend_from_slice(m.as_bytes());
        }
        // kind = 6: SERVER 2, CLIENT 3
        put_tag(s, 6, VARINT);
        s.push(if h.server { 2 } else { 3 });
        put_fixed64(s, 7, h.start);
        put_fixed64(s, 8, h.end);
        let mut flags = u32::from(h.sampled) | HAS_IS_REMOTE;
        if h.parent.is_some_and(|p| p.1) {
            flags |= IS_REMOTE;
        }
        put_tag(s, 16, I32);
        s.extend_from_slice(&flags.to_le_bytes());
    }
    fn str(&mut self, key: &'static str, v: &str) {
        self.attr(key, Any::Str(v));
    }
    fn int(&mut self, key: &'static str, v: i64) {
        self.attr(key, Any::Int(v));
    }
    fn float(&mut self, key: &'static str, v: f64) {
        self.attr(key, Any::Float(v));
    }
    fn flag(&mut self, key: &'static str, v: bool) {
        self.attr(key, Any::Bool(v));
    }
    fn strs<'a>(&mut self, key: &'static str, v: impl Iterator<Item = &'a str> + Clone) {
        let out = if self.in_event {
            (&mut self.event, 3)
        } else {
            (&mut self.spans, 9)
        };
        put_kv_strs(out.0, out.1, key, v);
    }
    fn event(&mut self, name: &'static str, at: Nanos) {
        self.close_event();
        put_fixed64(&mut self.event, 1, at);
        put_bytes(&mut self.event, 2, name.as_bytes());
        self.in_event = true;
    }
    fn stage_event(
        &mut self,
        at: Nanos,
        names: [&'static str; 3],
        reason: Option<&'static str>,
        duration_s: f64,
    ) {
        self.close_event();
        let key = (
            Static(names[0]),
            Static(names[1]),
            Static(names[2]),
            reason.map(Static),
        );
        let attrs = self.stage_attrs.entry(key).or_insert_with(|| {
            let mut attrs = Vec::with_capacity(96);
            put_kv(&mut attrs, 3, STAGE_PROCESSOR, Any::Str(names[0]));
            put_kv(&mut attrs, 3, STAGE_PHASE, Any::Str(names[1]));
            put_kv(&mut attrs, 3, STAGE_DECISION, Any::Str(names[2]));
            if let Some(r) = reason {
                put_kv(&mut attrs, 3, STAGE_REASON, Any::Str(r));
            }
            attrs
        });
        // The event's size is known before it is written: written whole, in place.
        let duration = Any::Float(duration_s);
        let len = 9
            + field_len(2, STAGE_EVENT.len())
            + attrs.len()
            + field_len(3, kv_body_len(STAGE_DURATION, duration));
        let s = &mut self.spans;
        put_tag(s, 11, LEN);
        put_varint(s, len as u64);
        put_fixed64(s, 1, at);
        put_bytes(s, 2, STAGE_EVENT.as_bytes());
        s.extend_from_slice(attrs);
        put_kv(s, 3, STAGE_DURATION, duration);
        if self.stage_attrs.len() > STAGE_ATTRS_MAX {
            self.stage_attrs.clear();
        }
    }
    fn end(&mut self, error: Option<&str>) {
        self.close_event();
        let s = &mut self.spans;
        if let Some(e) = error {
            // Status { message = 2, code = 3 (ERROR = 2) }
            let len = field_len(2, e.len()) + 2;
            put_tag(s, 15, LEN);
            put_varint(s, len as u64);
            put_bytes(s, 2, e.as_bytes());
            put_tag(s, 3, VARINT);
            s.push(2);
        }
        close_len(s, self.span_at, SPAN_LEN);
        self.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_minimal() {
        for (v, len) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), len);
            assert_eq!(varint_len(v), len);
        }
    }

    #[test]
    fn negative_ints_take_ten_bytes_as_protobuf_int64_does() {
        assert_eq!(Any::Int(-1).len(), 11);
        let mut out = Vec::new();
        Any::Int(-1).put(&mut out);
        assert_eq!(out.len(), 11);
    }

    /// The short-string path writes what the general one writes, at every length around the
    /// one-byte bounds.
    #[test]
    fn short_attributes_are_encoded_as_any_other() {
        let text = "k".repeat(140);
        for klen in [0, 1, 60, 61, 62, 63, 120, 123, 124, 127, 128, 139] {
            for slen in [0, 1, 55, 60, 61, 62, 63, 64, 120, 127, 128, 139] {
                for field in [3, 9] {
                    let (key, val) = (&text[..klen], &text[..slen]);
                    let (mut fast, mut general) = (vec![7], vec![7]);
                    put_kv(&mut fast, field, key, Any::Str(val));
                    put_kv_general(&mut general, field, key, Any::Str(val));
                    assert_eq!(fast, general, "key {klen}, value {slen}");
                }
            }
            for v in [
                Any::Int(0),
                Any::Int(127),
                Any::Int(128),
                Any::Int(-1),
                Any::Int(i64::MAX),
                Any::Float(0.5),
                Any::Float(f64::NAN),
                Any::Bool(true),
                Any::Bool(false),
            ] {
                for field in [3, 9] {
                    let key = &text[..klen];
                    let (mut fast, mut general) = (vec![7], vec![7]);
                    put_kv(&mut fast, field, key, v);
                    put_kv_general(&mut general, field, key, v);
                    assert_eq!(fast, general, "key {klen}");
                }
            }
        }
    }

    /// A padded length reads back as the length (by prost, as every protobuf decoder reads
    /// it), and a length too large for its width is written minimally, the message moved.
    #[test]
    fn padded_lengths_read_back() {
        use prost::Message as _;
        for len in [0usize, 1, 127, 128, 16_383, 16_384, (1 << 21) - 1, 1 << 21] {
            let mut out = vec![0x0a]; // field 1, LEN: a `bytes` field
            let at = open_len(&mut out, SPAN_LEN);
            out.extend(std::iter::repeat_n(7u8, len));
            close_len(&mut out, at, SPAN_LEN);
            let read = prost_bytes(&out);
            assert_eq!(read.len(), len);
            if len < 1 << 21 {
                assert_eq!(out.len(), 1 + SPAN_LEN + len);
            }
            assert!(read.iter().all(|&b| b == 7));
            let _ = Wrapper::decode(out.as_slice()).expect("decodes");
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct Wrapper {
        #[prost(bytes = "vec", tag = "1")]
        field: Vec<u8>,
    }

    fn prost_bytes(b: &[u8]) -> Vec<u8> {
        use prost::Message as _;
        Wrapper::decode(b).expect("decodes").field
    }

    #[test]
    fn an_empty_batch_is_no_request() {
        let mut p = ProtoSpans::new(Envelope::new(&Resource::builder_empty().build()));
        assert!(p.take_request().is_none());
    }
}
