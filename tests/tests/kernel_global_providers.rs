//! A kernel built and instrumented (`instrument_kernel`, global binding)
//! before the application installs its OpenTelemetry global providers still
//! exports once they are: spans and the per-call metrics. An invoke made inside
//! the application's own span (from the
//! global tracer) becomes its child. In its own test binary, alone, because
//! it sets the process-wide globals (`cargo test` runs the tests of one
//! binary as threads of one process); the gauge's case is in
//! `kernel_global_gauge.rs` for the same reason.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use agent_kernel::otel::{instrument_kernel, keys as k};
use agent_kernel::*;
use agent_kernel_otel::opentelemetry::trace::{TraceContextExt, Tracer};
use agent_kernel_otel::opentelemetry::{Context, context::FutureExt, global};
use agent_kernel_tests::Capture;
use kernel_fixture::*;

#[test]
fn kernel_built_before_the_providers_exports_once_they_are_installed() {
    // Built, instrumented and used before any provider exists.
    let fx = Fixture::new();
    let hook = instrument_kernel(&fx.kernel);
    assert!(hook.telemetry().is_global());
    let token = fx.token(LIST, &fx.analyst);
    let early = rt()
        .block_on(
            fx.kernel
                .invoke_with(InvokeRequest::new(&token, &fx.analyst).with_session("s-early")),
        )
        .unwrap();
    assert_eq!(
        fx.kernel.explain(&early.action_id).unwrap().trace_id,
        None,
        "no provider yet: no-op spans, no ids"
    );

    // The application installs its providers (and calls enable(), as setup does).
    let cap = Capture::install_global();
    let frame = rt()
        .block_on(
            fx.kernel
                .invoke_with(InvokeRequest::new(&token, &fx.analyst).with_session("s-1")),
        )
        .unwrap();
    let all = cap.spans();
    let roots = named(&all, k::SPAN_INVOKE);
    assert_eq!(roots.len(), 1, "{all:?}");
    let root = roots[0];
    assert!(root.is_root());
    assert_eq!(root.attr(k::ACTION_ID), Some(frame.action_id.as_str()));
    assert_eq!(
        child_names(&all, root),
        [
            k::SPAN_POLICY_EVALUATE,
            k::SPAN_DRIVER_EXECUTE,
            k::SPAN_FIREWALL_APPLY
        ]
    );
    let trace = fx.kernel.explain(&frame.action_id).unwrap();
    assert_eq!(trace.span_id.as_deref(), Some(root.span_id.as_str()));
    let labels = [
        (k::LABEL_CAPABILITY_ID, LIST),
        (k::LABEL_SAFETY_CLASS, "READ"),
        (k::LABEL_STATUS, "success"),
    ];
    assert_eq!(cap.count(k::METRIC_INVOCATIONS, &labels), 1);
    assert_eq!(cap.count(k::METRIC_INVOCATION_DURATION, &labels), 1);
    // An invoke inside the application's own span (global tracer) is its child.
    let tracer = global::tracer("app");
    let span = tracer.start("app.request");
    let cx = Context::current_with_span(span);
    let frame = rt()
        .block_on(
            fx.kernel
                .invoke_with(InvokeRequest::new(&token, &fx.analyst))
                .with_context(cx.clone()),
        )
        .unwrap();
    cx.span().end();
    let all = cap.spans();
    let app = named(&all, "app.request")[0];
    let root = all
        .iter()
        .find(|s| s.attr(k::ACTION_ID) == Some(frame.action_id.as_str()))
        .unwrap();
    assert!(app.is_parent_of(root), "invoke under the caller's span");
    assert_eq!(children(&all, root).len(), 3);
    drop(hook);
}
