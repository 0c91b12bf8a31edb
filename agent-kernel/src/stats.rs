//! Counters without OpenTelemetry: [`Kernel::stats`](crate::Kernel::stats).
//!
//! Counted in one place, where the audit guard records a call's outcome, so
//! that the counts and the audit trail never disagree; they work with the
//! `otel` feature off.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::DenialCategory;
use crate::types::TraceOutcome;

/// A snapshot of a kernel's counters since it was built.
///
/// ```
/// # use agent_kernel::{CapabilityRegistry, Kernel};
/// let kernel = Kernel::builder(CapabilityRegistry::new()).secret("doc-secret-0123456789abcdef").build()?;
/// let stats = kernel.stats();
/// assert_eq!(stats.invocations.values().sum::<u64>(), 0);
/// # Ok::<(), agent_kernel::KernelError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelStats {
    /// Invocations by (capability id, status): `success`, `denied`, `error`
    /// (every driver failed) or `cancelled`. A capability that is not
    /// registered counts as `_OTHER`.
    pub invocations: BTreeMap<(String, &'static str), u64>,
    /// Refusals by denial category: invocations, grants and expansions.
    pub denials: BTreeMap<DenialCategory, u64>,
    /// Driver attempts after the first on a route (fallbacks taken).
    pub driver_fallbacks: u64,
    /// Redactions the firewall made (in frames it shaped, including a frame
    /// then refused for the session budget).
    pub redactions: u64,
    /// Response modes escalated because a session's budget ran low.
    pub budget_escalations: u64,
}

/// The statuses of [`KernelStats::invocations`], in slot order.
const STATUSES: [&str; 4] = ["success", "denied", "error", "cancelled"];

/// The live counters behind [`KernelStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Per capability id: success, denied, error, cancelled.
    invocations: Mutex<HashMap<String, [u64; 4]>>,
    denials: Mutex<BTreeMap<DenialCategory, u64>>,
    driver_fallbacks: AtomicU64,
    redactions: AtomicU64,
    budget_escalations: AtomicU64,
}

/// What a finished invocation adds to the counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CallFacts {
    /// Driver attempts after the first.
    pub(crate) fallbacks: u64,
    /// Redactions in the served frame.
    pub(crate) redactions: u64,
    /// Whether the response mode was escalated for the session's budget.
    pub(crate) escalated: bool,
    /// `gen_ai.tool.type` of the driver that served, once one did.
    pub(crate) tool_type: Option<&'static str>,
}

impl Stats {
    /// Counts one finished invocation.
    pub(crate) fn invocation(
        &self,
        capability_id: &str,
        outcome: TraceOutcome,
        denial: Option<DenialCategory>,
        facts: CallFacts,
    ) {
        let slot = match outcome {
            TraceOutcome::Success => 0,
            TraceOutcome::Denied => 1,
            TraceOutcome::DriverError => 2,
            TraceOutcome::Cancelled => 3,
        };
        let mut invocations = self
            .invocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Ids are registered ones or `_OTHER`: a bounded set, copied once each.
        match invocations.get_mut(capability_id) {
            Some(counts) => counts[slot] += 1,
            None => {
                let mut counts = [0; 4];
                counts[slot] = 1;
                invocations.insert(capability_id.to_owned(), counts);
            }
        }
        drop(invocations);
        self.refusal(denial);
        self.driver_fallbacks
            .fetch_add(facts.fallbacks, Ordering::Relaxed);
        self.redactions
            .fetch_add(facts.redactions, Ordering::Relaxed);
        if facts.escalated {
            self.budget_escalations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a refusal (of an invocation, a grant or an expansion).
    pub(crate) fn refusal(&self, denial: Option<DenialCategory>) {
        if let Some(category) = denial {
            *self
                .denials
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(category)
                .or_default() += 1;
        }
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> KernelStats {
        KernelStats {
            invocations: self
                .invocations
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .flat_map(|(id, counts)| {
                    STATUSES
                        .iter()
                        .zip(counts)
                        .filter(|(_, n)| **n > 0)
                        .map(|(status, n)| ((id.clone(), *status), *n))
                })
                .collect(),
            denials: self
                .denials
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            driver_fallbacks: self.driver_fallbacks.load(Ordering::Relaxed),
            redactions: self.redactions.load(Ordering::Relaxed),
            budget_escalations: self.budget_escalations.load(Ordering::Relaxed),
        }
    }
}
