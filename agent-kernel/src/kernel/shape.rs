//! Stage 3 of an invocation: the result as the model receives it. The full
//! result goes behind a handle, the firewall makes the frame, and the frame
//! is charged to the session's budget.

use std::sync::Arc;

use agent_kernel_otel::kernel_span;
use serde_json::Value;

use super::Kernel;
use super::audit::AuditGuard;
use super::invoke::Authorization;
use super::request::InvokeRequest;
use crate::budget::{FramePayload, Reservation};
use crate::error::{KernelError, Result};
use crate::firewall::{FirewallOutput, FirewallRequest};
use crate::handle::HandleOwner;
// Read by the generated span code only.
#[cfg_attr(not(feature = "otel"), allow(unused_imports))]
use crate::otel::keys;
use crate::registry::Resolved;
use crate::types::{Constraints, Frame, Provenance, RawResult, ResponseMode};

/// The weight (array elements, object entries and bytes of text, see
/// [`firewall::weighs_more_than`](crate::firewall::weighs_more_than)) above
/// which the firewall's work on a result leaves the async worker's task
/// queue (`tokio::task::block_in_place` on a multi-threaded runtime).
pub const OFFLOAD_WEIGHT: usize = 256 * 1024;

/// A frame larger than what its session has left: refused, nothing charged.
pub(super) struct Overdraft {
    session_id: String,
}

impl Kernel {
    /// Stores the full result under a handle (every mode but raw), runs the
    /// firewall in the authorized mode, and charges the frame.
    pub(super) fn shape(
        &self,
        request: &InvokeRequest<'_>,
        target: Resolved<'_>,
        auth: Authorization,
        raw: &RawResult,
        audit: &mut AuditGuard<'_>,
    ) -> Result<Frame> {
        let action_id = audit.action_id();
        let Authorization {
            capability,
            max_rows,
            mode,
            reservation,
            mut warnings,
            ..
        } = auth;
        // A result cut by `driver::CappedDriver` says so in the frame.
        if let Some(warning) = crate::driver::cut_warning(&raw.metadata) {
            warnings.push(warning);
        }
        let token = request.token;
        let handle = (mode != ResponseMode::Raw).then(|| {
            self.handles.store(
                &token.capability_id,
                Arc::clone(&raw.data),
                HandleOwner {
                    principal_id: request.principal.principal_id.clone(),
                    token: token.clone(),
                    action_id: action_id.to_owned(),
                    session_id: request.session_id.map(str::to_owned),
                },
            )
        });
        let fw = self.off_the_worker(&raw.data, || {
            self.apply_firewall(
                &raw.data,
                request.response_mode,
                mode,
                &token.constraints,
                max_rows,
            )
        });
        let redactions = fw.stats.redactions as u64;
        warnings.extend(fw.warnings);
        let frame = Frame {
            action_id: action_id.to_owned(),
            capability_id: capability.capability_id.clone(),
            response_mode: fw.effective_mode,
            facts: fw.facts,
            table_preview: fw.table_preview,
            handle,
            warnings,
            provenance: Provenance {
                capability_id: capability.capability_id.clone(),
                principal_id: request.principal.principal_id.clone(),
                invoked_at: audit.invoked_at(),
                action_id: action_id.to_owned(),
            },
            raw_data: fw.raw_data,
        };
        audit.note(|facts| facts.redactions = redactions);
        match reservation {
            Some(reservation) => self
                .charge_frame(reservation, frame)
                .or_else(|overdraft| self.refuse_overdraft(overdraft, target)),
            None => Ok(frame),
        }
    }

    /// Runs `work` (the firewall over `data`) so that a large result does
    /// not stall the other tasks of an async worker: above
    /// [`OFFLOAD_WEIGHT`], on a multi-threaded tokio runtime, through
    /// `tokio::task::block_in_place` (the worker's other tasks move to
    /// another thread while this one works; the span context stays, since
    /// the work stays on this thread). Anywhere else it runs inline.
    pub(super) fn off_the_worker<R>(&self, data: &Value, work: impl FnOnce() -> R) -> R {
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if on_worker
            && crate::firewall::weighs_more_than(data, self.limits.max_depth, OFFLOAD_WEIGHT)
        {
            tokio::task::block_in_place(work)
        } else {
            work()
        }
    }

    /// The firewall: redaction, allowed fields, limits and the response
    /// mode. It serves `mode` as given (the admin rule was decided by
    /// authorization); `requested` is what the caller asked for, which the
    /// span shows beside what was served.
    #[kernel_span(
        name = keys::SPAN_FIREWALL_APPLY,
        attrs(
            keys::RESPONSE_MODE = requested,
            keys::EFFECTIVE_RESPONSE_MODE = |out: &FirewallOutput| out.effective_mode,
            keys::ROWS_IN = |out| out.stats.rows_in,
            keys::ROWS_OUT = |out| out.stats.rows_out,
            keys::REDACTIONS = |out| out.stats.redactions,
            keys::CHARS = |out| out.stats.chars,
            keys::OPENINFERENCE_SPAN_KIND = "GUARDRAIL",
        ),
    )]
    // `requested` is only read by the generated span code.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    pub(super) fn apply_firewall(
        &self,
        data: &Value,
        requested: ResponseMode,
        mode: ResponseMode,
        constraints: &Constraints,
        max_rows: u64,
    ) -> FirewallOutput {
        let request = FirewallRequest {
            data,
            requested_mode: mode,
            allowed_fields: constraints.allowed_fields.as_deref(),
            max_rows: Some(usize::try_from(max_rows).unwrap_or(usize::MAX)),
            // The admin rule was decided by authorization: a raw mode here
            // is an admin's.
            is_admin: true,
            budgets: &self.limits,
        };
        self.firewall.apply(&request)
    }

    /// Charges `frame` to its session's budget. A frame never costs more than
    /// the session has left: one that does not fit (an invocation's frame or
    /// an expansion page) is refused and nothing is charged; the caller may
    /// ask again for less (a handle-only frame, a smaller page).
    pub(super) fn charge_frame(
        &self,
        reservation: Reservation,
        frame: Frame,
    ) -> std::result::Result<Frame, Overdraft> {
        let available = self.sessions.available_to(&reservation);
        let cost = self.sessions.count_tokens(&FramePayload::of(&frame));
        if cost > available {
            return Err(Overdraft {
                session_id: reservation.session_id().to_owned(),
            });
        }
        self.sessions.record_usage(reservation, cost);
        Ok(frame)
    }

    /// The [`KernelError::BudgetExhausted`] of an overdraft.
    pub(super) fn budget_exhausted(&self, overdraft: Overdraft) -> KernelError {
        let total = self.sessions.config().total_budget;
        let used = self
            .sessions
            .usage(&overdraft.session_id)
            .map_or(total, |u| u.used);
        KernelError::BudgetExhausted {
            session_id: overdraft.session_id,
            used,
            total,
        }
    }

    /// An invocation's frame that does not fit its session: the check after
    /// the firewall ("does this frame fit what the session has left?") is a
    /// policy denial (`budget_exhausted`) like the check before the driver
    /// ("is anything left?"), so it gets its own `agent_kernel.policy.evaluate`
    /// span and counts in `agent_kernel.policy_denials`. A frame that fits
    /// adds no span.
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
    fn refuse_overdraft(&self, overdraft: Overdraft, target: Resolved<'_>) -> Result<Frame> {
        Err(self.budget_exhausted(overdraft))
    }
}
