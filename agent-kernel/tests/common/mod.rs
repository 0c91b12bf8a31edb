//! Shared fixtures: a billing kernel like the reference's demo.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use agent_kernel::*;
use serde_json::{Value, json};

pub const SECRET: &str = "integration-test-secret-0123456789";
pub const LIST: &str = "billing.list_invoices";
pub const UPDATE: &str = "billing.update_invoice";
pub const DELETE: &str = "billing.delete_invoice";
pub const SUMMARY: &str = "billing.summarize_spend";

/// 30 deterministic invoices with PII in fields and inside free text.
pub fn invoices(n: usize) -> Value {
    let statuses = ["paid", "unpaid", "overdue"];
    let currencies = ["USD", "EUR", "GBP"];
    let names = ["Alice Smith", "Bob Jones", "Carol Lee", "Dave Brown"];
    let rows: Vec<Value> = (1..=n)
        .map(|i| {
            let name = names[i % names.len()];
            let email = format!("{}{i}@example.com", name.to_lowercase().replace(' ', "."));
            json!({
                "id": format!("INV-{i:04}"),
                "customer_name": name,
                "email": email,
                "phone": format!("+1-555-{:04}", 1000 + i),
                "amount": (i as f64) * 10.5,
                "currency": currencies[i % 3],
                "status": statuses[i % 3],
                "date": format!("2024-01-{:02}", 1 + i % 28),
                "notes": format!("contact {email} about this one"),
            })
        })
        .collect();
    Value::Array(rows)
}

pub fn registry() -> CapabilityRegistry {
    let mut r = CapabilityRegistry::new();
    r.register_many([
        Capability::new(
            LIST,
            "List Invoices",
            "List all invoices, optionally filtered by status",
            SafetyClass::Read,
        )
        .with_sensitivity(SensitivityTag::Pii)
        .with_allowed_fields([
            "id",
            "customer_name",
            "amount",
            "currency",
            "status",
            "date",
        ])
        .with_tags(["billing", "invoices", "list"])
        .with_impl("billing", "list_invoices"),
        Capability::new(
            SUMMARY,
            "Summarize Spend",
            "Total spend per currency",
            SafetyClass::Read,
        )
        .with_tags(["billing", "summary"])
        .with_impl("billing", "summarize_spend"),
        Capability::new(
            UPDATE,
            "Update Invoice",
            "Update an invoice field",
            SafetyClass::Write,
        )
        .with_tags(["billing", "update"])
        .with_impl("billing", "update_invoice"),
        Capability::new(
            DELETE,
            "Delete Invoice",
            "Delete an invoice permanently",
            SafetyClass::Destructive,
        )
        .with_tags(["billing", "delete"])
        .with_impl("billing", "delete_invoice"),
    ])
    .unwrap();
    r
}

pub fn billing_driver(data: Arc<Value>) -> InMemoryDriver {
    let d2 = Arc::clone(&data);
    InMemoryDriver::new("billing")
        .with_handler("list_invoices", move |ctx| {
            match ctx.args.get("status").and_then(Value::as_str) {
                None => Ok::<_, String>(Arc::clone(&d2)),
                Some(status) => {
                    let rows: Vec<Value> = d2
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| r["status"] == status)
                        .cloned()
                        .collect();
                    Ok(Arc::new(Value::Array(rows)))
                }
            }
        })
        .with_handler("summarize_spend", |_ctx| {
            Ok::<_, String>(json!({"totals": {"USD": 10.0}, "invoice_count": 30}))
        })
        .with_handler("update_invoice", |ctx| {
            Ok::<_, String>(json!({"updated": ctx.args.get("id").cloned()}))
        })
        .with_handler("delete_invoice", |_ctx| {
            Ok::<_, String>(json!({"deleted": true}))
        })
}

pub fn router() -> StaticRouter {
    StaticRouter::new()
        .with_route(LIST, ["billing"])
        .with_route(SUMMARY, ["billing"])
        .with_route(UPDATE, ["billing"])
        .with_route(DELETE, ["billing"])
}

pub struct Fixture {
    pub kernel: Kernel,
    pub clock: Arc<ManualClock>,
    pub data: Arc<Value>,
}

pub fn fixture_with(
    policy: Option<DefaultPolicyEngine>,
    configure: impl FnOnce(KernelBuilder) -> KernelBuilder,
) -> Fixture {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
    let data = Arc::new(invoices(30));
    let policy = policy.unwrap_or_else(|| {
        DefaultPolicyEngine::builder()
            .clock(clock.clone())
            .build()
            .unwrap()
    });
    let builder = Kernel::builder(registry())
        .secret(SECRET)
        .router(router())
        .policy(policy)
        .clock(clock.clone())
        .driver(billing_driver(Arc::clone(&data)));
    let kernel = configure(builder).build().unwrap();
    Fixture {
        kernel,
        clock,
        data,
    }
}

pub fn fixture() -> Fixture {
    fixture_with(None, |b| b)
}

pub fn reader() -> Principal {
    Principal::new("analyst-001")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme")
}

pub fn writer() -> Principal {
    Principal::new("writer-001")
        .with_roles(["reader", "writer"])
        .with_attribute("tenant", "acme")
}

pub fn admin() -> Principal {
    Principal::new("admin-001")
        .with_roles(["admin"])
        .with_attribute("tenant", "acme")
}

pub fn list_args() -> Args {
    args(json!({"operation": "list_invoices"})).unwrap()
}

pub fn op(name: &str) -> Args {
    args(json!({ "operation": name })).unwrap()
}

pub const JUSTIFICATION: &str = "customer asked for a correction on their invoice";

pub fn minute() -> Duration {
    Duration::from_secs(60)
}

/// Does any string anywhere in `v` contain an e-mail address of the fixture?
pub fn leaks_email(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("@example.com"),
        Value::Array(a) => a.iter().any(leaks_email),
        Value::Object(o) => o.values().any(leaks_email),
        _ => false,
    }
}

pub fn frame_json(f: &Frame) -> Value {
    serde_json::to_value(f).unwrap()
}
