//! The kernel inside an application that traces with `tracing` +
//! `tracing-opentelemetry` (0.34, the default layer), both exporting to one
//! OpenTelemetry tracer provider (in memory here):
//!
//! - with context activation (the layer's default since 0.32), the kernel's
//!   invoke tree nests under the application's `tracing` span, and a driver's
//!   own `tracing` span nests under `agent_kernel.driver.execute`; every span
//!   is exported once, by whoever made it;
//! - with `.with_context_activation(false)`, the kernel's tree is a trace of
//!   its own, and one line restores the nesting: the `tracing` span's
//!   OpenTelemetry context attached around the invoke
//!   (`invoke_with(..).with_context(tracing::Span::current().context())`);
//!   a driver's `tracing` span then needs `set_parent(Context::current())`.
//!
//! `docs/integrations.md` ("`tracing` and `tracing-opentelemetry`") shows the
//! same set-ups. The subscriber is installed per thread
//! (`tracing::subscriber::with_default`), so the tests run in parallel.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use agent_kernel::otel::keys as k;
use agent_kernel::*;
use agent_kernel_otel::opentelemetry;
use agent_kernel_tests::{Capture, SpanRecord};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::TracerProvider as _;
use serde_json::json;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const LOOKUP: &str = "billing.lookup";
/// The application's span around its call to the kernel.
const APP_SPAN: &str = "app.handle_request";
/// The driver's own `tracing` span.
const DRIVER_SPAN: &str = "billing_db.query";
/// The instrumentation scope of the `tracing` layer's spans.
const APP_SCOPE: &str = "billing-app";

/// How the driver parents its own `tracing` span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DriverParent {
    /// `tracing`'s contextual parent, as most code writes it.
    Contextual,
    /// `set_parent(opentelemetry::Context::current())`: the kernel's
    /// `driver.execute` span, which the kernel attaches while the driver runs.
    CurrentOtelContext,
}

/// A driver that does its work inside a `tracing` span of its own.
#[derive(Debug)]
struct TracedDriver {
    parent: DriverParent,
}

#[async_trait]
impl Driver for TracedDriver {
    fn driver_id(&self) -> &str {
        "traced"
    }

    async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        let span = tracing::info_span!(DRIVER_SPAN, db.system = "sqlite");
        if self.parent == DriverParent::CurrentOtelContext {
            span.set_parent(opentelemetry::Context::current())
                .map_err(|e| DriverError::new("traced", e.to_string()))?;
        }
        async {
            tokio::task::yield_now().await;
            tracing::info!(rows = 1, "queried");
            Ok(RawResult::new(
                ctx.capability_id,
                json!([{"id": "INV-1", "amount": 10.5}]),
            ))
        }
        .instrument(span)
        .await
    }
}

/// A kernel bound to `capture`'s providers, with one capability served by
/// [`TracedDriver`].
fn kernel(capture: &Capture, parent: DriverParent) -> Kernel {
    let mut registry = CapabilityRegistry::new();
    registry
        .register(Capability::new(
            LOOKUP,
            "Lookup",
            "Look up invoices",
            SafetyClass::Read,
        ))
        .unwrap();
    Kernel::builder(registry)
        .secret("tracing-interop-secret-0123456789abcdef")
        .telemetry(capture.telemetry())
        .router(StaticRouter::new().with_route(LOOKUP, ["traced"]))
        .driver(TracedDriver { parent })
        .build()
        .unwrap()
}

fn principal() -> Principal {
    Principal::new("analyst-001").with_roles(["reader"])
}

/// The application's subscriber: the default `tracing-opentelemetry` layer
/// on the same tracer provider as the kernel (`activation` = the layer's
/// context activation, on by default).
fn subscriber(capture: &Capture, activation: bool) -> impl tracing::Subscriber + Send + Sync {
    let tracer = capture.tracer_provider().tracer(APP_SCOPE);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    let layer = if activation {
        layer
    } else {
        layer.with_context_activation(false)
    };
    tracing_subscriber::registry().with(layer)
}

/// How the application calls the kernel inside its `tracing` span.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `kernel.invoke_with(req).await`, nothing else.
    Plain,
    /// The one line for `with_context_activation(false)`: the `tracing`
    /// span's OpenTelemetry context attached around the invoke.
    WithTracingContext,
}

/// The trace and span ids the kernel's audit record holds for an action.
type AuditIds = (Option<String>, Option<String>);

/// Runs one invoke inside the application's `tracing` span, under the
/// application's subscriber; returns the audit record's ids and the
/// exported spans.
fn run(activation: bool, driver: DriverParent, call: Call) -> (AuditIds, Vec<SpanRecord>) {
    let capture = Capture::new();
    let kernel = kernel(&capture, driver);
    let principal = principal();
    let token = kernel
        .get_token(
            &CapabilityRequest::new(LOOKUP, "interop test"),
            &principal,
            "",
        )
        .unwrap();
    // The grant's own spans (agent_kernel.grant and its policy.evaluate) are
    // not part of the call under test.
    let granted: BTreeSet<String> = capture.spans().into_iter().map(|s| s.span_id).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let frame = tracing::subscriber::with_default(subscriber(&capture, activation), || {
        let request = InvokeRequest::new(&token, &principal);
        let handle = async {
            let frame = match call {
                Call::Plain => kernel.invoke_with(request).await,
                Call::WithTracingContext => {
                    kernel
                        .invoke_with(request)
                        .with_context(tracing::Span::current().context())
                        .await
                }
            };
            tracing::info!("answered");
            frame
        };
        runtime.block_on(handle.instrument(tracing::info_span!(APP_SPAN, user = "u-1")))
    })
    .unwrap();
    let all: Vec<SpanRecord> = capture
        .spans()
        .into_iter()
        .filter(|s| !granted.contains(&s.span_id))
        .collect();
    assert_eq!(
        one(&all, k::SPAN_INVOKE).attr(k::ACTION_ID),
        Some(frame.action_id.as_str())
    );
    let trace = kernel.explain(&frame.action_id).unwrap();
    ((trace.trace_id.clone(), trace.span_id.clone()), all)
}

/// The one span named `name`.
fn one<'a>(all: &'a [SpanRecord], name: &str) -> &'a SpanRecord {
    let found: Vec<&SpanRecord> = all.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one {name:?}, exported once: {:#?}",
        names(all)
    );
    found[0]
}

fn names(all: &[SpanRecord]) -> Vec<&str> {
    all.iter().map(|s| s.name.as_str()).collect()
}

/// Six spans, each exported once, by whoever made it: the application's
/// and the driver's through the `tracing` layer, the kernel's four through
/// the kernel's own instrumentation (never both).
fn assert_each_span_once(all: &[SpanRecord]) {
    let ids: BTreeSet<(&str, &str)> = all
        .iter()
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    assert_eq!(ids.len(), all.len(), "a span exported twice: {all:#?}");
    let mut got = names(all);
    got.sort_unstable();
    let mut want = vec![
        APP_SPAN,
        DRIVER_SPAN,
        k::SPAN_INVOKE,
        k::SPAN_POLICY_EVALUATE,
        k::SPAN_DRIVER_EXECUTE,
        k::SPAN_FIREWALL_APPLY,
    ];
    want.sort_unstable();
    assert_eq!(got, want);
    for name in [APP_SPAN, DRIVER_SPAN] {
        assert_eq!(one(all, name).scope.0, APP_SCOPE, "{name} is the layer's");
    }
    for name in [
        k::SPAN_INVOKE,
        k::SPAN_POLICY_EVALUATE,
        k::SPAN_DRIVER_EXECUTE,
        k::SPAN_FIREWALL_APPLY,
    ] {
        assert_ne!(one(all, name).scope.0, APP_SCOPE, "{name} is the kernel's");
    }
}

/// The kernel's own tree: the three stages under the invoke span.
fn assert_kernel_tree(all: &[SpanRecord]) {
    let invoke = one(all, k::SPAN_INVOKE);
    for stage in [
        k::SPAN_POLICY_EVALUATE,
        k::SPAN_DRIVER_EXECUTE,
        k::SPAN_FIREWALL_APPLY,
    ] {
        assert!(invoke.is_parent_of(one(all, stage)), "{stage}: {all:#?}");
    }
}

#[test]
fn default_layer_nests_both_ways_and_exports_each_span_once() {
    let (audit, all) = run(true, DriverParent::Contextual, Call::Plain);
    assert_each_span_once(&all);
    assert_kernel_tree(&all);
    let app = one(&all, APP_SPAN);
    let invoke = one(&all, k::SPAN_INVOKE);
    let execute = one(&all, k::SPAN_DRIVER_EXECUTE);
    let driver = one(&all, DRIVER_SPAN);
    assert!(app.is_root(), "{app:#?}");
    // Application → kernel: the invoke span is the `tracing` span's child.
    assert!(app.is_parent_of(invoke), "{all:#?}");
    // Kernel → driver: the driver's `tracing` span is the attempt's child.
    assert!(execute.is_parent_of(driver), "{all:#?}");
    assert!(all.iter().all(|s| s.trace_id == app.trace_id), "one trace");
    // The audit record points at the invoke span, not at the caller's.
    assert_eq!(
        audit,
        (Some(invoke.trace_id.clone()), Some(invoke.span_id.clone()))
    );
}

#[test]
fn without_context_activation_the_kernel_tree_is_a_trace_of_its_own() {
    let (_, all) = run(false, DriverParent::Contextual, Call::Plain);
    assert_each_span_once(&all);
    assert_kernel_tree(&all);
    let app = one(&all, APP_SPAN);
    let invoke = one(&all, k::SPAN_INVOKE);
    let driver = one(&all, DRIVER_SPAN);
    // The kernel sees no current OpenTelemetry context: its tree starts a
    // new trace.
    assert!(invoke.is_root(), "{invoke:#?}");
    assert_ne!(invoke.trace_id, app.trace_id);
    // The driver's `tracing` span follows `tracing`'s own current span, the
    // application's: it lands beside the kernel's tree, in the other trace.
    assert!(app.is_parent_of(driver), "{all:#?}");
}

#[test]
fn without_context_activation_one_line_restores_the_nesting() {
    // The application attaches its span's context around the invoke.
    let (_, all) = run(false, DriverParent::Contextual, Call::WithTracingContext);
    assert_each_span_once(&all);
    assert_kernel_tree(&all);
    let app = one(&all, APP_SPAN);
    let invoke = one(&all, k::SPAN_INVOKE);
    assert!(app.is_parent_of(invoke), "{all:#?}");
    assert!(all.iter().all(|s| s.trace_id == app.trace_id), "one trace");
    // The driver's contextual span still follows `tracing`'s current span.
    assert!(app.is_parent_of(one(&all, DRIVER_SPAN)), "{all:#?}");

    // A driver that parents its span on the current OpenTelemetry context
    // (which the kernel sets to the attempt while the driver runs) nests
    // under driver.execute whatever the layer's setting.
    for activation in [false, true] {
        let (_, all) = run(
            activation,
            DriverParent::CurrentOtelContext,
            Call::WithTracingContext,
        );
        assert_each_span_once(&all);
        let execute = one(&all, k::SPAN_DRIVER_EXECUTE);
        assert!(
            execute.is_parent_of(one(&all, DRIVER_SPAN)),
            "activation {activation}: {all:#?}"
        );
        assert!(one(&all, APP_SPAN).is_parent_of(one(&all, k::SPAN_INVOKE)));
    }
}
