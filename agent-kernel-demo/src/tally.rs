//! What the session did, counted by the demo itself with the label sets of
//! the telemetry contract, so that a test (or a person) can compare it with
//! what the metrics backends report.

use std::collections::BTreeMap;

use agent_kernel::{DenialCategory, KernelError, SafetyClass};
use serde::Serialize;

/// How an invocation ended, as the `status` label of
/// `agent_kernel.invocations` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A frame was returned.
    Success,
    /// The policy (or the session budget) refused.
    Denied,
    /// Anything else failed (for example every driver on the route).
    Error,
}

impl Status {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }

    /// The status of an invocation's result.
    pub fn of<T>(result: &Result<T, KernelError>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(e) if e.denial_category().is_some() => Self::Denied,
            Err(_) => Self::Error,
        }
    }
}

/// Where a policy denial happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// `grant_capability` refused the token.
    Grant,
    /// `invoke` refused (re-evaluated policy, rate limit, session budget).
    Invoke,
}

/// One row of the invocation counts (`agent_kernel.invocations` and the
/// duration histogram's count carry the same labels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvocationCount {
    /// Label `capability_id`.
    pub capability_id: String,
    /// Label `safety_class` (`READ`, `WRITE`, `DESTRUCTIVE`).
    pub safety_class: &'static str,
    /// Label `status`.
    pub status: Status,
    /// How many.
    pub count: u64,
}

/// One row of the denial counts (`agent_kernel.policy_denials`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialCount {
    /// Label `capability_id`.
    pub capability_id: String,
    /// Label `reason_category`.
    pub reason_category: &'static str,
    /// Not a label: where the denial happened.
    pub stage: Stage,
    /// How many.
    pub count: u64,
}

/// The counts, keyed by their label sets.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    invocations: BTreeMap<(String, &'static str, Status), u64>,
    denials: BTreeMap<(String, &'static str, Stage), u64>,
}

impl Tally {
    /// Counts one invocation of `capability_id` that ended with `result`
    /// (and its denial, if it was one).
    pub fn invocation<T>(
        &mut self,
        capability_id: &str,
        safety_class: SafetyClass,
        result: &Result<T, KernelError>,
    ) {
        let status = Status::of(result);
        *self
            .invocations
            .entry((capability_id.to_owned(), safety_class.as_str(), status))
            .or_default() += 1;
        if let Err(e) = result {
            if let Some(category) = e.denial_category() {
                self.denial(capability_id, category, Stage::Invoke);
            }
        }
    }

    /// Counts one policy denial.
    pub fn denial(&mut self, capability_id: &str, category: DenialCategory, stage: Stage) {
        *self
            .denials
            .entry((capability_id.to_owned(), category.as_str(), stage))
            .or_default() += 1;
    }

    /// The invocation counts, ordered by capability, class, status.
    pub fn invocations(&self) -> Vec<InvocationCount> {
        self.invocations
            .iter()
            .map(|((cap, class, status), n)| InvocationCount {
                capability_id: cap.clone(),
                safety_class: class,
                status: *status,
                count: *n,
            })
            .collect()
    }

    /// The denial counts, ordered by capability, category, stage.
    pub fn denials(&self) -> Vec<DenialCount> {
        self.denials
            .iter()
            .map(|((cap, category, stage), n)| DenialCount {
                capability_id: cap.clone(),
                reason_category: category,
                stage: *stage,
                count: *n,
            })
            .collect()
    }

    /// Invocations with `status`, over every capability.
    pub fn total(&self, status: Status) -> u64 {
        self.invocations
            .iter()
            .filter(|((_, _, s), _)| *s == status)
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label_set() {
        let mut t = Tally::default();
        let ok: Result<(), KernelError> = Ok(());
        let denied: Result<(), KernelError> = Err(KernelError::BudgetExhausted {
            session_id: "s".into(),
            used: 1,
            total: 1,
        });
        let failed: Result<(), KernelError> = Err(KernelError::DriverError {
            capability_id: "c".into(),
            last_error: "x".into(),
            status: None,
        });
        t.invocation("c", SafetyClass::Read, &ok);
        t.invocation("c", SafetyClass::Read, &ok);
        t.invocation("c", SafetyClass::Read, &denied);
        t.invocation("c", SafetyClass::Read, &failed);
        t.denial("w", DenialCategory::MissingRole, Stage::Grant);
        assert_eq!(t.total(Status::Success), 2);
        assert_eq!(t.total(Status::Denied), 1);
        assert_eq!(t.total(Status::Error), 1);
        let rows = t.invocations();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].safety_class, "READ");
        let denials = t.denials();
        assert_eq!(denials.len(), 2);
        assert_eq!(denials[0].reason_category, "budget_exhausted");
        assert_eq!(denials[0].stage, Stage::Invoke);
        assert_eq!(denials[1].stage, Stage::Grant);
    }
}
