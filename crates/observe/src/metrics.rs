//! Metrics: the conventions' instruments and infergate's, recorded from request records on
//! the telemetry thread through **bound** instruments cached per attribute set: a record costs
//! a few lookups of small integer keys and atomic adds, not an attribute set hashed and
//! allocated per instrument.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::metrics::{
    BoundCounter, BoundGauge, BoundHistogram, Counter, Gauge, Histogram, Meter,
};
use opentelemetry::{KeyValue, Value};

use crate::record::Record;
use crate::worker::{error_type, operation};

/// The instruments.
struct Instruments {
    token_usage: Histogram<u64>,
    operation_duration: Histogram<f64>,
    request_duration: Histogram<f64>,
    ttft: Histogram<f64>,
    tpot: Histogram<f64>,
    requests: Counter<u64>,
    tokens: Counter<u64>,
    decisions: Counter<u64>,
    processor_duration: Histogram<f64>,
    cache: Counter<u64>,
    findings: Counter<u64>,
    rejections: Counter<u64>,
    attempts: Counter<u64>,
    backend_up: Gauge<u64>,
    cost: Counter<f64>,
    estimated: Counter<u64>,
    ratelimit_remaining: Gauge<u64>,
}

const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKEN_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
const TTFT_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const TPOT_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];
const PROCESSOR_BUCKETS: [f64; 15] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.5,
];

impl Instruments {
    fn new(meter: &Meter, dropped: Arc<AtomicU64>) -> Self {
        let _dropped = meter
            .u64_observable_counter("infergate.telemetry.dropped")
            .with_unit("{record}")
            .with_description("Request records dropped because the telemetry queue was full.")
            .with_callback(move |o| o.observe(dropped.load(Ordering::Relaxed), &[]))
            .build();
        Self {
            token_usage: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Number of input and output tokens used.")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            operation_duration: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_description("GenAI operation duration (the gateway's calls upstream).")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            request_duration: meter
                .f64_histogram("gen_ai.server.request.duration")
                .with_unit("s")
                .with_description("Generative AI server request duration (the gateway's whole request).")
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build(),
            ttft: meter
                .f64_histogram("gen_ai.server.time_to_first_token")
                .with_unit("s")
                .with_description("Time to generate first token for successful responses.")
                .with_boundaries(TTFT_BUCKETS.to_vec())
                .build(),
            tpot: meter
                .f64_histogram("gen_ai.server.time_per_output_token")
                .with_unit("s")
                .with_description("Time per output token generated after the first token for successful responses.")
                .with_boundaries(TPOT_BUCKETS.to_vec())
                .build(),
            requests: meter
                .u64_counter("infergate.requests")
                .with_unit("{request}")
                .with_description("Requests, by route, backend, model, principal, status and cache result.")
                .build(),
            tokens: meter
                .u64_counter("infergate.usage.tokens")
                .with_unit("{token}")
                .with_description(
                    "Tokens by type: input, output, cache_read, cache_creation, reasoning.",
                )
                .build(),
            decisions: meter
                .u64_counter("infergate.processor.decisions")
                .with_unit("{decision}")
                .with_description("What each processor's phase came to.")
                .build(),
            processor_duration: meter
                .f64_histogram("infergate.processor.duration")
                .with_unit("s")
                .with_description("How long each processor's phase took.")
                .with_boundaries(PROCESSOR_BUCKETS.to_vec())
                .build(),
            cache: meter
                .u64_counter("infergate.cache.lookups")
                .with_unit("{lookup}")
                .with_description("Cache results: hit, miss, bypass.")
                .build(),
            findings: meter
                .u64_counter("infergate.guardrail.findings")
                .with_unit("{request}")
                .with_description("Requests on which a guardrail check fired, by check.")
                .build(),
            rejections: meter
                .u64_counter("infergate.rejections")
                .with_unit("{request}")
                .with_description("Requests refused, by reason and processor.")
                .build(),
            attempts: meter
                .u64_counter("infergate.failover.attempts")
                .with_unit("{attempt}")
                .with_description("Upstream attempts, by backend and outcome.")
                .build(),
            backend_up: meter
                .u64_gauge("infergate.backend.up")
                .with_unit("1")
                .with_description("1 if the backend's last attempt was answered, 0 if it failed.")
                .build(),
            estimated: meter
                .u64_counter("infergate.usage.estimated")
                .with_unit("{request}")
                .with_description("Requests whose usage is an estimate (a stream cut short).")
                .build(),
            cost: meter
                .f64_counter("infergate.cost")
                .with_unit("USD")
                .with_description("Cost charged, in US dollars.")
                .build(),
            ratelimit_remaining: meter
                .u64_gauge("infergate.ratelimit.remaining")
                .with_unit("1")
                .with_description("The rate limit remaining after the principal's last request.")
                .build(),
        }
    }
}

/// A small, fast hasher for the caches' integer keys (FxHash's mix).
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// The most entries each cache keeps; past it a record is recorded unbound (correct, slower):
/// a flood of distinct models or principals cannot grow memory without bound.
const CACHE_MAX: usize = 4096;

/// Strings to small integers (0: absent).
#[derive(Default)]
struct Interner {
    ids: FxMap<Box<str>, u32>,
    names: Vec<Arc<str>>,
    /// The processors' names (process-wide, `'static`) by address.
    by_addr: FxMap<usize, u32>,
}

impl Interner {
    /// The id of a process-wide name, by its address (no hashing of the text after the first
    /// time; a `'static` name's address is never another's).
    fn id_static(&mut self, s: &'static str) -> u32 {
        let addr = s.as_ptr() as usize;
        if let Some(id) = self.by_addr.get(&addr) {
            return *id;
        }
        let id = self.id(Some(s));
        if self.by_addr.len() < CACHE_MAX {
            self.by_addr.insert(addr, id);
        }
        id
    }

    fn id(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return 0 };
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        if self.names.len() >= CACHE_MAX * 4 {
            // Too many distinct strings: one id for all the rest.
            return u32::MAX;
        }
        self.names.push(Arc::from(s));
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(Box::from(s), id);
        id
    }

    fn value(&self, id: u32) -> Value {
        match id {
            u32::MAX => Value::String("other".into()),
            id => self.names.get(id as usize - 1).map_or_else(
                || Value::String("".into()),
                |s| Value::String(s.clone().into()),
            ),
        }
    }
}

/// What a request's metrics are keyed by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesKey {
    op: u32,
    provider: u32,
    request_model: u32,
    response_model: u32,
    route: u32,
    backend: u32,
    principal: u32,
    error: u32,
    status: u16,
    cache: u32,
}

/// The bound instruments of one series, each bound on first use (a series never answered
/// from upstream has no token data points, not empty ones).
struct Series {
    base: Vec<KeyValue>,
    error: Option<KeyValue>,
    request_duration: BoundHistogram<f64>,
    requests: BoundCounter<u64>,
    cache: Option<BoundCounter<u64>>,
    operation_duration: Option<BoundHistogram<f64>>,
    ttft: Option<BoundHistogram<f64>>,
    tpot: Option<BoundHistogram<f64>>,
    token_input: Option<BoundHistogram<u64>>,
    token_output: Option<BoundHistogram<u64>>,
    tokens: [Option<BoundCounter<u64>>; 5],
    cost: Option<BoundCounter<f64>>,
    estimated: Option<BoundCounter<u64>>,
}

/// The handle in `slot`, bound now if it was not.
fn lazy<T>(slot: &mut Option<T>, bind: impl FnOnce() -> T) -> &T {
    slot.get_or_insert_with(bind)
}

fn plus(base: &[KeyValue], extra: &[KeyValue]) -> Vec<KeyValue> {
    let mut v = base.to_vec();
    v.extend_from_slice(extra);
    v
}

const TOKEN_TYPES: [&str; 5] = [
    "input",
    "output",
    "cache_read",
    "cache_creation",
    "reasoning",
];

/// A processor phase's key: processor, phase, decision, reason.
type StageKey = (u32, u8, u8, u32);
/// Its decision counter and duration histogram.
type StageHandles = (BoundCounter<u64>, BoundHistogram<f64>);

/// The metrics of the telemetry thread.
pub(crate) struct Metrics {
    i: Instruments,
    names: Interner,
    series: FxMap<SeriesKey, Series>,
    stages: FxMap<StageKey, StageHandles>,
    attempts: FxMap<(u32, u32), BoundCounter<u64>>,
    backend_up: FxMap<u32, BoundGauge<u64>>,
    findings: FxMap<u32, BoundCounter<u64>>,
    rejections: FxMap<(u32, u32, u32, u32, u32), BoundCounter<u64>>,
    ratelimit: FxMap<(u32, bool), BoundGauge<u64>>,
    principal_label: bool,
}

fn phase_id(p: &str) -> u8 {
    match p {
        "request" => 0,
        "response_head" => 1,
        "response_body" => 2,
        _ => 3,
    }
}

impl Metrics {
    pub(crate) fn new(meter: &Meter, dropped: Arc<AtomicU64>, principal_label: bool) -> Self {
        Self {
            i: Instruments::new(meter, dropped),
            names: Interner::default(),
            series: FxMap::default(),
            stages: FxMap::default(),
            attempts: FxMap::default(),
            backend_up: FxMap::default(),
            findings: FxMap::default(),
            rejections: FxMap::default(),
            ratelimit: FxMap::default(),
            principal_label,
        }
    }

    fn kv(&self, key: &'static str, id: u32) -> Option<KeyValue> {
        kv(&self.names, key, id)
    }

    /// The attributes shared by a series' instruments: the conventions' and infergate's.
    fn base(&self, k: &SeriesKey) -> Vec<KeyValue> {
        [
            self.kv("gen_ai.operation.name", k.op),
            self.kv("gen_ai.provider.name", k.provider),
            self.kv("gen_ai.request.model", k.request_model),
            self.kv("gen_ai.response.model", k.response_model),
            self.kv("infergate.route", k.route),
            self.kv("infergate.backend", k.backend),
            self.kv("infergate.principal", k.principal),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn series(&self, k: &SeriesKey) -> Series {
        let base = self.base(k);
        let err = self.kv("error.type", k.error);
        let cache = self.kv("infergate.cache", k.cache);
        let status = KeyValue::new("http.response.status_code", i64::from(k.status));
        let mut req = plus(&base, &[status]);
        req.extend(cache.clone());
        Series {
            request_duration: self.i.request_duration.bind(&plus(&base, err.as_slice())),
            requests: self.i.requests.bind(&req),
            cache: cache.map(|c| self.i.cache.bind(&plus(&base, &[c]))),
            operation_duration: None,
            ttft: None,
            tpot: None,
            token_input: None,
            token_output: None,
            tokens: [None, None, None, None, None],
            cost: None,
            estimated: None,
            base,
            error: err,
        }
    }

    /// Records one request.
    pub(crate) fn record(&mut self, r: &Record, provider: &str) {
        let principal = if self.principal_label {
            r.opt(r.principal)
        } else {
            None
        };
        let err = error_type(r);
        let key = SeriesKey {
            op: self.names.id(Some(operation(r))),
            provider: self.names.id(Some(provider)),
            request_model: self.names.id(r.opt(r.request_model)),
            response_model: self.names.id(r.opt(r.response_model)),
            route: self.names.id(r.opt(r.route)),
            backend: self.names.id(r.opt(r.backend)),
            principal: self.names.id(principal),
            error: self.names.id(err.as_deref()),
            status: r.status,
            cache: self.names.id(r.cache),
        };
        if !self.series.contains_key(&key) {
            let mut s = self.series(&key);
            if self.series.len() >= CACHE_MAX {
                Self::record_series(&self.i, &mut s, r, err.is_none());
                self.record_rest(r, key);
                return;
            }
            self.series.insert(key, s);
        }
        if let Some(s) = self.series.get_mut(&key) {
            Self::record_series(&self.i, s, r, err.is_none());
        }
        self.record_rest(r, key);
    }

    fn record_series(i: &Instruments, s: &mut Series, r: &Record, ok: bool) {
        s.request_duration.record(r.duration.as_secs_f64());
        s.requests.add(1);
        if let Some(c) = &s.cache {
            c.add(1);
        }
        let base = &s.base;
        // The upstream operation: from the first attempt to the end (none for a local answer).
        if let (Some(first), Some(start)) = (r.attempts.first(), r.start) {
            let since = first.start.duration_since(start).unwrap_or_default();
            let err = s.error.clone();
            lazy(&mut s.operation_duration, || {
                i.operation_duration.bind(&plus(base, err.as_slice()))
            })
            .record(r.duration.saturating_sub(since).as_secs_f64());
        }
        // A cache hit's usage is what the cached answer says; no tokens were spent for it.
        if let Some(u) = r.usage.filter(|_| r.cache != Some("hit")) {
            let typed = |t: &'static str| plus(base, &[KeyValue::new("gen_ai.token.type", t)]);
            lazy(&mut s.token_input, || i.token_usage.bind(&typed("input"))).record(u.input_tokens);
            lazy(&mut s.token_output, || i.token_usage.bind(&typed("output")))
                .record(u.output_tokens);
            let counts = [
                u.input_tokens,
                u.output_tokens,
                u.cache_read_input_tokens,
                u.cache_creation_input_tokens,
                u.reasoning_tokens,
            ];
            for ((slot, n), t) in s.tokens.iter_mut().zip(counts).zip(TOKEN_TYPES) {
                if n > 0 {
                    lazy(slot, || i.tokens.bind(&typed(t))).add(n);
                }
            }
            if r.usage_estimated {
                lazy(&mut s.estimated, || i.estimated.bind(base)).add(1);
            }
        }
        if ok {
            if let Some(t) = r.ttft {
                lazy(&mut s.ttft, || i.ttft.bind(base)).record(t.as_secs_f64());
            }
            if let Some(t) = r.tpot {
                lazy(&mut s.tpot, || i.tpot.bind(base)).record(t.as_secs_f64());
            }
        }
        if let Some(c) = r.cost_usd {
            lazy(&mut s.cost, || i.cost.bind(base)).add(c);
        }
    }

    #[allow(clippy::many_single_char_names)]
    fn record_rest(&mut self, r: &Record, key: SeriesKey) {
        for st in &r.stages {
            let reason = match st.outcome {
                infergate_core::StageOutcome::Rejected(k) => Some(k.code()),
                _ => None,
            };
            let k = (
                self.names.id_static(st.processor),
                phase_id(st.phase.as_str()),
                stage_outcome_id(st.outcome.as_str()),
                self.names.id(reason),
            );
            if let Some((c, h)) = self.stage(k, st.phase.as_str(), st.outcome.as_str(), reason) {
                c.add(1);
                h.record(st.elapsed.as_secs_f64());
            }
        }
        if let Some(by) = r.opt(r.stream_stopped_by) {
            let reason = r.rejection.unwrap_or("stopped");
            let k = (
                self.names.id(Some(by)),
                phase_id("stream"),
                stage_outcome_id("reject"),
                self.names.id(Some(reason)),
            );
            if let Some((c, _)) = self.stage(k, "stream", "reject", Some(reason)) {
                c.add(1);
            }
        }
        for a in &r.attempts {
            let k = (
                self.names.id(Some(&a.backend)),
                self.names.id(Some(a.outcome)),
            );
            let c = cached(&mut self.attempts, k, || {
                self.i.attempts.bind(&[
                    KeyValue::new("infergate.backend", self.names.value(k.0)),
                    KeyValue::new("infergate.attempt.outcome", a.outcome),
                ])
            });
            c.add(1);
            if a.outcome != "cancelled" {
                let up = u64::from(a.outcome == "answer" && a.status.is_some_and(|s| s < 500));
                let g = cached(&mut self.backend_up, k.0, || {
                    self.i
                        .backend_up
                        .bind(&[KeyValue::new("infergate.backend", self.names.value(k.0))])
                });
                g.record(up);
            }
        }
        for check in r.findings() {
            let id = self.names.id(Some(check));
            let c = cached(&mut self.findings, id, || {
                self.i.findings.bind(&[KeyValue::new(
                    "infergate.guardrail.check",
                    self.names.value(id),
                )])
            });
            c.add(1);
        }
        if let Some(reason) = r.rejection {
            let k = (
                self.names.id(Some(reason)),
                self.names.id(r.opt(r.rejected_by)),
                key.route,
                key.backend,
                key.principal,
            );
            let (names, i) = (&self.names, &self.i);
            let c = cached(&mut self.rejections, k, || {
                let attrs: Vec<KeyValue> = [
                    kv(names, "infergate.reason", k.0),
                    kv(names, "infergate.processor", k.1),
                    kv(names, "infergate.route", k.2),
                    kv(names, "infergate.backend", k.3),
                    kv(names, "infergate.principal", k.4),
                ]
                .into_iter()
                .flatten()
                .collect();
                i.rejections.bind(&attrs)
            });
            c.add(1);
        }
        for (limit, n) in [
            (false, r.ratelimit_remaining_requests),
            (true, r.ratelimit_remaining_tokens),
        ] {
            let Some(n) = n else { continue };
            let k = (key.principal, limit);
            let (names, i) = (&self.names, &self.i);
            let g = cached(&mut self.ratelimit, k, || {
                let mut attrs: Vec<KeyValue> =
                    kv(names, "infergate.principal", k.0).into_iter().collect();
                attrs.push(KeyValue::new(
                    "infergate.limit",
                    if limit { "tokens" } else { "requests" },
                ));
                i.ratelimit_remaining.bind(&attrs)
            });
            g.record(n);
        }
    }

    fn stage(
        &mut self,
        k: StageKey,
        phase: &'static str,
        decision: &'static str,
        reason: Option<&'static str>,
    ) -> Option<&StageHandles> {
        if !self.stages.contains_key(&k) {
            if self.stages.len() >= CACHE_MAX {
                return None;
            }
            let processor = self.names.value(k.0);
            let mut attrs = vec![
                KeyValue::new("infergate.processor", processor.clone()),
                KeyValue::new("infergate.phase", phase),
            ];
            let h = self.i.processor_duration.bind(&attrs);
            attrs.push(KeyValue::new("infergate.decision", decision));
            if let Some(r) = reason {
                attrs.push(KeyValue::new("infergate.reason", r));
            }
            let c = self.i.decisions.bind(&attrs);
            self.stages.insert(k, (c, h));
        }
        self.stages.get(&k)
    }
}

fn kv(names: &Interner, key: &'static str, id: u32) -> Option<KeyValue> {
    (id != 0).then(|| KeyValue::new(key, names.value(id)))
}

fn stage_outcome_id(s: &str) -> u8 {
    match s {
        "continue" => 0,
        "reject" => 1,
        "respond" => 2,
        "failed_open" => 3,
        _ => 4,
    }
}

/// The cached handle for `k`, made by `make` when missing (within [`CACHE_MAX`]; past it a
/// fresh handle each time, which records the same).
fn cached<K: std::hash::Hash + Eq + Copy, V>(
    map: &mut FxMap<K, V>,
    k: K,
    make: impl FnOnce() -> V,
) -> &V {
    if !map.contains_key(&k) {
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(k, make());
    }
    &map[&k]
}
