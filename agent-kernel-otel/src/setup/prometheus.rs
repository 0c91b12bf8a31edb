//! The Prometheus exposition endpoint (feature `prometheus`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::sync::{Semaphore, oneshot};

use super::SetupError;

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;
/// Time a client gets to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A running `/metrics` endpoint. Dropping it (or calling
/// [`stop`](Self::stop)) stops the server and joins its thread.
///
/// ```
/// use agent_kernel_otel::setup::serve_prometheus;
/// use opentelemetry::metrics::MeterProvider as _;
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
///
/// let registry = prometheus::Registry::new();
/// let reader = opentelemetry_prometheus::exporter()
///     .with_registry(registry.clone())
///     .build()?;
/// let provider = SdkMeterProvider::builder().with_reader(reader).build();
/// let server = serve_prometheus("127.0.0.1:0".parse()?, registry)?;
/// provider.meter("example").u64_counter("jobs").build().add(1, &[]);
/// println!("scrape http://{}/metrics", server.local_addr());
/// server.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PrometheusServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PrometheusServer {
    /// The address actually listened on (the real port when 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// Serves `GET /metrics` from `registry` in the Prometheus text format, on
/// its own thread with a single-threaded Tokio runtime (the application
/// needs no runtime of its own).
///
/// # Errors
/// [`SetupError::PrometheusBind`] if the address cannot be listened on, and
/// [`SetupError::Exporter`] if the server thread cannot start.
pub fn serve_prometheus(
    addr: SocketAddr,
    registry: Registry,
) -> Result<PrometheusServer, SetupError> {
    let bind_err = |source| SetupError::PrometheusBind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| SetupError::Exporter {
            exporter: "prometheus",
            reason: format!("cannot start the /metrics runtime: {e}"),
        })?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("agent-kernel-prometheus".to_owned())
        .spawn(move || runtime.block_on(accept_loop(listener, registry, stop_rx)))
        .map_err(|e| SetupError::Exporter {
            exporter: "prometheus",
            reason: format!("cannot spawn the /metrics thread: {e}"),
        })?;
    Ok(PrometheusServer {
        addr: local,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

async fn accept_loop(
    listener: std::net::TcpListener,
    registry: Registry,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    let registry = Arc::new(registry);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = &mut stop => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Transient (e.g. too many open files): back off briefly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let registry = registry.clone();
                async move { Ok::<_, Infallible>(respond(&req, &registry)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(permit);
        });
    }
}

fn respond(req: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if encoder.encode(&registry.gather(), &mut body).is_err() {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n");
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    if let Ok(value) = hyper::header::HeaderValue::from_str(encoder.format_type()) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// A registry and the OpenTelemetry reader that fills it.
pub(crate) fn reader()
-> Result<(Registry, opentelemetry_prometheus::PrometheusExporter), SetupError> {
    let registry = Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| SetupError::Exporter {
            exporter: "prometheus",
            reason: e.to_string(),
        })?;
    Ok((registry, reader))
}
