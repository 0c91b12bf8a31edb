//! The one error type of the set-up.

use std::net::SocketAddr;

/// Why telemetry could not be set up, flushed or shut down.
///
/// Every variant has a stable [`kind`](SetupError::kind), suitable for
/// matching in code and for the `error.type` attribute; the `Display` text is
/// for people and may change. Header values are never echoed (they usually
/// carry credentials).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// An environment variable holds a value the set-up cannot use.
    #[error("invalid value {value:?} for {variable}: {reason}")]
    InvalidEnv {
        /// The variable, e.g. `OTEL_TRACES_EXPORTER`.
        variable: String,
        /// The value as read (`<redacted>` for header variables).
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A value set in code (through the builder) is unusable.
    #[error("invalid telemetry configuration for {field}: {reason}")]
    InvalidConfig {
        /// The configuration field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The configuration asks for something this build does not provide
    /// (a disabled cargo feature, or a protocol not implemented).
    #[error("{what} is not supported: {hint}")]
    Unsupported {
        /// What was asked for.
        what: String,
        /// How to get it, or what to use instead.
        hint: String,
    },
    /// An exporter or provider could not be built.
    #[error("cannot build the {exporter} exporter: {reason}")]
    Exporter {
        /// Which exporter (`otlp-traces`, `otlp-metrics`, `prometheus`, …).
        exporter: &'static str,
        /// The underlying error, as text.
        reason: String,
    },
    /// The Prometheus exposition endpoint could not listen on its address.
    #[error("cannot serve Prometheus /metrics on {addr}: {source}")]
    PrometheusBind {
        /// The requested address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// Flushing pending telemetry failed or timed out.
    #[error("telemetry flush failed: {0}")]
    Flush(String),
    /// Shutting down the providers failed or timed out.
    #[error("telemetry shutdown failed: {0}")]
    Shutdown(String),
}

impl SetupError {
    /// A stable, machine-readable name of the error's kind.
    ///
    /// ```
    /// use agent_kernel_otel::setup::TelemetryConfig;
    ///
    /// let err = TelemetryConfig::from_lookup(|key| {
    ///     (key == "OTEL_TRACES_EXPORTER").then(|| "zipkin".to_owned())
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.kind(), "invalid_env");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidEnv { .. } => "invalid_env",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::Unsupported { .. } => "unsupported",
            Self::Exporter { .. } => "exporter",
            Self::PrometheusBind { .. } => "prometheus_bind",
            Self::Flush(_) => "flush",
            Self::Shutdown(_) => "shutdown",
        }
    }

    pub(crate) fn env(variable: &str, value: &str, reason: impl Into<String>) -> Self {
        Self::InvalidEnv {
            variable: variable.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}
