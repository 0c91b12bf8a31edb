//! The agent-kernel demo: a billing agent session run through the kernel,
//! with its spans, metrics and a remote tool reached over HTTP.
//!
//! Two binaries share this library:
//! - `agent-kernel-demo` runs the scripted session ([`session`]) and prints
//!   the frames, the span trees and a metrics summary;
//! - `tool-server` serves the billing tool over HTTP ([`tool_server`]) for the
//!   two-process trace (the demo's `--remote-tool URL`).
//!
//! Both read the billing data of `data/billing_invoices.json`
//! ([`data`]) and set telemetry up from the standard `OTEL_*` variables
//! through `agent_kernel_otel::setup`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod data;
pub mod durable;
pub mod instrumentation;
pub mod render;
pub mod session;
pub mod tally;
pub mod telemetry;
pub mod tool_server;

use std::fmt;

/// A problem with what the user gave (a flag, the data file, an `OTEL_*`
/// variable): reported as one clear message, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl InputError {
    /// An input error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// The exit code for an error returned by a binary's `run`: 2 when the user's
/// input is at fault ([`InputError`] anywhere in the chain), 1 otherwise.
pub fn exit_code_for(error: &anyhow::Error) -> u8 {
    if error
        .chain()
        .any(|e| e.downcast_ref::<InputError>().is_some())
    {
        2
    } else {
        1
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix: the signal to stop serving and
/// flush telemetry.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Prints one line to stdout, ignoring a closed pipe (`demo | head` must not
/// panic).
#[macro_export]
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
