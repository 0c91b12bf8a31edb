//! Macro overhead, side by side in one run: one 4-span tree shaped like an
//! invoke (root with 6 attributes — 4 run-time `String`s and 2 `&'static str`
//! — and three sequential children with 0, 1 and 2 `&'static str`
//! attributes), as
//!
//! 1. no instrumentation;
//! 2. `#[kernel_span]` with telemetry disabled at run time;
//! 3. hand-written OpenTelemetry calls, no provider installed;
//! 4. hand-written OpenTelemetry calls, SDK provider (batch processor,
//!    discarding exporter) — the floor;
//! 5. `#[kernel_span]` with the same provider (global binding);
//! 6. `tracing` `#[instrument]` + `tracing-opentelemetry` with the same provider
//!    (layer extras off: no location, thread, level, target, busy/idle times);
//! 7. `fastrace` `#[trace]` with its OpenTelemetry reporter and the same exporter.
//!
//! Trees are timed in chunks of 256 (1 024 spans, under the batch queue's
//! 2 048); the processor / reporter is flushed between chunks outside the
//! timed region, and every SDK variant checks afterwards that each span it
//! created reached the exporter (none dropped).
//!
//! Run: `cargo bench -p agent-kernel-otel --features otel --bench macro_overhead`
//!
//! Allocations per tree are counted by a global allocator (`stats_alloc`) and
//! printed; the disabled variant asserts none. Instruction counts: with
//! `AK_COUNT=<variant>:<trees>` (variant `none`, `disabled`, `hand` or
//! `kernel_span`) the binary runs only that many trees of that variant
//! against the SDK pipeline, in chunks through `count_chunk`, for
//! `valgrind --tool=callgrind --toggle-collect='*count_chunk*'`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOC: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

/// The run-time values of one invoke.
pub struct Req {
    principal_id: String,
    capability_id: String,
    action_id: String,
    session_id: String,
}

fn req() -> Req {
    Req {
        principal_id: "principal-7f3a".into(),
        capability_id: "billing.invoices.list".into(),
        action_id: "act-0000000000000001".into(),
        session_id: "sess-42".into(),
    }
}

const CHUNK: u64 = 256;
const SPANS_PER_TREE: u64 = 4;

/// Counts and drops everything.
#[derive(Debug, Clone, Default)]
struct Discard(Arc<AtomicU64>);

impl SpanExporter for Discard {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::future::ready(Ok(()))
    }
}

mod plain {
    use super::{Req, black_box};

    #[inline(never)]
    pub fn invoke(req: &Req, safety_class: &'static str, response_mode: &'static str) -> usize {
        black_box((req, safety_class, response_mode));
        policy() + driver("http") + firewall("summary", "table")
    }
    #[inline(never)]
    fn policy() -> usize {
        black_box(1)
    }
    #[inline(never)]
    fn driver(driver_id: &'static str) -> usize {
        black_box(driver_id).len()
    }
    #[inline(never)]
    fn firewall(requested: &'static str, effective: &'static str) -> usize {
        black_box(requested).len() + black_box(effective).len()
    }
}

mod generated {
    use super::{Req, black_box};
    use agent_kernel_otel::kernel_span;

    #[kernel_span(
        name = "agent_kernel.invoke",
        attrs(
            principal_id = req.principal_id,
            capability_id = req.capability_id,
            action_id = req.action_id,
            session_id = req.session_id,
            safety_class,
            response_mode,
        )
    )]
    #[inline(never)]
    pub fn invoke(req: &Req, safety_class: &'static str, response_mode: &'static str) -> usize {
        black_box((req, safety_class, response_mode));
        policy() + driver("http") + firewall("summary", "table")
    }
    #[kernel_span(name = "agent_kernel.policy.evaluate")]
    #[inline(never)]
    fn policy() -> usize {
        black_box(1)
    }
    #[kernel_span(name = "agent_kernel.driver.execute", attrs(driver_id))]
    #[inline(never)]
    fn driver(driver_id: &'static str) -> usize {
        black_box(driver_id).len()
    }
    #[kernel_span(name = "agent_kernel.firewall.apply", attrs(requested, effective))]
    #[inline(never)]
    fn firewall(requested: &'static str, effective: &'static str) -> usize {
        black_box(requested).len() + black_box(effective).len()
    }
}

/// What a careful person writes by hand against the OpenTelemetry API.
mod hand {
    use super::{Req, black_box};
    use agent_kernel_otel::opentelemetry::global::BoxedTracer;
    use agent_kernel_otel::opentelemetry::trace::{SpanKind, TraceContextExt, Tracer};
    use agent_kernel_otel::opentelemetry::{Context, KeyValue};

    #[inline(never)]
    pub fn invoke(
        t: &BoxedTracer,
        req: &Req,
        safety_class: &'static str,
        response_mode: &'static str,
    ) -> usize {
        let span = t
            .span_builder("agent_kernel.invoke")
            .with_kind(SpanKind::Internal)
            .with_attributes(vec![
                KeyValue::new("agent_kernel.principal_id", req.principal_id.clone()),
                KeyValue::new("agent_kernel.capability_id", req.capability_id.clone()),
                KeyValue::new("agent_kernel.action_id", req.action_id.clone()),
                KeyValue::new("agent_kernel.session_id", req.session_id.clone()),
                KeyValue::new("agent_kernel.safety_class", safety_class),
                KeyValue::new("agent_kernel.response_mode", response_mode),
            ])
            .start(t);
        let _guard = Context::current_with_span(span).attach();
        black_box((req, safety_class, response_mode));
        policy(t) + driver(t, "http") + firewall(t, "summary", "table")
    }
    #[inline(never)]
    fn policy(t: &BoxedTracer) -> usize {
        let span = t
            .span_builder("agent_kernel.policy.evaluate")
            .with_kind(SpanKind::Internal)
            .start(t);
        let _guard = Context::current_with_span(span).attach();
        black_box(1)
    }
    #[inline(never)]
    fn driver(t: &BoxedTracer, driver_id: &'static str) -> usize {
        let span = t
            .span_builder("agent_kernel.driver.execute")
            .with_kind(SpanKind::Internal)
            .with_attributes(vec![KeyValue::new("agent_kernel.driver_id", driver_id)])
            .start(t);
        let _guard = Context::current_with_span(span).attach();
        black_box(driver_id).len()
    }
    #[inline(never)]
    fn firewall(t: &BoxedTracer, requested: &'static str, effective: &'static str) -> usize {
        let span = t
            .span_builder("agent_kernel.firewall.apply")
            .with_kind(SpanKind::Internal)
            .with_attributes(vec![
                KeyValue::new("agent_kernel.requested", requested),
                KeyValue::new("agent_kernel.effective", effective),
            ])
            .start(t);
        let _guard = Context::current_with_span(span).attach();
        black_box(requested).len() + black_box(effective).len()
    }
}

mod tracing_attrs {
    use super::{Req, black_box};

    #[tracing::instrument(
        name = "agent_kernel.invoke",
        skip_all,
        fields(
            agent_kernel.principal_id = %req.principal_id,
            agent_kernel.capability_id = %req.capability_id,
            agent_kernel.action_id = %req.action_id,
            agent_kernel.session_id = %req.session_id,
            agent_kernel.safety_class = safety_class,
            agent_kernel.response_mode = response_mode,
        )
    )]
    #[inline(never)]
    pub fn invoke(req: &Req, safety_class: &'static str, response_mode: &'static str) -> usize {
        black_box((req, safety_class, response_mode));
        policy() + driver("http") + firewall("summary", "table")
    }
    #[tracing::instrument(name = "agent_kernel.policy.evaluate", skip_all)]
    #[inline(never)]
    fn policy() -> usize {
        black_box(1)
    }
    #[tracing::instrument(name = "agent_kernel.driver.execute", skip_all, fields(agent_kernel.driver_id = driver_id))]
    #[inline(never)]
    fn driver(driver_id: &'static str) -> usize {
        black_box(driver_id).len()
    }
    #[tracing::instrument(
        name = "agent_kernel.firewall.apply",
        skip_all,
        fields(agent_kernel.requested = requested, agent_kernel.effective = effective)
    )]
    #[inline(never)]
    fn firewall(requested: &'static str, effective: &'static str) -> usize {
        black_box(requested).len() + black_box(effective).len()
    }
}

mod fastrace_attrs {
    use super::{Req, black_box};
    use fastrace::prelude::*;

    #[inline(never)]
    pub fn invoke(req: &Req, safety_class: &'static str, response_mode: &'static str) -> usize {
        let root = Span::root("agent_kernel.invoke", SpanContext::random()).with_properties(|| {
            [
                ("agent_kernel.principal_id", req.principal_id.clone().into()),
                (
                    "agent_kernel.capability_id",
                    req.capability_id.clone().into(),
                ),
                ("agent_kernel.action_id", req.action_id.clone().into()),
                ("agent_kernel.session_id", req.session_id.clone().into()),
                (
                    "agent_kernel.safety_class",
                    std::borrow::Cow::Borrowed(safety_class),
                ),
                (
                    "agent_kernel.response_mode",
                    std::borrow::Cow::Borrowed(response_mode),
                ),
            ]
        });
        let _guard = root.set_local_parent();
        black_box((req, safety_class, response_mode));
        policy() + driver("http") + firewall("summary", "table")
    }
    #[trace(name = "agent_kernel.policy.evaluate")]
    #[inline(never)]
    fn policy() -> usize {
        black_box(1)
    }
    #[trace(name = "agent_kernel.driver.execute")]
    #[inline(never)]
    fn driver(driver_id: &'static str) -> usize {
        LocalSpan::add_property(|| ("agent_kernel.driver_id", driver_id));
        black_box(driver_id).len()
    }
    #[trace(name = "agent_kernel.firewall.apply")]
    #[inline(never)]
    fn firewall(requested: &'static str, effective: &'static str) -> usize {
        LocalSpan::add_properties(|| {
            [
                ("agent_kernel.requested", requested),
                ("agent_kernel.effective", effective),
            ]
        });
        black_box(requested).len() + black_box(effective).len()
    }
}

/// Times `f` over `iters` trees in chunks, calling `flush` between chunks
/// outside the timed region; counts the trees run into `trees`.
fn chunked(
    iters: u64,
    trees: &AtomicU64,
    mut f: impl FnMut() -> usize,
    mut flush: impl FnMut(),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(CHUNK);
        let start = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        total += start.elapsed();
        flush();
        done += n;
    }
    trees.fetch_add(iters, Ordering::Relaxed);
    total
}

fn check_exported(name: &str, trees: &AtomicU64, exported: &AtomicU64) {
    let created = trees.load(Ordering::Relaxed) * SPANS_PER_TREE;
    let got = exported.load(Ordering::Relaxed);
    eprintln!("{name}: spans created {created}, exported {got}");
    assert_eq!(created, got, "{name}: spans were dropped");
}

fn bench(c: &mut Criterion) {
    let r = req();
    let mut g = c.benchmark_group("invoke_tree_sync");

    g.bench_function("1_none", |b| {
        b.iter(|| plain::invoke(black_box(&r), "read", "summary"))
    });

    agent_kernel_otel::disable();
    g.bench_function("2_kernel_span_disabled", |b| {
        b.iter(|| generated::invoke(black_box(&r), "read", "summary"))
    });
    let allocations = |f: &dyn Fn() -> usize| {
        let region = Region::new(ALLOC);
        for _ in 0..10_000 {
            black_box(f());
        }
        region.change().allocations as f64 / 10_000.0
    };
    let none = allocations(&|| plain::invoke(black_box(&r), "read", "summary"));
    let disabled = allocations(&|| generated::invoke(black_box(&r), "read", "summary"));
    eprintln!("allocations per tree: none {none}, kernel_span disabled {disabled}");
    assert_eq!(disabled, 0.0, "the disabled path allocates");

    // No provider installed: the global tracer is the no-op.
    let noop_tracer = opentelemetry::global::tracer("agent_kernel");
    g.bench_function("3_hand_otel_no_provider", |b| {
        b.iter(|| hand::invoke(&noop_tracer, black_box(&r), "read", "summary"))
    });

    // The same SDK pipeline for every remaining variant: batch processor,
    // discarding (counting) exporter.
    let exported = Discard::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exported.clone()).build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    agent_kernel_otel::enable();
    let flush = || {
        let _ = provider.force_flush();
    };

    let tracer = opentelemetry::global::tracer_with_scope(
        opentelemetry::InstrumentationScope::builder("agent_kernel").build(),
    );
    let trees = AtomicU64::new(0);
    exported.0.store(0, Ordering::Relaxed);
    g.bench_function("4_hand_otel_sdk", |b| {
        b.iter_custom(|n| {
            chunked(
                n,
                &trees,
                || hand::invoke(&tracer, black_box(&r), "read", "summary"),
                flush,
            )
        })
    });
    check_exported("4_hand_otel_sdk", &trees, &exported.0);

    let trees = AtomicU64::new(0);
    exported.0.store(0, Ordering::Relaxed);
    let hand_allocs = allocations(&|| hand::invoke(&tracer, black_box(&r), "read", "summary"));
    flush();
    let gen_allocs = allocations(&|| generated::invoke(black_box(&r), "read", "summary"));
    flush();
    eprintln!("allocations per tree, SDK on: hand {hand_allocs}, kernel_span {gen_allocs}");
    exported.0.store(0, Ordering::Relaxed);
    g.bench_function("5_kernel_span_sdk", |b| {
        b.iter_custom(|n| {
            chunked(
                n,
                &trees,
                || generated::invoke(black_box(&r), "read", "summary"),
                flush,
            )
        })
    });
    check_exported("5_kernel_span_sdk", &trees, &exported.0);

    {
        use tracing_subscriber::layer::SubscriberExt;
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("agent_kernel"))
            .with_location(false)
            .with_threads(false)
            .with_level(false)
            .with_target(false)
            .with_tracked_inactivity(false);
        let subscriber = tracing_subscriber::registry().with(layer);
        let trees = AtomicU64::new(0);
        exported.0.store(0, Ordering::Relaxed);
        tracing::subscriber::with_default(subscriber, || {
            g.bench_function("6_tracing_otel_sdk", |b| {
                b.iter_custom(|n| {
                    chunked(
                        n,
                        &trees,
                        || tracing_attrs::invoke(black_box(&r), "read", "summary"),
                        flush,
                    )
                })
            });
        });
        check_exported("6_tracing_otel_sdk", &trees, &exported.0);
    }

    {
        let fr_exported = Discard::default();
        fastrace::set_reporter(
            fastrace_opentelemetry::OpenTelemetryReporter::new(
                fr_exported.clone(),
                std::borrow::Cow::Owned(opentelemetry_sdk::Resource::builder_empty().build()),
                opentelemetry::InstrumentationScope::builder("agent_kernel").build(),
            ),
            fastrace::collector::Config::default(),
        );
        let trees = AtomicU64::new(0);
        g.bench_function("7_fastrace_reporter", |b| {
            b.iter_custom(|n| {
                chunked(
                    n,
                    &trees,
                    || fastrace_attrs::invoke(black_box(&r), "read", "summary"),
                    fastrace::flush,
                )
            })
        });
        fastrace::flush();
        check_exported("7_fastrace_reporter", &trees, &fr_exported.0);
    }
    g.finish();

    // Interleaved A/B: on a shared machine, load changes between criterion's
    // sequential groups move the ratios; alternating chunks of each variant
    // makes both see the same load. Medians of per-chunk ns per tree.
    {
        use tracing_subscriber::layer::SubscriberExt;
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("agent_kernel"))
            .with_location(false)
            .with_threads(false)
            .with_level(false)
            .with_target(false)
            .with_tracked_inactivity(false);
        let subscriber = tracing_subscriber::registry().with(layer);
        let per_tree = |f: &mut dyn FnMut() -> usize| {
            let start = Instant::now();
            for _ in 0..CHUNK {
                black_box(f());
            }
            let ns = start.elapsed().as_nanos() as f64 / CHUNK as f64;
            let _ = provider.force_flush();
            ns
        };
        let (mut hand_ns, mut gen_ns, mut tr_ns) = (Vec::new(), Vec::new(), Vec::new());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..400 {
                hand_ns.push(per_tree(&mut || {
                    hand::invoke(&tracer, black_box(&r), "read", "summary")
                }));
                gen_ns.push(per_tree(&mut || {
                    generated::invoke(black_box(&r), "read", "summary")
                }));
                tr_ns.push(per_tree(&mut || {
                    tracing_attrs::invoke(black_box(&r), "read", "summary")
                }));
            }
        });
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (h, k, t) = (
            median(&mut hand_ns),
            median(&mut gen_ns),
            median(&mut tr_ns),
        );
        eprintln!(
            "interleaved medians (ns/tree): hand {h:.0}, kernel_span {k:.0}, tracing {t:.0}; kernel_span/hand {:.2}, kernel_span/tracing {:.2}",
            k / h,
            k / t
        );
    }
    let _ = provider.shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}

/// One chunk of trees of one variant: what callgrind counts.
#[inline(never)]
fn count_chunk(variant: &str, r: &Req, tracer: &opentelemetry::global::BoxedTracer) {
    for _ in 0..CHUNK {
        black_box(match variant {
            "none" => plain::invoke(black_box(r), "read", "summary"),
            "hand" => hand::invoke(tracer, black_box(r), "read", "summary"),
            _ => generated::invoke(black_box(r), "read", "summary"),
        });
    }
}

/// `AK_COUNT=<variant>:<trees>`: that many trees against the SDK pipeline
/// (`disabled`: telemetry off at run time), flushed between chunks.
fn count(spec: &str) {
    let (variant, trees) = spec.split_once(':').expect("AK_COUNT=<variant>:<trees>");
    let trees: u64 = trees.parse().expect("a number of trees");
    let exported = Discard::default();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exported.clone()).build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    if variant == "disabled" {
        agent_kernel_otel::disable();
    } else {
        agent_kernel_otel::enable();
    }
    let tracer = opentelemetry::global::tracer_with_scope(
        opentelemetry::InstrumentationScope::builder("agent_kernel").build(),
    );
    let r = req();
    for _ in 0..trees / CHUNK {
        count_chunk(variant, &r, &tracer);
        let _ = provider.force_flush();
    }
    let _ = provider.shutdown();
    eprintln!(
        "{variant}: {trees} trees, {} spans exported",
        exported.0.load(Ordering::Relaxed)
    );
}

fn main() {
    if let Ok(spec) = std::env::var("AK_COUNT") {
        count(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
