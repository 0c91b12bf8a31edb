//! OpenTelemetry for the kernel: the names of the telemetry contract, how a
//! [`KernelError`] shows on a span, and [`instrument_kernel`].
//!
//! The spans and the three per-call metrics are generated at compile time by
//! `#[kernel_span]` on the kernel's methods (see `docs/telemetry.md`); this
//! module connects one [`Kernel`](crate::Kernel) instance to a telemetry binding and registers
//! what cannot be generated per call: the `agent_kernel.budget_consumed` gauge.
//!
//! Without the `otel` feature everything here still exists with the same
//! signatures and does nothing, so application code compiles both ways.

use std::borrow::Cow;
use std::sync::LazyLock;

use agent_kernel_otel::SpanError;

use crate::driver::DriverError;
use crate::error::KernelError;
use crate::firewall::Redactor;

mod binding;
pub mod keys;
mod labels;
mod tool_calls;

pub(crate) use binding::TelemetrySlot;
pub use binding::{Instrumentation, instrument_kernel, instrument_kernel_with};
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
pub(crate) use labels::driver_span_kind;
pub(crate) use labels::{current_span_ids, tool_type};
pub use tool_calls::{
    CAPTURE_CONTENT_ENV, ContentCapture, DEFAULT_CAPTURE_CHARS, GENAI_OPT_IN, MAX_CAPTURED_TOKEN,
    SEMCONV_OPT_IN_ENV, TRUNCATION_MARKER, genai_opted_in,
};
pub(crate) use tool_calls::{CapturedContent, ToolCallTelemetry};
// Read by the generated span code only.
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
pub(crate) use labels::{decision_label, reason_category_label};

/// Scrubs error text before it reaches a span: ids pass through the firewall's
/// string redaction; free text (policy reasons, driver messages, parse errors)
/// is left out, since it may echo argument values or tool output.
static REDACTOR: LazyLock<Redactor> = LazyLock::new(Redactor::new);

/// Also used for log lines that name caller-supplied ids (a forged token's
/// id is whatever the caller wrote).
pub(crate) fn scrub(s: &str) -> Cow<'_, str> {
    REDACTOR.redact_str(s)
}

/// A kernel-minted id that came back from a caller, as telemetry may show it.
fn checked(id: &str) -> &str {
    crate::ids::for_telemetry(id)
}

impl SpanError for KernelError {
    fn error_type(&self) -> &'static str {
        self.kind()
    }

    fn is_denial(&self) -> bool {
        self.denial_category().is_some()
    }

    fn redacted_message(&self) -> Cow<'_, str> {
        let text = match self {
            // An unregistered id is the caller's text: not repeated.
            Self::CapabilityNotFound { .. } => "no capability registered with that id".to_owned(),
            Self::CapabilityAlreadyRegistered { capability_id } => {
                format!(
                    "capability '{}' is already registered",
                    scrub(capability_id)
                )
            }
            Self::PolicyDenied {
                capability_id,
                category,
                ..
            } => format!("policy denied '{}' ({category})", scrub(capability_id)),
            // Token, handle and action ids come back from the caller: only
            // the kernel's own id shape is repeated (`_INVALID` otherwise).
            Self::TokenExpired { token_id, .. } => format!("token '{}' expired", checked(token_id)),
            Self::TokenRevoked { token_id } => {
                format!("token '{}' has been revoked", checked(token_id))
            }
            Self::TokenInvalid { token_id } => {
                format!("token '{}' has an invalid signature", checked(token_id))
            }
            Self::TokenPrincipalMismatch { token_id, .. } => format!(
                "token '{}' was issued to another principal",
                checked(token_id)
            ),
            Self::TokenCapabilityMismatch { token_id, .. } => format!(
                "token '{}' was issued for another capability",
                checked(token_id)
            ),
            Self::TokenFormat { .. } => "malformed token".to_owned(),
            // The path and the underlying error stay in the error and the logs.
            Self::StoreUnavailable { store, fault, .. } => format!("{store} unavailable ({fault})"),
            Self::DriverError {
                capability_id,
                status,
                ..
            } => match status {
                Some(code) => format!(
                    "all drivers failed for capability '{}' (last status {code})",
                    scrub(capability_id)
                ),
                None => format!(
                    "all drivers failed for capability '{}'",
                    scrub(capability_id)
                ),
            },
            Self::HandleNotFound { handle_id } => {
                format!("handle '{}' not found", checked(handle_id))
            }
            Self::HandleExpired { handle_id, .. } => {
                format!("handle '{}' expired", checked(handle_id))
            }
            Self::HandleAccessDenied { handle_id, .. } => format!(
                "handle '{}' was not issued to this principal",
                checked(handle_id)
            ),
            // The session id is the application's (`KernelBuilder::caller_ids`
            // decides how the span's attribute shows it): not repeated here.
            Self::BudgetExhausted { used, total, .. } => {
                format!("session budget exhausted: used {used} of {total} tokens")
            }
            Self::TraceNotFound { action_id } => {
                format!(
                    "no action trace found for action_id '{}'",
                    checked(action_id)
                )
            }
            Self::MalformedId { what, .. } => format!("malformed {what} id"),
            Self::InvalidConfig { .. } => "invalid configuration".to_owned(),
            Self::InvalidArgument { .. } => "invalid argument".to_owned(),
        };
        Cow::Owned(text)
    }
}

/// A failed driver attempt on its `agent_kernel.driver.execute` span: the
/// driver id and HTTP status only. The driver's message is left out, since
/// drivers often quote their input or the tool's response.
impl SpanError for DriverError {
    fn error_type(&self) -> &'static str {
        "driver_error"
    }

    fn redacted_message(&self) -> Cow<'_, str> {
        Cow::Owned(match self.status {
            Some(code) => format!(
                "driver '{}' failed with status {code}",
                scrub(&self.driver_id)
            ),
            None => format!("driver '{}' failed", scrub(&self.driver_id)),
        })
    }
}
