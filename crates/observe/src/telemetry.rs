//! The handle: builds the telemetry thread, hands out the processor, renders Prometheus text,
//! flushes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::trace::SpanExporter;

use crate::agg::{SharedStore, Store};
use crate::config::TelemetryConfig;
use crate::processor::{Observe, Shared};
use crate::worker::{
    DynMetricExporter, DynSpanExporter, Queue, Request, Worker, WorkerSetup, ratio_threshold,
};
use crate::{Redactor, TelemetryError};

/// Telemetry for a gateway: put [`processor`](Self::processor) first in the pipeline, serve
/// [`prometheus_text`](Self::prometheus_text) on an admin address, and the rest (spans,
/// OTLP, the access log) happens on the telemetry thread. Cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Arc<Queue>,
    dropped: Arc<AtomicU64>,
    /// The metrics' plain aggregates (the telemetry thread adds, a scrape renders).
    store: SharedStore,
    observe: Observe,
    _thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// Builds [`Telemetry`]: a configuration, and any exporters of one's own (the
/// OpenTelemetry SDK's in-memory exporters in tests, a vendor's exporter).
pub struct TelemetryBuilder {
    config: TelemetryConfig,
    span_exporters: Vec<Box<dyn DynSpanExporter>>,
    metric_exporters: Vec<Box<dyn DynMetricExporter>>,
    redactor: Option<Redactor>,
}

impl std::fmt::Debug for TelemetryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryBuilder")
            .field("config", &self.config)
            .field("span_exporters", &self.span_exporters.len())
            .field("metric_exporters", &self.metric_exporters.len())
            .field("redactor", &self.redactor.is_some())
            .finish()
    }
}

impl TelemetryBuilder {
    /// Sends spans to `exporter` too (in batches, from the telemetry thread).
    #[must_use]
    pub fn span_exporter<E: SpanExporter + Sync + 'static>(mut self, exporter: E) -> Self {
        self.span_exporters.push(Box::new(exporter));
        self
    }

    /// Pushes metrics to `exporter` too (every OTLP interval, and on [`Telemetry::flush`]).
    #[must_use]
    pub fn metric_exporter<E: PushMetricExporter + 'static>(mut self, exporter: E) -> Self {
        self.metric_exporters.push(Box::new(exporter));
        self
    }

    /// The redactor applied to captured content before it is recorded (the guardrail's
    /// detectors, for instance). Only used with
    /// [`capture_content`](TelemetryConfig::capture_content).
    #[must_use]
    pub fn redactor(mut self, redactor: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.redactor = Some(Arc::new(redactor));
        self
    }

    /// Starts the telemetry thread (and the OTLP exporters, when configured).
    pub fn build(mut self) -> Result<Telemetry, TelemetryError> {
        self.config.validate()?;
        let dropped = Arc::new(AtomicU64::new(0));
        let queue = Arc::new(Queue::new(self.config.queue, dropped.clone()));
        let thread_queue = queue.clone();
        let store: SharedStore = Arc::new(Mutex::new(Store::default()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), TelemetryError>>();
        let config = self.config.clone();
        let setup_store = store.clone();
        let setup_dropped = dropped.clone();
        let mut span_exporters = std::mem::take(&mut self.span_exporters);
        let mut metric_exporters = std::mem::take(&mut self.metric_exporters);
        let redactor = self.redactor.take();
        let thread = std::thread::Builder::new()
            .name("infergate-telemetry".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(TelemetryError::Io(e)));
                        return;
                    }
                };
                #[cfg(feature = "otlp-http")]
                let (mut http_spans, mut http_metrics) = (None, None);
                if let Some(o) = &config.otlp {
                    match rt.block_on(async { crate::export::otlp(o) }) {
                        Ok((s, m)) => {
                            match s {
                                #[cfg(feature = "otlp-http")]
                                crate::export::SpanOut::Http(h) => http_spans = Some(*h),
                                crate::export::SpanOut::Sdk(s) => span_exporters.push(s),
                            }
                            match m {
                                #[cfg(feature = "otlp-http")]
                                crate::export::MetricOut::Http(h) => http_metrics = Some(*h),
                                crate::export::MetricOut::Sdk(e) => metric_exporters.push(e),
                            }
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    }
                }
                let worker = Worker::new(WorkerSetup {
                    config,
                    dropped: setup_dropped,
                    store: setup_store,
                    span_exporters,
                    #[cfg(feature = "otlp-http")]
                    http_spans,
                    #[cfg(feature = "otlp-http")]
                    http_metrics,
                    metric_exporters,
                    redactor,
                });
                match worker {
                    Ok(w) => {
                        let _ = ready_tx.send(Ok(()));
                        w.run(&thread_queue, &rt);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(TelemetryError::Io(e)));
                    }
                }
            })
            .map_err(TelemetryError::Io)?;
        ready_rx.recv().map_err(|_| {
            TelemetryError::Config("the telemetry thread did not start".to_owned())
        })??;
        let observe = Observe {
            shared: Arc::new(Shared {
                trust_traceparent: self.config.trust_traceparent,
                sample_below: if self.config.traces {
                    ratio_threshold(self.config.sample_ratio)
                } else {
                    0
                },
                capture_content: self.config.capture_content,
                sink: queue.clone(),
            }),
        };
        Ok(Telemetry {
            inner: Arc::new(Inner {
                queue,
                dropped,
                store,
                observe,
                _thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

impl Telemetry {
    /// Starts building telemetry for `config`.
    pub fn builder(config: TelemetryConfig) -> TelemetryBuilder {
        TelemetryBuilder {
            config,
            span_exporters: Vec::new(),
            metric_exporters: Vec::new(),
            redactor: None,
        }
    }

    /// Telemetry for `config` with no exporter of one's own.
    pub fn new(config: TelemetryConfig) -> Result<Self, TelemetryError> {
        Self::builder(config).build()
    }

    /// The processor to put first in the pipeline.
    pub fn processor(&self) -> Observe {
        self.inner.observe.clone()
    }

    /// The metrics in the Prometheus text format (serve it with
    /// [`PROMETHEUS_CONTENT_TYPE`](crate::PROMETHEUS_CONTENT_TYPE)); empty when metrics are off.
    /// Records still queued for the telemetry thread are not in it yet.
    pub fn prometheus_text(&self) -> String {
        crate::agg::lock(&self.inner.store).prometheus()
    }

    /// Waits until every record sent before the call is processed and every exporter has been
    /// given what it has (spans, metrics), and the access log is written.
    pub async fn flush(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.inner.queue.ask(Request::Flush(ack));
        let _ = done.await;
    }

    /// Waits until every record sent before the call is aggregated into the metrics (and
    /// written to the access log), without exporting: call it before
    /// [`prometheus_text`](Self::prometheus_text) for a scrape that includes every finished
    /// request.
    pub async fn caught_up(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.inner.queue.ask(Request::Sync(ack));
        let _ = done.await;
    }

    /// [`flush`](Self::flush), blocking the calling thread (not from async code).
    pub fn flush_blocking(&self) {
        let (ack, done) = tokio::sync::oneshot::channel();
        self.inner.queue.ask(Request::Flush(ack));
        let _ = done.blocking_recv();
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}
