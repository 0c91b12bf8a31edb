//! Lazy use of the OpenTelemetry global providers: a binding made (and used)
//! before the application installs its providers must not stay a no-op. In
//! its own test binary because it sets the process-wide globals.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use agent_kernel_otel::{Telemetry, kernel_span};
use agent_kernel_tests::Capture;

#[kernel_span(name = "test.global.child")]
fn child() -> u8 {
    1
}

#[kernel_span(name = "test.global.root", telemetry = telemetry)]
fn root(telemetry: &Telemetry) -> u8 {
    child()
}

#[test]
fn providers_installed_after_first_use_are_picked_up() {
    // Enabled, but no provider installed yet: spans go to the no-op globals.
    agent_kernel_otel::enable();
    let early = Telemetry::global();
    assert_eq!(root(&early), 1);
    assert_eq!(child(), 1);

    // The application installs its providers (and calls enable(), as setup does).
    let cap = Capture::install_global();
    assert_eq!(root(&early), 1);
    let spans = cap.spans();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let r = cap.span("test.global.root");
    assert!(r.is_parent_of(&cap.span("test.global.child")));
    // Another thread sees the new generation too.
    std::thread::spawn(child).join().unwrap();
    assert_eq!(cap.spans().len(), 3);
}
