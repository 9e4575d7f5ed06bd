//! The telemetry thread: turns request records into metrics, spans and access log lines, and
//! exports them. Everything costly happens here, off the request path.

use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::config::{AccessLogSink, SEMCONV_SCHEMA_URL, TelemetryConfig};
use crate::record::{Record, Sink};
use crate::{Redactor, access_log, spans};

/// What the telemetry thread is asked besides records.
pub(crate) enum Request {
    /// Export everything, then acknowledge.
    Flush(tokio::sync::oneshot::Sender<()>),
    /// Acknowledge once every record queued before is aggregated (no export).
    Sync(tokio::sync::oneshot::Sender<()>),
}

/// Between the request path and the telemetry thread: a bounded list the thread takes whole
/// every few milliseconds. A record costs the request path one uncontended lock and a push —
/// a wake-up only once per [`WAKE_AT`] records; a full queue drops and counts, never waits.
pub(crate) struct Queue {
    #[allow(clippy::vec_box)] // records move between the lists and the request path by pointer
    records: Mutex<Vec<Box<Record>>>,
    /// Records the thread is done with, emptied, for the request path to fill again: the
    /// request path then allocates nothing for its record, and the thread frees nothing the
    /// request path allocated (glibc's arenas lock when one thread frees another's memory).
    #[allow(clippy::vec_box)]
    free: Mutex<Vec<Box<Record>>>,
    requests: Mutex<Vec<Request>>,
    cap: usize,
    pub(crate) dropped: Arc<AtomicU64>,
    thread: OnceLock<std::thread::Thread>,
}

impl Queue {
    pub(crate) fn new(cap: usize, dropped: Arc<AtomicU64>) -> Self {
        Self {
            records: Mutex::new(Vec::new()),
            free: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            cap,
            dropped,
            thread: OnceLock::new(),
        }
    }

    /// Asks the thread for something and wakes it.
    pub(crate) fn ask(&self, request: Request) {
        lock(&self.requests).push(request);
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Emptied records kept for reuse at most.
const FREE_MAX: usize = 4096;

impl Sink for Queue {
    fn fresh(&self) -> Box<Record> {
        let reused = lock(&self.free).pop();
        if let Some(mut r) = reused {
            // Emptied here, not by the telemetry thread (which only reads it).
            r.clear();
            return r;
        }
        // A record's texts (path, host, models, ids) fit in this without regrowing.
        let mut r = Box::<Record>::default();
        r.text.reserve(256);
        r.stages.reserve(16);
        r
    }

    fn send(&self, record: Box<Record>) {
        let mut q = lock(&self.records);
        if q.len() < self.cap {
            q.push(record);
            if q.len() == WAKE_AT {
                drop(q);
                if let Some(t) = self.thread.get() {
                    t.unpark();
                }
            }
        } else {
            drop(q);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How often the thread takes the queue (at the latest).
const DRAIN_EVERY: Duration = Duration::from_millis(20);

/// The queue's length at which the request path wakes the thread (one wake-up per this many
/// requests at most): the records in flight then stay few enough to remain in the two cores'
/// caches as they go to the thread and back, without the thread waking on a short timer when
/// few requests come.
const WAKE_AT: usize = 256;

/// A span exporter behind a pointer.
pub(crate) trait DynSpanExporter: Send + Sync {
    fn export_boxed(&self, batch: Vec<SpanData>) -> BoxFuture<'_, OTelSdkResult>;
    fn set_resource_dyn(&mut self, resource: &Resource);
    fn shutdown_dyn(&self);
}

impl<T: SpanExporter + Sync + 'static> DynSpanExporter for T {
    fn export_boxed(&self, batch: Vec<SpanData>) -> BoxFuture<'_, OTelSdkResult> {
        Box::pin(self.export(batch))
    }
    fn set_resource_dyn(&mut self, resource: &Resource) {
        self.set_resource(resource);
    }
    fn shutdown_dyn(&self) {
        let _ = self.shutdown();
    }
}

/// A push metric exporter behind a pointer.
pub(crate) trait DynMetricExporter: Send + Sync {
    fn export_boxed<'a>(&'a self, metrics: &'a ResourceMetrics) -> BoxFuture<'a, OTelSdkResult>;
    fn temporality_dyn(&self) -> Temporality;
    fn shutdown_dyn(&self);
}

impl<T: PushMetricExporter + 'static> DynMetricExporter for T {
    fn export_boxed<'a>(&'a self, metrics: &'a ResourceMetrics) -> BoxFuture<'a, OTelSdkResult> {
        Box::pin(self.export(metrics))
    }
    fn temporality_dyn(&self) -> Temporality {
        self.temporality()
    }
    fn shutdown_dyn(&self) {
        let _ = self.shutdown();
    }
}

/// A manual reader shared between the meter provider and whoever collects from it.
#[derive(Debug, Clone)]
pub(crate) struct SharedReader(pub(crate) Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }
    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// What the thread is given to start.
pub(crate) struct WorkerSetup {
    pub(crate) config: TelemetryConfig,
    pub(crate) dropped: Arc<AtomicU64>,
    /// The metrics' plain aggregates, shared with the scrape.
    pub(crate) store: crate::agg::SharedStore,
    pub(crate) span_exporters: Vec<Box<dyn DynSpanExporter>>,
    /// The built-in OTLP/HTTP span sender (spans encoded straight into protobuf).
    #[cfg(feature = "otlp-http")]
    pub(crate) http_spans: Option<crate::export::HttpOtlp>,
    /// The built-in OTLP/HTTP metric sender (the plain aggregates encoded at each export).
    #[cfg(feature = "otlp-http")]
    pub(crate) http_metrics: Option<crate::export::HttpOtlp>,
    pub(crate) metric_exporters: Vec<Box<dyn DynMetricExporter>>,
    pub(crate) redactor: Option<Redactor>,
}

/// The providers' names per backend, and the thread's working state.
pub(crate) struct Worker {
    config: TelemetryConfig,
    provider: SdkMeterProvider,
    metrics: Option<crate::metrics::Metrics>,
    store: crate::agg::SharedStore,
    pushes: Vec<(SharedReader, Box<dyn DynMetricExporter>)>,
    span_exporters: Vec<Box<dyn DynSpanExporter>>,
    batch: Vec<SpanData>,
    /// Spans encoded for the built-in OTLP/HTTP sender, and the sender.
    #[cfg(feature = "otlp-http")]
    proto: Option<(crate::otlp::ProtoSpans, crate::export::HttpOtlp)>,
    /// The built-in OTLP/HTTP metric sender, and the envelope of its requests.
    #[cfg(feature = "otlp-http")]
    http_metrics: Option<(crate::otlp::Envelope, crate::export::HttpOtlp)>,
    scope: InstrumentationScope,
    log: Option<Box<dyn Write + Send>>,
    /// The access log line being written (one buffer for every line).
    line: Vec<u8>,
    log_sample_below: u64,
    redactor: Option<Redactor>,
    resource: Resource,
}

pub(crate) fn resource(config: &TelemetryConfig) -> Resource {
    Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Worker {
    pub(crate) fn new(setup: WorkerSetup) -> std::io::Result<Self> {
        let WorkerSetup {
            config,
            dropped,
            store,
            mut span_exporters,
            #[cfg(feature = "otlp-http")]
            http_spans,
            #[cfg(feature = "otlp-http")]
            http_metrics,
            metric_exporters,
            redactor,
        } = setup;
        let resource = resource(&config);
        // The SDK aggregates only for exporters of pushed metrics; Prometheus reads the plain
        // aggregates.
        let mut builder = SdkMeterProvider::builder().with_resource(resource.clone());
        let mut pushes = Vec::new();
        for e in metric_exporters {
            let reader = SharedReader(Arc::new(
                ManualReader::builder()
                    .with_temporality(e.temporality_dyn())
                    .build(),
            ));
            builder = builder.with_reader(reader.clone());
            pushes.push((reader, e));
        }
        let provider = builder.build();
        let scope = InstrumentationScope::builder("infergate-observe")
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_schema_url(SEMCONV_SCHEMA_URL)
            .build();
        let meter = provider.meter_with_scope(scope.clone());
        let metrics = config.metrics.then(|| {
            crate::metrics::Metrics::new(
                (!pushes.is_empty()).then_some(&meter),
                &mut crate::agg::lock(&store),
                dropped,
                config.principal_label,
            )
        });
        for e in &mut span_exporters {
            e.set_resource_dyn(&resource);
        }
        let log: Option<Box<dyn Write + Send>> = match config.access_log.as_ref().map(|a| &a.sink) {
            None => None,
            // Buffered, flushed once per batch (std's stdout would write each line on its own).
            Some(AccessLogSink::Stdout) => Some(Box::new(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            ))),
            Some(AccessLogSink::Stderr) => Some(Box::new(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stderr(),
            ))),
            Some(AccessLogSink::File(path)) => Some(Box::new(std::io::BufWriter::with_capacity(
                1 << 16,
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ))),
        };
        let log_sample_below = config
            .access_log
            .as_ref()
            .map_or(u64::MAX, |a| ratio_threshold(a.sample));
        Ok(Self {
            config,
            provider,
            metrics,
            store,
            pushes,
            span_exporters,
            batch: Vec::new(),
            #[cfg(feature = "otlp-http")]
            proto: http_spans.map(|h| {
                (
                    crate::otlp::ProtoSpans::new(crate::otlp::Envelope::new(&resource)),
                    h,
                )
            }),
            #[cfg(feature = "otlp-http")]
            http_metrics: http_metrics.map(|h| (crate::otlp::Envelope::new(&resource), h)),
            scope,
            log,
            line: Vec::with_capacity(1024),
            log_sample_below,
            redactor,
            resource,
        })
    }

    /// Runs until the queue has no other owner: takes the queue every few milliseconds (or
    /// when asked), exports every interval, and once more at the end.
    pub(crate) fn run(mut self, queue: &Arc<Queue>, rt: &tokio::runtime::Runtime) {
        let _ = queue.thread.set(std::thread::current());
        let interval = Duration::from_millis(
            self.config
                .otlp
                .as_ref()
                .map_or(10_000, |o| o.interval_ms.max(1)),
        );
        let mut next = Instant::now() + interval;
        let mut spare: Vec<Box<Record>> = Vec::new();
        loop {
            std::thread::park_timeout(
                DRAIN_EVERY.min(next.saturating_duration_since(Instant::now())),
            );
            // Requests first: every record queued before a request is then in the batch.
            let requests = std::mem::take(&mut *lock(&queue.requests));
            let mut batch =
                std::mem::replace(&mut *lock(&queue.records), std::mem::take(&mut spare));
            let mut done = Vec::with_capacity(batch.len());
            // Wall-clock times from the monotonic ones the request path read: one pair of
            // clock reads per batch, not one wall-clock read per request.
            let (mono, wall) = (Instant::now(), SystemTime::now());
            for r in batch.drain(..) {
                let start = r.started.map_or(wall, |t| {
                    wall.checked_sub(mono.saturating_duration_since(t))
                        .unwrap_or(SystemTime::UNIX_EPOCH)
                });
                self.record(&r, start);
                if self.batch.len() >= 512 || self.proto_pending() >= 512 {
                    self.export_spans(rt);
                }
                // Emptied by the request path when it takes the record again: the thread
                // only reads it (its memory then needs no round trip between the cores).
                done.push(r);
            }
            spare = batch;
            {
                let mut free = lock(&queue.free);
                let room = FREE_MAX.saturating_sub(free.len());
                done.truncate(room);
                free.append(&mut done);
            }
            self.flush_log();
            for req in requests {
                match req {
                    Request::Flush(ack) => {
                        self.export(rt);
                        let _ = ack.send(());
                    }
                    Request::Sync(ack) => {
                        let _ = ack.send(());
                    }
                }
            }
            if Instant::now() >= next {
                self.export(rt);
                next = Instant::now() + interval;
            }
            if Arc::strong_count(queue) == 1 && lock(&queue.records).is_empty() {
                self.export(rt);
                for e in &self.span_exporters {
                    e.shutdown_dyn();
                }
                for (_, e) in &self.pushes {
                    e.shutdown_dyn();
                }
                let _ = self.provider.shutdown();
                return;
            }
        }
    }

    fn flush_log(&mut self) {
        if let Some(w) = &mut self.log {
            let _ = w.flush();
        }
    }

    fn export(&mut self, rt: &tokio::runtime::Runtime) {
        self.flush_log();
        self.export_spans(rt);
        #[cfg(feature = "otlp-http")]
        if let Some((env, sender)) = &self.http_metrics {
            let body = crate::otlp::metrics_request(
                &crate::agg::lock(&self.store),
                env,
                std::time::SystemTime::now(),
            );
            if let Some(body) = body
                && let Err(err) = rt.block_on(sender.send(body))
            {
                tracing::warn!(error = %err, "metrics export failed");
            }
        }
        for (reader, exporter) in &self.pushes {
            let mut rm = ResourceMetrics::default();
            if reader.collect(&mut rm).is_ok()
                && let Err(e) = rt.block_on(exporter.export_boxed(&rm))
            {
                tracing::warn!(error = %e, "metrics export failed");
            }
        }
    }

    /// Spans encoded and not yet sent.
    #[cfg_attr(not(feature = "otlp-http"), allow(clippy::unused_self))]
    fn proto_pending(&self) -> usize {
        #[cfg(feature = "otlp-http")]
        if let Some((p, _)) = &self.proto {
            return p.count;
        }
        0
    }

    fn export_spans(&mut self, rt: &tokio::runtime::Runtime) {
        #[cfg(feature = "otlp-http")]
        if let Some((p, sender)) = &mut self.proto
            && let Some(body) = p.take_request()
            && let Err(err) = rt.block_on(sender.send(body))
        {
            tracing::warn!(error = %err, "span export failed");
        }
        if self.batch.is_empty() {
            return;
        }
        let mut batch = Some(std::mem::take(&mut self.batch));
        let n = self.span_exporters.len();
        for (i, e) in self.span_exporters.iter().enumerate() {
            let b = if i + 1 == n {
                batch.take().unwrap_or_default()
            } else {
                batch.clone().unwrap_or_default()
            };
            if let Err(err) = rt.block_on(e.export_boxed(b)) {
                tracing::warn!(error = %err, "span export failed");
            }
        }
    }

    /// Metrics, spans and the access log line of a record that started at `start`.
    fn record(&mut self, r: &Record, start: SystemTime) {
        let provider = provider_of(&self.config, r);
        if let Some(m) = &mut self.metrics {
            m.record(&mut crate::agg::lock(&self.store), r, start, provider);
        }
        if self.config.traces && r.trace.is_some_and(|t| t.is_sampled()) {
            #[cfg(feature = "otlp-http")]
            if let Some((p, _)) = &mut self.proto {
                spans::describe(
                    r,
                    start,
                    provider,
                    &self.config.providers,
                    self.redactor.as_ref(),
                    p,
                );
            }
            if !self.span_exporters.is_empty() {
                spans::describe(
                    r,
                    start,
                    provider,
                    &self.config.providers,
                    self.redactor.as_ref(),
                    &mut spans::SdkWriter::new(&mut self.batch, &self.scope),
                );
            }
        }
        if let Some(w) = &mut self.log {
            let always = r.status >= 400 || r.error_type.is_some() || r.rejection.is_some();
            if always
                || self.log_sample_below == u64::MAX
                || u64::from_be_bytes(infergate_core::trace::new_span_id()) < self.log_sample_below
            {
                let line = &mut self.line;
                line.clear();
                access_log::write_line(line, r, start, provider);
                line.push(b'\n');
                let _ = w.write_all(line);
            }
        }
    }
}

/// `u64::MAX` for always, else the threshold a random `u64` must be under.
pub(crate) fn ratio_threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio <= 0.0 {
        0
    } else {
        (ratio * u64::MAX as f64) as u64
    }
}

/// `gen_ai.operation.name` of the client's API.
pub(crate) fn operation(r: &Record) -> &'static str {
    use infergate_core::ApiKind;
    match r.api {
        Some(ApiKind::Embeddings) => "embeddings",
        Some(ApiKind::ChatCompletions | ApiKind::Responses | ApiKind::AnthropicMessages) => "chat",
        _ if r.get(r.path).ends_with("/completions") => "text_completion",
        _ => "chat",
    }
}

/// `gen_ai.provider.name`: the backend's configured provider, else the client API's.
pub(crate) fn provider_of<'a>(config: &'a TelemetryConfig, r: &Record) -> &'a str {
    if let Some(p) = r.opt(r.backend).and_then(|b| config.providers.get(b)) {
        return p;
    }
    match r.api {
        Some(infergate_core::ApiKind::AnthropicMessages) => "anthropic",
        _ => "openai",
    }
}

/// `error.type` of a request, if it failed.
pub(crate) fn error_type(r: &Record) -> Option<Cow<'_, str>> {
    if let Some(e) = r.error_type {
        return Some(Cow::Borrowed(e));
    }
    if let Some(k) = r.rejection {
        return Some(Cow::Borrowed(k));
    }
    (r.status >= 400).then(|| Cow::Owned(r.status.to_string()))
}

impl Worker {
    /// The resource (for tests of exporters).
    #[allow(dead_code)]
    pub(crate) fn resource(&self) -> &Resource {
        &self.resource
    }
}
