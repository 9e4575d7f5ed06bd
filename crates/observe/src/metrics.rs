//! Metrics: the conventions' instruments and infergate's, recorded from request records on
//! the telemetry thread into the plain aggregates ([`crate::agg`]) through handles cached per
//! attribute set: a record costs a few lookups of small integer keys and additions, not an
//! attribute set hashed and allocated per instrument (and the SDK's bound instruments too, only
//! when an SDK metric exporter is configured).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use opentelemetry::metrics::{
    BoundCounter, BoundGauge, BoundHistogram, Counter, Gauge, Histogram, Meter,
};
use opentelemetry::{KeyValue, Value};

use crate::agg::{Handle, Kind, Num, Store};
use crate::keys::{FxMap, Static};
use crate::record::Record;
use crate::worker::{error_type, operation};

/// An instrument: its plain family in the [`Store`] (what Prometheus shows), and the SDK's
/// instrument when metrics are pushed to an exporter.
struct Inst<I> {
    fam: u32,
    sdk: Option<I>,
}

/// An SDK instrument that binds to an attribute set.
trait SdkInst {
    type Bound;
    fn bind_sdk(&self, attrs: &[KeyValue]) -> Self::Bound;
}

/// A bound SDK instrument that takes a measurement.
trait SdkPut<T> {
    fn put(&self, v: T);
}

macro_rules! sdk_inst {
    ($inst:ty, $bound:ty, $t:ty, $method:ident) => {
        impl SdkInst for $inst {
            type Bound = $bound;
            fn bind_sdk(&self, attrs: &[KeyValue]) -> $bound {
                self.bind(attrs)
            }
        }
        impl SdkPut<$t> for $bound {
            fn put(&self, v: $t) {
                self.$method(v);
            }
        }
    };
}

sdk_inst!(Counter<u64>, BoundCounter<u64>, u64, add);
sdk_inst!(Counter<f64>, BoundCounter<f64>, f64, add);
sdk_inst!(Gauge<u64>, BoundGauge<u64>, u64, record);
sdk_inst!(Histogram<u64>, BoundHistogram<u64>, u64, record);
sdk_inst!(Histogram<f64>, BoundHistogram<f64>, f64, record);

impl<I: SdkInst> Inst<I> {
    fn bind(&self, st: &mut Store, attrs: &[KeyValue]) -> Bound<I::Bound> {
        Bound {
            h: st.bind(self.fam, attrs),
            sdk: self.sdk.as_ref().map(|i| i.bind_sdk(attrs)),
        }
    }
}

/// An instrument bound to one attribute set.
struct Bound<B> {
    h: Handle,
    sdk: Option<B>,
}

impl<B> Bound<B> {
    fn put<T: Copy + Into<Num>>(&self, st: &mut Store, v: T)
    where
        B: SdkPut<T>,
    {
        st.put(self.h, v.into());
        if let Some(b) = &self.sdk {
            b.put(v);
        }
    }
}

/// The instruments.
struct Instruments {
    token_usage: Inst<Histogram<u64>>,
    operation_duration: Inst<Histogram<f64>>,
    request_duration: Inst<Histogram<f64>>,
    ttft: Inst<Histogram<f64>>,
    tpot: Inst<Histogram<f64>>,
    requests: Inst<Counter<u64>>,
    tokens: Inst<Counter<u64>>,
    decisions: Inst<Counter<u64>>,
    processor_duration: Inst<Histogram<f64>>,
    cache: Inst<Counter<u64>>,
    findings: Inst<Counter<u64>>,
    rejections: Inst<Counter<u64>>,
    attempts: Inst<Counter<u64>>,
    backend_up: Inst<Gauge<u64>>,
    cost: Inst<Counter<f64>>,
    estimated: Inst<Counter<u64>>,
    ratelimit_remaining: Inst<Gauge<u64>>,
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

/// Makes each instrument in the store, and in the SDK when `meter` is given.
struct Maker<'a> {
    meter: Option<&'a Meter>,
    st: &'a mut Store,
}

/// A maker's method: the instrument in the store and, when pushing, in the SDK.
macro_rules! make {
    ($fn:ident, $inst:ty, $builder:ident, histogram, $float:expr) => {
        fn $fn(
            &mut self,
            name: &'static str,
            unit: &'static str,
            d: &'static str,
            bounds: &'static [f64],
        ) -> Inst<$inst> {
            Inst {
                fam: self
                    .st
                    .family(name, unit, d, Kind::Histogram(bounds), $float),
                sdk: self.meter.map(|m| {
                    m.$builder(name)
                        .with_unit(unit)
                        .with_description(d)
                        .with_boundaries(bounds.to_vec())
                        .build()
                }),
            }
        }
    };
    ($fn:ident, $inst:ty, $builder:ident, $kind:expr, $float:expr) => {
        fn $fn(&mut self, name: &'static str, unit: &'static str, d: &'static str) -> Inst<$inst> {
            Inst {
                fam: self.st.family(name, unit, d, $kind, $float),
                sdk: self
                    .meter
                    .map(|m| m.$builder(name).with_unit(unit).with_description(d).build()),
            }
        }
    };
}

impl Maker<'_> {
    make!(counter, Counter<u64>, u64_counter, Kind::Counter, false);
    make!(counter_f64, Counter<f64>, f64_counter, Kind::Counter, true);
    make!(gauge, Gauge<u64>, u64_gauge, Kind::Gauge, false);
    make!(histogram, Histogram<u64>, u64_histogram, histogram, false);
    make!(
        histogram_f64,
        Histogram<f64>,
        f64_histogram,
        histogram,
        true
    );
}

impl Instruments {
    fn new(meter: Option<&Meter>, st: &mut Store, dropped: Arc<AtomicU64>) -> Self {
        const DROPPED: (&str, &str, &str) = (
            "infergate.telemetry.dropped",
            "{record}",
            "Request records dropped because the telemetry queue was full.",
        );
        st.observed_counter(DROPPED.0, DROPPED.1, DROPPED.2, dropped.clone());
        if let Some(m) = meter {
            let _dropped = m
                .u64_observable_counter(DROPPED.0)
                .with_unit(DROPPED.1)
                .with_description(DROPPED.2)
                .with_callback(move |o| o.observe(dropped.load(Ordering::Relaxed), &[]))
                .build();
        }
        let mut k = Maker { meter, st };
        Self {
            token_usage: k.histogram(
                "gen_ai.client.token.usage",
                "{token}",
                "Number of input and output tokens used.",
                &TOKEN_BUCKETS,
            ),
            operation_duration: k.histogram_f64(
                "gen_ai.client.operation.duration",
                "s",
                "GenAI operation duration (the gateway's calls upstream).",
                &DURATION_BUCKETS,
            ),
            request_duration: k.histogram_f64(
                "gen_ai.server.request.duration",
                "s",
                "Generative AI server request duration (the gateway's whole request).",
                &DURATION_BUCKETS,
            ),
            ttft: k.histogram_f64(
                "gen_ai.server.time_to_first_token",
                "s",
                "Time to generate first token for successful responses.",
                &TTFT_BUCKETS,
            ),
            tpot: k.histogram_f64(
                "gen_ai.server.time_per_output_token",
                "s",
                "Time per output token generated after the first token for successful responses.",
                &TPOT_BUCKETS,
            ),
            requests: k.counter(
                "infergate.requests",
                "{request}",
                "Requests, by route, backend, model, principal, status and cache result.",
            ),
            tokens: k.counter(
                "infergate.usage.tokens",
                "{token}",
                "Tokens by type: input, output, cache_read, cache_creation, reasoning.",
            ),
            decisions: k.counter(
                "infergate.processor.decisions",
                "{decision}",
                "What each processor's phase came to.",
            ),
            processor_duration: k.histogram_f64(
                "infergate.processor.duration",
                "s",
                "How long each processor's phase took.",
                &PROCESSOR_BUCKETS,
            ),
            cache: k.counter(
                "infergate.cache.lookups",
                "{lookup}",
                "Cache results: hit, miss, bypass.",
            ),
            findings: k.counter(
                "infergate.guardrail.findings",
                "{request}",
                "Requests on which a guardrail check fired, by check.",
            ),
            rejections: k.counter(
                "infergate.rejections",
                "{request}",
                "Requests refused, by reason and processor.",
            ),
            attempts: k.counter(
                "infergate.failover.attempts",
                "{attempt}",
                "Upstream attempts, by backend and outcome.",
            ),
            backend_up: k.gauge(
                "infergate.backend.up",
                "1",
                "1 if the backend's last attempt was answered, 0 if it failed.",
            ),
            estimated: k.counter(
                "infergate.usage.estimated",
                "{request}",
                "Requests whose usage is an estimate (a stream cut short).",
            ),
            cost: k.counter_f64("infergate.cost", "USD", "Cost charged, in US dollars."),
            ratelimit_remaining: k.gauge(
                "infergate.ratelimit.remaining",
                "1",
                "The rate limit remaining after the principal's last request.",
            ),
        }
    }
}

/// The most entries each cache keeps; past it a record is recorded unbound (correct, slower):
/// a flood of distinct models or principals cannot grow memory without bound.
const CACHE_MAX: usize = 4096;

/// Strings to small integers (0: absent).
#[derive(Default)]
struct Interner {
    ids: FxMap<Box<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
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
    request_duration: Bound<BoundHistogram<f64>>,
    requests: Bound<BoundCounter<u64>>,
    cache: Option<Bound<BoundCounter<u64>>>,
    operation_duration: Option<Bound<BoundHistogram<f64>>>,
    ttft: Option<Bound<BoundHistogram<f64>>>,
    tpot: Option<Bound<BoundHistogram<f64>>>,
    token_input: Option<Bound<BoundHistogram<u64>>>,
    token_output: Option<Bound<BoundHistogram<u64>>>,
    tokens: [Option<Bound<BoundCounter<u64>>>; 5],
    cost: Option<Bound<BoundCounter<f64>>>,
    estimated: Option<Bound<BoundCounter<u64>>>,
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

/// A processor phase's key: processor, phase, decision, reason (all process-wide names).
type StageKey = (Static, Static, Static, Option<Static>);
/// Its decision counter and duration histogram.
type StageHandles = (Bound<BoundCounter<u64>>, Bound<BoundHistogram<f64>>);

/// A rejection's key: reason, processor, route, backend, principal.
type RejectionKey = (u32, u32, u32, u32, u32);

/// The metrics of the telemetry thread.
pub(crate) struct Metrics {
    i: Instruments,
    names: Interner,
    series: FxMap<SeriesKey, Series>,
    stages: FxMap<StageKey, StageHandles>,
    /// Streams stopped, by processor and reason.
    stream_stops: FxMap<(u32, u32), Bound<BoundCounter<u64>>>,
    attempts: FxMap<(u32, u32), Bound<BoundCounter<u64>>>,
    backend_up: FxMap<u32, Bound<BoundGauge<u64>>>,
    findings: FxMap<u32, Bound<BoundCounter<u64>>>,
    rejections: FxMap<RejectionKey, Bound<BoundCounter<u64>>>,
    ratelimit: FxMap<(u32, bool), Bound<BoundGauge<u64>>>,
    principal_label: bool,
}

impl Metrics {
    /// The instruments, made in `st` (what Prometheus renders) and, when `meter` is given
    /// (metrics pushed to an exporter), in the SDK too.
    pub(crate) fn new(
        meter: Option<&Meter>,
        st: &mut Store,
        dropped: Arc<AtomicU64>,
        principal_label: bool,
    ) -> Self {
        Self {
            i: Instruments::new(meter, st, dropped),
            names: Interner::default(),
            series: FxMap::default(),
            stages: FxMap::default(),
            stream_stops: FxMap::default(),
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

    fn series(&self, st: &mut Store, k: &SeriesKey) -> Series {
        let base = self.base(k);
        let err = self.kv("error.type", k.error);
        let cache = self.kv("infergate.cache", k.cache);
        let status = KeyValue::new("http.response.status_code", i64::from(k.status));
        let mut req = plus(&base, &[status]);
        req.extend(cache.clone());
        Series {
            request_duration: self
                .i
                .request_duration
                .bind(st, &plus(&base, err.as_slice())),
            requests: self.i.requests.bind(st, &req),
            cache: cache.map(|c| self.i.cache.bind(st, &plus(&base, &[c]))),
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
    pub(crate) fn record(&mut self, st: &mut Store, r: &Record, start: SystemTime, provider: &str) {
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
            let mut s = self.series(st, &key);
            if self.series.len() >= CACHE_MAX {
                Self::record_series(&self.i, st, &mut s, r, start, err.is_none());
                self.record_rest(st, r, key);
                return;
            }
            self.series.insert(key, s);
        }
        if let Some(s) = self.series.get_mut(&key) {
            Self::record_series(&self.i, st, s, r, start, err.is_none());
        }
        self.record_rest(st, r, key);
    }

    fn record_series(
        i: &Instruments,
        st: &mut Store,
        s: &mut Series,
        r: &Record,
        start: SystemTime,
        ok: bool,
    ) {
        s.request_duration.put(st, r.duration.as_secs_f64());
        s.requests.put(st, 1);
        if let Some(c) = &s.cache {
            c.put(st, 1);
        }
        let base = &s.base;
        // The upstream operation: from the first attempt to the end (none for a local answer).
        if let Some(first) = r.attempts.first() {
            let since = first.start.duration_since(start).unwrap_or_default();
            let err = s.error.clone();
            lazy(&mut s.operation_duration, || {
                i.operation_duration.bind(st, &plus(base, err.as_slice()))
            })
            .put(st, r.duration.saturating_sub(since).as_secs_f64());
        }
        // A cache hit's usage is what the cached answer says; no tokens were spent for it.
        if let Some(u) = r.usage.filter(|_| r.cache != Some("hit")) {
            let typed = |t: &'static str| plus(base, &[KeyValue::new("gen_ai.token.type", t)]);
            lazy(&mut s.token_input, || {
                i.token_usage.bind(st, &typed("input"))
            })
            .put(st, u.input_tokens);
            lazy(&mut s.token_output, || {
                i.token_usage.bind(st, &typed("output"))
            })
            .put(st, u.output_tokens);
            let counts = [
                u.input_tokens,
                u.output_tokens,
                u.cache_read_input_tokens,
                u.cache_creation_input_tokens,
                u.reasoning_tokens,
            ];
            for ((slot, n), t) in s.tokens.iter_mut().zip(counts).zip(TOKEN_TYPES) {
                if n > 0 {
                    lazy(slot, || i.tokens.bind(st, &typed(t))).put(st, n);
                }
            }
            if r.usage_estimated {
                lazy(&mut s.estimated, || i.estimated.bind(st, base)).put(st, 1);
            }
        }
        if ok {
            if let Some(t) = r.ttft {
                lazy(&mut s.ttft, || i.ttft.bind(st, base)).put(st, t.as_secs_f64());
            }
            if let Some(t) = r.tpot {
                lazy(&mut s.tpot, || i.tpot.bind(st, base)).put(st, t.as_secs_f64());
            }
        }
        if let Some(c) = r.cost_usd {
            lazy(&mut s.cost, || i.cost.bind(st, base)).put(st, c);
        }
    }

    #[allow(clippy::many_single_char_names)]
    fn record_rest(&mut self, st: &mut Store, r: &Record, key: SeriesKey) {
        for stage in &r.stages {
            let reason = match stage.outcome {
                infergate_core::StageOutcome::Rejected(k) => Some(k.code()),
                _ => None,
            };
            let k = (
                Static(stage.processor),
                Static(stage.phase.as_str()),
                Static(stage.outcome.as_str()),
                reason.map(Static),
            );
            if let Some((c, h)) = self.stage(st, k) {
                c.put(st, 1);
                h.put(st, stage.elapsed.as_secs_f64());
            }
        }
        if let Some(by) = r.opt(r.stream_stopped_by) {
            let reason = r.rejection.unwrap_or("stopped");
            let k = (self.names.id(Some(by)), self.names.id(Some(reason)));
            let (names, i) = (&self.names, &self.i);
            let c = cached(&mut self.stream_stops, k, || {
                i.decisions.bind(
                    st,
                    &[
                        KeyValue::new("infergate.processor", names.value(k.0)),
                        KeyValue::new("infergate.phase", "stream"),
                        KeyValue::new("infergate.decision", "reject"),
                        KeyValue::new("infergate.reason", names.value(k.1)),
                    ],
                )
            });
            c.put(st, 1);
        }
        for a in &r.attempts {
            let k = (
                self.names.id(Some(&a.backend)),
                self.names.id(Some(a.outcome)),
            );
            let (names, i) = (&self.names, &self.i);
            let c = cached(&mut self.attempts, k, || {
                i.attempts.bind(
                    st,
                    &[
                        KeyValue::new("infergate.backend", names.value(k.0)),
                        KeyValue::new("infergate.attempt.outcome", a.outcome),
                    ],
                )
            });
            c.put(st, 1);
            if a.outcome != "cancelled" {
                let up = u64::from(a.outcome == "answer" && a.status.is_some_and(|s| s < 500));
                let g = cached(&mut self.backend_up, k.0, || {
                    i.backend_up
                        .bind(st, &[KeyValue::new("infergate.backend", names.value(k.0))])
                });
                g.put(st, up);
            }
        }
        for check in r.findings() {
            let id = self.names.id(Some(check));
            let (names, i) = (&self.names, &self.i);
            let c = cached(&mut self.findings, id, || {
                i.findings.bind(
                    st,
                    &[KeyValue::new("infergate.guardrail.check", names.value(id))],
                )
            });
            c.put(st, 1);
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
                i.rejections.bind(st, &attrs)
            });
            c.put(st, 1);
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
                i.ratelimit_remaining.bind(st, &attrs)
            });
            g.put(st, n);
        }
    }

    /// The handles of a processor phase: one hash lookup when bound before.
    fn stage(&mut self, st: &mut Store, k: StageKey) -> Option<&StageHandles> {
        let full = self.stages.len() >= CACHE_MAX;
        match self.stages.entry(k) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(_) if full => None,
            std::collections::hash_map::Entry::Vacant(e) => {
                let (processor, phase, decision, reason) = k;
                let mut attrs = vec![
                    KeyValue::new("infergate.processor", processor.0),
                    KeyValue::new("infergate.phase", phase.0),
                ];
                let h = self.i.processor_duration.bind(st, &attrs);
                attrs.push(KeyValue::new("infergate.decision", decision.0));
                if let Some(r) = reason {
                    attrs.push(KeyValue::new("infergate.reason", r.0));
                }
                let c = self.i.decisions.bind(st, &attrs);
                Some(e.insert((c, h)))
            }
        }
    }
}

fn kv(names: &Interner, key: &'static str, id: u32) -> Option<KeyValue> {
    (id != 0).then(|| KeyValue::new(key, names.value(id)))
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
