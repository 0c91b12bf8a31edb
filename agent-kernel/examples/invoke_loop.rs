//! A fixed number of invocations in one function, for instruction counts under
//! `valgrind --tool=callgrind` (see "Kernel instrumentation overhead" in
//! `docs/benchmarks.md`): built with `--features otel` it is the
//! "disabled at run time" configuration (telemetry never switched on), built
//! without it the "feature off" one; the two builds run the same code.
//!
//! ```text
//! cargo build --profile measure -p agent-kernel --example invoke_loop --features otel-sdk
//! valgrind --tool=callgrind --toggle-collect='invoke_loop::run_loop' \
//!     target/measure/examples/invoke_loop billing 500 sdk
//! ```
//! Arguments: workload (`billing` or `minimal`), iterations (default 2000)
//! and, with `--features otel` or `otel-sdk`, optionally `sdk`: instrument the
//! kernel with an SDK pipeline (batch span processor, discarding exporter;
//! `traces` or `metrics` instead: only that half from the SDK; `simple`: traces
//! through a `SimpleSpanProcessor`).
//! `--toggle-collect` names the function exactly: a pattern such as
//! `*run_loop*` also matches its closure, which toggles collection off again
//! in builds where the closure is not inlined.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../benches/billing_workload/mod.rs"]
mod billing_workload;

use std::hint::black_box;

use agent_kernel::{Args, CapabilityToken, Kernel, Principal, ResponseMode};
use billing_workload::{Workload, build, dataset, invoke_args};

/// The measured region: `n` sequential invokes (callgrind's `--toggle-collect`
/// counts only what runs inside this function).
#[inline(never)]
fn run_loop(
    rt: &tokio::runtime::Runtime,
    kernel: &Kernel,
    token: &CapabilityToken,
    principal: &Principal,
    args: &Args,
    mode: ResponseMode,
    n: u64,
) -> usize {
    rt.block_on(async {
        let mut sum = 0;
        for _ in 0..n {
            let frame = kernel
                .invoke(token, principal, args.clone(), mode)
                .await
                .unwrap();
            sum += black_box(frame).facts.len();
        }
        sum
    })
}

fn main() {
    let mut argv = std::env::args().skip(1);
    let workload = argv
        .next()
        .map(|w| {
            Workload::parse(&w).unwrap_or_else(|| panic!("workload: billing or minimal, not {w}"))
        })
        .unwrap_or(Workload::Billing);
    let n: u64 = argv.next().map_or(2_000, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let data = dataset();
    let (kernel, principal, token) = build(workload, &data);
    let args = invoke_args(workload);
    #[cfg(feature = "otel")]
    let _sdk = argv
        .next()
        .and_then(|pipeline| sdk::instrument(&kernel, &pipeline));
    // Warm-up outside the measured function (lazy statics, first allocations).
    run_loop(&rt, &kernel, &token, &principal, &args, workload.mode(), 16);
    let sum = run_loop(&rt, &kernel, &token, &principal, &args, workload.mode(), n);
    println!(
        "{} invokes of {} (otel feature {}, telemetry enabled: {}); {sum} facts",
        n,
        workload.name(),
        if cfg!(feature = "otel") { "on" } else { "off" },
        agent_kernel_otel::is_enabled()
    );
}

#[cfg(feature = "otel")]
mod sdk {
    use agent_kernel::Kernel;
    use agent_kernel::otel::{Instrumentation, instrument_kernel_with};
    use agent_kernel_otel::Telemetry;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    use opentelemetry_sdk::trace::{
        BatchSpanProcessor, SdkTracerProvider, SimpleSpanProcessor, SpanData, SpanExporter,
    };

    #[derive(Debug)]
    struct Discard;

    impl SpanExporter for Discard {
        fn export(
            &self,
            _batch: Vec<SpanData>,
        ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            std::future::ready(Ok(()))
        }
    }

    /// `sdk`: SDK tracer (batch processor) and meter providers; `traces` /
    /// `metrics`: only that one from the SDK, the other a no-op; `simple`:
    /// traces only, through a `SimpleSpanProcessor` (the same discarding
    /// exporter, called on the invoking thread) — to split the cost.
    pub fn instrument(
        kernel: &Kernel,
        pipeline: &str,
    ) -> Option<(SdkTracerProvider, SdkMeterProvider, Instrumentation)> {
        let tp = if pipeline == "simple" {
            SdkTracerProvider::builder()
                .with_span_processor(SimpleSpanProcessor::new(Discard))
                .build()
        } else {
            SdkTracerProvider::builder()
                .with_span_processor(BatchSpanProcessor::builder(Discard).build())
                .build()
        };
        let mp = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(InMemoryMetricExporter::default()).build())
            .build();
        let noop_traces = agent_kernel_otel::opentelemetry::trace::noop::NoopTracerProvider::new();
        let noop_metrics =
            agent_kernel_otel::opentelemetry::metrics::noop::NoopMeterProvider::new();
        let telemetry = match pipeline {
            "sdk" => Telemetry::new(&tp, &mp),
            "traces" | "simple" => Telemetry::new(&tp, &noop_metrics),
            "metrics" => Telemetry::new(&noop_traces, &mp),
            other => panic!("pipeline: sdk, traces, simple or metrics, not {other}"),
        };
        let hook = instrument_kernel_with(kernel, telemetry);
        Some((tp, mp, hook))
    }
}
