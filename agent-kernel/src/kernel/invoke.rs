//! An invocation, as its stages: authorize → route → shape → audit.
//!
//! [`Kernel::invoke_with`] resolves the capability once, mints the action id
//! and opens the audit record; the pipeline then runs under the
//! `agent_kernel.invoke` span, each stage a method of its own (and a span of
//! its own where `docs/telemetry.md` names one).

use std::sync::Arc;

use agent_kernel_otel::{AttrValue, kernel_span, record_all};

use super::Kernel;
use super::audit::AuditGuard;
use super::request::InvokeRequest;
use crate::budget::Reservation;
use crate::driver::ExecutionContext;
use crate::error::Result;
use crate::ids::new_id;
use crate::otel::{CapturedContent, tool_type};
// Read by the generated span code only.
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
use crate::otel::keys;
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
        name = self.tool_calls.invoke_span_name(target),
        telemetry = self.telemetry(),
        attrs(
            keys::PRINCIPAL_ID = self.caller_ids.render(&request.principal.principal_id),
            keys::CAPABILITY_ID = target.capability_id_attr(),
            keys::SAFETY_CLASS = target.safety_class_attr(),
            keys::SENSITIVITY = target.sensitivity_attr(),
            keys::RESPONSE_MODE = request.response_mode,
            keys::SESSION_ID = request.session_id.and_then(|s| self.caller_ids.render(s)),
            keys::ACTION_ID = audit.action_id(),
            driver_id = deferred,
            keys::EFFECTIVE_RESPONSE_MODE = |out| out.as_ref().ok().map(|f| f.response_mode),
            keys::GEN_AI_OPERATION_NAME = keys::GEN_AI_OPERATION_EXECUTE_TOOL,
            keys::GEN_AI_TOOL_NAME = target.capability_id_attr(),
            keys::GEN_AI_TOOL_CALL_ID = request.tool_call_id.unwrap_or(audit.action_id()),
            "gen_ai.tool.type" = deferred,
            keys::GEN_AI_TOOL_DESCRIPTION = target.description_attr(),
            keys::GEN_AI_CONVERSATION_ID = request.session_id.and_then(|s| self.caller_ids.render(s)),
            keys::GEN_AI_TOOL_CALL_ARGUMENTS = content.arguments(),
            "gen_ai.tool.call.result" = deferred,
            keys::OPENINFERENCE_SPAN_KIND = "TOOL",
            keys::TOOL_NAME = target.capability_id_attr(),
            keys::TOOL_DESCRIPTION = target.description_attr(),
            keys::OPENINFERENCE_SESSION_ID = request.session_id.and_then(|s| self.caller_ids.render(s)),
            keys::INPUT_VALUE = content.arguments(),
            keys::INPUT_MIME_TYPE = content.mime_type(),
            "output.value" = deferred,
            keys::OUTPUT_MIME_TYPE = content.mime_type(),
        ),
        metrics(
            counter(keys::INVOCATIONS),
            histogram(keys::INVOCATION_DURATION),
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
        // The audit slot, before anything acts.
        audit.reserve(target)?;
        let auth = match request
            .check()
            .and_then(|()| self.authorize(&request, target))
        {
            Ok(auth) => auth,
            Err(err) => return Err(audit.refused(err, target).await),
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
                return Err(audit.failed(failure.error, failure.last_driver).await);
            }
        };
        let served_as = tool_type(served.driver.driver.as_ref());
        audit.note(|facts| {
            facts.fallbacks = served.fallbacks;
            facts.tool_type = Some(served_as);
        });
        let driver_id = served.driver.driver.driver_id();
        let frame = match self.shape(&request, target, auth, &served.raw, &mut audit) {
            Ok(frame) => frame,
            Err(err) => return Err(audit.failed(err, driver_id.to_owned()).await),
        };
        // With an acknowledging store, the frame is returned only once its
        // record is durable.
        audit.served(&frame, driver_id).await?;
        // What served and what the model received: the frame names neither
        // the driver nor this call's capture settings, so a closure over the
        // return value cannot record them.
        let result = content.result(&frame);
        record_all(&[
            ("driver_id", &served.driver.label),
            ("gen_ai.tool.type", &AttrValue::Static(served_as)),
            ("gen_ai.tool.call.result", &result),
            ("output.value", &result),
        ]);
        Ok(frame)
    }

    /// Stage 1: verifies the token, evaluates the invoke-time policy against
    /// its signed constraints, settles the response mode (the admin rule,
    /// decided here once, then session-budget escalation) and reserves
    /// session budget.
    #[kernel_span(
        name = keys::SPAN_POLICY_EVALUATE,
        attrs(
            keys::CAPABILITY_ID = target.capability_id_attr(),
            keys::DECISION = |r| crate::otel::decision_label(r),
            keys::REASON_CATEGORY = |r| crate::otel::reason_category_label(r),
            keys::OPENINFERENCE_SPAN_KIND = "GUARDRAIL",
        ),
        metrics(counter(keys::POLICY_DENIALS, when = denied)),
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
