//! Span names, attribute keys, metric names and label keys of the telemetry
//! contract (`docs/telemetry.md`), written once: the `#[kernel_span]`
//! attributes on the kernel name these constants, and the contract test
//! checks that what is emitted equals them and the document.

use agent_kernel_otel::{CounterSpec, HistogramSpec};

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
/// GenAI semantic conventions: `function` (in-process driver) or `extension` (remote).
pub const GEN_AI_TOOL_TYPE: &str = "gen_ai.tool.type";
/// GenAI semantic conventions: the capability's registered description.
pub const GEN_AI_TOOL_DESCRIPTION: &str = "gen_ai.tool.description";
/// GenAI semantic conventions: the session, as the caller-id setting records it.
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// GenAI semantic conventions (content capture only): the arguments as JSON, redacted.
pub const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// GenAI semantic conventions (content capture only): the frame as JSON.
pub const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// The span name prefix with the GenAI opt-in: `execute_tool {tool}`.
pub const SPAN_EXECUTE_TOOL_PREFIX: &str = "execute_tool ";
/// GenAI semantic conventions (opt-in): histogram \[s\] of tool executions.
pub const METRIC_GEN_AI_EXECUTE_TOOL_DURATION: &str = "gen_ai.execute_tool.duration";
/// Explicit bucket boundaries of `gen_ai.execute_tool.duration`, in seconds
/// (the GenAI conventions' advice).
pub const GEN_AI_DURATION_BUCKETS_S: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// OpenInference: `TOOL` on invoke, `GUARDRAIL` on policy and firewall spans.
pub const OPENINFERENCE_SPAN_KIND: &str = "openinference.span.kind";
/// OpenInference: the tool's name (as `gen_ai.tool.name`).
pub const TOOL_NAME: &str = "tool.name";
/// OpenInference: the tool's description.
pub const TOOL_DESCRIPTION: &str = "tool.description";
/// OpenInference: the session (as `gen_ai.conversation.id`).
pub const OPENINFERENCE_SESSION_ID: &str = "session.id";
/// OpenInference (content capture only): the arguments as JSON, redacted.
pub const INPUT_VALUE: &str = "input.value";
/// OpenInference (content capture only): `application/json`.
pub const INPUT_MIME_TYPE: &str = "input.mime_type";
/// OpenInference (content capture only): the frame as JSON.
pub const OUTPUT_VALUE: &str = "output.value";
/// OpenInference (content capture only): `application/json`.
pub const OUTPUT_MIME_TYPE: &str = "output.mime_type";
/// True on a driver attempt after the first (a fallback).
pub const FALLBACK: &str = "agent_kernel.fallback";
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
/// `agent_kernel.invocations`, declared once for `#[kernel_span]`.
pub const INVOCATIONS: CounterSpec = CounterSpec::new(
    METRIC_INVOCATIONS,
    "{invocation}",
    "Kernel invocations by capability, safety class and outcome",
    &[LABEL_CAPABILITY_ID, LABEL_SAFETY_CLASS, LABEL_STATUS],
);
/// `agent_kernel.invocation_duration`, declared once for `#[kernel_span]`.
pub const INVOCATION_DURATION: HistogramSpec = HistogramSpec::new(
    METRIC_INVOCATION_DURATION,
    "ms",
    "Kernel invocation latency",
    &[LABEL_CAPABILITY_ID, LABEL_SAFETY_CLASS, LABEL_STATUS],
)
.with_buckets(&DURATION_BUCKETS_MS);
/// `agent_kernel.policy_denials`, declared once and counted by the three
/// spans that can deny (grant, invoke authorization, the frame's budget check).
pub const POLICY_DENIALS: CounterSpec = CounterSpec::new(
    METRIC_POLICY_DENIALS,
    "{denial}",
    "Policy denials at grant and at invoke, by category",
    &[LABEL_CAPABILITY_ID, LABEL_REASON_CATEGORY],
);
/// Explicit bucket boundaries of `agent_kernel.invocation_duration`, in ms.
pub const DURATION_BUCKETS_MS: [f64; 15] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 100.0, 500.0, 1000.0, 10000.0,
];
