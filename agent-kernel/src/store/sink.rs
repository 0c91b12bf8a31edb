//! Where the kernel hands its audit records: the in-memory window
//! ([`TraceStore`], what [`Kernel::traces`](crate::Kernel::traces) and
//! `explain` read first) and, when one is configured, the durable
//! [`AuditLog`] behind it.

use std::sync::Arc;

use super::{AuditAck, AuditLog, AuditSlot};
use crate::error::Result;
use crate::trace::TraceStore;
use crate::types::ActionTrace;

/// The kernel's audit sink (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct AuditSink {
    window: TraceStore,
    durable: Option<Arc<dyn AuditLog>>,
}

/// A reserved place in the durable log (nothing without one).
#[derive(Debug)]
pub(crate) struct SinkSlot(Option<AuditSlot>);

impl AuditSink {
    pub(crate) fn new(window: TraceStore, durable: Option<Arc<dyn AuditLog>>) -> Self {
        Self { window, durable }
    }

    /// The in-memory window.
    pub(crate) fn window(&self) -> &TraceStore {
        &self.window
    }

    /// The durable log, when one is configured.
    pub(crate) fn durable(&self) -> Option<&Arc<dyn AuditLog>> {
        self.durable.as_ref()
    }

    /// Reserves the durable log's place for one record, before the tool acts.
    pub(crate) fn reserve(&self) -> Result<SinkSlot> {
        match &self.durable {
            Some(log) => log.reserve().map(|slot| SinkSlot(Some(slot))),
            None => Ok(SinkSlot(None)),
        }
    }

    /// Records `trace` in the window and appends it in its reserved slot.
    /// Synchronous (callable from `Drop`); the acknowledgement says when the
    /// durable copy is written.
    pub(crate) fn record(&self, slot: SinkSlot, trace: ActionTrace) -> AuditAck {
        match (&self.durable, slot.0) {
            (Some(log), Some(slot)) => {
                let ack = log.append(slot, trace.clone());
                self.window.record(trace);
                ack
            }
            _ => {
                self.window.record(trace);
                AuditAck::ready(Ok(()))
            }
        }
    }

    /// Records a trace that had no slot reserved (a refused grant): reserves
    /// one now; when the durable log cannot take it, the record stays in the
    /// window and the loss of its durable copy is logged as an error.
    pub(crate) fn record_unreserved(&self, trace: ActionTrace) {
        match self.reserve() {
            Ok(slot) => {
                // Not awaited: the caller is synchronous; a failure to write
                // is reported by the store's writer.
                drop(self.record(slot, trace));
            }
            Err(err) => {
                log::error!(
                    "audit_record_not_durable action_id={} error={err}",
                    trace.action_id
                );
                self.window.record(trace);
            }
        }
    }

    /// A record by action id: the window first, then the durable log.
    pub(crate) fn get(&self, action_id: &str) -> Result<Arc<ActionTrace>> {
        match (self.window.get(action_id), &self.durable) {
            (Ok(found), _) => Ok(found),
            (Err(_), Some(log)) => log.get(action_id),
            (Err(err), None) => Err(err),
        }
    }
}
