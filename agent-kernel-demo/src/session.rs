//! The scripted agent session: a billing assistant working through the
//! kernel, one step per thing the kernel does.
//!
//! Per repetition (fresh principals and a fresh session id each time, so
//! rate limits and budgets start over and every repetition counts the same):
//!
//! | step | what | invocations |
//! |---|---|---|
//! | discovery | `request_capabilities` | |
//! | grants | the analyst's tokens | |
//! | modes | summary, table, handle_only, raw refused for a non-admin, raw as admin | 5 × list (success) |
//! | PII redaction | a `pii_reader` sees e-mail and phone as `[REDACTED]` | 1 × list (success) |
//! | expand, explain | a handle's overdue rows; the audit record | |
//! | denied WRITE | no `writer` role; a short justification; then a granted update | 1 × update (success) |
//! | rate limit | DESTRUCTIVE is 2 a minute: the third void is refused | 2 × void (success), 1 (denied) |
//! | driver fallback | the warehouse fails, the billing driver serves | 1 × spend (success) |
//! | tool failure | every driver fails on a bad argument | 1 × spend (error) |
//! | remote tool | the collections service over `HttpDriver` | 1 × reminders (success) |
//! | session budget | escalation, then `budget_exhausted` | 3 × list (success), 1 (denied) |
//!
//! [`expected_per_repetition`] states these numbers; the end-to-end test
//! holds the metrics backends to them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent_kernel::otel::ContentCapture;
use agent_kernel::{
    Args, BudgetConfig, BudgetManager, Capability, CapabilityRegistry, CapabilityRequest,
    CapabilityToken, CharsOverFour, DEFAULT_MAX_SESSIONS, DEFAULT_REQUEST, DefaultPolicyEngine,
    DenialCategory, ExpandQuery, Frame, FramePayload, HttpDriver, HttpEndpoint, InMemoryDriver,
    InvokeRequest, Kernel, KernelBuilder, KernelError, Principal, ResponseMode, SafetyClass,
    SensitivityTag, StaticRouter, TokenCounter as _,
};
use agent_kernel_otel::opentelemetry;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, InstrumentationScope, KeyValue, global};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::data::BillingData;
use crate::render;
use crate::say;
use crate::tally::{Stage, Status, Tally};
use crate::telemetry::ConsoleBuffer;
use crate::tool_server::OVERDUE_PATH;

/// `billing.list_invoices`: READ, PII.
pub const LIST: &str = "billing.list_invoices";
/// `billing.summarize_spend`: READ, no sensitive data; routed warehouse → billing.
pub const SPEND: &str = "billing.summarize_spend";
/// `billing.overdue_reminders`: READ, PII; served by the remote collections tool.
pub const REMINDERS: &str = "billing.overdue_reminders";
/// `billing.update_invoice`: WRITE.
pub const UPDATE: &str = "billing.update_invoice";
/// `billing.void_invoice`: DESTRUCTIVE.
pub const VOID: &str = "billing.void_invoice";

/// The fields of an invoice a principal without `pii_reader` may see.
pub const LIST_FIELDS: [&str; 6] = [
    "id",
    "customer_name",
    "amount",
    "currency",
    "status",
    "date",
];
/// The fields of a reminder a principal without `pii_reader` may see.
pub const REMINDER_FIELDS: [&str; 6] = [
    "id",
    "customer_name",
    "amount",
    "currency",
    "days_overdue",
    "reminder",
];

/// The instrumentation scope of the demo's own step spans.
pub const STEP_SCOPE: &str = "agent-kernel-demo";

/// The in-memory billing driver.
pub const BILLING_DRIVER: &str = "billing";
/// The data-warehouse driver tried first for spend summaries; it is down.
pub const WAREHOUSE_DRIVER: &str = "billing-warehouse";
/// The HTTP driver of the remote collections tool.
pub const COLLECTIONS_DRIVER: &str = "collections";

/// Why the clerk's update is justified (at least 15 characters).
const UPDATE_JUSTIFICATION: &str = "customer paid by bank transfer on 2025-01-15, ref 88213";
/// Why the admin voids invoices.
const VOID_JUSTIFICATION: &str = "duplicates created by the 2024-12-28 import job, ticket OPS-4411";
/// Invoices the void step targets, from the end of the data.
const VOIDS: usize = 3;
/// Rows the expansion returns at most.
const EXPAND_LIMIT: usize = 5;
/// Calls the budget step makes at most before giving up on exhaustion.
const BUDGET_MAX_CALLS: usize = 8;
/// The minimum days overdue the remote tool is asked for.
const REMINDER_MIN_DAYS: i64 = 300;

/// Every capability of the billing agent.
///
/// # Errors
/// A duplicate id (never, for this fixed list).
pub fn registry() -> Result<CapabilityRegistry, KernelError> {
    let mut registry = CapabilityRegistry::new();
    registry.register_many([
        Capability::new(
            LIST,
            "List invoices",
            "List all invoices, optionally filtered by status",
            SafetyClass::Read,
        )
        .with_sensitivity(SensitivityTag::Pii)
        .with_allowed_fields(LIST_FIELDS)
        .with_tags(["billing", "invoices", "list", "overdue"])
        .with_impl(BILLING_DRIVER, "list_invoices"),
        Capability::new(
            SPEND,
            "Summarize spend",
            "Total spend and invoice counts per currency or status",
            SafetyClass::Read,
        )
        .with_tags(["billing", "spend", "summary", "totals"])
        .with_impl(WAREHOUSE_DRIVER, "summarize_spend"),
        Capability::new(
            REMINDERS,
            "Overdue reminders",
            "Overdue invoices with the reminders the collections team sent",
            SafetyClass::Read,
        )
        .with_sensitivity(SensitivityTag::Pii)
        .with_allowed_fields(REMINDER_FIELDS)
        .with_tags(["billing", "collections", "overdue", "reminders"])
        .with_impl(COLLECTIONS_DRIVER, "overdue_reminders"),
        Capability::new(
            UPDATE,
            "Update invoice",
            "Change an invoice's status",
            SafetyClass::Write,
        )
        .with_tags(["billing", "invoices", "update", "status"])
        .with_impl(BILLING_DRIVER, "update_invoice"),
        Capability::new(
            VOID,
            "Void invoice",
            "Void an invoice permanently",
            SafetyClass::Destructive,
        )
        .with_tags(["billing", "invoices", "void", "delete"])
        .with_impl(BILLING_DRIVER, "void_invoice"),
    ])?;
    Ok(registry)
}

fn arg_str<'a>(args: &'a Args, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str)
}

/// The in-memory billing driver over `data`: `list_invoices` (shared rows,
/// optional `status` and `fields`), `summarize_spend` (`group_by`), `update_invoice`
/// (`id`, `status`) and `void_invoice` (`id`). Updates and voids answer what
/// they would change; the shared data is never modified.
pub fn billing_driver(data: &BillingData) -> InMemoryDriver {
    let list = data.clone();
    let spend = data.clone();
    let update = data.clone();
    let void = data.clone();
    InMemoryDriver::new(BILLING_DRIVER)
        .with_handler("list_invoices", move |ctx| {
            let rows = list.list(arg_str(ctx.args, "status"));
            match ctx.args.get("fields") {
                None => Ok(rows),
                Some(fields) => project(&rows, fields).map(Arc::new),
            }
        })
        .with_handler("summarize_spend", move |ctx| {
            spend.spend(arg_str(ctx.args, "group_by").unwrap_or("currency"))
        })
        .with_handler("update_invoice", move |ctx| {
            let id = arg_str(ctx.args, "id").ok_or("missing argument 'id'")?;
            let status = arg_str(ctx.args, "status").ok_or("missing argument 'status'")?;
            if !["paid", "unpaid", "overdue"].contains(&status) {
                return Err(format!(
                    "invalid status '{status}': use paid, unpaid or overdue"
                ));
            }
            let row = update
                .find(id)
                .ok_or_else(|| format!("no invoice with id '{id}'"))?;
            Ok(json!({
                "id": id,
                "previous_status": row.get("status").cloned().unwrap_or(Value::Null),
                "status": status,
                "updated": true,
            }))
        })
        .with_handler("void_invoice", move |ctx| {
            let id = arg_str(ctx.args, "id").ok_or("missing argument 'id'")?;
            let row = void
                .find(id)
                .ok_or_else(|| format!("no invoice with id '{id}'"))?;
            Ok::<_, String>(json!({
                "id": id,
                "amount": row.get("amount").cloned().unwrap_or(Value::Null),
                "voided": true,
            }))
        })
}

/// Keeps only `fields` (a JSON array of names) of each row.
fn project(rows: &Value, fields: &Value) -> Result<Value, String> {
    let fields: Vec<&str> = fields
        .as_array()
        .and_then(|f| f.iter().map(Value::as_str).collect())
        .ok_or("'fields' must be an array of field names")?;
    let rows = rows.as_array().map_or(&[][..], Vec::as_slice);
    Ok(Value::Array(
        rows.iter()
            .filter_map(Value::as_object)
            .map(|row| {
                Value::Object(
                    row.iter()
                        .filter(|(k, _)| fields.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                )
            })
            .collect(),
    ))
}

/// The data-warehouse driver: down for the whole demo, so that spend
/// summaries fall back to the billing driver.
pub fn warehouse_driver() -> InMemoryDriver {
    InMemoryDriver::new(WAREHOUSE_DRIVER).with_handler("summarize_spend", |_ctx| {
        Err::<Value, _>("warehouse replica unreachable (connection refused)")
    })
}

/// The HTTP driver of the collections tool at `base_url`.
///
/// # Errors
/// An unusable URL.
pub fn collections_driver(base_url: &str) -> Result<HttpDriver, KernelError> {
    let endpoint = HttpEndpoint::new("GET", &format!("{base_url}{OVERDUE_PATH}"))?
        .with_timeout(Duration::from_secs(10));
    Ok(HttpDriver::new(COLLECTIONS_DRIVER)?.with_endpoint("overdue_reminders", endpoint))
}

/// Which drivers serve which capability, in order.
pub fn router() -> StaticRouter {
    StaticRouter::new()
        .with_route(LIST, [BILLING_DRIVER])
        .with_route(SPEND, [WAREHOUSE_DRIVER, BILLING_DRIVER])
        .with_route(REMINDERS, [COLLECTIONS_DRIVER])
        .with_route(UPDATE, [BILLING_DRIVER])
        .with_route(VOID, [BILLING_DRIVER])
}

/// The token cost of one full table answer of `billing.list_invoices` (50
/// rows of the allowed fields), as the kernel's default counter counts it.
pub fn table_answer_tokens(data: &BillingData) -> u64 {
    let rows: Vec<Map<String, Value>> = data
        .rows()
        .as_array()
        .into_iter()
        .flatten()
        .take(50)
        .filter_map(Value::as_object)
        .map(|row| {
            row.iter()
                .filter(|(k, _)| LIST_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    CharsOverFour.count(&FramePayload::Table(&rows)).max(1)
}

/// The session budget of the demo: three table answers, so that the budget
/// step shows escalation (a third left after two table answers: raw becomes
/// table, which uses the rest) and then runs out (nothing left: refused
/// before any driver runs; a frame is never charged past the budget).
pub fn session_budget(data: &BillingData) -> u64 {
    table_answer_tokens(data).saturating_mul(3)
}

/// The kernel's telemetry opt-ins asked for on the command line
/// (`--genai-conventions`, `--capture-content`). A flag sets the builder
/// option, which wins over the environment; without it the kernel reads
/// `OTEL_SEMCONV_STABILITY_OPT_IN` and
/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` at build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TelemetryOptIns {
    /// Invoke spans named `execute_tool <capability>`, and the
    /// `gen_ai.execute_tool.duration` histogram.
    pub genai_conventions: bool,
    /// The tool's arguments (redacted) and result on the invoke span.
    pub capture_content: bool,
}

impl TelemetryOptIns {
    /// Sets the builder options the flags asked for (none: the environment decides).
    fn apply(self, mut builder: KernelBuilder) -> KernelBuilder {
        if self.genai_conventions {
            builder = builder.genai_conventions(true);
        }
        if self.capture_content {
            builder = builder.capture_content(ContentCapture::on());
        }
        builder
    }
}

/// Builds the demo's kernel: the registry, the three drivers (the
/// collections tool at `collections_url`), the router, the default policy
/// with room for `repetitions` sets of principals in its rate limiter, a
/// small session budget ([`session_budget`]), on `stores` (the audit log and
/// the revocations), with the telemetry `opt_ins`. The HMAC secret comes
/// from `AGENT_KERNEL_SECRET`, else a random one per run.
///
/// # Errors
/// An invalid configuration (never, for valid inputs).
pub fn build_kernel(
    data: &BillingData,
    collections_url: &str,
    repetitions: u32,
    stores: agent_kernel::store::Stores,
    opt_ins: TelemetryOptIns,
) -> Result<Kernel, KernelError> {
    let repetitions = usize::try_from(repetitions).unwrap_or(usize::MAX);
    let policy = DefaultPolicyEngine::builder()
        .max_rate_keys(16_384_usize.max(repetitions.saturating_mul(64)))
        .build()?;
    let budget = BudgetManager::with_config(BudgetConfig {
        total_budget: session_budget(data),
        default_request: DEFAULT_REQUEST,
        max_sessions: DEFAULT_MAX_SESSIONS.max(repetitions),
    })?;
    let builder = Kernel::builder(registry()?)
        .policy(policy)
        .router(router())
        .budget_manager(budget)
        .driver(billing_driver(data))
        .driver(warehouse_driver())
        .driver(collections_driver(collections_url)?)
        .stores(stores);
    opt_ins.apply(builder).build()
}

/// The invocation counts one repetition produces, per (capability, safety
/// class, status): what the metrics must show, times the repetitions.
pub fn expected_per_repetition() -> Vec<(&'static str, &'static str, Status, u64)> {
    vec![
        (LIST, "READ", Status::Success, 9),
        (LIST, "READ", Status::Denied, 1),
        (REMINDERS, "READ", Status::Success, 1),
        (SPEND, "READ", Status::Success, 1),
        (SPEND, "READ", Status::Error, 1),
        (UPDATE, "WRITE", Status::Success, 1),
        (VOID, "DESTRUCTIVE", Status::Success, 2),
        (VOID, "DESTRUCTIVE", Status::Denied, 1),
    ]
}

/// The policy denials one repetition produces, per (capability, category,
/// stage).
pub fn expected_denials_per_repetition() -> Vec<(&'static str, DenialCategory, Stage, u64)> {
    vec![
        (LIST, DenialCategory::BudgetExhausted, Stage::Invoke, 1),
        (UPDATE, DenialCategory::MissingRole, Stage::Grant, 1),
        (
            UPDATE,
            DenialCategory::InsufficientJustification,
            Stage::Grant,
            1,
        ),
        (VOID, DenialCategory::RateLimited, Stage::Invoke, 1),
    ]
}

/// The people of one repetition.
#[derive(Debug, Clone)]
pub struct Cast {
    /// `analyst-NNN`: reader, tenant acme; the agent's own identity.
    pub analyst: Principal,
    /// `clerk-NNN`: reader and writer.
    pub clerk: Principal,
    /// `admin-NNN`: admin (raw mode, DESTRUCTIVE), not `pii_reader`.
    pub admin: Principal,
    /// `auditor-NNN`: reader and `pii_reader` (sees PII fields, redacted).
    pub auditor: Principal,
    /// The budgeted chat session of the repetition, `chat-NNN`.
    pub session_id: String,
}

impl Cast {
    /// The cast of repetition `n` (from 1).
    pub fn new(n: u32) -> Self {
        let p = |role: &str, roles: &[&str]| {
            Principal::new(format!("{role}-{n:03}"))
                .with_roles(roles.iter().copied())
                .with_attribute("tenant", "acme")
        };
        Self {
            analyst: p("analyst", &["reader"]),
            clerk: p("clerk", &["reader", "writer"]),
            admin: p("admin", &["admin"]),
            auditor: p("auditor", &["reader", "pii_reader"]),
            session_id: format!("chat-{n:03}"),
        }
    }
}

/// A notable invocation of the first repetition, for the summary (so a
/// test can find its spans) and for people (`kernel.explain` → trace).
#[derive(Debug, Clone, Serialize)]
pub struct Notable {
    /// The invocation's action id (`gen_ai.tool.call.id` on its span).
    pub action_id: String,
    /// The capability invoked.
    pub capability_id: String,
    /// `success`, `denied`, `driver_error`, …
    pub outcome: String,
    /// The OpenTelemetry trace id recorded on the audit record, if any.
    pub trace_id: Option<String>,
    /// The OpenTelemetry span id of the invoke span, if any.
    pub span_id: Option<String>,
}

/// Runs the session against a kernel and counts what happens.
#[derive(Debug)]
pub struct Session<'k> {
    kernel: &'k Kernel,
    data: &'k BillingData,
    console: Option<ConsoleBuffer>,
    remote_url: String,
    tally: Tally,
    notable: BTreeMap<&'static str, Notable>,
    loud: bool,
    record: bool,
    step: usize,
    repetition: u32,
    /// The current step's span: the parent of the kernel's spans.
    step_cx: Context,
}

impl<'k> Session<'k> {
    /// A session over `kernel`, printing the console span trees captured in
    /// `console` after each step; `remote_url` is only printed.
    pub fn new(
        kernel: &'k Kernel,
        data: &'k BillingData,
        console: Option<ConsoleBuffer>,
        remote_url: impl Into<String>,
    ) -> Self {
        Self {
            kernel,
            data,
            console,
            remote_url: remote_url.into(),
            tally: Tally::default(),
            notable: BTreeMap::new(),
            loud: true,
            record: true,
            step: 0,
            repetition: 1,
            step_cx: Context::new(),
        }
    }

    /// What was counted so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The notable invocations of the first repetition, by step name.
    pub fn notable(&self) -> &BTreeMap<&'static str, Notable> {
        &self.notable
    }

    // ── printing ──────────────────────────────────────────────────────────

    /// Starts a step: prints its title and opens its span, under which the
    /// kernel's spans of the step nest (the `agent step <slug>` root of
    /// the step's trace).
    fn header(&mut self, slug: &'static str, title: &str) {
        self.end_step();
        self.step += 1;
        if self.loud {
            say!();
            say!(
                "── {}. {title} {}",
                self.step,
                "─".repeat(60_usize.saturating_sub(title.len()))
            );
        }
        let tracer = global::tracer_with_scope(
            InstrumentationScope::builder(STEP_SCOPE)
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        );
        let span = tracer
            .span_builder(format!("agent step {slug}"))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new("demo.step", slug),
                KeyValue::new("demo.repetition", i64::from(self.repetition)),
            ])
            .start(&tracer);
        self.step_cx = Context::new().with_span(span);
    }

    /// Ends the current step's span (its trace is then complete).
    fn end_step(&mut self) {
        let span = self.step_cx.span();
        if span.is_recording() {
            span.end();
        }
        self.step_cx = Context::new();
    }

    /// Runs a synchronous kernel call inside the current step's span.
    fn in_step<T>(&self, call: impl FnOnce() -> T) -> T {
        let _attached = self.step_cx.clone().attach();
        call()
    }

    fn show(&self, text: &str) {
        if self.loud {
            let _ = std::io::Write::write_all(
                &mut std::io::stdout().lock(),
                render::indent(text, "   ").as_bytes(),
            );
        }
    }

    fn note(&self, text: &str) {
        if self.loud {
            say!("   {text}");
        }
    }

    /// Ends the step and prints (or, when quiet, discards) the span trees
    /// finished so far, with the step's trace id.
    fn spans(&mut self) {
        let trace_id = self.step_cx.span().span_context().trace_id();
        let valid = self.step_cx.span().span_context().is_valid();
        self.end_step();
        if let Some(console) = &self.console {
            let trees = console.drain();
            if self.loud && !trees.trim().is_empty() {
                say!("   spans:");
                self.show(&render::indent(&trees, "  "));
            }
        }
        if self.loud && valid && self.console.is_none() {
            say!("   trace_id={trace_id}");
        }
    }

    // ── kernel calls, counted ─────────────────────────────────────────────

    fn grant(
        &mut self,
        capability_id: &str,
        principal: &Principal,
        justification: &str,
        constraints: &[(&str, Value)],
    ) -> Result<CapabilityToken, KernelError> {
        let mut request = CapabilityRequest::new(capability_id, "billing assistant task");
        for (k, v) in constraints {
            request = request.with_constraint(*k, v.clone());
        }
        let kernel = self.kernel;
        match self.in_step(|| kernel.grant_capability(&request, principal, justification)) {
            Ok(grant) => Ok(grant.token),
            Err(e) => {
                if let Some(category) = e.denial_category() {
                    self.tally.denial(capability_id, category, Stage::Grant);
                }
                Err(e)
            }
        }
    }

    async fn invoke(
        &mut self,
        name: Option<&'static str>,
        request: InvokeRequest<'_>,
    ) -> Result<Frame, KernelError> {
        let capability_id = request.token.capability_id.clone();
        let class = self
            .kernel
            .registry()
            .get(&capability_id)
            .map_or(SafetyClass::Read, |c| c.safety_class);
        let result = self
            .kernel
            .invoke_with(request)
            .with_context(self.step_cx.clone())
            .await;
        self.tally.invocation(&capability_id, class, &result);
        if let (Some(name), true) = (name, self.record) {
            // The audit record of this invocation: the frame names it; a
            // refused or failed one is the latest record.
            let trace = match &result {
                Ok(frame) => self.kernel.traces().get(&frame.action_id).ok(),
                Err(_) => self.kernel.traces().list_all().last().cloned(),
            };
            if let Some(t) = trace {
                self.notable.insert(
                    name,
                    Notable {
                        action_id: t.action_id.clone(),
                        capability_id: t.capability_id.clone(),
                        outcome: t.outcome.as_str().to_owned(),
                        trace_id: t.trace_id.clone(),
                        span_id: t.span_id.clone(),
                    },
                );
            }
        }
        match &result {
            Ok(frame) => self.show(&render::frame(frame)),
            Err(e) => self.show(&render::error(e)),
        }
        result
    }

    /// Runs repetition `n` (from 1); prints it in full when `loud`.
    ///
    /// # Errors
    /// A kernel error the script does not expect (an expected refusal is
    /// part of the session, not an error).
    pub async fn run(&mut self, n: u32, loud: bool) -> anyhow::Result<()> {
        self.loud = loud;
        self.record = n == 1;
        self.step = 0;
        self.repetition = n;
        let cast = Cast::new(n);
        let kernel = self.kernel;

        // 1. Discovery.
        self.header(
            "discovery",
            "discovery: what can the agent do about overdue invoices?",
        );
        let goal = "list overdue invoices and the reminders sent to customers";
        let found = kernel.request_capabilities(goal);
        self.note(&format!("goal: {goal:?}"));
        for (i, req) in found.iter().enumerate() {
            if let Ok(cap) = kernel.registry().get(&req.capability_id) {
                self.note(&format!(
                    "{}. {:<28} {:<11} {:<7} {}",
                    i + 1,
                    cap.capability_id,
                    cap.safety_class.as_str(),
                    cap.sensitivity.as_str(),
                    cap.description
                ));
            }
        }
        self.spans();

        // 2. Grants.
        self.header(
            "grants",
            "grants: the analyst asks for tokens (policy + HMAC signature)",
        );
        let analyst = &cast.analyst;
        let list = self.grant(LIST, analyst, "", &[])?;
        self.note(&format!(
            "{LIST} → token {} for {} (expires {}), constraints {}",
            list.token_id,
            list.principal_id,
            list.expires_at,
            list.constraints.to_value()
        ));
        let spend = self.grant(SPEND, analyst, "", &[])?;
        let reminders = self.grant(REMINDERS, analyst, "", &[])?;
        self.note(&format!(
            "{SPEND} → token {}; {REMINDERS} → token {}",
            spend.token_id, reminders.token_id
        ));
        self.spans();

        // 3. Every response mode.
        let list_args = || InvokeRequest::new(&list, analyst);
        self.header("mode_summary", "invoke in summary mode: facts, not rows");
        let summary = self.invoke(Some("summary"), list_args()).await?;
        self.spans();

        self.header(
            "mode_table",
            "invoke in table mode: only the token's allowed fields",
        );
        self.invoke(Some("table"), list_args().with_mode(ResponseMode::Table))
            .await?;
        self.note(
            "e-mail and phone are not in allowed_fields: dropped before the model sees a row",
        );
        self.spans();

        self.header(
            "mode_handle_only",
            "invoke in handle_only mode: a reference, no data",
        );
        self.invoke(
            Some("handle_only"),
            list_args().with_mode(ResponseMode::HandleOnly),
        )
        .await?;
        self.spans();

        self.header(
            "mode_raw_refused",
            "invoke in raw mode as a non-admin: refused, summary instead",
        );
        self.invoke(
            Some("raw_refused"),
            list_args().with_mode(ResponseMode::Raw),
        )
        .await?;
        self.spans();

        self.header(
            "mode_raw_admin",
            "invoke in raw mode as admin: the redacted output itself",
        );
        let admin_list = self.grant(LIST, &cast.admin, "", &[])?;
        self.invoke(
            Some("raw_admin"),
            InvokeRequest::new(&admin_list, &cast.admin).with_mode(ResponseMode::Raw),
        )
        .await?;
        self.spans();

        // 4. PII redaction.
        self.header(
            "pii_redaction",
            "PII redaction: a pii_reader sees the PII fields, redacted",
        );
        let auditor_list = self.grant(LIST, &cast.auditor, "", &[("max_rows", json!(3))])?;
        self.invoke(
            Some("pii_redacted"),
            InvokeRequest::new(&auditor_list, &cast.auditor)
                .with_arg("status", "overdue")
                .with_arg(
                    "fields",
                    json!(["id", "customer_name", "email", "phone", "amount"]),
                )
                .with_mode(ResponseMode::Table),
        )
        .await?;
        self.spans();

        // 5. Expand a handle.
        self.header(
            "expand",
            "expand: the overdue rows behind the summary's handle",
        );
        let handle = summary
            .handle
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the summary frame carries no handle"))?;
        let query = ExpandQuery::from_json(&json!({
            "filter": {"status": "overdue"},
            "limit": EXPAND_LIMIT,
            "fields": ["id", "customer_name", "amount", "currency", "date"],
        }))?;
        let expanded = self.in_step(|| kernel.expand(&handle, &query, analyst))?;
        self.show(&render::frame(&expanded));
        self.spans();

        // 6. Explain.
        self.header(
            "explain",
            "explain: the audit record of the summary invocation",
        );
        let trace = self.in_step(|| kernel.explain(&summary.action_id))?;
        self.show(&render::action_trace(&trace));
        self.spans();

        // 7. A denied WRITE.
        self.header(
            "denied_write",
            "a denied WRITE: the analyst may not update invoices",
        );
        let first_id = self.first_invoice_id()?;
        for (who, justification) in [(analyst, ""), (&cast.clerk, "fix status")] {
            match self.grant(UPDATE, who, justification, &[]) {
                Ok(_) => anyhow::bail!(
                    "the grant of {UPDATE} to {} was expected to be refused",
                    who.principal_id
                ),
                Err(e) => self.show(&format!(
                    "{} asks for {UPDATE}: {}",
                    who.principal_id,
                    render::error(&e)
                )),
            }
        }
        let update = self.grant(UPDATE, &cast.clerk, UPDATE_JUSTIFICATION, &[])?;
        self.note(&format!(
            "{} with a justification of {} characters → token {}",
            cast.clerk.principal_id,
            UPDATE_JUSTIFICATION.len(),
            update.token_id
        ));
        self.invoke(
            Some("write"),
            InvokeRequest::new(&update, &cast.clerk)
                .with_arg("id", first_id.clone())
                .with_arg("status", "paid"),
        )
        .await?;
        self.spans();

        // 8. Rate limit.
        self.header(
            "rate_limit",
            "rate limit: DESTRUCTIVE is 2 calls a minute per principal",
        );
        let void = self.grant(VOID, &cast.admin, VOID_JUSTIFICATION, &[])?;
        let ids = self.last_invoice_ids(VOIDS);
        for (i, id) in ids.iter().enumerate() {
            let name = (i + 1 == ids.len()).then_some("rate_limited");
            let result = self
                .invoke(
                    name,
                    InvokeRequest::new(&void, &cast.admin).with_arg("id", id.clone()),
                )
                .await;
            match (i + 1 == ids.len(), result) {
                (false, Err(e)) => return Err(e.into()),
                (true, Ok(_)) => {
                    anyhow::bail!("the third void within a minute was expected to be refused")
                }
                _ => {}
            }
        }
        self.spans();

        // 9. Driver fallback.
        self.header(
            "driver_fallback",
            "driver fallback: the warehouse is down, the billing driver serves",
        );
        let spend_frame = self
            .invoke(
                Some("fallback"),
                InvokeRequest::new(&spend, analyst).with_arg("group_by", "currency"),
            )
            .await?;
        let served = self.in_step(|| kernel.explain(&spend_frame.action_id))?;
        self.note(&format!(
            "route [{WAREHOUSE_DRIVER}, {BILLING_DRIVER}]: attempt 1 failed, served by '{}'",
            served.driver_id
        ));
        self.spans();

        // 10. A tool failure.
        self.header(
            "tool_failure",
            "tool failure: a bad argument fails on every driver",
        );
        let failed = self
            .invoke(
                Some("driver_error"),
                InvokeRequest::new(&spend, analyst).with_arg("group_by", "customer_email"),
            )
            .await;
        if failed.is_ok() {
            anyhow::bail!("summarize_spend by customer_email was expected to fail");
        }
        self.spans();

        // 11. The remote tool.
        self.header(
            "remote_tool",
            "remote tool: the collections service over HttpDriver",
        );
        self.note(&format!(
            "GET {}{OVERDUE_PATH}?min_days={REMINDER_MIN_DAYS}, W3C traceparent in the request headers",
            self.remote_url
        ));
        let remote = self
            .invoke(
                Some("remote"),
                InvokeRequest::new(&reminders, analyst)
                    .with_arg("min_days", REMINDER_MIN_DAYS)
                    .with_mode(ResponseMode::Table),
            )
            .await?;
        if let Some(text) = remote
            .table_preview
            .first()
            .and_then(|row| row.get("reminder"))
            .and_then(Value::as_str)
        {
            self.note(&format!(
                "first reminder, as the model receives it: {text:?}"
            ));
        }
        self.note(
            "the tool's reminders name the customer's e-mail and phone: the warnings above say what the firewall redacted",
        );
        self.spans();

        // 12. The session budget.
        self.budget_step(&cast, &admin_list).await?;
        Ok(())
    }

    async fn budget_step(&mut self, cast: &Cast, token: &CapabilityToken) -> anyhow::Result<()> {
        let total = self.kernel.budget().config().total_budget;
        self.header(
            "session_budget",
            "session budget: escalation, then the budget runs out",
        );
        let session = cast.session_id.as_str();
        self.note(&format!(
            "session {session}: {total} tokens (three table answers, small on purpose)"
        ));
        let plan = [ResponseMode::Table, ResponseMode::Table, ResponseMode::Raw];
        let mut exhausted = false;
        for call in 0..BUDGET_MAX_CALLS {
            let asked = plan.get(call).copied().unwrap_or(ResponseMode::Table);
            self.note(&format!("call {}: asks for {asked}", call + 1));
            let request = InvokeRequest::new(token, &cast.admin)
                .with_mode(asked)
                .with_session(session);
            let result = self.invoke(Some("budget_exhausted"), request).await;
            let used = self.kernel.budget().usage(session).map_or(0, |u| u.used);
            match result {
                Ok(frame) => self.note(&format!(
                    "   got {}; session used {used} of {total} tokens",
                    frame.response_mode
                )),
                Err(KernelError::BudgetExhausted { .. }) => {
                    exhausted = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !exhausted {
            anyhow::bail!(
                "the session budget did not run out within {BUDGET_MAX_CALLS} calls (the firewall's table answers are smaller than expected)"
            );
        }
        self.spans();
        Ok(())
    }

    fn first_invoice_id(&self) -> anyhow::Result<String> {
        self.data
            .rows()
            .as_array()
            .and_then(|rows| rows.first())
            .and_then(|row| row.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the billing data has no invoice id"))
    }

    /// `n` invoice ids from the end of the data (repeating if it is shorter).
    fn last_invoice_ids(&self, n: usize) -> Vec<String> {
        let ids: Vec<String> = self
            .data
            .rows()
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .rev()
            .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        ids.iter()
            .cycle()
            .take(if ids.is_empty() { 0 } else { n })
            .cloned()
            .collect()
    }
}

/// The budget standings of live sessions, at most `max`, by session id.
pub fn sessions(kernel: &Kernel, max: usize) -> Vec<agent_kernel::SessionUsage> {
    let mut all = kernel.budget().sessions();
    all.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    all.truncate(max);
    all
}
