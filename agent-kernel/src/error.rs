//! The crate's single error type, [`KernelError`], and the closed set of policy
//! denial categories, [`DenialCategory`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Why a policy said no, as a machine-readable category from a closed set.
///
/// The `agent_kernel.policy_denials` metric is labelled by [`DenialCategory::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialCategory {
    /// The principal lacks a role the capability's safety class or sensitivity needs.
    MissingRole,
    /// The justification is shorter than 15 characters after trimming.
    InsufficientJustification,
    /// A PII/PCI capability needs the principal's `tenant` attribute.
    MissingTenantAttribute,
    /// A requested or signed constraint is malformed or weaker than the policy requires.
    InvalidConstraint,
    /// The per-(principal, capability) rate limit is used up.
    RateLimited,
    /// The session's token budget is used up.
    BudgetExhausted,
    /// A handle was presented by a principal other than the one it was issued to.
    HandlePrincipalMismatch,
}

impl DenialCategory {
    /// Every category, in declaration order.
    pub const ALL: [DenialCategory; 7] = [
        Self::MissingRole,
        Self::InsufficientJustification,
        Self::MissingTenantAttribute,
        Self::InvalidConstraint,
        Self::RateLimited,
        Self::BudgetExhausted,
        Self::HandlePrincipalMismatch,
    ];

    /// The stable snake_case label (`missing_role`, `rate_limited`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MissingRole => "missing_role",
            Self::InsufficientJustification => "insufficient_justification",
            Self::MissingTenantAttribute => "missing_tenant_attribute",
            Self::InvalidConstraint => "invalid_constraint",
            Self::RateLimited => "rate_limited",
            Self::BudgetExhausted => "budget_exhausted",
            Self::HandlePrincipalMismatch => "handle_principal_mismatch",
        }
    }
}

impl fmt::Display for DenialCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the kernel. Each message names the id or
/// value at fault; none ever contains the HMAC secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// No capability with this id is registered.
    #[error("no capability registered with id '{capability_id}'")]
    CapabilityNotFound {
        /// The unknown id.
        capability_id: String,
    },
    /// A capability with this id is already registered.
    #[error("capability '{capability_id}' is already registered; use a unique capability_id")]
    CapabilityAlreadyRegistered {
        /// The duplicate id.
        capability_id: String,
    },
    /// The policy engine refused the request.
    #[error(
        "policy denied '{capability_id}' for principal '{principal_id}' ({category}): {reason}"
    )]
    PolicyDenied {
        /// The capability asked for.
        capability_id: String,
        /// The principal asking.
        principal_id: String,
        /// Human-readable explanation.
        reason: String,
        /// Machine-readable category.
        category: DenialCategory,
    },
    /// The token's `expires_at` has passed.
    #[error("token '{token_id}' expired at {expires_at}")]
    TokenExpired {
        /// The token's id.
        token_id: String,
        /// When it expired.
        expires_at: Timestamp,
    },
    /// The token was revoked.
    #[error("token '{token_id}' has been revoked")]
    TokenRevoked {
        /// The token's id.
        token_id: String,
    },
    /// The token's HMAC signature does not verify (tampered or signed with another secret).
    #[error("token '{token_id}' has an invalid signature; it may have been tampered with")]
    TokenInvalid {
        /// The token's id.
        token_id: String,
    },
    /// The token was issued to a different principal.
    #[error("token '{token_id}' was issued to principal '{token_principal}', not '{presented_by}'")]
    TokenPrincipalMismatch {
        /// The token's id.
        token_id: String,
        /// The principal named in the token.
        token_principal: String,
        /// The principal that presented it.
        presented_by: String,
    },
    /// The token authorises a different capability.
    #[error("token '{token_id}' was issued for capability '{token_capability}', not '{expected}'")]
    TokenCapabilityMismatch {
        /// The token's id.
        token_id: String,
        /// The capability named in the token.
        token_capability: String,
        /// The capability it was presented for.
        expected: String,
    },
    /// A token's transport form is not valid JSON or lacks a field.
    #[error("malformed token: {message}")]
    TokenFormat {
        /// What is wrong with it.
        message: String,
    },
    /// No driver on the route produced a result.
    #[error("all drivers failed for capability '{capability_id}': {last_error}")]
    DriverError {
        /// The capability being invoked.
        capability_id: String,
        /// The last driver's error (redacted), or why no driver ran.
        last_error: String,
        /// The HTTP status of the last failure, when it was one.
        status: Option<u16>,
    },
    /// No handle with this id is stored (never issued, or evicted).
    #[error("handle '{handle_id}' not found; it may have been evicted")]
    HandleNotFound {
        /// The unknown handle id.
        handle_id: String,
    },
    /// The handle's TTL has passed.
    #[error("handle '{handle_id}' expired at {expired_at}")]
    HandleExpired {
        /// The handle id.
        handle_id: String,
        /// When it expired.
        expired_at: Timestamp,
    },
    /// The handle belongs to another principal.
    #[error("handle '{handle_id}' was not issued to principal '{principal_id}'")]
    HandleAccessDenied {
        /// The handle id.
        handle_id: String,
        /// The principal that tried to use it.
        principal_id: String,
    },
    /// The session's token budget is used up.
    #[error("session '{session_id}' budget exhausted: used {used} of {total} tokens")]
    BudgetExhausted {
        /// The session.
        session_id: String,
        /// Tokens committed so far.
        used: u64,
        /// The session's total budget.
        total: u64,
    },
    /// No trace is stored for this action id (never recorded, or evicted).
    #[error("no action trace found for action_id '{action_id}'")]
    TraceNotFound {
        /// The unknown action id.
        action_id: String,
    },
    /// A handle or action id handed back by a caller does not have the shape
    /// of an id this kernel issues: forged or mangled, so it names nothing.
    #[error("malformed {what} id '{id}': not an id this kernel issued")]
    MalformedId {
        /// Which id: `handle` or `action`.
        what: &'static str,
        /// The id as presented, redacted and cut to 64 characters.
        id: String,
    },
    /// A component was configured with an invalid value.
    #[error("invalid configuration: {message}")]
    InvalidConfig {
        /// What is invalid, naming the value.
        message: String,
    },
    /// A call argument (invoke args, expand query) is invalid.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What is invalid, naming the value.
        message: String,
    },
    /// A durable store (the audit log, the revocation store) cannot take a
    /// write or cannot be opened. An invocation refused with it did not run
    /// its tool; a revocation refused with it is in force in this process but
    /// not yet durable.
    #[error("{store} at '{path}' is unavailable ({fault}): {message}")]
    StoreUnavailable {
        /// Which store: `audit log` or `revocation store`.
        store: &'static str,
        /// Where it lives (a file path, or `memory`).
        path: String,
        /// What went wrong, as a closed set.
        fault: StoreFault,
        /// The detail, naming the path and the underlying error.
        message: String,
    },
}

/// Why a durable store could not take a write or be opened (see
/// [`KernelError::StoreUnavailable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreFault {
    /// The bounded queue of records waiting to be written is full.
    QueueFull,
    /// The file system holding the store is full.
    DiskFull,
    /// The store's file (or its file system) is read-only.
    ReadOnly,
    /// Another process or opener holds the store.
    Locked,
    /// The store's file was deleted or replaced while open.
    Deleted,
    /// The file is not a valid store (corrupt, or not a database).
    Corrupt,
    /// A write was not confirmed (the writer failed or stopped).
    NotAcknowledged,
    /// Any other I/O or database error.
    Io,
}

impl StoreFault {
    /// The stable snake_case label (`queue_full`, `disk_full`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::DiskFull => "disk_full",
            Self::ReadOnly => "read_only",
            Self::Locked => "locked",
            Self::Deleted => "deleted",
            Self::Corrupt => "corrupt",
            Self::NotAcknowledged => "not_acknowledged",
            Self::Io => "io",
        }
    }
}

impl fmt::Display for StoreFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl KernelError {
    /// A stable snake_case name for the error kind (used as `error.type` in telemetry).
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::CapabilityNotFound { .. } => "capability_not_found",
            Self::CapabilityAlreadyRegistered { .. } => "capability_already_registered",
            Self::PolicyDenied { .. } => "policy_denied",
            Self::TokenExpired { .. } => "token_expired",
            Self::TokenRevoked { .. } => "token_revoked",
            Self::TokenInvalid { .. } => "token_invalid",
            Self::TokenPrincipalMismatch { .. } => "token_principal_mismatch",
            Self::TokenCapabilityMismatch { .. } => "token_capability_mismatch",
            Self::TokenFormat { .. } => "token_format",
            Self::DriverError { .. } => "driver_error",
            Self::HandleNotFound { .. } => "handle_not_found",
            Self::HandleExpired { .. } => "handle_expired",
            Self::HandleAccessDenied { .. } => "handle_access_denied",
            Self::BudgetExhausted { .. } => "budget_exhausted",
            Self::TraceNotFound { .. } => "trace_not_found",
            Self::MalformedId { .. } => "malformed_id",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::InvalidArgument { .. } => "invalid_argument",
            Self::StoreUnavailable { .. } => "store_unavailable",
        }
    }

    /// The denial category when this error is a policy decision (a denial, an
    /// exhausted budget, a handle presented by the wrong principal); `None` otherwise.
    pub const fn denial_category(&self) -> Option<DenialCategory> {
        match self {
            Self::PolicyDenied { category, .. } => Some(*category),
            Self::BudgetExhausted { .. } => Some(DenialCategory::BudgetExhausted),
            Self::HandleAccessDenied { .. } => Some(DenialCategory::HandlePrincipalMismatch),
            _ => None,
        }
    }

    /// Whether the error is a token verification failure.
    pub const fn is_token_error(&self) -> bool {
        matches!(
            self,
            Self::TokenExpired { .. }
                | Self::TokenRevoked { .. }
                | Self::TokenInvalid { .. }
                | Self::TokenPrincipalMismatch { .. }
                | Self::TokenCapabilityMismatch { .. }
                | Self::TokenFormat { .. }
        )
    }

    pub(crate) fn invalid_config(message: impl Into<String>) -> Self {
        Self::InvalidConfig {
            message: message.into(),
        }
    }

    /// The fault of a [`StoreUnavailable`](Self::StoreUnavailable) error.
    pub const fn store_fault(&self) -> Option<StoreFault> {
        match self {
            Self::StoreUnavailable { fault, .. } => Some(*fault),
            _ => None,
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            message: message.into(),
        }
    }
}

/// Shorthand for results whose error is [`KernelError`].
pub type Result<T, E = KernelError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_labels_are_unique_snake_case() {
        let labels: Vec<&str> = DenialCategory::ALL.iter().map(|c| c.as_str()).collect();
        let mut dedup = labels.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), labels.len());
        for l in labels {
            assert!(l.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{l}");
        }
        let json = serde_json::to_string(&DenialCategory::RateLimited).unwrap();
        assert_eq!(json, "\"rate_limited\"");
    }

    #[test]
    fn kinds_and_categories() {
        let e = KernelError::BudgetExhausted {
            session_id: "s1".into(),
            used: 10,
            total: 10,
        };
        assert_eq!(e.kind(), "budget_exhausted");
        assert_eq!(e.denial_category(), Some(DenialCategory::BudgetExhausted));
        assert!(e.to_string().contains("s1"));
        let e = KernelError::HandleAccessDenied {
            handle_id: "h".into(),
            principal_id: "p".into(),
        };
        assert_eq!(
            e.denial_category(),
            Some(DenialCategory::HandlePrincipalMismatch)
        );
        let e = KernelError::TokenRevoked {
            token_id: "t-1".into(),
        };
        assert_eq!(e.denial_category(), None);
        assert!(e.is_token_error());
        assert!(e.to_string().contains("t-1"));
    }
}
