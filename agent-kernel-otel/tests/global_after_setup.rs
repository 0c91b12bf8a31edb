//! After `setup::init`, `#[kernel_span]` functions on the global binding
//! report to the providers `init` installed (which the runtime holds directly,
//! without the global API's wrappers), and an application that replaces the
//! global providers afterwards and calls `enable()` is followed. One test in
//! its own binary: it sets the process-wide globals.
#![cfg(feature = "setup")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use agent_kernel_otel::kernel_span;
use agent_kernel_otel::opentelemetry::global;
use agent_kernel_otel::setup::{TelemetryConfig, init};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

#[kernel_span(name = "demo.after_setup")]
fn after_setup() -> usize {
    1
}

#[kernel_span(name = "demo.after_replacement")]
fn after_replacement() -> usize {
    2
}

#[test]
fn global_binding_reports_to_setup_then_follows_a_replacement() {
    let out = Arc::new(Mutex::new(Vec::<u8>::new()));
    let config = TelemetryConfig::from_lookup(|_| None)
        .unwrap()
        .into_builder()
        .console_writer(out.clone())
        .build()
        .unwrap();
    let guard = init(config).unwrap();
    assert_eq!(after_setup(), 1);

    let replacement = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(replacement.clone())
        .build();
    global::set_tracer_provider(provider.clone());
    agent_kernel_otel::enable();
    assert_eq!(after_replacement(), 2);

    guard.shutdown().unwrap();
    let console = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert!(console.contains("demo.after_setup"), "{console}");
    assert!(!console.contains("demo.after_replacement"), "{console}");
    let replaced: Vec<String> = replacement
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(replaced, ["demo.after_replacement"]);
}
