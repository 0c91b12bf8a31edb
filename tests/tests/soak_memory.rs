//! Bounded memory under load: 1 000 000 invokes (`SOAK_INVOKES`) through the
//! instrumented kernel, with the SDK's batch span processor and periodic
//! metric reader in front of exporters that discard. Resident memory
//! (`VmRSS` from `/proc/self/status`) is read after a warm-up that fills every
//! bounded store past its cap — handles (10 000), traces (10 000), live
//! sessions (10 000) — and at the end; it must stay within 10 % (plus 8 MiB of
//! absolute slack for allocator noise: arenas, thread caches, the exporter's
//! batches in flight).
//!
//! The load mixes the paths: summary, table and handle-only frames, a new
//! session every two invokes (100 000s of distinct sessions, the budget gauge
//! reporting the live ones), expansions, and forged tokens for distinct
//! unknown capability ids.
//!
//! Ignored by default (it is long); `scripts/test-all.sh` runs it in release:
//! `cargo test --release -p agent-kernel-tests --features otel --test soak_memory -- --ignored --nocapture`.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_kernel::otel::instrument_kernel_with;
use agent_kernel::*;
use agent_kernel_otel::Telemetry;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use serde_json::json;

const LIST: &str = "soak.list";

/// Invokes before the first reading: past every store's cap (10 000 handles,
/// 10 000 traces, 10 000 live sessions at two invokes per session).
const WARM_UP: usize = 60_000;

/// Allowed growth after warm-up: 10 % plus this absolute slack.
const SLACK_KIB: u64 = 8 * 1024;

/// Drops every batch.
#[derive(Debug, Default)]
struct DiscardSpans;

impl SpanExporter for DiscardSpans {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        drop(batch);
        Ok(())
    }
}

/// Drops every collection.
#[derive(Debug, Default)]
struct DiscardMetrics;

impl PushMetricExporter for DiscardMetrics {
    async fn export(&self, _metrics: &ResourceMetrics) -> OTelSdkResult {
        Ok(())
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

/// Resident set size in KiB (`VmRSS` of `/proc/self/status`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

fn invokes_from_env() -> usize {
    std::env::var("SOAK_INVOKES")
        .ok()
        .map(|v| v.replace('_', ""))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn kernel() -> Kernel {
    let mut registry = CapabilityRegistry::new();
    registry
        .register(
            Capability::new(LIST, "List", "List records", SafetyClass::Read)
                .with_sensitivity(SensitivityTag::Pii)
                .with_allowed_fields(["id", "customer", "amount", "status"]),
        )
        .unwrap();
    let rows = Arc::new(json!([
        {"id": "R-1", "customer": "Ann <ann@example.com>", "amount": 10.5, "status": "paid"},
        {"id": "R-2", "customer": "Bob", "amount": 20.0, "status": "open", "card": "4111 1111 1111 1111"},
        {"id": "R-3", "customer": "Cy", "amount": 30.0, "status": "paid"},
    ]));
    Kernel::builder(registry)
        .secret("soak-test-secret-0123456789abcdef")
        .policy(
            DefaultPolicyEngine::builder()
                .rate_limit(SafetyClass::Read, u64::MAX / 4, Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .router(StaticRouter::new().with_route(LIST, ["memory"]))
        .driver(
            InMemoryDriver::new("memory")
                .with_handler(LIST, move |_ctx| Ok::<_, String>(Arc::clone(&rows))),
        )
        .build()
        .unwrap()
}

/// One invoke of the mix; returns whether it succeeded.
async fn one(
    kernel: &Kernel,
    token: &CapabilityToken,
    forged: &mut CapabilityToken,
    alice: &Principal,
    i: usize,
) -> bool {
    if i % 50 == 49 {
        forged.capability_id = format!("unknown.{i}");
        let err = kernel
            .invoke(forged, alice, Args::new(), ResponseMode::Summary)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "token_invalid");
        return false;
    }
    let mode = match i % 3 {
        0 => ResponseMode::Summary,
        1 => ResponseMode::Table,
        _ => ResponseMode::HandleOnly,
    };
    let session = format!("session-{}", i / 2);
    let frame = kernel
        .invoke_with(
            InvokeRequest::new(token, alice)
                .with_mode(mode)
                .with_session(&session),
        )
        .await
        .unwrap();
    if i % 100 == 1 {
        kernel
            .expand(
                frame.handle.as_ref().unwrap(),
                &ExpandQuery::default(),
                alice,
            )
            .unwrap();
    }
    true
}

#[test]
#[ignore = "soak: run by scripts/test-all.sh"]
fn resident_memory_stays_flat_over_a_million_invokes() {
    let invokes = invokes_from_env();
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(DiscardSpans).build())
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(DiscardMetrics)
                .with_interval(Duration::from_millis(500))
                .build(),
        )
        .build();
    let kernel = kernel();
    let _hook = instrument_kernel_with(&kernel, Telemetry::new(&tracer_provider, &meter_provider));
    let alice = Principal::new("alice")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");
    let request = kernel.request_capabilities("list records").remove(0);
    let token = kernel.get_token(&request, &alice, "").unwrap();
    let mut forged = token.clone();
    forged.signature = "00".repeat(32);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let started = Instant::now();
    let mut ok = 0usize;
    runtime.block_on(async {
        for i in 0..WARM_UP {
            ok += usize::from(one(&kernel, &token, &mut forged, &alice, i).await);
        }
    });
    // Every bounded store is at its cap before the first reading.
    assert_eq!(kernel.handles().len(), kernel.handles().max_entries());
    assert_eq!(kernel.traces().len(), kernel.traces().capacity());
    assert_eq!(
        kernel.budget().sessions().len(),
        kernel.budget().config().max_sessions
    );
    let warm = rss_kib();
    let warm_elapsed = started.elapsed();

    let mut samples = Vec::new();
    runtime.block_on(async {
        for i in WARM_UP..WARM_UP + invokes {
            ok += usize::from(one(&kernel, &token, &mut forged, &alice, i).await);
            if (i - WARM_UP + 1) % (invokes / 10).max(1) == 0 {
                samples.push(rss_kib());
            }
        }
    });
    let end = rss_kib();
    let elapsed = started.elapsed() - warm_elapsed;
    let limit = warm + warm / 10 + SLACK_KIB;
    let rate = invokes as f64 / elapsed.as_secs_f64();
    println!(
        "soak: {invokes} invokes after a {WARM_UP}-invoke warm-up ({warm_elapsed:.1?}) in {elapsed:.1?} \
         ({rate:.0} invokes/s, {ok} succeeded); VmRSS after warm-up {warm} KiB, at the end {end} KiB \
         ({:+.1} %), limit {limit} KiB; samples (KiB): {samples:?}",
        (end as f64 - warm as f64) * 100.0 / warm as f64
    );
    assert!(
        end <= limit,
        "resident memory grew from {warm} KiB to {end} KiB (limit {limit} KiB)"
    );
    // Every completed invocation has its audit record (forged tokens are
    // refused before one exists).
    assert_eq!(kernel.traces().recorded(), ok as u64);
}
