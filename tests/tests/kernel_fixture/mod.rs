//! A small billing kernel shared by the kernel telemetry suites
//! (`kernel_telemetry.rs`, `telemetry_contract.rs`, `kernel_global_providers.rs`,
//! `kernel_no_otel.rs`): capabilities that reach every span, every error kind
//! and every denial category, a manual clock, and helpers over captured spans.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use agent_kernel::*;
use agent_kernel_tests::SpanRecord;
use serde_json::{Value, json};

/// READ, PII, four allowed fields; served by `billing`.
pub const LIST: &str = "billing.list_invoices";
/// WRITE, no sensitivity; served by `billing`.
pub const REFUND: &str = "billing.refund";
/// READ; route `broken` then `billing` (the first attempt fails).
pub const FLAKY: &str = "billing.flaky_lookup";
/// READ; route `broken` then `broken2` (every attempt fails).
pub const DEAD: &str = "billing.dead_lookup";
/// READ; route `remote` (an `HttpDriver` the test registers).
pub const REMOTE: &str = "billing.remote_lookup";
/// READ; route `slow` (an async driver that yields and sleeps).
pub const SLOW: &str = "billing.slow_lookup";
/// Never registered.
pub const UNREGISTERED: &str = "billing.not_registered";

pub const SECRET: &str = "telemetry-test-secret-0123456789abcdef";
pub const JUSTIFICATION: &str = "refund requested by the customer on ticket 42";

/// Five invoices; customer names carry e-mail addresses, so redaction happens.
pub fn invoices() -> Value {
    json!([
        {"id": "INV-1", "customer_name": "Ann <ann@example.com>", "amount": 10.5, "status": "paid", "email": "ann@example.com"},
        {"id": "INV-2", "customer_name": "Bob <bob@example.com>", "amount": 20.0, "status": "unpaid", "email": "bob@example.com"},
        {"id": "INV-3", "customer_name": "Cy", "amount": 30.0, "status": "paid", "email": "cy@example.com"},
        {"id": "INV-4", "customer_name": "Di", "amount": 40.0, "status": "overdue", "email": "di@example.com"},
        {"id": "INV-5", "customer_name": "Ed", "amount": 50.0, "status": "paid", "email": "ed@example.com"},
    ])
}

/// An async driver that yields to the scheduler and sleeps, so concurrent
/// invocations interleave on the worker threads.
#[derive(Debug)]
pub struct SlowDriver;

#[async_trait]
impl Driver for SlowDriver {
    fn driver_id(&self) -> &str {
        "slow"
    }

    async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(RawResult::new(
            ctx.capability_id,
            json!([{"id": ctx.action_id}]),
        ))
    }
}

/// Knobs for [`Fixture::with`].
#[derive(Debug, Clone)]
pub struct Options {
    /// READ invocations (and, separately, grants) per principal and capability per minute.
    pub read_limit: u64,
    /// Session budget.
    pub budget: BudgetConfig,
    /// How principal and session ids are recorded.
    pub caller_ids: CallerIdRecording,
    /// A telemetry binding given to the builder (`KernelBuilder::telemetry`).
    pub telemetry: Option<agent_kernel_otel::Telemetry>,
    /// `KernelBuilder::capture_content` (default: off, whatever the environment says).
    pub capture: agent_kernel::otel::ContentCapture,
    /// `KernelBuilder::genai_conventions` (default: off, whatever the environment says).
    pub genai: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_limit: 1_000_000,
            budget: BudgetConfig::default(),
            caller_ids: CallerIdRecording::AsGiven,
            telemetry: None,
            capture: agent_kernel::otel::ContentCapture::off(),
            genai: false,
        }
    }
}

/// A kernel, its clock and two principals.
pub struct Fixture {
    pub kernel: Arc<Kernel>,
    pub clock: Arc<ManualClock>,
    /// `analyst-001`: reader, tenant acme.
    pub analyst: Principal,
    /// `clerk-7`: writer, tenant acme.
    pub clerk: Principal,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(Options::default())
    }

    pub fn with(options: Options) -> Fixture {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)));
        let mut registry = CapabilityRegistry::new();
        let read = |id: &str| Capability::new(id, "Lookup", "Look up invoices", SafetyClass::Read);
        registry
            .register(
                read(LIST)
                    .with_sensitivity(SensitivityTag::Pii)
                    .with_allowed_fields(["id", "customer_name", "amount", "status"]),
            )
            .unwrap();
        registry
            .register(Capability::new(
                REFUND,
                "Refund",
                "Refund an invoice",
                SafetyClass::Write,
            ))
            .unwrap();
        for id in [FLAKY, DEAD, REMOTE, SLOW] {
            registry.register(read(id)).unwrap();
        }
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let policy = DefaultPolicyEngine::builder()
            .clock(Arc::clone(&dyn_clock))
            .rate_limit(
                SafetyClass::Read,
                options.read_limit,
                Duration::from_secs(60),
            )
            .build()
            .unwrap();
        let rows = Arc::new(invoices());
        let billing = InMemoryDriver::new("billing")
            .with_handler(LIST, {
                let rows = Arc::clone(&rows);
                move |_ctx| Ok::<_, String>(Arc::clone(&rows))
            })
            .with_handler(FLAKY, {
                let rows = Arc::clone(&rows);
                move |_ctx| Ok::<_, String>(Arc::clone(&rows))
            })
            .with_handler(REFUND, |_ctx| Ok::<_, String>(json!({"refunded": true})));
        let builder = match options.telemetry {
            Some(telemetry) => Kernel::builder(registry).telemetry(telemetry),
            None => Kernel::builder(registry),
        };
        let kernel = builder
            .capture_content(options.capture)
            .genai_conventions(options.genai)
            .secret(SECRET)
            .clock(dyn_clock)
            .policy(policy)
            .budget_manager(BudgetManager::with_config(options.budget).unwrap())
            .caller_ids(options.caller_ids)
            .router(
                StaticRouter::new()
                    .with_route(LIST, ["billing"])
                    .with_route(REFUND, ["billing"])
                    .with_route(FLAKY, ["broken", "billing"])
                    .with_route(DEAD, ["broken", "broken2"])
                    .with_route(REMOTE, ["remote"])
                    .with_route(SLOW, ["slow"]),
            )
            .driver(billing)
            .driver(InMemoryDriver::new("broken"))
            .driver(InMemoryDriver::new("broken2"))
            .driver(SlowDriver)
            .build()
            .unwrap();
        Fixture {
            kernel: Arc::new(kernel),
            clock,
            analyst: Principal::new("analyst-001")
                .with_roles(["reader"])
                .with_attribute("tenant", "acme"),
            clerk: Principal::new("clerk-7")
                .with_roles(["writer"])
                .with_attribute("tenant", "acme"),
        }
    }

    /// A token for `capability_id` granted to `principal` (justification for WRITE).
    pub fn token(&self, capability_id: &str, principal: &Principal) -> CapabilityToken {
        self.kernel
            .get_token(
                &CapabilityRequest::new(capability_id, "test"),
                principal,
                JUSTIFICATION,
            )
            .unwrap()
    }
}

/// A current-thread runtime with timers.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The spans of `all` named `name`.
pub fn named<'a>(all: &'a [SpanRecord], name: &str) -> Vec<&'a SpanRecord> {
    all.iter().filter(|s| s.name == name).collect()
}

/// The children of `parent` in `all`, in end order.
pub fn children<'a>(all: &'a [SpanRecord], parent: &SpanRecord) -> Vec<&'a SpanRecord> {
    all.iter().filter(|s| parent.is_parent_of(s)).collect()
}

/// The names of the children of `parent`, in end order.
pub fn child_names(all: &[SpanRecord], parent: &SpanRecord) -> Vec<String> {
    children(all, parent)
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

/// The attribute keys of a span, sorted.
pub fn keys(span: &SpanRecord) -> Vec<String> {
    let mut k: Vec<String> = span.attrs.iter().map(|(k, _)| k.clone()).collect();
    k.sort();
    k
}

/// The one span named `name` whose trace is `trace_id`.
pub fn in_trace<'a>(all: &'a [SpanRecord], trace_id: &str, name: &str) -> Vec<&'a SpanRecord> {
    all.iter()
        .filter(|s| s.trace_id == trace_id && s.name == name)
        .collect()
}
