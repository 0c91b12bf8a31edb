//! Run-time behaviour of `#[kernel_span]` code with the `otel` feature:
//! parenting across `.await` and threads, dropped futures, panics, `Err`
//! status, metric counts, per-binding isolation, gauges and trace ids. Every
//! test binds its own providers (`Capture::new`), so tests run in parallel
//! without touching the OpenTelemetry globals.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use agent_kernel_otel::opentelemetry::Context;
use agent_kernel_otel::{GaugeSpec, SpanError, Telemetry, current_trace_ids, kernel_span, record};
use agent_kernel_tests::Capture;

#[derive(Debug)]
enum Failure {
    Denied,
    Broken,
}

impl SpanError for Failure {
    fn error_type(&self) -> &'static str {
        match self {
            Failure::Denied => "denied",
            Failure::Broken => "broken",
        }
    }
    fn is_denial(&self) -> bool {
        matches!(self, Failure::Denied)
    }
}

#[kernel_span(name = "test.leaf", attrs(n))]
async fn leaf(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    n
}

#[kernel_span(name = "test.leaf.sync", attrs(n))]
fn leaf_sync(n: u32) -> u32 {
    n
}

#[kernel_span(name = "test.root", telemetry = telemetry)]
async fn root(telemetry: &Telemetry) -> u32 {
    let a = leaf(1).await;
    // A spawned task carries the Context explicitly (as the kernel does).
    let cx = Context::current();
    let b = tokio::spawn(async move {
        let _g = cx.attach();
        leaf_sync(2)
    })
    .await
    .unwrap();
    // A plain thread, same.
    let cx = Context::current();
    let c = std::thread::spawn(move || {
        let _g = cx.attach();
        leaf_sync(3)
    })
    .join()
    .unwrap();
    a + b + c
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn parenting_across_await_tasks_and_threads() {
    let cap = Capture::new();
    assert_eq!(rt().block_on(root(&cap.telemetry())), 6);
    let spans = cap.spans();
    assert_eq!(spans.len(), 4, "{spans:?}");
    let root = cap.span("test.root");
    assert!(root.is_root());
    for s in spans.iter().filter(|s| s.name != "test.root") {
        assert!(root.is_parent_of(s), "{} not under root", s.name);
    }
}

#[kernel_span(name = "test.slow", telemetry = telemetry, attrs(step = deferred))]
async fn slow(telemetry: &Telemetry) -> Result<(), Failure> {
    record("step", "before-sleep");
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[test]
fn dropped_future_ends_the_span_as_cancelled() {
    let cap = Capture::new();
    let t = cap.telemetry();
    rt().block_on(async {
        let r = tokio::time::timeout(Duration::from_millis(10), slow(&t)).await;
        assert!(r.is_err());
    });
    let s = cap.span("test.slow");
    assert_eq!(s.attr("agent_kernel.cancelled"), Some("true"));
    assert_eq!(s.attr("error.type"), Some("cancelled"));
    assert_eq!(s.attr("agent_kernel.step"), Some("before-sleep"));
    assert!(s.error.is_some());
}

#[kernel_span(name = "test.panics.async", telemetry = telemetry)]
async fn panics_async(telemetry: &Telemetry) -> u32 {
    tokio::task::yield_now().await;
    panic!("driver exploded");
}

#[kernel_span(name = "test.panics.sync", telemetry = telemetry)]
fn panics_sync(telemetry: &Telemetry) -> Result<u32, Failure> {
    panic!("driver exploded");
}

#[test]
fn panic_ends_the_span_as_error_and_keeps_unwinding() {
    let cap = Capture::new();
    let t = cap.telemetry();
    let joined = rt().block_on(async {
        let t = t.clone();
        tokio::spawn(async move { panics_async(&t).await }).await
    });
    assert!(joined.unwrap_err().is_panic());
    let t2 = t.clone();
    let caught = std::panic::catch_unwind(move || panics_sync(&t2));
    assert!(caught.is_err());
    for name in ["test.panics.async", "test.panics.sync"] {
        let s = cap.span(name);
        assert_eq!(s.attr("error.type"), Some("panic"), "{name}");
        assert_eq!(s.error.as_deref(), Some("panicked"));
        assert!(s.event("exception").is_some());
    }
}

#[kernel_span(
    name = "test.invoke",
    telemetry = telemetry,
    attrs(capability_id, reason = deferred),
    metrics(
        counter(name = "test.invocations", unit = "{invocation}", labels(capability_id, status)),
        histogram(name = "test.duration", unit = "ms", buckets = [0.01, 1, 10], labels(status)),
        counter(name = "test.denials", labels(capability_id, reason), when = denied),
        counter(name = "test.failures", labels(status), when = failure),
    )
)]
fn invoke(telemetry: &Telemetry, capability_id: &'static str, outcome: u8) -> Result<u8, Failure> {
    match outcome {
        0 => Ok(0),
        1 => {
            record("reason", "policy");
            Err(Failure::Denied)
        }
        _ => Err(Failure::Broken),
    }
}

#[test]
fn err_status_event_and_error_type() {
    let cap = Capture::new();
    let t = cap.telemetry();
    let _ = invoke(&t, "cap.a", 2);
    let s = cap.span("test.invoke");
    assert_eq!(s.error.as_deref(), Some("broken"));
    assert_eq!(s.attr("error.type"), Some("broken"));
    let ev = s.event("exception").unwrap();
    assert!(ev.contains(&("exception.type".into(), "broken".into())));
    assert!(ev.contains(&("exception.message".into(), "broken".into())));
}

#[test]
fn metric_counts_are_exact() {
    let cap = Capture::new();
    let t = cap.telemetry();
    for o in [0, 0, 1, 2, 2, 2] {
        let _ = invoke(&t, "cap.a", o);
    }
    let _ = invoke(&t, "cap.b", 1);
    let c = |cap_id, status| {
        cap.count(
            "test.invocations",
            &[("capability_id", cap_id), ("status", status)],
        )
    };
    assert_eq!(c("cap.a", "success"), 2);
    assert_eq!(c("cap.a", "denied"), 1);
    assert_eq!(c("cap.a", "error"), 3);
    assert_eq!(c("cap.b", "denied"), 1);
    assert_eq!(cap.count("test.duration", &[("status", "error")]), 3);
    assert_eq!(
        cap.count(
            "test.denials",
            &[("capability_id", "cap.a"), ("reason", "policy")]
        ),
        1
    );
    assert_eq!(
        cap.count(
            "test.denials",
            &[("capability_id", "cap.b"), ("reason", "policy")]
        ),
        1
    );
    assert_eq!(cap.count("test.failures", &[("status", "error")]), 3);
    assert_eq!(cap.count("test.failures", &[("status", "denied")]), 2);
    assert_eq!(cap.count("test.failures", &[("status", "success")]), 0);
}

#[test]
fn bindings_are_isolated_and_instruments_cached_per_binding() {
    let a = Capture::new();
    let b = Capture::new();
    let (ta, tb) = (a.telemetry(), b.telemetry());
    // Alternate bindings at one call site: each binding's instruments stay its own.
    for _ in 0..3 {
        let _ = invoke(&ta, "cap.a", 0);
        let _ = invoke(&tb, "cap.a", 0);
        let _ = invoke(&tb, "cap.a", 0);
    }
    let ok = [("capability_id", "cap.a"), ("status", "success")];
    assert_eq!(a.count("test.invocations", &ok), 3);
    assert_eq!(b.count("test.invocations", &ok), 6);
    assert_eq!(a.spans().len(), 3);
    assert_eq!(b.spans().len(), 6);
    assert!(!ta.same_binding(&tb));
    assert!(ta.same_binding(&ta.clone()));
}

#[kernel_span(name = "test.ids", telemetry = telemetry)]
fn ids_inside(telemetry: &Telemetry) -> Option<(String, String)> {
    current_trace_ids()
}

#[test]
fn current_trace_ids_match_the_span() {
    let cap = Capture::new();
    assert_eq!(current_trace_ids(), None);
    let (trace, span) = ids_inside(&cap.telemetry()).expect("ids inside a span");
    assert_eq!(trace.len(), 32);
    assert_eq!(span.len(), 16);
    let s = cap.span("test.ids");
    assert_eq!((s.trace_id, s.span_id), (trace, span));
}

#[test]
fn gauge_reports_until_unregistered() {
    let cap = Capture::new();
    let value = Arc::new(AtomicU64::new(7));
    let v = Arc::clone(&value);
    let gauge = cap.telemetry().register_gauge::<u64, _>(
        GaugeSpec::new("test.budget_consumed").with_unit("{token}"),
        move |o| o.observe(v.load(Ordering::Relaxed), &[("session_id", "s-1")]),
    );
    assert_eq!(
        cap.count("test.budget_consumed", &[("session_id", "s-1")]),
        7
    );
    value.store(9, Ordering::Relaxed);
    assert_eq!(
        cap.count("test.budget_consumed", &[("session_id", "s-1")]),
        9
    );
    drop(gauge);
    assert_eq!(
        cap.count("test.budget_consumed", &[("session_id", "s-1")]),
        0
    );
}

#[kernel_span(name = "test.nested.inner", attrs(inner = deferred))]
fn nested_inner() {
    helper_records();
}

fn helper_records() {
    assert!(record("inner", 1));
    assert!(record("outer", 2));
}

#[kernel_span(name = "test.nested.outer", telemetry = telemetry, attrs(outer = deferred), metrics(counter(name = "test.nested", labels(outer))))]
fn nested_outer(telemetry: &Telemetry) {
    nested_inner();
}

#[test]
fn deferred_values_reach_labels_from_nested_calls() {
    let cap = Capture::new();
    nested_outer(&cap.telemetry());
    assert_eq!(
        cap.span("test.nested.outer").attr("agent_kernel.outer"),
        Some("2")
    );
    assert_eq!(
        cap.span("test.nested.inner").attr("agent_kernel.inner"),
        Some("1")
    );
    assert_eq!(cap.count("test.nested", &[("outer", "2")]), 1);
}
