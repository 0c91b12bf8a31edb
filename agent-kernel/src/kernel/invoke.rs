//! An invocation, as its stages: authorize → route → shape → audit.
//!
//! [`Kernel::invoke_with`] resolves the capability once, mints the action id
//! and opens the audit record; the pipeline then runs under the
//! `agent_kernel.invoke` span, each stage a method of its own (and a span of
//! its own where `docs/telemetry.md` names one).

use std::sync::Arc;

use agent_kernel_otel::{kernel_span, record_all};

use super::Kernel;
use super::audit::AuditGuard;
use super::request::InvokeRequest;
use crate::budget::Reservation;
use crate::driver::ExecutionContext;
use crate::error::Result;
use crate::ids::new_id;
use crate::otel::{CapturedContent, tool_type};
use crate::registry::Resolved;
use crate::token::CapabilityToken;
use crate::types::{Args, Capability, Frame, Principal, ResponseMode};

/// What [`Kernel::authorize`] settles for an invocation.
#[derive(Debug)]
pub(super) struct Authorization {
    /// The capability being invoked.
    pub(super) capability: Arc<Capability>,
    /// The row cap in force.
    pub(super) max_rows: u64,
    /// The mode to serve, after the admin rule and budget escalation.
    pub(super) mode: ResponseMode,
    /// The session budget reservation, if a session was given.
    pub(super) reservation: Option<Reservation>,
    /// Notes for the frame about mode changes.
    pub(super) warnings: Vec<String>,
    /// Whether the mode was escalated because the session's budget runs low.
    pub(super) escalated: bool,
}

impl Kernel {
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
        self.invoke_with(
            InvokeRequest::new(token, principal)
                .with_args(args)
                .with_mode(response_mode),
        )
    }

    /// Invokes with every option (see [`InvokeRequest`]).
    ///
    /// Verifies the token (revoked → expired → signature → principal), evaluates
    /// the policy again against the token's signed constraints, reserves session
    /// budget, tries the route's drivers in order, stores the full result under a
    /// handle (all modes but raw), passes it through the firewall, and records an
    /// [`ActionTrace`](crate::ActionTrace). Refusals, driver failures and
    /// cancelled calls (the future dropped before it completes) are recorded too.
    ///
    /// Not an `async fn` either, for the same reason as [`invoke`](Self::invoke).
    pub fn invoke_with<'a>(
        &'a self,
        request: InvokeRequest<'a>,
    ) -> impl Future<Output = Result<Frame>> + Send + 'a {
        let target = self.registry.resolve(&request.token.capability_id);
        let audit = AuditGuard::invocation(self.audit_sink(), &request, new_id(), self.clock.now());
        let content = self.tool_calls.content(&request.args);
        self.run_invocation(request, target, audit, content)
    }

    /// The pipeline of one invocation, under its `agent_kernel.invoke` span.
    #[kernel_span(
        name = "agent_kernel.invoke",
        telemetry = self.telemetry(),
        attrs(
            principal_id = self.caller_ids.render(&request.principal.principal_id),
            capability_id = target.capability_id_attr(),
            safety_class = target.safety_class_attr(),
            sensitivity = target.sensitivity_attr(),
            response_mode = request.response_mode,
            session_id = request.session_id.and_then(|s| self.caller_ids.render(s)),
            action_id = audit.action_id(),
            driver_id = deferred,
            effective_response_mode = |out| out.as_ref().ok().map(|f| f.response_mode),
            "gen_ai.operation.name" = "execute_tool",
            "gen_ai.tool.name" = target.capability_id_attr(),
            "gen_ai.tool.call.id" = request.tool_call_id.unwrap_or(audit.action_id()),
            "gen_ai.tool.type" = deferred,
            "gen_ai.tool.description" = target.description_attr(),
            "gen_ai.conversation.id" = request.session_id.and_then(|s| self.caller_ids.render(s)),
            "gen_ai.tool.call.arguments" = content.arguments(),
            "gen_ai.tool.call.result" = deferred,
            "openinference.span.kind" = "TOOL",
            "tool.name" = target.capability_id_attr(),
            "tool.description" = target.description_attr(),
            "session.id" = request.session_id.and_then(|s| self.caller_ids.render(s)),
            "input.value" = content.arguments(),
            "input.mime_type" = content.mime_type(),
            "output.value" = deferred,
            "output.mime_type" = content.mime_type(),
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
    async fn run_invocation(
        &self,
        request: InvokeRequest<'_>,
        target: Resolved<'_>,
        mut audit: AuditGuard<'_>,
        content: CapturedContent,
    ) -> Result<Frame> {
        audit.begin();
        let auth = match request
            .check()
            .and_then(|()| self.authorize(&request, target))
        {
            Ok(auth) => auth,
            Err(err) => return Err(audit.refused(err, target)),
        };
        audit.set_mode(auth.mode);
        audit.note(|facts| facts.escalated = auth.escalated);
        let ctx = ExecutionContext {
            capability_id: &request.token.capability_id,
            principal_id: &request.principal.principal_id,
            args: &request.args,
            constraints: &request.token.constraints,
            action_id: audit.action_id(),
            operation: auth.capability.operation(),
        };
        let served = match self.execute_route(&ctx).await {
            Ok(served) => served,
            Err(failure) => {
                audit.note(|facts| facts.fallbacks = failure.fallbacks);
                return Err(audit.failed(failure.error, failure.last_driver));
            }
        };
        audit.note(|facts| facts.fallbacks = served.fallbacks);
        let driver_id = served.driver.driver.driver_id();
        match self.shape(&request, target, auth, &served.raw, &mut audit) {
            Ok(frame) => {
                audit.served(&frame, driver_id);
                // What served and what the model received: the frame names
                // neither the driver nor this call's capture settings, so a
                // closure over the return value cannot record them.
                let result = content.result(&frame);
                record_all(&[
                    ("driver_id", &served.driver.label),
                    (
                        "gen_ai.tool.type",
                        &tool_type(served.driver.driver.as_ref()),
                    ),
                    ("gen_ai.tool.call.result", &result),
                    ("output.value", &result),
                ]);
                Ok(frame)
            }
            Err(err) => Err(audit.failed(err, driver_id.to_owned())),
        }
    }

    /// Stage 1: verifies the token, evaluates the invoke-time policy against
    /// its signed constraints, settles the response mode (the admin rule,
    /// decided here once, then session-budget escalation) and reserves
    /// session budget.
    #[kernel_span(
        name = "agent_kernel.policy.evaluate",
        attrs(
            capability_id = target.capability_id_attr(),
            decision = |r| crate::otel::decision_label(r),
            reason_category = |r| crate::otel::reason_category_label(r),
            "openinference.span.kind" = "GUARDRAIL",
        ),
        metrics(counter(
            name = "agent_kernel.policy_denials",
            unit = "{denial}",
            description = "Policy denials at grant and at invoke, by category",
            labels(capability_id, reason_category),
            when = denied,
        )),
    )]
    fn authorize(
        &self,
        request: &InvokeRequest<'_>,
        target: Resolved<'_>,
    ) -> Result<Authorization> {
        let InvokeRequest {
            token, principal, ..
        } = request;
        self.tokens
            .verify(token, &principal.principal_id, &token.capability_id)?;
        let capability = Arc::clone(target.require(&token.capability_id)?);
        let decision = self
            .policy
            .evaluate_invoke(&capability, principal, &token.constraints)?;
        let mut warnings = Vec::new();
        let mut mode = request.response_mode;
        if mode == ResponseMode::Raw && !principal.has_role("admin") {
            warnings.push("raw mode requires admin role; falling back to summary.".to_owned());
            mode = ResponseMode::Summary;
        }
        let mut escalated = false;
        let reservation = match request.session_id {
            Some(session) => {
                let suggested = self.sessions.suggested_mode(session, mode);
                if suggested != mode {
                    warnings.push(format!(
                        "session budget is running low; response mode escalated from {mode} to {suggested}."
                    ));
                    mode = suggested;
                    escalated = true;
                }
                Some(self.sessions.allocate(session, None)?)
            }
            None => None,
        };
        Ok(Authorization {
            capability,
            max_rows: decision.max_rows,
            mode,
            reservation,
            warnings,
            escalated,
        })
    }
}
