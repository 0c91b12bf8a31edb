//! Drivers execute capabilities: the async [`Driver`] trait (usable as
//! `dyn Driver`), the context they receive, their error type, the two
//! built-in drivers, [`InMemoryDriver`] and [`HttpDriver`], and
//! [`CappedDriver`], which cuts any driver's results to `max_result_bytes`.

mod cap;
mod http;
mod memory;

use std::fmt;

use async_trait::async_trait;

use crate::types::{Args, Constraints, RawResult};

pub use cap::{CUT_MARGIN, CappedDriver, RESULT_CUT_KEY, cut_text, cut_warning};
pub use http::{HttpDriver, HttpEndpoint};
pub use memory::InMemoryDriver;

/// What a driver receives for one execution. Everything is borrowed from the
/// invocation; nothing is copied per attempt.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionContext<'a> {
    /// The capability being invoked.
    pub capability_id: &'a str,
    /// The invoking principal.
    pub principal_id: &'a str,
    /// The invocation's arguments.
    pub args: &'a Args,
    /// The token's signed constraints.
    pub constraints: &'a Constraints,
    /// The invocation's action id.
    pub action_id: &'a str,
    /// The operation the capability is bound to: its implementation
    /// reference's operation ([`Capability::with_impl`](crate::Capability::with_impl)),
    /// else the capability id. Set by the kernel from the registry, never
    /// from the arguments, so a caller cannot reach another capability's
    /// handler behind the same driver.
    pub operation: &'a str,
}

impl ExecutionContext<'_> {
    /// The operation to run (see [`operation`](Self::operation)): drivers
    /// dispatch on this, never on an argument.
    pub fn operation(&self) -> &str {
        self.operation
    }
}

/// A driver failure. The kernel moves on to the next driver on the route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("driver '{driver_id}': {message}")]
pub struct DriverError {
    /// The failing driver.
    pub driver_id: String,
    /// What went wrong (may include up to 200 characters of a response body).
    pub message: String,
    /// The HTTP status, when the failure was a non-2xx response.
    pub status: Option<u16>,
}

impl DriverError {
    /// A failure of `driver_id` described by `message`.
    pub fn new(driver_id: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            driver_id: driver_id.into(),
            message: message.into(),
            status: None,
        }
    }

    /// Attaches an HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// Executes capabilities against some backend.
///
/// ```
/// use agent_kernel::{async_trait, Driver, DriverError, ExecutionContext, RawResult};
/// use serde_json::json;
///
/// #[derive(Debug)]
/// struct Echo;
///
/// #[async_trait]
/// impl Driver for Echo {
///     fn driver_id(&self) -> &str { "echo" }
///     async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError> {
///         Ok(RawResult::new(ctx.capability_id, json!({ "operation": ctx.operation() })))
///     }
/// }
/// let _boxed: Box<dyn Driver> = Box::new(Echo);
/// ```
#[async_trait]
pub trait Driver: Send + Sync + fmt::Debug {
    /// Unique id the router refers to.
    fn driver_id(&self) -> &str;

    /// Runs the operation described by `ctx`.
    async fn execute(&self, ctx: &ExecutionContext<'_>) -> Result<RawResult, DriverError>;

    /// Whether the driver calls out of the process (HTTP, RPC). Its
    /// `agent_kernel.driver.execute` spans are then of kind CLIENT, and it
    /// should propagate the trace context (see
    /// [`agent_kernel_otel::inject_context`]). Defaults to `false`.
    fn is_remote(&self) -> bool {
        false
    }
}
