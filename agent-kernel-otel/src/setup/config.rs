//! [`TelemetryConfig`]: what to export where, from the `OTEL_*` variables or from code.

use std::fmt;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::SetupError;

/// Where finished spans go. Several may be active at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TracesExporter {
    /// OTLP over HTTP/protobuf (feature `otlp`).
    Otlp,
    /// An indented span tree per finished trace, printed to stdout or a writer.
    Console,
}

/// Where metrics go. Several may be active at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricsExporter {
    /// OTLP over HTTP/protobuf, pushed every export interval (feature `otlp`).
    Otlp,
    /// The SDK's stdout metric exporter, printed every export interval.
    Console,
    /// A `/metrics` endpoint for Prometheus to scrape (feature `prometheus`).
    Prometheus,
}

/// The OTLP transport, as named by `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `http/protobuf`: the supported transport.
    HttpProtobuf,
    /// `http/json`: recognised, not supported by this build.
    HttpJson,
    /// `grpc`: recognised, not supported by this build.
    Grpc,
}

impl OtlpProtocol {
    /// The value as written in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpProtobuf => "http/protobuf",
            Self::HttpJson => "http/json",
            Self::Grpc => "grpc",
        }
    }
}

/// A context propagator installed as the global text-map propagator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Propagator {
    /// W3C `traceparent` / `tracestate`.
    TraceContext,
    /// W3C `baggage`.
    Baggage,
}

/// A writer shared by the console exporter (cloneable, thread-safe).
pub type SharedWriter = Arc<Mutex<dyn Write + Send>>;

/// Defaults, as in the OpenTelemetry specification unless noted.
pub(crate) mod defaults {
    use std::time::Duration;
    pub(crate) const OTLP_ENDPOINT: &str = "http://localhost:4318";
    pub(crate) const OTLP_TIMEOUT: Duration = Duration::from_secs(10);
    pub(crate) const PROMETHEUS_HOST: &str = "localhost";
    pub(crate) const PROMETHEUS_PORT: u16 = 9464;
    pub(crate) const MAX_QUEUE_SIZE: usize = 2048;
    pub(crate) const MAX_EXPORT_BATCH_SIZE: usize = 512;
    pub(crate) const SCHEDULE_DELAY: Duration = Duration::from_secs(5);
    pub(crate) const METRIC_EXPORT_INTERVAL: Duration = Duration::from_secs(60);
    /// Ours: traces the console exporter holds while waiting for their root span.
    pub(crate) const CONSOLE_MAX_PENDING_TRACES: usize = 256;
}

/// What [`init`](super::init) sets up: exporters, endpoints, resource, limits.
///
/// Build it from the standard environment variables with
/// [`from_env`](Self::from_env), in code with [`builder`](Self::builder), or
/// both: `TelemetryConfig::from_env()?.into_builder()` then override.
///
/// ```
/// use agent_kernel_otel::setup::{TelemetryConfig, TracesExporter};
///
/// let config = TelemetryConfig::builder()
///     .service_name("billing-agent")
///     .traces_exporters([TracesExporter::Console])
///     .build()?;
/// assert_eq!(config.service_name(), Some("billing-agent"));
/// # Ok::<(), agent_kernel_otel::setup::SetupError>(())
/// ```
#[derive(Clone)]
pub struct TelemetryConfig {
    pub(crate) service_name: Option<String>,
    pub(crate) resource_attributes: Vec<(String, String)>,
    pub(crate) traces: Vec<TracesExporter>,
    pub(crate) metrics: Vec<MetricsExporter>,
    pub(crate) propagators: Vec<Propagator>,
    pub(crate) otlp_traces_endpoint: String,
    pub(crate) otlp_metrics_endpoint: String,
    pub(crate) otlp_traces_protocol: OtlpProtocol,
    pub(crate) otlp_metrics_protocol: OtlpProtocol,
    pub(crate) otlp_traces_headers: Vec<(String, String)>,
    pub(crate) otlp_metrics_headers: Vec<(String, String)>,
    pub(crate) otlp_timeout: Duration,
    pub(crate) prometheus_addr: SocketAddr,
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) scheduled_delay: Duration,
    pub(crate) metric_export_interval: Duration,
    pub(crate) console_writer: Option<SharedWriter>,
    pub(crate) console_max_pending_traces: usize,
}

impl fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |headers: &[(String, String)]| -> Vec<String> {
            headers
                .iter()
                .map(|(k, _)| format!("{k}=<redacted>"))
                .collect()
        };
        f.debug_struct("TelemetryConfig")
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("traces", &self.traces)
            .field("metrics", &self.metrics)
            .field("propagators", &self.propagators)
            .field("otlp_traces_endpoint", &self.otlp_traces_endpoint)
            .field("otlp_metrics_endpoint", &self.otlp_metrics_endpoint)
            .field("otlp_traces_protocol", &self.otlp_traces_protocol)
            .field("otlp_metrics_protocol", &self.otlp_metrics_protocol)
            .field("otlp_traces_headers", &redact(&self.otlp_traces_headers))
            .field("otlp_metrics_headers", &redact(&self.otlp_metrics_headers))
            .field("otlp_timeout", &self.otlp_timeout)
            .field("prometheus_addr", &self.prometheus_addr)
            .field("max_queue_size", &self.max_queue_size)
            .field("max_export_batch_size", &self.max_export_batch_size)
            .field("scheduled_delay", &self.scheduled_delay)
            .field("metric_export_interval", &self.metric_export_interval)
            .field(
                "console_writer",
                &self.console_writer.as_ref().map(|_| ".."),
            )
            .field(
                "console_max_pending_traces",
                &self.console_max_pending_traces,
            )
            .finish()
    }
}

impl TelemetryConfig {
    /// A builder starting from the defaults, reading no environment variable:
    /// console traces, no metrics, W3C trace-context and baggage propagation.
    #[must_use]
    pub fn builder() -> TelemetryConfigBuilder {
        TelemetryConfigBuilder::default()
    }

    /// Reads the standard OpenTelemetry environment variables.
    ///
    /// | variable | meaning (default) |
    /// |---|---|
    /// | `OTEL_SDK_DISABLED` | `true`: no exporter at all (`false`) |
    /// | `OTEL_SERVICE_NAME` | `service.name` (`unknown_service`) |
    /// | `OTEL_RESOURCE_ATTRIBUTES` | `k=v,k2=v2`, percent-decoded |
    /// | `OTEL_TRACES_EXPORTER` | list of `otlp`, `console`, `none` (see below) |
    /// | `OTEL_METRICS_EXPORTER` | list of `otlp`, `prometheus`, `console`, `none` (see below) |
    /// | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL, `/v1/traces` and `/v1/metrics` appended (`http://localhost:4318`) |
    /// | `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT` | full URL for one signal, used as is |
    /// | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_PROTOCOL` | `http/protobuf` (`grpc`, `http/json`: unsupported error) |
    /// | `OTEL_EXPORTER_OTLP[_{TRACES,METRICS}]_HEADERS` | `k=v,k2=v2`, percent-decoded |
    /// | `OTEL_EXPORTER_OTLP_TIMEOUT` | per export, milliseconds (10000) |
    /// | `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT` | `/metrics` address (`localhost:9464`) |
    /// | `OTEL_BSP_MAX_QUEUE_SIZE` / `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` / `OTEL_BSP_SCHEDULE_DELAY` | span queue (2048 / 512 / 5000 ms) |
    /// | `OTEL_METRIC_EXPORT_INTERVAL` | push interval, milliseconds (60000) |
    /// | `OTEL_PROPAGATORS` | list of `tracecontext`, `baggage`, `none` (`tracecontext,baggage`) |
    ///
    /// Unlike the specification's defaults (`otlp`), an unset
    /// `OTEL_TRACES_EXPORTER` means `otlp` only when an OTLP endpoint variable
    /// is set and `console` otherwise; an unset `OTEL_METRICS_EXPORTER` means
    /// `otlp` when an endpoint is set and `none` otherwise. So a program with
    /// nothing configured prints its span trees and sends nothing anywhere.
    ///
    /// # Errors
    /// [`SetupError::InvalidEnv`] naming the variable and the value (header
    /// values are redacted) for any value that cannot be used.
    pub fn from_env() -> Result<Self, SetupError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`
    /// (a map in tests, a configuration file, …). Empty values count as unset.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup<F>(lookup: F) -> Result<Self, SetupError>
    where
        F: Fn(&str) -> Option<String>,
    {
        env::read(&|key: &str| lookup(key).filter(|v| !v.trim().is_empty()))?.build()
    }

    /// Turns this configuration back into a builder, to override parts in code.
    #[must_use]
    pub fn into_builder(self) -> TelemetryConfigBuilder {
        TelemetryConfigBuilder {
            service_name: self.service_name,
            resource_attributes: self.resource_attributes,
            traces: self.traces,
            metrics: self.metrics,
            propagators: self.propagators,
            otlp_endpoint: None,
            otlp_traces_endpoint: Some(self.otlp_traces_endpoint),
            otlp_metrics_endpoint: Some(self.otlp_metrics_endpoint),
            otlp_traces_protocol: self.otlp_traces_protocol,
            otlp_metrics_protocol: self.otlp_metrics_protocol,
            otlp_traces_headers: self.otlp_traces_headers,
            otlp_metrics_headers: self.otlp_metrics_headers,
            otlp_timeout: self.otlp_timeout,
            prometheus_addr: self.prometheus_addr,
            max_queue_size: self.max_queue_size,
            max_export_batch_size: self.max_export_batch_size,
            scheduled_delay: self.scheduled_delay,
            metric_export_interval: self.metric_export_interval,
            console_writer: self.console_writer,
            console_max_pending_traces: self.console_max_pending_traces,
        }
    }

    /// `service.name`, if set.
    #[must_use]
    pub fn service_name(&self) -> Option<&str> {
        self.service_name.as_deref()
    }
    /// Extra resource attributes, in order.
    #[must_use]
    pub fn resource_attributes(&self) -> &[(String, String)] {
        &self.resource_attributes
    }
    /// The span exporters (empty: traces off).
    #[must_use]
    pub fn traces_exporters(&self) -> &[TracesExporter] {
        &self.traces
    }
    /// The metric exporters (empty: metrics off).
    #[must_use]
    pub fn metrics_exporters(&self) -> &[MetricsExporter] {
        &self.metrics
    }
    /// The global propagators (empty: none installed).
    #[must_use]
    pub fn propagators(&self) -> &[Propagator] {
        &self.propagators
    }
    /// The full OTLP URL spans are posted to.
    #[must_use]
    pub fn otlp_traces_endpoint(&self) -> &str {
        &self.otlp_traces_endpoint
    }
    /// The full OTLP URL metrics are posted to.
    #[must_use]
    pub fn otlp_metrics_endpoint(&self) -> &str {
        &self.otlp_metrics_endpoint
    }
    /// The OTLP transport for spans.
    #[must_use]
    pub fn otlp_traces_protocol(&self) -> OtlpProtocol {
        self.otlp_traces_protocol
    }
    /// The OTLP transport for metrics.
    #[must_use]
    pub fn otlp_metrics_protocol(&self) -> OtlpProtocol {
        self.otlp_metrics_protocol
    }
    /// The names of the extra OTLP headers sent with spans (values withheld).
    pub fn otlp_traces_header_names(&self) -> impl Iterator<Item = &str> {
        self.otlp_traces_headers.iter().map(|(k, _)| k.as_str())
    }
    /// The time limit of one OTLP export, also the bound of shutdown.
    #[must_use]
    pub fn otlp_timeout(&self) -> Duration {
        self.otlp_timeout
    }
    /// The address the Prometheus `/metrics` endpoint listens on.
    #[must_use]
    pub fn prometheus_addr(&self) -> SocketAddr {
        self.prometheus_addr
    }
    /// The capacity of the span export queue; spans beyond it are dropped.
    #[must_use]
    pub fn max_queue_size(&self) -> usize {
        self.max_queue_size
    }
    /// The interval between two metric pushes (OTLP, console).
    #[must_use]
    pub fn metric_export_interval(&self) -> Duration {
        self.metric_export_interval
    }
}

/// Builds a [`TelemetryConfig`] in code; see [`TelemetryConfig::builder`].
#[derive(Clone)]
pub struct TelemetryConfigBuilder {
    service_name: Option<String>,
    resource_attributes: Vec<(String, String)>,
    traces: Vec<TracesExporter>,
    metrics: Vec<MetricsExporter>,
    propagators: Vec<Propagator>,
    otlp_endpoint: Option<String>,
    otlp_traces_endpoint: Option<String>,
    otlp_metrics_endpoint: Option<String>,
    otlp_traces_protocol: OtlpProtocol,
    otlp_metrics_protocol: OtlpProtocol,
    otlp_traces_headers: Vec<(String, String)>,
    otlp_metrics_headers: Vec<(String, String)>,
    otlp_timeout: Duration,
    prometheus_addr: SocketAddr,
    max_queue_size: usize,
    max_export_batch_size: usize,
    scheduled_delay: Duration,
    metric_export_interval: Duration,
    console_writer: Option<SharedWriter>,
    console_max_pending_traces: usize,
}

impl fmt::Debug for TelemetryConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelemetryConfigBuilder")
            .field("service_name", &self.service_name)
            .field("traces", &self.traces)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Default for TelemetryConfigBuilder {
    fn default() -> Self {
        Self {
            service_name: None,
            resource_attributes: Vec::new(),
            traces: vec![TracesExporter::Console],
            metrics: Vec::new(),
            propagators: vec![Propagator::TraceContext, Propagator::Baggage],
            otlp_endpoint: None,
            otlp_traces_endpoint: None,
            otlp_metrics_endpoint: None,
            otlp_traces_protocol: OtlpProtocol::HttpProtobuf,
            otlp_metrics_protocol: OtlpProtocol::HttpProtobuf,
            otlp_traces_headers: Vec::new(),
            otlp_metrics_headers: Vec::new(),
            otlp_timeout: defaults::OTLP_TIMEOUT,
            prometheus_addr: SocketAddr::from(([127, 0, 0, 1], defaults::PROMETHEUS_PORT)),
            max_queue_size: defaults::MAX_QUEUE_SIZE,
            max_export_batch_size: defaults::MAX_EXPORT_BATCH_SIZE,
            scheduled_delay: defaults::SCHEDULE_DELAY,
            metric_export_interval: defaults::METRIC_EXPORT_INTERVAL,
            console_writer: None,
            console_max_pending_traces: defaults::CONSOLE_MAX_PENDING_TRACES,
        }
    }
}

impl TelemetryConfigBuilder {
    /// Sets `service.name`.
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }
    /// Adds a resource attribute (a later value for the same key wins).
    #[must_use]
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resource_attributes.push((key.into(), value.into()));
        self
    }
    /// Replaces the span exporters (an empty list turns traces off).
    #[must_use]
    pub fn traces_exporters(mut self, exporters: impl IntoIterator<Item = TracesExporter>) -> Self {
        self.traces = dedup(exporters);
        self
    }
    /// Replaces the metric exporters (an empty list turns metrics off).
    #[must_use]
    pub fn metrics_exporters(
        mut self,
        exporters: impl IntoIterator<Item = MetricsExporter>,
    ) -> Self {
        self.metrics = dedup(exporters);
        self
    }
    /// Replaces the global propagators (an empty list installs none).
    #[must_use]
    pub fn propagators(mut self, propagators: impl IntoIterator<Item = Propagator>) -> Self {
        self.propagators = dedup(propagators);
        self
    }
    /// Sets the OTLP base URL; `/v1/traces` and `/v1/metrics` are appended.
    /// Clears per-signal endpoints set before.
    #[must_use]
    pub fn otlp_endpoint(mut self, base_url: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(base_url.into());
        self.otlp_traces_endpoint = None;
        self.otlp_metrics_endpoint = None;
        self
    }
    /// Sets the full OTLP URL for spans, used as is.
    #[must_use]
    pub fn otlp_traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_traces_endpoint = Some(url.into());
        self
    }
    /// Sets the full OTLP URL for metrics, used as is.
    #[must_use]
    pub fn otlp_metrics_endpoint(mut self, url: impl Into<String>) -> Self {
        self.otlp_metrics_endpoint = Some(url.into());
        self
    }
    /// Sets the OTLP transport of both signals.
    #[must_use]
    pub fn otlp_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.otlp_traces_protocol = protocol;
        self.otlp_metrics_protocol = protocol;
        self
    }
    /// Adds a header to every OTLP request (both signals).
    #[must_use]
    pub fn otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.otlp_traces_headers.push((name.clone(), value.clone()));
        self.otlp_metrics_headers.push((name, value));
        self
    }
    /// Sets the time limit of one OTLP export; it also bounds shutdown.
    #[must_use]
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.otlp_timeout = timeout;
        self
    }
    /// Sets the address of the Prometheus `/metrics` endpoint (port 0: any free port).
    #[must_use]
    pub fn prometheus_addr(mut self, addr: SocketAddr) -> Self {
        self.prometheus_addr = addr;
        self
    }
    /// Sets the capacity of the span export queue (spans beyond it are dropped and counted).
    #[must_use]
    pub fn max_queue_size(mut self, size: usize) -> Self {
        self.max_queue_size = size;
        self
    }
    /// Sets the largest batch of spans sent in one export.
    #[must_use]
    pub fn max_export_batch_size(mut self, size: usize) -> Self {
        self.max_export_batch_size = size;
        self
    }
    /// Sets the delay between two scheduled span exports.
    #[must_use]
    pub fn scheduled_delay(mut self, delay: Duration) -> Self {
        self.scheduled_delay = delay;
        self
    }
    /// Sets the interval between two metric pushes (OTLP, console).
    #[must_use]
    pub fn metric_export_interval(mut self, interval: Duration) -> Self {
        self.metric_export_interval = interval;
        self
    }
    /// Sends the console span trees to `writer` instead of stdout.
    #[must_use]
    pub fn console_writer(mut self, writer: SharedWriter) -> Self {
        self.console_writer = Some(writer);
        self
    }
    /// Caps the traces the console exporter holds while waiting for their root.
    #[must_use]
    pub fn console_max_pending_traces(mut self, max: usize) -> Self {
        self.console_max_pending_traces = max;
        self
    }

    /// Validates and resolves the endpoints.
    ///
    /// # Errors
    /// [`SetupError::InvalidConfig`] for an endpoint that is not an
    /// `http://` or `https://` URL, or a zero queue size, batch size, timeout
    /// or interval.
    pub fn build(self) -> Result<TelemetryConfig, SetupError> {
        let base = self
            .otlp_endpoint
            .as_deref()
            .unwrap_or(defaults::OTLP_ENDPOINT);
        let traces_endpoint = match self.otlp_traces_endpoint {
            Some(url) => url,
            None => join_signal_path(base, "v1/traces"),
        };
        let metrics_endpoint = match self.otlp_metrics_endpoint {
            Some(url) => url,
            None => join_signal_path(base, "v1/metrics"),
        };
        check_url("otlp_traces_endpoint", &traces_endpoint)?;
        check_url("otlp_metrics_endpoint", &metrics_endpoint)?;
        for (field, zero) in [
            ("max_queue_size", self.max_queue_size == 0),
            ("max_export_batch_size", self.max_export_batch_size == 0),
            (
                "console_max_pending_traces",
                self.console_max_pending_traces == 0,
            ),
            ("otlp_timeout", self.otlp_timeout.is_zero()),
            ("scheduled_delay", self.scheduled_delay.is_zero()),
            (
                "metric_export_interval",
                self.metric_export_interval.is_zero(),
            ),
        ] {
            if zero {
                return Err(SetupError::InvalidConfig {
                    field,
                    reason: "must be greater than zero".to_owned(),
                });
            }
        }
        Ok(TelemetryConfig {
            service_name: self.service_name,
            resource_attributes: self.resource_attributes,
            traces: self.traces,
            metrics: self.metrics,
            propagators: self.propagators,
            otlp_traces_endpoint: traces_endpoint,
            otlp_metrics_endpoint: metrics_endpoint,
            otlp_traces_protocol: self.otlp_traces_protocol,
            otlp_metrics_protocol: self.otlp_metrics_protocol,
            otlp_traces_headers: self.otlp_traces_headers,
            otlp_metrics_headers: self.otlp_metrics_headers,
            otlp_timeout: self.otlp_timeout,
            prometheus_addr: self.prometheus_addr,
            max_queue_size: self.max_queue_size,
            max_export_batch_size: self.max_export_batch_size.min(self.max_queue_size),
            scheduled_delay: self.scheduled_delay,
            metric_export_interval: self.metric_export_interval,
            console_writer: self.console_writer,
            console_max_pending_traces: self.console_max_pending_traces,
        })
    }
}

fn dedup<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// `base` + `/` + `path`, with exactly one slash between them (as the spec asks).
fn join_signal_path(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

fn check_url(field: &'static str, url: &str) -> Result<(), SetupError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(SetupError::InvalidConfig {
            field,
            reason: format!("{url:?} is not an http:// or https:// URL with a host"),
        }),
    }
}

/// Reading the `OTEL_*` variables into a builder.
mod env {
    use super::*;

    type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

    const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    const METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";

    pub(super) fn read(get: Lookup<'_>) -> Result<TelemetryConfigBuilder, SetupError> {
        let mut b = TelemetryConfigBuilder::default();

        if let Some(name) = get("OTEL_SERVICE_NAME") {
            b.service_name = Some(name.trim().to_owned());
        }
        if let Some(raw) = get("OTEL_RESOURCE_ATTRIBUTES") {
            b.resource_attributes = key_values("OTEL_RESOURCE_ATTRIBUTES", &raw, false)?;
        }

        // Endpoints: validated here so the error names the variable.
        for var in [ENDPOINT, TRACES_ENDPOINT, METRICS_ENDPOINT] {
            if let Some(url) = get(var) {
                check_url("endpoint", url.trim()).map_err(|_| {
                    SetupError::env(var, &url, "expected an http:// or https:// URL")
                })?;
            }
        }
        b.otlp_endpoint = get(ENDPOINT).map(|s| s.trim().to_owned());
        b.otlp_traces_endpoint = get(TRACES_ENDPOINT).map(|s| s.trim().to_owned());
        b.otlp_metrics_endpoint = get(METRICS_ENDPOINT).map(|s| s.trim().to_owned());
        let traces_endpoint_set = b.otlp_endpoint.is_some() || b.otlp_traces_endpoint.is_some();
        let metrics_endpoint_set = b.otlp_endpoint.is_some() || b.otlp_metrics_endpoint.is_some();

        let general = optional(get, "OTEL_EXPORTER_OTLP_PROTOCOL", protocol)?
            .unwrap_or(OtlpProtocol::HttpProtobuf);
        b.otlp_traces_protocol =
            optional(get, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", protocol)?.unwrap_or(general);
        b.otlp_metrics_protocol =
            optional(get, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", protocol)?.unwrap_or(general);

        let headers = headers(get, "OTEL_EXPORTER_OTLP_HEADERS")?;
        b.otlp_traces_headers = merge(
            headers.clone(),
            headers_of(get, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")?,
        );
        b.otlp_metrics_headers = merge(
            headers,
            headers_of(get, "OTEL_EXPORTER_OTLP_METRICS_HEADERS")?,
        );

        if let Some(ms) = optional(get, "OTEL_EXPORTER_OTLP_TIMEOUT", positive_u64)? {
            b.otlp_timeout = Duration::from_millis(ms);
        }

        b.traces = match get("OTEL_TRACES_EXPORTER") {
            Some(raw) => list(
                "OTEL_TRACES_EXPORTER",
                &raw,
                |name| match name {
                    "otlp" => Some(TracesExporter::Otlp),
                    "console" => Some(TracesExporter::Console),
                    _ => None,
                },
                "otlp, console, none",
            )?,
            None if traces_endpoint_set => vec![TracesExporter::Otlp],
            None => vec![TracesExporter::Console],
        };
        b.metrics = match get("OTEL_METRICS_EXPORTER") {
            Some(raw) => list(
                "OTEL_METRICS_EXPORTER",
                &raw,
                |name| match name {
                    "otlp" => Some(MetricsExporter::Otlp),
                    "prometheus" => Some(MetricsExporter::Prometheus),
                    "console" => Some(MetricsExporter::Console),
                    _ => None,
                },
                "otlp, prometheus, console, none",
            )?,
            None if metrics_endpoint_set => vec![MetricsExporter::Otlp],
            None => Vec::new(),
        };
        if let Some(raw) = get("OTEL_PROPAGATORS") {
            b.propagators = list(
                "OTEL_PROPAGATORS",
                &raw,
                |name| match name {
                    "tracecontext" => Some(Propagator::TraceContext),
                    "baggage" => Some(Propagator::Baggage),
                    _ => None,
                },
                "tracecontext, baggage, none",
            )?;
        }
        if let Some(disabled) = optional(get, "OTEL_SDK_DISABLED", boolean)? {
            if disabled {
                b.traces.clear();
                b.metrics.clear();
            }
        }

        let host = get("OTEL_EXPORTER_PROMETHEUS_HOST");
        let port = optional(get, "OTEL_EXPORTER_PROMETHEUS_PORT", port)?;
        if host.is_some() || port.is_some() {
            let port = port.unwrap_or(defaults::PROMETHEUS_PORT);
            let host = host.unwrap_or_else(|| defaults::PROMETHEUS_HOST.to_owned());
            b.prometheus_addr = resolve(host.trim(), port).ok_or_else(|| {
                SetupError::env(
                    "OTEL_EXPORTER_PROMETHEUS_HOST",
                    &host,
                    "not an IP address or a resolvable host name",
                )
            })?;
        }

        if let Some(n) = optional(get, "OTEL_BSP_MAX_QUEUE_SIZE", positive_usize)? {
            b.max_queue_size = n;
        }
        if let Some(n) = optional(get, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", positive_usize)? {
            b.max_export_batch_size = n;
        }
        if let Some(ms) = optional(get, "OTEL_BSP_SCHEDULE_DELAY", positive_u64)? {
            b.scheduled_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = optional(get, "OTEL_METRIC_EXPORT_INTERVAL", positive_u64)? {
            b.metric_export_interval = Duration::from_millis(ms);
        }
        Ok(b)
    }

    /// Reads and parses one variable; the parser's `Err` is the reason.
    fn optional<T>(
        get: Lookup<'_>,
        var: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, SetupError> {
        match get(var) {
            None => Ok(None),
            Some(raw) => parse(raw.trim())
                .map(Some)
                .map_err(|reason| SetupError::env(var, &raw, reason)),
        }
    }

    fn protocol(s: &str) -> Result<OtlpProtocol, String> {
        match s {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => Ok(OtlpProtocol::HttpJson),
            "grpc" => Ok(OtlpProtocol::Grpc),
            _ => Err("expected http/protobuf, http/json or grpc".to_owned()),
        }
    }

    fn positive_u64(s: &str) -> Result<u64, String> {
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a positive integer".to_owned()),
        }
    }

    fn positive_usize(s: &str) -> Result<usize, String> {
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a positive integer".to_owned()),
        }
    }

    fn port(s: &str) -> Result<u16, String> {
        s.parse::<u16>()
            .map_err(|_| "expected a port number, 0 to 65535".to_owned())
    }

    fn boolean(s: &str) -> Result<bool, String> {
        match s.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        }
    }

    fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (host, port).to_socket_addrs().ok()?.next()
    }

    /// A comma list of names; `none` alone means the empty list.
    fn list<T: PartialEq>(
        var: &str,
        raw: &str,
        pick: impl Fn(&str) -> Option<T>,
        accepted: &str,
    ) -> Result<Vec<T>, SetupError> {
        let names: Vec<String> = raw
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        if names.iter().any(|n| n == "none") {
            return if names.len() == 1 {
                Ok(Vec::new())
            } else {
                Err(SetupError::env(
                    var,
                    raw,
                    "none cannot be combined with other values",
                ))
            };
        }
        let mut out = Vec::new();
        for name in &names {
            let item = pick(name).ok_or_else(|| {
                SetupError::env(
                    var,
                    raw,
                    format!("unknown or unsupported {name:?}; accepted: {accepted}"),
                )
            })?;
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }

    fn headers(get: Lookup<'_>, var: &str) -> Result<Vec<(String, String)>, SetupError> {
        headers_of(get, var)
    }

    fn headers_of(get: Lookup<'_>, var: &str) -> Result<Vec<(String, String)>, SetupError> {
        match get(var) {
            None => Ok(Vec::new()),
            Some(raw) => key_values(var, &raw, true),
        }
    }

    /// Signal-specific headers override general ones with the same name.
    fn merge(
        general: Vec<(String, String)>,
        specific: Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = general
            .into_iter()
            .filter(|(k, _)| !specific.iter().any(|(s, _)| s.eq_ignore_ascii_case(k)))
            .collect();
        out.extend(specific);
        out
    }

    /// `k=v,k2=v2` (W3C baggage-like, percent-decoded), as the spec gives for
    /// headers and resource attributes.
    pub(super) fn key_values(
        var: &str,
        raw: &str,
        secret: bool,
    ) -> Result<Vec<(String, String)>, SetupError> {
        let shown = if secret { "<redacted>" } else { raw };
        let mut out = Vec::new();
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(SetupError::env(
                    var,
                    shown,
                    "expected key=value pairs separated by commas",
                ));
            };
            let key = percent_decode(key.trim())
                .ok_or_else(|| SetupError::env(var, shown, "invalid percent-encoding"))?;
            let value = percent_decode(value.trim())
                .ok_or_else(|| SetupError::env(var, shown, "invalid percent-encoding"))?;
            if key.is_empty() {
                return Err(SetupError::env(var, shown, "empty key"));
            }
            out.push((key, value));
        }
        Ok(out)
    }

    fn percent_decode(s: &str) -> Option<String> {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<TelemetryConfig, SetupError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        TelemetryConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_configured_means_console_traces_and_no_metrics() {
        let c = config(&[]).unwrap();
        assert_eq!(c.traces_exporters(), &[TracesExporter::Console]);
        assert!(c.metrics_exporters().is_empty());
        assert_eq!(c.otlp_traces_endpoint(), "http://localhost:4318/v1/traces");
        assert_eq!(
            c.propagators(),
            &[Propagator::TraceContext, Propagator::Baggage]
        );
        assert_eq!(c.otlp_timeout(), Duration::from_secs(10));
    }

    #[test]
    fn an_endpoint_turns_otlp_on_and_gets_signal_paths() {
        let c = config(&[(ENDPOINT_VAR, "http://collector:4318/")]).unwrap();
        assert_eq!(c.traces_exporters(), &[TracesExporter::Otlp]);
        assert_eq!(c.metrics_exporters(), &[MetricsExporter::Otlp]);
        assert_eq!(c.otlp_traces_endpoint(), "http://collector:4318/v1/traces");
        assert_eq!(
            c.otlp_metrics_endpoint(),
            "http://collector:4318/v1/metrics"
        );
    }

    const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

    #[test]
    fn signal_endpoint_is_used_as_is() {
        let c = config(&[
            (ENDPOINT_VAR, "http://a:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://b/custom/path",
            ),
        ])
        .unwrap();
        assert_eq!(c.otlp_traces_endpoint(), "https://b/custom/path");
        assert_eq!(c.otlp_metrics_endpoint(), "http://a:4318/v1/metrics");
    }

    #[test]
    fn exporter_lists() {
        let c = config(&[
            ("OTEL_TRACES_EXPORTER", "otlp, console,otlp"),
            ("OTEL_METRICS_EXPORTER", "prometheus,otlp"),
        ])
        .unwrap();
        assert_eq!(
            c.traces_exporters(),
            &[TracesExporter::Otlp, TracesExporter::Console]
        );
        assert_eq!(
            c.metrics_exporters(),
            &[MetricsExporter::Prometheus, MetricsExporter::Otlp]
        );
        let c = config(&[("OTEL_TRACES_EXPORTER", "none"), (ENDPOINT_VAR, "http://x")]).unwrap();
        assert!(c.traces_exporters().is_empty());
    }

    #[test]
    fn invalid_values_name_the_variable_and_value() {
        let err = config(&[("OTEL_TRACES_EXPORTER", "zipkin")]).unwrap_err();
        assert_eq!(err.kind(), "invalid_env");
        let text = err.to_string();
        assert!(
            text.contains("OTEL_TRACES_EXPORTER") && text.contains("zipkin"),
            "{text}"
        );

        let err = config(&[("OTEL_METRICS_EXPORTER", "none,otlp")]).unwrap_err();
        assert!(err.to_string().contains("none cannot be combined"), "{err}");
        let err = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")]).unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
            "{err}"
        );
        let err = config(&[(ENDPOINT_VAR, "collector:4318")]).unwrap_err();
        assert!(err.to_string().contains(ENDPOINT_VAR), "{err}");
        let err = config(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_TIMEOUT"),
            "{err}"
        );
        let err = config(&[("OTEL_EXPORTER_PROMETHEUS_PORT", "70000")]).unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_PROMETHEUS_PORT"),
            "{err}"
        );
        let err = config(&[("OTEL_RESOURCE_ATTRIBUTES", "a=1,b")]).unwrap_err();
        assert!(err.to_string().contains("a=1,b"), "{err}");
    }

    #[test]
    fn header_values_are_never_echoed() {
        let err = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t,broken")]).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let c = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t")]).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn headers_and_resource_attributes_are_percent_decoded() {
        let c = config(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "a=1,Authorization=Basic%20abc",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "a=2"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=dev,team=a%2Cb",
            ),
            ("OTEL_SERVICE_NAME", "svc"),
        ])
        .unwrap();
        assert_eq!(
            c.otlp_traces_headers,
            vec![
                ("Authorization".to_owned(), "Basic abc".to_owned()),
                ("a".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(c.otlp_metrics_headers[0], ("a".to_owned(), "1".to_owned()));
        assert_eq!(
            c.resource_attributes()[1],
            ("team".to_owned(), "a,b".to_owned())
        );
        assert_eq!(c.service_name(), Some("svc"));
    }

    #[test]
    fn protocol_per_signal() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(c.otlp_traces_protocol(), OtlpProtocol::HttpProtobuf);
        assert_eq!(c.otlp_metrics_protocol(), OtlpProtocol::Grpc);
    }

    #[test]
    fn sdk_disabled_turns_every_exporter_off() {
        let c = config(&[
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_METRICS_EXPORTER", "prometheus"),
        ])
        .unwrap();
        assert!(c.traces_exporters().is_empty() && c.metrics_exporters().is_empty());
    }

    #[test]
    fn prometheus_address() {
        let c = config(&[
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "9999"),
        ])
        .unwrap();
        assert_eq!(c.prometheus_addr(), "127.0.0.1:9999".parse().unwrap());
    }

    #[test]
    fn builder_validates() {
        let err = TelemetryConfig::builder()
            .otlp_endpoint("localhost:4318")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), "invalid_config");
        let err = TelemetryConfig::builder()
            .max_queue_size(0)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_queue_size"));
        let c = TelemetryConfig::builder()
            .max_queue_size(10)
            .max_export_batch_size(100)
            .build()
            .unwrap();
        assert_eq!(c.max_export_batch_size, 10);
    }

    #[test]
    fn env_then_code_overrides() {
        let c = config(&[(ENDPOINT_VAR, "http://a:4318"), ("OTEL_SERVICE_NAME", "x")])
            .unwrap()
            .into_builder()
            .service_name("y")
            .build()
            .unwrap();
        assert_eq!(c.service_name(), Some("y"));
        assert_eq!(c.otlp_traces_endpoint(), "http://a:4318/v1/traces");
    }
}
