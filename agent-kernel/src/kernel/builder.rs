//! [`KernelBuilder`]: the kernel's parts, each with a default.

use std::fmt;
use std::sync::Arc;

use agent_kernel_otel::Telemetry;

use super::Kernel;
use super::route::DriverTable;
use crate::budget::BudgetManager;
use crate::caller_ids::CallerIdRecording;
use crate::driver::Driver;
use crate::error::{KernelError, Result};
use crate::firewall::{Budgets, Firewall};
use crate::handle::HandleStore;
use crate::otel::{ContentCapture, TelemetrySlot, ToolCallTelemetry};
use crate::policy::{DefaultPolicyEngine, PolicyEngine};
use crate::registry::CapabilityRegistry;
use crate::router::{Router, StaticRouter};
use crate::store::sink::AuditSink;
use crate::store::{AuditLog, MemoryRevocations, RevocationStore, Stores};
use crate::time::{Clock, SystemClock};
use crate::token::HmacTokenProvider;
use crate::trace::TraceStore;

/// Builder for [`Kernel`].
pub struct KernelBuilder {
    registry: CapabilityRegistry,
    policy: Option<Arc<dyn PolicyEngine>>,
    tokens: Option<HmacTokenProvider>,
    secret: Option<Vec<u8>>,
    router: Option<Arc<dyn Router>>,
    limits: Budgets,
    handles: Option<HandleStore>,
    traces: Option<TraceStore>,
    sessions: Option<BudgetManager>,
    clock: Option<Arc<dyn Clock>>,
    drivers: Vec<Arc<dyn Driver>>,
    caller_ids: CallerIdRecording,
    telemetry: Option<Telemetry>,
    genai_conventions: Option<bool>,
    capture_content: Option<ContentCapture>,
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
        self.limits = budgets;
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

    /// Where revocations are made durable (default: in memory). They are
    /// loaded by [`build`](Self::build) and written through by
    /// [`Kernel::revoke_token`] and [`Kernel::revoke_all`].
    #[must_use]
    pub fn revocation_store(mut self, store: Arc<dyn RevocationStore>) -> Self {
        self.revocations = Some(store);
        self
    }

    /// Both stores at once (see [`Stores`]).
    #[must_use]
    pub fn stores(self, stores: Stores) -> Self {
        self.audit_log(stores.audit)
            .revocation_store(stores.revocations)
    }

    /// The session budget manager (default: 100 000 tokens per session).
    #[must_use]
    pub fn budget_manager(mut self, sessions: BudgetManager) -> Self {
        self.sessions = Some(sessions);
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

    /// The telemetry binding the kernel reports to (default: the
    /// OpenTelemetry globals, read lazily). With a binding given here,
    /// [`build`](Self::build) also instruments the kernel (switch on, budget
    /// gauge registered) for as long as it lives, as
    /// [`instrument_kernel_with`](crate::otel::instrument_kernel_with) would;
    /// calling that again with the same binding returns the same hook.
    /// Without the `otel` feature it records nothing.
    #[must_use]
    pub fn telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// Names the invoke span `execute_tool {tool}` and records the
    /// `gen_ai.execute_tool.duration` histogram, as the OpenTelemetry GenAI
    /// conventions do (default: on when `OTEL_SEMCONV_STABILITY_OPT_IN`
    /// lists `gen_ai_latest_experimental`; this option wins).
    #[must_use]
    pub fn genai_conventions(mut self, on: bool) -> Self {
        self.genai_conventions = Some(on);
        self
    }

    /// Records the tool call's arguments and result on the invoke span,
    /// after the firewall (see [`ContentCapture`]; default: on when
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is `true`,
    /// `span_only` or `span_and_event`; this option wins).
    #[must_use]
    pub fn capture_content(mut self, capture: ContentCapture) -> Self {
        self.capture_content = Some(capture);
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
        // The chain key is not the token secret; revocations made durable
        // before are back in force before the first verify.
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
        let mut kernel = Kernel {
            registry: self.registry,
            policy,
            tokens,
            router: self.router.unwrap_or_else(|| Arc::new(StaticRouter::new())),
            firewall: Firewall::new(Budgets { ..self.limits }),
            limits: self.limits,
            handles: self
                .handles
                .unwrap_or_else(|| HandleStore::new().with_clock(Arc::clone(&clock))),
            audit: AuditSink::new(self.traces.unwrap_or_default(), self.audit_log),
            revocations,
            sessions: self.sessions.unwrap_or_default(),
            drivers: DriverTable::new(self.drivers),
            clock,
            telemetry: Arc::<TelemetrySlot>::default(),
            caller_ids: self.caller_ids,
            tool_calls: ToolCallTelemetry::resolve(self.genai_conventions, self.capture_content),
            stats: crate::stats::Stats::default(),
            instrumentation: None,
        };
        if let Some(telemetry) = self.telemetry {
            kernel.instrumentation = Some(crate::otel::instrument_kernel_with(&kernel, telemetry));
        }
        Ok(kernel)
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
            limits: Budgets::default(),
            handles: None,
            traces: None,
            sessions: None,
            clock: None,
            drivers: Vec::new(),
            caller_ids: CallerIdRecording::AsGiven,
            telemetry: None,
            genai_conventions: None,
            capture_content: None,
            audit_log: None,
            revocations: None,
        }
    }
}
