//! The [`Kernel`]: discovery, grants, invocation, expansion and explanation.
//!
//! One file per concern, in the order a call flows:
//! - `request`: what callers hand the kernel;
//! - `builder`: the kernel's parts and their defaults;
//! - `grant`: discovery, grants, revocation;
//! - `invoke`: an invocation as its stages — **authorize**
//!   (token, policy, admin rule, budget reservation) → **route**
//!   (`route`: the fallback policy, one span per driver
//!   attempt) → **shape** (`shape`: handle, firewall, frame,
//!   budget charge) → **audit** (`audit`: the one guard that
//!   records every outcome, cancellation included);
//! - `expand`: a page of a stored result, held to the same checks.
//!
//! Telemetry reads from the stages' parameters and results
//! (`#[kernel_span]`); no stage reads its own span. No lock is held across a
//! driver's `.await`; every store is internally synchronised, so one
//! `Kernel` serves many concurrent invocations via `&self`.

mod audit;
mod builder;
mod expand;
mod grant;
mod invoke;
mod request;
mod route;
mod shape;

use std::fmt;
use std::sync::Arc;

use agent_kernel_otel::{Telemetry, kernel_span};

pub use builder::KernelBuilder;
pub use request::{ExpandQuery, InvokeRequest, MAX_TOOL_CALL_ID_LEN, args};
pub use shape::OFFLOAD_WEIGHT;

use crate::budget::BudgetManager;
use crate::caller_ids::CallerIdRecording;
use crate::driver::Driver;
use crate::error::Result;
use crate::firewall::{Budgets, Firewall};
use crate::handle::HandleStore;
use crate::ids;
use crate::otel::TelemetrySlot;
use crate::otel::keys::OTHER;
// Read by the generated span code only.
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
use crate::otel::keys;
use crate::policy::PolicyEngine;
use crate::registry::CapabilityRegistry;
use crate::router::Router;
use crate::store::sink::AuditSink;
use crate::store::{AuditLog, RevocationStore};
use crate::time::Clock;
use crate::token::HmacTokenProvider;
use crate::trace::TraceStore;
use crate::types::ActionTrace;
use route::DriverTable;

/// The capability kernel (see the [module docs](self)).
///
/// ```
/// use std::sync::Arc;
/// use agent_kernel::*;
/// use serde_json::json;
///
/// # tokio_test_block(async {
/// let mut registry = CapabilityRegistry::new();
/// registry.register(Capability::new("notes.list", "List notes", "List my notes", SafetyClass::Read))?;
/// let kernel = Kernel::builder(registry)
///     .secret("doc-example-secret-0123456789")
///     .driver(InMemoryDriver::new("memory").with_handler("notes.list", |_ctx| {
///         Ok::<_, String>(json!([{"title": "a"}, {"title": "b"}]))
///     }))
///     .build()?;
/// let alice = Principal::new("alice").with_roles(["reader"]);
/// let request = kernel.request_capabilities("list notes").remove(0);
/// let token = kernel.get_token(&request, &alice, "")?;
/// let frame = kernel.invoke(&token, &alice, Args::new(), ResponseMode::Summary).await?;
/// assert_eq!(kernel.explain(&frame.action_id)?.principal_id, "alice");
/// # Ok::<(), KernelError>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future<Output = Result<(), KernelError>>>(f: F) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap();
/// # }
/// ```
pub struct Kernel {
    registry: CapabilityRegistry,
    policy: Arc<dyn PolicyEngine>,
    tokens: HmacTokenProvider,
    router: Arc<dyn Router>,
    firewall: Firewall,
    /// The firewall's limits (rows, fields, characters, depth).
    limits: Budgets,
    handles: HandleStore,
    /// The audit trail: the in-memory window and, when configured, the
    /// durable log.
    audit: AuditSink,
    /// Where revocations are made durable.
    revocations: Arc<dyn RevocationStore>,
    /// Session budgets.
    sessions: BudgetManager,
    drivers: DriverTable,
    clock: Arc<dyn Clock>,
    telemetry: Arc<TelemetrySlot>,
    caller_ids: CallerIdRecording,
    /// How tool calls show in telemetry (GenAI opt-in, content capture).
    tool_calls: crate::otel::ToolCallTelemetry,
    /// Counters of outcomes, counted where the audit guard records.
    stats: crate::stats::Stats,
    /// The hook of a binding given to the builder, alive as long as the kernel.
    instrumentation: Option<crate::otel::Instrumentation>,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let drivers = self.drivers.ids();
        f.debug_struct("Kernel")
            .field("capabilities", &self.registry.len())
            .field("policy", &self.policy)
            .field("tokens", &self.tokens)
            .field("router", &self.router)
            .field("drivers", &drivers)
            .field("handles", &self.handles.len())
            .field("traces", &self.audit.window().len())
            .field("caller_ids", &self.caller_ids)
            .finish_non_exhaustive()
    }
}

impl Kernel {
    /// Registers (or replaces) a driver under its [`Driver::driver_id`].
    pub fn register_driver(&self, driver: impl Driver + 'static) {
        self.register_driver_arc(Arc::new(driver));
    }

    /// Registers (or replaces) a shared driver.
    pub fn register_driver_arc(&self, driver: Arc<dyn Driver>) {
        self.drivers.insert(driver);
    }

    /// The audit trace of a past invocation.
    ///
    /// Errors: [`KernelError::MalformedId`](crate::KernelError::MalformedId) for an action id this kernel cannot
    /// have issued (recorded on the span as `_INVALID`),
    /// [`KernelError::TraceNotFound`](crate::KernelError::TraceNotFound).
    #[kernel_span(
        name = keys::SPAN_EXPLAIN,
        telemetry = self.telemetry(),
        attrs(keys::ACTION_ID = ids::for_telemetry(action_id)),
    )]
    pub fn explain(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        ids::check("action", action_id)?;
        // The window first, then the durable log.
        self.audit.get(action_id)
    }

    // ── Accessors ───────────────────────────────────────────────────────────

    /// How principal and session ids are recorded in telemetry and logs
    /// ([`KernelBuilder::caller_ids`]); give it to the audit bridge's
    /// `OTelTraceExporter::with_caller_ids` (feature `otel`) so bridged spans
    /// agree.
    pub fn caller_ids(&self) -> &CallerIdRecording {
        &self.caller_ids
    }

    /// The capability registry.
    pub fn registry(&self) -> &CapabilityRegistry {
        &self.registry
    }

    /// The token provider.
    pub fn token_provider(&self) -> &HmacTokenProvider {
        &self.tokens
    }

    /// The handle store.
    pub fn handles(&self) -> &HandleStore {
        &self.handles
    }

    /// The trace store: the in-memory window of recent records (the whole
    /// audit trail unless a durable [`audit_log`](Self::audit_log) is set).
    pub fn traces(&self) -> &TraceStore {
        self.audit.window()
    }

    /// The durable audit log, when one was set ([`KernelBuilder::audit_log`]).
    pub fn audit_log(&self) -> Option<&Arc<dyn AuditLog>> {
        self.audit.durable()
    }

    /// The revocation store ([`KernelBuilder::revocation_store`]).
    pub fn revocation_store(&self) -> &Arc<dyn RevocationStore> {
        &self.revocations
    }

    /// The session budget manager.
    pub fn budget(&self) -> &BudgetManager {
        &self.sessions
    }

    /// The telemetry binding this kernel's root spans report to (the
    /// OpenTelemetry globals unless [`instrument_kernel_with`] bound others).
    ///
    /// [`instrument_kernel_with`]: crate::otel::instrument_kernel_with
    pub fn telemetry(&self) -> Telemetry {
        self.telemetry.current()
    }

    pub(crate) fn telemetry_slot(&self) -> &Arc<TelemetrySlot> {
        &self.telemetry
    }

    /// The metric label for a capability id: the id itself when registered,
    /// `_OTHER` otherwise, so that label values stay a bounded set.
    pub fn capability_label<'a>(&'a self, capability_id: &'a str) -> &'a str {
        if self.registry.get(capability_id).is_ok() {
            capability_id
        } else {
            OTHER
        }
    }

    /// The firewall.
    pub fn firewall(&self) -> &Firewall {
        &self.firewall
    }

    /// The firewall budgets.
    pub fn firewall_budgets(&self) -> &Budgets {
        &self.limits
    }

    /// The policy engine.
    pub fn policy(&self) -> &dyn PolicyEngine {
        self.policy.as_ref()
    }

    /// A snapshot of the kernel's counters (see [`KernelStats`](crate::KernelStats));
    /// works without the `otel` feature.
    pub fn stats(&self) -> crate::stats::KernelStats {
        self.stats.snapshot()
    }

    /// Where audit records go.
    fn audit_sink(&self) -> audit::Recorders<'_> {
        audit::Recorders {
            audit: &self.audit,
            stats: &self.stats,
            tool_calls: &self.tool_calls,
            telemetry: &self.telemetry,
        }
    }

    /// The ids of the registered drivers (unordered).
    pub fn driver_ids(&self) -> Vec<String> {
        self.drivers.ids()
    }
}
