//! Live correlation both ways: an instrumented invoke leaves an ActionTrace
//! carrying its invoke span's ids, the trace store finds it by trace id, and
//! invokes under a caller's span group with the caller's other actions. The
//! bridge keeps a live record's trace id and links to the live span.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agent_kernel::bridge::{OTelTraceExporter, bridged_span_id};
use agent_kernel::otel::{Instrumentation, instrument_kernel_with, keys};
use agent_kernel::trace::{is_w3c_span_id, is_w3c_trace_id};
use agent_kernel::*;
use agent_kernel_otel::Telemetry;
use agent_kernel_otel::opentelemetry::context::FutureExt as _;
use agent_kernel_otel::opentelemetry::metrics::noop::NoopMeterProvider;
use agent_kernel_otel::opentelemetry::trace::{
    SpanId, TraceContextExt, TraceId, Tracer, TracerProvider,
};
use agent_kernel_otel::opentelemetry::{Context, Value};
use common::*;
use opentelemetry_sdk::trace::{
    IdGenerator, InMemorySpanExporter, RandomIdGenerator, SdkTracerProvider, SpanData,
};

/// Takes the bridge's ids while it builds a span (see `agent_kernel::bridge`).
#[derive(Debug, Default)]
struct HookIds(RandomIdGenerator);

impl IdGenerator for HookIds {
    fn new_trace_id(&self) -> TraceId {
        agent_kernel::bridge::take_pending_trace_id().unwrap_or_else(|| self.0.new_trace_id())
    }
    fn new_span_id(&self) -> SpanId {
        agent_kernel::bridge::take_pending_span_id().unwrap_or_else(|| self.0.new_span_id())
    }
}

struct Live {
    fx: Fixture,
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
    _hook: Instrumentation,
}

fn live() -> Live {
    let fx = fixture();
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(HookIds::default())
        .build();
    let hook = instrument_kernel_with(
        &fx.kernel,
        Telemetry::new(&provider, &NoopMeterProvider::new()),
    );
    Live {
        fx,
        provider,
        exporter,
        _hook: hook,
    }
}

fn token(k: &Kernel, capability_id: &str) -> CapabilityToken {
    k.get_token(
        &CapabilityRequest::new(capability_id, "read"),
        &reader(),
        "",
    )
    .unwrap()
}

fn invoke(k: &Kernel, capability_id: &str, cx: Option<&Context>) -> Frame {
    let t = token(k, capability_id);
    let p = reader();
    let fut = k.invoke(&t, &p, list_args(), ResponseMode::Summary);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    match cx {
        Some(cx) => rt.block_on(fut.with_context(cx.clone())),
        None => rt.block_on(fut),
    }
    .unwrap()
}

fn invoke_span<'a>(spans: &'a [SpanData], action_id: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            s.name == keys::SPAN_INVOKE
                && s.attributes.iter().any(|kv| {
                    kv.key.as_str() == keys::ACTION_ID
                        && kv.value == Value::from(action_id.to_owned())
                })
        })
        .collect();
    assert_eq!(found.len(), 1, "invoke spans of {action_id}");
    found[0]
}

fn ids(traces: &[std::sync::Arc<ActionTrace>]) -> Vec<String> {
    traces.iter().map(|t| t.action_id.clone()).collect()
}

#[test]
fn an_invoke_records_its_span_ids_and_is_found_by_them() {
    let l = live();
    let k = &l.fx.kernel;
    let frame = invoke(k, LIST, None);
    let trace = k.explain(&frame.action_id).unwrap();
    let trace_id = trace
        .trace_id
        .clone()
        .expect("a live invoke has a trace id");
    let span_id = trace.span_id.clone().expect("a live invoke has a span id");
    assert!(is_w3c_trace_id(&trace_id), "{trace_id}");
    assert!(is_w3c_span_id(&span_id), "{span_id}");
    assert!(trace.duration.is_some());
    assert_eq!(trace.outcome, TraceOutcome::Success);

    let spans = l.exporter.get_finished_spans().unwrap();
    let span = invoke_span(&spans, &frame.action_id);
    assert_eq!(span.span_context.trace_id().to_string(), trace_id);
    assert_eq!(span.span_context.span_id().to_string(), span_id);

    assert_eq!(
        ids(&k.traces().by_trace_id(&trace_id)),
        [frame.action_id.as_str()]
    );
    assert_eq!(k.traces().trace_id_of(&frame.action_id), Some(trace_id));
}

#[test]
fn invokes_under_a_callers_span_group_together() {
    let l = live();
    let k = &l.fx.kernel;
    let tracer = l.provider.tracer("agent");
    let caller = tracer.start("agent step");
    let cx = Context::current_with_span(caller);
    let caller_trace = cx.span().span_context().trace_id().to_string();

    let a = invoke(k, LIST, Some(&cx));
    let outside = invoke(k, LIST, None);
    let b = invoke(k, SUMMARY, Some(&cx));
    cx.span().end();

    let group = k.traces().by_trace_id(&caller_trace);
    assert_eq!(ids(&group), [a.action_id.clone(), b.action_id.clone()]);
    let outside_trace = k.traces().trace_id_of(&outside.action_id).unwrap();
    assert_ne!(outside_trace, caller_trace);
    assert_eq!(
        ids(&k.traces().by_trace_id(&outside_trace)),
        [outside.action_id.as_str()]
    );

    // Each grouped action's span id is its own invoke span, a child of the caller.
    let spans = l.exporter.get_finished_spans().unwrap();
    let caller_span_id = cx.span().span_context().span_id();
    for t in &group {
        let span = invoke_span(&spans, &t.action_id);
        assert_eq!(Some(span.span_context.span_id().to_string()), t.span_id);
        assert_eq!(span.parent_span_id, caller_span_id);
    }
}

#[test]
fn without_instrumentation_the_ids_are_empty() {
    let fx = fixture();
    let frame = invoke(&fx.kernel, LIST, None);
    let trace = fx.kernel.explain(&frame.action_id).unwrap();
    assert_eq!(
        (trace.trace_id.as_deref(), trace.span_id.as_deref()),
        (None, None)
    );
    assert_eq!(fx.kernel.traces().trace_id_of(&frame.action_id), None);
}

#[test]
fn a_bridged_live_record_keeps_the_trace_and_links_to_the_live_span() {
    let l = live();
    let k = &l.fx.kernel;
    let frame = invoke(k, LIST, None);
    let trace = k.explain(&frame.action_id).unwrap();

    let spans_before = l.exporter.get_finished_spans().unwrap();
    let live_span = invoke_span(&spans_before, &frame.action_id)
        .span_context
        .clone();
    l.exporter.reset();

    let out = OTelTraceExporter::new(&l.provider)
        .with_registry(k.registry())
        .export(&trace);
    assert!(out.deterministic);
    let spans = l.exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    let bridged = &spans[0];
    assert_eq!(bridged.span_context.trace_id(), live_span.trace_id());
    assert_eq!(
        bridged.span_context.span_id(),
        bridged_span_id(&frame.action_id)
    );
    assert_ne!(bridged.span_context.span_id(), live_span.span_id());
    assert_eq!(bridged.links.links.len(), 1);
    assert_eq!(
        bridged.links.links[0].span_context.span_id(),
        live_span.span_id()
    );
    assert_eq!(
        bridged.links.links[0].span_context.trace_id(),
        live_span.trace_id()
    );
}
