//! Kernel instrumentation overhead (issue 5, `docs/benchmarks.md`): one
//! `invoke` on the billing workload (200 invoices, summary) and on a minimal
//! capability (one row, handle_only), in three configurations:
//!
//! - `sdk` (build with `--features otel-sdk`, an application's build: the
//!   SDK's pre-bound instruments are on; `--features otel` measures the plain
//!   API path of a library-only build): `instrument_kernel_with` an SDK
//!   tracer provider with a `BatchSpanProcessor` and a discarding, counting
//!   exporter, and an SDK meter provider with a periodic reader (60 s
//!   interval, in-memory exporter: the metrics are aggregated on the call
//!   path, exported at most once during a run). Timed in chunks of 256 invokes (1 024 spans,
//!   under the processor's 2 048-span queue); the processor is flushed between
//!   chunks outside the timed region, and at the end the bench asserts that
//!   every span created was exported (none dropped).
//! - `disabled` (same build): telemetry switched off at run time
//!   (`agent_kernel_otel::disable()`, the kernel not instrumented).
//! - `feature_off` (build without the feature): the same code, no telemetry
//!   compiled in.
//!
//! ```text
//! cargo bench -p agent-kernel --bench instrumented --features otel-sdk
//! cargo bench -p agent-kernel --bench instrumented
//! ```
//! Each sample runs on a freshly built kernel (built outside the timed
//! region), as in `benches/kernel.rs`. After criterion, an interleaved check
//! alternates rounds of the configurations of this build (median per round),
//! which is robust to load from other processes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod billing_workload;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_workload::{Workload, build, dataset, invoke_args};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

const CHUNK: u64 = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    #[cfg(feature = "otel")]
    Sdk,
    #[cfg(feature = "otel")]
    Disabled,
    #[cfg(not(feature = "otel"))]
    FeatureOff,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "otel")]
            Config::Sdk => "sdk",
            #[cfg(feature = "otel")]
            Config::Disabled => "disabled",
            #[cfg(not(feature = "otel"))]
            Config::FeatureOff => "feature_off",
        }
    }

    fn all() -> &'static [Config] {
        #[cfg(feature = "otel")]
        {
            &[Config::Disabled, Config::Sdk]
        }
        #[cfg(not(feature = "otel"))]
        {
            &[Config::FeatureOff]
        }
    }
}

#[cfg(feature = "otel")]
mod sdk {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use agent_kernel_otel::Telemetry;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};

    /// Counts and drops everything.
    #[derive(Debug, Clone, Default)]
    pub struct Discard(pub Arc<AtomicU64>);

    impl SpanExporter for Discard {
        fn export(
            &self,
            batch: Vec<SpanData>,
        ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
            std::future::ready(Ok(()))
        }
    }

    /// One SDK pipeline for the whole run.
    pub struct Pipeline {
        pub tracer_provider: SdkTracerProvider,
        pub _meter_provider: SdkMeterProvider,
        pub telemetry: Telemetry,
        pub exported: Discard,
        /// Spans the bench expects to have been created.
        pub created: AtomicU64,
    }

    impl Pipeline {
        pub fn new() -> Pipeline {
            let exported = Discard::default();
            let tracer_provider = SdkTracerProvider::builder()
                .with_span_processor(BatchSpanProcessor::builder(exported.clone()).build())
                .build();
            let meter_provider = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
                .build();
            let telemetry = Telemetry::new(&tracer_provider, &meter_provider);
            Pipeline {
                tracer_provider,
                _meter_provider: meter_provider,
                telemetry,
                exported,
                created: AtomicU64::new(0),
            }
        }

        pub fn flush(&self) {
            let _ = self.tracer_provider.force_flush();
        }

        /// Panics if a span was dropped.
        pub fn check(&self) {
            self.flush();
            let created = self.created.load(Ordering::Relaxed);
            let exported = self.exported.0.load(Ordering::Relaxed);
            assert_eq!(exported, created, "spans dropped by the batch processor");
            println!("sdk pipeline: {created} spans created, {exported} exported, none dropped");
        }
    }
}

struct Env {
    rt: tokio::runtime::Runtime,
    data: Arc<Value>,
    #[cfg(feature = "otel")]
    pipeline: sdk::Pipeline,
}

/// Times `iters` invokes of `workload` under `config` on a fresh kernel.
fn time_invokes(env: &Env, workload: Workload, config: Config, iters: u64) -> Duration {
    let (kernel, principal, token) = build(workload, &env.data);
    #[cfg(feature = "otel")]
    let _hook = match config {
        Config::Sdk => Some(agent_kernel::otel::instrument_kernel_with(
            &kernel,
            env.pipeline.telemetry.clone(),
        )),
        Config::Disabled => {
            agent_kernel_otel::disable();
            None
        }
    };
    #[cfg(not(feature = "otel"))]
    let _ = config;
    let args = invoke_args(workload);
    let mode = workload.mode();
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let start = Instant::now();
        env.rt.block_on(async {
            for _ in 0..n {
                let frame = kernel
                    .invoke(&token, &principal, args.clone(), mode)
                    .await
                    .unwrap();
                black_box(frame);
            }
        });
        total += start.elapsed();
        done += n;
        #[cfg(feature = "otel")]
        if config == Config::Sdk {
            env.pipeline
                .created
                .fetch_add(4 * n, std::sync::atomic::Ordering::Relaxed);
            env.pipeline.flush();
        }
    }
    total
}

fn benches(c: &mut Criterion) {
    let env = Env {
        rt: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
        data: dataset(),
        #[cfg(feature = "otel")]
        pipeline: sdk::Pipeline::new(),
    };

    for workload in [Workload::Billing, Workload::Minimal] {
        let mut group = c.benchmark_group(format!("instrumented/{}", workload.name()));
        for &config in Config::all() {
            group.bench_function(config.name(), |b| {
                b.iter_custom(|iters| time_invokes(&env, workload, config, iters))
            });
        }
        group.finish();
    }

    // Interleaved: rounds of each configuration in turn, median per round.
    let rounds = 15;
    for workload in [Workload::Billing, Workload::Minimal] {
        let per_round: u64 = match workload {
            Workload::Billing => 512,
            Workload::Minimal => 4_096,
        };
        let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); Config::all().len()];
        for _ in 0..rounds {
            for (i, &config) in Config::all().iter().enumerate() {
                times[i].push(time_invokes(&env, workload, config, per_round) / per_round as u32);
            }
        }
        let medians: Vec<Duration> = times
            .iter_mut()
            .map(|t| {
                t.sort_unstable();
                t[rounds / 2]
            })
            .collect();
        let line: Vec<String> = Config::all()
            .iter()
            .zip(&medians)
            .map(|(c, m)| format!("{} {:.3} µs", c.name(), m.as_secs_f64() * 1e6))
            .collect();
        print!(
            "interleaved instrumented/{} (median of {rounds} rounds of {per_round}): {}",
            workload.name(),
            line.join(", ")
        );
        if medians.len() == 2 {
            print!(
                "; {}/{} = {:.3}",
                Config::all()[1].name(),
                Config::all()[0].name(),
                medians[1].as_secs_f64() / medians[0].as_secs_f64()
            );
        }
        println!();
    }

    #[cfg(feature = "otel")]
    env.pipeline.check();
}

criterion_group!(group, benches);
criterion_main!(group);
