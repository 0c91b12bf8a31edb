//! The bridge from the audit trail to OpenTelemetry: [`OTelTraceExporter`]
//! turns stored [`ActionTrace`]s into finished `agent_kernel.invoke` spans, for
//! audit trails recorded without live instrumentation (another process, an
//! older build, a JSON Lines file replayed with
//! [`TraceStore::import_jsonl`](crate::TraceStore::import_jsonl)), read from
//! memory or from a durable [`AuditLog`](crate::store::AuditLog) with
//! [`OTelTraceExporter::export_from`].
//!
//! # What a bridged span holds
//! - name `agent_kernel.invoke`, kind INTERNAL, start = `invoked_at`, end =
//!   `invoked_at + duration` (= start when no duration was recorded), no parent;
//! - the contract's attributes (`crate::otel::keys`): principal, capability,
//!   safety class and sensitivity when known (see
//!   [`with_registry`](OTelTraceExporter::with_registry)), requested
//!   (`response_mode`) and served (`effective_response_mode`) mode, action id,
//!   session id, driver id and handle id when set, and the GenAI keys
//!   (`gen_ai.operation.name = execute_tool`, `gen_ai.tool.name`,
//!   `gen_ai.tool.call.id`). Principal and session ids follow
//!   [`with_caller_ids`](OTelTraceExporter::with_caller_ids) (as given,
//!   pseudonymised or left out); action and handle ids that do not have the
//!   shape of a kernel-minted id (a record imported from a file holds what the
//!   file held) are recorded as `_INVALID`;
//! - [`keys::BRIDGED`]` = true`, [`keys::OUTCOME`] (the outcome label) and
//!   [`keys::ARG_KEYS`]: the argument **keys** only — those with a parameter
//!   name's shape and nothing the redactor removes; any other key (free text,
//!   an e-mail address, a card number: the caller's text) as `_INVALID` —
//!   sorted, at most [`MAX_ARG_KEYS`]. **Argument values never leave**, nor does the recorded
//!   error text: a failed record gets status ERROR whose description is built
//!   from the outcome and denial category alone, `error.type` (the stable kind
//!   the live span would have had: `policy_denied`, `budget_exhausted`,
//!   `handle_access_denied`, `driver_error`, `cancelled`), `reason_category`
//!   for denials, and an `exception` event at the end time.
//!
//! # Ids: the same every time
//! The bridged span's span id is the first 8 bytes of SHA-256 of the action
//! id; its trace id is the live trace id the record carries, or else the first
//! 16 bytes of SHA-256 of `"trace:" + action_id` ([`bridged_ids`]). Exporting a
//! record twice therefore yields the same ids, and a backend that keys spans by
//! (trace id, span id) keeps one copy.
//!
//! The OpenTelemetry API has no way to choose a span's ids; the SDK asks its
//! `IdGenerator`. The bridge offers its ids through
//! [`take_pending_trace_id`] / [`take_pending_span_id`] while it builds a span,
//! and the tracer provider given to the bridge must use an id generator that
//! takes them: `BridgeIdGenerator` (feature `otel-sdk`), or your own
//! generator calling those two functions first. With any other generator the
//! spans are still exported, with fresh ids, and
//! [`BridgedSpan::deterministic`] says so.
//!
//! # Correlation with a live span
//! A record that was made under a live invoke span keeps that span's trace id
//! (the bridged span lands in the same trace, not a second one) and **links**
//! to the live span (a [`Link`] to its span context) rather than claiming to be
//! it: the live span, if it was exported, and the bridged one sit side by side.
//!
//! ```
//! use agent_kernel::bridge::OTelTraceExporter;
//! use agent_kernel::TraceStore;
//! use agent_kernel_otel::opentelemetry::trace::noop::NoopTracerProvider;
//!
//! let store = TraceStore::new();
//! // ... store.import_jsonl(file) ...
//! let exporter = OTelTraceExporter::new(&NoopTracerProvider::new());
//! let report = exporter.export_all(store.list_all());
//! assert_eq!(report.exported, 0);
//! ```

use std::borrow::{Borrow, Cow};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;

use agent_kernel_otel::opentelemetry::trace::{
    Event, Link, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceFlags,
    TraceId, TraceState, Tracer, TracerProvider,
};
use agent_kernel_otel::opentelemetry::{
    Array, Context, InstrumentationScope, KeyValue, StringValue, Value,
};
use sha2::{Digest, Sha256};

use crate::caller_ids::CallerIdRecording;
use crate::error::DenialCategory;
use crate::firewall::Redactor;
use crate::ids;
use crate::otel::keys as contract;
use crate::registry::CapabilityRegistry;
use crate::types::{ActionTrace, Capability, SafetyClass, SensitivityTag, TraceOutcome};

/// Attribute keys the bridge adds to the contract's (`crate::otel::keys`).
pub mod keys {
    /// `true` on every span made by the bridge (live spans never carry it).
    pub const BRIDGED: &str = "agent_kernel.bridged";
    /// The invocation's argument keys (string array; never the values).
    pub const ARG_KEYS: &str = "agent_kernel.arg_keys";
    /// The record's outcome: `success`, `denied`, `driver_error`, `cancelled`.
    pub const OUTCOME: &str = "agent_kernel.outcome";
    /// `true` when the invocation was cancelled (as on live spans).
    pub const CANCELLED: &str = "agent_kernel.cancelled";
    /// The exception event's name and attribute keys (OpenTelemetry semantic conventions).
    pub const EXCEPTION_EVENT: &str = "exception";
    /// `exception.type` on the exception event.
    pub const EXCEPTION_TYPE: &str = "exception.type";
    /// `exception.message` on the exception event.
    pub const EXCEPTION_MESSAGE: &str = "exception.message";
}

/// At most this many argument keys are listed in [`keys::ARG_KEYS`].
pub const MAX_ARG_KEYS: usize = 64;

/// Argument keys longer than this many bytes are recorded as `_INVALID`.
pub const MAX_ARG_KEY_CHARS: usize = 128;

// ── Deterministic ids ───────────────────────────────────────────────────────

thread_local! {
    /// The ids the bridge wants for the span it is building on this thread.
    static PENDING: Cell<(Option<TraceId>, Option<SpanId>)> = const { Cell::new((None, None)) };
}

/// The trace id the bridge wants for the span it is building on this thread,
/// taken (a second call returns `None`). An SDK id generator calls this first
/// in `new_trace_id` and falls back to its own ids on `None`.
pub fn take_pending_trace_id() -> Option<TraceId> {
    PENDING.with(|p| {
        let (trace, span) = p.get();
        p.set((None, span));
        trace
    })
}

/// The span id the bridge wants for the span it is building on this thread,
/// taken (a second call returns `None`). An SDK id generator calls this first
/// in `new_span_id` and falls back to its own ids on `None`.
pub fn take_pending_span_id() -> Option<SpanId> {
    PENDING.with(|p| {
        let (trace, span) = p.get();
        p.set((trace, None));
        span
    })
}

/// Offers ids for the span built while it lives; withdraws them on drop.
struct PendingIds;

impl PendingIds {
    fn offer(trace_id: TraceId, span_id: SpanId) -> Self {
        PENDING.with(|p| p.set((Some(trace_id), Some(span_id))));
        PendingIds
    }
}

impl Drop for PendingIds {
    fn drop(&mut self) {
        PENDING.with(|p| p.set((None, None)));
    }
}

fn digest(input: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in input {
        h.update(part);
    }
    h.finalize().into()
}

/// The span id of the bridged span of `action_id`: the first 8 bytes of
/// SHA-256(action id) (never the invalid all-zero id).
pub fn bridged_span_id(action_id: &str) -> SpanId {
    let d = digest(&[action_id.as_bytes()]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    if b == [0; 8] {
        b[7] = 1;
    }
    SpanId::from_bytes(b)
}

/// The trace id a bridged span of `action_id` gets when its record has no live
/// trace id: the first 16 bytes of SHA-256(`"trace:"` + action id) (never the
/// invalid all-zero id).
pub fn derived_trace_id(action_id: &str) -> TraceId {
    let d = digest(&[b"trace:", action_id.as_bytes()]);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    if b == [0; 16] {
        b[15] = 1;
    }
    TraceId::from_bytes(b)
}

/// The live invoke span a record was made under, when it carries valid W3C ids.
pub fn live_span_context(trace: &ActionTrace) -> Option<SpanContext> {
    let trace_id = live_trace_id(trace)?;
    let span_id = trace
        .span_id
        .as_deref()
        .filter(|s| crate::trace::is_w3c_span_id(s))
        .and_then(|s| SpanId::from_hex(s).ok())?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::default(),
        true,
        TraceState::default(),
    ))
}

fn live_trace_id(trace: &ActionTrace) -> Option<TraceId> {
    trace
        .trace_id
        .as_deref()
        .filter(|s| crate::trace::is_w3c_trace_id(s))
        .and_then(|s| TraceId::from_hex(s).ok())
}

/// The (trace id, span id) the bridged span of `trace` gets: the record's live
/// trace id when it has a valid one, else [`derived_trace_id`]; and
/// [`bridged_span_id`]. The same for the same record, every time.
pub fn bridged_ids(trace: &ActionTrace) -> (TraceId, SpanId) {
    let trace_id = live_trace_id(trace).unwrap_or_else(|| derived_trace_id(&trace.action_id));
    (trace_id, bridged_span_id(&trace.action_id))
}

/// An SDK id generator that hands out the bridge's ids while it builds a span
/// and defers to `G` (random ids by default) at every other time, so one
/// tracer provider serves live spans and bridged ones alike.
///
/// ```
/// use agent_kernel::bridge::BridgeIdGenerator;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// let provider = SdkTracerProvider::builder()
///     .with_id_generator(BridgeIdGenerator::new())
///     .build();
/// # drop(provider);
/// ```
#[cfg(feature = "otel-sdk")]
#[derive(Debug, Default, Clone)]
pub struct BridgeIdGenerator<G = opentelemetry_sdk::trace::RandomIdGenerator> {
    fallback: G,
}

#[cfg(feature = "otel-sdk")]
impl BridgeIdGenerator {
    /// Defers to random ids outside the bridge (the SDK's default generator).
    pub fn new() -> Self {
        Self::default()
    }
}

#[cfg(feature = "otel-sdk")]
impl<G: opentelemetry_sdk::trace::IdGenerator> BridgeIdGenerator<G> {
    /// Defers to `fallback` outside the bridge.
    pub fn wrapping(fallback: G) -> Self {
        Self { fallback }
    }
}

#[cfg(feature = "otel-sdk")]
impl<G: opentelemetry_sdk::trace::IdGenerator> opentelemetry_sdk::trace::IdGenerator
    for BridgeIdGenerator<G>
{
    fn new_trace_id(&self) -> TraceId {
        take_pending_trace_id().unwrap_or_else(|| self.fallback.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        take_pending_span_id().unwrap_or_else(|| self.fallback.new_span_id())
    }
}

// ── The exporter ────────────────────────────────────────────────────────────

/// One record turned into a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgedSpan {
    /// The record's action id.
    pub action_id: String,
    /// The trace id the span got (W3C hex; all zeros from a no-op provider).
    pub trace_id: String,
    /// The span id the span got (W3C hex).
    pub span_id: String,
    /// Whether the span got the deterministic ids of [`bridged_ids`] (false
    /// when the provider's id generator does not take the bridge's ids).
    pub deterministic: bool,
}

/// What [`OTelTraceExporter::export_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeReport {
    /// Spans built and ended (whether the provider samples and exports them is its business).
    pub exported: usize,
    /// Spans that did not get their deterministic ids (see [`BridgedSpan::deterministic`]).
    pub nondeterministic: usize,
}

/// Turns [`ActionTrace`]s into finished `agent_kernel.invoke` spans on a
/// tracer from the given provider (scope `agent_kernel` with the crate
/// version). See the [module docs](self) for what the spans hold.
pub struct OTelTraceExporter<T> {
    tracer: T,
    /// Safety class and sensitivity per capability id; `None` until a registry or capability is given.
    capabilities: Option<HashMap<String, (SafetyClass, SensitivityTag)>>,
    redactor: Redactor,
    /// How principal and session ids are recorded.
    caller_ids: CallerIdRecording,
    /// Span names of the GenAI conventions (`execute_tool {tool}`).
    genai_conventions: bool,
}

impl<T> fmt::Debug for OTelTraceExporter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OTelTraceExporter")
            .field(
                "capabilities",
                &self.capabilities.as_ref().map(HashMap::len),
            )
            .field("caller_ids", &self.caller_ids)
            .finish_non_exhaustive()
    }
}

impl<T: Tracer> OTelTraceExporter<T> {
    /// An exporter whose spans go to `provider` (any OpenTelemetry tracer
    /// provider; for deterministic ids it must use `BridgeIdGenerator`
    /// (feature `otel-sdk`) or a generator that calls
    /// [`take_pending_trace_id`] / [`take_pending_span_id`]).
    pub fn new<P>(provider: &P) -> Self
    where
        P: TracerProvider<Tracer = T>,
    {
        let scope = InstrumentationScope::builder("agent_kernel")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Self {
            tracer: provider.tracer_with_scope(scope),
            capabilities: None,
            redactor: Redactor::new(),
            caller_ids: CallerIdRecording::AsGiven,
            genai_conventions: false,
        }
    }

    /// Names bridged spans `execute_tool {tool}`, as a kernel built with
    /// `KernelBuilder::genai_conventions(true)` names its live invoke spans
    /// (off by default, whatever the environment says: pass the kernel's
    /// setting).
    #[must_use]
    pub fn with_genai_conventions(mut self, on: bool) -> Self {
        self.genai_conventions = on;
        self
    }

    /// How principal and session ids are recorded on the bridged spans (as
    /// given by default); pass the kernel's setting
    /// ([`Kernel::caller_ids`](crate::Kernel::caller_ids)) so that bridged and
    /// live spans agree.
    #[must_use]
    pub fn with_caller_ids(mut self, recording: CallerIdRecording) -> Self {
        self.caller_ids = recording;
        self
    }

    /// Learns the safety class and sensitivity of every capability in
    /// `registry`, so that spans of those capabilities carry them (a record
    /// does not store them). Once the exporter knows capabilities, a record of
    /// a capability it does not know is labelled `_OTHER` (capability id, tool
    /// name, safety class, sensitivity), as live spans are; without any, the
    /// record's capability id is used as is and safety class and sensitivity
    /// are left out.
    #[must_use]
    pub fn with_registry(mut self, registry: &CapabilityRegistry) -> Self {
        for cap in registry.list_all() {
            self = self.with_capability(cap);
        }
        self
    }

    /// Learns the safety class and sensitivity of one capability.
    #[must_use]
    pub fn with_capability(mut self, capability: &Capability) -> Self {
        self.capabilities.get_or_insert_with(HashMap::new).insert(
            capability.capability_id.clone(),
            (capability.safety_class, capability.sensitivity),
        );
        self
    }

    /// Turns one record into a finished span.
    pub fn export(&self, trace: &ActionTrace) -> BridgedSpan {
        let (trace_id, span_id) = bridged_ids(trace);
        let start = trace.started_at();
        let end = trace.ended_at();
        let failure = failure(trace);

        let attributes = self.attributes(trace, failure.as_ref());
        let name = if self.genai_conventions {
            // The tool name as recorded (`_OTHER` for an unknown capability).
            let tool = attributes
                .iter()
                .find(|kv| kv.key.as_str() == contract::GEN_AI_TOOL_NAME)
                .map_or_else(|| contract::OTHER.to_owned(), |kv| kv.value.to_string());
            format!("{}{tool}", contract::SPAN_EXECUTE_TOOL_PREFIX)
        } else {
            contract::SPAN_INVOKE.to_owned()
        };
        let mut builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(attributes);
        if let Some(live) = live_span_context(trace) {
            builder = builder.with_links(vec![Link::with_context(live)]);
        }
        if let Some(f) = &failure {
            builder = builder.with_events(vec![Event::new(
                keys::EXCEPTION_EVENT,
                end,
                vec![
                    KeyValue::new(keys::EXCEPTION_TYPE, f.error_type),
                    KeyValue::new(keys::EXCEPTION_MESSAGE, f.description.clone()),
                ],
                0,
            )]);
        }

        let mut span = {
            let _offered = PendingIds::offer(trace_id, span_id);
            self.tracer.build_with_context(builder, &Context::new())
        };
        if let Some(f) = failure {
            span.set_status(Status::error(f.description));
        }
        let sc = span.span_context().clone();
        span.end_with_timestamp(end);

        BridgedSpan {
            action_id: trace.action_id.clone(),
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
            deterministic: sc.trace_id() == trace_id && sc.span_id() == span_id,
        }
    }

    /// Turns every record into a finished span, in order (`&ActionTrace`,
    /// `Arc<ActionTrace>` and `ActionTrace` items all work).
    pub fn export_all<I>(&self, traces: I) -> BridgeReport
    where
        I: IntoIterator,
        I::Item: Borrow<ActionTrace>,
    {
        let mut report = BridgeReport::default();
        for trace in traces {
            let span = self.export(trace.borrow());
            report.exported += 1;
            if !span.deterministic {
                report.nondeterministic += 1;
            }
        }
        report
    }

    /// Turns the records of an audit log that match `query` into finished
    /// spans, oldest first: the bridge reading from the durable store (a
    /// SQLite log written by this process or an earlier one), not only from
    /// memory.
    ///
    /// Errors: the store's, when it cannot be read.
    pub fn export_from(
        &self,
        log: &dyn crate::store::AuditLog,
        query: &crate::store::AuditQuery,
    ) -> crate::Result<BridgeReport> {
        Ok(self.export_all(log.query(query)?))
    }

    fn attributes(&self, trace: &ActionTrace, failure: Option<&Failure>) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(20);
        if let Some(principal) = self.caller_ids.render(&trace.principal_id) {
            attrs.push(KeyValue::new(
                contract::PRINCIPAL_ID,
                principal.into_owned(),
            ));
        }
        let capability: Value = match &self.capabilities {
            None => trace.capability_id.clone().into(),
            Some(known) => match known.get(&trace.capability_id) {
                Some((safety, sensitivity)) => {
                    attrs.push(KeyValue::new(contract::SAFETY_CLASS, safety.as_str()));
                    attrs.push(KeyValue::new(contract::SENSITIVITY, sensitivity.as_str()));
                    trace.capability_id.clone().into()
                }
                None => {
                    attrs.push(KeyValue::new(contract::SAFETY_CLASS, contract::OTHER));
                    attrs.push(KeyValue::new(contract::SENSITIVITY, contract::OTHER));
                    contract::OTHER.into()
                }
            },
        };
        attrs.push(KeyValue::new(contract::CAPABILITY_ID, capability.clone()));
        attrs.push(KeyValue::new(
            contract::RESPONSE_MODE,
            trace.requested_mode.as_str(),
        ));
        attrs.push(KeyValue::new(
            contract::EFFECTIVE_RESPONSE_MODE,
            trace.response_mode.as_str(),
        ));
        // A record read back from a file holds whatever the file held: ids the
        // kernel mints are recorded only in the kernel's own shape.
        let action_id = ids::for_telemetry(&trace.action_id).to_owned();
        attrs.push(KeyValue::new(contract::ACTION_ID, action_id.clone()));
        if let Some(session) = trace
            .session_id
            .as_deref()
            .and_then(|s| self.caller_ids.render(s))
        {
            let session = session.into_owned();
            attrs.push(KeyValue::new(contract::SESSION_ID, session.clone()));
            attrs.push(KeyValue::new(
                contract::GEN_AI_CONVERSATION_ID,
                session.clone(),
            ));
            attrs.push(KeyValue::new(contract::OPENINFERENCE_SESSION_ID, session));
        }
        if !trace.driver_id.is_empty() {
            attrs.push(KeyValue::new(contract::DRIVER_ID, trace.driver_id.clone()));
        }
        if let Some(handle) = &trace.handle_id {
            attrs.push(KeyValue::new(
                contract::HANDLE_ID,
                ids::for_telemetry(handle).to_owned(),
            ));
        }
        attrs.push(KeyValue::new(
            contract::GEN_AI_OPERATION_NAME,
            contract::GEN_AI_OPERATION_EXECUTE_TOOL,
        ));
        attrs.push(KeyValue::new(
            contract::GEN_AI_TOOL_NAME,
            capability.clone(),
        ));
        // OpenInference: a replayed tool call renders as a tool, like a live one.
        attrs.push(KeyValue::new(contract::OPENINFERENCE_SPAN_KIND, "TOOL"));
        attrs.push(KeyValue::new(contract::TOOL_NAME, capability));
        attrs.push(KeyValue::new(contract::GEN_AI_TOOL_CALL_ID, action_id));
        attrs.push(KeyValue::new(keys::BRIDGED, true));
        attrs.push(KeyValue::new(keys::OUTCOME, trace.outcome.as_str()));
        attrs.push(KeyValue::new(
            keys::ARG_KEYS,
            Value::Array(Array::String(self.arg_keys(trace))),
        ));
        if trace.outcome == TraceOutcome::Denied {
            if let Some(category) = trace.denial_category {
                attrs.push(KeyValue::new(contract::REASON_CATEGORY, category.as_str()));
            }
        }
        if trace.outcome == TraceOutcome::Cancelled {
            attrs.push(KeyValue::new(keys::CANCELLED, true));
        }
        if let Some(f) = failure {
            attrs.push(KeyValue::new(contract::ERROR_TYPE, f.error_type));
        }
        attrs
    }

    /// The argument keys that have a parameter name's shape (ASCII letters,
    /// digits, `_`, `-`, `.`; at most [`MAX_ARG_KEY_CHARS`]) and hold nothing
    /// the redactor removes; every other key as `_INVALID`. Sorted,
    /// deduplicated, at most [`MAX_ARG_KEYS`].
    fn arg_keys(&self, trace: &ActionTrace) -> Vec<StringValue> {
        let mut keys: Vec<String> = trace
            .args
            .keys()
            .map(|k| {
                // A key is the caller's text: recorded only with a parameter
                // name's shape and nothing the redactor would remove.
                let named = !k.is_empty()
                    && k.len() <= MAX_ARG_KEY_CHARS
                    && k.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
                    && matches!(self.redactor.redact_str(k), Cow::Borrowed(_));
                if named {
                    k.clone()
                } else {
                    ids::INVALID_ID.to_owned()
                }
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.truncate(MAX_ARG_KEYS);
        keys.into_iter().map(StringValue::from).collect()
    }
}

/// How a failed record shows on its span: no free text, only categories.
struct Failure {
    error_type: &'static str,
    description: Cow<'static, str>,
}

fn failure(trace: &ActionTrace) -> Option<Failure> {
    match trace.outcome {
        TraceOutcome::Success => None,
        TraceOutcome::Denied => {
            let error_type = match trace.denial_category {
                Some(DenialCategory::BudgetExhausted) => "budget_exhausted",
                Some(DenialCategory::HandlePrincipalMismatch) => "handle_access_denied",
                _ => "policy_denied",
            };
            let description = match trace.denial_category {
                Some(c) => Cow::Owned(format!("policy denied ({})", c.as_str())),
                None => Cow::Borrowed("policy denied"),
            };
            Some(Failure {
                error_type,
                description,
            })
        }
        TraceOutcome::DriverError => Some(Failure {
            error_type: "driver_error",
            description: Cow::Borrowed("all drivers failed"),
        }),
        TraceOutcome::Cancelled => Some(Failure {
            error_type: "cancelled",
            description: Cow::Borrowed("cancelled: the future was dropped before completion"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_valid() {
        assert_eq!(bridged_span_id("a"), bridged_span_id("a"));
        assert_ne!(bridged_span_id("a"), bridged_span_id("b"));
        assert_ne!(derived_trace_id("a"), TraceId::INVALID);
        let hex = hex::encode(&digest(&[b"a"])[..8]);
        assert_eq!(bridged_span_id("a").to_string(), hex);
        let hex = hex::encode(&digest(&[b"trace:a"])[..16]);
        assert_eq!(derived_trace_id("a").to_string(), hex);
    }

    #[test]
    fn pending_ids_are_taken_once_and_withdrawn() {
        let t = derived_trace_id("x");
        let s = bridged_span_id("x");
        {
            let _g = PendingIds::offer(t, s);
            assert_eq!(take_pending_span_id(), Some(s));
            assert_eq!(take_pending_span_id(), None);
        }
        assert_eq!(take_pending_trace_id(), None);
    }
}
