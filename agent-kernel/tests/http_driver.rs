//! `HttpDriver` against a real HTTP server (axum) on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use agent_kernel::*;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router as AxumRouter};
use serde_json::{Value, json};

async fn echo_query(method: Method, RawQuery(q): RawQuery) -> Json<Value> {
    Json(json!({ "method": method.as_str(), "query": q.unwrap_or_default() }))
}

async fn echo_body(method: Method, headers: HeaderMap, Json(body): Json<Value>) -> Json<Value> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Json(json!({ "method": method.as_str(), "body": body, "content_type": ct }))
}

async fn echo_headers(headers: HeaderMap) -> Json<Value> {
    let get = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    Json(
        json!({ "x-base": get("x-base"), "x-endpoint": get("x-endpoint"), "x-shared": get("x-shared") }),
    )
}

async fn start() -> SocketAddr {
    let app = AxumRouter::new()
        .route(
            "/items",
            get(echo_query)
                .post(echo_body)
                .put(echo_body)
                .patch(echo_body)
                .delete(echo_query),
        )
        .route("/headers", get(echo_headers))
        .route(
            "/missing",
            get(|| async {
                (
                    StatusCode::NOT_FOUND,
                    format!("not here: {}", "x".repeat(300)),
                )
            }),
        )
        .route(
            "/boom",
            get(|| async {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal failure: db down",
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Json(json!({}))
            }),
        )
        .route("/text", get(|| async { "this is not json" }))
        .route("/empty", post(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/invoices",
            get(|| async { Json(json!([{"id": 1, "email": "eve@example.com", "amount": 5}])) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn endpoint(method: &str, addr: SocketAddr, path: &str) -> HttpEndpoint {
    HttpEndpoint::new(method, &format!("http://{addr}{path}")).unwrap()
}

async fn run(driver: &HttpDriver, args: Value) -> Result<RawResult, DriverError> {
    let args = agent_kernel::args(args).unwrap();
    let constraints = Constraints::default();
    // The kernel binds the operation from the capability; here the test names
    // it in the arguments for brevity.
    let operation = args
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or("cap.http")
        .to_owned();
    let ctx = ExecutionContext {
        capability_id: "cap.http",
        principal_id: "u1",
        args: &args,
        constraints: &constraints,
        action_id: "a1",
        operation: &operation,
    };
    driver.execute(&ctx).await
}

#[tokio::test]
async fn get_and_delete_send_query_parameters() {
    let addr = start().await;
    let d = HttpDriver::new("http")
        .unwrap()
        .with_endpoint("list", endpoint("GET", addr, "/items"))
        .with_endpoint("remove", endpoint("delete", addr, "/items"));
    let r = run(
        &d,
        json!({"operation": "list", "status": "paid", "limit": 5, "tags": ["a", "b"]}),
    )
    .await
    .unwrap();
    assert_eq!(r.data["method"], "GET");
    let q = r.data["query"].as_str().unwrap();
    let mut parts: Vec<&str> = q.split('&').collect();
    parts.sort_unstable();
    assert_eq!(
        parts,
        vec!["limit=5", "status=paid", "tags=a", "tags=b"],
        "operation is not sent: {q}"
    );
    assert_eq!(r.metadata["status_code"], 200);
    assert_eq!(r.metadata["url"], format!("http://{addr}/items"));
    assert_eq!(r.capability_id, "cap.http");

    let r = run(&d, json!({"operation": "remove", "id": "INV 1"}))
        .await
        .unwrap();
    assert_eq!(r.data["method"], "DELETE");
    assert_eq!(r.data["query"], "id=INV+1");
}

#[tokio::test]
async fn other_methods_send_a_json_body() {
    let addr = start().await;
    let d = HttpDriver::new("http")
        .unwrap()
        .with_endpoint("create", endpoint("POST", addr, "/items"))
        .with_endpoint("replace", endpoint("PUT", addr, "/items"))
        .with_endpoint("patch", endpoint("PATCH", addr, "/items"))
        .with_endpoint("nothing", endpoint("POST", addr, "/empty"));
    for (op, method) in [("create", "POST"), ("replace", "PUT"), ("patch", "PATCH")] {
        let r = run(
            &d,
            json!({"operation": op, "id": 7, "fields": {"amount": 1.5}}),
        )
        .await
        .unwrap();
        assert_eq!(r.data["method"], method);
        assert_eq!(r.data["body"], json!({"id": 7, "fields": {"amount": 1.5}}));
        assert_eq!(r.data["content_type"], "application/json");
    }
    let r = run(&d, json!({"operation": "nothing"})).await.unwrap();
    assert_eq!(*r.data, Value::Null);
    assert_eq!(r.metadata["status_code"], 204);
}

#[tokio::test]
async fn headers_merge_with_endpoint_winning() {
    let addr = start().await;
    let ep = endpoint("GET", addr, "/headers")
        .with_header("x-endpoint", "e")
        .unwrap()
        .with_header("x-shared", "endpoint")
        .unwrap();
    let d = HttpDriver::new("http")
        .unwrap()
        .with_base_header("x-base", "b")
        .unwrap()
        .with_base_header("x-shared", "base")
        .unwrap()
        .with_endpoint("h", ep);
    let r = run(&d, json!({"operation": "h"})).await.unwrap();
    assert_eq!(
        *r.data,
        json!({"x-base": "b", "x-endpoint": "e", "x-shared": "endpoint"})
    );
}

#[tokio::test]
async fn non_2xx_is_a_driver_error_with_status_and_body_excerpt() {
    let addr = start().await;
    let d = HttpDriver::new("http")
        .unwrap()
        .with_endpoint("missing", endpoint("GET", addr, "/missing"))
        .with_endpoint("boom", endpoint("GET", addr, "/boom"));
    let err = run(&d, json!({"operation": "missing"})).await.unwrap_err();
    assert_eq!(err.status, Some(404));
    assert_eq!(err.driver_id, "http");
    assert!(err.message.contains("HTTP 404"), "{err}");
    let excerpt = err.message.split_once("/missing: ").unwrap().1;
    assert_eq!(
        excerpt.chars().count(),
        200,
        "at most 200 characters of the body"
    );
    assert!(excerpt.starts_with("not here"));

    let err = run(&d, json!({"operation": "boom"})).await.unwrap_err();
    assert_eq!(err.status, Some(500));
    assert!(
        err.message.contains("HTTP 500") && err.message.contains("internal failure: db down"),
        "{err}"
    );
}

#[tokio::test]
async fn timeouts_transport_errors_bad_json_and_unknown_operations() {
    let addr = start().await;
    let d = HttpDriver::new("http")
        .unwrap()
        .with_endpoint(
            "slow",
            endpoint("GET", addr, "/slow").with_timeout(Duration::from_millis(200)),
        )
        .with_endpoint("text", endpoint("GET", addr, "/text"))
        .with_endpoint(
            "closed",
            HttpEndpoint::new("GET", "http://127.0.0.1:9/nothing").unwrap(),
        );
    let started = Instant::now();
    let err = run(&d, json!({"operation": "slow"})).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the endpoint timeout applies"
    );
    assert!(err.message.contains("timed out"), "{err}");
    assert_eq!(err.status, None);

    let err = run(&d, json!({"operation": "text"})).await.unwrap_err();
    assert!(
        err.message.contains("not JSON") && err.message.contains("this is not json"),
        "{err}"
    );

    let err = run(&d, json!({"operation": "closed"})).await.unwrap_err();
    assert!(err.message.contains("failed"), "{err}");

    let err = run(&d, json!({"operation": "unknown"})).await.unwrap_err();
    assert!(
        err.message.contains("no endpoint for operation 'unknown'"),
        "{err}"
    );

    // without an operation, the capability id names the endpoint
    let d = HttpDriver::new("http")
        .unwrap()
        .with_endpoint("cap.http", endpoint("GET", addr, "/items"));
    let r = run(&d, json!({})).await.unwrap();
    assert_eq!(*r.data, json!({"method": "GET", "query": ""}));
    assert_eq!(r.metadata["status_code"], 200);
    assert_eq!(r.metadata["url"], format!("http://{addr}/items"));
}

#[tokio::test]
async fn http_driver_behind_the_kernel_is_firewalled_and_falls_back() {
    let addr = start().await;
    let http = HttpDriver::new("crm-http")
        .unwrap()
        .with_endpoint("list_invoices", endpoint("GET", addr, "/invoices"))
        .with_endpoint("summarize_spend", endpoint("GET", addr, "/boom"));
    let router = common::router()
        .with_route(common::LIST, ["crm-http"])
        .with_route(common::SUMMARY, ["crm-http", "billing"]);
    let f = common::fixture_with(None, |b| b.router(router).driver(http));
    let p = common::reader();
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(common::LIST, "l"), &p, "")
        .unwrap();
    let frame = f
        .kernel
        .invoke(&token, &p, common::list_args(), ResponseMode::Table)
        .await
        .unwrap();
    assert_eq!(frame.table_preview.len(), 1);
    assert!(frame.table_preview[0].get("email").is_none());
    assert_eq!(
        f.kernel.explain(&frame.action_id).unwrap().driver_id,
        "crm-http"
    );

    // a 500 from the first driver falls back to the in-memory billing driver
    let token = f
        .kernel
        .get_token(&CapabilityRequest::new(common::SUMMARY, "s"), &p, "")
        .unwrap();
    let frame = f
        .kernel
        .invoke(
            &token,
            &p,
            common::op("summarize_spend"),
            ResponseMode::Summary,
        )
        .await
        .unwrap();
    assert_eq!(
        f.kernel.explain(&frame.action_id).unwrap().driver_id,
        "billing"
    );
}
