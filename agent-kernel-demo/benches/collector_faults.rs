//! Invoke latency with a failing OTLP collector (issue 7, "Faults";
//! `docs/benchmarks.md`): one instrumented `invoke` of the billing workload
//! (200 invoices, summary; `agent-kernel/benches/billing_workload/`) with the
//! telemetry set up by `agent_kernel_otel::setup::init` (OTLP over HTTP for
//! traces and metrics, batch processor with its bounded queue), against three
//! loopback collectors:
//!
//! - `healthy`: a local collector that reads each request and answers
//!   `200 OK` at once;
//! - `refusing`: a port that was bound then released (connections refused);
//! - `hanging`: a listener that accepts connections and never answers.
//!
//! Each scenario has its own guard (its own providers); the kernel is
//! instrumented with `Telemetry::new` on those providers, so the scenarios
//! share no global. All three pipelines stay alive during the whole run (their
//! export threads compete for the CPU in every measurement alike).
//!
//! ```text
//! cargo bench -p agent-kernel-demo --bench collector_faults
//! ```
//! After criterion, an interleaved check alternates rounds of the three
//! scenarios (median per round) and prints the ratios refusing/healthy and
//! hanging/healthy, then the export counters of each pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../../agent-kernel/benches/billing_workload/mod.rs"]
mod billing_workload;

use std::hint::black_box;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent_kernel_otel::Telemetry;
use agent_kernel_otel::setup::{
    MetricsExporter, TelemetryConfig, TelemetryGuard, TracesExporter, init,
};
use billing_workload::{Workload, build, dataset, invoke_args};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

const WORKLOAD: Workload = Workload::Billing;
/// The exporter's timeout: a hanging collector holds an export this long.
const OTLP_TIMEOUT: Duration = Duration::from_millis(500);

/// A loopback collector thread: `answer` replies `200 OK` to every request,
/// otherwise connections are accepted and held, never answered. Stops on drop.
struct Collector {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    fn start(answer: bool) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let mut workers = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) if answer => {
                        let flag = flag.clone();
                        workers.push(std::thread::spawn(move || serve(stream, &flag)));
                    }
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Collector {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers `200 OK` to each HTTP/1.1 request on a keep-alive connection.
fn serve(mut stream: TcpStream, stop: &AtomicBool) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        // A complete request in the buffer: answer it.
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let body = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = end + 4 + body;
            if buf.len() >= total {
                buf.drain(..total);
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .is_err()
                {
                    return;
                }
                continue;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// A local port nothing listens on (bound, then released): connections are
/// refused.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One scenario: its collector (if any) and its own telemetry pipeline.
struct Scenario {
    name: &'static str,
    _collector: Option<Collector>,
    guard: Option<TelemetryGuard>,
    telemetry: Telemetry,
}

impl Scenario {
    fn new(name: &'static str, addr: SocketAddr, collector: Option<Collector>) -> Scenario {
        let config = TelemetryConfig::builder()
            .service_name("collector-faults-bench")
            .traces_exporters([TracesExporter::Otlp])
            .metrics_exporters([MetricsExporter::Otlp])
            .otlp_endpoint(format!("http://{addr}"))
            .otlp_timeout(OTLP_TIMEOUT)
            .scheduled_delay(Duration::from_millis(100))
            .metric_export_interval(Duration::from_secs(1))
            .build()
            .unwrap();
        let guard = init(config).unwrap();
        let telemetry = Telemetry::new(
            guard.tracer_provider().unwrap(),
            guard.meter_provider().unwrap(),
        );
        Scenario {
            name,
            _collector: collector,
            guard: Some(guard),
            telemetry,
        }
    }
}

struct Env {
    rt: tokio::runtime::Runtime,
    data: Arc<Value>,
    scenarios: Vec<Scenario>,
}

/// Times `iters` instrumented invokes on a fresh kernel (built and
/// instrumented outside the timed region).
fn time_invokes(env: &Env, scenario: &Scenario, iters: u64) -> Duration {
    let (kernel, principal, token) = build(WORKLOAD, &env.data);
    let _hook = agent_kernel::otel::instrument_kernel_with(&kernel, scenario.telemetry.clone());
    let args = invoke_args(WORKLOAD);
    let mode = WORKLOAD.mode();
    let start = Instant::now();
    env.rt.block_on(async {
        for _ in 0..iters {
            let frame = kernel
                .invoke(&token, &principal, args.clone(), mode)
                .await
                .unwrap();
            black_box(frame);
        }
    });
    start.elapsed()
}

/// Criterion's median estimate (ns) of `collector_faults/{id}`, if written.
fn criterion_median(id: &str) -> Option<f64> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            [env!("CARGO_MANIFEST_DIR"), "..", "target"]
                .iter()
                .collect()
        });
    let path = target
        .join("criterion")
        .join("collector_faults")
        .join(id)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn benches(c: &mut Criterion) {
    let healthy = Collector::start(true);
    let hanging = Collector::start(false);
    let healthy_addr = healthy.addr;
    let hanging_addr = hanging.addr;
    let mut env = Env {
        rt: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
        data: dataset(),
        scenarios: vec![
            Scenario::new("healthy", healthy_addr, Some(healthy)),
            Scenario::new("refusing", closed_port(), None),
            Scenario::new("hanging", hanging_addr, Some(hanging)),
        ],
    };

    let mut group = c.benchmark_group("collector_faults");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for scenario in &env.scenarios {
        group.bench_function(scenario.name, |b| {
            b.iter_custom(|iters| time_invokes(&env, scenario, iters))
        });
    }
    group.finish();

    let medians: Vec<Option<f64>> = env
        .scenarios
        .iter()
        .map(|s| criterion_median(s.name))
        .collect();
    if let [Some(h), Some(r), Some(g)] = medians[..] {
        println!(
            "criterion medians: healthy {:.3} µs, refusing {:.3} µs, hanging {:.3} µs; \
             refusing/healthy = {:.3}, hanging/healthy = {:.3}",
            h / 1e3,
            r / 1e3,
            g / 1e3,
            r / h,
            g / h
        );
    }

    // Interleaved: rounds of each scenario in turn, median per round.
    let rounds = 21;
    let per_round: u64 = 512;
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); env.scenarios.len()];
    for _ in 0..rounds {
        for (i, scenario) in env.scenarios.iter().enumerate() {
            times[i].push(time_invokes(&env, scenario, per_round) / per_round as u32);
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_unstable();
            t[rounds / 2].as_secs_f64() * 1e6
        })
        .collect();
    println!(
        "interleaved collector_faults (median of {rounds} rounds of {per_round}): \
         healthy {:.3} µs, refusing {:.3} µs, hanging {:.3} µs; \
         refusing/healthy = {:.3}, hanging/healthy = {:.3}",
        medians[0],
        medians[1],
        medians[2],
        medians[1] / medians[0],
        medians[2] / medians[0]
    );

    for scenario in &mut env.scenarios {
        let guard = scenario.guard.take().unwrap();
        let stats = guard.stats();
        let start = Instant::now();
        let result = guard.shutdown();
        println!(
            "{}: spans queued {}, exported {}, failed {}, dropped/pending {}; \
             shutdown {:?} in {:.0?}",
            scenario.name,
            stats.spans_queued,
            stats.spans_exported,
            stats.spans_failed,
            stats.spans_unaccounted(),
            result.map_err(|e| e.to_string()),
            start.elapsed()
        );
    }
}

criterion_group!(group, benches);
criterion_main!(group);
