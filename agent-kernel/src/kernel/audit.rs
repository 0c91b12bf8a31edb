//! The audit guard: the one place an audit record is written.
//!
//! An [`AuditGuard`] owns its record from the moment a call reaches the
//! kernel and records it exactly once: when the call is refused, when every
//! driver failed, when it succeeds, or — if the call's future is dropped
//! first — as cancelled. The finished record goes to the audit sink (the
//! in-memory window and, when one is configured, the durable log)
//! synchronously; an invocation's place in the durable log is reserved
//! before its tool acts, and a served invocation returns once its record is
//! acknowledged.

use std::time::Instant;

use super::request::InvokeRequest;
use crate::error::KernelError;
use crate::ids;
use crate::otel::keys::OTHER;
use crate::otel::{TelemetrySlot, ToolCallTelemetry};
use crate::registry::Resolved;
use crate::stats::{CallFacts, Stats};
use crate::store::AuditAck;
use crate::store::sink::{AuditSink, SinkSlot};
use crate::types::{ActionTrace, Args, Frame, ResponseMode, TraceOutcome};

/// Where finished records go: the audit sink, and the counters of
/// [`Kernel::stats`](crate::Kernel::stats), counted here so that they never
/// disagree with the audit trail.
#[derive(Clone, Copy)]
pub(super) struct Recorders<'k> {
    pub(super) audit: &'k AuditSink,
    pub(super) stats: &'k Stats,
    /// The GenAI duration histogram (opt-in) is recorded here too, where
    /// every outcome passes.
    pub(super) tool_calls: &'k ToolCallTelemetry,
    pub(super) telemetry: &'k TelemetrySlot,
}

/// What kind of call a record is of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Invocation,
    /// A refused grant or an expansion.
    Other,
}

/// An audit record in flight (see the [module docs](self)).
pub(super) struct AuditGuard<'k> {
    sink: Recorders<'k>,
    /// The record's place in the durable log, once reserved.
    slot: Option<SinkSlot>,
    kind: CallKind,
    facts: CallFacts,
    started: Instant,
    record: Option<ActionTrace>,
    /// Whether the call has begun: a call dropped before it began (an
    /// invoke future never polled) did nothing, and leaves no record.
    begun: bool,
}

impl<'k> AuditGuard<'k> {
    /// Opens the record of one invocation. The arguments are the record's
    /// own copy (the store redacts them as it records); drivers read the
    /// request's.
    pub(super) fn invocation(
        sink: Recorders<'k>,
        request: &InvokeRequest<'_>,
        action_id: String,
        invoked_at: crate::time::Timestamp,
    ) -> Self {
        let mut guard = Self::open(
            sink,
            ActionTrace {
                action_id,
                capability_id: request.token.capability_id.clone(),
                principal_id: request.principal.principal_id.clone(),
                token_id: request.token.token_id.clone(),
                invoked_at,
                args: request.args.clone(),
                requested_mode: request.response_mode,
                response_mode: request.response_mode,
                driver_id: String::new(),
                handle_id: None,
                session_id: request.session_id.map(str::to_owned),
                error: None,
                denial_category: None,
                outcome: TraceOutcome::Success,
                duration: None,
                trace_id: None,
                span_id: None,
            },
        );
        guard.kind = CallKind::Invocation;
        guard
    }

    /// Opens a record that is not an invocation's (a refused grant, an
    /// expansion), already filled in.
    pub(super) fn open(sink: Recorders<'k>, record: ActionTrace) -> Self {
        AuditGuard {
            sink,
            slot: None,
            kind: CallKind::Other,
            facts: CallFacts::default(),
            started: Instant::now(),
            record: Some(record),
            begun: false,
        }
    }

    /// The record's action id.
    pub(super) fn action_id(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.action_id.as_str())
    }

    /// When the call reached the kernel.
    pub(super) fn invoked_at(&self) -> crate::time::Timestamp {
        self.record
            .as_ref()
            .map_or(crate::time::Timestamp::default(), |r| r.invoked_at)
    }

    /// The call begins: from now on a drop records it as cancelled. Also
    /// correlation both ways: the span carries the action id, the record the
    /// ids of the span current where this is called (none while telemetry
    /// is off).
    pub(super) fn begin(&mut self) {
        self.begun = true;
        if let Some(record) = &mut self.record {
            (record.trace_id, record.span_id) = crate::otel::current_span_ids();
        }
    }

    /// Reserves the record's place in the durable log, before anything acts.
    /// When the log cannot take it, the call is refused: the refusal is kept
    /// in the in-memory window only (with the ids scrubbed as for a refused
    /// token) and the store's error is given back.
    pub(super) fn reserve(&mut self, target: Resolved<'_>) -> Result<(), KernelError> {
        match self.sink.audit.reserve() {
            Ok(slot) => {
                self.slot = Some(slot);
                Ok(())
            }
            Err(err) => {
                if let Some(mut record) = self.record.take() {
                    record.token_id = ids::for_telemetry(&record.token_id).to_owned();
                    if target.capability().is_none() {
                        OTHER.clone_into(&mut record.capability_id);
                    }
                    record.outcome = TraceOutcome::Denied;
                    record.error = Some(err.to_string());
                    record.duration = Some(self.started.elapsed());
                    log::error!("invoke_refused_audit_unavailable error={err}");
                    self.sink.audit.window().record(record);
                }
                Err(err)
            }
        }
    }

    /// Fills in what a stage learns (an expansion's token and session).
    pub(super) fn fill(&mut self, update: impl FnOnce(&mut ActionTrace)) {
        if let Some(record) = &mut self.record {
            update(record);
        }
    }

    /// Records a refusal and gives the error back. An unverified token's ids
    /// are the caller's text: recorded only in the kernel's shapes
    /// (`_INVALID`); an unregistered capability as `_OTHER`.
    pub(super) async fn refused(mut self, err: KernelError, target: Resolved<'_>) -> KernelError {
        if let Some(record) = &mut self.record {
            let registered = target.capability().is_some();
            if err.is_token_error() || !registered {
                record.token_id = ids::for_telemetry(&record.token_id).to_owned();
            }
            if !registered {
                OTHER.clone_into(&mut record.capability_id);
            }
        }
        // The refusal's own error is returned, durable or not.
        let _ = self.finish(TraceOutcome::Denied, Some(&err), |_| {}).await;
        err
    }

    /// Records a call that failed after its checks: every driver failed
    /// (`DriverError`), or the frame was refused (a denial).
    pub(super) async fn failed(self, err: KernelError, driver_id: String) -> KernelError {
        let outcome = if err.denial_category().is_some() {
            TraceOutcome::Denied
        } else {
            TraceOutcome::DriverError
        };
        let _ = self
            .finish(outcome, Some(&err), |record| record.driver_id = driver_id)
            .await;
        err
    }

    /// Notes what an invocation did on its way, for the counters.
    pub(super) fn note(&mut self, update: impl FnOnce(&mut CallFacts)) {
        update(&mut self.facts);
    }

    /// Records the mode decided by authorization (before the driver runs,
    /// so that a cancelled call's record has it too).
    pub(super) fn set_mode(&mut self, mode: ResponseMode) {
        if let Some(record) = &mut self.record {
            record.response_mode = mode;
        }
    }

    /// Records a served invocation; with an acknowledging durable log,
    /// returns once the record is written (or with the store's error).
    pub(super) async fn served(self, frame: &Frame, driver_id: &str) -> Result<(), KernelError> {
        self.finish(TraceOutcome::Success, None, |record| {
            driver_id.clone_into(&mut record.driver_id);
            record.handle_id = frame.handle.as_ref().map(|h| h.handle_id.clone());
            record.response_mode = frame.response_mode;
        })
        .await
    }

    /// Records the outcome of a call whose record a stage filled in.
    pub(super) fn close(self, err: Option<&KernelError>) {
        let outcome = if err.is_some() {
            TraceOutcome::Denied
        } else {
            TraceOutcome::Success
        };
        // Not awaited: expansions and grants are synchronous; the store's
        // writer reports a failure to write.
        drop(self.finish(outcome, err, |_| {}));
    }

    fn finish(
        mut self,
        outcome: TraceOutcome,
        err: Option<&KernelError>,
        update: impl FnOnce(&mut ActionTrace),
    ) -> AuditAck {
        match self.record.take() {
            Some(mut record) => {
                record.outcome = outcome;
                if let Some(err) = err {
                    record.error = Some(err.to_string());
                    record.denial_category = err.denial_category();
                }
                update(&mut record);
                self.deliver(record, err.map(KernelError::kind))
            }
            None => AuditAck::ready(Ok(())),
        }
    }

    /// The one place a record leaves: counted, measured, then stored (in its
    /// reserved slot; a record without one, a refused grant, reserves now).
    fn deliver(&mut self, mut record: ActionTrace, error_type: Option<&'static str>) -> AuditAck {
        let elapsed = self.started.elapsed();
        record.duration = Some(elapsed);
        match self.kind {
            CallKind::Invocation => {
                self.sink.stats.invocation(
                    &record.capability_id,
                    record.outcome,
                    record.denial_category,
                    self.facts,
                );
                self.sink.tool_calls.record_execute_tool(
                    self.sink.telemetry,
                    &record.capability_id,
                    self.facts.tool_type,
                    error_type,
                    elapsed,
                );
            }
            CallKind::Other => self.sink.stats.refusal(record.denial_category),
        }
        match self.slot.take() {
            Some(slot) => self.sink.audit.record(slot, record),
            None => {
                self.sink.audit.record_unreserved(record);
                AuditAck::ready(Ok(()))
            }
        }
    }
}

impl Drop for AuditGuard<'_> {
    fn drop(&mut self) {
        if !self.begun {
            return;
        }
        if let Some(mut record) = self.record.take() {
            record.outcome = TraceOutcome::Cancelled;
            record.error = Some("invocation was cancelled before it completed".to_owned());
            // Not awaited (a drop cannot wait); the store's writer reports a failure.
            drop(self.deliver(record, Some("cancelled")));
        }
    }
}

/// The record of a refused grant: no token, no driver; the requested
/// constraints as its arguments (redacted by the store), the capability id
/// only if it is registered.
pub(super) fn refused_grant(
    request: &crate::types::CapabilityRequest,
    principal: &crate::types::Principal,
    registered: bool,
    invoked_at: crate::time::Timestamp,
) -> ActionTrace {
    ActionTrace {
        action_id: ids::new_id(),
        capability_id: if registered {
            request.capability_id.clone()
        } else {
            OTHER.to_owned()
        },
        principal_id: principal.principal_id.clone(),
        token_id: String::new(),
        invoked_at,
        args: request.constraints.clone().into_iter().collect::<Args>(),
        requested_mode: ResponseMode::Summary,
        response_mode: ResponseMode::Summary,
        driver_id: String::new(),
        handle_id: None,
        session_id: None,
        error: None,
        denial_category: None,
        outcome: TraceOutcome::Denied,
        duration: None,
        trace_id: None,
        span_id: None,
    }
}
