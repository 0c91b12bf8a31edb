//! A capability's invocation reaches only the operation bound to it: no
//! argument selects another capability's handler behind the same driver.

use std::sync::Arc;

use agent_kernel::*;
use serde_json::{Value, json};

const ECHO: &str = "tool.echo";
const LIST: &str = "billing.list_invoices";
const UPDATE: &str = "billing.update_invoice";

fn kernel() -> Kernel {
    let mut registry = CapabilityRegistry::new();
    registry
        .register_many([
            Capability::new(ECHO, "Echo", "Echo the arguments", SafetyClass::Read),
            Capability::new(LIST, "List", "List invoices", SafetyClass::Read)
                .with_sensitivity(SensitivityTag::Pii)
                .with_allowed_fields(["id", "amount"])
                .with_impl("mem", "list_invoices"),
            Capability::new(UPDATE, "Update", "Update an invoice", SafetyClass::Write)
                .with_impl("mem", "update_invoice"),
        ])
        .unwrap();
    let rows = Arc::new(json!([
        {"id": "INV-1", "amount": 10, "email": "ann@example.com", "iban": "DE89370400440532013000"},
    ]));
    let driver = InMemoryDriver::new("mem")
        .with_handler(ECHO, |ctx| Ok::<_, String>(json!({"echo": ctx.args.len()})))
        .with_handler("list_invoices", move |_ctx| {
            Ok::<_, String>(Arc::clone(&rows))
        })
        .with_handler("update_invoice", |_ctx| {
            Ok::<_, String>(json!({"updated": true}))
        });
    Kernel::builder(registry)
        .secret("adversarial-handlers-secret-0123456789")
        .router(
            StaticRouter::new()
                .with_route(ECHO, ["mem"])
                .with_route(LIST, ["mem"])
                .with_route(UPDATE, ["mem"]),
        )
        .driver(driver)
        .build()
        .unwrap()
}

fn reader() -> Principal {
    Principal::new("reader-1")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme")
}

async fn echo_with_operation(operation: &str) -> Frame {
    let k = kernel();
    let p = reader();
    let token = k
        .get_token(&CapabilityRequest::new(ECHO, "echo"), &p, "")
        .unwrap();
    k.invoke_with(
        InvokeRequest::new(&token, &p)
            .with_arg("operation", operation)
            .with_mode(ResponseMode::Table),
    )
    .await
    .unwrap()
}

fn frame_text(frame: &Frame) -> String {
    serde_json::to_string(frame).unwrap()
}

#[tokio::test]
async fn a_read_token_cannot_run_the_write_handler_through_an_operation_argument() {
    for operation in [UPDATE, "update_invoice"] {
        let frame = echo_with_operation(operation).await;
        let text = frame_text(&frame);
        assert!(!text.contains("updated"), "{operation}: {text}");
        assert_eq!(frame.table_preview.len(), 1, "{text}");
        assert_eq!(
            frame.table_preview[0].get("echo"),
            Some(&json!(1)),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_operation_argument_cannot_reach_another_capabilitys_rows() {
    for operation in [LIST, "list_invoices"] {
        let frame = echo_with_operation(operation).await;
        let text = frame_text(&frame);
        for leaked in ["INV-1", "ann@example.com", "DE89370400440532013000"] {
            assert!(!text.contains(leaked), "{operation}: {text}");
        }
    }
}

#[tokio::test]
async fn the_bound_operation_runs_for_its_own_capability() {
    let k = kernel();
    let p = reader();
    let token = k
        .get_token(&CapabilityRequest::new(LIST, "list"), &p, "")
        .unwrap();
    let frame = k
        .invoke_with(
            InvokeRequest::new(&token, &p)
                .with_arg("operation", ECHO)
                .with_mode(ResponseMode::Table),
        )
        .await
        .unwrap();
    assert_eq!(frame.table_preview.len(), 1);
    assert_eq!(
        frame.table_preview[0].get("id").and_then(Value::as_str),
        Some("INV-1")
    );
}
