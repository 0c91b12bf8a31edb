//! The billing walk-through: discover → grant → invoke in three modes → expand →
//! explain, then a denied WRITE and a revoked token, printing each frame.
//!
//! Run with `cargo run --example billing -p agent-kernel`.

use std::sync::Arc;

use agent_kernel::*;
use serde_json::{Value, json};

/// 40 deterministic invoices with PII in fields and free text.
fn invoices() -> Value {
    let first = [
        "Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Hiro",
    ];
    let last = ["Smith", "Jones", "Lee", "Brown", "Taylor"];
    let statuses = ["paid", "unpaid", "overdue"];
    let currencies = ["USD", "EUR", "GBP"];
    let rows = (1..=40usize)
        .map(|i| {
            let (f, l) = (first[(i * 7) % first.len()], last[(i * 3) % last.len()]);
            let email = format!("{}.{}{i}@example.com", f.to_lowercase(), l.to_lowercase());
            json!({
                "id": format!("INV-{i:04}"),
                "customer_name": format!("{f} {l}"),
                "email": email,
                "phone": format!("+1-555-{:04}", 1000 + (i * 37) % 9000),
                "amount": ((i * 7919) % 500_000) as f64 / 100.0,
                "currency": currencies[(i * 5) % 3],
                "status": statuses[(i * 11) % 3],
                "date": format!("2024-{:02}-{:02}", 1 + i % 12, 1 + i % 28),
                "notes": format!("Reach {f} at {email} or +1-555-{:04}", 2000 + i),
            })
        })
        .collect();
    Value::Array(rows)
}

fn show(title: &str, value: &impl serde::Serialize) {
    println!("\n── {title} ──");
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => println!("<cannot print: {e}>"),
    }
}

fn show_error(title: &str, err: &KernelError) {
    println!("\n── {title} ──");
    println!("error kind: {}", err.kind());
    if let Some(category) = err.denial_category() {
        println!("denial category: {category}");
    }
    println!("message: {err}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), KernelError> {
    let mut registry = CapabilityRegistry::new();
    registry.register_many([
        Capability::new(
            "billing.list_invoices",
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
            "billing.update_invoice",
            "Update Invoice",
            "Change an invoice's status",
            SafetyClass::Write,
        )
        .with_tags(["billing", "invoices", "update"])
        .with_impl("billing", "update_invoice"),
    ])?;

    let data = Arc::new(invoices());
    let rows = Arc::clone(&data);
    let driver = InMemoryDriver::new("billing")
        .with_handler("list_invoices", move |_ctx| {
            Ok::<_, String>(Arc::clone(&rows))
        })
        .with_handler("update_invoice", |ctx| {
            Ok::<_, String>(json!({ "updated": ctx.args.get("id") }))
        });

    let kernel = Kernel::builder(registry)
        .secret(
            std::env::var(SECRET_ENV)
                .unwrap_or_else(|_| "billing-example-secret-not-for-production".to_owned()),
        )
        .router(
            StaticRouter::new()
                .with_route("billing.list_invoices", ["billing"])
                .with_route("billing.update_invoice", ["billing"]),
        )
        .driver(driver)
        .build()?;

    let analyst = Principal::new("analyst-001")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");

    // 1. Discover
    let found = kernel.request_capabilities("list unpaid invoices");
    show(
        "discover: request_capabilities(\"list unpaid invoices\")",
        &found,
    );
    let Some(request) = found
        .into_iter()
        .find(|r| r.capability_id == "billing.list_invoices")
    else {
        return Err(KernelError::CapabilityNotFound {
            capability_id: "billing.list_invoices".into(),
        });
    };

    // 2. Grant
    let grant = kernel.grant_capability(&request, &analyst, "")?;
    show("grant: policy decision", &grant.decision);
    show("grant: signed token (JSON transport form)", &grant.token);
    let token = grant.token;

    // 3. Invoke in three modes
    let list = args(json!({ "operation": "list_invoices" }))?;
    let summary = kernel
        .invoke(&token, &analyst, list.clone(), ResponseMode::Summary)
        .await?;
    show("invoke: summary frame", &summary);
    let table = kernel
        .invoke(&token, &analyst, list.clone(), ResponseMode::Table)
        .await?;
    show(
        "invoke: table frame (first 3 rows shown)",
        &Frame {
            table_preview: table.table_preview.iter().take(3).cloned().collect(),
            ..table.clone()
        },
    );
    let handle_only = kernel
        .invoke(&token, &analyst, list.clone(), ResponseMode::HandleOnly)
        .await?;
    show("invoke: handle_only frame", &handle_only);

    // 4. Expand the handle: unpaid invoices, two fields, three rows
    if let Some(handle) = &handle_only.handle {
        let query = ExpandQuery::from_json(
            &json!({ "filter": { "status": "unpaid" }, "limit": 3, "fields": ["id", "amount"] }),
        )?;
        let expanded = kernel.expand(handle, &query, &analyst)?;
        show("expand: unpaid invoices, fields id + amount", &expanded);
        let stranger = Principal::new("intruder-7")
            .with_roles(["reader"])
            .with_attribute("tenant", "acme");
        if let Err(err) = kernel.expand(handle, &ExpandQuery::default(), &stranger) {
            show_error("expand by another principal", &err);
        }
    }

    // 5. Explain
    let trace = kernel.explain(&summary.action_id)?;
    show("explain: audit trace of the summary invocation", &*trace);

    // 6. A denied WRITE
    let write = CapabilityRequest::new("billing.update_invoice", "mark INV-0001 paid");
    if let Err(err) = kernel.grant_capability(&write, &analyst, "customer paid by wire transfer") {
        show_error("denied WRITE: a reader asks to update an invoice", &err);
    }

    // 7. A revoked token
    kernel.revoke_token(&token.token_id)?;
    if let Err(err) = kernel
        .invoke(&token, &analyst, list, ResponseMode::Summary)
        .await
    {
        show_error("revoked token: invoke after revoke_token", &err);
    }
    println!("\n{} invocations audited.", kernel.traces().len());
    Ok(())
}
