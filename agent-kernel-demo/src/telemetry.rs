//! Telemetry set-up for the two binaries, through `agent_kernel_otel::setup`:
//! the standard `OTEL_*` variables, plus the demo's `--metrics-addr`, with the
//! console span trees captured so the demo can print them beside each frame.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use agent_kernel_otel::setup::{
    ExportStats, MetricsExporter, SetupError, TelemetryConfig, TelemetryGuard, TracesExporter, init,
};

use crate::InputError;

/// The span trees the console exporter has written and the demo has not
/// printed yet.
#[derive(Debug, Clone, Default)]
pub struct ConsoleBuffer(Arc<Mutex<Vec<u8>>>);

impl ConsoleBuffer {
    /// Takes what was written so far.
    pub fn drain(&self) -> String {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        bytes.clear();
        text
    }
}

/// The installed telemetry of one process: the guard that flushes and shuts
/// down, and what was configured, for the banner.
#[derive(Debug)]
pub struct Telemetry {
    guard: Option<TelemetryGuard>,
    /// The captured console span trees, when the console exporter is on.
    pub console: Option<ConsoleBuffer>,
    /// Where spans go, one entry per exporter, for people.
    pub traces: Vec<String>,
    /// Where metrics go, one entry per exporter, for people.
    pub metrics: Vec<String>,
    /// The `/metrics` URL, when the Prometheus exporter is on.
    pub metrics_url: Option<String>,
}

/// Whether a set-up error is the user's input at fault (exit code 2).
fn is_input(e: &SetupError) -> bool {
    matches!(
        e.kind(),
        "invalid_env" | "invalid_config" | "unsupported" | "prometheus_bind"
    )
}

fn wrap(e: SetupError) -> anyhow::Error {
    if is_input(&e) {
        anyhow::Error::new(InputError::new(format!("telemetry set-up: {e}")))
    } else {
        anyhow::Error::new(e).context("telemetry set-up failed")
    }
}

/// Sets telemetry up from the `OTEL_*` variables, naming the service
/// `default_service` unless `OTEL_SERVICE_NAME` says otherwise, adding a
/// Prometheus endpoint at `metrics_addr` if given, and capturing the console
/// span trees when `capture_console` (else they go to stdout as they end).
///
/// # Errors
/// An [`InputError`] for an unusable `OTEL_*` value or a `/metrics` address
/// that cannot be listened on; other set-up failures as they are.
pub fn init_from_env(
    default_service: &str,
    metrics_addr: Option<SocketAddr>,
    capture_console: bool,
) -> anyhow::Result<Telemetry> {
    let config = TelemetryConfig::from_env().map_err(wrap)?;
    let traces = config.traces_exporters().to_vec();
    let mut metrics = config.metrics_exporters().to_vec();
    let has_service = config.service_name().is_some();
    let traces_url = config.otlp_traces_endpoint().to_owned();
    let metrics_otlp_url = config.otlp_metrics_endpoint().to_owned();

    let mut builder = config.into_builder();
    if !has_service {
        builder = builder.service_name(default_service);
    }
    let console =
        (capture_console && traces.contains(&TracesExporter::Console)).then(ConsoleBuffer::default);
    if let Some(buffer) = &console {
        builder = builder.console_writer(buffer.0.clone());
    }
    if let Some(addr) = metrics_addr {
        if !metrics.contains(&MetricsExporter::Prometheus) {
            metrics.push(MetricsExporter::Prometheus);
        }
        builder = builder
            .metrics_exporters(metrics.clone())
            .prometheus_addr(addr);
    }
    let guard = init(builder.build().map_err(wrap)?).map_err(wrap)?;
    let metrics_url = guard
        .prometheus_addr()
        .map(|addr| format!("http://{addr}/metrics"));

    let traces = traces
        .iter()
        .map(|t| match t {
            TracesExporter::Otlp => format!("OTLP {traces_url}"),
            TracesExporter::Console => "console span trees".to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    let metrics = metrics
        .iter()
        .map(|m| match m {
            MetricsExporter::Otlp => format!("OTLP {metrics_otlp_url}"),
            MetricsExporter::Console => "console (stdout exporter)".to_owned(),
            MetricsExporter::Prometheus => format!(
                "Prometheus {}",
                metrics_url.as_deref().unwrap_or("/metrics")
            ),
            other => format!("{other:?}"),
        })
        .collect();
    Ok(Telemetry {
        guard: Some(guard),
        console,
        traces,
        metrics,
        metrics_url,
    })
}

impl Telemetry {
    /// Exports what is pending now; a failure is reported on stderr, never
    /// fatal (telemetry never fails the program).
    pub fn flush(&self) {
        if let Some(guard) = &self.guard {
            if let Err(e) = guard.flush() {
                eprintln!("warning: {e}");
            }
        }
    }

    /// What the OTLP span pipeline has done so far.
    pub fn stats(&self) -> ExportStats {
        self.guard
            .as_ref()
            .map(TelemetryGuard::stats)
            .unwrap_or_default()
    }

    /// Flushes and shuts down (bounded by the OTLP timeout); a failure is
    /// reported on stderr.
    pub fn shutdown(mut self) {
        if let Some(guard) = self.guard.take() {
            if let Err(e) = guard.shutdown() {
                eprintln!("warning: {e}");
            }
        }
    }
}
