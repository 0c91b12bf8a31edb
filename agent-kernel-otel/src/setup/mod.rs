//! Telemetry set-up for **applications**: SDK providers, exporters and the
//! Prometheus endpoint, configured from the standard `OTEL_*` variables or in
//! code.
//!
//! Libraries never call this: they record through the OpenTelemetry API and
//! let the application choose. Everything here sits behind
//! application-only features of `agent-kernel-otel`:
//!
//! | feature | brings |
//! |---|---|
//! | `setup` | this module: SDK providers, [`TelemetryConfig`], the [`ConsoleSpanExporter`] |
//! | `otlp` | OTLP over HTTP/protobuf to `http://` endpoints (blocking reqwest, its own thread) |
//! | `otlp-tls` | `https://` OTLP endpoints (rustls, no OpenSSL) |
//! | `prometheus` | a `/metrics` endpoint ([`serve_prometheus`]) |
//!
//! ```no_run
//! use agent_kernel_otel::setup::{init, TelemetryConfig};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 → OTLP; nothing set → console trees.
//!     let telemetry = init(TelemetryConfig::from_env()?)?;
//!     // ... run the application ...
//!     telemetry.shutdown()?; // or let it drop: flush + shutdown, bounded by the OTLP timeout
//!     Ok(())
//! }
//! ```
//!
//! Failure behaviour: exporting never blocks the thread that ends a span
//! (OTLP spans go through a bounded queue to a background thread; when the
//! queue is full, spans are dropped and counted, see [`ExportStats`]); an
//! unreachable, refusing or hanging collector costs at most the queue's
//! memory; [`TelemetryGuard::shutdown`] returns within the OTLP timeout (plus
//! a small margin) whatever the collector does.

mod config;
mod console;
mod error;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::resource::{SdkProvidedResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SimpleSpanProcessor, Span, SpanData,
    SpanExporter, SpanProcessor,
};

pub use config::{
    MetricsExporter, OtlpProtocol, Propagator, SharedWriter, TelemetryConfig,
    TelemetryConfigBuilder, TracesExporter,
};
pub use console::ConsoleSpanExporter;
pub use error::SetupError;
#[cfg(feature = "prometheus")]
pub use prometheus::{PrometheusServer, serve_prometheus};

/// Extra time granted to shutdown beyond the OTLP timeout, for the last
/// batch to be handed over and the threads to be joined.
const SHUTDOWN_MARGIN: Duration = Duration::from_millis(500);

/// Builds the providers and exporters `config` asks for, installs them as
/// the OpenTelemetry globals (tracer provider, meter provider, text-map
/// propagator), and returns the guard that flushes and shuts them down.
///
/// Span exporters: `otlp` goes through a batch processor with a bounded
/// queue (`max_queue_size`); `console` prints on the thread that ends a root
/// span (it is a development aid). Metric exporters: `otlp` and `console`
/// push every `metric_export_interval`; `prometheus` serves `/metrics` at
/// `prometheus_addr` until the guard is dropped.
///
/// Call it once, early in `main`, before the first span: a tracer taken from
/// the globals before `init` stays a no-op.
///
/// # Errors
/// [`SetupError::Unsupported`] when the configuration needs a feature this
/// build lacks (`otlp`, `otlp-tls`, `prometheus`) or an OTLP protocol other
/// than `http/protobuf`; [`SetupError::Exporter`] when an exporter cannot be
/// built; [`SetupError::PrometheusBind`] when the `/metrics` address is taken.
/// Nothing is installed when an error is returned.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use agent_kernel_otel::setup::{init, TelemetryConfig};
/// use opentelemetry::trace::Tracer;
///
/// let out = Arc::new(Mutex::new(Vec::<u8>::new()));
/// let telemetry = init(TelemetryConfig::builder().console_writer(out.clone()).build()?)?;
/// let tracer = opentelemetry::global::tracer("example");
/// tracer.in_span("work", |_| {});
/// telemetry.shutdown()?;
/// assert!(String::from_utf8_lossy(&out.lock().unwrap()).starts_with("work "));
/// # Ok::<(), agent_kernel_otel::setup::SetupError>(())
/// ```
pub fn init(config: TelemetryConfig) -> Result<TelemetryGuard, SetupError> {
    let resource = resource(&config);
    let counters = Arc::new(Counters::default());

    let tracer_provider = if config.traces.is_empty() {
        None
    } else {
        let mut builder = SdkTracerProvider::builder().with_resource(resource.clone());
        for exporter in &config.traces {
            match exporter {
                TracesExporter::Console => {
                    let console = console::exporter(
                        config.console_writer.clone(),
                        config.console_max_pending_traces,
                    );
                    builder = builder.with_span_processor(SimpleSpanProcessor::new(console));
                }
                TracesExporter::Otlp => {
                    let otlp = otlp_span_exporter(&config)?;
                    let batch = BatchConfigBuilder::default()
                        .with_max_queue_size(config.max_queue_size)
                        .with_max_export_batch_size(config.max_export_batch_size)
                        .with_scheduled_delay(config.scheduled_delay)
                        .build();
                    let processor = BatchSpanProcessor::builder(Counted {
                        inner: otlp,
                        counters: counters.clone(),
                    })
                    .with_batch_config(batch)
                    .build();
                    builder = builder.with_span_processor(CountingProcessor {
                        inner: processor,
                        counters: counters.clone(),
                    });
                }
            }
        }
        Some(builder.build())
    };

    #[cfg(feature = "prometheus")]
    let mut prometheus_server = None;
    let meter_provider = if config.metrics.is_empty() {
        None
    } else {
        let mut builder = SdkMeterProvider::builder().with_resource(resource);
        for exporter in &config.metrics {
            match exporter {
                MetricsExporter::Console => {
                    let reader = PeriodicReader::builder(
                        opentelemetry_stdout::MetricExporter::builder().build(),
                    )
                    .with_interval(config.metric_export_interval)
                    .build();
                    builder = builder.with_reader(reader);
                }
                MetricsExporter::Otlp => {
                    let reader = PeriodicReader::builder(otlp_metric_exporter(&config)?)
                        .with_interval(config.metric_export_interval)
                        .build();
                    builder = builder.with_reader(reader);
                }
                MetricsExporter::Prometheus => {
                    #[cfg(feature = "prometheus")]
                    {
                        let (registry, reader) = prometheus::reader()?;
                        prometheus_server =
                            Some(serve_prometheus(config.prometheus_addr, registry)?);
                        builder = builder.with_reader(reader);
                    }
                    #[cfg(not(feature = "prometheus"))]
                    return Err(missing_feature(
                        "the prometheus metrics exporter",
                        "prometheus",
                    ));
                }
            }
        }
        Some(builder.build())
    };

    // Everything is built: only now touch the globals.
    if let Some(provider) = &tracer_provider {
        global::set_tracer_provider(provider.clone());
    }
    if let Some(provider) = &meter_provider {
        global::set_meter_provider(provider.clone());
    }
    if !config.propagators.is_empty() {
        let propagators: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> =
            config
                .propagators
                .iter()
                .map(|p| match p {
                    Propagator::TraceContext => Box::new(TraceContextPropagator::new()) as _,
                    Propagator::Baggage => Box::new(BaggagePropagator::new()) as _,
                })
                .collect();
        global::set_text_map_propagator(TextMapCompositePropagator::new(propagators));
    }
    let enabled = tracer_provider.is_some() || meter_provider.is_some();
    if enabled {
        set_runtime_enabled(true);
        // The global binding uses these providers directly (a thread that
        // resolved the globals between `enable` and this keeps the API's
        // wrappers of the same providers until the next `enable`).
        use opentelemetry::metrics::MeterProvider as _;
        use opentelemetry::trace::TracerProvider as _;
        let scope = crate::telemetry::instrumentation_scope();
        let tracer: Box<dyn crate::telemetry::ContextTracer> = match &tracer_provider {
            Some(p) => Box::new(p.tracer_with_scope(scope.clone())),
            None => Box::new(global::tracer_with_scope(scope.clone())),
        };
        let meter = match &meter_provider {
            Some(p) => p.meter_with_scope(scope),
            None => global::meter_with_scope(scope),
        };
        crate::telemetry::pin_global(tracer, meter);
    }

    Ok(TelemetryGuard {
        tracer_provider,
        meter_provider,
        #[cfg(feature = "prometheus")]
        prometheus: prometheus_server,
        counters,
        timeout: config.otlp_timeout,
        enabled,
        done: false,
    })
}

/// Guards alive that turned the runtime switch on.
static ACTIVE_GUARDS: AtomicUsize = AtomicUsize::new(0);

/// Turns the `#[kernel_span]` runtime switch on, or off when the last guard
/// that turned it on goes (so generated code stops at one relaxed load when
/// nothing is set up, and an old guard dropped after a new `init` does not
/// silence the new one).
fn set_runtime_enabled(on: bool) {
    if on {
        ACTIVE_GUARDS.fetch_add(1, Ordering::AcqRel);
        crate::enable();
    } else if ACTIVE_GUARDS.fetch_sub(1, Ordering::AcqRel) == 1 {
        crate::disable();
    }
}

fn resource(config: &TelemetryConfig) -> Resource {
    // Only the configuration decides (no second reading of the environment).
    let mut builder = Resource::builder_empty().with_detectors(&[
        Box::new(SdkProvidedResourceDetector),
        Box::new(TelemetryResourceDetector),
    ]);
    let attributes = config
        .resource_attributes
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
    builder = builder.with_attributes(attributes);
    if let Some(name) = &config.service_name {
        builder = builder.with_service_name(name.clone());
    }
    builder.build()
}

#[cfg(feature = "otlp")]
fn otlp_span_exporter(config: &TelemetryConfig) -> Result<impl SpanExporter + 'static, SetupError> {
    otlp::span_exporter(
        &config.otlp_traces_endpoint,
        config.otlp_traces_protocol,
        &config.otlp_traces_headers,
        config.otlp_timeout,
    )
}

#[cfg(not(feature = "otlp"))]
fn otlp_span_exporter(_: &TelemetryConfig) -> Result<ConsoleSpanExporter, SetupError> {
    Err(missing_feature("the OTLP span exporter", "otlp"))
}

#[cfg(feature = "otlp")]
fn otlp_metric_exporter(
    config: &TelemetryConfig,
) -> Result<impl opentelemetry_sdk::metrics::exporter::PushMetricExporter + 'static, SetupError> {
    otlp::metric_exporter(
        &config.otlp_metrics_endpoint,
        config.otlp_metrics_protocol,
        &config.otlp_metrics_headers,
        config.otlp_timeout,
    )
}

#[cfg(not(feature = "otlp"))]
fn otlp_metric_exporter(
    _: &TelemetryConfig,
) -> Result<opentelemetry_stdout::MetricExporter, SetupError> {
    Err(missing_feature("the OTLP metric exporter", "otlp"))
}

#[cfg_attr(all(feature = "otlp", feature = "prometheus"), allow(dead_code))]
fn missing_feature(what: &str, feature: &str) -> SetupError {
    SetupError::Unsupported {
        what: what.to_owned(),
        hint: format!("enable the `{feature}` feature of agent-kernel-otel"),
    }
}

/// Owns the installed providers. [`flush`](Self::flush) exports what is
/// pending; [`shutdown`](Self::shutdown) (or dropping the guard) flushes,
/// shuts the providers down within the OTLP timeout, stops the `/metrics`
/// endpoint and turns the runtime switch off.
#[derive(Debug)]
#[must_use = "dropping the guard shuts telemetry down at once"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<PrometheusServer>,
    counters: Arc<Counters>,
    timeout: Duration,
    enabled: bool,
    done: bool,
}

impl TelemetryGuard {
    /// The installed tracer provider, if traces are on.
    #[must_use]
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }

    /// The installed meter provider, if metrics are on.
    #[must_use]
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// The address `/metrics` is served on, if the Prometheus exporter is on
    /// (the real port when port 0 was configured).
    #[must_use]
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        #[cfg(feature = "prometheus")]
        {
            self.prometheus.as_ref().map(PrometheusServer::local_addr)
        }
        #[cfg(not(feature = "prometheus"))]
        {
            None
        }
    }

    /// What the OTLP span pipeline has done so far.
    #[must_use]
    pub fn stats(&self) -> ExportStats {
        self.counters.snapshot()
    }

    /// Exports everything pending now (spans and pushed metrics). The SDK
    /// bounds a span flush at 5 s (not configurable in 0.33); use it at
    /// checkpoints, not on a request path.
    ///
    /// # Errors
    /// [`SetupError::Flush`] when an exporter fails or does not finish in time.
    pub fn flush(&self) -> Result<(), SetupError> {
        let mut errors = Vec::new();
        if let Some(p) = &self.tracer_provider {
            if let Err(e) = p.force_flush() {
                errors.push(format!("traces: {e}"));
            }
        }
        if let Some(p) = &self.meter_provider {
            if let Err(e) = p.force_flush() {
                errors.push(format!("metrics: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SetupError::Flush(errors.join("; ")))
        }
    }

    /// Flushes and shuts everything down, returning within the OTLP timeout
    /// plus a small margin even when the collector hangs (an export still
    /// running then is abandoned on its thread).
    ///
    /// # Errors
    /// [`SetupError::Shutdown`] when an exporter fails or time runs out; the
    /// providers are shut down (or abandoned) all the same.
    pub fn shutdown(mut self) -> Result<(), SetupError> {
        self.shutdown_inner()
    }

    fn shutdown_inner(&mut self) -> Result<(), SetupError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        if self.enabled {
            set_runtime_enabled(false);
        }
        let tracer = self.tracer_provider.take();
        let meter = self.meter_provider.take();
        #[cfg(feature = "prometheus")]
        if let Some(server) = self.prometheus.take() {
            server.stop();
        }
        if tracer.is_none() && meter.is_none() {
            return Ok(());
        }
        // The globals keep clones of the providers; shutting them down makes
        // every clone inert. Run on a helper thread so a hanging exporter
        // cannot hold the caller past the deadline.
        let timeout = self.timeout;
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("agent-kernel-otel-shutdown".to_owned())
            .spawn(move || {
                let start = Instant::now();
                let mut errors = Vec::new();
                if let Some(p) = tracer {
                    if let Err(e) = p.shutdown_with_timeout(timeout) {
                        errors.push(format!("traces: {e}"));
                    }
                }
                if let Some(p) = meter {
                    let left = timeout.saturating_sub(start.elapsed());
                    if let Err(e) = p.shutdown_with_timeout(left) {
                        errors.push(format!("metrics: {e}"));
                    }
                }
                let _ = tx.send(errors);
            });
        if let Err(e) = spawned {
            return Err(SetupError::Shutdown(format!(
                "cannot spawn the shutdown thread: {e}"
            )));
        }
        match rx.recv_timeout(timeout + SHUTDOWN_MARGIN) {
            Ok(errors) if errors.is_empty() => Ok(()),
            Ok(errors) => Err(SetupError::Shutdown(errors.join("; "))),
            Err(_) => Err(SetupError::Shutdown(format!(
                "exporters did not finish within {} ms; pending telemetry abandoned",
                (timeout + SHUTDOWN_MARGIN).as_millis()
            ))),
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.shutdown_inner();
    }
}

/// Counters of the OTLP span pipeline (the console exporter is not counted).
///
/// After [`TelemetryGuard::shutdown`] returns,
/// [`spans_unaccounted`](Self::spans_unaccounted) is the number of spans
/// dropped because the bounded queue was full (or abandoned at a shutdown
/// that timed out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans ended and offered to the export queue.
    pub spans_queued: u64,
    /// Spans the collector accepted.
    pub spans_exported: u64,
    /// Spans in batches the exporter gave up on (collector down, refusing, timing out).
    pub spans_failed: u64,
}

impl ExportStats {
    /// Spans neither exported nor failed: still queued, or dropped.
    #[must_use]
    pub fn spans_unaccounted(&self) -> u64 {
        self.spans_queued
            .saturating_sub(self.spans_exported)
            .saturating_sub(self.spans_failed)
    }
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ExportStats {
        ExportStats {
            spans_queued: self.queued.load(Ordering::Relaxed),
            spans_exported: self.exported.load(Ordering::Relaxed),
            spans_failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// Counts what the wrapped exporter accepts and fails.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    counters: Arc<Counters>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        let result = self.inner.export(batch).await;
        let counter = if result.is_ok() {
            &self.counters.exported
        } else {
            &self.counters.failed
        };
        counter.fetch_add(n, Ordering::Relaxed);
        result
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts the spans offered to the wrapped processor.
#[derive(Debug)]
struct CountingProcessor<P> {
    inner: P,
    counters: Arc<Counters>,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }
    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.counters.queued.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.on_end(span);
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
