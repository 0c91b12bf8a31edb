//! The billing collections tool served over HTTP (axum), as a remote tool
//! the kernel reaches through `HttpDriver`.
//!
//! Every request is traced by [`trace_requests`]: the W3C `traceparent` /
//! `tracestate` headers are extracted with the globally installed
//! OpenTelemetry propagator, and the request gets a SERVER span that is a
//! child of the caller's span (the kernel's `agent_kernel.driver.execute`),
//! so one trace spans both processes.

use std::net::SocketAddr;

use agent_kernel_otel::opentelemetry;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, InstrumentationScope, KeyValue, global};
use opentelemetry_http::HeaderExtractor;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::data::BillingData;

/// The route of the overdue-reminders tool.
pub const OVERDUE_PATH: &str = "/tools/overdue_reminders";

/// The instrumentation scope of the server spans.
pub const SCOPE: &str = "billing-tool-server";

/// The span attribute naming the serving process (`process.pid`), so a
/// trace shows which process served a request.
pub const PID_ATTRIBUTE: &str = "process.pid";

/// The tool's routes: `GET /tools/overdue_reminders?min_days=N` and
/// `GET /healthz`, every matched request traced by [`trace_requests`].
pub fn router(data: BillingData) -> Router {
    Router::new()
        .route(OVERDUE_PATH, get(overdue_reminders))
        .route("/healthz", get(|| async { "ok\n" }))
        .route_layer(middleware::from_fn(trace_requests))
        .with_state(data)
}

#[derive(Debug, Deserialize)]
struct OverdueQuery {
    min_days: Option<String>,
}

async fn overdue_reminders(
    State(data): State<BillingData>,
    Query(query): Query<OverdueQuery>,
) -> Response {
    let min_days = match query.min_days.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) if n >= 0 => n,
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "min_days must be a non-negative integer\n",
            )
                .into_response();
        }
    };
    let rows = data.overdue_reminders(min_days);
    let count = rows.as_array().map_or(0, Vec::len);
    // The server span is the current span here (see `trace_requests`).
    Context::current().span().set_attribute(KeyValue::new(
        "billing.rows_returned",
        i64::try_from(count).unwrap_or(i64::MAX),
    ));
    Json(rows).into_response()
}

/// Middleware: extracts the caller's trace context from the request headers
/// and runs the request under a SERVER span named `METHOD /route`.
pub async fn trace_requests(request: Request, next: Next) -> Response {
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let tracer = global::tracer_with_scope(
        InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    );
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let span = tracer
        .span_builder(format!("{method} {route}"))
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", method),
            KeyValue::new("http.route", route),
            KeyValue::new("url.path", request.uri().path().to_owned()),
            KeyValue::new(PID_ATTRIBUTE, i64::from(std::process::id())),
        ])
        .start_with_context(&tracer, &parent);
    let cx = parent.with_span(span);
    let response = next.run(request).with_context(cx.clone()).await;
    let span = cx.span();
    let status = response.status();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_attribute(KeyValue::new("error.type", status.as_u16().to_string()));
        span.set_status(Status::error(format!("HTTP {}", status.as_u16())));
    }
    span.end();
    response
}

/// A tool server running on the current Tokio runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// Its base URL, `http://HOST:PORT`.
    pub base_url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, finishes the requests in flight, and waits.
    ///
    /// # Errors
    /// The server's I/O error, if it failed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await??;
        Ok(())
    }
}

/// Binds `addr` and serves [`router`] there in a task of the current runtime.
///
/// # Errors
/// When the address cannot be listened on.
pub async fn spawn(addr: SocketAddr, data: BillingData) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(data);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(RunningServer {
        base_url: format!("http://{addr}"),
        addr,
        stop: Some(stop),
        task,
    })
}
