// Checks: a root span bound with `telemetry = ...` hands its binding to child
// spans through the Context (including on another thread that carries the
// Context), and a second binding in the same process stays separate.
#![deny(warnings)]
use agent_kernel_otel::{kernel_span, Telemetry};
use agent_kernel_tests::Capture;

#[kernel_span(name = "demo.child", kind = internal)]
fn child() -> u8 {
    1
}

#[kernel_span(name = "demo.root", telemetry = telemetry)]
fn root(telemetry: &Telemetry) -> u8 {
    // Without the feature the item is returned unchanged, so a parameter used
    // only by the attribute must be used (or `_`-prefixed) to avoid a warning.
    let _ = telemetry;
    #[cfg(feature = "otel")]
    let cx = agent_kernel_otel::opentelemetry::Context::current();
    let on_thread = std::thread::spawn(move || {
        #[cfg(feature = "otel")]
        let _guard = cx.attach();
        child()
    });
    child() + on_thread.join().unwrap()
}

fn main() {
    let a = Capture::new();
    let b = Capture::new();
    assert_eq!(root(&a.telemetry()), 2);
    assert_eq!(root(&b.telemetry()), 2);
    assert_eq!(root(&b.telemetry()), 2);
    if cfg!(feature = "otel") {
        let r = a.span("demo.root");
        let children: Vec<_> = a.spans().into_iter().filter(|s| s.name == "demo.child").collect();
        assert_eq!(children.len(), 2);
        assert!(children.iter().all(|c| r.is_parent_of(c)));
        assert_eq!(b.spans().len(), 6);
        assert_eq!(a.spans().len(), 3);
    }
}
