//! Discovery, grants and revocation: the policy decides at grant time and
//! the kernel signs a principal-bound token.

use agent_kernel_otel::kernel_span;

use super::Kernel;
use super::audit::{AuditGuard, refused_grant};
use crate::error::Result;
use crate::ids::new_id;
// Read by the generated span code only.
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
use crate::otel::keys;
use crate::registry::{DEFAULT_MAX_RESULTS, Resolved};
use crate::token::CapabilityToken;
use crate::types::{Capability, CapabilityGrant, CapabilityRequest, PolicyDecision, Principal};

impl Kernel {
    /// Capabilities matching a natural-language goal, best first (at most 10).
    pub fn request_capabilities(&self, goal: &str) -> Vec<CapabilityRequest> {
        self.registry.search(goal, DEFAULT_MAX_RESULTS)
    }

    /// Evaluates the policy and, if it allows, issues a signed token.
    /// A refused grant leaves an audit record.
    pub fn grant_capability(
        &self,
        request: &CapabilityRequest,
        principal: &Principal,
        justification: &str,
    ) -> Result<CapabilityGrant> {
        let target = self.registry.resolve(&request.capability_id);
        let (decision, token, audit_id) = self.grant(request, target, principal, justification)?;
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
        let target = self.registry.resolve(&request.capability_id);
        self.grant(request, target, principal, justification)
            .map(|(_, token, _)| token)
    }

    /// Revokes one token (idempotent) and makes the revocation durable in the
    /// [revocation store](crate::KernelBuilder::revocation_store) before returning.
    ///
    /// Errors: [`KernelError::StoreUnavailable`](crate::KernelError::StoreUnavailable)
    /// when the store cannot take it; the token is refused by this kernel all
    /// the same, but a kernel built after a restart would not know.
    pub fn revoke_token(&self, token_id: &str) -> Result<()> {
        let revocation = self.tokens.revoke(token_id);
        self.revocations
            .persist(std::slice::from_ref(&revocation), self.clock.now())
    }

    /// Revokes every token issued to `principal_id`, durably (as
    /// [`revoke_token`](Self::revoke_token)); returns how many were newly revoked.
    pub fn revoke_all(&self, principal_id: &str) -> Result<usize> {
        let (newly, revocation) = self.tokens.revoke_all_recorded(principal_id);
        self.revocations
            .persist(std::slice::from_ref(&revocation), self.clock.now())?;
        Ok(newly)
    }

    /// A grant: the policy's decision, then the token (issued with the
    /// decision's constraints) and the grant's audit id.
    #[kernel_span(
        name = keys::SPAN_GRANT,
        telemetry = self.telemetry(),
        attrs(
            keys::PRINCIPAL_ID = self.caller_ids.render(&principal.principal_id),
            keys::CAPABILITY_ID = target.capability_id_attr(),
            keys::SAFETY_CLASS = target.safety_class_attr(),
        ),
    )]
    fn grant(
        &self,
        request: &CapabilityRequest,
        target: Resolved<'_>,
        principal: &Principal,
        justification: &str,
    ) -> Result<(PolicyDecision, CapabilityToken, String)> {
        let decision = target
            .require(&request.capability_id)
            .and_then(|capability| {
                self.grant_policy(target, request, capability, principal, justification)
            });
        let decision = match decision {
            Ok(decision) => decision,
            Err(err) => {
                let record = refused_grant(
                    request,
                    principal,
                    target.capability().is_some(),
                    self.clock.now(),
                );
                let mut audit = AuditGuard::open(self.audit_sink(), record);
                audit.begin();
                audit.close(Some(&err));
                return Err(err);
            }
        };
        let audit_id = new_id();
        let token = self.tokens.issue(
            &request.capability_id,
            &principal.principal_id,
            decision.constraints.clone(),
            None,
            &audit_id,
        );
        log::info!(
            "grant_capability principal_id={} capability_id={} token_id={} audit_id={}",
            self.caller_ids.for_log(&principal.principal_id),
            request.capability_id,
            token.token_id,
            audit_id
        );
        Ok((decision, token, audit_id))
    }

    /// The grant-time policy decision.
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
    // `target` is only read by the generated span code.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    fn grant_policy(
        &self,
        target: Resolved<'_>,
        request: &CapabilityRequest,
        capability: &Capability,
        principal: &Principal,
        justification: &str,
    ) -> Result<PolicyDecision> {
        self.policy
            .evaluate(request, capability, principal, justification)
    }
}
