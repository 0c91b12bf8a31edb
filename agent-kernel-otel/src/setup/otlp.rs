//! OTLP over HTTP/protobuf (feature `otlp`).

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};

use super::{OtlpProtocol, SetupError};

/// Checks what this build can send to `endpoint` with `protocol`.
pub(crate) fn check(
    signal: &str,
    endpoint: &str,
    protocol: OtlpProtocol,
) -> Result<(), SetupError> {
    if protocol != OtlpProtocol::HttpProtobuf {
        return Err(SetupError::Unsupported {
            what: format!("OTLP protocol {} for {signal}", protocol.as_str()),
            hint: "use http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)".to_owned(),
        });
    }
    if endpoint.starts_with("https://") && !cfg!(feature = "otlp-tls") {
        return Err(SetupError::Unsupported {
            what: format!("https:// OTLP endpoint for {signal} ({endpoint})"),
            hint: "enable the `otlp-tls` feature of agent-kernel-otel".to_owned(),
        });
    }
    Ok(())
}

fn header_map(headers: &[(String, String)]) -> HashMap<String, String> {
    headers.iter().cloned().collect()
}

pub(crate) fn span_exporter(
    endpoint: &str,
    protocol: OtlpProtocol,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<opentelemetry_otlp::SpanExporter, SetupError> {
    check("traces", endpoint, protocol)?;
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(timeout);
    if !headers.is_empty() {
        builder = builder.with_headers(header_map(headers));
    }
    builder.build().map_err(|e| SetupError::Exporter {
        exporter: "otlp-traces",
        reason: e.to_string(),
    })
}

pub(crate) fn metric_exporter(
    endpoint: &str,
    protocol: OtlpProtocol,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<opentelemetry_otlp::MetricExporter, SetupError> {
    check("metrics", endpoint, protocol)?;
    let mut builder = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(timeout);
    if !headers.is_empty() {
        builder = builder.with_headers(header_map(headers));
    }
    builder.build().map_err(|e| SetupError::Exporter {
        exporter: "otlp-metrics",
        reason: e.to_string(),
    })
}
