//! A kernel instrumented (`instrument_kernel`, global binding) before the
//! application installs its OpenTelemetry global providers reports its
//! `agent_kernel.budget_consumed` gauge once they are. In its own test binary,
//! alone, because it sets the process-wide globals.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kernel_fixture;

use agent_kernel::otel::{instrument_kernel, keys as k};
use agent_kernel::*;
use agent_kernel_tests::Capture;
use kernel_fixture::*;

/// `instrument_kernel` registers the `agent_kernel.budget_consumed` gauge
/// while only the no-op global meter exists; `enable()` (called when the
/// application installs its providers) moves it to the real meter.
#[test]
fn budget_gauge_registered_before_the_providers_reports_once_they_are() {
    let fx = Fixture::new();
    let _hook = instrument_kernel(&fx.kernel);
    let token = fx.token(LIST, &fx.analyst);
    let cap = Capture::install_global();
    rt().block_on(
        fx.kernel
            .invoke_with(InvokeRequest::new(&token, &fx.analyst).with_session("s-1")),
    )
    .unwrap();
    let used = fx.kernel.budget().usage("s-1").unwrap().used;
    assert!(used > 0);
    assert_eq!(
        cap.count(k::METRIC_BUDGET_CONSUMED, &[(k::LABEL_SESSION_ID, "s-1")]),
        used,
        "{:?}",
        cap.points()
    );
}
