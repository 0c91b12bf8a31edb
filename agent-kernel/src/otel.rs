//! OpenTelemetry for the kernel: the names of the telemetry contract, how a
//! [`KernelError`] shows on a span, and [`instrument_kernel`].
//!
//! The spans and the three per-call metrics are generated at compile time by
//! `#[kernel_span]` on the kernel's methods (see `docs/telemetry.md`); this
//! module connects one [`Kernel`] instance to a telemetry binding and registers
//! what cannot be generated per call: the `agent_kernel.budget_consumed` gauge.
//!
//! Without the `otel` feature everything here still exists with the same
//! signatures and does nothing, so application code compiles both ways.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, PoisonError, RwLock, Weak};

use agent_kernel_otel::{
    AttrValue, GaugeRegistration, GaugeSpec, SpanError, Telemetry, ToAttrValue,
};

use crate::driver::DriverError;
use crate::error::{DenialCategory, KernelError};
use crate::firewall::Redactor;
use crate::kernel::Kernel;
use crate::registry::CapabilityRegistry;
use crate::types::{Capability, ResponseMode, SafetyClass, SensitivityTag};

/// Span names, attribute keys, metric names and label keys of the telemetry
/// contract (`docs/telemetry.md`). The `#[kernel_span]` attributes on the
/// kernel spell the same strings (the macro takes literals); the contract test
/// checks that what is emitted equals these constants and the document.
pub mod keys {
    /// Root span of [`Kernel::invoke`](crate::Kernel::invoke).
    pub const SPAN_INVOKE: &str = "agent_kernel.invoke";
    /// Token verification and policy evaluation (invoke and grant).
    pub const SPAN_POLICY_EVALUATE: &str = "agent_kernel.policy.evaluate";
    /// One driver attempt.
    pub const SPAN_DRIVER_EXECUTE: &str = "agent_kernel.driver.execute";
    /// The context firewall.
    pub const SPAN_FIREWALL_APPLY: &str = "agent_kernel.firewall.apply";
    /// Root span of [`Kernel::grant_capability`](crate::Kernel::grant_capability) and `get_token`.
    pub const SPAN_GRANT: &str = "agent_kernel.grant";
    /// Root span of [`Kernel::expand`](crate::Kernel::expand).
    pub const SPAN_EXPAND: &str = "agent_kernel.expand";
    /// Root span of [`Kernel::explain`](crate::Kernel::explain).
    pub const SPAN_EXPLAIN: &str = "agent_kernel.explain";

    /// The principal making the call (span attribute only, never a metric label).
    pub const PRINCIPAL_ID: &str = "agent_kernel.principal_id";
    /// The capability id (`_OTHER` when not registered).
    pub const CAPABILITY_ID: &str = "agent_kernel.capability_id";
    /// `READ`, `WRITE` or `DESTRUCTIVE`.
    pub const SAFETY_CLASS: &str = "agent_kernel.safety_class";
    /// `NONE`, `PII`, `PCI` or `SECRETS`.
    pub const SENSITIVITY: &str = "agent_kernel.sensitivity";
    /// The response mode asked for.
    pub const RESPONSE_MODE: &str = "agent_kernel.response_mode";
    /// The response mode served (after the admin gate and budget escalation).
    pub const EFFECTIVE_RESPONSE_MODE: &str = "agent_kernel.effective_response_mode";
    /// The invocation's action id (the key of its `ActionTrace`).
    pub const ACTION_ID: &str = "agent_kernel.action_id";
    /// The session id, when the call has one.
    pub const SESSION_ID: &str = "agent_kernel.session_id";
    /// The id of the driver that served (invoke) or is attempted (driver.execute).
    pub const DRIVER_ID: &str = "agent_kernel.driver_id";
    /// 1-based driver attempt number.
    pub const ATTEMPT: &str = "agent_kernel.attempt";
    /// Policy decision: `allow` or `deny`.
    pub const DECISION: &str = "agent_kernel.decision";
    /// Denial category (closed set), on denied policy evaluations.
    pub const REASON_CATEGORY: &str = "agent_kernel.reason_category";
    /// Rows the firewall received.
    pub const ROWS_IN: &str = "agent_kernel.rows_in";
    /// Rows the firewall let out.
    pub const ROWS_OUT: &str = "agent_kernel.rows_out";
    /// Number of redactions the firewall made.
    pub const REDACTIONS: &str = "agent_kernel.redactions";
    /// Characters in the firewall's output.
    pub const CHARS: &str = "agent_kernel.chars";
    /// The handle id an expansion reads.
    pub const HANDLE_ID: &str = "agent_kernel.handle_id";
    /// Rows returned by an expansion.
    pub const ROWS_RETURNED: &str = "agent_kernel.rows_returned";
    /// GenAI semantic conventions: always `execute_tool` on invoke.
    pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    /// GenAI semantic conventions: the tool (capability) name.
    pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
    /// GenAI semantic conventions: the tool call id (the action id).
    pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    /// The value of `gen_ai.operation.name` on invoke spans.
    pub const GEN_AI_OPERATION_EXECUTE_TOOL: &str = "execute_tool";
    /// The stable error kind on failed spans.
    pub const ERROR_TYPE: &str = "error.type";

    /// Counter {invocation}: one per invoke.
    pub const METRIC_INVOCATIONS: &str = "agent_kernel.invocations";
    /// Histogram \[ms\]: invoke latency.
    pub const METRIC_INVOCATION_DURATION: &str = "agent_kernel.invocation_duration";
    /// Counter {denial}: policy denials at grant and at invoke.
    pub const METRIC_POLICY_DENIALS: &str = "agent_kernel.policy_denials";
    /// Gauge {token}: budget consumed per live session.
    pub const METRIC_BUDGET_CONSUMED: &str = "agent_kernel.budget_consumed";
    /// Metric label: capability id (`_OTHER` when not registered).
    pub const LABEL_CAPABILITY_ID: &str = "capability_id";
    /// Metric label: safety class.
    pub const LABEL_SAFETY_CLASS: &str = "safety_class";
    /// Metric label: `success`, `error` or `denied`.
    pub const LABEL_STATUS: &str = "status";
    /// Metric label: denial category.
    pub const LABEL_REASON_CATEGORY: &str = "reason_category";
    /// Metric label: session id (live sessions only, bounded).
    pub const LABEL_SESSION_ID: &str = "session_id";
    /// The label value standing for any capability id that is not registered.
    pub const OTHER: &str = "_OTHER";
    /// Explicit bucket boundaries of `agent_kernel.invocation_duration`, in ms.
    pub const DURATION_BUCKETS_MS: [f64; 15] = [
        0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0, 500.0, 1000.0, 10000.0,
    ];
}

// The closed enums the kernel records are `&'static str` labels: recorded
// without a copy (a plain `as_str()` expression would be copied, since the
// macro cannot see that the borrow is `'static`).
macro_rules! static_attr_value {
    ($($t:ty),*) => {$(
        impl ToAttrValue for $t {
            fn to_attr_value(&self) -> Option<AttrValue<'_>> {
                Some(AttrValue::Static(self.as_str()))
            }
        }
    )*};
}
static_attr_value!(ResponseMode, SafetyClass, SensitivityTag, DenialCategory);

/// The bounded label values telemetry records for one capability: its id
/// (shared with the registry, not copied) or `_OTHER` when it is not
/// registered, its safety class and its sensitivity. A borrowed view of the
/// registry entry, looked up once per call and small enough to travel in the
/// invoke future.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CapabilityLabels<'a> {
    registered: Option<(&'a Capability, &'a Arc<str>)>,
}

#[cfg_attr(not(feature = "otel"), allow(dead_code))]
impl<'a> CapabilityLabels<'a> {
    /// The labels of `capability_id` in `registry`.
    pub(crate) fn of(registry: &'a CapabilityRegistry, capability_id: &str) -> Self {
        CapabilityLabels {
            registered: registry.get_labelled(capability_id),
        }
    }

    /// The labels when telemetry is on, looked up before the span starts so
    /// that its attributes, its metric labels and the policy span share one
    /// look-up; `None` when off (nothing will read them).
    pub(crate) fn if_enabled(
        registry: &'a CapabilityRegistry,
        capability_id: &str,
    ) -> Option<Self> {
        agent_kernel_otel::is_enabled().then(|| Self::of(registry, capability_id))
    }

    /// `labels`, or a fresh look-up when telemetry was switched on after
    /// they were (not) looked up.
    pub(crate) fn or_lookup(
        labels: Option<Self>,
        registry: &'a CapabilityRegistry,
        capability_id: &str,
    ) -> Self {
        labels.unwrap_or_else(|| Self::of(registry, capability_id))
    }

    /// `agent_kernel.capability_id` (and `gen_ai.tool.name`).
    pub(crate) fn capability_id(self) -> AttrValue<'static> {
        match self.registered {
            Some((_, label)) => AttrValue::Shared(Arc::clone(label)),
            None => AttrValue::Static(keys::OTHER),
        }
    }

    /// `agent_kernel.safety_class`.
    pub(crate) fn safety_class(self) -> AttrValue<'static> {
        AttrValue::Static(
            self.registered
                .map_or(keys::OTHER, |(c, _)| c.safety_class.as_str()),
        )
    }

    /// `agent_kernel.sensitivity`.
    pub(crate) fn sensitivity(self) -> AttrValue<'static> {
        AttrValue::Static(
            self.registered
                .map_or(keys::OTHER, |(c, _)| c.sensitivity.as_str()),
        )
    }
}

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

/// The connection between one [`Kernel`] and its telemetry, returned by
/// [`instrument_kernel`]. Dropping it (or calling [`unhook`](Self::unhook))
/// stops the budget gauge and returns the kernel to the default binding (the
/// OpenTelemetry globals). Clones of one hook share it: the gauge stops when
/// the last one goes.
#[derive(Debug, Clone)]
#[must_use = "dropping the Instrumentation unhooks the kernel at once"]
pub struct Instrumentation {
    hook: Arc<Hook>,
}

impl Instrumentation {
    /// Unhooks now (the same as dropping this handle and every clone of it).
    pub fn unhook(self) {}

    /// The binding the kernel reports to while this hook is alive.
    pub fn telemetry(&self) -> &Telemetry {
        &self.hook.telemetry
    }
}

/// What an [`Instrumentation`] holds; the kernel keeps a weak reference to it
/// so that instrumenting twice with the same binding returns the same hook.
#[derive(Debug)]
pub(crate) struct Hook {
    telemetry: Telemetry,
    _gauge: GaugeRegistration,
    binding: Arc<TelemetrySlot>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.binding.reset_if(&self.telemetry);
    }
}

/// Connects `kernel` to the OpenTelemetry global providers and turns the
/// run-time switch on: from now on its spans and metrics go wherever the
/// application installed its providers (also providers installed later: the
/// globals are read lazily). Registers the `agent_kernel.budget_consumed`
/// gauge over the kernel's live sessions.
///
/// Idempotent: while a hook with the same binding is alive, calling it again
/// returns that hook. Without the `otel` feature it does nothing.
///
/// ```
/// # use agent_kernel::{CapabilityRegistry, Kernel};
/// let kernel = Kernel::builder(CapabilityRegistry::new()).secret("doc-secret-0123456789abcdef").build()?;
/// let hook = agent_kernel::otel::instrument_kernel(&kernel);
/// // ... invoke ...
/// drop(hook); // unhooked: the gauge stops
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
pub fn instrument_kernel(kernel: &Kernel) -> Instrumentation {
    instrument_kernel_with(kernel, Telemetry::global())
}

/// Like [`instrument_kernel`], with an explicit binding: with the `otel`
/// feature, `Telemetry::new(&tracer_provider, &meter_provider)` reports to
/// those providers only, so two kernels in one process (or two tests) never
/// share or fight over the globals.
pub fn instrument_kernel_with(kernel: &Kernel, telemetry: Telemetry) -> Instrumentation {
    let slot = kernel.telemetry_slot();
    if let Some(hook) = slot.live_hook(&telemetry) {
        return Instrumentation { hook };
    }
    agent_kernel_otel::enable();
    let budget = kernel.budget().clone();
    let caller_ids = kernel.caller_ids().clone();
    let gauge = telemetry.register_gauge::<u64, _>(
        GaugeSpec::new(keys::METRIC_BUDGET_CONSUMED)
            .with_unit("{token}")
            .with_description("Session budget consumed so far, in tokens, per live session"),
        move |observer| {
            // A series per session: with session ids omitted there is no
            // label to tell them apart, so nothing is reported.
            for session in budget.sessions() {
                if let Some(label) = caller_ids.render(&session.session_id) {
                    observer.observe(session.used, &[(keys::LABEL_SESSION_ID, &*label)]);
                }
            }
        },
    );
    let hook = Arc::new(Hook {
        telemetry: telemetry.clone(),
        _gauge: gauge,
        binding: Arc::clone(slot),
    });
    slot.bind(telemetry, &hook);
    Instrumentation { hook }
}

/// Which binding a kernel reports to, and the hook that set it. The kernel
/// reads it once per root span, and only while telemetry is enabled.
#[derive(Debug, Default)]
pub(crate) struct TelemetrySlot {
    state: RwLock<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    telemetry: Telemetry,
    hook: Weak<Hook>,
}

impl TelemetrySlot {
    /// The binding root spans of this kernel use.
    pub(crate) fn current(&self) -> Telemetry {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .telemetry
            .clone()
    }

    fn live_hook(&self, telemetry: &Telemetry) -> Option<Arc<Hook>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .hook
            .upgrade()
            .filter(|hook| hook.telemetry.same_binding(telemetry))
    }

    fn bind(&self, telemetry: Telemetry, hook: &Arc<Hook>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.telemetry = telemetry;
        state.hook = Arc::downgrade(hook);
    }

    /// Back to the default binding, unless another hook has rebound the kernel since.
    fn reset_if(&self, telemetry: &Telemetry) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.telemetry.same_binding(telemetry) {
            state.telemetry = Telemetry::global();
            state.hook = Weak::new();
        }
    }
}
