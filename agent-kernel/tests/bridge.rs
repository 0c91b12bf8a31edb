//! OTelTraceExporter: bridged spans read back from an `InMemorySpanExporter`
//! match their ActionTraces field by field; ids are deterministic; a live
//! record keeps its trace id and links to its live span; export → import →
//! bridge is lossless; no argument value or secret ever reaches a span.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_kernel::bridge::{
    BridgeReport, OTelTraceExporter, bridged_ids, bridged_span_id, derived_trace_id, keys,
    take_pending_span_id, take_pending_trace_id,
};
use agent_kernel::otel::keys as contract;
use agent_kernel::{
    ActionTrace, Args, Capability, CapabilityRegistry, DenialCategory, ResponseMode, SafetyClass,
    SensitivityTag, Timestamp, TraceOutcome, TraceStore,
};
use agent_kernel_otel::opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use agent_kernel_otel::opentelemetry::{Array, Value};
use opentelemetry_sdk::trace::{
    IdGenerator, InMemorySpanExporter, RandomIdGenerator, SdkTracerProvider, SpanData,
};
use proptest::prelude::*;
use serde_json::json;

const LIVE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const LIVE_SPAN: &str = "00f067aa0ba902b7";

/// An id generator built only on the bridge's public hooks (what an
/// application with its own generator writes).
#[derive(Debug, Default)]
struct HookIds(RandomIdGenerator);

impl IdGenerator for HookIds {
    fn new_trace_id(&self) -> TraceId {
        take_pending_trace_id().unwrap_or_else(|| self.0.new_trace_id())
    }
    fn new_span_id(&self) -> SpanId {
        take_pending_span_id().unwrap_or_else(|| self.0.new_span_id())
    }
}

fn provider() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(HookIds::default())
        .build();
    (provider, exporter)
}

fn registry() -> CapabilityRegistry {
    let mut r = CapabilityRegistry::new();
    r.register(
        Capability::new(
            "billing.list_invoices",
            "List",
            "List invoices",
            SafetyClass::Read,
        )
        .with_sensitivity(SensitivityTag::Pii),
    )
    .unwrap();
    r
}

/// The handle id of every record: a kernel id's shape.
const HANDLE: &str = "6f1c2b3a-0d4e-4f5a-8b6c-7d8e9fa0b1c2";

/// A kernel-shaped action id (UUID v4) derived from a readable `name`, so the
/// tests read as names and the bridge sees ids it would record.
fn act(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn base(action_id: &str) -> ActionTrace {
    let mut args = Args::new();
    args.insert("operation".into(), json!("list_invoices"));
    args.insert("email".into(), json!("alice@example.com"));
    ActionTrace {
        action_id: action_id.to_owned(),
        capability_id: "billing.list_invoices".into(),
        principal_id: "analyst-001".into(),
        token_id: "tok-1".into(),
        invoked_at: Timestamp::from_millis(1_700_000_000_123),
        args,
        requested_mode: ResponseMode::Raw,
        response_mode: ResponseMode::Summary,
        driver_id: "billing".into(),
        handle_id: Some(HANDLE.into()),
        session_id: Some("s-1".into()),
        error: None,
        denial_category: None,
        outcome: TraceOutcome::Success,
        duration: Some(Duration::from_nanos(1_234_567)),
        trace_id: None,
        span_id: None,
    }
}

/// One record of every outcome, some live, some not.
fn records() -> Vec<ActionTrace> {
    let ok = base(&act("ok"));
    let mut live = base(&act("live"));
    live.trace_id = Some(LIVE_TRACE.into());
    live.span_id = Some(LIVE_SPAN.into());
    let mut denied = base(&act("denied"));
    denied.outcome = TraceOutcome::Denied;
    denied.denial_category = Some(DenialCategory::MissingRole);
    denied.error = Some("policy denied: alice@example.com lacks role".into());
    denied.driver_id = String::new();
    denied.handle_id = None;
    denied.session_id = None;
    let mut budget = base(&act("budget"));
    budget.outcome = TraceOutcome::Denied;
    budget.denial_category = Some(DenialCategory::BudgetExhausted);
    budget.capability_id = "unknown.cap".into();
    let mut failed = base(&act("failed"));
    failed.outcome = TraceOutcome::DriverError;
    failed.error = Some("HTTP 500 from https://user:pw@api.example.com".into());
    failed.trace_id = Some(LIVE_TRACE.into());
    failed.span_id = Some("1111111111111111".into());
    let mut cancelled = base(&act("cancelled"));
    cancelled.outcome = TraceOutcome::Cancelled;
    cancelled.duration = None;
    vec![ok, live, denied, budget, failed, cancelled]
}

fn string_array(v: &[&str]) -> Value {
    Value::Array(Array::String(
        v.iter().map(|s| s.to_string().into()).collect(),
    ))
}

/// The attributes a bridged span must carry, written out independently of the bridge.
/// What the exporter knows of the record's capability.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Known {
    /// No registry given.
    Nothing,
    /// A registry given, and the capability is in it (READ, PII).
    Registered,
    /// A registry given, and the capability is not in it.
    Other,
}

fn known(t: &ActionTrace) -> Known {
    if t.capability_id == "billing.list_invoices" {
        Known::Registered
    } else {
        Known::Other
    }
}

fn expected_attributes(t: &ActionTrace, known: Known) -> BTreeMap<String, Value> {
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put(contract::PRINCIPAL_ID, t.principal_id.clone().into());
    let capability = match known {
        Known::Nothing => t.capability_id.clone(),
        Known::Registered => {
            put(contract::SAFETY_CLASS, "READ".into());
            put(contract::SENSITIVITY, "PII".into());
            t.capability_id.clone()
        }
        Known::Other => {
            put(contract::SAFETY_CLASS, "_OTHER".into());
            put(contract::SENSITIVITY, "_OTHER".into());
            "_OTHER".to_owned()
        }
    };
    put(contract::CAPABILITY_ID, capability.clone().into());
    put(contract::RESPONSE_MODE, t.requested_mode.as_str().into());
    put(
        contract::EFFECTIVE_RESPONSE_MODE,
        t.response_mode.as_str().into(),
    );
    put(contract::ACTION_ID, t.action_id.clone().into());
    if let Some(s) = &t.session_id {
        put(contract::SESSION_ID, s.clone().into());
        put(contract::GEN_AI_CONVERSATION_ID, s.clone().into());
        put(contract::OPENINFERENCE_SESSION_ID, s.clone().into());
    }
    if !t.driver_id.is_empty() {
        put(contract::DRIVER_ID, t.driver_id.clone().into());
    }
    if let Some(h) = &t.handle_id {
        put(contract::HANDLE_ID, h.clone().into());
    }
    put(contract::GEN_AI_OPERATION_NAME, "execute_tool".into());
    put(contract::GEN_AI_TOOL_NAME, capability.clone().into());
    put(contract::OPENINFERENCE_SPAN_KIND, "TOOL".into());
    put(contract::TOOL_NAME, capability.into());
    put(contract::GEN_AI_TOOL_CALL_ID, t.action_id.clone().into());
    put(keys::BRIDGED, true.into());
    put(keys::OUTCOME, t.outcome.as_str().into());
    let mut arg_keys: Vec<&str> = t.args.keys().map(String::as_str).collect();
    arg_keys.sort_unstable();
    put(keys::ARG_KEYS, string_array(&arg_keys));
    match (t.outcome, t.denial_category) {
        (TraceOutcome::Denied, Some(DenialCategory::BudgetExhausted)) => {
            put(contract::REASON_CATEGORY, "budget_exhausted".into());
            put(contract::ERROR_TYPE, "budget_exhausted".into());
        }
        (TraceOutcome::Denied, Some(c)) => {
            put(contract::REASON_CATEGORY, c.as_str().into());
            put(contract::ERROR_TYPE, "policy_denied".into());
        }
        (TraceOutcome::DriverError, _) => put(contract::ERROR_TYPE, "driver_error".into()),
        (TraceOutcome::Cancelled, _) => {
            put(keys::CANCELLED, true.into());
            put(contract::ERROR_TYPE, "cancelled".into());
        }
        _ => {}
    }
    m
}

fn attributes(span: &SpanData) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for kv in &span.attributes {
        assert!(
            m.insert(kv.key.to_string(), kv.value.clone()).is_none(),
            "duplicate key {}",
            kv.key
        );
    }
    m
}

fn assert_matches(span: &SpanData, t: &ActionTrace, known: Known) {
    let start = UNIX_EPOCH + Duration::from_millis(t.invoked_at.as_millis());
    let (want_trace, want_span) = bridged_ids(t);
    assert_eq!(span.name, contract::SPAN_INVOKE);
    assert_eq!(span.span_kind, SpanKind::Internal);
    assert_eq!(span.span_context.span_id(), want_span);
    assert_eq!(span.span_context.trace_id(), want_trace);
    assert_eq!(span.parent_span_id, SpanId::INVALID);
    assert_eq!(span.start_time, start);
    assert_eq!(span.end_time, start + t.duration.unwrap_or_default());
    assert_eq!(span.instrumentation_scope.name(), "agent_kernel");
    assert_eq!(
        span.instrumentation_scope.version(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        attributes(span),
        expected_attributes(t, known),
        "{}",
        t.action_id
    );
    assert_eq!(span.dropped_attributes_count, 0);

    // Trace id and link.
    match (&t.trace_id, &t.span_id) {
        (Some(tid), Some(sid)) => {
            assert_eq!(span.span_context.trace_id().to_string(), *tid);
            assert_eq!(span.links.links.len(), 1);
            let link = &span.links.links[0].span_context;
            assert_eq!(link.trace_id().to_string(), *tid);
            assert_eq!(link.span_id().to_string(), *sid);
            assert!(link.is_remote());
        }
        _ => {
            assert_eq!(span.span_context.trace_id(), derived_trace_id(&t.action_id));
            assert!(span.links.links.is_empty());
        }
    }

    // Status and the exception event: categories only, never the error text.
    let description = match (t.outcome, t.denial_category) {
        (TraceOutcome::Success, _) => None,
        (TraceOutcome::Denied, Some(c)) => Some(format!("policy denied ({c})")),
        (TraceOutcome::Denied, None) => Some("policy denied".to_owned()),
        (TraceOutcome::DriverError, _) => Some("all drivers failed".to_owned()),
        (TraceOutcome::Cancelled, _) => {
            Some("cancelled: the future was dropped before completion".to_owned())
        }
    };
    match description {
        None => {
            assert_eq!(span.status, Status::Unset);
            assert!(span.events.events.is_empty());
        }
        Some(d) => {
            assert_eq!(span.status, Status::error(d.clone()));
            assert_eq!(span.events.events.len(), 1);
            let e = &span.events.events[0];
            assert_eq!(e.name, keys::EXCEPTION_EVENT);
            assert_eq!(e.timestamp, span.end_time);
            let ev: BTreeMap<String, Value> = e
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.clone()))
                .collect();
            assert_eq!(ev[keys::EXCEPTION_MESSAGE], Value::from(d));
            assert_eq!(ev[keys::EXCEPTION_TYPE], attributes(span)["error.type"]);
        }
    }
}

fn by_span_id(spans: &[SpanData], id: SpanId) -> &SpanData {
    let found: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.span_id() == id)
        .collect();
    assert_eq!(found.len(), 1, "span {id} found {} times", found.len());
    found[0]
}

#[test]
fn bridged_spans_match_their_records_field_by_field() {
    let (provider, exporter) = provider();
    let bridge = OTelTraceExporter::new(&provider).with_registry(&registry());
    let records = records();
    let report = bridge.export_all(&records);
    assert_eq!(
        report,
        BridgeReport {
            exported: records.len(),
            nondeterministic: 0
        }
    );
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), records.len());
    for t in &records {
        let span = by_span_id(&spans, bridged_span_id(&t.action_id));
        assert_matches(span, t, known(t));
    }
}

#[test]
fn without_a_registry_safety_class_is_left_out() {
    let (provider, exporter) = provider();
    let bridge = OTelTraceExporter::new(&provider);
    let t = base(&act("unknown"));
    let out = bridge.export(&t);
    assert!(out.deterministic);
    let spans = exporter.get_finished_spans().unwrap();
    assert_matches(&spans[0], &t, Known::Nothing);
}

#[test]
fn forged_ids_in_a_record_are_bridged_as_invalid() {
    let (provider, exporter) = provider();
    let bridge = OTelTraceExporter::new(&provider);
    let mut t = base("act-bob@example.com");
    t.handle_id = Some("h-bob@example.com".into());
    bridge.export(&t);
    let spans = exporter.get_finished_spans().unwrap();
    let attrs = attributes(&spans[0]);
    for key in [
        contract::ACTION_ID,
        contract::HANDLE_ID,
        contract::GEN_AI_TOOL_CALL_ID,
    ] {
        assert_eq!(
            attrs.get(key),
            Some(&Value::from(agent_kernel::INVALID_ID)),
            "{key}"
        );
    }
    assert!(!format!("{spans:?}").contains("bob@example.com"));
}

#[test]
fn caller_ids_on_bridged_spans_follow_the_setting() {
    let key = agent_kernel::PseudonymKey::new(b"bridge-test-pseudonym-key").unwrap();
    let t = base(&act("caller-ids"));
    for (recording, principal, session) in [
        (
            agent_kernel::CallerIdRecording::AsGiven,
            Some(Value::from("analyst-001")),
            Some(Value::from("s-1")),
        ),
        (
            agent_kernel::CallerIdRecording::Pseudonymized(key.clone()),
            Some(Value::from(key.pseudonym("analyst-001"))),
            Some(Value::from(key.pseudonym("s-1"))),
        ),
        (agent_kernel::CallerIdRecording::Omitted, None, None),
    ] {
        let (provider, exporter) = provider();
        OTelTraceExporter::new(&provider)
            .with_caller_ids(recording)
            .export(&t);
        let spans = exporter.get_finished_spans().unwrap();
        let attrs = attributes(&spans[0]);
        assert_eq!(attrs.get(contract::PRINCIPAL_ID), principal.as_ref());
        assert_eq!(attrs.get(contract::SESSION_ID), session.as_ref());
    }
}

#[test]
fn exporting_twice_gives_the_same_ids() {
    let records = records();
    let (p1, e1) = provider();
    let (p2, e2) = provider();
    let first = OTelTraceExporter::new(&p1).export_all(&records);
    OTelTraceExporter::new(&p1).export_all(&records);
    let again = OTelTraceExporter::new(&p2).export_all(records.iter().cloned());
    assert_eq!(first, again);
    let ids = |spans: Vec<SpanData>| -> Vec<(TraceId, SpanId)> {
        spans
            .iter()
            .map(|s| (s.span_context.trace_id(), s.span_context.span_id()))
            .collect()
    };
    let twice = ids(e1.get_finished_spans().unwrap());
    let elsewhere = ids(e2.get_finished_spans().unwrap());
    assert_eq!(twice.len(), 2 * records.len());
    assert_eq!(twice[..records.len()], twice[records.len()..]);
    assert_eq!(twice[..records.len()], elsewhere[..]);
    // And the per-record report names them.
    let one = OTelTraceExporter::new(&p2).export(&records[1]);
    assert_eq!(one.trace_id, LIVE_TRACE);
    assert_eq!(one.span_id, bridged_span_id(&act("live")).to_string());
    assert!(one.deterministic);
}

#[test]
fn live_spans_on_the_thread_keep_random_ids() {
    use agent_kernel_otel::opentelemetry::trace::{Tracer, TracerProvider};
    let (provider, exporter) = provider();
    let bridge = OTelTraceExporter::new(&provider);
    bridge.export(&base("act-1"));
    let tracer = provider.tracer("test");
    tracer.in_span("live", |_| {});
    tracer.in_span("live", |_| {});
    let spans = exporter.get_finished_spans().unwrap();
    let live: Vec<&SpanData> = spans.iter().filter(|s| s.name == "live").collect();
    assert_eq!(live.len(), 2);
    assert_ne!(
        live[0].span_context.span_id(),
        live[1].span_context.span_id()
    );
    assert_ne!(live[0].span_context.span_id(), bridged_span_id("act-1"));
    assert_ne!(live[0].span_context.trace_id(), derived_trace_id("act-1"));
}

#[test]
fn a_provider_without_the_hook_is_reported() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let records = records();
    let report = OTelTraceExporter::new(&provider).export_all(&records);
    assert_eq!(report.exported, records.len());
    assert_eq!(report.nondeterministic, records.len());
    assert_eq!(exporter.get_finished_spans().unwrap().len(), records.len());
    // The hooks hold nothing once the bridge is done.
    assert_eq!(take_pending_trace_id(), None);
    assert_eq!(take_pending_span_id(), None);
}

#[test]
fn the_bridge_does_not_parent_to_the_current_span() {
    use agent_kernel_otel::opentelemetry::trace::{Tracer, TracerProvider};
    let (provider, exporter) = provider();
    let bridge = OTelTraceExporter::new(&provider);
    provider.tracer("test").in_span("caller", |_| {
        bridge.export(&base(&act("in-span")));
    });
    let spans = exporter.get_finished_spans().unwrap();
    let bridged = by_span_id(&spans, bridged_span_id(&act("in-span")));
    assert_eq!(bridged.parent_span_id, SpanId::INVALID);
    assert_eq!(
        bridged.span_context.trace_id(),
        derived_trace_id(&act("in-span"))
    );
}

#[test]
fn export_import_bridge_round_trip_is_lossless() {
    let store = TraceStore::new();
    for t in records() {
        store.record(t);
    }
    let mut file = Vec::new();
    store.export_jsonl(&mut file).unwrap();
    let back = TraceStore::new();
    let report = back.import_jsonl(&file[..]);
    assert!(report.is_clean(), "{:?}", report.errors);
    let originals: Vec<ActionTrace> = store.list_all().iter().map(|t| (**t).clone()).collect();
    let imported: Vec<ActionTrace> = back.list_all().iter().map(|t| (**t).clone()).collect();
    assert_eq!(originals, imported);

    let (p1, e1) = provider();
    let (p2, e2) = provider();
    OTelTraceExporter::new(&p1)
        .with_registry(&registry())
        .export_all(store.list_all());
    OTelTraceExporter::new(&p2)
        .with_registry(&registry())
        .export_all(back.list_all());
    let view = |s: &SpanData| {
        format!(
            "{:?}",
            (
                &s.name,
                &s.span_context,
                s.parent_span_id,
                &s.span_kind,
                s.start_time,
                s.end_time,
                &s.attributes,
                &s.events.events,
                &s.links.links,
                &s.status,
            )
        )
    };
    let a: Vec<String> = e1.get_finished_spans().unwrap().iter().map(view).collect();
    let b: Vec<String> = e2.get_finished_spans().unwrap().iter().map(view).collect();
    assert_eq!(a, b);
    for (t, span) in imported.iter().zip(e2.get_finished_spans().unwrap()) {
        assert_matches(&span, t, known(t));
    }
}

/// The bridge reads a durable log as it reads memory: the same spans.
#[cfg(feature = "sqlite")]
#[test]
fn bridging_from_the_sqlite_log_gives_the_spans_of_memory() {
    use agent_kernel::store::sqlite::{SqliteOptions, SqliteStore};
    use agent_kernel::store::{AuditKey, AuditLog, AuditQuery};

    let dir = std::env::temp_dir().join(format!("ak-bridge-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = AuditKey::new(b"bridge test audit key, 32 bytes!").unwrap();
    let sqlite = SqliteStore::open(dir.join("audit.db"), SqliteOptions::new(key)).unwrap();
    let durable = sqlite.audit_log();
    let memory = TraceStore::new();
    for t in records() {
        let slot = durable.reserve().unwrap();
        durable.append(slot, t.clone()).wait_blocking().unwrap();
        memory.record(t);
    }
    let (p1, e1) = provider();
    let (p2, e2) = provider();
    OTelTraceExporter::new(&p1)
        .with_registry(&registry())
        .export_all(memory.list_all());
    let report = OTelTraceExporter::new(&p2)
        .with_registry(&registry())
        .export_from(durable.as_ref(), &AuditQuery::all())
        .unwrap();
    assert_eq!(report.exported, records().len());
    let view = |s: &SpanData| format!("{:?}", (&s.span_context, &s.attributes, &s.status));
    let a: Vec<String> = e1.get_finished_spans().unwrap().iter().map(view).collect();
    let b: Vec<String> = e2.get_finished_spans().unwrap().iter().map(view).collect();
    assert_eq!(a, b);
    drop(sqlite);
    drop(durable);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "otel-sdk")]
#[test]
fn the_shipped_id_generator_takes_the_bridge_ids() {
    use agent_kernel::bridge::BridgeIdGenerator;
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(BridgeIdGenerator::new())
        .build();
    let records = records();
    let report = OTelTraceExporter::new(&provider).export_all(&records);
    assert_eq!(report.nondeterministic, 0);
    let spans = exporter.get_finished_spans().unwrap();
    for t in &records {
        assert_matches(
            by_span_id(&spans, bridged_span_id(&t.action_id)),
            t,
            Known::Nothing,
        );
    }
    let wrapped = BridgeIdGenerator::wrapping(RandomIdGenerator::default());
    assert_ne!(wrapped.new_span_id(), SpanId::INVALID);
}

// ── No argument value or secret reaches a span ──────────────────────────────

fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{3,8}\\.[a-z]{3,8}@[a-z]{4,8}\\.(com|org|io)",
        "sk-[A-Za-z0-9]{24,32}",
        "ghp_[A-Za-z0-9]{30,36}",
        "AKIA[A-Z0-9]{16}",
        "Bearer [A-Za-z0-9]{20,30}",
        "eyJ[A-Za-z0-9]{10,20}\\.eyJ[A-Za-z0-9]{10,20}\\.[A-Za-z0-9_]{10,20}",
        "4[0-9]{3} [0-9]{4} [0-9]{4} [0-9]{4}",
        "[0-9]{3}-[0-9]{2}-[0-9]{4}",
        "postgres://[a-z]{4,8}:[A-Za-z0-9]{10,16}@db\\.[a-z]{4,8}\\.internal/prod",
        "[A-Z][A-Za-z0-9]{13,20}[0-9]",
    ]
}

fn arg_value(s: String) -> impl Strategy<Value = serde_json::Value> {
    let a = s.clone();
    let b = s.clone();
    prop_oneof![
        Just(json!(s)),
        Just(json!({ "nested": a })),
        Just(json!([1, { "deep": [b] }])),
    ]
}

prop_compose! {
    fn leaky_record()(
        secrets in proptest::collection::vec(secret(), 1..5),
        key_names in proptest::collection::vec("[a-z_]{1,10}", 4),
        error_secret in secret(),
        key_secret in "[a-z]{3,8}@[a-z]{4,8}\\.com",
        outcome in 0usize..4,
        live in any::<bool>(),
    )(
        values in secrets.iter().cloned().map(arg_value).collect::<Vec<_>>(),
        secrets in Just(secrets),
        key_names in Just(key_names),
        error_secret in Just(error_secret),
        key_secret in Just(key_secret),
        outcome in Just(outcome),
        live in Just(live),
    ) -> (ActionTrace, Vec<String>) {
        let mut t = base(&act("prop"));
        t.args = Args::new();
        for (i, v) in values.into_iter().enumerate() {
            t.args.insert(format!("{}{i}", key_names[i % key_names.len()]), v);
        }
        t.args.insert(key_secret.clone(), json!("x"));
        t.outcome = [TraceOutcome::Success, TraceOutcome::Denied, TraceOutcome::DriverError, TraceOutcome::Cancelled][outcome];
        if t.outcome == TraceOutcome::Denied {
            t.denial_category = Some(DenialCategory::RateLimited);
        }
        t.error = Some(format!("failed with {error_secret} for {}", secrets[0]));
        if live {
            t.trace_id = Some(LIVE_TRACE.into());
            t.span_id = Some(LIVE_SPAN.into());
        }
        let mut needles = secrets;
        needles.push(error_secret);
        needles.push(key_secret);
        (t, needles)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn no_argument_value_or_secret_reaches_a_span((t, needles) in leaky_record()) {
        let (provider, exporter) = provider();
        OTelTraceExporter::new(&provider).with_registry(&registry()).export(&t);
        let spans = exporter.get_finished_spans().unwrap();
        prop_assert_eq!(spans.len(), 1);
        // Everything the span holds, as text: name, ids, attributes, events, links, status, scope.
        let dump = format!("{:?}", spans[0]);
        prop_assert!(dump.contains("analyst-001") && dump.contains(&act("prop")));
        for needle in &needles {
            prop_assert!(!dump.contains(needle.as_str()), "{needle:?} leaked into {dump}");
        }
        // The keys are there (the secret-shaped one as `_INVALID`).
        let attrs = attributes(&spans[0]);
        let Value::Array(Array::String(listed)) = &attrs[keys::ARG_KEYS] else {
            panic!("arg_keys is not a string array");
        };
        prop_assert_eq!(listed.len(), t.args.len());
        prop_assert!(listed.iter().any(|k| k.as_str() == agent_kernel::INVALID_ID));
    }
}

#[test]
fn arg_keys_are_bounded() {
    let (provider, exporter) = provider();
    let mut t = base(&act("many"));
    t.args = (0..500)
        .map(|i| (format!("{i:03}{}", "k".repeat(100)), json!(i)))
        .collect();
    // Too long for a parameter name: one `_INVALID` for all of them.
    t.args
        .insert(format!("x{}", "k".repeat(200)), json!("too long"));
    OTelTraceExporter::new(&provider).export(&t);
    let spans = exporter.get_finished_spans().unwrap();
    let Value::Array(Array::String(listed)) = &attributes(&spans[0])[keys::ARG_KEYS] else {
        panic!("arg_keys is not a string array");
    };
    assert_eq!(listed.len(), agent_kernel::bridge::MAX_ARG_KEYS);
    assert!(
        listed
            .iter()
            .all(|k| k.as_str().chars().count() <= agent_kernel::bridge::MAX_ARG_KEY_CHARS)
    );
    assert!(!listed.iter().any(|k| k.as_str().starts_with('x')));
}

#[test]
fn only_parameter_shaped_argument_keys_are_listed() {
    let (provider, exporter) = provider();
    let mut t = base(&act("keys"));
    t.args = [
        ("operation", "a parameter name"),
        ("customer.id", "dotted"),
        ("dry-run", "dashed"),
        ("bob@example.com", "an e-mail address as a key"),
        ("4111 1111 1111 1111", "a card number as a key"),
        (
            "Mrs Dalloway said she would buy the flowers",
            "free text as a key",
        ),
        ("", "empty"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), json!(v)))
    .collect();
    OTelTraceExporter::new(&provider).export(&t);
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(
        attributes(&spans[0])[keys::ARG_KEYS],
        string_array(&[
            agent_kernel::INVALID_ID,
            "customer.id",
            "dry-run",
            "operation"
        ])
    );
}

#[test]
fn times_survive_far_dates() {
    let (provider, exporter) = provider();
    let mut t = base(&act("far"));
    t.invoked_at = Timestamp::from_millis(4_102_444_800_000); // 2100-01-01
    t.duration = Some(Duration::from_secs(3600));
    OTelTraceExporter::new(&provider).export(&t);
    let span = &exporter.get_finished_spans().unwrap()[0];
    assert_eq!(
        span.end_time.duration_since(span.start_time).unwrap(),
        Duration::from_secs(3600)
    );
    assert!(span.start_time > SystemTime::now());
}

#[test]
fn with_genai_conventions_bridged_spans_are_named_like_live_ones() {
    let (provider, exporter) = provider();
    let bridge = OTelTraceExporter::new(&provider)
        .with_registry(&registry())
        .with_genai_conventions(true);
    let ok = base(&act("ok"));
    let mut stray = base(&act("stray"));
    stray.capability_id = "unknown.cap".into();
    bridge.export(&ok);
    bridge.export(&stray);
    let spans = exporter.get_finished_spans().unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            format!("execute_tool {}", ok.capability_id).as_str(),
            "execute_tool _OTHER"
        ]
    );
    // Off by default: the kernel's own name.
    let (plain_provider, plain_exporter) = self::provider();
    OTelTraceExporter::new(&plain_provider).export(&ok);
    assert_eq!(
        plain_exporter.get_finished_spans().unwrap()[0].name,
        contract::SPAN_INVOKE
    );
}
