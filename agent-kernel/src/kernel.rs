//! The [`Kernel`]: discovery, grants, invocation, expansion and explanation.
//!
//! An invocation runs in stages, each its own method so that instrumentation
//! can wrap every stage as a span:
//! 1. [`Kernel::authorize`] — token verification, invoke-time policy
//!    (roles, sensitivity, row cap, rate limit) and the session budget;
//! 2. [`Kernel::execute_attempt`] — one driver attempt, called in a loop over
//!    the route with an attempt number;
//! 3. [`Kernel::apply_firewall`] — redaction and the response mode.
//!
//! No lock is held across a driver's `.await`; every store is internally
//! synchronised, so one `Kernel` serves many concurrent invocations via `&self`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use agent_kernel_otel::{AttrValue, Telemetry, kernel_span, record, record_all};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::budget::{BudgetManager, FramePayload, Reservation};
use crate::caller_ids::CallerIdRecording;
use crate::driver::{Driver, DriverError, ExecutionContext};
use crate::error::{DenialCategory, KernelError, Result};
use crate::firewall::{Budgets, Firewall, FirewallOutput, FirewallRequest};
use crate::handle::{HandleOwner, HandleStore};
use crate::ids::{self, new_id};
use crate::otel::{CapabilityLabels, TelemetrySlot, keys::OTHER};
use crate::policy::{DefaultPolicyEngine, PolicyEngine};
use crate::registry::{CapabilityRegistry, DEFAULT_MAX_RESULTS};
use crate::router::{Router, StaticRouter};
use crate::store::sink::{AuditSink, SinkSlot}; // issue 21
use crate::store::{AuditAck, AuditLog, MemoryRevocations, RevocationStore, Stores}; // issue 21
use crate::time::{Clock, SystemClock};
use crate::token::{CapabilityToken, HmacTokenProvider};
use crate::trace::TraceStore;
use crate::types::{
    ActionTrace, Args, Capability, CapabilityGrant, CapabilityRequest, Constraints, Frame, Handle,
    Principal, Provenance, RawResult, ResponseMode, TraceOutcome,
};

/// One invocation: the token, who presents it, the driver arguments, the
/// requested response mode and, optionally, the session to charge.
///
/// ```
/// # use agent_kernel::*;
/// # fn demo(token: &CapabilityToken, principal: &Principal) {
/// let req = InvokeRequest::new(token, principal)
///     .with_arg("status", "overdue")
///     .with_mode(ResponseMode::Table)
///     .with_session("chat-42");
/// # let _ = req;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct InvokeRequest<'a> {
    /// The signed token.
    pub token: &'a CapabilityToken,
    /// The principal presenting it (must be the token's).
    pub principal: &'a Principal,
    /// Driver arguments: data for the tool. They select nothing: the
    /// operation a driver runs is bound to the capability
    /// ([`Capability::with_impl`](crate::Capability::with_impl)).
    pub args: Args,
    /// Requested response mode.
    pub response_mode: ResponseMode,
    /// Session whose budget the invocation is charged to.
    pub session_id: Option<&'a str>,
}

impl<'a> InvokeRequest<'a> {
    /// A summary-mode request with no arguments and no session.
    pub fn new(token: &'a CapabilityToken, principal: &'a Principal) -> Self {
        Self {
            token,
            principal,
            args: Args::new(),
            response_mode: ResponseMode::Summary,
            session_id: None,
        }
    }

    /// Replaces the arguments.
    #[must_use]
    pub fn with_args(mut self, args: Args) -> Self {
        self.args = args;
        self
    }

    /// Adds one argument.
    #[must_use]
    pub fn with_arg(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.args.insert(key.into(), value.into());
        self
    }

    /// Sets the requested response mode.
    #[must_use]
    pub fn with_mode(mut self, mode: ResponseMode) -> Self {
        self.response_mode = mode;
        self
    }

    /// Charges the invocation to `session_id`'s budget.
    #[must_use]
    pub fn with_session(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }
}

/// An expansion query over a stored result: equality `filter` (AND), then
/// `offset` and `limit`, then `fields` projection.
///
/// ```
/// use agent_kernel::ExpandQuery;
/// let q = ExpandQuery::from_json(&serde_json::json!({"filter": {"status": "paid"}, "limit": 5}))?;
/// assert_eq!(q.limit, Some(5));
/// assert!(ExpandQuery::from_json(&serde_json::json!({"limit": -1})).is_err());
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpandQuery {
    /// Keep rows whose fields equal all these values.
    pub filter: Map<String, Value>,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return at most (further capped by the token's `max_rows`).
    pub limit: Option<usize>,
    /// Keep only these fields of each row.
    pub fields: Option<Vec<String>>,
}

impl ExpandQuery {
    /// Parses a query object strictly (unknown keys, negative or non-integer
    /// numbers are [`KernelError::InvalidArgument`]).
    pub fn from_json(value: &Value) -> Result<Self> {
        Self::deserialize(value).map_err(|e| {
            // serde's message quotes the caller's values: dropped.
            let message = crate::token::unquote_values(&e.to_string());
            KernelError::invalid_argument(format!(
                "invalid expand query: {}",
                crate::otel::scrub(&message)
            ))
        })
    }

    /// The query as JSON, in the form [`from_json`](Self::from_json) reads.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("filter".to_owned(), Value::Object(self.filter.clone()));
        out.insert("offset".to_owned(), Value::from(self.offset));
        if let Some(limit) = self.limit {
            out.insert("limit".to_owned(), Value::from(limit));
        }
        if let Some(fields) = &self.fields {
            out.insert("fields".to_owned(), Value::from(fields.clone()));
        }
        Value::Object(out)
    }
}

/// What [`Kernel::authorize`] settles for an invocation.
#[derive(Debug)]
pub struct Authorization {
    /// The capability being invoked.
    pub capability: Arc<Capability>,
    /// The row cap in force.
    pub max_rows: u64,
    /// The mode to use after the admin gate and budget escalation.
    pub effective_mode: ResponseMode,
    /// The session budget reservation, if a session was given.
    pub reservation: Option<Reservation>,
    /// Notes for the frame about mode changes.
    pub warnings: Vec<String>,
}

/// Builder for [`Kernel`].
pub struct KernelBuilder {
    registry: CapabilityRegistry,
    policy: Option<Arc<dyn PolicyEngine>>,
    tokens: Option<HmacTokenProvider>,
    secret: Option<Vec<u8>>,
    router: Option<Arc<dyn Router>>,
    budgets: Budgets,
    handles: Option<HandleStore>,
    traces: Option<TraceStore>,
    budget: Option<BudgetManager>,
    clock: Option<Arc<dyn Clock>>,
    drivers: Vec<Arc<dyn Driver>>,
    caller_ids: CallerIdRecording,
    // issue 21: the durable stores (default: in memory)
    audit_log: Option<Arc<dyn AuditLog>>,
    revocations: Option<Arc<dyn RevocationStore>>,
}

impl fmt::Debug for KernelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelBuilder")
            .field("capabilities", &self.registry.len())
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl KernelBuilder {
    /// The policy engine (default: [`DefaultPolicyEngine`] on the kernel's clock).
    #[must_use]
    pub fn policy(mut self, policy: impl PolicyEngine + 'static) -> Self {
        self.policy = Some(Arc::new(policy));
        self
    }

    /// A ready token provider (overrides [`secret`](Self::secret)).
    #[must_use]
    pub fn token_provider(mut self, tokens: HmacTokenProvider) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The HMAC secret (default: `AGENT_KERNEL_SECRET`, else a random dev secret).
    #[must_use]
    pub fn secret(mut self, secret: impl AsRef<[u8]>) -> Self {
        self.secret = Some(secret.as_ref().to_vec());
        self
    }

    /// The router (default: [`StaticRouter`] with only the `["memory"]` fallback).
    #[must_use]
    pub fn router(mut self, router: impl Router + 'static) -> Self {
        self.router = Some(Arc::new(router));
        self
    }

    /// Firewall budgets (default 50 rows / 20 fields / 4 000 chars / depth 3).
    #[must_use]
    pub fn budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = budgets;
        self
    }

    /// The handle store (default: 1 h TTL, 10 000 entries, kernel clock).
    #[must_use]
    pub fn handle_store(mut self, handles: HandleStore) -> Self {
        self.handles = Some(handles);
        self
    }

    /// The trace store (default: 10 000 traces).
    #[must_use]
    pub fn trace_store(mut self, traces: TraceStore) -> Self {
        self.traces = Some(traces);
        self
    }

    // issue 21
    /// The durable audit log every record is appended to, besides the
    /// in-memory [`trace_store`](Self::trace_store) window (default: none, the
    /// window is the audit trail). An invocation is refused before its tool
    /// acts when the log cannot take its record; with a log that acknowledges
    /// writes, `invoke` returns once its record is durable.
    #[must_use]
    pub fn audit_log(mut self, log: Arc<dyn AuditLog>) -> Self {
        self.audit_log = Some(log);
        self
    }

    // issue 21
    /// Where revocations are made durable (default: in memory). They are
    /// loaded by [`build`](Self::build) and written through by
    /// [`Kernel::revoke_token`] and [`Kernel::revoke_all`].
    #[must_use]
    pub fn revocation_store(mut self, store: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(store);
        self
    }

    // issue 21
    /// Both stores at once (see [`Stores`]).
    #[must_use]
    pub fn stores(self, stores: Stores) -> Self {
        self.audit_log(stores.audit)
            .revocation_store(stores.revocations)
    }

    /// The session budget manager (default: 100 000 tokens per session).
    #[must_use]
    pub fn budget_manager(mut self, budget: BudgetManager) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The clock given to the components this builder creates (default: system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How principal and session ids — strings the application supplies,
    /// possibly personal data — are recorded in spans, metric labels and log
    /// lines: as given (the default), as keyed pseudonyms, or not at all (see
    /// [`CallerIdRecording`]). A pseudonym key equal to the token-signing
    /// secret is refused by [`build`](Self::build).
    #[must_use]
    pub fn caller_ids(mut self, recording: CallerIdRecording) -> Self {
        self.caller_ids = recording;
        self
    }

    /// Registers a driver at construction.
    #[must_use]
    pub fn driver(mut self, driver: impl Driver + 'static) -> Self {
        self.drivers.push(Arc::new(driver));
        self
    }

    /// Builds the kernel. An empty secret, or a pseudonym key
    /// ([`caller_ids`](Self::caller_ids)) that is the token-signing secret, is
    /// [`KernelError::InvalidConfig`].
    pub fn build(self) -> Result<Kernel> {
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let tokens = match (self.tokens, self.secret) {
            (Some(t), _) => t,
            (None, Some(secret)) => HmacTokenProvider::new(secret)?.with_clock(Arc::clone(&clock)),
            (None, None) => HmacTokenProvider::from_env()?.with_clock(Arc::clone(&clock)),
        };
        if let CallerIdRecording::Pseudonymized(key) = &self.caller_ids {
            if tokens.signs_with(key) {
                return Err(KernelError::InvalidConfig {
                    message:
                        "the pseudonym key for caller ids must not be the token-signing secret"
                            .to_owned(),
                });
            }
        }
        // issue 21: the chain key is not the token secret; revocations made
        // durable before are back in force before the first verify.
        if let Some(key) = self.audit_log.as_ref().and_then(|log| log.chain_key()) {
            if tokens.signs_with_audit_key(key) {
                return Err(KernelError::invalid_config(
                    "the audit chain key must not be the token-signing secret",
                ));
            }
        }
        let revocations = self
            .revocations
            .unwrap_or_else(|| Arc::new(MemoryRevocations::new()));
        tokens.restore(&revocations.load(clock.now())?);
        let policy: Arc<dyn PolicyEngine> = match self.policy {
            Some(p) => p,
            None => Arc::new(
                DefaultPolicyEngine::builder()
                    .clock(Arc::clone(&clock))
                    .build()?,
            ),
        };
        let drivers = self
            .drivers
            .into_iter()
            .map(|d| (d.driver_id().to_owned(), RegisteredDriver::new(d)))
            .collect();
        Ok(Kernel {
            registry: self.registry,
            policy,
            tokens,
            router: self.router.unwrap_or_else(|| Arc::new(StaticRouter::new())),
            firewall: Firewall::new(Budgets { ..self.budgets }),
            budgets: self.budgets,
            handles: self
                .handles
                .unwrap_or_else(|| HandleStore::new().with_clock(Arc::clone(&clock))),
            audit: AuditSink::new(self.traces.unwrap_or_default(), self.audit_log), // issue 21
            revocations,                                                            // issue 21
            budget: self.budget.unwrap_or_default(),
            drivers: RwLock::new(drivers),
            clock,
            telemetry: Arc::default(),
            caller_ids: self.caller_ids,
        })
    }
}

/// The weight (array elements, object entries and bytes of text, see
/// [`firewall::weighs_more_than`](crate::firewall::weighs_more_than)) above
/// which the firewall's work on a result leaves the async worker's task
/// queue (`tokio::task::block_in_place` on a multi-threaded runtime).
pub const OFFLOAD_WEIGHT: usize = 256 * 1024;

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
    budgets: Budgets,
    handles: HandleStore,
    audit: AuditSink,                      // issue 21
    revocations: Arc<dyn RevocationStore>, // issue 21
    budget: BudgetManager,
    drivers: RwLock<HashMap<String, RegisteredDriver>>,
    clock: Arc<dyn Clock>,
    telemetry: Arc<TelemetrySlot>,
    caller_ids: CallerIdRecording,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let drivers: Vec<String> = self
            .drivers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
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

/// The audit record of an invocation in flight: recorded exactly once, by
/// `finish`, or as `cancelled` if the invocation future is dropped first.
struct PendingTrace<'k> {
    audit: &'k AuditSink,   // issue 21
    slot: Option<SinkSlot>, // issue 21: reserved before the driver runs
    started: Instant,
    trace: Option<ActionTrace>,
}

impl PendingTrace<'_> {
    fn args(&self) -> &Args {
        static EMPTY: std::sync::OnceLock<Args> = std::sync::OnceLock::new();
        self.trace
            .as_ref()
            .map_or_else(|| EMPTY.get_or_init(Args::new), |t| &t.args)
    }

    // issue 21: returns the acknowledgement of the durable copy.
    fn finish(mut self, update: impl FnOnce(&mut ActionTrace)) -> AuditAck {
        match (self.trace.take(), self.slot.take()) {
            (Some(mut t), Some(slot)) => {
                update(&mut t);
                t.duration = Some(self.started.elapsed());
                self.audit.record(slot, t)
            }
            _ => AuditAck::ready(Ok(())),
        }
    }
}

impl Drop for PendingTrace<'_> {
    fn drop(&mut self) {
        if let Some(mut t) = self.trace.take() {
            t.outcome = TraceOutcome::Cancelled;
            t.error = Some("invocation was cancelled before it completed".to_owned());
            t.duration = Some(self.started.elapsed());
            // issue 21: not awaited (a drop cannot wait); the writer reports a failure.
            if let Some(slot) = self.slot.take() {
                drop(self.audit.record(slot, t));
            }
        }
    }
}

impl Kernel {
    /// A builder over `registry`.
    pub fn builder(registry: CapabilityRegistry) -> KernelBuilder {
        KernelBuilder {
            registry,
            policy: None,
            tokens: None,
            secret: None,
            router: None,
            budgets: Budgets::default(),
            handles: None,
            traces: None,
            budget: None,
            clock: None,
            drivers: Vec::new(),
            caller_ids: CallerIdRecording::AsGiven,
            audit_log: None,   // issue 21
            revocations: None, // issue 21
        }
    }

    /// Registers (or replaces) a driver under its [`Driver::driver_id`].
    pub fn register_driver(&self, driver: impl Driver + 'static) {
        self.register_driver_arc(Arc::new(driver));
    }

    /// Registers (or replaces) a shared driver.
    pub fn register_driver_arc(&self, driver: Arc<dyn Driver>) {
        let id = driver.driver_id().to_owned();
        self.drivers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, RegisteredDriver::new(driver));
    }

    fn driver(&self, driver_id: &str) -> Option<RegisteredDriver> {
        self.drivers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(driver_id)
            .cloned()
    }

    // ── Discovery and grants ────────────────────────────────────────────────

    /// Capabilities matching a natural-language goal, best first (at most 10).
    pub fn request_capabilities(&self, goal: &str) -> Vec<CapabilityRequest> {
        self.registry.search(goal, DEFAULT_MAX_RESULTS)
    }

    #[kernel_span(
        name = "agent_kernel.grant",
        telemetry = self.telemetry(),
        attrs(
            principal_id = self.caller_ids.render(&principal.principal_id),
            capability_id = CapabilityLabels::of(&self.registry, &request.capability_id).capability_id(),
            safety_class = CapabilityLabels::of(&self.registry, &request.capability_id).safety_class(),
        ),
    )]
    fn grant_inner(
        &self,
        request: &CapabilityRequest,
        principal: &Principal,
        justification: &str,
        keep_constraints: bool,
    ) -> Result<(crate::types::PolicyDecision, CapabilityToken, String)> {
        let decision = self
            .registry
            .get(&request.capability_id)
            .and_then(|capability| {
                self.evaluate_grant_policy(request, capability, principal, justification)
                    .map(|decision| (capability, decision))
            });
        let (capability, mut decision) = match decision {
            Ok(granted) => granted,
            Err(err) => {
                self.record_refused_grant(request, principal, &err);
                return Err(err);
            }
        };
        let audit_id = new_id();
        let constraints = if keep_constraints {
            decision.constraints.clone()
        } else {
            std::mem::take(&mut decision.constraints)
        };
        let token = self.tokens.issue(
            &capability.capability_id,
            &principal.principal_id,
            constraints,
            None,
            &audit_id,
        );
        log::info!(
            "grant_capability principal_id={} capability_id={} token_id={} audit_id={}",
            self.caller_ids.for_log(&principal.principal_id),
            capability.capability_id,
            token.token_id,
            audit_id
        );
        Ok((decision, token, audit_id))
    }

    /// The audit record of a refused grant: no token, no driver; the
    /// requested constraints as its arguments (redacted by the store), the
    /// capability id only if it is registered.
    fn record_refused_grant(
        &self,
        request: &CapabilityRequest,
        principal: &Principal,
        err: &KernelError,
    ) {
        let registered = self.registry.get(&request.capability_id).is_ok();
        // issue 21: no slot was reserved for a grant; one is taken now.
        self.audit.record_unreserved(ActionTrace {
            action_id: new_id(),
            capability_id: if registered {
                request.capability_id.clone()
            } else {
                OTHER.to_owned()
            },
            principal_id: principal.principal_id.clone(),
            token_id: String::new(),
            invoked_at: self.clock.now(),
            args: request.constraints.clone().into_iter().collect(),
            requested_mode: ResponseMode::Summary,
            response_mode: ResponseMode::Summary,
            driver_id: String::new(),
            handle_id: None,
            session_id: None,
            error: Some(err.to_string()),
            denial_category: err.denial_category(),
            outcome: TraceOutcome::Denied,
            duration: None,
            trace_id: None,
            span_id: None,
        });
    }

    /// The grant-time policy decision, as its own `agent_kernel.policy.evaluate` span.
    #[kernel_span(
        name = "agent_kernel.policy.evaluate",
        attrs(
            capability_id = CapabilityLabels::of(&self.registry, &request.capability_id).capability_id(),
            decision = |r| decision_label(r),
            reason_category = |r| reason_category_label(r),
        ),
        metrics(counter(
            name = "agent_kernel.policy_denials",
            unit = "{denial}",
            description = "Policy denials at grant and at invoke, by category",
            labels(capability_id, reason_category),
            when = denied,
        )),
    )]
    fn evaluate_grant_policy(
        &self,
        request: &CapabilityRequest,
        capability: &Capability,
        principal: &Principal,
        justification: &str,
    ) -> Result<crate::types::PolicyDecision> {
        self.policy
            .evaluate(request, capability, principal, justification)
    }

    /// Evaluates the policy and, if it allows, issues a signed token.
    pub fn grant_capability(
        &self,
        request: &CapabilityRequest,
        principal: &Principal,
        justification: &str,
    ) -> Result<CapabilityGrant> {
        let (decision, token, audit_id) =
            self.grant_inner(request, principal, justification, true)?;
        Ok(CapabilityGrant {
            request: request.clone(),
            principal: principal.clone(),
            decision,
            token,
            audit_id,
        })
    }

    /// Like [`grant_capability`](Self::grant_capability) but returns only the token.
    pub fn get_token(
        &self,
        request: &CapabilityRequest,
        principal: &Principal,
        justification: &str,
    ) -> Result<CapabilityToken> {
        self.grant_inner(request, principal, justification, false)
            .map(|(_, token, _)| token)
    }

    // issue 21: written through to the revocation store before returning.
    /// Revokes one token (idempotent) and makes the revocation durable in the
    /// [revocation store](KernelBuilder::revocation_store) before returning.
    ///
    /// Errors: [`KernelError::StoreUnavailable`] when the store cannot take
    /// it; the token is refused by this kernel all the same, but a kernel
    /// built after a restart would not know.
    pub fn revoke_token(&self, token_id: &str) -> Result<()> {
        let revocation = self.tokens.revoke(token_id);
        self.revocations
            .persist(std::slice::from_ref(&revocation), self.clock.now())
    }

    // issue 21: written through to the revocation store before returning.
    /// Revokes every token issued to `principal_id`, durably (as
    /// [`revoke_token`](Self::revoke_token)); returns how many were newly revoked.
    pub fn revoke_all(&self, principal_id: &str) -> Result<usize> {
        let (newly, revocation) = self.tokens.revoke_all_recorded(principal_id);
        self.revocations
            .persist(std::slice::from_ref(&revocation), self.clock.now())?;
        Ok(newly)
    }

    // ── Invocation ──────────────────────────────────────────────────────────

    /// Invokes the token's capability with `args` and returns a bounded frame.
    ///
    /// Not an `async fn`: the future returned is the invocation's own, so no
    /// wrapper future copies it once more per call.
    pub fn invoke<'a>(
        &'a self,
        token: &'a CapabilityToken,
        principal: &'a Principal,
        args: Args,
        response_mode: ResponseMode,
    ) -> impl Future<Output = Result<Frame>> + Send + 'a {
        self.invoke_with(InvokeRequest {
            token,
            principal,
            args,
            response_mode,
            session_id: None,
        })
    }

    /// Invokes with every option (see [`InvokeRequest`]).
    ///
    /// Verifies the token (revoked → expired → signature → principal), evaluates
    /// the policy again against the token's signed constraints, reserves session
    /// budget, tries the route's drivers in order, stores the full result under a
    /// handle (all modes but raw), passes it through the firewall, and records an
    /// [`ActionTrace`]. Policy denials and driver failures are recorded too.
    ///
    /// Not an `async fn` either, for the same reason as [`invoke`](Self::invoke).
    pub fn invoke_with<'a>(
        &'a self,
        request: InvokeRequest<'a>,
    ) -> impl Future<Output = Result<Frame>> + Send + 'a {
        let labels = CapabilityLabels::if_enabled(&self.registry, &request.token.capability_id);
        self.invoke_traced(request, labels)
    }

    /// [`invoke_with`](Self::invoke_with) with the capability's telemetry
    /// labels looked up once for the span, its metrics and the policy span.
    #[kernel_span(
        name = "agent_kernel.invoke",
        telemetry = self.telemetry(),
        attrs(
            principal_id = self.caller_ids.render(&request.principal.principal_id),
            capability_id = CapabilityLabels::or_lookup(labels, &self.registry, &request.token.capability_id).capability_id(),
            safety_class = CapabilityLabels::or_lookup(labels, &self.registry, &request.token.capability_id).safety_class(),
            sensitivity = CapabilityLabels::or_lookup(labels, &self.registry, &request.token.capability_id).sensitivity(),
            response_mode = request.response_mode,
            session_id = request.session_id.and_then(|s| self.caller_ids.render(s)),
            action_id = deferred,
            driver_id = deferred,
            effective_response_mode = deferred,
            "gen_ai.operation.name" = "execute_tool",
            "gen_ai.tool.name" = CapabilityLabels::or_lookup(labels, &self.registry, &request.token.capability_id).capability_id(),
            "gen_ai.tool.call.id" = deferred,
        ),
        metrics(
            counter(
                name = "agent_kernel.invocations",
                unit = "{invocation}",
                description = "Kernel invocations by capability, safety class and outcome",
                labels(capability_id, safety_class, status),
            ),
            histogram(
                name = "agent_kernel.invocation_duration",
                unit = "ms",
                description = "Kernel invocation latency",
                buckets = [
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 100, 500, 1000, 10000
                ],
                labels(capability_id, safety_class, status),
            ),
        ),
    )]
    // `labels` is only read by the generated span code.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    async fn invoke_traced(
        &self,
        request: InvokeRequest<'_>,
        labels: Option<CapabilityLabels<'_>>,
    ) -> Result<Frame> {
        let started = Instant::now();
        let invoked_at = self.clock.now();
        let InvokeRequest {
            token,
            principal,
            args,
            response_mode,
            session_id,
        } = request;
        let action_id = new_id();
        // Correlation both ways: the span carries the action id, the audit
        // record carries the span's ids.
        let (trace_id, span_id) = if agent_kernel_otel::is_enabled() {
            // One shared copy of the id for both keys.
            let id = AttrValue::Shared(Arc::from(action_id.as_str()));
            record_all(&[("action_id", &id), ("gen_ai.tool.call.id", &id)]);
            agent_kernel_otel::current_trace_ids().unzip()
        } else {
            (None, None)
        };

        // The audit record, filled in as the stages run.
        let mut trace = ActionTrace {
            action_id,
            capability_id: token.capability_id.clone(),
            principal_id: principal.principal_id.clone(),
            token_id: token.token_id.clone(),
            invoked_at,
            args,
            requested_mode: response_mode,
            response_mode,
            driver_id: String::new(),
            handle_id: None,
            session_id: session_id.map(str::to_owned),
            error: None,
            denial_category: None,
            outcome: TraceOutcome::Success,
            duration: None,
            trace_id,
            span_id,
        };

        // issue 21: the audit slot, before anything acts. A store that cannot
        // take the record refuses the invocation; the refusal stays in memory.
        let slot = match self.audit.reserve() {
            Ok(slot) => slot,
            Err(err) => {
                trace.token_id = ids::for_telemetry(&trace.token_id).to_owned();
                if self.registry.get(&trace.capability_id).is_err() {
                    OTHER.clone_into(&mut trace.capability_id);
                }
                trace.error = Some(err.to_string());
                trace.outcome = TraceOutcome::Denied;
                trace.duration = Some(started.elapsed());
                log::error!("invoke_refused_audit_unavailable error={err}");
                self.audit.window().record(trace);
                return Err(err);
            }
        };

        let auth = match self.authorize_traced(token, principal, response_mode, session_id, labels)
        {
            Ok(auth) => auth,
            Err(err) => {
                // Every refusal is audited, token failures included. An
                // unverified token's ids are the caller's text: recorded only
                // in the kernel's shapes (`_INVALID`, `_OTHER` otherwise).
                let registered = self.registry.get(&trace.capability_id).is_ok();
                if err.is_token_error() || !registered {
                    trace.token_id = ids::for_telemetry(&trace.token_id).to_owned();
                }
                if !registered {
                    OTHER.clone_into(&mut trace.capability_id);
                }
                trace.error = Some(err.to_string());
                trace.denial_category = err.denial_category();
                trace.outcome = TraceOutcome::Denied;
                trace.duration = Some(started.elapsed());
                // issue 21: the refusal's own error is returned, durable or not.
                let _ = self.audit.record(slot, trace).await;
                return Err(err);
            }
        };
        let Authorization {
            capability,
            max_rows,
            effective_mode,
            reservation,
            mut warnings,
        } = auth;

        trace.response_mode = effective_mode;
        let action_id = trace.action_id.clone();
        let pending = PendingTrace {
            audit: &self.audit,
            slot: Some(slot), // issue 21
            started,
            trace: Some(trace),
        };

        // Stage 2: drivers in route order; an unregistered id is skipped.
        let route = self.router.route(&token.capability_id);
        let mut outcome: Option<(RawResult, RegisteredDriver)> = None;
        let mut last_error: Option<DriverError> = None;
        let mut attempt: u32 = 0;
        {
            let ctx = ExecutionContext {
                capability_id: &token.capability_id,
                principal_id: &principal.principal_id,
                args: pending.args(),
                constraints: &token.constraints,
                action_id: &action_id,
                operation: capability
                    .impl_ref
                    .as_ref()
                    .map_or(capability.capability_id.as_str(), |r| r.operation.as_str()),
            };
            for driver_id in route.iter() {
                let Some(driver) = self.driver(driver_id) else {
                    continue;
                };
                attempt += 1;
                match self
                    .execute_attempt_labelled(driver.driver.as_ref(), &ctx, attempt, &driver.label)
                    .await
                {
                    Ok(raw) => {
                        outcome = Some((raw, driver));
                        break;
                    }
                    Err(err) => {
                        log::warn!(
                            "driver_failure action_id={action_id} capability_id={} driver_id={driver_id} attempt={attempt}",
                            token.capability_id
                        );
                        last_error = Some(err);
                    }
                }
            }
        }

        let Some((raw, served_by)) = outcome else {
            drop(reservation);
            let (message, status, last_driver) = match &last_error {
                Some(e) => (
                    self.firewall
                        .redactor()
                        .redact_str(&e.to_string())
                        .into_owned(),
                    e.status,
                    e.driver_id.clone(),
                ),
                None => (
                    format!("no registered driver on route [{}]", route.join(", ")),
                    None,
                    String::new(),
                ),
            };
            let err = KernelError::DriverError {
                capability_id: token.capability_id.clone(),
                last_error: message,
                status,
            };
            let text = err.to_string();
            let _ = pending
                .finish(|t| {
                    t.outcome = TraceOutcome::DriverError;
                    t.driver_id = last_driver;
                    t.error = Some(text);
                })
                .await; // issue 21
            return Err(err);
        };

        // Stage 3: handle, then firewall.
        let handle = (effective_mode != ResponseMode::Raw).then(|| {
            self.handles.store(
                &token.capability_id,
                Arc::clone(&raw.data),
                HandleOwner {
                    principal_id: principal.principal_id.clone(),
                    token: token.clone(),
                    action_id: action_id.clone(),
                    session_id: session_id.map(str::to_owned),
                },
            )
        });
        let is_admin = principal.has_role("admin");
        // The firewall applies the admin gate too: hand it the raw request that
        // the gate turned into summary, so that `agent_kernel.firewall.apply`
        // shows the requested and the effective mode (same output).
        let firewall_mode = if response_mode == ResponseMode::Raw
            && effective_mode == ResponseMode::Summary
            && !is_admin
        {
            ResponseMode::Raw
        } else {
            effective_mode
        };
        let fw = self.off_the_worker(&raw.data, || {
            self.apply_firewall(
                &raw.data,
                firewall_mode,
                &token.constraints,
                max_rows,
                is_admin,
            )
        });
        for warning in fw.warnings {
            // The fallback warning is already there (from `authorize`).
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        let frame = Frame {
            action_id: action_id.clone(),
            capability_id: capability.capability_id.clone(),
            response_mode: fw.effective_mode,
            facts: fw.facts,
            table_preview: fw.table_preview,
            handle,
            warnings,
            provenance: Provenance {
                capability_id: capability.capability_id.clone(),
                principal_id: principal.principal_id.clone(),
                invoked_at,
                action_id,
            },
            raw_data: fw.raw_data,
        };
        let frame = match reservation {
            Some(reservation) => match self
                .charge_frame(reservation, frame)
                .or_else(|err| self.refuse_over_budget(err, &capability.capability_id, labels))
            {
                Ok(frame) => frame,
                Err(err) => {
                    let text = err.to_string();
                    let _ = pending
                        .finish(|t| {
                            t.outcome = TraceOutcome::Denied;
                            t.denial_category = err.denial_category();
                            t.driver_id = served_by.driver.driver_id().to_owned();
                            t.error = Some(text);
                        })
                        .await; // issue 21
                    return Err(err);
                }
            },
            None => frame,
        };
        let handle_id = frame.handle.as_ref().map(|h| h.handle_id.clone());
        let mode = frame.response_mode;
        if agent_kernel_otel::is_enabled() {
            record_all(&[
                ("driver_id", &served_by.label),
                ("effective_response_mode", &mode),
            ]);
        }
        // issue 21: with an acknowledging store, the frame is returned only
        // once its record is durable.
        pending
            .finish(|t| {
                t.driver_id = served_by.driver.driver_id().to_owned();
                t.handle_id = handle_id;
                t.response_mode = mode;
            })
            .await?;
        Ok(frame)
    }

    /// Stage 1: verifies the token, evaluates the invoke-time policy against its
    /// signed constraints, settles the response mode (admin gate for raw, then
    /// session-budget escalation) and reserves session budget.
    pub fn authorize(
        &self,
        token: &CapabilityToken,
        principal: &Principal,
        requested_mode: ResponseMode,
        session_id: Option<&str>,
    ) -> Result<Authorization> {
        let labels = CapabilityLabels::if_enabled(&self.registry, &token.capability_id);
        self.authorize_traced(token, principal, requested_mode, session_id, labels)
    }

    /// [`authorize`](Self::authorize) under its `agent_kernel.policy.evaluate`
    /// span, with the capability's labels when the caller looked them up.
    #[kernel_span(
        name = "agent_kernel.policy.evaluate",
        attrs(
            capability_id = CapabilityLabels::or_lookup(labels, &self.registry, &token.capability_id).capability_id(),
            decision = |r| decision_label(r),
            reason_category = |r| reason_category_label(r),
        ),
        metrics(counter(
            name = "agent_kernel.policy_denials",
            unit = "{denial}",
            description = "Policy denials at grant and at invoke, by category",
            labels(capability_id, reason_category),
            when = denied,
        )),
    )]
    // `labels` is only read by the generated span code.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    fn authorize_traced(
        &self,
        token: &CapabilityToken,
        principal: &Principal,
        requested_mode: ResponseMode,
        session_id: Option<&str>,
        labels: Option<CapabilityLabels<'_>>,
    ) -> Result<Authorization> {
        self.tokens
            .verify(token, &principal.principal_id, &token.capability_id)?;
        let capability = Arc::clone(self.registry.get(&token.capability_id)?);
        let decision = self
            .policy
            .evaluate_invoke(&capability, principal, &token.constraints)?;
        let mut warnings = Vec::new();
        let mut effective = requested_mode;
        if effective == ResponseMode::Raw && !principal.has_role("admin") {
            warnings.push("raw mode requires admin role; falling back to summary.".to_owned());
            effective = ResponseMode::Summary;
        }
        let reservation = match session_id {
            Some(session) => {
                let suggested = self.budget.suggested_mode(session, effective);
                if suggested != effective {
                    warnings.push(format!(
                        "session budget is running low; response mode escalated from {effective} to {suggested}."
                    ));
                    effective = suggested;
                }
                Some(self.budget.allocate(session, None)?)
            }
            None => None,
        };
        Ok(Authorization {
            capability,
            max_rows: decision.max_rows,
            effective_mode: effective,
            reservation,
            warnings,
        })
    }

    /// Stage 2: one driver attempt (`attempt` counts from 1 along the route).
    ///
    /// A driver that calls out of the process ([`Driver::is_remote`]) gets a
    /// CLIENT span, so that the callee's SERVER span pairs with it.
    pub async fn execute_attempt(
        &self,
        driver: &dyn Driver,
        ctx: &ExecutionContext<'_>,
        attempt: u32,
    ) -> std::result::Result<RawResult, DriverError> {
        let label = AttrValue::Borrowed(driver.driver_id());
        self.execute_attempt_labelled(driver, ctx, attempt, &label)
            .await
    }

    /// [`execute_attempt`](Self::execute_attempt) with the driver id as the
    /// span records it (shared with the driver table on the invoke path).
    async fn execute_attempt_labelled(
        &self,
        driver: &dyn Driver,
        ctx: &ExecutionContext<'_>,
        attempt: u32,
        label: &AttrValue<'_>,
    ) -> std::result::Result<RawResult, DriverError> {
        log::debug!(
            "driver_attempt action_id={} driver_id={} attempt={attempt}",
            ctx.action_id,
            driver.driver_id()
        );
        if driver.is_remote() {
            execute_remote(driver, ctx, attempt, label).await
        } else {
            execute_local(driver, ctx, attempt, label).await
        }
    }

    /// Runs `work` (the firewall over `data`) so that a large result does
    /// not stall the other tasks of an async worker: above
    /// [`OFFLOAD_WEIGHT`], on a multi-threaded tokio runtime, through
    /// `tokio::task::block_in_place` (the worker's other tasks move to
    /// another thread while this one works; the span context stays, since
    /// the work stays on this thread). Anywhere else it runs inline.
    fn off_the_worker<R>(&self, data: &Value, work: impl FnOnce() -> R) -> R {
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if on_worker
            && crate::firewall::weighs_more_than(data, self.budgets.max_depth, OFFLOAD_WEIGHT)
        {
            tokio::task::block_in_place(work)
        } else {
            work()
        }
    }

    /// Stage 3: redaction, allowed fields, budgets and the response mode.
    #[kernel_span(
        name = "agent_kernel.firewall.apply",
        attrs(
            response_mode = mode,
            effective_response_mode = |out: &FirewallOutput| out.effective_mode,
            rows_in = |out| out.stats.rows_in,
            rows_out = |out| out.stats.rows_out,
            redactions = |out| out.stats.redactions,
            chars = |out| out.stats.chars,
        ),
    )]
    pub fn apply_firewall(
        &self,
        data: &Value,
        mode: ResponseMode,
        constraints: &Constraints,
        max_rows: u64,
        is_admin: bool,
    ) -> FirewallOutput {
        let request = FirewallRequest {
            data,
            requested_mode: mode,
            allowed_fields: constraints.allowed_fields.as_deref(),
            max_rows: Some(usize::try_from(max_rows).unwrap_or(usize::MAX)),
            is_admin,
            budgets: &self.budgets,
        };
        self.firewall.apply(&request)
    }

    // ── Expansion and explanation ───────────────────────────────────────────

    /// Expands a handle: `filter`, `offset`, `limit`, `fields`, then the firewall
    /// (table mode) with the constraints of the token that created the handle.
    ///
    /// An expansion is an invocation of the handle, held to the same checks:
    /// only the handle's principal may expand it; the creating token must still
    /// verify (not revoked, not expired); the invoke-time policy is evaluated
    /// again (roles, tenant, rate limit, the principal's current row cap); the
    /// session the handle was created in is charged for the page; and every
    /// expansion, refused ones included, leaves an audit record (its own action
    /// id, the frame's `action_id`; the provenance names the invocation that
    /// produced the data). Filters and field selections see only what the
    /// caller would see: a name that redaction would hide is refused, and a
    /// filter compares against the redacted value.
    ///
    /// Errors: [`KernelError::MalformedId`] for a handle id this kernel cannot
    /// have issued (recorded on the span as `_INVALID`),
    /// [`KernelError::HandleNotFound`], [`KernelError::HandleExpired`],
    /// [`KernelError::HandleAccessDenied`] for anyone but the handle's principal,
    /// the creating token's verification errors, the policy's denials,
    /// [`KernelError::BudgetExhausted`], and [`KernelError::PolicyDenied`]
    /// (`invalid_constraint`) for a filter or field outside the token's
    /// `allowed_fields` or one that names no visible field.
    #[kernel_span(
        name = "agent_kernel.expand",
        telemetry = self.telemetry(),
        attrs(
            principal_id = self.caller_ids.render(&principal.principal_id),
            capability_id = CapabilityLabels::of(&self.registry, &handle.capability_id).capability_id(),
            handle_id = ids::for_telemetry(&handle.handle_id),
            rows_returned = deferred,
        ),
    )]
    pub fn expand(
        &self,
        handle: &Handle,
        query: &ExpandQuery,
        principal: &Principal,
    ) -> Result<Frame> {
        let started = Instant::now();
        let slot = self.audit.reserve()?; // issue 21: before the stored result is read
        let mut audit = self.expand_record(handle, query, principal);
        let result = self.expand_authorized(handle, query, principal, &mut audit);
        if let Err(err) = &result {
            audit.outcome = TraceOutcome::Denied;
            audit.denial_category = err.denial_category();
            audit.error = Some(err.to_string());
        }
        audit.duration = Some(started.elapsed());
        // issue 21: not awaited (expand is synchronous); the writer reports a failure.
        drop(self.audit.record(slot, audit));
        result
    }

    /// The audit record of an expansion, before its checks run.
    fn expand_record(
        &self,
        handle: &Handle,
        query: &ExpandQuery,
        principal: &Principal,
    ) -> ActionTrace {
        let handle_id = ids::for_telemetry(&handle.handle_id).to_owned();
        let mut args = Args::new();
        args.insert("handle_id".to_owned(), Value::String(handle_id.clone()));
        args.insert("query".to_owned(), query.to_json());
        let (trace_id, span_id) = if agent_kernel_otel::is_enabled() {
            agent_kernel_otel::current_trace_ids().unzip()
        } else {
            (None, None)
        };
        ActionTrace {
            action_id: new_id(),
            capability_id: if self.registry.get(&handle.capability_id).is_ok() {
                handle.capability_id.clone()
            } else {
                OTHER.to_owned()
            },
            principal_id: principal.principal_id.clone(),
            token_id: String::new(),
            invoked_at: self.clock.now(),
            args,
            requested_mode: ResponseMode::Table,
            response_mode: ResponseMode::Table,
            driver_id: String::new(),
            handle_id: Some(handle_id),
            session_id: None,
            error: None,
            denial_category: None,
            outcome: TraceOutcome::Success,
            duration: None,
            trace_id,
            span_id,
        }
    }

    /// [`expand`](Self::expand)'s checks and work; fills in `audit` as it goes.
    fn expand_authorized(
        &self,
        handle: &Handle,
        query: &ExpandQuery,
        principal: &Principal,
        audit: &mut ActionTrace,
    ) -> Result<Frame> {
        ids::check("handle", &handle.handle_id)?;
        let stored = self
            .handles
            .get(&handle.handle_id, &principal.principal_id)?;
        let token = &stored.owner.token;
        audit.token_id.clone_from(&token.token_id);
        audit.capability_id.clone_from(&token.capability_id);
        audit.session_id.clone_from(&stored.owner.session_id);
        self.tokens
            .verify(token, &principal.principal_id, &token.capability_id)?;
        let capability = self.registry.get(&token.capability_id)?;
        let decision = self
            .policy
            .evaluate_invoke(capability, principal, &token.constraints)?;
        let constraints = &token.constraints;
        self.check_query_names(query, constraints, &token.capability_id, principal)?;
        let reservation = match &stored.owner.session_id {
            Some(session) => Some(self.budget.allocate(session, None)?),
            None => None,
        };

        let cap = usize::try_from(decision.max_rows).unwrap_or(usize::MAX);
        let limit = query.limit.unwrap_or(usize::MAX);
        let take = limit.min(cap);
        let rows: Box<dyn Iterator<Item = &Value>> = match &*stored.data {
            Value::Array(items) => Box::new(items.iter()),
            other => Box::new(std::iter::once(other)),
        };
        let mut matched = rows
            .filter(|row| {
                query.filter.is_empty()
                    || row.as_object().is_some_and(|o| {
                        query.filter.iter().all(|(k, expected)| {
                            o.get(k)
                                .is_some_and(|v| self.visible_equals(k, v, expected))
                        })
                    })
            })
            .skip(query.offset);
        // A set: projecting a row costs one look-up per key, however many
        // fields the query names.
        let fields: Option<HashSet<&str>> = query
            .fields
            .as_ref()
            .map(|fields| fields.iter().map(String::as_str).collect());
        // Rows are copied no deeper than the firewall looks (it withholds
        // what lies below, whatever it holds): the copy, like every walk
        // over the result, stops at the depth limit.
        let max_depth = self
            .budgets
            .max_depth
            .min(crate::firewall::MAX_DEPTH_CEILING);
        let selected: Vec<Value> = matched
            .by_ref()
            .take(take)
            .map(|row| match (&fields, row) {
                (Some(fields), Value::Object(o)) => Value::Object(
                    o.iter()
                        .filter(|(k, _)| fields.contains(k.as_str()))
                        .map(|(k, v)| (k.clone(), copy_to_depth(v, 2, max_depth)))
                        .collect(),
                ),
                (_, other) => copy_to_depth(other, 1, max_depth),
            })
            .collect();
        let mut warnings = Vec::new();
        if limit > cap && matched.next().is_some() {
            warnings.push(format!(
                "expansion limited to {cap} rows by the token's max_rows."
            ));
        }
        let data = Value::Array(selected);
        let fw = self.off_the_worker(&data, || {
            self.apply_firewall(&data, ResponseMode::Table, constraints, cap as u64, false)
        });
        record("rows_returned", fw.table_preview.len());
        warnings.extend(fw.warnings);
        let frame = Frame {
            action_id: audit.action_id.clone(),
            capability_id: stored.handle.capability_id.clone(),
            response_mode: ResponseMode::Table,
            facts: Vec::new(),
            table_preview: fw.table_preview,
            handle: Some(stored.handle.clone()),
            warnings,
            provenance: Provenance {
                capability_id: stored.handle.capability_id.clone(),
                principal_id: principal.principal_id.clone(),
                invoked_at: self.clock.now(),
                action_id: stored.owner.action_id.clone(),
            },
            raw_data: None,
        };
        let frame = match reservation {
            Some(reservation) => self.charge_frame(reservation, frame)?,
            None => frame,
        };
        log::info!(
            "expand handle_id={} principal_id={}",
            handle.handle_id,
            self.caller_ids.for_log(&principal.principal_id)
        );
        Ok(frame)
    }

    /// A frame refused by [`charge_frame`](Self::charge_frame): the check
    /// after the firewall ("does this frame fit what the session has left?")
    /// is a policy denial (`budget_exhausted`) like the check before the
    /// driver ("is anything left?"), so it gets its own
    /// `agent_kernel.policy.evaluate` span and counts in
    /// `agent_kernel.policy_denials`. A frame that fits adds no span.
    #[kernel_span(
        name = "agent_kernel.policy.evaluate",
        attrs(
            capability_id = CapabilityLabels::or_lookup(labels, &self.registry, capability_id).capability_id(),
            decision = |r| decision_label(r),
            reason_category = |r| reason_category_label(r),
        ),
        metrics(counter(
            name = "agent_kernel.policy_denials",
            unit = "{denial}",
            description = "Policy denials at grant and at invoke, by category",
            labels(capability_id, reason_category),
            when = denied,
        )),
    )]
    // `capability_id` and `labels` are only read by the generated span code.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    fn refuse_over_budget(
        &self,
        err: KernelError,
        capability_id: &str,
        labels: Option<CapabilityLabels<'_>>,
    ) -> Result<Frame> {
        Err(err)
    }

    /// Charges `frame` to its session's budget. A frame never costs more than
    /// the session has left: one that does not fit (an invocation's frame or
    /// an expansion page) is refused with [`KernelError::BudgetExhausted`]
    /// and nothing is charged; the caller may ask again for less (a
    /// handle-only frame, a smaller page).
    fn charge_frame(&self, reservation: Reservation, frame: Frame) -> Result<Frame> {
        let available = self.budget.available_to(&reservation);
        let cost = self.budget.count_tokens(&FramePayload::of(&frame));
        if cost > available {
            let session_id = reservation.session_id().to_owned();
            drop(reservation);
            let total = self.budget.config().total_budget;
            let used = self.budget.usage(&session_id).map_or(total, |u| u.used);
            return Err(KernelError::BudgetExhausted {
                session_id,
                used,
                total,
            });
        }
        self.budget.record_usage(reservation, cost);
        Ok(frame)
    }

    /// Refuses a filter key or field name outside the token's
    /// `allowed_fields` (an empty list allows none), and one that redaction
    /// would hide (the caller sees such a key as `[REDACTED]`, so naming it
    /// would confirm a hidden value). The name is not quoted raw.
    fn check_query_names(
        &self,
        query: &ExpandQuery,
        constraints: &Constraints,
        capability_id: &str,
        principal: &Principal,
    ) -> Result<()> {
        let redactor = self.firewall.redactor();
        for name in query.filter.keys().chain(query.fields.iter().flatten()) {
            let reason = if matches!(redactor.redact_str(name), Cow::Owned(_)) {
                "a filter or field names no visible field".to_owned()
            } else if constraints
                .allowed_fields
                .as_deref()
                .is_some_and(|allowed| !allowed.iter().any(|a| a == name))
            {
                format!("field '{name}' is not in the token's allowed_fields")
            } else {
                continue;
            };
            return Err(KernelError::PolicyDenied {
                capability_id: capability_id.to_owned(),
                principal_id: principal.principal_id.clone(),
                reason,
                category: DenialCategory::InvalidConstraint,
            });
        }
        Ok(())
    }

    /// Whether a stored field, as the caller would see it after redaction,
    /// equals `expected`. Filters compare against what is visible, never the
    /// raw value, so a filter cannot confirm a guessed e-mail address or card
    /// number that redaction hides.
    fn visible_equals(&self, key: &str, value: &Value, expected: &Value) -> bool {
        if crate::firewall::is_sensitive_field_name(key) {
            return expected.as_str() == Some(crate::firewall::REDACTED);
        }
        match (value, expected) {
            (Value::String(s), Value::String(e)) => {
                self.firewall.redactor().redact_str(s) == e.as_str()
            }
            // Nested values may hold what redaction hides at depth: no match.
            (Value::String(_) | Value::Array(_) | Value::Object(_), _) => false,
            // A number the digit rules redact (a card held as a JSON number)
            // shows as `[REDACTED]`.
            (Value::Number(n), _) if !self.firewall.redactor().number_kinds(n).is_empty() => {
                expected.as_str() == Some(crate::firewall::REDACTED)
            }
            _ => value == expected,
        }
    }

    /// The audit trace of a past invocation.
    ///
    /// Errors: [`KernelError::MalformedId`] for an action id this kernel cannot
    /// have issued (recorded on the span as `_INVALID`),
    /// [`KernelError::TraceNotFound`].
    #[kernel_span(
        name = "agent_kernel.explain",
        telemetry = self.telemetry(),
        attrs(action_id = ids::for_telemetry(action_id)),
    )]
    pub fn explain(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        ids::check("action", action_id)?;
        self.audit.get(action_id) // issue 21: the window, then the durable log
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
        self.audit.window() // issue 21
    }

    // issue 21
    /// The durable audit log, when one was set
    /// ([`KernelBuilder::audit_log`]).
    pub fn audit_log(&self) -> Option<&Arc<dyn AuditLog>> {
        self.audit.durable()
    }

    // issue 21
    /// The revocation store.
    pub fn revocation_store(&self) -> &Arc<dyn RevocationStore> {
        &self.revocations
    }

    /// The session budget manager.
    pub fn budget(&self) -> &BudgetManager {
        &self.budget
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
        &self.budgets
    }

    /// The policy engine.
    pub fn policy(&self) -> &dyn PolicyEngine {
        self.policy.as_ref()
    }

    /// The ids of the registered drivers (unordered).
    pub fn driver_ids(&self) -> Vec<String> {
        self.drivers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

/// `decision` of an `agent_kernel.policy.evaluate` span, from its result.
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
fn decision_label<T>(outcome: &Result<T>) -> AttrValue<'static> {
    AttrValue::Static(if outcome.is_ok() { "allow" } else { "deny" })
}

/// `reason_category` of an `agent_kernel.policy.evaluate` span: the denial
/// category of a denied evaluation (token errors have none).
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
fn reason_category_label<T>(outcome: &Result<T>) -> Option<DenialCategory> {
    outcome
        .as_ref()
        .err()
        .and_then(KernelError::denial_category)
}

#[kernel_span(
    name = "agent_kernel.driver.execute",
    attrs(driver_id = label, attempt),
)]
// `attempt` and `label` are only read by the generated span code.
#[cfg_attr(not(feature = "otel"), allow(unused_variables))]
async fn execute_local(
    driver: &dyn Driver,
    ctx: &ExecutionContext<'_>,
    attempt: u32,
    label: &AttrValue<'_>,
) -> std::result::Result<RawResult, DriverError> {
    driver.execute(ctx).await
}

#[kernel_span(
    name = "agent_kernel.driver.execute",
    kind = client,
    attrs(driver_id = label, attempt),
)]
#[cfg_attr(not(feature = "otel"), allow(unused_variables))]
async fn execute_remote(
    driver: &dyn Driver,
    ctx: &ExecutionContext<'_>,
    attempt: u32,
    label: &AttrValue<'_>,
) -> std::result::Result<RawResult, DriverError> {
    driver.execute(ctx).await
}

/// A registered driver and its id as a shared string, which telemetry records
/// on every attempt without copying it.
#[derive(Clone)]
struct RegisteredDriver {
    driver: Arc<dyn Driver>,
    label: AttrValue<'static>,
}

impl RegisteredDriver {
    fn new(driver: Arc<dyn Driver>) -> Self {
        let label = AttrValue::Shared(Arc::from(driver.driver_id()));
        RegisteredDriver { driver, label }
    }
}

/// Converts a JSON object into invocation [`Args`]; anything else is
/// [`KernelError::InvalidArgument`].
///
/// ```
/// let args = agent_kernel::args(serde_json::json!({"operation": "list"}))?;
/// assert_eq!(args["operation"], "list");
/// assert!(agent_kernel::args(serde_json::json!([1])).is_err());
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
pub fn args(value: Value) -> Result<Args> {
    match value {
        Value::Object(map) => Ok(map),
        // The value is the caller's: named by its JSON type, never quoted.
        other => Err(KernelError::invalid_argument(format!(
            "invocation args must be a JSON object, got {}",
            crate::types::json_kind(&other)
        ))),
    }
}

/// A copy of `value` (sitting at `depth`) down to `max_depth`: an array or
/// object at `max_depth` or deeper is copied empty. The firewall withholds
/// such a value whole (one [`DEPTH_MARKER`](crate::firewall::DEPTH_MARKER),
/// one count), so it sees the copy as it would the original; the recursion
/// is bounded by the depth limit, not by the value.
fn copy_to_depth(value: &Value, depth: usize, max_depth: usize) -> Value {
    match value {
        Value::Array(_) if depth >= max_depth => Value::Array(Vec::new()),
        Value::Object(_) if depth >= max_depth => Value::Object(Map::new()),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| copy_to_depth(v, depth + 1, max_depth))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), copy_to_depth(v, depth + 1, max_depth)))
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod depth_tests {
    use serde_json::json;

    use super::copy_to_depth;
    use crate::firewall::{Budgets, Firewall};

    #[test]
    fn the_firewall_sees_a_depth_limited_copy_as_the_original() {
        let mut deep = json!({"password": "hunter2", "email": "user@example.com"});
        for i in 0..200 {
            deep = if i % 2 == 0 {
                json!([deep, 1])
            } else {
                json!({"k": deep, "n": i})
            };
        }
        let row = json!({"id": 1, "nested": deep, "list": [[["x"]]], "mail": "a@example.com"});
        for max_depth in [0, 1, 2, 3, 5, 64] {
            let firewall = Firewall::new(Budgets {
                max_depth,
                ..Budgets::default()
            });
            let copy = copy_to_depth(&row, 1, max_depth);
            assert_eq!(
                firewall.table_rows(std::slice::from_ref(&row), None, None),
                firewall.table_rows(&[copy], None, None),
                "max_depth={max_depth}"
            );
        }
    }
}
