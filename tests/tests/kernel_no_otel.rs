//! `instrument_kernel` without the `otel` feature: the same application
//! program (instrument, invoke, unhook) compiles and runs, and records
//! nothing: no trace ids on the audit record, none in the current context,
//! the run-time switch stays off.
//!
//! It runs in every configuration. Built with the feature on (the
//! `--features otel` run, or a workspace build where another member turns
//! `agent-kernel/otel` on) it checks the same program with no provider
//! installed, which must record nothing either. The genuinely feature-off
//! build is `cargo test -p agent-kernel-tests --test kernel_no_otel` (this
//! package alone, so no other member unifies the feature on);
//! `scripts/test-all.sh` runs it with `AGENT_KERNEL_EXPECT_NO_OTEL=1`, and
//! checks that `cargo tree -p agent-kernel -e normal` lists no opentelemetry
//! crate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use agent_kernel::otel::{instrument_kernel, instrument_kernel_with};
use agent_kernel::*;
use agent_kernel_otel::Telemetry;
use kernel_fixture::*;

/// Whether the runtime crate was compiled with its `otel` feature (its
/// `Telemetry` says so in its `Debug` form).
fn runtime_has_otel() -> bool {
    !format!("{:?}", Telemetry::global()).contains("without the `otel` feature")
}

/// The application program, written once for both builds.
fn program() -> (Vec<ActionTrace>, bool) {
    let fx = Fixture::new();
    let hook = instrument_kernel(&fx.kernel);
    let again = instrument_kernel(&fx.kernel);
    let enabled = agent_kernel_otel::is_enabled();
    let token = fx.token(LIST, &fx.analyst);
    let runtime = rt();
    let mut traces = Vec::new();
    for mode in [
        ResponseMode::Summary,
        ResponseMode::Table,
        ResponseMode::HandleOnly,
    ] {
        let frame = runtime
            .block_on(
                fx.kernel.invoke_with(
                    InvokeRequest::new(&token, &fx.analyst)
                        .with_mode(mode)
                        .with_session("s-1"),
                ),
            )
            .unwrap();
        assert_eq!(agent_kernel_otel::current_trace_ids(), None);
        traces.push((*fx.kernel.explain(&frame.action_id).unwrap()).clone());
    }
    // Failures too: a driver error and a denial.
    let dead = fx.token(DEAD, &fx.analyst);
    let err = runtime
        .block_on(
            fx.kernel
                .invoke(&dead, &fx.analyst, Args::new(), ResponseMode::Summary),
        )
        .unwrap_err();
    assert_eq!(err.kind(), "driver_error", "{err}");
    // The token's principal without the `tenant` attribute a PII capability needs.
    let stranger = Principal::new("analyst-001").with_roles(["reader"]);
    let err = runtime
        .block_on(
            fx.kernel
                .invoke(&token, &stranger, Args::new(), ResponseMode::Summary),
        )
        .unwrap_err();
    assert_eq!(
        (err.kind(), err.denial_category()),
        (
            "policy_denied",
            Some(DenialCategory::MissingTenantAttribute)
        ),
        "{err}"
    );
    traces.extend(fx.kernel.traces().list_all().iter().map(|t| (**t).clone()));
    drop(again);
    hook.unhook();
    // The explicit-binding variant exists with the same signature too.
    let _hook = instrument_kernel_with(&fx.kernel, Telemetry::global());
    (traces, enabled)
}

#[test]
fn instrument_kernel_compiles_runs_and_records_nothing_without_providers() {
    let (traces, enabled) = program();
    // Three explained successes, then the whole store: those three, the
    // driver error and the denial.
    assert_eq!(traces.len(), 8, "{traces:#?}");
    let outcomes: Vec<TraceOutcome> = traces[3..].iter().map(|t| t.outcome).collect();
    assert_eq!(
        outcomes,
        [
            TraceOutcome::Success,
            TraceOutcome::Success,
            TraceOutcome::Success,
            TraceOutcome::DriverError,
            TraceOutcome::Denied,
        ]
    );
    for t in &traces {
        assert_eq!(t.trace_id, None, "{t:?}");
        assert_eq!(t.span_id, None, "{t:?}");
    }
    assert_eq!(agent_kernel_otel::current_trace_ids(), None);
    if !runtime_has_otel() {
        assert!(!enabled, "without the feature the switch never turns on");
        assert!(!agent_kernel_otel::is_enabled());
    }
}

/// `scripts/test-all.sh` sets `AGENT_KERNEL_EXPECT_NO_OTEL=1` for its
/// feature-off step (`cargo test -p agent-kernel-tests --test kernel_no_otel`),
/// where nothing may turn the feature on; elsewhere (a workspace build, where
/// the demo unifies `agent-kernel/otel` on) there is nothing to check.
#[cfg(not(feature = "otel"))]
#[test]
fn feature_off_build_has_no_otel_runtime() {
    if std::env::var_os("AGENT_KERNEL_EXPECT_NO_OTEL").is_some() {
        assert!(
            !runtime_has_otel(),
            "agent-kernel-otel was built with `otel` although nothing asked for it"
        );
    }
}
