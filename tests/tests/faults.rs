//! Faults around the instrumented kernel: a driver that panics, a driver that
//! never returns (cancelled by `tokio::time::timeout`), an invoke future
//! dropped mid-flight (on the caller's thread, by aborting its task, and
//! before its first poll), and span and metric exporters that fail or hang
//! behind the SDK's batch span processor and periodic metric reader. Each
//! fault ends its spans with the right status, leaves the audit record and the
//! session budget consistent (no reservation leaked, no lock poisoned), and the
//! next invoke works.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use agent_kernel::otel::{Instrumentation, instrument_kernel_with, keys as k};
use agent_kernel::*;
use agent_kernel_otel::Telemetry;
use agent_kernel_tests::{Capture, SpanRecord};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};
use serde_json::json;

/// READ; served by `mem`.
const OK: &str = "tools.ok";
/// READ; served by `panic`, whose future panics.
const PANIC: &str = "tools.panic";
/// READ; served by `hang`, whose future never completes.
const HANG: &str = "tools.hang";

/// The invoke future panics inside the driver (after an `.await`).
#[derive(Debug)]
struct PanicDriver;

#[async_trait]
impl Driver for PanicDriver {
    fn driver_id(&self) -> &str {
        "panic"
    }

    async fn execute(&self, _ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        tokio::task::yield_now().await;
        panic!("driver exploded mid-call");
    }
}

/// Never returns; counts the calls that reached it.
#[derive(Debug, Clone, Default)]
struct HangDriver {
    entered: Arc<AtomicUsize>,
}

#[async_trait]
impl Driver for HangDriver {
    fn driver_id(&self) -> &str {
        "hang"
    }

    async fn execute(&self, _ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

struct World {
    kernel: Arc<Kernel>,
    hang: HangDriver,
    alice: Principal,
}

impl World {
    fn new() -> World {
        let mut registry = CapabilityRegistry::new();
        for id in [OK, PANIC, HANG] {
            registry
                .register(Capability::new(id, "Tool", "A tool", SafetyClass::Read))
                .unwrap();
        }
        let hang = HangDriver::default();
        let kernel = Kernel::builder(registry)
            .secret("faults-test-secret-0123456789abcdef")
            .policy(
                DefaultPolicyEngine::builder()
                    .rate_limit(SafetyClass::Read, 1_000_000, Duration::from_secs(60))
                    .build()
                    .unwrap(),
            )
            .router(
                StaticRouter::new()
                    .with_route(OK, ["mem"])
                    .with_route(PANIC, ["panic"])
                    .with_route(HANG, ["hang"]),
            )
            .driver(InMemoryDriver::new("mem").with_handler(OK, |_ctx| {
                Ok::<_, String>(json!([{"id": 1, "status": "open"}, {"id": 2, "status": "closed"}]))
            }))
            .driver(PanicDriver)
            .driver(hang.clone())
            .build()
            .unwrap();
        World {
            kernel: Arc::new(kernel),
            hang,
            alice: Principal::new("alice").with_roles(["reader"]),
        }
    }

    fn token(&self, capability_id: &str) -> CapabilityToken {
        self.kernel
            .get_token(
                &CapabilityRequest::new(capability_id, "test"),
                &self.alice,
                "",
            )
            .unwrap()
    }

    /// A working invoke on `session`, and the kernel state it must leave:
    /// a success record, a handle that expands, the session charged with
    /// nothing left reserved.
    async fn next_invoke_works(&self, session: &str) {
        let token = self.token(OK);
        let frame = self
            .kernel
            .invoke_with(
                InvokeRequest::new(&token, &self.alice)
                    .with_mode(ResponseMode::Table)
                    .with_session(session),
            )
            .await
            .unwrap();
        assert_eq!(frame.table_preview.len(), 2);
        let trace = self.kernel.explain(&frame.action_id).unwrap();
        assert_eq!(trace.outcome, TraceOutcome::Success);
        let expanded = self
            .kernel
            .expand(
                frame.handle.as_ref().unwrap(),
                &ExpandQuery::default(),
                &self.alice,
            )
            .unwrap();
        assert_eq!(expanded.table_preview.len(), 2);
        let usage = self.kernel.budget().usage(session).unwrap();
        assert_eq!(usage.reserved, 0, "{usage:?}");
        assert!(usage.used > 0, "{usage:?}");
        // The drivers' lock still takes writes and reads.
        self.kernel.register_driver(InMemoryDriver::new("spare"));
        assert!(self.kernel.driver_ids().contains(&"spare".to_owned()));
    }

    /// The session's standing after a failed call: nothing reserved, nothing used.
    fn assert_nothing_held(&self, session: &str) {
        if let Some(usage) = self.kernel.budget().usage(session) {
            assert_eq!((usage.reserved, usage.used), (0, 0), "{usage:?}");
        }
    }
}

fn instrumented() -> (World, Capture, Instrumentation) {
    let w = World::new();
    let cap = Capture::new();
    let hook = instrument_kernel_with(&w.kernel, cap.telemetry());
    (w, cap, hook)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The invoke spans of `capability_id`.
fn invokes_of(all: &[SpanRecord], capability_id: &str) -> Vec<SpanRecord> {
    all.iter()
        .filter(|s| s.name == k::SPAN_INVOKE && s.attr(k::CAPABILITY_ID) == Some(capability_id))
        .cloned()
        .collect()
}

fn children<'a>(all: &'a [SpanRecord], parent: &SpanRecord) -> Vec<&'a SpanRecord> {
    all.iter().filter(|s| parent.is_parent_of(s)).collect()
}

/// ERROR with this `error.type`, an exception event of the same type.
fn assert_failed(span: &SpanRecord, error_type: &str) {
    assert!(
        span.error.is_some() && span.error.as_deref() != Some("ok"),
        "{span:?}"
    );
    assert_eq!(span.attr(k::ERROR_TYPE), Some(error_type), "{span:?}");
    let event = span
        .event("exception")
        .unwrap_or_else(|| panic!("no exception event: {span:?}"));
    assert!(
        event.contains(&("exception.type".to_owned(), error_type.to_owned())),
        "{span:?}"
    );
}

fn assert_cancelled(span: &SpanRecord) {
    assert_failed(span, "cancelled");
    assert_eq!(
        span.attr("agent_kernel.cancelled"),
        Some("true"),
        "{span:?}"
    );
}

/// The one invoke of `capability_id` in `cap`: its root ended as `root_type`,
/// a policy child left unset and one driver child ended as `driver_type`; its
/// audit record is `outcome` and points at the root; it counted as an error.
fn assert_fault_recorded(
    w: &World,
    cap: &Capture,
    capability_id: &str,
    error_type: &str,
    outcome: TraceOutcome,
) -> String {
    let all = cap.spans();
    let roots = invokes_of(&all, capability_id);
    assert_eq!(roots.len(), 1, "{all:?}");
    let root = &roots[0];
    assert_failed(root, error_type);
    let kids = children(&all, root);
    let names: Vec<&str> = kids.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [k::SPAN_POLICY_EVALUATE, k::SPAN_DRIVER_EXECUTE],
        "no firewall"
    );
    assert_eq!(kids[0].error, None);
    assert_failed(kids[1], error_type);
    if error_type == "cancelled" {
        assert_cancelled(root);
        assert_cancelled(kids[1]);
    }
    let action_id = root
        .attr(k::ACTION_ID)
        .expect("the action id is on the span")
        .to_owned();
    let trace = w.kernel.explain(&action_id).unwrap();
    assert_eq!(trace.outcome, outcome);
    assert!(trace.error.is_some());
    assert!(trace.duration.is_some());
    assert_eq!(trace.span_id.as_deref(), Some(root.span_id.as_str()));
    let labels = [
        (k::LABEL_CAPABILITY_ID, capability_id),
        (k::LABEL_SAFETY_CLASS, "READ"),
        (k::LABEL_STATUS, "error"),
    ];
    assert_eq!(cap.count(k::METRIC_INVOCATIONS, &labels), 1);
    assert_eq!(cap.count(k::METRIC_INVOCATION_DURATION, &labels), 1);
    action_id
}

#[test]
fn a_panicking_driver_ends_its_spans_as_error_and_poisons_nothing() {
    let (w, cap, _hook) = instrumented();
    let token = w.token(PANIC);
    let runtime = rt();
    let joined = runtime.block_on({
        let kernel = Arc::clone(&w.kernel);
        let alice = w.alice.clone();
        runtime.spawn(async move {
            kernel
                .invoke_with(InvokeRequest::new(&token, &alice).with_session("s-panic"))
                .await
        })
    });
    let err = joined.expect_err("the invoke future panicked");
    assert!(err.is_panic(), "{err:?}");

    // The audit record survives the unwinding (recorded as cancelled: the
    // call did not complete), and the reservation was released.
    assert_fault_recorded(&w, &cap, PANIC, "panic", TraceOutcome::Cancelled);
    w.assert_nothing_held("s-panic");

    // Nothing poisoned: the same session and every store still work, also
    // from many tasks at once, and the faulty driver still panics the same way.
    runtime.block_on(async {
        w.next_invoke_works("s-panic").await;
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let kernel = Arc::clone(&w.kernel);
                let alice = w.alice.clone();
                let token = w.token(OK);
                tokio::spawn(async move {
                    let session = format!("s-{}", i % 4);
                    kernel
                        .invoke_with(InvokeRequest::new(&token, &alice).with_session(&session))
                        .await
                        .map(|f| f.action_id)
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    });
    let token = w.token(PANIC);
    let kernel = Arc::clone(&w.kernel);
    let alice = w.alice.clone();
    let again = runtime.block_on(runtime.spawn(async move {
        kernel
            .invoke(&token, &alice, Args::new(), ResponseMode::Summary)
            .await
    }));
    assert!(again.unwrap_err().is_panic());
    assert_eq!(invokes_of(&cap.spans(), PANIC).len(), 2);
    assert_eq!(invokes_of(&cap.spans(), OK).len(), 33);
}

#[test]
fn a_driver_that_never_returns_is_cancelled_by_a_timeout() {
    let (w, cap, _hook) = instrumented();
    let token = w.token(HANG);
    rt().block_on(async {
        let outcome = tokio::time::timeout(
            Duration::from_millis(50),
            w.kernel
                .invoke_with(InvokeRequest::new(&token, &w.alice).with_session("s-hang")),
        )
        .await;
        assert!(outcome.is_err(), "the hanging call timed out");
        assert_eq!(w.hang.entered.load(Ordering::SeqCst), 1);

        let action_id = assert_fault_recorded(&w, &cap, HANG, "cancelled", TraceOutcome::Cancelled);
        assert!(
            w.kernel
                .explain(&action_id)
                .unwrap()
                .error
                .as_deref()
                .unwrap()
                .contains("cancelled")
        );
        w.assert_nothing_held("s-hang");
        w.next_invoke_works("s-hang").await;
    });
}

#[test]
fn an_invoke_future_dropped_mid_flight_on_the_callers_thread() {
    let (w, cap, _hook) = instrumented();
    let token = w.token(HANG);
    rt().block_on(async {
        let mut call = Box::pin(
            w.kernel
                .invoke_with(InvokeRequest::new(&token, &w.alice).with_session("s-drop")),
        );
        // Poll until the driver holds the call, then drop it.
        while w.hang.entered.load(Ordering::SeqCst) == 0 {
            assert!(
                tokio::time::timeout(Duration::from_millis(5), &mut call)
                    .await
                    .is_err()
            );
        }
        // Mid-flight: the budget is reserved, no record yet.
        assert!(w.kernel.budget().usage("s-drop").unwrap().reserved > 0);
        assert_eq!(w.kernel.traces().len(), 0);
        drop(call);

        assert_fault_recorded(&w, &cap, HANG, "cancelled", TraceOutcome::Cancelled);
        w.assert_nothing_held("s-drop");
        w.next_invoke_works("s-drop").await;
    });
}

#[test]
fn an_invoke_task_aborted_mid_flight() {
    let (w, cap, _hook) = instrumented();
    let token = w.token(HANG);
    rt().block_on(async {
        let task = {
            let kernel = Arc::clone(&w.kernel);
            let alice = w.alice.clone();
            tokio::spawn(async move {
                kernel
                    .invoke_with(InvokeRequest::new(&token, &alice).with_session("s-abort"))
                    .await
            })
        };
        while w.hang.entered.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        task.abort();
        let err = task.await.expect_err("aborted");
        assert!(err.is_cancelled(), "{err:?}");

        assert_fault_recorded(&w, &cap, HANG, "cancelled", TraceOutcome::Cancelled);
        w.assert_nothing_held("s-abort");
        w.next_invoke_works("s-abort").await;
    });
}

#[test]
fn an_invoke_future_dropped_before_its_first_poll_leaves_nothing_behind() {
    let (w, cap, _hook) = instrumented();
    let token = w.token(HANG);
    let call = w
        .kernel
        .invoke_with(InvokeRequest::new(&token, &w.alice).with_session("s-unpolled"));
    drop(call);
    // The body never ran: no driver call, no reservation, no record; a span,
    // if one was started, ended as cancelled.
    assert_eq!(w.hang.entered.load(Ordering::SeqCst), 0);
    assert!(w.kernel.budget().usage("s-unpolled").is_none());
    assert_eq!(w.kernel.traces().len(), 0);
    let all = cap.spans();
    let roots = invokes_of(&all, HANG);
    assert!(roots.len() <= 1, "{all:?}");
    for root in &roots {
        assert_cancelled(root);
        assert!(children(&all, root).is_empty());
    }
    rt().block_on(w.next_invoke_works("s-unpolled"));
}

// ── Exporters that fail or hang ─────────────────────────────────────────────

/// Every export fails at once.
#[derive(Debug, Clone, Default)]
struct FailingSpanExporter {
    calls: Arc<AtomicUsize>,
}

impl SpanExporter for FailingSpanExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(OTelSdkError::InternalFailure(
            "collector unreachable".to_owned(),
        ))
    }
}

/// The first export never returns (a collector that accepts the connection
/// and then says nothing): the batch processor's worker is stuck for good.
#[derive(Debug, Clone, Default)]
struct HangingSpanExporter {
    calls: Arc<AtomicUsize>,
}

impl SpanExporter for HangingSpanExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::pending().await
    }
}

/// A metric exporter that fails every export, or hangs in it.
#[derive(Debug, Clone)]
struct BadMetricExporter {
    calls: Arc<AtomicUsize>,
    hang: bool,
}

impl PushMetricExporter for BadMetricExporter {
    async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(OTelSdkError::InternalFailure(
            "metrics backend down".to_owned(),
        ))
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// What a run behind bad exporters reports back.
#[derive(Debug)]
struct Run {
    invoked: usize,
    failed: Vec<String>,
    recorded: u64,
    span_exports: usize,
    metric_exports: usize,
}

/// Invocations per exporter-fault run (after a warm-up that makes sure the
/// exporters have been called, so a hanging one is already stuck).
const INVOKES: usize = 3_000;

/// Generous: only a guard against a hang (a healthy run takes a second or two).
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Runs the kernel on its own thread with `spans` behind a batch span
/// processor (small queue, short delay) and `metrics` behind a periodic reader
/// (10 ms interval). The caller waits on a channel with [`HANG_GUARD`]: a
/// blocked thread cannot fool that guard the way it could a timeout future
/// polled on the blocked thread. The thread never joins: dropping providers
/// whose exporter hangs may block it, after the result is sent.
fn run_behind<S>(spans: S, span_calls: Arc<AtomicUsize>, metrics: BadMetricExporter) -> Run
where
    S: SpanExporter + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let metric_calls = Arc::clone(&metrics.calls);
        let tracer_provider = SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(spans)
                    .with_batch_config(
                        BatchConfigBuilder::default()
                            .with_max_queue_size(256)
                            .with_max_export_batch_size(32)
                            .with_scheduled_delay(Duration::from_millis(5))
                            .build(),
                    )
                    .build(),
            )
            .build();
        let meter_provider = SdkMeterProvider::builder()
            .with_reader(
                PeriodicReader::builder(metrics)
                    .with_interval(Duration::from_millis(10))
                    .build(),
            )
            .build();
        let w = World::new();
        let hook =
            instrument_kernel_with(&w.kernel, Telemetry::new(&tracer_provider, &meter_provider));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let token = w.token(OK);
        let mut failed = Vec::new();
        let mut invoked = 0;
        runtime.block_on(async {
            let invoke = |i: usize| {
                let session = format!("s-{}", i % 8);
                let kernel = Arc::clone(&w.kernel);
                let alice = w.alice.clone();
                let token = token.clone();
                async move {
                    kernel
                        .invoke_with(
                            InvokeRequest::new(&token, &alice)
                                .with_mode(ResponseMode::Table)
                                .with_session(&session),
                        )
                        .await
                }
            };
            // Warm up until both exporters have been called at least once.
            let mut i = 0;
            while span_calls.load(Ordering::SeqCst) == 0 || metric_calls.load(Ordering::SeqCst) == 0
            {
                if let Err(e) = invoke(i).await {
                    failed.push(e.to_string());
                }
                invoked += 1;
                i += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for i in 0..INVOKES {
                if let Err(e) = invoke(i).await {
                    failed.push(e.to_string());
                }
                invoked += 1;
            }
        });
        let run = Run {
            invoked,
            failed,
            recorded: w.kernel.traces().recorded(),
            span_exports: span_calls.load(Ordering::SeqCst),
            metric_exports: metric_calls.load(Ordering::SeqCst),
        };
        let _ = tx.send(run);
        drop(hook);
    });
    rx.recv_timeout(HANG_GUARD)
        .expect("invokes hung behind a faulty exporter")
}

fn assert_unaffected(run: &Run) {
    assert!(run.failed.is_empty(), "{:?}", run.failed);
    assert!(run.invoked > INVOKES);
    // The audit record never drops, whatever the exporters do.
    assert_eq!(run.recorded, run.invoked as u64);
    assert!(run.span_exports > 0 && run.metric_exports > 0, "{run:?}");
}

#[test]
fn exporters_that_fail_change_no_result() {
    let spans = FailingSpanExporter::default();
    let calls = Arc::clone(&spans.calls);
    let metrics = BadMetricExporter {
        calls: Arc::default(),
        hang: false,
    };
    let run = run_behind(spans, calls, metrics);
    assert_unaffected(&run);
    // The failing exporter kept being called (batches kept flowing to it).
    assert!(run.span_exports > 1, "{run:?}");
}

#[test]
fn exporters_that_hang_block_no_invoke() {
    let spans = HangingSpanExporter::default();
    let calls = Arc::clone(&spans.calls);
    let metrics = BadMetricExporter {
        calls: Arc::default(),
        hang: true,
    };
    let run = run_behind(spans, calls, metrics);
    assert_unaffected(&run);
    // Each stuck in its first export for good: everything since was dropped
    // by the full queue, not waited for.
    assert_eq!((run.span_exports, run.metric_exports), (1, 1), "{run:?}");
}
