//! The benchmark workloads (the project's benchmark workload, `docs/benchmarks.md`), for
//! `benches/instrumented.rs` and `examples/invoke_loop.rs`:
//!
//! - **billing**: `billing.list_invoices` (READ, PII, 6 allowed fields) served
//!   by an in-memory `billing` driver returning the same 200 invoices of
//!   `data/billing_invoices.json` (an `Arc`, shared, not copied),
//!   principal `analyst-001` (reader, tenant acme), READ limit raised out of
//!   the way — the set-up of `benches/kernel.rs`;
//! - **minimal**: `notes.get` (READ, no sensitivity) whose driver returns one
//!   row, invoked in `handle_only` mode: the kernel's own cost with the least
//!   firewall work.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_kernel::*;
use serde_json::{Value, json};

/// The billing capability.
pub const BILLING: &str = "billing.list_invoices";
/// The minimal capability.
pub const MINIMAL: &str = "notes.get";
const SECRET: &str = "bench-fixed-secret-0123456789abcdef";
const ALLOWED: [&str; 6] = [
    "id",
    "customer_name",
    "amount",
    "currency",
    "status",
    "date",
];

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// 200 invoices, summary mode.
    Billing,
    /// One row, handle_only mode.
    Minimal,
}

impl Workload {
    /// `billing` or `minimal`.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Billing => "billing",
            Workload::Minimal => "minimal",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(s: &str) -> Option<Workload> {
        match s {
            "billing" => Some(Workload::Billing),
            "minimal" => Some(Workload::Minimal),
            _ => None,
        }
    }

    /// The response mode invoked.
    pub fn mode(self) -> ResponseMode {
        match self {
            Workload::Billing => ResponseMode::Summary,
            Workload::Minimal => ResponseMode::HandleOnly,
        }
    }
}

/// The 200 invoices of the workspace's `data/billing_invoices.json`.
pub fn dataset() -> Arc<Value> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "data",
        "billing_invoices.json",
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "benchmark data missing: cannot read {} ({e}); it is part of the repository (data/)",
            path.display()
        )
    });
    let data: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert_eq!(data.as_array().map(Vec::len), Some(200));
    Arc::new(data)
}

/// A fresh kernel for `workload`, its principal and a granted token (the grant
/// happens here, before any instrumentation the caller adds).
pub fn build(workload: Workload, data: &Arc<Value>) -> (Kernel, Principal, CapabilityToken) {
    build_with(workload, data, |b| b)
}

/// [`build`], with `configure` applied to the builder last (the audit store
/// benchmark sets its stores there).
pub fn build_with(
    workload: Workload,
    data: &Arc<Value>,
    configure: impl FnOnce(KernelBuilder) -> KernelBuilder,
) -> (Kernel, Principal, CapabilityToken) {
    let mut registry = CapabilityRegistry::new();
    registry
        .register(
            Capability::new(
                BILLING,
                "List Invoices",
                "List all invoices, optionally filtered by status",
                SafetyClass::Read,
            )
            .with_sensitivity(SensitivityTag::Pii)
            .with_allowed_fields(ALLOWED)
            .with_tags(["billing", "invoices", "list"])
            .with_impl("billing", "list_invoices"),
        )
        .unwrap();
    registry
        .register(Capability::new(
            MINIMAL,
            "Get note",
            "Get one note",
            SafetyClass::Read,
        ))
        .unwrap();
    let policy = DefaultPolicyEngine::builder()
        .rate_limit(SafetyClass::Read, 1_000_000_000, Duration::from_secs(60))
        .build()
        .unwrap();
    let rows = Arc::clone(data);
    let note = Arc::new(json!([{"id": 1, "title": "hello"}]));
    let builder = Kernel::builder(registry)
        .secret(SECRET)
        .policy(policy)
        .router(
            StaticRouter::new()
                .with_route(BILLING, ["billing"])
                .with_route(MINIMAL, ["notes"]),
        )
        .driver(
            InMemoryDriver::new("billing").with_handler("list_invoices", move |_ctx| {
                Ok::<_, String>(Arc::clone(&rows))
            }),
        )
        .driver(
            InMemoryDriver::new("notes")
                .with_handler(MINIMAL, move |_ctx| Ok::<_, String>(Arc::clone(&note))),
        );
    let kernel = configure(builder).build().unwrap();
    let principal = Principal::new("analyst-001")
        .with_roles(["reader"])
        .with_attribute("tenant", "acme");
    let capability = match workload {
        Workload::Billing => BILLING,
        Workload::Minimal => MINIMAL,
    };
    let token = kernel
        .get_token(&CapabilityRequest::new(capability, "bench"), &principal, "")
        .unwrap();
    (kernel, principal, token)
}

/// The invocation arguments of `workload`.
pub fn invoke_args(workload: Workload) -> Args {
    match workload {
        Workload::Billing => args(json!({"operation": "list_invoices"})).unwrap(),
        Workload::Minimal => Args::new(),
    }
}
