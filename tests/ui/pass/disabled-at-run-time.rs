// Checks: while telemetry is disabled at run time no span is recorded and no
// attribute or binding expression is evaluated; enabling it again resumes.
#![deny(warnings)]
use std::sync::atomic::{AtomicU32, Ordering};

use agent_kernel_otel::{kernel_span, Telemetry};
use agent_kernel_tests::Capture;

static EVALUATED: AtomicU32 = AtomicU32::new(0);

fn costly(x: u32) -> u32 {
    EVALUATED.fetch_add(1, Ordering::SeqCst);
    x
}

fn binding(t: &Telemetry) -> &Telemetry {
    EVALUATED.fetch_add(1, Ordering::SeqCst);
    t
}

#[kernel_span(name = "demo.switch", telemetry = binding(t), attrs(value = costly(x)))]
fn work(t: &Telemetry, x: u32) -> u32 {
    let _ = t;
    x + 1
}

fn main() {
    let cap = Capture::new();
    let t = cap.telemetry();
    agent_kernel_otel::disable();
    assert!(!agent_kernel_otel::is_enabled());
    assert_eq!(work(&t, 1), 2);
    assert_eq!(EVALUATED.load(Ordering::SeqCst), 0);
    assert!(cap.spans().is_empty());
    agent_kernel_otel::enable();
    assert_eq!(agent_kernel_otel::is_enabled(), cfg!(feature = "otel"));
    assert_eq!(work(&t, 2), 3);
    if cfg!(feature = "otel") {
        assert_eq!(EVALUATED.load(Ordering::SeqCst), 2);
        assert_eq!(cap.span("demo.switch").attr("agent_kernel.value"), Some("2"));
    } else {
        assert_eq!(EVALUATED.load(Ordering::SeqCst), 0);
    }
}
