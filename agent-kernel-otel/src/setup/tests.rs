//! Set-up tests that need no backend: faults of the collector, the
//! `/metrics` endpoint, and the errors of `init`.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};

use super::*;

/// A local port nothing listens on (bound, then released).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A collector that accepts connections and never answers; stops on drop
/// (and by itself after 20 s at most).
struct Hanging {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hanging {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            let start = Instant::now();
            while !flag.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
                if let Ok((stream, _)) = listener.accept() {
                    held.push(stream);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn otlp_config(addr: SocketAddr, timeout: Duration) -> TelemetryConfig {
    TelemetryConfig::builder()
        .traces_exporters([TracesExporter::Otlp])
        .metrics_exporters([])
        .otlp_endpoint(format!("http://{addr}"))
        .otlp_timeout(timeout)
        .max_queue_size(64)
        .max_export_batch_size(16)
        .scheduled_delay(Duration::from_millis(20))
        .build()
        .unwrap()
}

/// Ends `n` spans; returns the time it took.
fn end_spans(guard: &TelemetryGuard, n: usize) -> Duration {
    let tracer = guard.tracer_provider().unwrap().tracer("fault-test");
    let start = Instant::now();
    for i in 0..n {
        let mut span = tracer.start(format!("span-{i}"));
        span.end();
    }
    start.elapsed()
}

fn check_faulty_collector(addr: SocketAddr) {
    let timeout = Duration::from_millis(400);
    let guard = init(otlp_config(addr, timeout)).unwrap();
    let spent = end_spans(&guard, 2000);
    // The call path never waits for the collector.
    assert!(
        spent < Duration::from_millis(500),
        "ending spans took {spent:?}"
    );
    let counters = guard.counters.clone();
    let start = Instant::now();
    // An error is expected (the last batch cannot be delivered); a hang is not.
    let _ = guard.shutdown();
    let took = start.elapsed();
    assert!(
        took <= timeout + SHUTDOWN_MARGIN + Duration::from_millis(200),
        "{took:?}"
    );
    let stats = counters.snapshot();
    assert_eq!(stats.spans_queued, 2000, "{stats:?}");
    assert_eq!(stats.spans_exported, 0, "{stats:?}");
    // The bounded queue (64) cannot hold 2000 spans: most were dropped.
    assert!(stats.spans_unaccounted() > 1000, "{stats:?}");
}

#[test]
fn unreachable_collector_costs_bounded_memory_and_no_latency() {
    check_faulty_collector(closed_port());
}

#[test]
fn hanging_collector_costs_bounded_memory_and_no_latency() {
    let hanging = Hanging::start();
    check_faulty_collector(hanging.addr);
    drop(hanging);
}

#[test]
fn shutdown_returns_within_the_timeout_when_the_collector_hangs() {
    let hanging = Hanging::start();
    let timeout = Duration::from_millis(300);
    let guard = init(otlp_config(hanging.addr, timeout)).unwrap();
    end_spans(&guard, 100);
    // Let the worker start an export that will hang.
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    drop(guard); // drop = flush + shutdown
    let took = start.elapsed();
    assert!(
        took <= timeout + SHUTDOWN_MARGIN + Duration::from_millis(200),
        "{took:?}"
    );
}

#[test]
fn unsupported_protocol_is_a_clear_error() {
    let config = TelemetryConfig::builder()
        .traces_exporters([TracesExporter::Otlp])
        .otlp_protocol(OtlpProtocol::Grpc)
        .build()
        .unwrap();
    let err = init(config).unwrap_err();
    #[cfg(feature = "otlp")]
    {
        assert_eq!(err.kind(), "unsupported");
        assert!(err.to_string().contains("grpc"), "{err}");
    }
    #[cfg(not(feature = "otlp"))]
    assert!(err.to_string().contains("`otlp` feature"), "{err}");
}

#[cfg(all(feature = "otlp", not(feature = "otlp-tls")))]
#[test]
fn https_without_tls_feature_is_a_clear_error() {
    let config = TelemetryConfig::builder()
        .traces_exporters([TracesExporter::Otlp])
        .otlp_endpoint("https://collector.example:4318")
        .build()
        .unwrap();
    let err = init(config).unwrap_err();
    assert_eq!(err.kind(), "unsupported");
    assert!(err.to_string().contains("otlp-tls"), "{err}");
}

#[test]
fn console_is_the_default_and_prints_trees() {
    let out = Arc::new(Mutex::new(Vec::<u8>::new()));
    let config = TelemetryConfig::from_lookup(|_| None)
        .unwrap()
        .into_builder()
        .console_writer(out.clone())
        .build()
        .unwrap();
    let guard = init(config).unwrap();
    let tracer = guard.tracer_provider().unwrap().tracer("t");
    tracer.in_span("outer", |_| tracer.in_span("inner", |_| {}));
    guard.shutdown().unwrap();
    let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert!(text.starts_with("outer "), "{text}");
    assert!(text.contains("└─ inner "), "{text}");
}

#[cfg(feature = "prometheus")]
mod prometheus_endpoint {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn serves_metrics_and_stops_on_drop() {
        let config = TelemetryConfig::builder()
            .traces_exporters([])
            .metrics_exporters([MetricsExporter::Prometheus])
            .prometheus_addr("127.0.0.1:0".parse().unwrap())
            .build()
            .unwrap();
        let guard = init(config).unwrap();
        let addr = guard.prometheus_addr().unwrap();
        let meter = guard.meter_provider().unwrap().meter("agent_kernel");
        meter
            .u64_counter("agent_kernel.invocations")
            .with_unit("{invocation}")
            .build()
            .add(2, &[KeyValue::new("status", "success")]);

        let ok = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
        assert!(ok.contains("agent_kernel_invocations_total{"), "{ok}");
        assert!(ok.contains("status=\"success\""), "{ok}");
        let missing = get(
            addr,
            "GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let post = get(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");

        guard.shutdown().unwrap();
        assert!(
            TcpStream::connect(addr).is_err(),
            "still listening after shutdown"
        );
    }

    #[test]
    fn a_taken_address_is_a_clear_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let config = TelemetryConfig::builder()
            .metrics_exporters([MetricsExporter::Prometheus])
            .prometheus_addr(taken.local_addr().unwrap())
            .build()
            .unwrap();
        let err = init(config).unwrap_err();
        assert_eq!(err.kind(), "prometheus_bind");
        assert!(
            err.to_string()
                .contains(&taken.local_addr().unwrap().to_string())
        );
    }
}
