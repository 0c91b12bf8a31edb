//! # agent-kernel
//!
//! A capability-based security kernel between an LLM agent and its tools.
//!
//! * **Context boundary** — raw tool output never reaches the model: every
//!   invocation returns a bounded, redacted [`Frame`] (summary, table, handle
//!   only, or raw for admins), and the full result stays behind a [`Handle`].
//! * **Least privilege** — every call needs an HMAC-signed, principal-bound
//!   [`CapabilityToken`] that the [`PolicyEngine`] granted, and the policy is
//!   evaluated again at invoke time (roles, sensitivity, rate limit, session budget).
//! * **Audit** — every invocation leaves an [`ActionTrace`], answered by [`Kernel::explain`].
//!
//! Flow: [`Kernel::request_capabilities`] → [`Kernel::grant_capability`] /
//! [`Kernel::get_token`] → [`Kernel::invoke`] → [`Kernel::expand`] → [`Kernel::explain`].
#![forbid(unsafe_code)]

#[cfg(feature = "otel")]
pub mod bridge;
pub mod budget;
pub mod caller_ids;
pub mod driver;
mod error;
pub mod firewall;
pub mod handle;
mod ids;
pub mod kernel;
pub mod otel;
pub mod policy;
mod rate;
mod registry;
mod router;
mod stats;
pub mod store;
mod time;
mod token;
pub mod trace;
pub mod types;

pub use async_trait::async_trait;
#[cfg(feature = "otel")]
pub use bridge::OTelTraceExporter;
pub use budget::{
    BudgetConfig, BudgetManager, CharsOverFour, DEFAULT_MAX_SESSIONS, DEFAULT_REQUEST,
    DEFAULT_TOTAL_BUDGET, FramePayload, Reservation, SessionUsage, TokenCounter,
};
pub use caller_ids::{CallerIdRecording, MIN_PSEUDONYM_KEY_LEN, PSEUDONYM_PREFIX, PseudonymKey};
pub use driver::{Driver, DriverError, ExecutionContext, HttpDriver, HttpEndpoint, InMemoryDriver};
pub use error::{DenialCategory, KernelError, Result, StoreFault};
pub use firewall::{Budgets, Firewall, FirewallOutput, FirewallRequest, FirewallStats};
pub use handle::{DEFAULT_HANDLE_TTL, DEFAULT_MAX_HANDLES, HandleOwner, HandleStore, StoredResult};
pub use ids::{INVALID_ID, is_kernel_id};
pub use kernel::{
    ExpandQuery, InvokeRequest, Kernel, KernelBuilder, MAX_TOOL_CALL_ID_LEN, OFFLOAD_WEIGHT, args,
};
pub use policy::{
    DefaultPolicyEngine, DefaultPolicyEngineBuilder, InvokeDecision, PolicyEngine, RateLimit,
    RateLimits,
};
pub use registry::{CapabilityRegistry, DEFAULT_MAX_RESULTS};
pub use router::{Router, StaticRouter};
pub use stats::KernelStats;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use token::{CapabilityToken, DEFAULT_TOKEN_TTL, HmacTokenProvider, Revocation, SECRET_ENV};
pub use trace::{DEFAULT_TRACE_CAPACITY, ImportReport, LineError, TraceStore};
pub use types::{
    ActionTrace, Args, Capability, CapabilityGrant, CapabilityRequest, Constraints, Frame, Handle,
    ImplementationRef, PolicyDecision, Principal, Provenance, RawResult, ResponseMode, SafetyClass,
    SensitivityTag, TraceOutcome,
};
